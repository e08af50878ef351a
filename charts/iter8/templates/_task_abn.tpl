{{- /*
iter8.task.abn renders the abn task from .Values.abn: it reads the A/B/n
service's summaries of one application's business metrics.
*/ -}}
{{- define "iter8.task.abn" -}}
{{- include "iter8.task" (dict "name" "abn" "values" .Values.abn) -}}
{{- end }}
