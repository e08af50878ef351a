package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/experiment/experimenttest"
	"github.com/iter8-tools/iter8/pkg/stats"
)

// release is an in-memory app release: the task's view of Helm, which
// pkg/action implements and the cluster tests exercise.
type release struct {
	// mu guards everything against a watch between loops.
	mu    sync.Mutex
	state experiment.ReleaseState
	fail  error
	sets  []map[string]int
}

func (f *release) Weights(context.Context, string, string) (experiment.ReleaseState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.state
	s.Versions = append([]experiment.ReleaseVersion(nil), f.state.Versions...)
	return s, nil
}

func (f *release) SetWeights(_ context.Context, _, _ string, c experiment.WeightChange) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return 0, f.fail
	}
	if c.Revision != f.state.Revision {
		return 0, fmt.Errorf("revision %d, want %d", c.Revision, f.state.Revision)
	}
	f.sets = append(f.sets, maps.Clone(c.Weights))
	f.state.Revision++
	f.state.Description, f.state.Step = c.Description, c.Step
	for i := range f.state.Versions {
		f.state.Versions[i].Weight = c.Weights[f.state.Versions[i].Name]
	}
	return f.state.Revision, nil
}

func (f *release) RollBackPending(context.Context, string, string, int, time.Duration) error {
	return errors.New("not pending")
}

func (f *release) weight(v string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, x := range f.state.Versions {
		if x.Name == v {
			return x.Weight
		}
	}
	return -1
}

func (f *release) setReady(v string, ready bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.state.Versions {
		if f.state.Versions[i].Name == v {
			f.state.Versions[i].Ready = ready
			f.state.Versions[i].Reason = map[bool]string{false: "Deployment has 0 of 1 pods available"}[ready]
		}
	}
}

func newRelease(weights ...int) *release {
	rel := &release{state: experiment.ReleaseState{Revision: 3, Status: "deployed", Strategy: "canary"}}
	for i, w := range weights {
		rel.state.Versions = append(rel.state.Versions, experiment.ReleaseVersion{Name: fmt.Sprintf("v%d", i+1), Weight: w, Ready: true})
	}
	return rel
}

func decode(t *testing.T, with string, versions []string, loops int) (*Task, error) {
	t.Helper()
	d, _ := experimenttest.Decoding(t, with, versions, nil)
	d.Loops, d.Interval = loops, time.Minute
	if loops < 0 { // no interval
		d.Loops, d.Interval = -loops, 0
	}
	task, errs := Decode(d)
	if len(errs) > 0 {
		return nil, errs.ToAggregate()
	}
	return task.(*Task), nil
}

// run is one experiment run's loops against rel.
type run struct {
	t    *testing.T
	task *Task
	rel  *release
	r    *experiment.Result
	env  *experiment.Env
}

func newRun(t *testing.T, task *Task, rel *release, loops int) *run {
	_, plan := experimenttest.Decoding(t, "{}", task.versions, nil)
	env := experimenttest.Env(plan, nil)
	env.Kube = func() (experiment.ObjectReader, string, error) { return nil, "shop", nil }
	env.Releases = func() (experiment.Releases, error) { return rel, nil }
	env.Result.Loops, env.Result.StartTime = loops, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	return &run{t: t, task: task, rel: rel, r: env.Result, env: env}
}

// start decodes a rollout of v2 over v1 and v2 with the with block and
// loops, for a release at v1 100, v2 0.
func start(t *testing.T, with string, loops int) (*release, *run) {
	t.Helper()
	task, err := decode(t, with, []string{"v1", "v2"}, loops)
	if err != nil {
		t.Fatal(err)
	}
	rel := newRelease(100, 0)
	return rel, newRun(t, task, rel, loops)
}

// analysis is one loop's findings on the candidate v2.
type analysis struct {
	errorRate float64 // SLO: at most 0.01
	verdict   experiment.Verdict
	// fixed makes the comparison a fixed-sample one, which the rollout
	// ignores.
	fixed bool
	none  bool // no SLO and no comparison
}

var pass = analysis{verdict: experiment.VerdictInconclusive}

