{{- /*
iter8.task.http renders the http task from .Values.http. helm --set passes
decimals as strings, so qps and percentiles are turned into numbers (the
schema has checked that they are numbers).
*/ -}}
{{- define "iter8.task.http" -}}
{{- $v := deepCopy .Values.http }}
{{- if hasKey $v "qps" }}{{ $_ := set $v "qps" (float64 $v.qps) }}{{ end }}
{{- if $v.percentiles }}
{{- $ps := list }}
{{- range $v.percentiles }}{{ $ps = append $ps (float64 .) }}{{ end }}
{{- $_ := set $v "percentiles" $ps }}
{{- end }}
{{- if $v.endpoints }}
{{- $eps := list }}
{{- range $v.endpoints }}
{{- $e := . }}
{{- if hasKey $e "qps" }}{{ $_ := set $e "qps" (float64 $e.qps) }}{{ end }}
{{- $eps = append $eps $e }}
{{- end }}
{{- $_ := set $v "endpoints" $eps }}
{{- end }}
{{- include "iter8.task" (dict "name" "http" "values" $v) -}}
{{- end }}
