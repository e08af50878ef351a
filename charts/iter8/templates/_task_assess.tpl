{{- /* iter8.task.assess renders the assess task from .Values.assess. */ -}}
{{- define "iter8.task.assess" -}}
{{- include "iter8.task" (dict "name" "assess" "values" .Values.assess) -}}
{{- end }}