// loop runs the next loop's rollout after an assess that found a.
func (x *run) loop(a analysis) error {
	x.t.Helper()
	r := x.r
	r.Loop++
	r.SLOs, r.Comparisons = nil, nil
	if !a.none {
		upper, v := 0.01, a.errorRate
		r.SLOs = []experiment.SLOVerdict{
			{Metric: "http/error-rate", Version: "v1", Upper: &upper, Value: new(0.0), Satisfied: true},
			{Metric: "http/error-rate", Version: "v2", Upper: &upper, Value: &v, Satisfied: v <= upper},
		}
		c := experiment.Comparison{Metric: "http/latency-mean", Baseline: "v1", Candidate: "v2", Verdict: a.verdict}
		if !a.fixed {
			c.Sequential = &stats.Evidence{Pooling: stats.Pooled, Looks: r.Loop}
		}
		r.Comparisons = []experiment.Comparison{c}
	}
	return x.task.Run(context.Background(), x.env)
}

func (x *run) wantSets(want ...int) {
	x.t.Helper()
	var got []int
	for _, s := range x.rel.sets {
		got = append(got, s["v2"])
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		x.t.Fatalf("v2's weights set: %v, want %v (reason: %s)", got, want, x.r.Rollout.Reason)
	}
	for _, s := range x.rel.sets {
		if s["v1"]+s["v2"] != 100 {
			x.t.Fatalf("weights %v do not sum to 100", s)
		}
	}
}

func TestRolloutStepsToPromotion(t *testing.T) {
	rel, x := start(t, "{release: backend, steps: [10, 25, 50, 100]}", 6)
	next := time.Date(2026, 12, 1, 0, 1, 0, 0, time.UTC)
	x.env.NextLoopAt = next
	for i := range 4 {
		if err := x.loop(pass); err != nil {
			t.Fatalf("loop %d: %v", i+1, err)
		}
	}
	if at := x.r.Rollout.NextStepAt; at == nil || !at.Equal(next) {
		t.Errorf("next step at %v, want the next loop's start %v", at, next)
	}
	x.wantSets(10, 25, 50, 100)
	if ro := x.r.Rollout; ro.Step != 3 || ro.Verdict != "passed" || !strings.HasPrefix(ro.Reason, "step 4 of 4: v1 0, v2 100") {
		t.Errorf("rollout = %+v", ro)
	}
	if !strings.HasPrefix(rel.state.Description, "iter8 rollout: experiment test run 1 (started ") || !strings.Contains(rel.state.Description, ") loop 4: step 4 of 4") {
		t.Errorf("description %q, want the loop's marker and the step", rel.state.Description)
	}
	err := x.loop(pass)
	if !errors.Is(err, experiment.ErrDone) || x.r.Rollout.Outcome != experiment.RolloutPromoted || x.r.Rollout.NextStepAt != nil {
		t.Fatalf("loop 5 at 100%%: %v, rollout %+v; want ErrDone, promoted, no next step", err, x.r.Rollout)
	}
	x.wantSets(10, 25, 50, 100)
	if got := x.r.Versions[1].Metrics[WeightMetric].Value; got != 100 {
		t.Errorf("%s = %v, want 100", WeightMetric, got)
	}
}

func TestRolloutRollsBackOnAFailedAnalysis(t *testing.T) {
	for _, tc := range []struct {
		name string
		a    analysis
		want string
	}{
		{"SLO breached", analysis{errorRate: 0.2, verdict: experiment.VerdictInconclusive}, "SLO http/error-rate 0.2 above 0.01"},
		{"sequential comparison worse", analysis{verdict: experiment.VerdictWorse}, "http/latency-mean worse than the baseline v1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rel, x := start(t, "{release: backend}", 6)
			if err := x.loop(pass); err != nil {
				t.Fatal(err)
			}
			err := x.loop(tc.a)
			if !errors.Is(err, ErrRolledBack) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("loop 2: %v, want rolled back saying %q", err, tc.want)
			}
			x.wantSets(10, 0)
			if ro := x.r.Rollout; ro.Outcome != experiment.RolloutRolledBack || !strings.Contains(rel.state.Description, "rolled back: the analysis of v2 failed: "+tc.want) {
				t.Errorf("outcome %q, description %q", ro.Outcome, rel.state.Description)
			}
			// The rollback stops the run, even with failedLoops continue,
			// and a rollout that ended never starts again.
			if !errors.Is(err, experiment.ErrStopRun) {
				t.Errorf("the rollback's error %v does not stop the run", err)
			}
			if err := x.loop(pass); !errors.Is(err, experiment.ErrStopRun) {
				t.Errorf("loop after the rollback: %v, want the run stopped", err)
			}
			x.wantSets(10, 0)
		})
	}
}

