package rollout

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/upgrade"
)

// ErrRolledBack is wrapped by the error of the loop that rolls back: the
// rollout failed, and the run stops (experiment.ErrStopRun, whatever
// failedLoops says) with the weights from before it.
var ErrRolledBack = errors.New("rolled back")

// Run takes one step, ends the rollout or says why it did neither; see the
// package's doc.
func (t *Task) Run(ctx context.Context, env *experiment.Env) (err error) {
	c, err := upgrade.Target{Task: Name, Namespace: t.namespace, Release: t.release, Timeout: t.timeout}.Connect(env)
	if err != nil {
		return err
	}
	r := env.Result
	if ro := r.Rollout; ro != nil && ro.Outcome != "" {
		// An earlier loop ended the rollout: never start it again.
		return fmt.Errorf("rollout: %w: the rollout ended in an earlier loop: %s", experiment.ErrStopRun, ro.Outcome)
	}
	state, weights, ready, err := c.Read(ctx, env, t.versions)
	if err != nil {
		return err
	}
	ro := r.Rollout
	if ro != nil && !c.Ours(state, r, ro.Revision) {
		return fmt.Errorf("rollout: release %s: %w: its revision %d (%q) is not the rollout's: the release changed outside it, so the rollout stops and changes nothing",
			c.Name, experiment.ErrStopRun, state.Revision, state.Description)
	}
	if ro == nil {
		// The first loop of this run. A rollback gives the candidate's
		// share to the others in their ratio: the weights now when the
		// rollout starts from 0, those from before it when a new run goes
		// on from the step the route is at.
		ro = &experiment.Rollout{Release: c.Name, Candidate: t.candidate, Steps: t.steps, From: t.before(weights),
			Step: t.stepOf(weights[t.candidate])}
		r.Rollout = ro
	}
	ro.Revision, ro.Weights, ro.NextStepAt = state.Revision, weights, nil
	defer func() {
		r.SetMetric(t.candidate, WeightMetric, float64(ro.Weights[t.candidate]), "%")
		if next := env.NextLoopAt; err == nil && ro.Outcome == "" && !next.IsZero() {
			ro.NextStepAt = &next
		}
	}()

	if done, ok := c.DoneEarlier(state, r); ok {
		return t.doneEarlier(env, c, state, done)
	}
	last := r.Loop >= r.Loops
	cur := weights[t.candidate]
	if !ready[t.candidate] {
		if last {
			return t.rollBack(ctx, env, c, state.Revision, weights, fmt.Sprintf("out of loops (%d) with %s not ready", r.Loops, t.candidate))
		}
		// Before the analysis: an unready candidate's failures are what
		// the pause and its deadline are for.
		return t.pause(ctx, env, c, state, weights)
	}
	for _, v := range t.versions {
		if !ready[v] && weights[v] > 0 {
			if last {
				return t.rollBack(ctx, env, c, state.Revision, weights, fmt.Sprintf("out of loops (%d) with %s, which has weight %d, not ready", r.Loops, v, weights[v]))
			}
			// The readiness gate refuses any upgrade that leaves traffic on
			// an unready version.
			ro.Reason = fmt.Sprintf("weights unchanged: %s has weight %d and is not ready", v, weights[v])
			env.Logger().Info("rollout", "release", c.Name, "reason", ro.Reason)
			return nil
		}
	}
	// A candidate without traffic (before its first step, or paused) has
	// no values from metrics of real traffic: only measured ones count.
	verdict, err := t.analysis(r, cur > 0)
	if err != nil {
		return err
	}
	ro.Verdict = cmp.Or(verdict, "passed")
	watchPaused := ro.Step >= 0 && cur == 0 && strings.Contains(state.Description, "(watch): "+pausedPrefix)
	paused := ro.PausedSince != nil || watchPaused
	switch {
	case verdict != "" && ro.Step < 0:
		return t.rollBack(ctx, env, c, state.Revision, weights, "the analysis of "+t.candidate+" failed before its first step, so it gets no traffic: "+verdict)
	case verdict != "":
		return t.rollBack(ctx, env, c, state.Revision, weights, "the analysis of "+t.candidate+" failed: "+verdict)
	case paused && last:
		return t.rollBack(ctx, env, c, state.Revision, weights, fmt.Sprintf("out of loops (%d) with %s paused", r.Loops, t.candidate))
	case paused:
		// Ready again: back to the step it was at before the pause.
		ro.PausedSince = nil
		ro.Step = max(ro.Step, 0)
		w := t.split(ro.From, t.steps[ro.Step])
		return t.apply(ctx, env, c, state.Revision, w, fmt.Sprintf("resumed: %s ready again, back at step %d of %d (%s)", t.candidate, ro.Step+1, len(t.steps), upgrade.Format(t.versions, w)))
	case cur == 100:
		ro.Outcome, ro.Reason = experiment.RolloutPromoted, fmt.Sprintf("%s at 100%% after %d steps, the analysis passed", t.candidate, len(t.steps))
		env.Logger().Info("rollout", "release", c.Name, "reason", ro.Reason)
		return fmt.Errorf("%w: %s %s", experiment.ErrDone, c.Name, ro.Reason)
	case last:
		return t.rollBack(ctx, env, c, state.Revision, weights, fmt.Sprintf("out of loops (%d) with %s at %d%%, short of 100%%", r.Loops, t.candidate, cur))
	}
	next := t.nextStep(cur)
	w := t.split(ro.From, t.steps[next])
	ro.Step = next
	return t.apply(ctx, env, c, state.Revision, w, fmt.Sprintf("step %d of %d: %s (the analysis passed)", next+1, len(t.steps), upgrade.Format(t.versions, w)))
}

