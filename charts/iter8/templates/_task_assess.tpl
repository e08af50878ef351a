{{- /*
iter8.task.assess renders the assess task from .Values.assess. helm --set
passes decimals as strings, so SLO bounds are turned into numbers (the schema
has checked that they are numbers).
*/ -}}
{{- define "iter8.task.assess" -}}
{{- $v := deepCopy .Values.assess }}
{{- if $v.slos }}
{{- $slos := list }}
{{- range $v.slos }}
{{- $s := . }}
{{- if hasKey $s "upper" }}{{ $_ := set $s "upper" (float64 $s.upper) }}{{ end }}
{{- if hasKey $s "lower" }}{{ $_ := set $s "lower" (float64 $s.lower) }}{{ end }}
{{- $slos = append $slos $s }}
{{- end }}
{{- $_ := set $v "slos" $slos }}
{{- end }}
{{- include "iter8.task" (dict "name" "assess" "values" $v) -}}
{{- end }}
