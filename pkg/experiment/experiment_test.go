package experiment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// fakeTask records that it ran and sets a metric, or fails or panics.
type fakeTask struct {
	Metric string  `json:"metric,omitempty"`
	Value  float64 `json:"value,omitempty"`
	Fail   string  `json:"fail,omitempty"`
	Panic  bool    `json:"panic,omitempty"`
	Wait   bool    `json:"wait,omitempty"`
	// PerLoop is added to Value in every loop after the first; FailInLoop
	// makes the task fail in that loop.
	PerLoop    float64 `json:"perLoop,omitempty"`
	FailInLoop int     `json:"failInLoop,omitempty"`
	// DoneInLoop ends the experiment (ErrDone) in that loop.
	DoneInLoop int `json:"doneInLoop,omitempty"`
}

func (f *fakeTask) Run(ctx context.Context, env *Env) error {
	if f.Panic {
		panic("boom")
	}
	if f.Wait {
		<-ctx.Done()
		return ctx.Err()
	}
	if f.Fail != "" {
		return errors.New(f.Fail)
	}
	if f.FailInLoop != 0 && f.FailInLoop == env.Result.Loop {
		return errors.New("failed in this loop")
	}
	for _, v := range env.Versions {
		env.Result.SetMetric(v, f.Metric, f.Value+f.PerLoop*float64(env.Result.Loop-1), "")
	}
	if f.DoneInLoop != 0 && f.DoneInLoop == env.Result.Loop {
		return fmt.Errorf("%w: promoted b", ErrDone)
	}
	return nil
}

// checkTask reads a metric: it needs an earlier task to produce it.
type checkTask struct {
	Metric string  `json:"metric"`
	Upper  float64 `json:"upper"`
}

func (c *checkTask) Run(_ context.Context, env *Env) error {
	for _, v := range env.Versions {
		val, ok := env.Result.Value(v, c.Metric)
		upper := c.Upper
		env.Result.SLOs = append(env.Result.SLOs, SLOVerdict{Metric: c.Metric, Version: v, Upper: &upper, Value: &val, Satisfied: ok && val <= c.Upper})
	}
	return nil
}

func testRegistry() *Registry {
	r := NewRegistry()
	r.Register("fake", func(d *Decoding) (Task, field.ErrorList) {
		t := &fakeTask{Metric: "fake/value"}
		if errs := d.Into(t); len(errs) > 0 {
			return nil, errs
		}
		for _, v := range d.Versions {
			d.Metrics.Add(v, t.Metric)
		}
		return t, nil
	})
	r.Register("check", func(d *Decoding) (Task, field.ErrorList) {
		t := &checkTask{}
		if errs := d.Into(t); len(errs) > 0 {
			return nil, errs
		}
		if !d.Metrics.Incomplete() && len(d.Metrics.Producers(t.Metric)) == 0 {
			return nil, field.ErrorList{field.Invalid(d.Path.Child("metric"), t.Metric, "not produced")}
		}
		return t, nil
	})
	return r
}

func decode(t *testing.T, spec string) *Plan {
	t.Helper()
	p, err := Decode([]byte(spec), DecodeOptions{Registry: testRegistry()})
	if err != nil {
		t.Fatalf("Decode: %v\nspec:\n%s", err, spec)
	}
	return p
}

const header = "apiVersion: iter8.tools/v1\nkind: Experiment\nmetadata: {name: exp}\n"