// doneEarlier takes up this loop's upgrade that an earlier attempt of the
// loop (a retried pod) made: upgrading again would take two steps in one
// loop. The stored result is from before that attempt's task ran, so the
// state is set from what the upgrade did.
func (t *Task) doneEarlier(env *experiment.Env, c *upgrade.Conn, state experiment.ReleaseState, done string) error {
	ro := env.Result.Rollout
	ro.Reason = done + " (the upgrade of an earlier attempt of this loop)"
	env.Logger().Info("rollout", "release", c.Name, "reason", ro.Reason)
	switch {
	case strings.HasPrefix(done, RolledBackPrefix):
		ro.Outcome, ro.PausedSince = experiment.RolloutRolledBack, nil
		return fmt.Errorf("rollout: release %s: %w: %w: %s", c.Name, experiment.ErrStopRun, ErrRolledBack, strings.TrimPrefix(done, RolledBackPrefix))
	case strings.HasPrefix(done, pausedPrefix):
		if ro.PausedSince == nil {
			at := state.Updated
			ro.PausedSince = &at
		}
	default:
		ro.PausedSince, ro.Step = nil, t.stepOf(ro.Weights[t.candidate])
	}
	return nil
}

// RunFailed implements experiment.FailureHandler: a run that a failure
// ends (a task before the rollout that failed, an upgrade refused, SLOs
// not met with failOnSLOs) must not leave the candidate's traffic where
// an unfinished rollout put it, so the weights from before the rollout
// are put back.
func (t *Task) RunFailed(ctx context.Context, env *experiment.Env, failure error) {
	ro := env.Result.Rollout
	if ro == nil || ro.Outcome != "" {
		return
	}
	log := env.Logger()
	c, err := upgrade.Target{Task: Name, Namespace: t.namespace, Release: t.release, Timeout: t.timeout}.Connect(env)
	if err != nil {
		log.Error("rollout: the run failed and the weights from before the rollout could not be put back", "error", err.Error())
		return
	}
	state, weights, _, err := c.Read(ctx, env, t.versions)
	if err == nil && !c.Ours(state, env.Result, ro.Revision) {
		err = fmt.Errorf("its revision %d (%q) is not the rollout's: the release changed outside it", state.Revision, state.Description)
	}
	if err != nil {
		log.Error("rollout: the run failed and the weights from before the rollout were not put back", "release", c.Name, "error", err.Error())
		return
	}
	why := RolledBackPrefix + "the run failed: " + failure.Error()
	if !maps.Equal(weights, ro.From) {
		rev, err := c.SetMarked(ctx, c.Marks(env.Result, "after a failure", "f"), state.Revision, ro.From, why)
		if err != nil {
			log.Error("rollout: the run failed and the weights from before the rollout could not be put back", "release", c.Name, "error", err.Error())
			return
		}
		ro.Revision, ro.Weights = rev, ro.From
	}
	ro.Outcome, ro.Reason, ro.PausedSince, ro.NextStepAt = experiment.RolloutRolledBack, why, nil, nil
	log.Warn("rollout", "release", c.Name, "reason", why)
}

// watchEvery is how often the watch between loops reads the release.
var watchEvery = time.Second

