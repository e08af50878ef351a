{{- /*
iter8.task.metrics renders the metrics task from .Values.metrics. Its
queries and provider templates ({{ .version }}, {{ .window }}, ...) are
values, passed through as strings and rendered by the task, not by Helm;
auth names the env entries (secretEnv) that hold credentials.
*/ -}}
{{- define "iter8.task.metrics" -}}
{{- include "iter8.task" (dict "name" "metrics" "values" .Values.metrics) -}}
{{- end }}
