{{- /*
iter8.task.rollout renders the rollout task from .Values.rollout. The checks
that span values (the steps, the loops, an assess task before it, the
versions) fail here, so that helm install refuses them before anything is
created; the run checks them again.
*/ -}}
{{- define "iter8.task.rollout" -}}
{{- $r := .Values.rollout }}
{{- if not $r.release }}
{{- fail "rollout.release: the app's release (charts/release) is required, as NAME or NAMESPACE/NAME" }}
{{- end }}
{{- $before := list }}
{{- range .Values.tasks }}{{ if eq . "rollout" }}{{ break }}{{ end }}{{ $before = append $before . }}{{ end }}
{{- if not (has "assess" $before) }}
{{- fail "tasks: the rollout needs an assess task before it: each step waits for the candidate's SLOs or sequential comparisons to pass" }}
{{- end }}
{{- if lt (len .Values.versions) 2 }}
{{- fail "versions: the rollout needs at least two versions, named as the app's release names them" }}
{{- end }}
{{- $candidate := $r.candidate | default (last .Values.versions) }}
{{- $baseline := $r.baseline | default (first .Values.versions) }}
{{- if not (has $candidate .Values.versions) }}
{{- fail (printf "rollout.candidate: %s is not one of versions" $candidate) }}
{{- end }}
{{- if not (has $baseline .Values.versions) }}
{{- fail (printf "rollout.baseline: %s is not one of versions" $baseline) }}
{{- end }}
{{- if eq $candidate $baseline }}
{{- fail (printf "rollout.candidate: %s is the baseline: roll out another version" $candidate) }}
{{- end }}
{{- $steps := $r.steps | default (list 10 25 50 100) }}
{{- $last := 0 }}
{{- range $i, $s := $steps }}
{{- if le (int $s) $last }}
{{- fail (printf "rollout.steps[%d]: %d: the candidate's weights must rise at every step, such as [10, 25, 50, 100]" $i (int $s)) }}
{{- end }}
{{- $last = int $s }}
{{- end }}
{{- if ne $last 100 }}
{{- fail (printf "rollout.steps: the last step is %d: the last must be 100" $last) }}
{{- end }}
{{- if lt (int .Values.loops) (add (len $steps) 1) }}
{{- fail (printf "loops: %d: the rollout takes a step per loop and needs a loop to analyse the last: give at least %d loops (steps + 1) and an interval" (int .Values.loops) (add (len $steps) 1)) }}
{{- end }}
{{- if not .Values.interval }}
{{- fail "interval: the rollout needs an interval between loops (such as 5m): each step's analysis is one interval's load" }}
{{- end }}
{{- include "iter8.task" (dict "name" "rollout" "values" $r) -}}
{{- end }}
