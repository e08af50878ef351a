package bandit

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/iter8-tools/iter8/pkg/bandit"
	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/upgrade"
)

// Run moves the weights once, promotes, or says why it did neither; see
// the package's doc.
func (t *Task) Run(ctx context.Context, env *experiment.Env) error {
	c, err := upgrade.Target{Task: Name, Namespace: t.namespace, Release: t.release, Timeout: t.timeout}.Connect(env)
	if err != nil {
		return err
	}
	rel := c.Name
	state, weights, ready, err := c.Read(ctx, env, t.versions)
	if err != nil {
		return err
	}
	r := env.Result
	if r.Loops < 2 {
		return fmt.Errorf("bandit: the run has %d loop: the bandit moves weights from loop to loop and needs at least 2", r.Loops)
	}
	b := &experiment.Bandit{Release: rel, Revision: state.Revision, Weights: weights}
	r.Bandit = b
	defer func() {
		for _, v := range t.versions {
			r.SetMetric(v, WeightMetric, float64(b.Weights[v]), "%")
		}
	}()
	log := env.Logger()
	last := r.Loop >= r.Loops

	pBest, why, err := t.probabilities(r)
	if err != nil {
		return err
	}
	if pBest != nil {
		b.ProbabilityBest = map[string]float64{}
		for i, v := range t.versions {
			b.ProbabilityBest[v] = pBest[i]
		}
	}
	if done, ok := c.DoneEarlier(state, r); ok {
		// This loop's upgrade was made by an earlier attempt (a retried
		// pod): moving again would take two steps in one loop.
		b.Reason = done + " (the upgrade of an earlier attempt of this loop)"
		log.Info("bandit", "release", rel, "reason", b.Reason)
		if strings.HasPrefix(done, promotedPrefix) {
			for v, w := range weights {
				if w == 100 {
					b.Promoted = v
				}
			}
			return fmt.Errorf("%w: %s", experiment.ErrDone, done)
		}
		return nil
	}
	held := "" // why the evidence cannot move weights this loop
	if pBest != nil {
		better, worse := t.verdicts(r)
		w := bandit.Promote(pBest, better, worse, t.baseline, t.promoteAt)
		switch {
		case w >= 0 && ready[t.versions[w]]:
			winner := t.versions[w]
			why := fmt.Sprintf("%s%s: P(best) %s by %s, and %s", promotedPrefix, winner, prob(pBest[w]), t.reward, t.backing(w))
			applied, err := t.apply(ctx, env, c, state.Revision, upgrade.Only(t.versions, winner), why)
			if err != nil || !applied { // a refused promotion with onUpgradeFailure continue: the next loop tries again
				return err
			}
			b.Promoted = winner
			return fmt.Errorf("%w: %s", experiment.ErrDone, why)
		case w >= 0:
			held = fmt.Sprintf("%s is best with P(best) %s but not ready, so it is not promoted yet", t.versions[w], prob(pBest[w]))
		default:
			held = t.unbacked(pBest)
		}
	}
	if last && t.atBudget == AtBudgetBaseline {
		base := t.versions[t.baseline]
		back := upgrade.Only(t.versions, base)
		why := fmt.Sprintf("budget reached (loop %d of %d) without a promotion: all traffic back to the baseline %s", r.Loop, r.Loops, base)
		if maps.Equal(back, weights) {
			b.Reason = why
			return nil
		}
		_, err := t.apply(ctx, env, c, state.Revision, back, why)
		return err
	}
	if pBest == nil {
		b.Reason = "weights unchanged: " + why
		log.Info("bandit", "release", rel, "reason", b.Reason)
		return nil
	}
	// The readiness gate refuses any upgrade that leaves traffic on an
	// unready version: wait for it, or for a promotion that drains it.
	for _, v := range t.versions {
		if !ready[v] && weights[v] > 0 {
			b.Reason = fmt.Sprintf("weights unchanged: %s has weight %d and is not ready", v, weights[v])
			log.Info("bandit", "release", rel, "reason", b.Reason)
			return nil
		}
	}
	next, err := t.next(r, pBest, weights, ready)
	if err != nil {
		if !errors.Is(err, bandit.ErrTooLittleEvidence) && !errors.Is(err, bandit.ErrNoRoom) {
			return fmt.Errorf("bandit: release %s: %w", rel, err)
		}
		b.Reason = "weights unchanged: " + err.Error()
		log.Info("bandit", "release", rel, "reason", b.Reason)
		return nil
	}
	note := ""
	if held != "" {
		note = " (" + held + ")"
	}
	if maps.Equal(next, weights) {
		b.Reason = "weights unchanged: the evidence asks for the same weights, within the bounds" + note
		log.Info("bandit", "release", rel, "reason", b.Reason)
		return nil
	}
	_, err = t.apply(ctx, env, c, state.Revision, next, "weights moved toward the evidence: "+upgrade.Format(t.versions, next)+note)
	return err
}

