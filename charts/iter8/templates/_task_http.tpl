{{- /* iter8.task.http renders the http task from .Values.http. */ -}}
{{- define "iter8.task.http" -}}
{{- include "iter8.task" (dict "name" "http" "values" .Values.http) -}}
{{- end }}