// TestRolloutBeforeTheFirstStep: a candidate measured bad before it has
// traffic never gets any; one without values yet (no traffic for
// Prometheus to see) takes the first step.
func TestRolloutBeforeTheFirstStep(t *testing.T) {
	_, x := start(t, "{release: backend}", 6)
	err := x.loop(analysis{errorRate: 0.2, verdict: experiment.VerdictInconclusive})
	if !errors.Is(err, ErrRolledBack) || !strings.Contains(err.Error(), "failed before its first step, so it gets no traffic: SLO http/error-rate 0.2 above 0.01") {
		t.Fatalf("a bad candidate before its first step: %v", err)
	}
	x.wantSets()

	_, x = start(t, "{release: backend}", 6)
	x.r.Loop++
	upper := 0.01
	x.r.SLOs = []experiment.SLOVerdict{{Metric: "prometheus/error-rate", Version: "v2", Upper: &upper, Reason: "no data"}}
	if err := x.task.Run(context.Background(), x.env); err != nil {
		t.Fatalf("no values before the first step: %v, want the first step", err)
	}
	x.wantSets(10)
	// Once started, an SLO without a value fails.
	x.r.Loop++
	err = x.task.Run(context.Background(), x.env)
	if !errors.Is(err, ErrRolledBack) || !strings.Contains(err.Error(), "SLO prometheus/error-rate: no data") {
		t.Fatalf("started, an SLO without a value: %v, want rolled back", err)
	}
	x.wantSets(10, 0)
}

func TestRolloutIgnoresFixedSampleVerdictsAndRefusesNoAnalysis(t *testing.T) {
	_, x := start(t, "{release: backend}", 6)
	if err := x.loop(analysis{verdict: experiment.VerdictWorse, fixed: true}); err != nil {
		t.Fatalf("a fixed-sample worse: %v, want the step taken", err)
	}
	err := x.loop(analysis{none: true})
	if err == nil || !strings.Contains(err.Error(), "no analysis of v2") || errors.Is(err, ErrRolledBack) {
		t.Fatalf("no analysis: %v, want an error saying so", err)
	}
	x.wantSets(10)
}

func TestRolloutPausesForAnUnreadyCandidate(t *testing.T) {
	rel, x := start(t, "{release: backend, progressDeadline: 1h}", 10)
	for range 2 {
		if err := x.loop(pass); err != nil {
			t.Fatal(err)
		}
	}
	rel.setReady("v2", false)
	// Its failures while unready do not roll back: the pause is for them.
	if err := x.loop(analysis{errorRate: 1}); err != nil {
		t.Fatal(err)
	}
	x.wantSets(10, 25, 0)
	if ro := x.r.Rollout; ro.PausedSince == nil || !strings.Contains(ro.Reason, "v2 is not ready (Deployment has 0 of 1 pods available)") {
		t.Fatalf("rollout = %+v, want paused saying why", ro)
	}
	if err := x.loop(analysis{errorRate: 1}); err != nil {
		t.Fatal(err)
	}
	x.wantSets(10, 25, 0)
	rel.setReady("v2", true)
	if err := x.loop(pass); err != nil {
		t.Fatal(err)
	}
	x.wantSets(10, 25, 0, 25)
	if ro := x.r.Rollout; ro.PausedSince != nil || !strings.HasPrefix(ro.Reason, "resumed: v2 ready again, back at step 2 of 4") {
		t.Fatalf("rollout = %+v, want resumed at step 2", ro)
	}
	if err := x.loop(pass); err != nil {
		t.Fatal(err)
	}
	x.wantSets(10, 25, 0, 25, 50)

	// Unready past the deadline: rolled back.
	rel.setReady("v2", false)
	if err := x.loop(pass); err != nil {
		t.Fatal(err)
	}
	long := time.Now().Add(-2 * time.Hour)
	x.r.Rollout.PausedSince = &long
	err := x.loop(pass)
	if !errors.Is(err, ErrRolledBack) || !strings.Contains(err.Error(), "longer than progressDeadline 1h0m0s") {
		t.Fatalf("past the deadline: %v, want rolled back", err)
	}
	// Its weight was 0 already: the weights from before the rollout hold.
	x.wantSets(10, 25, 0, 25, 50, 0)
}

