{{- /*
iter8.task.assess renders the assess task from .Values.assess. helm --set
passes decimals as strings, so SLO bounds, confidence and minEffect are
turned into numbers by iter8.float, which refuses what float64 cannot hold
(1e999 would otherwise become 0).
*/ -}}
{{- define "iter8.task.assess" -}}
{{- $v := deepCopy .Values.assess }}
{{- if $v.slos }}
{{- $slos := list }}
{{- range $i, $s := $v.slos }}
{{- if hasKey $s "upper" }}{{ include "iter8.float" (dict "into" $s "key" "upper" "path" (printf "assess.slos[%d].upper" $i)) }}{{ end }}
{{- if hasKey $s "lower" }}{{ include "iter8.float" (dict "into" $s "key" "lower" "path" (printf "assess.slos[%d].lower" $i)) }}{{ end }}
{{- $slos = append $slos $s }}
{{- end }}
{{- $_ := set $v "slos" $slos }}
{{- end }}
{{- if hasKey $v "confidence" }}
{{- include "iter8.float" (dict "into" $v "key" "confidence" "path" "assess.confidence") }}
{{- if or (le $v.confidence 0.0) (ge $v.confidence 1.0) }}
{{- fail (printf "assess.confidence: %v is not between 0 and 1 (exclusive); use such as 0.95" $v.confidence) }}
{{- end }}
{{- end }}
{{- if $v.comparisons }}
{{- $comparisons := list }}
{{- range $i, $c := $v.comparisons }}
{{- if hasKey $c "minEffect" }}{{ include "iter8.float" (dict "into" $c "key" "minEffect" "path" (printf "assess.comparisons[%d].minEffect" $i)) }}{{ end }}
{{- $comparisons = append $comparisons $c }}
{{- end }}
{{- $_ := set $v "comparisons" $comparisons }}
{{- end }}
{{- include "iter8.task" (dict "name" "assess" "values" $v) -}}
{{- end }}
