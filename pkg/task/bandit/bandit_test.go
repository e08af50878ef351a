package bandit

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/experiment/experimenttest"
	"github.com/iter8-tools/iter8/pkg/stats"
)

const reward = "abn/purchase-per-user"

// release is an in-memory app release: the task's view of Helm, which
// pkg/action implements and the cluster tests exercise.
type release struct {
	state     experiment.ReleaseState
	fail      error
	sets      []map[string]int
	rollbacks int
}

func (f *release) Weights(context.Context, string, string) (experiment.ReleaseState, error) {
	return f.state, nil
}

func (f *release) SetWeights(_ context.Context, _, _ string, c experiment.WeightChange) (int, error) {
	if f.fail != nil {
		return 0, f.fail
	}
	if c.Revision != f.state.Revision {
		return 0, fmt.Errorf("revision %d, want %d", c.Revision, f.state.Revision)
	}
	w := c.Weights
	f.sets = append(f.sets, maps.Clone(w))
	f.state.Revision++
	f.state.Description, f.state.Step = c.Description, c.Step
	for i := range f.state.Versions {
		f.state.Versions[i].Weight = w[f.state.Versions[i].Name]
	}
	return f.state.Revision, nil
}

func (f *release) RollBackPending(_ context.Context, _, _ string, revision int, _ time.Duration) error {
	if !f.state.Pending || revision != f.state.Revision {
		return fmt.Errorf("revision %d pending %v, want %d pending", f.state.Revision, f.state.Pending, revision)
	}
	f.rollbacks++
	f.state.Revision++
	f.state.Pending, f.state.Status, f.state.Step = false, "deployed", ""
	return nil
}

func newRelease(w1, w2 int) *release {
	return &release{state: experiment.ReleaseState{Revision: 3, Status: "deployed", Strategy: "canary", Versions: []experiment.ReleaseVersion{
		{Name: "v1", Weight: w1, Ready: true}, {Name: "v2", Weight: w2, Ready: true},
	}}}
}

// decode decodes a bandit after a stand-in for the abn task, which gives
// the reward samples.
func decode(t *testing.T, with string, loops int) (*Task, error) {
	t.Helper()
	d, _ := experimenttest.Decoding(t, with, []string{"v1", "v2"}, nil)
	d.Loops = loops
	for _, v := range d.Versions {
		d.Metrics.Add(v, reward)
		d.Metrics.AddEvidence(v, reward, experiment.EvidenceMean)
		d.Metrics.Add(v, "abn/users")
	}
	task, errs := Decode(d)
	if len(errs) > 0 {
		return nil, errs.ToAggregate()
	}
	return task.(*Task), nil
}

// loop is one loop's evidence: P(best) of v2, v2's verdict, users per
// version.
type loop struct {
	p2      float64
	verdict experiment.Verdict
	users   int64
	n, of   int
}

func run(t *testing.T, task *Task, rel *release, l loop) (*experiment.Result, error) {
	t.Helper()
	_, plan := experimenttest.Decoding(t, "{}", []string{"v1", "v2"}, nil)
	env := experimenttest.Env(plan, nil)
	env.Kube = func() (experiment.ObjectReader, string, error) { return nil, "shop", nil }
	env.Releases = func() (experiment.Releases, error) { return rel, nil }
	r := env.Result
	// One run's loops: the same start, which the step markers carry.
	r.Loop, r.Loops, r.StartTime = l.n, l.of, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for _, v := range []string{"v1", "v2"} {
		r.SetSample(v, reward, stats.MeanSample(l.users, 1, 1))
	}
	r.Rewards = []experiment.RewardResult{{Metric: reward, ProbabilityBest: map[string]float64{"v1": 1 - l.p2, "v2": l.p2}}}
	r.Comparisons = []experiment.Comparison{{Metric: reward, Baseline: "v1", Candidate: "v2", Verdict: l.verdict,
		Sequential: &stats.Evidence{Pooling: stats.Pooled, Looks: l.n}}}
	return r, task.Run(context.Background(), env)
}