// TestRolloutWatchBetweenLoops: between loops the watch takes the weight
// of a candidate that turns unready at once; the next run, with the
// candidate ready again, goes back to the step it was at.
func TestRolloutWatchBetweenLoops(t *testing.T) {
	defer func(d time.Duration) { watchEvery = d }(watchEvery)
	watchEvery = time.Millisecond
	rel, x := start(t, "{release: backend}", 10)
	for range 2 {
		if err := x.loop(pass); err != nil {
			t.Fatal(err)
		}
	}
	watch := x.task.Watch(x.env)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { watch(ctx); close(done) }()
	rel.setReady("v2", false)
	deadline := time.Now().Add(10 * time.Second)
	for rel.weight("v2") != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the watch did not take the unready v2's weight within 10s")
		}
		time.Sleep(time.Millisecond) // polling interval
	}
	cancel()
	<-done
	x.wantSets(10, 25, 0)
	if d := rel.state.Description; !strings.Contains(d, ") loop 2 (watch): paused: v2 is not ready (seen between loops)") {
		t.Errorf("description %q, want the watch's mark", d)
	}
	rel.setReady("v2", true)
	if err := x.loop(pass); err != nil {
		t.Fatal(err)
	}
	x.wantSets(10, 25, 0, 25)
	if r := x.r.Rollout.Reason; !strings.HasPrefix(r, "resumed: v2 ready again, back at step 2 of 4") {
		t.Errorf("reason %q, want resumed at step 2", r)
	}
}

func TestRolloutRetriedLoopAndNewRunTakeNoStepTwice(t *testing.T) {
	rel, x := start(t, "{release: backend}", 6)
	if err := x.loop(pass); err != nil {
		t.Fatal(err)
	}
	// A retried attempt of loop 1 (the pod died after the upgrade).
	x.r.Loop--
	if err := x.loop(pass); err != nil {
		t.Fatal(err)
	}
	x.wantSets(10)
	if !strings.Contains(x.r.Rollout.Reason, "(the upgrade of an earlier attempt of this loop)") {
		t.Errorf("reason %q", x.r.Rollout.Reason)
	}
	// A new run (the Job retried from scratch) goes on from the route.
	y := newRun(t, x.task, rel, 6)
	y.r.StartTime = y.r.StartTime.Add(time.Hour)
	if err := y.loop(pass); err != nil {
		t.Fatal(err)
	}
	x.wantSets(10, 25)
	if from := y.r.Rollout.From; from["v1"] != 100 || from["v2"] != 0 {
		t.Errorf("from = %v, want v1 100, v2 0", from)
	}
}

func TestRolloutOutOfLoopsRollsBack(t *testing.T) {
	_, x := start(t, "{release: backend, steps: [50, 100]}", 3)
	x.r.Loop = 1 // loop 1 spent on something else
	if err := x.loop(pass); err != nil {
		t.Fatal(err)
	}
	if err := x.loop(pass); !errors.Is(err, ErrRolledBack) || !strings.Contains(err.Error(), "out of loops (3) with v2 at 50%") {
		t.Fatalf("last loop short of 100: %v, want rolled back", err)
	}
	x.wantSets(50, 0)
}

func TestRolloutRefusesAReleaseItCannotStep(t *testing.T) {
	task, err := decode(t, "{release: backend}", []string{"v1", "v2"}, 6)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		set  func(*release)
		want string
	}{
		{"pending", func(r *release) { r.state.Pending, r.state.Status = true, "pending-upgrade" }, "in progress"},
		{"failed", func(r *release) { r.state.Status = "failed" }, "is failed, not deployed"},
		{"blue-green", func(r *release) { r.state.Strategy = "blue-green" }, `strategy "blue-green"`},
		{"other versions", func(r *release) { r.state.Versions[1].Name = "v3" }, "has versions v1, v3"},
		{"no cluster", nil, "no cluster"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rel := newRelease(100, 0)
			x := newRun(t, task, rel, 6)
			if tc.set != nil {
				tc.set(rel)
			} else {
				x.env.Releases = nil
			}
			if err := x.loop(pass); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%v, want an error saying %q", err, tc.want)
			}
			x.wantSets()
		})
	}
}