// Watch implements experiment.Watcher: between the task's runs, every
// watchEvery, it reads the release, and when the candidate has weight and
// is not ready it takes the weight away at once (the readiness gate allows
// it), rather than at the end of the next loop. The next run sees the
// pause and goes on with it. The runner never runs the watch beside the
// task's own run, so the two upgrades never contend for Helm's release
// lock; a watch cancelled in the middle of its upgrade finishes it.
func (t *Task) Watch(env *experiment.Env) func(context.Context) {
	ro := env.Result.Rollout
	if ro == nil || ro.Outcome != "" {
		return func(context.Context) {}
	}
	c, err := upgrade.Target{Task: Name, Namespace: t.namespace, Release: t.release, Timeout: t.timeout}.Connect(env)
	if err != nil {
		return func(context.Context) {}
	}
	marks, zero, log := c.Marks(env.Result, "watch", "w"), t.split(ro.From, 0), env.Logger()
	return func(ctx context.Context) {
		wait := watchEvery
		timer := time.NewTimer(wait)
		defer timer.Stop()
		failed := "" // the last failure logged, so that a lasting one is logged once
		for {
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
			// Every failed upgrade leaves revisions behind: after one, the
			// watch waits twice as long, up to a minute.
			timer.Reset(wait)
			state, err := c.Releases.Weights(ctx, c.Namespace, c.Release)
			if err != nil || state.Pending || state.Status != "deployed" {
				continue
			}
			weights, ready, err := upgrade.Percentages(state)
			if err != nil || ready[t.candidate] || weights[t.candidate] == 0 {
				continue
			}
			why := fmt.Sprintf(pausedPrefix+"%s is not ready (seen between loops), so its weight is 0 (%s) until it is ready", t.candidate, upgrade.Format(t.versions, zero))
			rev, err := c.SetMarked(ctx, marks, state.Revision, zero, why)
			if err != nil {
				wait = min(2*wait, time.Minute)
				timer.Reset(wait)
				if err.Error() != failed {
					failed = err.Error()
					log.Warn("rollout: the watch between loops could not take an unready candidate's weight away; it tries again", "release", c.Name, "error", failed, "in", wait.String())
				}
				continue
			}
			log.Info("rollout", "release", c.Name, "revision", rev, "reason", why)
		}
	}
}

// RolledBackPrefix starts the description of a rollback's revision, and
// pausedPrefix that of a pause's.
const (
	RolledBackPrefix = "rolled back: "
	pausedPrefix     = "paused: "
)

// pause takes the weight of an unready candidate away, once the pause's
// first loop; rolls back past the progress deadline.
func (t *Task) pause(ctx context.Context, env *experiment.Env, c *upgrade.Conn, state experiment.ReleaseState, weights map[string]int) error {
	ro, now := env.Result.Rollout, time.Now()
	unready := t.candidate + " is not ready"
	for _, v := range state.Versions {
		if v.Name == t.candidate && v.Reason != "" {
			unready += " (" + v.Reason + ")"
		}
	}
	if ro.PausedSince == nil {
		ro.PausedSince = &now
	} else if paused := now.Sub(*ro.PausedSince); paused > t.deadline {
		return t.rollBack(ctx, env, c, state.Revision, weights, fmt.Sprintf("%s after a pause of %v, longer than progressDeadline %v", unready, paused.Round(time.Second), t.deadline))
	}
	if weights[t.candidate] == 0 {
		ro.Reason = pausedPrefix + unready + "; it has no traffic; the rollout goes on once it is ready, or rolls back after progressDeadline " + t.deadline.String()
		env.Logger().Info("rollout", "release", c.Name, "reason", ro.Reason)
		return nil
	}
	w := t.split(ro.From, 0)
	return t.apply(ctx, env, c, state.Revision, w, fmt.Sprintf(pausedPrefix+"%s, so its weight is 0 (%s) until it is ready", unready, upgrade.Format(t.versions, w)))
}

// rollBack restores the weights from before the rollout and ends it,
// stopping the run; when the upgrade fails the run stops too, and
// RunFailed tries again.
func (t *Task) rollBack(ctx context.Context, env *experiment.Env, c *upgrade.Conn, revision int, weights map[string]int, why string) error {
	ro := env.Result.Rollout
	if !maps.Equal(weights, ro.From) {
		if err := t.apply(ctx, env, c, revision, ro.From, RolledBackPrefix+why); err != nil {
			return fmt.Errorf("%w: rolling back (%s): %w", experiment.ErrStopRun, why, err)
		}
	}
	ro.Outcome, ro.Reason, ro.PausedSince = experiment.RolloutRolledBack, RolledBackPrefix+why, nil
	env.Logger().Warn("rollout", "release", c.Name, "reason", ro.Reason)
	return fmt.Errorf("rollout: release %s: %w: %w: %s", c.Name, experiment.ErrStopRun, ErrRolledBack, why)
}

