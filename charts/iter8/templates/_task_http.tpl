{{- /*
iter8.task.http renders the http task from .Values.http. helm --set passes
decimals as strings, so qps and percentiles are turned into numbers by
iter8.float, which refuses what float64 cannot hold (1e999) and a qps out
of range; iter8.workers.check refuses workers that the run would.
*/ -}}
{{- define "iter8.task.http" -}}
{{- $v := deepCopy .Values.http }}
{{- if hasKey $v "qps" }}{{ include "iter8.float" (dict "into" $v "key" "qps" "path" "http.qps" "min" 0.1 "max" 1000000 "zero" true) }}{{ end }}
{{- if $v.percentiles }}
{{- $ps := list }}
{{- range $i, $p := $v.percentiles }}
{{- $box := dict "p" $p }}
{{- include "iter8.float" (dict "into" $box "key" "p" "path" (printf "http.percentiles[%d]" $i)) }}
{{- $ps = append $ps $box.p }}
{{- end }}
{{- $_ := set $v "percentiles" $ps }}
{{- end }}
{{- if $v.endpoints }}
{{- $eps := list }}
{{- range $i, $e := $v.endpoints }}
{{- if hasKey $e "qps" }}{{ include "iter8.float" (dict "into" $e "key" "qps" "path" (printf "http.endpoints[%d].qps" $i) "min" 0.1 "max" 1000000 "zero" true) }}{{ end }}
{{- $eps = append $eps $e }}
{{- end }}
{{- $_ := set $v "endpoints" $eps }}
{{- end }}
{{- include "iter8.workers.check" (dict "v" $v "task" "http" "count" "numRequests" "default" 400 "unit" "request" "rate" "qps") }}
{{- include "iter8.task" (dict "name" "http" "values" $v) -}}
{{- end }}
