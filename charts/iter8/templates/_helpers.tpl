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