// apply upgrades the release to weights, recording why.
func (t *Task) apply(ctx context.Context, env *experiment.Env, c *upgrade.Conn, revision int, weights map[string]int, why string) error {
	ro := env.Result.Rollout
	rev, after, err := c.SetOrAfter(ctx, env, revision, weights, why)
	if err != nil {
		ro.Reason = "weights unchanged: the upgrade failed: " + err.Error()
		if after != nil {
			ro.Revision, ro.Weights = rev, after
		}
		return fmt.Errorf("rollout: release %s: upgrade to %s: %w", c.Name, upgrade.Format(t.versions, weights), err)
	}
	ro.Revision, ro.Weights, ro.Reason = rev, weights, why
	env.Logger().Info("rollout", "release", c.Name, "revision", rev, "reason", why)
	return nil
}

// analysis is why the loop's analysis of the candidate failed, or "" when
// it passed: an SLO of the candidate not met, or a sequential comparison
// with the baseline that says worse. A loop without any of them has no
// analysis: an error, since a rollout must not advance blind. For a
// candidate without traffic (before its first step, or paused) only what
// was measured counts: metrics of real traffic (Prometheus) have no
// values for it, while load sent to each version directly finds a bad
// candidate before any user reaches it.
func (t *Task) analysis(r *experiment.Result, withTraffic bool) (string, error) {
	var failed []string
	checks := 0
	for _, s := range r.SLOs {
		if s.Version != t.candidate {
			continue
		}
		checks++
		if !s.Satisfied && (withTraffic || s.Value != nil) {
			failed = append(failed, "SLO "+sloText(s))
		}
	}
	for _, comp := range r.Comparisons {
		// Only sequential verdicts: a fixed-sample test looked at every
		// loop calls identical versions different far too often.
		if comp.Candidate != t.candidate || comp.Baseline != t.baseline || comp.Sequential == nil {
			continue
		}
		checks++
		if comp.Verdict == experiment.VerdictWorse {
			failed = append(failed, fmt.Sprintf("%s worse than the baseline %s", comp.Metric, t.baseline))
		}
	}
	if checks == 0 {
		return "", fmt.Errorf("rollout: no analysis of %s in this loop: an assess task before the rollout must give it SLOs or sequential comparisons with the baseline %s; the weights are left as they are", t.candidate, t.baseline)
	}
	return strings.Join(failed, "; "), nil
}

// sloText says what an SLO verdict found: "http/error-rate 0.2 above 0.01".
func sloText(s experiment.SLOVerdict) string {
	switch {
	case s.Value == nil:
		return s.Metric + ": " + cmp.Or(s.Reason, "no value")
	case s.Upper != nil && *s.Value > *s.Upper:
		return fmt.Sprintf("%s %s above %s", s.Metric, num(*s.Value), num(*s.Upper))
	case s.Lower != nil && *s.Value < *s.Lower:
		return fmt.Sprintf("%s %s below %s", s.Metric, num(*s.Value), num(*s.Lower))
	}
	return s.Metric + " " + num(*s.Value) + " not met"
}

func num(f float64) string { return strconv.FormatFloat(f, 'g', 4, 64) }

// stepOf is the index of the last step at or below the candidate's weight
// w; -1 below the first.
func (t *Task) stepOf(w int) int {
	i := -1
	for j, s := range t.steps {
		if s <= w {
			i = j
		}
	}
	return i
}

// nextStep is the index of the first step above w (w below 100).
func (t *Task) nextStep(w int) int {
	for j, s := range t.steps {
		if s > w {
			return j
		}
	}
	return len(t.steps) - 1
}

// before are the weights without the candidate: its share goes to the
// other versions in their ratio.
func (t *Task) before(weights map[string]int) map[string]int {
	return t.split(weights, 0)
}

// split gives the candidate weight w and the other versions the rest in
// their ratio in from (to the baseline alone when they have none), in
// whole percentages that sum to 100 (largest remainders).
func (t *Task) split(from map[string]int, w int) map[string]int {
	out := map[string]int{t.candidate: w}
	others, sum := []string{}, 0
	for _, v := range t.versions {
		if v != t.candidate {
			others = append(others, v)
			sum += from[v]
		}
	}
	rest := 100 - w
	if sum == 0 {
		for _, v := range others {
			out[v] = 0
		}
		out[t.baseline] = rest
		return out
	}
	type share struct {
		v   string
		rem int
	}
	given, shares := 0, make([]share, len(others))
	for i, v := range others {
		out[v] = rest * from[v] / sum
		given += out[v]
		shares[i] = share{v, rest * from[v] % sum}
	}
	slices.SortStableFunc(shares, func(a, b share) int { return b.rem - a.rem })
	for i := 0; given < rest; i++ {
		out[shares[i].v]++
		given++
	}
	return out
}
