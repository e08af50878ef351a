{{- /*
iter8.task.bandit renders the bandit task from .Values.bandit. The checks
that span values (the floors, the step, the loops, the reward among
assess's) fail here, so that helm install refuses them before anything is
created; the run checks them again.
*/ -}}
{{- define "iter8.task.bandit" -}}
{{- $b := .Values.bandit }}
{{- if not $b.release }}
{{- fail "bandit.release: the app's release (charts/release) is required, as NAME or NAMESPACE/NAME" }}
{{- end }}
{{- if not $b.reward }}
{{- fail "bandit.reward: the metric assess ranks versions by is required, such as abn/purchase-per-user" }}
{{- end }}
{{- $tasks := .Values.tasks }}
{{- $before := list }}
{{- range $tasks }}{{ if eq . "bandit" }}{{ break }}{{ end }}{{ $before = append $before . }}{{ end }}
{{- if not (has "assess" $before) }}
{{- fail "tasks: the bandit needs an assess task before it: assess computes the P(best) it moves weights by" }}
{{- end }}
{{- $assess := .Values.assess | default dict }}
{{- $rewards := concat (dig "rewards" "max" list $assess) (dig "rewards" "min" list $assess) }}
{{- if not (has $b.reward $rewards) }}
{{- fail (printf "bandit.reward: %s is not among assess.rewards (max or min): the bandit moves weights by the P(best) that assess computes for it" $b.reward) }}
{{- end }}
{{- if lt (int .Values.loops) 2 }}
{{- fail (printf "loops: %d: the bandit moves weights from loop to loop: give at least 2 loops and an interval" (int .Values.loops)) }}
{{- end }}
{{- if not .Values.interval }}
{{- fail "interval: the bandit needs an interval between loops (such as 5m): loops back to back would move weights on the same evidence" }}
{{- end }}
{{- if lt (len .Values.versions) 2 }}
{{- fail "versions: the bandit needs at least two versions, named as the app's release names them" }}
{{- end }}
{{- $floor := 5 }}
{{- if hasKey $b "floor" }}{{ $floor = int $b.floor }}{{ end }}
{{- $base := 10 }}
{{- if hasKey $b "baselineFloor" }}{{ $base = int $b.baselineFloor }}{{ end }}
{{- $step := 20 }}
{{- if hasKey $b "maxStep" }}{{ $step = int $b.maxStep }}{{ end }}
{{- if lt $base $floor }}
{{- fail (printf "bandit.baselineFloor: %d is below floor %d: the baseline keeps at least what every version keeps" $base $floor) }}
{{- end }}
{{- $sum := add (mul (sub (len .Values.versions) 1) $floor) $base }}
{{- if gt $sum 100 }}
{{- fail (printf "bandit.floor, bandit.baselineFloor: %d other versions at %d%% and the baseline at %d%% make %d%%, more than 100" (sub (len .Values.versions) 1) $floor $base $sum) }}
{{- end }}
{{- if lt $step $base }}
{{- fail (printf "bandit.maxStep: %d is below the baseline's floor %d: a version below its floor must reach it in one step" $step $base) }}
{{- end }}
{{- if and $b.baseline (not (has $b.baseline .Values.versions)) }}
{{- fail (printf "bandit.baseline: %s is not one of versions" $b.baseline) }}
{{- end }}
{{- include "iter8.task" (dict "name" "bandit" "values" $b) -}}
{{- end }}