func TestDecodeErrorsNamePaths(t *testing.T) {
	tests := []struct {
		name string
		spec string
		want []string
	}{
		{"empty document", "", []string{"empty"}},
		{"not yaml", "a: [", []string{"not valid YAML"}},
		{"duplicate key", header + "spec: {tasks: [{task: fake}]}\nspec: {}", []string{"not valid YAML"}},
		{"wrong apiVersion", "apiVersion: v2\nkind: Experiment\nmetadata: {name: e}\nspec: {tasks: [{task: fake}]}", []string{"apiVersion: Unsupported value"}},
		{"wrong kind", "apiVersion: iter8.tools/v1\nkind: Job\nmetadata: {name: e}\nspec: {tasks: [{task: fake}]}", []string{"kind: Unsupported value"}},
		{"no name", "apiVersion: iter8.tools/v1\nkind: Experiment\nspec: {tasks: [{task: fake}]}", []string{"metadata.name: Required value"}},
		{"bad name", "apiVersion: iter8.tools/v1\nkind: Experiment\nmetadata: {name: Bad_Name}\nspec: {tasks: [{task: fake}]}", []string{"metadata.name: Invalid value"}},
		{"no tasks", header + "spec: {tasks: []}", []string{"spec.tasks: Required value"}},
		{"unknown field", header + "spec: {tasks: [{task: fake}], extra: 1}", []string{"spec.extra: unknown field"}},
		{"unknown task field", header + "spec: {tasks: [{task: fake, width: {}}]}", []string{"spec.tasks[0].width: unknown field"}},
		{"unknown with field", header + "spec: {tasks: [{task: fake, with: {bogus: 1}}]}", []string{"spec.tasks[0].with.bogus: unknown field"}},
		{"mistyped with field", header + "spec: {tasks: [{task: fake, with: {value: abc}}]}", []string{"spec.tasks[0].with.value: got string, want a number"}},
		{"mistyped spec", header + "spec: {versions: v1, tasks: [{task: fake}]}", []string{"spec.versions: got string, want a list"}},
		{"unknown task", header + "spec: {tasks: [{task: fake}, {task: nope}]}", []string{`spec.tasks[1].task: Unsupported value: "nope"`}},
		{"missing task name", header + "spec: {tasks: [{with: {}}]}", []string{"spec.tasks[0].task: Required value"}},
		{"duplicate versions", header + "spec: {versions: [a, a], tasks: [{task: fake}]}", []string{`spec.versions[1]: Duplicate value: "a"`}},
		{"empty version", header + "spec: {versions: [''], tasks: [{task: fake}]}", []string{"spec.versions[0]: Required value"}},
		{"bad if", header + "spec: {tasks: [{task: fake, if: 'metrics +'}]}", []string{"spec.tasks[0].if: Invalid value"}},
		{"non-bool if", header + "spec: {tasks: [{task: fake, if: '1 + 2'}]}", []string{"spec.tasks[0].if: Invalid value"}},
		{"metric not produced", header + "spec: {tasks: [{task: check, with: {metric: fake/value}}]}", []string{"spec.tasks[0].with.metric: Invalid value"}},
		{"negative loops", header + "spec: {loops: -1, tasks: [{task: fake}]}", []string{"spec.loops: Invalid value: -1: must be from 1 to 100000"}},
		{"too many loops", header + "spec: {loops: 100001, tasks: [{task: fake}]}", []string{"spec.loops: Invalid value"}},
		{"bad interval", header + "spec: {loops: 2, interval: soon, tasks: [{task: fake}]}", []string{`spec.interval: Invalid value: "soon": a duration such as 30s or 5m`}},
		{"negative interval", header + "spec: {loops: 2, interval: -5s, tasks: [{task: fake}]}", []string{"spec.interval: Invalid value", "must not be negative"}},
		{"bad failedLoops", header + "spec: {loops: 2, failedLoops: retry, tasks: [{task: fake}]}", []string{`spec.failedLoops: Unsupported value: "retry": supported values: "stop", "continue"`}},
		{"loop in if", header + "spec: {tasks: [{task: fake, if: 'loop == \"last\"'}]}", []string{"spec.tasks[0].if: Invalid value"}},
		{"several problems", header + "spec: {versions: [a, a], extra: 1, tasks: [{task: nope}]}",
			[]string{"3 problems", "spec.extra", "spec.versions[1]", "spec.tasks[0].task"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode([]byte(tc.spec), DecodeOptions{Registry: testRegistry()})
			if err == nil {
				t.Fatalf("Decode(%q) succeeded, want an error containing %q", tc.spec, tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Decode(%q) error:\n%v\nwant it to contain %q", tc.spec, err, w)
				}
			}
		})
	}
}

func TestDecodeAfterBrokenTaskDoesNotBlameLaterTasks(t *testing.T) {
	spec := header + "spec: {tasks: [{task: fake, with: {bogus: 1}}, {task: check, with: {metric: fake/value}}]}"
	_, err := Decode([]byte(spec), DecodeOptions{Registry: testRegistry()})
	if err == nil || strings.Contains(err.Error(), "tasks[1]") {
		t.Fatalf("error = %v; want one about tasks[0] only", err)
	}
}

