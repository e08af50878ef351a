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
	"github.com/iter8-tools/iter8/pkg/route"
	"github.com/iter8-tools/iter8/pkg/upgrade"
)

// ErrRolledBack is wrapped by the error of the loop that rolls back: the
// rollout failed, and the run stops with the weights from before it.
var ErrRolledBack = errors.New("rolled back")

// Run takes one step, ends the rollout or says why it did neither; see the
// package's doc.
func (t *Task) Run(ctx context.Context, env *experiment.Env) error {
	c, err := upgrade.Target{Task: Name, Namespace: t.namespace, Release: t.release, Timeout: t.timeout}.Connect(env)
	if err != nil {
		return err
	}
	r := env.Result
	if ro := r.Rollout; ro != nil && ro.Outcome != "" {
		// An earlier loop ended the rollout (a run that goes on after a
		// failed loop, failedLoops continue): never start it again.
		return fmt.Errorf("%w: the rollout ended in an earlier loop: %s", experiment.ErrDone, ro.Outcome)
	}
	state, err := c.State(ctx, env)
	if err != nil {
		return err
	}
	if err := t.checkState(c, state); err != nil {
		return err
	}
	weights, ready, err := upgrade.Percentages(state)
	if err != nil {
		return fmt.Errorf("rollout: release %s: %w", c.Name, err)
	}
	ro := r.Rollout
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
		if next := env.NextLoopAt; ro.Outcome == "" && !next.IsZero() {
			ro.NextStepAt = &next
		}
	}()

	if done, ok := c.DoneEarlier(state, r); ok {
		// This loop's upgrade was made by an earlier attempt (a retried
		// pod): upgrading again would take two steps in one loop.
		ro.Reason = done + " (the upgrade of an earlier attempt of this loop)"
		env.Logger().Info("rollout", "release", c.Name, "reason", ro.Reason)
		if strings.HasPrefix(done, RolledBackPrefix) {
			ro.Outcome = experiment.RolloutRolledBack
			return fmt.Errorf("rollout: release %s: %w: %s", c.Name, ErrRolledBack, strings.TrimPrefix(done, RolledBackPrefix))
		}
		if strings.HasPrefix(done, pausedPrefix) {
			if ro.PausedSince == nil {
				now := time.Now()
				ro.PausedSince = &now
			}
		} else {
			ro.Step = t.stepOf(weights[t.candidate])
		}
		return nil
	}

	if !ready[t.candidate] {
		// Before the analysis: an unready candidate's failures are what
		// the pause and its deadline are for.
		return t.pause(ctx, env, c, state, weights)
	}
	for _, v := range t.versions {
		if !ready[v] && weights[v] > 0 {
			// The readiness gate refuses any upgrade that leaves traffic on
			// an unready version.
			ro.Reason = fmt.Sprintf("weights unchanged: %s has weight %d and is not ready", v, weights[v])
			env.Logger().Info("rollout", "release", c.Name, "reason", ro.Reason)
			return nil
		}
	}
	cur := weights[t.candidate]
	started := cur > 0 || ro.Step >= 0
	verdict, err := t.analysis(r, started)
	if err != nil {
		return err
	}
	ro.Verdict = cmp.Or(verdict, "passed")
	switch {
	case verdict != "" && !started:
		return t.rollBack(ctx, env, c, state.Revision, weights, "the analysis of "+t.candidate+" failed before its first step, so it gets no traffic: "+verdict)
	case verdict != "":
		return t.rollBack(ctx, env, c, state.Revision, weights, "the analysis of "+t.candidate+" failed: "+verdict)
	}
	if ro.PausedSince != nil {
		// Ready again: back to the step it was at before the pause.
		ro.PausedSince = nil
		step := max(ro.Step, 0)
		ro.Step = step
		w := t.split(ro.From, t.steps[step])
		return t.apply(ctx, env, c, state.Revision, w, fmt.Sprintf("resumed: %s ready again, back at step %d of %d (%s)", t.candidate, step+1, len(t.steps), upgrade.Format(t.versions, w)))
	}
	if cur == 100 {
		ro.Outcome, ro.Reason = experiment.RolloutPromoted, fmt.Sprintf("%s at 100%% after %d steps, the analysis passed", t.candidate, len(t.steps))
		env.Logger().Info("rollout", "release", c.Name, "reason", ro.Reason)
		return fmt.Errorf("%w: %s %s", experiment.ErrDone, c.Name, ro.Reason)
	}
	if r.Loop >= r.Loops {
		return t.rollBack(ctx, env, c, state.Revision, weights, fmt.Sprintf("out of loops (%d) with %s at %d%%, short of 100%%", r.Loops, t.candidate, cur))
	}
	next := t.nextStep(cur)
	w := t.split(ro.From, t.steps[next])
	ro.Step = next
	return t.apply(ctx, env, c, state.Revision, w, fmt.Sprintf("step %d of %d: %s (the analysis passed)", next+1, len(t.steps), upgrade.Format(t.versions, w)))
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

