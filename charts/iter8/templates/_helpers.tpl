{{- /*
iter8.labels are the labels of every cluster object of an experiment. The
Job runner and the plugins find an experiment's objects by
iter8.tools/experiment; managed-by says that Helm owns them.
*/ -}}
{{- define "iter8.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
iter8.tools/experiment: {{ .Release.Name }}
{{- end }}

{{- /*
iter8.specSecret names the Secret that holds the experiment spec.
*/ -}}
{{- define "iter8.specSecret" -}}
{{ .Release.Name }}-spec
{{- end }}

{{- /*
iter8.resultSecret names the Secret that the Job writes results into.
*/ -}}
{{- define "iter8.resultSecret" -}}
{{ .Release.Name }}-result
{{- end }}

{{- /*
iter8.jobName names the hook Job that runs the experiment.
*/ -}}
{{- define "iter8.jobName" -}}
{{ .Release.Name }}-iter8-run
{{- end }}

{{- /*
iter8.rbacName names the chart's ServiceAccount, Role and RoleBinding.
*/ -}}
{{- define "iter8.rbacName" -}}
{{ .Release.Name }}-iter8
{{- end }}

{{- /*
iter8.serviceAccountName is the ServiceAccount the Job runs as: the one that
values.serviceAccountName names, else the chart's own.
*/ -}}
{{- define "iter8.serviceAccountName" -}}
{{ .Values.serviceAccountName | default (include "iter8.rbacName" .) }}
{{- end }}

{{- /*
iter8.image is the Job's image: image.tag defaults to the chart's appVersion.
*/ -}}
{{- define "iter8.image" -}}
{{- $tag := toString (.Values.image.tag | default .Chart.AppVersion) -}}
{{ .Values.image.repository }}:{{ $tag }}
{{- end }}