// unbacked says why the most likely best version is not promoted although
// P(best) reached promoteAt, or "" when it did not.
func (t *Task) unbacked(pBest []float64) string {
	lead := 0
	for i, p := range pBest {
		if p > pBest[lead] {
			lead = i
		}
	}
	if !(pBest[lead] >= t.promoteAt) {
		return ""
	}
	if lead == t.baseline {
		return fmt.Sprintf("the baseline %s has P(best) %s, but not every candidate is judged worse by a sequential comparison on %s", t.versions[lead], prob(pBest[lead]), t.reward)
	}
	return fmt.Sprintf("%s has P(best) %s, but no sequential comparison on %s with the baseline %s judges it better yet", t.versions[lead], prob(pBest[lead]), t.reward, t.versions[t.baseline])
}

// probabilities are the reward's P(best) per version in t.versions order,
// or nil and why there are none yet; a reward that no assess task ranks
// by is the spec's mistake, an error.
func (t *Task) probabilities(r *experiment.Result) ([]float64, string, error) {
	for _, rw := range r.Rewards {
		if rw.Metric != t.reward {
			continue
		}
		if rw.ProbabilityBest == nil {
			return nil, "no probability of being best by " + t.reward + " yet: " + rw.Reason, nil
		}
		p := make([]float64, len(t.versions))
		for i, v := range t.versions {
			p[i] = rw.ProbabilityBest[v]
		}
		return p, "", nil
	}
	return nil, "", fmt.Errorf("bandit: reward %s: no assess task before the bandit ranks versions by it: add it to that task's rewards (max or min)", t.reward)
}

// verdicts are, per version, whether its sequential comparison with the
// baseline on the reward says better or worse.
func (t *Task) verdicts(r *experiment.Result) (better, worse []bool) {
	better, worse = make([]bool, len(t.versions)), make([]bool, len(t.versions))
	for _, c := range r.Comparisons {
		i := slices.Index(t.versions, c.Candidate)
		// Only sequential verdicts: a fixed-sample test looked at every
		// loop calls identical versions different far too often.
		if c.Metric != t.reward || c.Baseline != t.versions[t.baseline] || i < 0 || c.Sequential == nil {
			continue
		}
		better[i], worse[i] = c.Verdict == experiment.VerdictBetter, c.Verdict == experiment.VerdictWorse
	}
	return better, worse
}

// backing says what backs promoting version w.
func (t *Task) backing(w int) string {
	if w == t.baseline {
		return "every candidate judged worse than the baseline"
	}
	return "judged better than the baseline " + t.versions[t.baseline]
}

// next computes the weights the evidence asks for within the policy.
func (t *Task) next(r *experiment.Result, pBest []float64, weights map[string]int, ready map[string]bool) (map[string]int, error) {
	shares, err := bandit.TopTwo(pBest, t.beta)
	if err != nil {
		return nil, err
	}
	steps := make([]bandit.Step, len(t.versions))
	for i, v := range t.versions {
		s, _ := r.Sample(v, t.reward)
		steps[i] = bandit.Step{Weight: weights[v], Share: shares[i], Sample: s.N(), Hold: !ready[v]}
	}
	w, err := t.policy.Next(steps, t.baseline)
	if err != nil {
		return nil, err
	}
	out := make(map[string]int, len(w))
	for i, v := range t.versions {
		out[v] = w[i]
	}
	return out, nil
}

// apply upgrades the release to weights, recording why, and tells whether
// it did; a failure fails the loop unless onUpgradeFailure is continue.
func (t *Task) apply(ctx context.Context, env *experiment.Env, c *upgrade.Conn, revision int, weights map[string]int, why string) (bool, error) {
	b, log := env.Result.Bandit, env.Logger()
	rev, after, err := c.SetOrAfter(ctx, env, revision, weights, why)
	if err != nil {
		b.Reason = "weights unchanged: the upgrade failed: " + err.Error()
		if after != nil {
			b.Revision, b.Weights = rev, after
		}
		if t.onFailure == OnFailureContinue {
			log.Warn("bandit", "release", b.Release, "reason", b.Reason)
			return false, nil
		}
		return false, fmt.Errorf("bandit: release %s: upgrade to %s: %w", b.Release, upgrade.Format(t.versions, weights), err)
	}
	b.Revision, b.Weights, b.Reason = rev, weights, why
	log.Info("bandit", "release", b.Release, "revision", rev, "reason", why)
	return true, nil
}

// promotedPrefix starts the reason of a promotion.
const promotedPrefix = "promoted "

func prob(p float64) string { return strconv.FormatFloat(p, 'f', 3, 64) }
