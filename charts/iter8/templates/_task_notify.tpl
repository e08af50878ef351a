{{- /*
iter8.task.notify renders the notify task from .Values.notify. Secrets are
named, never given: urlFrom, tokenFrom and headersFrom hold the names of
environment variables (from Kubernetes Secrets in a cluster), and templates
use {{ secret "NAME" }}; the chart never renders a secret's value. Templates
(payloadTemplate, text, subject, and the values of headers, query and
inputs) are passed through as strings, not rendered by Helm. helm --set
turns values such as 5 or true into numbers and booleans, so the values of
headers, query and inputs are turned back into strings.
*/ -}}
{{- define "iter8.task.notify" -}}
{{- $v := deepCopy .Values.notify }}
{{- if $v.targets }}
{{- $targets := list }}
{{- range $v.targets }}
{{- $t := . }}
{{- range $kind := list "webhook" "github" }}
{{- $k := get $t $kind }}
{{- if kindIs "map" $k }}
{{- range $field := list "headers" "query" "inputs" }}
{{- $m := get $k $field }}
{{- if kindIs "map" $m }}
{{- $s := dict }}
{{- range $name, $val := $m }}{{ $_ := set $s $name (toString $val) }}{{ end }}
{{- $_ := set $k $field $s }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- $targets = append $targets $t }}
{{- end }}
{{- $_ := set $v "targets" $targets }}
{{- end }}
{{- include "iter8.task" (dict "name" "notify" "values" $v) -}}
{{- end }}