func TestRunMovesPromotesAndHolds(t *testing.T) {
	task, err := decode(t, "{release: backend, reward: "+reward+"}", 10)
	if err != nil {
		t.Fatal(err)
	}
	// P(best) 0.9: top-two's share 0.8·0.9 + 0.2·0.1 = 0.74, capped at
	// 50 + 20.
	rel := newRelease(50, 50)
	r, err := run(t, task, rel, loop{p2: 0.9, verdict: experiment.VerdictInconclusive, users: 200, n: 1, of: 10})
	if err != nil || len(rel.sets) != 1 || rel.sets[0]["v1"] != 30 || rel.sets[0]["v2"] != 70 {
		t.Fatalf("moved: %v, %v; want one upgrade to v1 30, v2 70", rel.sets, err)
	}
	if b := r.Bandit; b.Revision != 4 || b.Release != "shop/backend" || !strings.Contains(b.Reason, "v1 30, v2 70") || b.ProbabilityBest["v2"] != 0.9 {
		t.Errorf("bandit state %+v", b)
	}
	if w, _ := r.Value("v2", WeightMetric); w != 70 {
		t.Errorf("%s of v2 = %v, want 70 (what the loop history plots)", WeightMetric, w)
	}
	// Again at 30/70: 74 is within the cap.
	if _, err := run(t, task, rel, loop{p2: 0.9, users: 300, n: 2, of: 10}); err != nil || rel.sets[1]["v2"] != 74 {
		t.Errorf("second move: %v, %v; want v2 74", rel.sets, err)
	}
	// Sure and judged better: promoted, and the experiment is done.
	r, err = run(t, task, rel, loop{p2: 0.97, verdict: experiment.VerdictBetter, users: 400, n: 3, of: 10})
	if !errors.Is(err, experiment.ErrDone) || len(rel.sets) != 3 || rel.sets[2]["v2"] != 100 || rel.sets[2]["v1"] != 0 || r.Bandit.Promoted != "v2" {
		t.Errorf("promotion: %v, %v, %+v; want v2 100 and ErrDone", rel.sets, err, r.Bandit)
	}
	if !strings.Contains(err.Error(), "promoted v2: P(best) 0.970 by abn/purchase-per-user, and judged better than the baseline v1") {
		t.Errorf("promotion reason %q", err)
	}
	// Sure but not yet judged better: no promotion, weights move.
	rel = newRelease(50, 50)
	if _, err := run(t, task, rel, loop{p2: 0.99, verdict: experiment.VerdictInconclusive, users: 400, n: 3, of: 10}); err != nil || len(rel.sets) != 1 || rel.sets[0]["v2"] != 70 {
		t.Errorf("sure but inconclusive: %v, %v; want a move to v2 70, no promotion", rel.sets, err)
	}
	// An unready version gains nothing; too little evidence moves nothing.
	rel = newRelease(50, 50)
	rel.state.Versions[1].Ready = false
	r, err = run(t, task, rel, loop{p2: 0.9, users: 200, n: 1, of: 10})
	if err != nil || len(rel.sets) != 0 || !strings.Contains(r.Bandit.Reason, "weights unchanged") {
		t.Errorf("v2 unready: %v, %v, %q; want no upgrade", rel.sets, err, r.Bandit.Reason)
	}
	rel = newRelease(50, 50)
	r, err = run(t, task, rel, loop{p2: 0.9, users: 99, n: 1, of: 10})
	if err != nil || len(rel.sets) != 0 || !strings.Contains(r.Bandit.Reason, "below the 100 every version needs") {
		t.Errorf("99 users: %v, %v, %q; want no upgrade", rel.sets, err, r.Bandit.Reason)
	}
}

