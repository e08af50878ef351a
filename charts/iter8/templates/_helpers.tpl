{{- /*
iter8.labels are the labels of every cluster object of an experiment. The
Job runner and the plugins find an experiment's objects by
iter8.tools/experiment; managed-by says that Helm owns them.
*/ -}}
{{- define "iter8.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
iter8.tools/experiment: {{ .Release.Name }}
{{- end }}

{{- /*
iter8.specSecret names the Secret that holds the experiment spec.
*/ -}}
{{- define "iter8.specSecret" -}}
{{ .Release.Name }}-spec
{{- end }}

{{- /*
iter8.resultSecret names the Secret that the Job writes results into.
*/ -}}
{{- define "iter8.resultSecret" -}}
{{ .Release.Name }}-result
{{- end }}

{{- /*
iter8.upgrader names the task that upgrades the app's release (bandit or
rollout), or is empty; an experiment has at most one.
*/ -}}
{{- define "iter8.upgrader" -}}
{{- if and (has "bandit" .Values.tasks) (has "rollout" .Values.tasks) }}
{{- fail "tasks: bandit and rollout both move the app's weights: give one of them" }}
{{- end }}
{{- if has "bandit" .Values.tasks }}bandit{{ else if has "rollout" .Values.tasks }}rollout{{ end -}}
{{- end }}

{{- /*
iter8.longRunning is "true" for an experiment that runs as a long-running
Job (not a hook: the release owns it): one with a bandit or a rollout.
*/ -}}
{{- define "iter8.longRunning" -}}
{{- if include "iter8.upgrader" . }}true{{ end -}}
{{- end }}

{{- /*
iter8.jobName names the Job that runs the experiment. A long-running Job's
name carries the revision: its pod template cannot change, so an upgrade
makes a new Job and Helm deletes the last revision's.
*/ -}}
{{- define "iter8.jobName" -}}
{{- $name := printf "%s-iter8-run" .Release.Name }}
{{- if include "iter8.longRunning" . }}{{ $name = printf "%s-%d" $name (int .Release.Revision) }}{{ end }}
{{- if gt (len $name) 63 }}
{{- fail (printf "the Job's name %s is longer than 63 characters: choose a release name of at most %d" $name (sub 53 (sub (len $name) 63))) }}
{{- end }}
{{- $name }}
{{- end }}

{{- /*
iter8.upgraderName names the ServiceAccount, Role and RoleBinding that let a
bandit or a rollout upgrade the app's release.
*/ -}}
{{- define "iter8.upgraderName" -}}
{{ .Release.Name }}-iter8-upgrader
{{- end }}

{{- /*
iter8.appNamespace is the namespace of the app release that the bandit or
the rollout upgrades: the one its release value names, else the
experiment's.
*/ -}}
{{- define "iter8.appNamespace" -}}
{{- $parts := splitList "/" (toString (get (get .Values (include "iter8.upgrader" .)) "release")) }}
{{- if eq (len $parts) 2 }}{{ first $parts }}{{ else }}{{ .Release.Namespace }}{{ end -}}
{{- end }}

{{- /*
iter8.appRelease is the name of the app release that the bandit or the
rollout upgrades.
*/ -}}
{{- define "iter8.appRelease" -}}
{{ last (splitList "/" (toString (get (get .Values (include "iter8.upgrader" .)) "release"))) }}
{{- end }}

{{- /*
iter8.rbacName names the chart's ServiceAccount, Role and RoleBinding.
*/ -}}
{{- define "iter8.rbacName" -}}
{{ .Release.Name }}-iter8
{{- end }}

{{- /*
iter8.serviceAccountName is the ServiceAccount the Job runs as: the one that
values.serviceAccountName names, else the chart's own: the upgrader for a
bandit or a rollout, so that the account's name says what it may do.
*/ -}}
{{- define "iter8.serviceAccountName" -}}
{{- $own := include "iter8.rbacName" . }}
{{- if include "iter8.longRunning" . }}{{ $own = include "iter8.upgraderName" . }}{{ end }}
{{- .Values.serviceAccountName | default $own }}
{{- end }}

{{- /*
iter8.image is the Job's image: image.tag defaults to the chart's appVersion.
*/ -}}
{{- define "iter8.image" -}}
{{- $tag := toString (.Values.image.tag | default .Chart.AppVersion) -}}
{{ .Values.image.repository }}:{{ $tag }}
{{- end }}

{{- /*
iter8.float turns a number, or a string of one (helm --set passes decimals
as strings), into a float64 and sets it as .key of .into. Sprig's float64
gives 0 for a string beyond float64's range (1e999, -1e999, 1e-999), which
would make qps full speed or an SLO limit 0; such a value fails here,
naming its path (.path). With .min and .max it fails outside them too (0
is taken when .zero is set): helm install checks what the run would refuse
only once its Job starts.
*/ -}}
{{- define "iter8.float" -}}
{{- $raw := get .into .key }}
{{- $s := toString $raw }}
{{- $f := float64 $raw }}
{{- if and (eq $f 0.0) (not (regexMatch "^[-+]?(0+[.]?0*|[.]0+)([eE][-+]?[0-9]+)?$" $s)) }}
{{- fail (printf "%s: %s is beyond the range of a number: want a finite number such as 0.5 or 1e6" .path $s) }}
{{- end }}
{{- if and (hasKey . "min") (not (and .zero (eq $f 0.0))) (or (lt $f (float64 .min)) (gt $f (float64 .max))) }}
{{- if .zero }}
{{- fail (printf "%s: %s must be 0 (as fast as possible) or from %v to %v" .path $s .min .max) }}
{{- else }}
{{- fail (printf "%s: %s must be from %v to %v" .path $s .min .max) }}
{{- end }}
{{- end }}
{{- $_ := set .into .key $f }}
{{- end }}

{{- /*
iter8.workers is N, the most workers that an http or grpc task in tasks
spreads its load over (1 when none sets workers). With N > 1 the run makes
an Indexed Job of N worker pods, and the chart the workers' account, its
Role and the admission policy (workers.yaml).
*/ -}}
{{- define "iter8.workers" -}}
{{- $n := 1 }}
{{- range $name := list "http" "grpc" }}
{{- $v := get $.Values $name }}
{{- if and (has $name $.Values.tasks) (kindIs "map" $v) (hasKey $v "workers") }}
{{- $n = max $n (int (get $v "workers")) }}
{{- end }}
{{- end }}
{{- $n -}}
{{- end }}

{{- /*
iter8.workerAccount names the ServiceAccount (and its Role and RoleBinding)
that the worker pods run as. A name of more than 63 characters (a release
name above 50) is cut and given a hash of the whole, so that two long
release names do not share it; the run learns it from --workers-account.
*/ -}}
{{- define "iter8.workerAccount" -}}
{{- $name := printf "%s-iter8-worker" .Release.Name }}
{{- if gt (len $name) 63 }}
{{- $name = printf "%s-%s" ($name | trunc 54 | trimSuffix "-") (sha256sum $name | trunc 8) }}
{{- end }}
{{- $name }}
{{- end }}

{{- /*
iter8.workersJob names the Indexed Job of worker pods that the run makes.
*/ -}}
{{- define "iter8.workersJob" -}}
{{ .Release.Name }}-workers
{{- end }}

{{- /*
iter8.workerParts names the Secrets that the workers put their parts in,
<release>-part-0 to <release>-part-<N-1>, as a JSON list.
*/ -}}
{{- define "iter8.workerParts" -}}
{{- $parts := list }}
{{- range $i := until (int (include "iter8.workers" .)) }}
{{- $parts = append $parts (printf "%s-part-%d" $.Release.Name $i) }}
{{- end }}
{{- toJson $parts }}
{{- end }}

{{- /*
iter8.workersPolicy names the cluster-scoped ValidatingAdmissionPolicy (and
its binding) on the workers' Secret writes: iter8-workers.<namespace>.<release>;
iter8.workersJobPolicy the one on the run's Job creates:
iter8-workers-job.<namespace>.<release>. A namespace has no dots, so the
name says which namespace and release it is for (iter8-<ns>-<release>-...
did not: a-b/c and a/b-c shared one). Both are valid DNS subdomains: a
namespace and a release name are DNS labels (or, for a release, dotted
ones), at most 63 and 53 characters, so a name is at most
18+63+1+53 = 135 characters, below 253.
*/ -}}
{{- define "iter8.workersPolicy" -}}
iter8-workers.{{ .Release.Namespace }}.{{ .Release.Name }}
{{- end }}

{{- define "iter8.workersJobPolicy" -}}
iter8-workers-job.{{ .Release.Namespace }}.{{ .Release.Name }}
{{- end }}

{{- /*
iter8.durationSeconds is a Go duration (such as 1m30s; the schema checks
its form) in seconds, or 0 for an empty one.
*/ -}}
{{- define "iter8.durationSeconds" -}}
{{- $secs := 0.0 }}
{{- $units := dict "ns" 1e-9 "us" 1e-6 "µs" 1e-6 "ms" 1e-3 "s" 1.0 "m" 60.0 "h" 3600.0 }}
{{- range regexFindAll "[0-9]+([.][0-9]+)?(ns|us|µs|ms|s|m|h)" (toString .) -1 }}
{{- $unit := regexFind "(ns|us|µs|ms|s|m|h)$" . }}
{{- $secs = addf $secs (mulf (float64 (trimSuffix $unit .)) (get $units $unit)) }}
{{- end }}
{{- $secs -}}
{{- end }}

{{- /*
iter8.workers.check refuses at install what the run would refuse of a load
task's workers (pkg/task/load: Kind.Decode and CheckWorkerRate), so that
helm install fails before anything is made. .v is the task's values (rates
already numbers), .task its name, .count and .default its count field and
that field's default, .unit what it counts, .rate its rate field. The
schema bounds workers to 1..1000 already; the bound is repeated for helm
--skip-schema-validation.
*/ -}}
{{- define "iter8.workers.check" -}}
{{- $v := .v }}
{{- if hasKey $v "workers" }}
{{- $w := int $v.workers }}
{{- if or (lt $w 1) (gt $w 1000) }}
{{- fail (printf "%s.workers: %d must be from 1 to 1000" .task $w) }}
{{- end }}
{{- $count := int64 (get $v .count | default 0) }}
{{- $def := "" }}
{{- if and (eq $count 0) (not $v.duration) }}{{ $count = int64 .default }}{{ $def = " (its default)" }}{{ end }}
{{- if and (gt $count 0) (lt $count (int64 $w)) }}
{{- fail (printf "%s.workers: %d is above %s %d%s: each worker needs at least one %s: lower workers or raise %s" .task $w .count $count $def .unit .count) }}
{{- end }}
{{- if gt $w 1 }}
{{- $d := float64 (include "iter8.durationSeconds" ($v.duration | default "")) }}
{{- /* Each rate that an endpoint uses, at the path where it is written: the
task's only when an endpoint (or the task's own target) inherits it. */}}
{{- $rates := list }}
{{- $inherit := not $v.endpoints }}
{{- range $i, $e := $v.endpoints }}
{{- if hasKey $e $.rate }}
{{- $rates = append $rates (dict "rate" (get $e $.rate) "path" (printf "%s.endpoints[%d].%s" $.task $i $.rate)) }}
{{- else }}{{ $inherit = true }}
{{- end }}
{{- end }}
{{- if and $inherit (hasKey $v .rate) }}
{{- $rates = append $rates (dict "rate" (get $v .rate) "path" (printf "%s.%s" .task .rate)) }}
{{- end }}
{{- range $rates }}
{{- $r := float64 .rate }}
{{- if gt $r 0.0 }}
{{- if lt $r (mulf 0.1 $w (subf 1 1e-9)) }}
{{- fail (printf "%s: %v split over %d workers is %.4g per second each, below 0.1: raise it or use fewer workers" .path $r $w (divf $r $w)) }}
{{- end }}
{{- $stagger := divf $w $r }}
{{- if and (gt $d 0.0) (le $d $stagger) }}
{{- fail (printf "%s: %v split over %d workers, whose starts are spread over %vs, leaves the duration %s too short: raise the rate or the duration, or use fewer workers" .path $r $w (round $stagger 3) $v.duration) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
