{{- /*
abn.labels are on every object of the release.
*/ -}}
{{- define "abn.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- /*
abn.selector selects the service's Pods.
*/ -}}
{{- define "abn.selector" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- /*
abn.name names the Deployment, Service, ServiceAccount and RBAC objects.
*/ -}}
{{- define "abn.name" -}}
{{ .Release.Name }}-abn
{{- end }}

{{- /*
abn.image: image.tag defaults to the chart's appVersion.
*/ -}}
{{- define "abn.image" -}}
{{- $tag := toString (.Values.image.tag | default .Chart.AppVersion) -}}
{{ .Values.image.repository }}:{{ $tag }}
{{- end }}

{{- /*
abn.namespaces lists the namespaces served, as JSON: {"namespaces": [...]}.
*/ -}}
{{- define "abn.namespaces" -}}
{{- $ns := .Values.namespaces | default (list .Release.Namespace) -}}
{{- toJson (dict "namespaces" (uniq $ns)) -}}
{{- end }}

{{- /*
abn.validate fails on values that cannot work, naming them.
*/ -}}
{{- define "abn.validate" -}}
{{- $bolt := .Values.ledger.bolt.enabled -}}
{{- $redis := ne (toString .Values.ledger.redis.address) "" -}}
{{- if and $bolt $redis -}}
{{- fail "ledger: both ledger.bolt.enabled and ledger.redis.address are set: want one (set ledger.bolt.enabled=false to use Redis)" -}}
{{- end -}}
{{- if not (or $bolt $redis) -}}
{{- fail "ledger: neither ledger.bolt.enabled nor ledger.redis.address is set: want one" -}}
{{- end -}}
{{- if and $bolt (gt (int .Values.replicas) 1) -}}
{{- fail (printf "replicas: %d replicas cannot share a bbolt file: use ledger.redis for more than one" (int .Values.replicas)) -}}
{{- end -}}
{{- if and .Values.allNamespaces .Values.namespaces -}}
{{- fail "namespaces and allNamespaces: want one of them" -}}
{{- end -}}
{{- with .Values.ledger.redis.passwordSecret -}}
{{- if not (and .name .key) -}}
{{- fail "ledger.redis.passwordSecret: want both name and key" -}}
{{- end -}}
{{- end -}}
{{- $seen := dict -}}
{{- range $i, $e := .Values.env -}}
{{- if hasKey $seen $e.name -}}
{{- fail (printf "env[%d] (%s): named twice: want each variable once" $i $e.name) -}}
{{- end -}}
{{- $_ := set $seen $e.name true -}}
{{- if eq $e.name "ITER8_ABN_REDIS_PASSWORD" -}}
{{- fail (printf "env[%d]: ITER8_ABN_REDIS_PASSWORD is the chart's (from ledger.redis.passwordSecret): set that instead" $i) -}}
{{- end -}}
{{- if and (hasKey $e "value") (hasKey $e "valueFrom") -}}
{{- fail (printf "env[%d] (%s): want value or valueFrom, not both" $i $e.name) -}}
{{- end -}}
{{- end -}}
{{- end }}