func TestRunStopsWithoutChanging(t *testing.T) {
	task, err := decode(t, "{release: backend, reward: "+reward+"}", 10)
	if err != nil {
		t.Fatal(err)
	}
	pending := newRelease(50, 50)
	pending.state.Pending, pending.state.Status = true, "pending-upgrade"
	renamed := newRelease(50, 50)
	renamed.state.Versions[1].Name = "v3"
	failing := newRelease(50, 50)
	failing.fail = errors.New("pre-upgrade hook failed: v2 is not ready")
	failed := newRelease(50, 50)
	failed.state.Status = "failed"
	blueGreen := newRelease(100, 0)
	blueGreen.state.Strategy = "blue-green"
	for _, tt := range []struct {
		name  string
		rel   *release
		loops int
		want  string
	}{
		{"pending", pending, 10, "release shop/backend: an operation on it is in progress (status pending-upgrade)"},
		{"failed", failed, 10, "release shop/backend is failed, not deployed: fix or roll it back"},
		{"blue-green", blueGreen, 10, `release shop/backend has strategy "blue-green": the bandit splits traffic by weight`},
		{"versions changed", renamed, 10, "release shop/backend has versions v1, v3, the experiment v1, v2: the versions changed"},
		{"upgrade failed", failing, 10, "upgrade to v1 30, v2 70: pre-upgrade hook failed"},
		{"one loop (run --loops 1)", newRelease(50, 50), 1, "the run has 1 loop: the bandit moves weights from loop to loop"},
	} {
		r, err := run(t, task, tt.rel, loop{p2: 0.9, users: 200, n: 1, of: tt.loops})
		if err == nil || !strings.Contains(err.Error(), tt.want) || len(tt.rel.sets) != 0 {
			t.Errorf("%s: %v, upgrades %v; want an error containing %q and none", tt.name, err, tt.rel.sets, tt.want)
		}
		// What the loop history keeps is the weights in force.
		if w, ok := r.Value("v2", WeightMetric); ok && w != float64(tt.rel.state.Versions[1].Weight) {
			t.Errorf("%s: %s of v2 = %v, want the weight in force, %d", tt.name, WeightMetric, w, tt.rel.state.Versions[1].Weight)
		}
	}
	// onUpgradeFailure: continue keeps the loop going.
	cont, err := decode(t, "{release: backend, reward: "+reward+", onUpgradeFailure: continue}", 10)
	if err != nil {
		t.Fatal(err)
	}
	r, err := run(t, cont, failing, loop{p2: 0.9, users: 200, n: 1, of: 10})
	if err != nil || !strings.Contains(r.Bandit.Reason, "weights unchanged: the upgrade failed: pre-upgrade hook failed") || r.Bandit.Weights["v2"] != 50 {
		t.Errorf("continue: %v, %+v", err, r.Bandit)
	}
	// A refused promotion promotes nothing and does not end the run.
	r, err = run(t, cont, failing, loop{p2: 0.99, verdict: experiment.VerdictBetter, users: 400, n: 2, of: 10})
	if err != nil || r.Bandit.Promoted != "" || r.Bandit.Weights["v2"] != 50 {
		t.Errorf("refused promotion with continue: %v, %+v; want no promotion, no end, 50/50 kept", err, r.Bandit)
	}
	// No cluster.
	_, plan := experimenttest.Decoding(t, "{}", []string{"v1", "v2"}, nil)
	if err := task.Run(context.Background(), experimenttest.Env(plan, nil)); err == nil || !strings.Contains(err.Error(), "no cluster") {
		t.Errorf("without a cluster: %v", err)
	}
}

