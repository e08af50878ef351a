{{- /* iter8.task.ready renders the ready task from .Values.ready. */ -}}
{{- define "iter8.task.ready" -}}
{{- include "iter8.task" (dict "name" "ready" "values" .Values.ready) -}}
{{- end }}