// memStore records every result written, as JSON, to check what was kept
// after each task.
type memStore struct {
	writes []Result
	fail   error
}

func (m *memStore) WriteResult(_ context.Context, r *Result) error {
	if m.fail != nil {
		return m.fail
	}
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	var copy Result
	if err := json.Unmarshal(data, &copy); err != nil {
		return err
	}
	m.writes = append(m.writes, copy)
	return nil
}

func states(r Result) string {
	s := make([]string, len(r.Tasks))
	for i, t := range r.Tasks {
		s[i] = string(t.State)
	}
	return strings.Join(s, ",")
}

func fixedClock() func() time.Time {
	t := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return func() time.Time {
		t = t.Add(time.Second)
		return t
	}
}

func TestRunWritesAfterEveryTask(t *testing.T) {
	plan := decode(t, header+"spec: {versions: [a, b], tasks: [{task: fake, with: {value: 3}}, {task: check, with: {metric: fake/value, upper: 5}}]}")
	st := &memStore{}
	res, err := (&Runner{Store: st, Now: fixedClock()}).Run(context.Background(), plan)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	var got []string
	for _, w := range st.writes {
		got = append(got, states(w))
	}
	want := []string{
		"pending,pending",
		"running,pending",
		"succeeded,pending",
		"succeeded,running",
		"succeeded,succeeded",
		"succeeded,succeeded", // with the end time
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("task states per write:\n got %v\nwant %v", got, want)
	}
	if !res.Completed() || res.Failed() || !res.SLOsSatisfied() {
		t.Errorf("result: completed %v failed %v slos %v; want true false true", res.Completed(), res.Failed(), res.SLOsSatisfied())
	}
	if v, ok := res.Value("b", "fake/value"); !ok || v != 3 {
		t.Errorf("Value(b, fake/value) = %v, %v; want 3, true", v, ok)
	}
	if d := res.Tasks[0].Duration; d != time.Second {
		t.Errorf("task 0 duration = %v, want 1s from the fake clock", d)
	}
}

func TestRunFailureSkipsLaterTasks(t *testing.T) {
	for _, tc := range []struct {
		name, task, wantErr string
	}{
		{"error", "{task: fake, with: {fail: target down}}", "target down"},
		{"panic", "{task: fake, with: {panic: true}}", "internal error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan := decode(t, header+"spec: {tasks: [{task: fake}, "+tc.task+", {task: fake}]}")
			st := &memStore{}
			res, err := (&Runner{Store: st}).Run(context.Background(), plan)
			if !errors.Is(err, ErrTaskFailed) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Run error = %v; want ErrTaskFailed with %q", err, tc.wantErr)
			}
			if got := states(*res); got != "succeeded,failed,skipped" {
				t.Errorf("states = %s, want succeeded,failed,skipped", got)
			}
			if !strings.Contains(res.Tasks[1].Error, tc.wantErr) {
				t.Errorf("task 1 error = %q, want it to contain %q", res.Tasks[1].Error, tc.wantErr)
			}
			last := st.writes[len(st.writes)-1]
			if last.EndTime == nil || states(last) != "succeeded,failed,skipped" {
				t.Errorf("last write: end %v states %s; want an end time and the final states", last.EndTime, states(last))
			}
		})
	}
}

func TestRunInterruptKeepsFinishedWork(t *testing.T) {
	plan := decode(t, header+"spec: {tasks: [{task: fake, with: {value: 7}}, {task: fake, with: {wait: true}}, {task: fake}]}")
	st := &memStore{}
	ctx, cancel := context.WithCancel(context.Background())
	// Cancel as soon as the waiting task has been recorded as running.
	r := &Runner{Store: storeFunc(func(ctx context.Context, res *Result) error {
		if res.Tasks[1].State == TaskRunning {
			cancel()
		}
		return st.WriteResult(ctx, res)
	})}
	res, err := r.Run(ctx, plan)
	if err == nil || !strings.Contains(err.Error(), "interrupted") {
		t.Fatalf("Run error = %v, want an interrupted task", err)
	}
	last := st.writes[len(st.writes)-1]
	if states(last) != "succeeded,failed,skipped" || last.EndTime == nil {
		t.Errorf("last write: states %s, end %v", states(last), last.EndTime)
	}
	if v, ok := res.Value("", "fake/value"); !ok || v != 7 {
		t.Errorf("the first task's metric was lost: %v %v", v, ok)
	}
}

