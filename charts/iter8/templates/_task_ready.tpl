{{- /*
iter8.task.ready renders the ready task from .Values.ready: url, method,
status, timeout and interval as they are, and the short names (deploy: app)
as the explicit objects that iter8.ready.objects resolves.
*/ -}}
{{- define "iter8.task.ready" -}}
{{- $v := pick (.Values.ready | default dict) "if" "url" "method" "status" "timeout" "interval" }}
{{- with (include "iter8.ready.objects" . | fromJson).objects }}
{{- $_ := set $v "objects" . }}
{{- end }}
{{- include "iter8.task" (dict "name" "ready" "values" $v) -}}
{{- end }}

{{- /*
iter8.ready.objects resolves the short names in .Values.ready through
.Values.resourceTypes into the objects that the ready task waits for (and
that the chart's Role lets the Job get), as JSON {"objects": [...]}, in the
order of the short names and then of the names. A resource type with
endpoints: true (core v1 Services only) adds endpoints: true to its objects,
so that the task also waits for a ready endpoint in their EndpointSlices. It
fails on a short name that resourceTypes does not define (or that shadows an
input of ready), on endpoints for any other resource, on an object named
twice, and on a namespace other than the release's: a Role
cannot grant access to objects in another namespace. (A local render has no release namespace; the run then
reads objects with the user's own credentials.)
*/ -}}
{{- define "iter8.ready.objects" -}}
{{- $ready := .Values.ready | default dict }}
{{- $types := .Values.resourceTypes | default dict }}
{{- $inputs := list "if" "url" "method" "status" "timeout" "interval" "namespace" }}
{{- range $inputs }}
{{- if hasKey $types . }}
{{- fail (printf "resourceTypes.%s: %q is an input of ready (ready.%s), not a short name: choose another name" . . .) }}
{{- end }}
{{- end }}
{{- range $key, $t := $types }}
{{- if and (kindIs "map" $t) $t.endpoints (not (and (eq (toString ($t.group | default "")) "") (eq (toString $t.version) "v1") (eq (toString $t.resource) "services"))) }}
{{- fail (printf "resourceTypes.%s.endpoints: only for Services (group \"\", version v1, resource services): %s has no EndpointSlices" $key (toString $t.resource)) }}
{{- end }}
{{- end }}
{{- $ns := "" }}
{{- with $ready.namespace }}
{{- if and $.Release.Namespace (ne . $.Release.Namespace) }}
{{- fail (printf "ready.namespace: %q is not the release's namespace %q: the release's Role can only grant access to objects in its own namespace; install the experiment into %q instead" . $.Release.Namespace .) }}
{{- end }}
{{- $ns = . }}
{{- end }}
{{- $objects := list }}
{{- $seen := dict }}
{{- range $key, $names := $ready }}
{{- if not (has $key $inputs) }}
{{- $t := get $types $key }}
{{- if not $t }}
{{- fail (printf "ready.%s: unknown short name %q: want one of %s, or add it to resourceTypes" $key $key (keys $types | sortAlpha | join ", ")) }}
{{- end }}
{{- if not (kindIs "slice" $names) }}{{ $names = list $names }}{{ end }}
{{- range $i, $name := $names }}
{{- $name = toString $name }}
{{- $o := dict "group" (toString ($t.group | default "")) "version" (toString $t.version) "resource" (toString $t.resource) "name" $name }}
{{- with $ns }}{{ $_ := set $o "namespace" . }}{{ end }}
{{- /* helm --set x={} gives [""]: empty strings are dropped. */}}
{{- with without ($t.conditions | default list) "" }}{{ $_ := set $o "conditions" . }}{{ end }}
{{- if $t.endpoints }}{{ $_ := set $o "endpoints" true }}{{ end }}
{{- $id := printf "%s/%s/%s" $o.group $o.resource $name }}
{{- if hasKey $seen $id }}
{{- fail (printf "ready.%s: %s %q is already named by ready.%s" $key $o.resource $name (get $seen $id)) }}
{{- end }}
{{- $_ := set $seen $id $key }}
{{- $objects = append $objects $o }}
{{- end }}
{{- end }}
{{- end }}
{{- toJson (dict "objects" $objects) }}
{{- end }}
