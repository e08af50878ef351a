{{- /*
iter8.task.grpc renders the grpc task from .Values.grpc. helm --set passes
decimals as strings, so rps and percentiles are turned into numbers (the
schema has checked that they are numbers), and numbers or booleans in
metadata back into strings, as metadata values are strings.
*/ -}}
{{- define "iter8.task.grpc.request" -}}
{{- if hasKey . "rps" }}{{ $_ := set . "rps" (float64 .rps) }}{{ end }}
{{- if kindIs "map" .metadata }}
{{- $md := dict }}
{{- range $k, $val := .metadata }}{{ $_ := set $md $k (toString $val) }}{{ end }}
{{- $_ := set . "metadata" $md }}
{{- end }}
{{- end }}

{{- define "iter8.task.grpc" -}}
{{- $v := deepCopy .Values.grpc }}
{{- include "iter8.task.grpc.request" $v }}
{{- if $v.percentiles }}
{{- $ps := list }}
{{- range $v.percentiles }}{{ $ps = append $ps (float64 .) }}{{ end }}
{{- $_ := set $v "percentiles" $ps }}
{{- end }}
{{- if $v.endpoints }}
{{- $eps := list }}
{{- range $v.endpoints }}
{{- $e := . }}
{{- include "iter8.task.grpc.request" $e }}
{{- $eps = append $eps $e }}
{{- end }}
{{- $_ := set $v "endpoints" $eps }}
{{- end }}
{{- include "iter8.task" (dict "name" "grpc" "values" $v) -}}
{{- end }}
