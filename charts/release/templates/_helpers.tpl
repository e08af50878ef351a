{{- /*
release.app is the application's name: app.name, else the release's.
*/ -}}
{{- define "release.app" -}}
{{ .Values.app.name | default .Release.Name }}
{{- end }}

{{- /*
release.labels are on every object of the release; iter8.tools/app finds
them by application.
*/ -}}
{{- define "release.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
iter8.tools/app: {{ include "release.app" . }}
{{- end }}

{{- /*
release.backend gives a version's route backend as JSON {name, port}: the
chart's own Service, an existing Service, or an InferenceService's predictor.
Called with (dict "root" $ "v" $version).
*/ -}}
{{- define "release.backend" -}}
{{- $app := include "release.app" .root -}}
{{- if .v.deployment -}}
{{ dict "name" (printf "%s-%s" $app .v.name) "port" (int .root.Values.app.port) | toJson }}
{{- else if .v.service -}}
{{ dict "name" .v.service.name "port" (int (.v.service.port | default .root.Values.app.port)) | toJson }}
{{- else -}}
{{ dict "name" (printf "%s-predictor" .v.inferenceService.name) "port" 80 | toJson }}
{{- end -}}
{{- end }}

{{- /*
release.receiving lists, as JSON, the versions that the values send any
traffic to: a weight above 0, a match rule or a mirror percent above 0. The
abn.header match needs a weight above 0, so it adds no version here.
*/ -}}
{{- define "release.receiving" -}}
{{- $names := list -}}
{{- range .Values.versions -}}
{{- if or (gt (int (.weight | default 0)) 0) .match (gt (int (.mirror | default 0)) 0) -}}
{{- $names = append $names .name -}}
{{- end -}}
{{- end -}}
{{ toJson $names }}
{{- end }}

{{- /*
release.abnMatch is true ("true", else "") when version .v gets the abn.header
match {abn.header: <its name>}: abn.header is set and the version's weight
is above 0. A version at weight 0 gets none, so that it stops receiving
traffic (see release.receiving) and can be retired.
Called with (dict "root" $ "v" $version).
*/ -}}
{{- define "release.abnMatch" -}}
{{- if and .root.Values.abn.header (gt (int (.v.weight | default 0)) 0) -}}
true
{{- end -}}
{{- end }}

{{- /*
release.routeKind is the route object's apiVersion and kind for the data
plane, as JSON {apiVersion, kind}.
*/ -}}
{{- define "release.routeKind" -}}
{{- if eq .Values.dataPlane "istio" -}}
{"apiVersion": "networking.istio.io/v1", "kind": "VirtualService"}
{{- else -}}
{"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute"}
{{- end -}}
{{- end }}

{{- /*
release.traefikMirroring is, with dataPlane traefik, the release's
TraefikService as JSON {traefikService (its name), service and port (the
backend of the first version with a weight above 0), mirrors (each
{service, port, percent}; strategy mirror only)}; "" on other data planes.
It exists whatever the strategy, so that a switch to or from mirror changes
only the route: the route never names a TraefikService that Traefik has
not loaded yet, or has dropped already.
*/ -}}
{{- define "release.traefikMirroring" -}}
{{- if eq .Values.dataPlane "traefik" -}}
{{- $m := dict "traefikService" (include "release.app" .) "mirrors" list -}}
{{- range .Values.versions -}}
{{- $b := include "release.backend" (dict "root" $ "v" .) | fromJson -}}
{{- if and (gt (int (.weight | default 0)) 0) (not (hasKey $m "service")) -}}
{{- $_ := set $m "service" $b.name -}}
{{- $_ := set $m "port" (int $b.port) -}}
{{- else if and (eq $.Values.strategy "mirror") (gt (int (.mirror | default 0)) 0) -}}
{{- $_ := set $m "mirrors" (append $m.mirrors (dict "service" $b.name "port" (int $b.port) "percent" (int .mirror))) -}}
{{- end -}}
{{- end -}}
{{- toJson $m -}}
{{- end -}}
{{- end }}

{{- /*
release.traefikServiceRef is the name by which an HTTPRoute reaches the
release's TraefikService through Traefik's CRD provider:
<namespace>-<name>@kubernetescrd, with every run of characters other than
letters and digits made one '-', as Traefik names it.
*/ -}}
{{- define "release.traefikServiceRef" -}}
{{ regexReplaceAll "[^a-zA-Z0-9]+" (printf "%s-%s" .Release.Namespace (include "release.app" .)) "-" | trimAll "-" }}@kubernetescrd
{{- end }}

{{- /*
release.validate fails with a message naming the value for what the schema
cannot say: unique names, weights that route somewhere, the strategy's rules,
abn.header (an HTTP token, canary or none, not in match rules), and
retirement (a version leaves only after an upgrade that stopped its traffic,
read from the live route).
*/ -}}
{{- define "release.validate" -}}
{{- $seen := dict -}}
{{- $total := 0 -}}
{{- $weighted := 0 -}}
{{- range $i, $v := .Values.versions -}}
{{- if hasKey $seen $v.name -}}
{{- fail (printf "versions[%d].name: %q is already the name of versions[%d]" $i $v.name (get $seen $v.name)) -}}
{{- end -}}
{{- $_ := set $seen $v.name $i -}}
{{- $w := int ($v.weight | default 0) -}}
{{- $total = add $total $w -}}
{{- if gt $w 0 }}{{ $weighted = add $weighted 1 }}{{ end -}}
{{- if and $v.match (not (has $.Values.strategy (list "canary" "none"))) -}}
{{- fail (printf "versions[%d].match: match rules need strategy canary (or none), not %s" $i $.Values.strategy) -}}
{{- end -}}
{{- if and (hasKey $v "mirror") (ne $.Values.strategy "mirror") -}}
{{- fail (printf "versions[%d].mirror: a mirror percent needs strategy mirror, not %s" $i $.Values.strategy) -}}
{{- end -}}
{{- range $k, $m := $v.match -}}
{{- range $h, $_ := $m.headers -}}
{{- if and $.Values.abn.header (eq (lower $h) (lower $.Values.abn.header)) -}}
{{- fail (printf "versions[%d].match[%d]: header %s is abn.header's, which the chart matches to each version's name; use another header" $i $k $h) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if and (eq $.Values.strategy "canary") (gt $i 0) (not (hasKey $v "weight")) (not $v.match) -}}
{{- fail (printf "versions[%d] (%s): a canary candidate needs a weight or match rules" $i $v.name) -}}
{{- end -}}
{{- if and (eq $.Values.strategy "mirror") (gt $w 0) (gt (int ($v.mirror | default 0)) 0) -}}
{{- fail (printf "versions[%d].mirror: version %s serves traffic (weight %d); only versions at weight 0 get a mirror" $i $v.name $w) -}}
{{- end -}}
{{- end -}}
{{- with .Values.abn.header -}}
{{- if not (regexMatch "^[-!#$%&'*+.^_`|~0-9A-Za-z]+$" (toString .)) -}}
{{- fail (printf "abn.header: %q is not a valid header name (an HTTP token: letters, digits and !#$%%&'*+-.^_`|~)" (toString .)) -}}
{{- end -}}
{{- if not (has $.Values.strategy (list "canary" "none")) -}}
{{- fail (printf "abn.header: per-version header routing needs strategy canary (or none), not %s" $.Values.strategy) -}}
{{- end -}}
{{- end -}}
{{- if eq $total 0 -}}
{{- fail "versions: every weight is 0, so the route would send traffic nowhere; give at least one version a weight above 0" -}}
{{- end -}}
{{- if and (has .Values.strategy (list "blue-green" "mirror")) (ne $weighted 1) -}}
{{- fail (printf "versions: strategy %s sends all traffic to one version, but %d versions have a weight above 0" .Values.strategy $weighted) -}}
{{- end -}}
{{- if and (has .Values.dataPlane (list "gateway-api" "traefik")) (not .Values.gatewayAPI.parentRefs) -}}
{{- fail (printf "gatewayAPI.parentRefs: an HTTPRoute (dataPlane %s) needs the Gateway it attaches to, such as [{name: gateway, namespace: infra}]" .Values.dataPlane) -}}
{{- end -}}
{{- $kind := include "release.routeKind" . | fromJson -}}
{{- $live := lookup $kind.apiVersion $kind.kind .Release.Namespace (include "release.app" .) -}}
{{- with $live -}}
{{- $was := (index (.metadata.annotations | default dict) "iter8.tools/receiving") | default "[]" | fromJsonArray -}}
{{- range $was -}}
{{- if not (hasKey $seen .) -}}
{{- fail (printf "versions: %s still receives traffic in the live route; set its weight to 0 (and drop its match and mirror) in one upgrade, and remove it in the next" .) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end }}

{{- /*
release.image is the gates' image: image.tag defaults to appVersion.
*/ -}}
{{- define "release.image" -}}
{{ .Values.image.repository }}:{{ toString (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