func TestSplitKeepsTheOthersRatio(t *testing.T) {
	task, err := decode(t, "{release: backend, candidate: v3, steps: [10, 100]}", []string{"v1", "v2", "v3"}, 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		from map[string]int
		w    int
		want string
	}{
		{map[string]int{"v1": 50, "v2": 30, "v3": 20}, 10, "map[v1:56 v2:34 v3:10]"},
		{map[string]int{"v1": 50, "v2": 30, "v3": 20}, 0, "map[v1:63 v2:37 v3:0]"},
		{map[string]int{"v1": 0, "v2": 0, "v3": 100}, 0, "map[v1:100 v2:0 v3:0]"},
		{map[string]int{"v1": 1, "v2": 1, "v3": 0}, 99, "map[v1:1 v2:0 v3:99]"},
	} {
		if got := fmt.Sprint(task.split(tc.from, tc.w)); got != tc.want {
			t.Errorf("split(%v, %d) = %s, want %s", tc.from, tc.w, got, tc.want)
		}
	}
}

func TestDecodeRefusesBadInput(t *testing.T) {
	two := []string{"v1", "v2"}
	for _, tc := range []struct {
		with     string
		versions []string
		loops    int
		want     string
	}{
		{"{}", two, 6, "release: Required"},
		{"{release: Backend_1}", two, 6, "a Helm release name"},
		{"{release: backend, steps: [10, 50]}", two, 6, "steps: Invalid value"},
		{"{release: backend, steps: [50, 10, 100]}", two, 6, "steps[1]: Invalid value: 10"},
		{"{release: backend, steps: [0, 100]}", two, 6, "steps[0]: Invalid value: 0"},
		{"{release: backend, steps: [10, 101]}", two, 6, "steps: Invalid value"},
		{"{release: backend, steps: []}", two, 6, "steps: Invalid value"},
		{"{release: backend, candidate: v9}", two, 6, `candidate: Unsupported value: "v9"`},
		{"{release: backend, baseline: v2}", two, 6, "the candidate must differ from the baseline v2"},
		{"{release: backend}", two, 4, "spec.loops: Invalid value: 4"},
		{"{release: backend, timeout: 0s}", two, 6, "timeout: Invalid value"},
		{"{release: backend, progressDeadline: soon}", two, 6, "progressDeadline"},
		{"{release: backend}", []string{"v1"}, 6, "spec.versions"},
		{"{release: backend, stepz: [10]}", two, 6, "stepz"},
		{"{release: backend}", two, -6, "spec.interval: Invalid value: \"0s\": a rollout takes a step per loop"},
	} {
		if _, err := decode(t, tc.with, tc.versions, tc.loops); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s (versions %v, loops %d): %v, want %q", tc.with, tc.versions, tc.loops, err, tc.want)
		}
	}
}

// TestRolloutRunFailedPutsTheWeightsBack: a failure that ends the run
// mid-rollout puts back the weights from before it; a rollout that ended
// is left alone.
func TestRolloutRunFailedPutsTheWeightsBack(t *testing.T) {
	rel, x := start(t, "{release: backend}", 6)
	for range 2 {
		if err := x.loop(pass); err != nil {
			t.Fatal(err)
		}
	}
	x.task.RunFailed(context.Background(), x.env, errors.New("task 0 (http): connection refused"))
	x.wantSets(10, 25, 0)
	if ro := x.r.Rollout; ro.Outcome != experiment.RolloutRolledBack || ro.Weights["v2"] != 0 ||
		!strings.Contains(rel.state.Description, ") loop 2 (after a failure): rolled back: the run failed: task 0 (http): connection refused") {
		t.Fatalf("rollout %+v, description %q", ro, rel.state.Description)
	}
	x.task.RunFailed(context.Background(), x.env, errors.New("again"))
	x.wantSets(10, 25, 0)
}

