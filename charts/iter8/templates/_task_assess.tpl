{{- /*
iter8.task.assess renders the assess task from .Values.assess. helm --set
passes decimals as strings, so SLO bounds, confidence and minEffect are
turned into numbers (the schema has checked that they are numbers).
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
{{- if hasKey $v "confidence" }}
{{- $_ := set $v "confidence" (float64 $v.confidence) }}
{{- if or (le $v.confidence 0.0) (ge $v.confidence 1.0) }}
{{- fail (printf "assess.confidence: %v is not between 0 and 1 (exclusive); use such as 0.95" $v.confidence) }}
{{- end }}
{{- end }}
{{- if $v.comparisons }}
{{- $comparisons := list }}
{{- range $v.comparisons }}
{{- $c := . }}
{{- if hasKey $c "minEffect" }}{{ $_ := set $c "minEffect" (float64 $c.minEffect) }}{{ end }}
{{- $comparisons = append $comparisons $c }}
{{- end }}
{{- $_ := set $v "comparisons" $comparisons }}
{{- end }}
{{- include "iter8.task" (dict "name" "assess" "values" $v) -}}
{{- end }}