// rollBack restores the weights from before the rollout and ends it.
func (t *Task) rollBack(ctx context.Context, env *experiment.Env, c *upgrade.Conn, revision int, weights map[string]int, why string) error {
	ro := env.Result.Rollout
	if !maps.Equal(weights, ro.From) {
		if err := t.apply(ctx, env, c, revision, ro.From, RolledBackPrefix+why); err != nil {
			return err
		}
	}
	ro.Outcome, ro.Reason = experiment.RolloutRolledBack, RolledBackPrefix+why
	env.Logger().Warn("rollout", "release", c.Name, "reason", ro.Reason)
	return fmt.Errorf("rollout: release %s: %w: %s", c.Name, ErrRolledBack, why)
}

// apply upgrades the release to weights, recording why.
func (t *Task) apply(ctx context.Context, env *experiment.Env, c *upgrade.Conn, revision int, weights map[string]int, why string) error {
	ro := env.Result.Rollout
	rev, err := c.Set(ctx, env, revision, weights, why)
	if err != nil {
		ro.Reason = "weights unchanged: the upgrade failed: " + err.Error()
		// Helm rolled it back to a new revision: record where it is.
		if now, rerr := c.Releases.Weights(ctx, c.Namespace, c.Release); rerr == nil {
			ro.Revision = now.Revision
			if w, _, perr := upgrade.Percentages(now); perr == nil {
				ro.Weights = w
			}
		}
		return fmt.Errorf("rollout: release %s: upgrade to %s: %w", c.Name, upgrade.Format(t.versions, weights), err)
	}
	ro.Revision, ro.Weights, ro.Reason = rev, weights, why
	env.Logger().Info("rollout", "release", c.Name, "revision", rev, "reason", why)
	return nil
}

// analysis is why the loop's analysis of the candidate failed, or "" when
// it passed: an SLO of the candidate not met, or a sequential comparison
// with the baseline that says worse. Once the rollout has started, a loop
// without any of them has no analysis: an error, since a rollout must not
// advance blind. Before the first step only what was measured counts:
// metrics of real traffic (Prometheus) have no values for a candidate
// without traffic, while load sent to each version directly finds a bad
// candidate before any user reaches it.
func (t *Task) analysis(r *experiment.Result, started bool) (string, error) {
	var failed []string
	checks := 0
	for _, s := range r.SLOs {
		if s.Version != t.candidate || (!started && s.Value == nil) {
			continue
		}
		checks++
		if !s.Satisfied {
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
	if checks == 0 && started {
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

// checkState refuses a release that an operation holds, that is not
// deployed, that does not split traffic by weight, or whose versions are
// not the experiment's: the rollout then stops and changes nothing.
func (t *Task) checkState(c *upgrade.Conn, s experiment.ReleaseState) error {
	if err := c.CheckDeployed(s); err != nil {
		return err
	}
	if s.Strategy != string(route.Canary) && s.Strategy != string(route.None) {
		return fmt.Errorf("rollout: release %s has strategy %q: a rollout splits traffic by weight, which needs strategy canary (or none)", c.Name, s.Strategy)
	}
	names := make([]string, len(s.Versions))
	for i, v := range s.Versions {
		names[i] = v.Name
	}
	if !slices.Equal(slices.Sorted(slices.Values(names)), slices.Sorted(slices.Values(t.versions))) {
		return fmt.Errorf("rollout: release %s has versions %s, the experiment %s: the rollout stops and changes nothing",
			c.Name, strings.Join(names, ", "), strings.Join(t.versions, ", "))
	}
	return nil
}

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
