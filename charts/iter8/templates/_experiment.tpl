{{- /*
iter8.experiment renders the experiment spec from the values: one entry in
spec.tasks per name in .Values.tasks, each from its own task template.
*/ -}}
{{- define "iter8.experiment" -}}
apiVersion: iter8.tools/v1
kind: Experiment
metadata:
  name: {{ .Release.Name }}
  {{- if .Release.Namespace }}
  namespace: {{ .Release.Namespace }}
  {{- end }}
spec:
  {{- with .Values.versions }}
  versions: {{ toJson . }}
  {{- end }}
  {{- if .Values.failOnSLOs }}
  failOnSLOs: true
  {{- end }}
  {{- if gt (int .Values.loops) 1 }}
  loops: {{ int .Values.loops }}
  {{- end }}
  {{- with .Values.interval }}
  interval: {{ toJson . }}
  {{- end }}
  {{- with .Values.failedLoops }}
  failedLoops: {{ toJson . }}
  {{- end }}
  tasks:
  {{- range $i, $name := .Values.tasks }}
  {{- if has $name (list "ready" "http" "grpc" "metrics" "abn" "assess" "bandit" "rollout" "notify") }}
  {{- include (printf "iter8.task.%s" $name) $ | nindent 2 }}
  {{- else }}
  {{- fail (printf "tasks[%d]: unknown task %q: want one of ready, http, grpc, metrics, abn, assess, bandit, rollout, notify" $i $name) }}
  {{- end }}
  {{- end }}
{{- end }}

{{- /*
iter8.task renders one task from its values block: `if` becomes the task's
condition and the rest its inputs.
*/ -}}
{{- define "iter8.task" -}}
- task: {{ .name }}
  {{- with .values.if }}
  if: {{ toJson . }}
  {{- end }}
  with:
    {{- omit .values "if" | toYaml | nindent 4 }}
{{- end }}