type storeFunc func(context.Context, *Result) error

func (f storeFunc) WriteResult(ctx context.Context, r *Result) error { return f(ctx, r) }

func TestRunConditions(t *testing.T) {
	plan := decode(t, header+`spec: {tasks: [
  {task: fake, with: {value: 3}},
  {task: check, with: {metric: fake/value, upper: 1}},
  {task: fake, if: "slos", with: {metric: fake/ran}},
  {task: fake, if: "!slos && metrics[''][\"fake/value\"] == 3", with: {metric: fake/other}}]}`)
	res, err := (&Runner{}).Run(context.Background(), plan)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := states(*res); got != "succeeded,succeeded,skipped,succeeded" {
		t.Errorf("states = %s, want succeeded,succeeded,skipped,succeeded", got)
	}
}

func TestRunFailOnSLOs(t *testing.T) {
	plan := decode(t, header+"spec: {failOnSLOs: true, tasks: [{task: fake, with: {value: 3}}, {task: check, with: {metric: fake/value, upper: 1}}]}")
	res, err := (&Runner{}).Run(context.Background(), plan)
	if !errors.Is(err, ErrSLOsNotMet) {
		t.Fatalf("Run error = %v, want ErrSLOsNotMet", err)
	}
	if res.Failed() {
		t.Errorf("an unmet SLO is a verdict, but the result says a task failed")
	}
}

func TestRunStoreErrorIsReturned(t *testing.T) {
	plan := decode(t, header+"spec: {tasks: [{task: fake}]}")
	_, err := (&Runner{Store: &memStore{fail: errors.New("disk full")}}).Run(context.Background(), plan)
	if err == nil || !strings.Contains(err.Error(), "disk full") || !strings.Contains(err.Error(), "exp") {
		t.Fatalf("Run error = %v, want the store's error naming the experiment", err)
	}
}

func TestLogTailKeepsLastLines(t *testing.T) {
	lt := NewLogTail(2)
	for _, s := range []string{"one\ntw", "o\nthree\n", "four (no newline)"} {
		if _, err := lt.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	if got := strings.Join(lt.Lines(), "|"); got != "two|three" {
		t.Errorf("Lines() = %q, want two|three", got)
	}
}

func TestPercentileNames(t *testing.T) {
	for in, want := range map[float64]string{50: "p50", 99.9: "p99.9", 99.99: "p99.99", 75: "p75"} {
		if got := Percentile(in); got != want {
			t.Errorf("Percentile(%v) = %q, want %q", in, got, want)
		}
	}
}

// loopClock is a fake clock with a Wait that moves it to the time asked for,
// recording the times.
type loopClock struct {
	now   time.Time
	waits []time.Time
}

func (c *loopClock) Now() time.Time {
	c.now = c.now.Add(time.Second)
	return c.now
}

func (c *loopClock) Wait(_ context.Context, until time.Time) error {
	c.waits = append(c.waits, until)
	if until.After(c.now) {
		c.now = until
	}
	return nil
}

func TestRunLoops(t *testing.T) {
	plan := decode(t, header+`spec: {loops: 3, interval: 1m, versions: [a, b], tasks: [
  {task: fake, with: {value: 3, perLoop: 2}},
  {task: check, with: {metric: fake/value, upper: 6}},
  {task: fake, if: "loop == loops", with: {metric: fake/last}}]}`)
	clock := &loopClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	st := &memStore{}
	res, err := (&Runner{Store: st, Now: clock.Now, Wait: clock.Wait}).Run(context.Background(), plan)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.Loop != 3 || res.Loops != 3 {
		t.Errorf("loop %d of %d, want 3 of 3", res.Loop, res.Loops)
	}
	// Loops start an interval apart, counted from the run's start.
	start := res.StartTime
	if want := []time.Time{start.Add(time.Minute), start.Add(2 * time.Minute)}; !slicesEqualTime(clock.waits, want) {
		t.Errorf("waited until %v, want %v", clock.waits, want)
	}
	if len(res.History) != 3 {
		t.Fatalf("history has %d loops, want 3", len(res.History))
	}
	for i, h := range res.History {
		want := 3 + 2*float64(i)
		if h.Loop != i+1 || h.Metrics["b"]["fake/value"] != want {
			t.Errorf("history[%d]: loop %d, b fake/value %v; want loop %d, %v", i, h.Loop, h.Metrics["b"]["fake/value"], i+1, want)
		}
		if h.StartTime.Before(start.Add(time.Duration(i)*time.Minute)) || h.EndTime.Before(h.StartTime) {
			t.Errorf("history[%d]: %v to %v", i, h.StartTime, h.EndTime)
		}
	}
	// The check task appends verdicts: loop 3's value 7 breaks upper 6.
	if !res.History[1].SLOsSatisfied["a"] || res.History[2].SLOsSatisfied["a"] {
		t.Errorf("SLOs per loop: %v, %v; want met in loop 2, not in loop 3", res.History[1].SLOsSatisfied, res.History[2].SLOsSatisfied)
	}
	if _, ok := res.History[1].Metrics["a"]["fake/last"]; ok {
		t.Errorf("the task conditioned on the last loop ran in loop 2")
	}
	if _, ok := res.Value("a", "fake/last"); !ok {
		t.Errorf("the task conditioned on the last loop did not run in it")
	}
	// Every loop starts with its tasks pending again.
	var pendingAgain int
	for i := 1; i < len(st.writes); i++ {
		if states(st.writes[i]) == "pending,pending,pending" && st.writes[i-1].Tasks[0].State != TaskPending {
			pendingAgain++
		}
	}
	if pendingAgain != 2 {
		t.Errorf("tasks reset to pending %d times, want 2 (before loops 2 and 3)", pendingAgain)
	}
}

func slicesEqualTime(a, b []time.Time) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].Equal(b[i]) {
			return false
		}
	}
	return true
}

