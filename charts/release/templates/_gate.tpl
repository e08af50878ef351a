{{- /*
release.gateJob renders a gate's hook Job: it runs the experiment whose spec
it carries in an environment variable (so that no hook object holds it) and
writes the result Secret <release>-<gate>-result, which then owns the Job, so
that a failed Job kept for its log goes with the release. Called with (dict
"root" $ "gate" "ready"|"slo" "hook" HOOKS "spec" SPEC).
*/ -}}
{{- define "release.gateJob" -}}
{{- $root := .root -}}
{{- $job := printf "%s-%s-gate" $root.Release.Name .gate -}}
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ $job }}
  labels:
    {{- include "release.labels" $root | nindent 4 }}
    iter8.tools/experiment: {{ printf "%s-%s" $root.Release.Name .gate }}
  annotations:
    helm.sh/hook: {{ .hook }}
    helm.sh/hook-weight: "10"
    helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
spec:
  backoffLimit: 0
  template:
    metadata:
      labels:
        {{- include "release.labels" $root | nindent 8 }}
        iter8.tools/experiment: {{ printf "%s-%s" $root.Release.Name .gate }}
        iter8.tools/revision: {{ $root.Release.Revision | quote }}
    spec:
      restartPolicy: Never
      serviceAccountName: {{ printf "%s-gates" $root.Release.Name }}
      automountServiceAccountToken: true
      securityContext:
        runAsNonRoot: true
        runAsUser: 65532
        runAsGroup: 65532
        seccompProfile:
          type: RuntimeDefault
      containers:
      - name: iter8
        image: {{ include "release.image" $root | quote }}
        imagePullPolicy: {{ $root.Values.image.pullPolicy }}
        command:
        - iter8
        - run
        - --namespace
        - {{ $root.Release.Namespace | quote }}
        - --experiment
        - {{ printf "%s-%s" $root.Release.Name .gate | quote }}
        - --revision
        - {{ $root.Release.Revision | quote }}
        - --job
        - {{ $job | quote }}
        - --spec-env
        - ITER8_SPEC
        env:
        - name: ITER8_SPEC
          value: {{ .spec | quote }}
        {{- with $root.Values.resources }}
        resources:
          {{- toYaml . | nindent 10 }}
        {{- end }}
        securityContext:
          allowPrivilegeEscalation: false
          readOnlyRootFilesystem: true
          capabilities:
            drop: ["ALL"]
{{- end }}