// TestRolloutLastLoop: the last loop never leaves the rollout short of
// 100 without rolling back: not with the candidate unready, nor paused
// and ready again.
func TestRolloutLastLoop(t *testing.T) {
	rel, x := start(t, "{release: backend, steps: [50, 100]}", 4)
	x.r.Loop = 2
	if err := x.loop(pass); err != nil { // loop 3: 50
		t.Fatal(err)
	}
	rel.setReady("v2", false)
	if err := x.loop(pass); !errors.Is(err, ErrRolledBack) || !strings.Contains(err.Error(), "out of loops (4) with v2 not ready") {
		t.Fatalf("last loop, v2 unready: %v, want rolled back", err)
	}
	x.wantSets(50, 0)

	rel = newRelease(100, 0)
	x = newRun(t, x.task, rel, 4)
	x.r.Loop = 1
	if err := x.loop(pass); err != nil { // loop 2: 50
		t.Fatal(err)
	}
	rel.setReady("v2", false)
	if err := x.loop(pass); err != nil { // loop 3: paused
		t.Fatal(err)
	}
	rel.setReady("v2", true)
	if err := x.loop(pass); !errors.Is(err, ErrRolledBack) || !strings.Contains(err.Error(), "out of loops (4) with v2 paused") {
		t.Fatalf("last loop, paused v2 ready again: %v, want rolled back, not resumed", err)
	}
	x.wantSets(50, 0)
}

// TestRolloutRetriedResumeClearsThePause: the retried attempt of a loop
// whose resume an earlier attempt made starts from the stored result,
// still paused: it takes the resume up and is paused no longer.
func TestRolloutRetriedResumeClearsThePause(t *testing.T) {
	rel, x := start(t, "{release: backend}", 10)
	for range 2 {
		if err := x.loop(pass); err != nil {
			t.Fatal(err)
		}
	}
	rel.setReady("v2", false)
	if err := x.loop(pass); err != nil {
		t.Fatal(err)
	}
	stored, err := json.Marshal(x.r.Rollout) // what the result holds before loop 4's task
	if err != nil {
		t.Fatal(err)
	}
	rel.setReady("v2", true)
	if err := x.loop(pass); err != nil { // loop 4 resumes, then its pod dies
		t.Fatal(err)
	}
	x.r.Loop--
	x.r.Rollout = &experiment.Rollout{}
	if err := json.Unmarshal(stored, x.r.Rollout); err != nil {
		t.Fatal(err)
	}
	if err := x.loop(pass); err != nil {
		t.Fatal(err)
	}
	x.wantSets(10, 25, 0, 25)
	if ro := x.r.Rollout; ro.PausedSince != nil || ro.Step != 1 {
		t.Fatalf("retried resume: %+v, want at step 2, not paused", ro)
	}
	if err := x.loop(pass); err != nil {
		t.Fatal(err)
	}
	x.wantSets(10, 25, 0, 25, 50)
}

// TestRolloutStopsWhenTheReleaseChangesOutsideIt: an upgrade that is not
// the rollout's stops it with nothing changed, and a failure then puts
// nothing back.
func TestRolloutStopsWhenTheReleaseChangesOutsideIt(t *testing.T) {
	rel, x := start(t, "{release: backend}", 10)
	for range 2 {
		if err := x.loop(pass); err != nil {
			t.Fatal(err)
		}
	}
	// An operator sets v2 to 0 by hand.
	rel.mu.Lock()
	rel.state.Revision++
	rel.state.Description = "Upgrade complete"
	rel.state.Versions[0].Weight, rel.state.Versions[1].Weight = 100, 0
	rel.mu.Unlock()
	err := x.loop(pass)
	if !errors.Is(err, experiment.ErrStopRun) || !strings.Contains(err.Error(), `its revision 6 ("Upgrade complete") is not the rollout's`) {
		t.Fatalf("after an operator's upgrade: %v, want the run stopped", err)
	}
	x.task.RunFailed(context.Background(), x.env, err)
	x.wantSets(10, 25)
	if ro := x.r.Rollout; ro.Outcome != "" {
		t.Errorf("outcome %q, want none: the rollout did not roll back", ro.Outcome)
	}
}