func TestRunAtBudget(t *testing.T) {
	keep, err := decode(t, "{release: backend, reward: "+reward+"}", 10)
	if err != nil {
		t.Fatal(err)
	}
	back, err := decode(t, "{release: shop/backend, reward: "+reward+", atBudget: baseline}", 10)
	if err != nil {
		t.Fatal(err)
	}
	// keep: the last loop moves as any other (P(best) 0.6: top-two's share
	// 0.8·0.6 + 0.2·0.4 = 0.56) and leaves the weights there.
	rel := newRelease(30, 70)
	if _, err := run(t, keep, rel, loop{p2: 0.6, users: 200, n: 10, of: 10}); err != nil || len(rel.sets) != 1 || rel.sets[0]["v2"] != 56 {
		t.Errorf("keep at budget: %v, %v; want one move to v2 56", rel.sets, err)
	}
	rel = newRelease(30, 70)
	r, err := run(t, back, rel, loop{p2: 0.6, users: 200, n: 10, of: 10})
	if err != nil || len(rel.sets) != 1 || rel.sets[0]["v1"] != 100 || !strings.Contains(r.Bandit.Reason, "budget reached (loop 10 of 10) without a promotion: all traffic back to the baseline v1") {
		t.Errorf("baseline at budget: %v, %v, %+v", rel.sets, err, r.Bandit)
	}
	// A best version that is not ready is not promoted, and the budget's
	// rule still applies.
	rel = newRelease(30, 70)
	rel.state.Versions[1].Ready = false
	r, err = run(t, back, rel, loop{p2: 0.99, verdict: experiment.VerdictBetter, users: 200, n: 10, of: 10})
	if err != nil || len(rel.sets) != 1 || rel.sets[0]["v1"] != 100 || r.Bandit.Promoted != "" {
		t.Errorf("unready winner at budget: %v, %v, %+v; want all traffic back to v1", rel.sets, err, r.Bandit)
	}
}

func TestRunPromotesTheBaselineAndExplains(t *testing.T) {
	task, err := decode(t, "{release: backend, reward: "+reward+"}", 10)
	if err != nil {
		t.Fatal(err)
	}
	rel := newRelease(50, 50)
	r, err := run(t, task, rel, loop{p2: 0.02, verdict: experiment.VerdictWorse, users: 400, n: 4, of: 10})
	if !errors.Is(err, experiment.ErrDone) || len(rel.sets) != 1 || rel.sets[0]["v1"] != 100 || r.Bandit.Promoted != "v1" ||
		!strings.Contains(err.Error(), "every candidate judged worse than the baseline") {
		t.Errorf("baseline promotion: %v, %v, %+v", rel.sets, err, r.Bandit)
	}
	// Sure, but the verdict is not sequential: no promotion, and the
	// reason says what is missing.
	rel = newRelease(50, 50)
	_, plan := experimenttest.Decoding(t, "{}", []string{"v1", "v2"}, nil)
	env := experimenttest.Env(plan, nil)
	env.Kube = func() (experiment.ObjectReader, string, error) { return nil, "shop", nil }
	env.Releases = func() (experiment.Releases, error) { return rel, nil }
	env.Result.Loop, env.Result.Loops = 3, 10
	for _, v := range []string{"v1", "v2"} {
		env.Result.SetSample(v, reward, stats.MeanSample(400, 1, 1))
	}
	env.Result.Rewards = []experiment.RewardResult{{Metric: reward, ProbabilityBest: map[string]float64{"v1": 0.01, "v2": 0.99}}}
	env.Result.Comparisons = []experiment.Comparison{{Metric: reward, Baseline: "v1", Candidate: "v2", Verdict: experiment.VerdictBetter}}
	if err := task.Run(context.Background(), env); err != nil || env.Result.Bandit.Promoted != "" ||
		!strings.Contains(env.Result.Bandit.Reason, "v2 has P(best) 0.990, but no sequential comparison on abn/purchase-per-user with the baseline v1 judges it better yet") {
		t.Errorf("fixed-sample verdict: %v, %+v", err, env.Result.Bandit)
	}
	// No assess reward for the bandit's: the spec's mistake, an error.
	env.Result.Rewards = nil
	if err := task.Run(context.Background(), env); err == nil || !strings.Contains(err.Error(), "reward abn/purchase-per-user: no assess task before the bandit ranks versions by it") {
		t.Errorf("missing reward: %v", err)
	}
}