func TestRunLoopsStop(t *testing.T) {
	clock := func() *loopClock { return &loopClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }
	t.Run("a failed task ends the run", func(t *testing.T) {
		plan := decode(t, header+"spec: {loops: 5, tasks: [{task: fake, with: {failInLoop: 2}}, {task: fake}]}")
		c := clock()
		res, err := (&Runner{Now: c.Now, Wait: c.Wait}).Run(context.Background(), plan)
		if !errors.Is(err, ErrTaskFailed) {
			t.Fatalf("Run error = %v, want ErrTaskFailed", err)
		}
		if res.Loop != 2 || len(res.History) != 2 || !res.History[1].Failed || res.History[0].Failed {
			t.Errorf("loop %d, history %+v; want 2 loops, the second failed", res.Loop, res.History)
		}
		if states(*res) != "failed,skipped" || res.EndTime == nil {
			t.Errorf("states %s, end %v", states(*res), res.EndTime)
		}
	})
	t.Run("failedLoops continue runs the next loop", func(t *testing.T) {
		plan := decode(t, header+"spec: {loops: 3, failedLoops: continue, tasks: [{task: fake, with: {failInLoop: 2}}, {task: fake, with: {metric: fake/after}}]}")
		c := clock()
		res, err := (&Runner{Now: c.Now, Wait: c.Wait}).Run(context.Background(), plan)
		if err != nil {
			t.Fatalf("Run error = %v, want none: only loop 2 of 3 failed", err)
		}
		if res.Loop != 3 || len(res.History) != 3 || !res.History[1].Failed || res.History[2].Failed || states(*res) != "succeeded,succeeded" {
			t.Errorf("loop %d, history %+v, states %s; want 3 loops, the second failed, the last succeeded", res.Loop, res.History, states(*res))
		}
		plan = decode(t, header+"spec: {loops: 3, failedLoops: continue, tasks: [{task: fake, with: {failInLoop: 3}}]}")
		c = clock()
		if _, err := (&Runner{Now: c.Now, Wait: c.Wait}).Run(context.Background(), plan); !errors.Is(err, ErrTaskFailed) {
			t.Errorf("the last loop failed: Run error = %v, want ErrTaskFailed", err)
		}
	})
	t.Run("a task that is done ends the run after its loop", func(t *testing.T) {
		plan := decode(t, header+"spec: {loops: 5, tasks: [{task: fake, with: {doneInLoop: 2}}, {task: fake, with: {metric: fake/after}}]}")
		c := clock()
		res, err := (&Runner{Now: c.Now, Wait: c.Wait}).Run(context.Background(), plan)
		if err != nil {
			t.Fatalf("Run error = %v, want none", err)
		}
		if res.Loop != 2 || len(res.History) != 2 || res.EndTime == nil || !strings.Contains(res.Stopped, "promoted b") {
			t.Errorf("loop %d, %d in history, end %v, stopped %q; want 2, 2, an end, promoted b", res.Loop, len(res.History), res.EndTime, res.Stopped)
		}
		if states(*res) != "succeeded,succeeded" || !strings.Contains(res.Tasks[0].Reason, "promoted b") {
			t.Errorf("states %s, reason %q: want both tasks succeeded (the loop's later tasks still run), the reason kept", states(*res), res.Tasks[0].Reason)
		}
	})
	t.Run("failOnSLOs ends the run at the first unmet loop", func(t *testing.T) {
		plan := decode(t, header+"spec: {loops: 5, failOnSLOs: true, tasks: [{task: fake, with: {value: 1, perLoop: 1}}, {task: check, with: {metric: fake/value, upper: 2}}]}")
		c := clock()
		res, err := (&Runner{Now: c.Now, Wait: c.Wait}).Run(context.Background(), plan)
		if !errors.Is(err, ErrSLOsNotMet) {
			t.Fatalf("Run error = %v, want ErrSLOsNotMet", err)
		}
		if res.Loop != 3 || len(res.History) != 3 {
			t.Errorf("stopped in loop %d with %d in history, want 3 and 3", res.Loop, len(res.History))
		}
	})
	t.Run("an interrupt between loops keeps the finished loops", func(t *testing.T) {
		plan := decode(t, header+"spec: {loops: 5, interval: 1h, tasks: [{task: fake, with: {value: 4}}]}")
		ctx, cancel := context.WithCancel(context.Background())
		st := &memStore{}
		wait := func(ctx context.Context, _ time.Time) error {
			cancel()
			<-ctx.Done()
			return ctx.Err()
		}
		_, err := (&Runner{Store: st, Wait: wait}).Run(ctx, plan)
		if !errors.Is(err, ErrInterrupted) || !strings.Contains(err.Error(), "before loop 2 of 5") {
			t.Fatalf("Run error = %v, want ErrInterrupted before loop 2 of 5", err)
		}
		last := st.writes[len(st.writes)-1]
		if last.EndTime == nil || len(last.History) != 1 || last.History[0].Metrics[""]["fake/value"] != 4 {
			t.Errorf("last write: end %v, history %+v; want an end and loop 1's value", last.EndTime, last.History)
		}
	})
	t.Run("the real wait follows the interval", func(t *testing.T) {
		plan := decode(t, header+"spec: {loops: 2, interval: 20ms, tasks: [{task: fake}]}")
		res, err := (&Runner{}).Run(context.Background(), plan)
		if err != nil {
			t.Fatal(err)
		}
		if got := res.History[1].StartTime.Sub(res.StartTime); got < 20*time.Millisecond {
			t.Errorf("loop 2 started %v after the run, want at least the 20ms interval", got)
		}
	})
}

