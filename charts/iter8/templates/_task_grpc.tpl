{{- /*
iter8.task.grpc renders the grpc task from .Values.grpc. helm --set passes
decimals as strings, so rps and percentiles are turned into numbers by
iter8.float (which refuses what float64 cannot hold, and an rps out of
range), and numbers or booleans in
metadata back into strings, as metadata values are strings.
*/ -}}
{{- define "iter8.task.grpc.request" -}}
{{- $e := .values }}
{{- if hasKey $e "rps" }}{{ include "iter8.float" (dict "into" $e "key" "rps" "path" (printf "%s.rps" .path) "min" 0.1 "max" 1000000 "zero" true) }}{{ end }}
{{- if kindIs "map" $e.metadata }}
{{- $md := dict }}
{{- range $k, $val := $e.metadata }}{{ $_ := set $md $k (toString $val) }}{{ end }}
{{- $_ := set $e "metadata" $md }}
{{- end }}
{{- end }}

{{- define "iter8.task.grpc" -}}
{{- $v := deepCopy .Values.grpc }}
{{- include "iter8.task.grpc.request" (dict "values" $v "path" "grpc") }}
{{- if $v.percentiles }}
{{- $ps := list }}
{{- range $i, $p := $v.percentiles }}
{{- $box := dict "p" $p }}
{{- include "iter8.float" (dict "into" $box "key" "p" "path" (printf "grpc.percentiles[%d]" $i)) }}
{{- $ps = append $ps $box.p }}
{{- end }}
{{- $_ := set $v "percentiles" $ps }}
{{- end }}
{{- if $v.endpoints }}
{{- $eps := list }}
{{- range $i, $e := $v.endpoints }}
{{- include "iter8.task.grpc.request" (dict "values" $e "path" (printf "grpc.endpoints[%d]" $i)) }}
{{- $eps = append $eps $e }}
{{- end }}
{{- $_ := set $v "endpoints" $eps }}
{{- end }}
{{- include "iter8.workers.check" (dict "v" $v "task" "grpc" "count" "total" "default" 200 "unit" "call" "rate" "rps") }}
{{- include "iter8.task" (dict "name" "grpc" "values" $v) -}}
{{- end }}