func TestDecodeRefusesBadValues(t *testing.T) {
	const p = "spec.tasks[0].with."
	for _, tt := range []struct {
		with  string
		loops int
		want  string
	}{
		{"{release: backend, reward: " + reward + "}", 1, "spec.loops: Invalid value: 1: the bandit moves weights from loop to loop"},
		{"{reward: " + reward + "}", 10, p + "release: Required value"},
		{"{release: Backend_1, reward: " + reward + "}", 10, p + `release: Invalid value: "Backend_1": a Helm release name`},
		{"{release: NS/backend, reward: " + reward + "}", 10, p + `release: Invalid value: "NS/backend": namespace:`},
		{"{release: backend}", 10, p + "reward: Required value"},
		{"{release: backend, reward: abn/users}", 10, p + `reward: Invalid value: "abn/users": no earlier task gives it a sample for version "v1"`},
		{"{release: backend, reward: " + reward + ", baseline: v9}", 10, p + `baseline: Unsupported value: "v9"`},
		{"{release: backend, reward: " + reward + ", floor: -1}", 10, p + "floor: Invalid value: -1: the weight every version keeps: 0 to 50"},
		{"{release: backend, reward: " + reward + ", floor: 10, baselineFloor: 5}", 10, p + "baselineFloor: Invalid value: 5: the weight the baseline keeps: from floor (10) to 100"},
		{"{release: backend, reward: " + reward + ", floor: 50, baselineFloor: 60, maxStep: 60}", 10, p + "baselineFloor: Invalid value: 60: with 1 other versions at floor 50, the floors make 110%"},
		{"{release: backend, reward: " + reward + ", maxStep: 0}", 10, p + "maxStep: Invalid value: 0: the most a weight rises per loop: 1 to 100"},
		{"{release: backend, reward: " + reward + ", baselineFloor: 30}", 10, p + "maxStep: Invalid value: 20: at least the floors (5, baseline 30)"},
		{"{release: backend, reward: " + reward + ", minSample: -5}", 10, p + "minSample: Invalid value: -5"},
		{"{release: backend, reward: " + reward + ", beta: 0.3}", 10, p + "beta: Invalid value: 0.3: the leader's share of top-two sampling: from 0.5"},
		{"{release: backend, reward: " + reward + ", promoteAt: 1}", 10, p + "promoteAt: Invalid value: 1: the probability of being best that promotes a version: from 0.5 to below 1"},
		{"{release: backend, reward: " + reward + ", atBudget: rollback}", 10, p + `atBudget: Unsupported value: "rollback": supported values: "keep", "baseline"`},
		{"{release: backend, reward: " + reward + ", onUpgradeFailure: retry}", 10, p + `onUpgradeFailure: Unsupported value: "retry"`},
		{"{release: backend, reward: " + reward + ", timeout: 0s}", 10, p + `timeout: Invalid value: "0s": must be above 0`},
		{"{release: backend, reward: " + reward + ", weights: {v1: 50}}", 10, p + "weights: Unsupported value: unknown field"},
	} {
		if _, err := decode(t, tt.with, tt.loops); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s (loops %d): error %v\nwant one containing %q", tt.with, tt.loops, err, tt.want)
		}
	}
}