func TestHistoryIsThinned(t *testing.T) {
	var r Result
	for loop := 1; loop <= 1000; loop++ {
		r.addHistory(LoopSummary{Loop: loop})
		if len(r.History) > MaxHistory {
			t.Fatalf("after loop %d the history holds %d loops, more than %d", loop, len(r.History), MaxHistory)
		}
	}
	if first, last := r.History[0].Loop, r.History[len(r.History)-1].Loop; first != 1 || last != 1000 {
		t.Errorf("history runs from loop %d to %d, want 1 to 1000", first, last)
	}
	for i := 1; i < len(r.History); i++ {
		if r.History[i].Loop <= r.History[i-1].Loop {
			t.Fatalf("history out of order at %d: %d after %d", i, r.History[i].Loop, r.History[i-1].Loop)
		}
	}
	if len(r.History) < MaxHistory/2 {
		t.Errorf("history kept %d loops, want at least %d", len(r.History), MaxHistory/2)
	}
}

// TestVerdictKeyJSON checks that a loop's verdicts keep their JSON form,
// "candidate metric", so that results written before the key was typed
// still read, and that a key without a candidate is refused.
func TestVerdictKeyJSON(t *testing.T) {
	const stored = `{"loop":3,"startTime":"0001-01-01T00:00:00Z","endTime":"0001-01-01T00:00:00Z",` +
		`"verdicts":{"v2 http/latency":"worse","v3 http/latency-p99.9":"inconclusive"}}`
	var s LoopSummary
	if err := json.Unmarshal([]byte(stored), &s); err != nil {
		t.Fatalf("decode %s: %v", stored, err)
	}
	want := map[VerdictKey]Verdict{
		{Candidate: "v2", Metric: "http/latency"}:       VerdictWorse,
		{Candidate: "v3", Metric: "http/latency-p99.9"}: VerdictInconclusive,
	}
	if len(s.Verdicts) != len(want) {
		t.Fatalf("decoded verdicts %v, want %v", s.Verdicts, want)
	}
	for k, v := range want {
		if s.Verdicts[k] != v {
			t.Errorf("verdict of %+v = %q, want %q", k, s.Verdicts[k], v)
		}
	}
	got, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != stored {
		t.Errorf("encoded\n%s\nwant\n%s", got, stored)
	}
	if err := json.Unmarshal([]byte(`{"verdicts":{"http/latency":"worse"}}`), &s); err == nil {
		t.Error("a verdict key without a candidate decoded without error")
	}
}