// TestRetriedLoopMovesOnce runs a loop, then the same loop again as a
// retried pod would after dying between its upgrade and its result's
// write: the second attempt finds its upgrade in the release's description
// and moves nothing, and a retried promotion still ends the experiment.
func TestRetriedLoopMovesOnce(t *testing.T) {
	task, err := decode(t, "{release: backend, reward: "+reward+"}", 10)
	if err != nil {
		t.Fatal(err)
	}
	rel := newRelease(50, 50)
	first := loop{p2: 0.9, users: 200, n: 1, of: 10}
	if _, err := run(t, task, rel, first); err != nil || len(rel.sets) != 1 {
		t.Fatalf("first attempt: %v, %v; want one upgrade", rel.sets, err)
	}
	if want := "iter8 bandit: experiment test run 1 (started "; !strings.HasPrefix(rel.state.Description, want) || !strings.Contains(rel.state.Description, ") loop 1: weights moved") {
		t.Errorf("revision description %q, want it to start %q", rel.state.Description, want)
	}
	r, err := run(t, task, rel, first)
	if err != nil || len(rel.sets) != 1 || r.Bandit.Revision != 4 || r.Bandit.Weights["v2"] != 70 || !strings.Contains(r.Bandit.Reason, "an earlier attempt of this loop") {
		t.Fatalf("retried attempt: %v, %v, %+v; want no second upgrade, the first's weights", rel.sets, err, r.Bandit)
	}
	// The next loop moves again.
	if _, err := run(t, task, rel, loop{p2: 0.9, users: 300, n: 2, of: 10}); err != nil || len(rel.sets) != 2 {
		t.Errorf("next loop: %v, %v; want a second upgrade", rel.sets, err)
	}
	promote := loop{p2: 0.97, verdict: experiment.VerdictBetter, users: 400, n: 3, of: 10}
	if _, err := run(t, task, rel, promote); !errors.Is(err, experiment.ErrDone) || len(rel.sets) != 3 {
		t.Fatalf("promotion: %v, %v", rel.sets, err)
	}
	r, err = run(t, task, rel, promote)
	if !errors.Is(err, experiment.ErrDone) || len(rel.sets) != 3 || r.Bandit.Promoted != "v2" {
		t.Errorf("retried promotion: %v, %v, %+v; want ErrDone, v2 promoted, no upgrade", rel.sets, err, r.Bandit)
	}
}

// TestPendingUpgradeOfADeadAttempt: a loop's attempt died in the middle of
// its upgrade, leaving the release pending with this run's step label; the
// next attempt rolls it back once it is older than twice the timeout, then
// moves. A pending upgrade of anyone else is left alone.
func TestPendingUpgradeOfADeadAttempt(t *testing.T) {
	task, err := decode(t, "{release: backend, reward: "+reward+", timeout: 1s}", 10)
	if err != nil {
		t.Fatal(err)
	}
	rel := newRelease(50, 50)
	first := loop{p2: 0.9, users: 200, n: 1, of: 10}
	if _, err := run(t, task, rel, first); err != nil || len(rel.sets) != 1 {
		t.Fatalf("first move: %v, %v", rel.sets, err)
	}
	step := rel.state.Step
	if !strings.HasSuffix(step, "-1") || len(step) > 63 {
		t.Fatalf("step label %q: want this run's, loop 1, at most 63 characters", step)
	}
	// Loop 2's attempt died mid-upgrade: pending, labelled, just now
	// (Helm's pending record carries the new labels from its start).
	rel.state.Revision++
	rel.state.Pending, rel.state.Status, rel.state.Step = true, "pending-upgrade", strings.TrimSuffix(step, "1")+"2"
	rel.state.Updated = time.Now()
	start := time.Now()
	r, err := run(t, task, rel, loop{p2: 0.9, users: 300, n: 2, of: 10})
	if err != nil || rel.rollbacks != 1 || len(rel.sets) != 2 {
		t.Fatalf("retried loop 2: %v, %d rollbacks, moves %v; want the pending upgrade rolled back, then a move", err, rel.rollbacks, rel.sets)
	}
	if waited := time.Since(start); waited < 2*time.Second {
		t.Errorf("rolled back after %v: want twice the 1s timeout, in case the attempt still runs", waited)
	}
	if r.Bandit.Revision != rel.state.Revision {
		t.Errorf("bandit at revision %d, release at %d", r.Bandit.Revision, rel.state.Revision)
	}
	// Someone else's pending upgrade: refused, nothing rolled back; also
	// when it carries this run's label, which Helm copied from the
	// revision before.
	for _, label := range []string{"someone-else", rel.state.Step} {
		rel.state.Pending, rel.state.Status, rel.state.Step, rel.state.PreviousStep = true, "pending-upgrade", label, label
		rel.state.Updated = time.Now().Add(-time.Hour)
		if _, err := run(t, task, rel, loop{p2: 0.9, users: 400, n: 3, of: 10}); err == nil || !strings.Contains(err.Error(), "in progress") || rel.rollbacks != 1 {
			t.Errorf("a foreign pending upgrade labelled %s: %v, %d rollbacks; want refused, none rolled back", label, err, rel.rollbacks)
		}
	}
}