// watchTask records its runs and the watches between them, and whether a
// run ever overlapped a watch; it gives the next loop's start it was told.
type watchTask struct {
	mu       sync.Mutex
	events   []string
	watching bool
	next     []time.Time
}

func (w *watchTask) Run(_ context.Context, env *Env) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.watching {
		w.events = append(w.events, "overlap")
	}
	w.events = append(w.events, fmt.Sprintf("run %d", env.Result.Loop))
	w.next = append(w.next, env.NextLoopAt)
	return nil
}

func (w *watchTask) Watch(env *Env) func(context.Context) {
	loop := env.Result.Loop
	return func(ctx context.Context) {
		w.mu.Lock()
		w.watching = true
		w.events = append(w.events, fmt.Sprintf("watch %d", loop))
		w.mu.Unlock()
		<-ctx.Done()
		w.mu.Lock()
		w.watching = false
		w.events = append(w.events, fmt.Sprintf("stop %d", loop))
		w.mu.Unlock()
	}
}

// TestRunWatchesBetweenRuns: a Watcher's watch runs from its task's run
// to the task's next run, never beside it, and not after the last loop.
func TestRunWatchesBetweenRuns(t *testing.T) {
	w := &watchTask{}
	reg := testRegistry()
	reg.Register("watch", func(*Decoding) (Task, field.ErrorList) { return w, nil })
	plan, err := Decode([]byte(header+`spec: {loops: 3, interval: 1m, tasks: [{task: watch}, {task: fake}]}`), DecodeOptions{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	clock := &loopClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	res, err := (&Runner{Now: clock.Now, Wait: clock.Wait}).Run(context.Background(), plan)
	if err != nil {
		t.Fatal(err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if got, want := strings.Join(w.events, ", "), "run 1, watch 1, stop 1, run 2, watch 2, stop 2, run 3"; got != want {
		t.Errorf("events: %s\nwant:   %s", got, want)
	}
	start := res.StartTime
	if want := []time.Time{start.Add(time.Minute), start.Add(2 * time.Minute), {}}; !slicesEqualTime(w.next, want) {
		t.Errorf("NextLoopAt per loop %v, want %v", w.next, want)
	}
}

// stopTask fails with ErrStopRun in loop 2, and records the failure the
// run ended with.
type stopTask struct {
	failed []string
}

func (s *stopTask) Run(_ context.Context, env *Env) error {
	if env.Result.Loop == 2 {
		return fmt.Errorf("%w: rolled back", ErrStopRun)
	}
	return nil
}

func (s *stopTask) RunFailed(_ context.Context, _ *Env, failure error) {
	s.failed = append(s.failed, failure.Error())
}

// TestRunStopsAndHandlesFailure: ErrStopRun ends the run even with
// failedLoops continue, and the FailureHandler hears of it once; a run
// that ends well does not call it.
func TestRunStopsAndHandlesFailure(t *testing.T) {
	for _, tc := range []struct {
		spec       string
		wantLoop   int
		wantFailed int
	}{
		{`spec: {loops: 5, interval: 1m, failedLoops: continue, tasks: [{task: stop}, {task: fake}]}`, 2, 1},
		{`spec: {loops: 1, tasks: [{task: stop}]}`, 1, 0},
	} {
		s := &stopTask{}
		reg := testRegistry()
		reg.Register("stop", func(*Decoding) (Task, field.ErrorList) { return s, nil })
		plan, err := Decode([]byte(header+tc.spec), DecodeOptions{Registry: reg})
		if err != nil {
			t.Fatal(err)
		}
		clock := &loopClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
		res, err := (&Runner{Now: clock.Now, Wait: clock.Wait}).Run(context.Background(), plan)
		if (tc.wantFailed > 0) != (err != nil) || res.Loop != tc.wantLoop || len(s.failed) != tc.wantFailed {
			t.Errorf("%s: %v after loop %d, failure handled %v; want loop %d, %d handled", tc.spec, err, res.Loop, s.failed, tc.wantLoop, tc.wantFailed)
		}
		if tc.wantFailed > 0 && (!errors.Is(err, ErrStopRun) || !strings.Contains(s.failed[0], "task 0 (stop): the run stops: rolled back")) {
			t.Errorf("%s: %v, handled %v", tc.spec, err, s.failed)
		}
	}
}

// TestResumedStopStillStops: a run whose process died just after a task
// failed with ErrStopRun (the result stored with the loop's later tasks
// pending) stops when resumed, even with failedLoops continue.
func TestResumedStopStillStops(t *testing.T) {
	s := &stopTask{}
	runs := map[string]int{}
	plan := countingPlan(t, header+`spec: {loops: 3, interval: 1m, failedLoops: continue, tasks: [{task: fake}, {task: count, with: {name: x}}]}`, runs)
	plan.Tasks[0].Task = s
	st := &memStore{}
	clock := &loopClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	if _, err := (&Runner{Store: st, Now: clock.Now, Wait: clock.Wait}).Run(context.Background(), plan); !errors.Is(err, ErrStopRun) {
		t.Fatalf("first run: %v, want stopped", err)
	}
	var stored *Result
	for i := range st.writes {
		w := &st.writes[i]
		if w.Loop == 2 && w.Tasks[0].State == TaskFailed && w.Tasks[1].State == TaskPending {
			stored = w
			break
		}
	}
	if stored == nil {
		t.Fatal("no write with loop 2's stop stored and its next task pending")
	}
	clear(runs)
	res, err := (&Runner{Now: clock.Now, Wait: clock.Wait, Resume: stored}).Run(context.Background(), plan)
	if !errors.Is(err, ErrTaskFailed) || res.Loop != 2 || runs["x@3"] != 0 {
		t.Errorf("resumed: %v after loop %d, runs %v; want the run stopped in loop 2", err, res.Loop, runs)
	}
}

// TestDecodeOverridesReachTheTasks: run --loops and --interval replace the
// spec's before the tasks check them.
func TestDecodeOverridesReachTheTasks(t *testing.T) {
	var seen []string
	reg := testRegistry()
	reg.Register("see", func(d *Decoding) (Task, field.ErrorList) {
		seen = append(seen, fmt.Sprintf("%d %v", d.Loops, d.Interval))
		return &fakeTask{}, nil
	})
	loops, interval := 2, 5*time.Second
	spec := []byte(header + `spec: {loops: 5, interval: 1m, tasks: [{task: see}]}`)
	for _, opts := range []DecodeOptions{{Registry: reg}, {Registry: reg, Loops: &loops, Interval: &interval}} {
		plan, err := Decode(spec, opts)
		if err != nil {
			t.Fatal(err)
		}
		seen = append(seen, fmt.Sprintf("plan %d %v", plan.Loops, plan.Interval))
	}
	if got, want := strings.Join(seen, ", "), "5 1m0s, plan 5 1m0s, 2 5s, plan 2 5s"; got != want {
		t.Errorf("seen %s, want %s", got, want)
	}
}
