package experiment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// countTask counts its runs per loop in runs, keyed "name@loop".
type countTask struct {
	Name string `json:"name"`
	runs map[string]int
}

func (c *countTask) Run(_ context.Context, env *Env) error {
	c.runs[fmt.Sprintf("%s@%d", c.Name, env.Result.Loop)]++
	for _, v := range env.Versions {
		env.Result.SetMetric(v, "count/"+c.Name, float64(env.Result.Loop), "")
	}
	return nil
}

// countingPlan decodes spec with a count task that records into runs.
func countingPlan(t *testing.T, spec string, runs map[string]int) *Plan {
	t.Helper()
	r := testRegistry()
	r.Register("count", func(d *Decoding) (Task, field.ErrorList) {
		c := &countTask{runs: runs}
		if errs := d.Into(c); len(errs) > 0 {
			return nil, errs
		}
		for _, v := range d.Versions {
			d.Metrics.Add(v, "count/"+c.Name)
		}
		return c, nil
	})
	p, err := Decode([]byte(spec), DecodeOptions{Registry: r})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// crashAt is a store whose write number n (from 1) fails, as a process
// that dies would leave the store: the runs before it written, nothing
// after.
type crashAt struct {
	memStore
	n, count int
}

func (c *crashAt) WriteResult(ctx context.Context, r *Result) error {
	if c.count++; c.count == c.n {
		return errors.New("the process died")
	}
	return c.memStore.WriteResult(ctx, r)
}

func (c *crashAt) last(t *testing.T) *Result {
	t.Helper()
	if len(c.writes) == 0 {
		t.Fatal("nothing was written before the crash")
	}
	r := c.writes[len(c.writes)-1]
	return &r
}

// TestResumeAfterACrashAtEveryWrite crashes a run at each of its writes in
// turn and resumes it from what was stored: every task of every loop runs,
// at most the one in flight at the crash twice, and the result is the
// same as an uninterrupted run's.
func TestResumeAfterACrashAtEveryWrite(t *testing.T) {
	const spec = header + `spec: {loops: 3, interval: 1m, versions: [a, b], tasks: [
  {task: count, with: {name: first}},
  {task: fake, with: {value: 3, perLoop: 2}},
  {task: count, with: {name: last}}]}`
	clock := func() *loopClock { return &loopClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }
	full := &memStore{}
	c := clock()
	want, err := (&Runner{Store: full, Now: c.Now, Wait: c.Wait}).Run(context.Background(), countingPlan(t, spec, map[string]int{}))
	if err != nil {
		t.Fatal(err)
	}
	for n := 2; n <= len(full.writes); n++ {
		t.Run(fmt.Sprintf("crash at write %d", n), func(t *testing.T) {
			runs := map[string]int{}
			plan := countingPlan(t, spec, runs)
			st := &crashAt{n: n}
			c := clock()
			if _, err := (&Runner{Store: st, Now: c.Now, Wait: c.Wait}).Run(context.Background(), plan); err == nil {
				t.Fatal("the run with a crashing store succeeded")
			}
			stored := st.last(t)
			after := &memStore{}
			got, err := (&Runner{Store: after, Now: c.Now, Wait: c.Wait, Resume: stored}).Run(context.Background(), plan)
			if err != nil {
				t.Fatalf("resumed run: %v", err)
			}
			twice := 0
			for loop := 1; loop <= 3; loop++ {
				for _, name := range []string{"first", "last"} {
					k := fmt.Sprintf("%s@%d", name, loop)
					switch runs[k] {
					case 1:
					case 2:
						twice++
					default:
						t.Errorf("%s ran %d times", k, runs[k])
					}
				}
			}
			if twice > 1 {
				t.Errorf("%d tasks ran twice (%v), want at most the one in flight at the crash", twice, runs)
			}
			if !sameOutcome(got, want) {
				g, _ := json.Marshal(got)
				w, _ := json.Marshal(want)
				t.Errorf("resumed result differs from an uninterrupted run's:\n got %s\nwant %s", g, w)
			}
		})
	}
}

// sameOutcome compares what two runs found, not when.
func sameOutcome(a, b *Result) bool {
	loops := func(r *Result) []int {
		var l []int
		for _, h := range r.History {
			l = append(l, h.Loop)
		}
		return l
	}
	metrics := func(r *Result) map[int]map[string]map[string]float64 {
		m := map[int]map[string]map[string]float64{}
		for _, h := range r.History {
			m[h.Loop] = h.Metrics
		}
		return m
	}
	return a.Completed() && b.Completed() && a.Loop == b.Loop && states(*a) == states(*b) &&
		reflect.DeepEqual(a.Versions, b.Versions) && reflect.DeepEqual(loops(a), loops(b)) &&
		reflect.DeepEqual(metrics(a), metrics(b))
}

func TestResume(t *testing.T) {
	clock := func() *loopClock { return &loopClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }
	t.Run("an ended run is not run again", func(t *testing.T) {
		runs := map[string]int{}
		plan := countingPlan(t, header+"spec: {loops: 2, tasks: [{task: count, with: {name: x}}, {task: fake, with: {failInLoop: 2}}]}", runs)
		c := clock()
		stored, err := (&Runner{Now: c.Now, Wait: c.Wait}).Run(context.Background(), plan)
		if !errors.Is(err, ErrTaskFailed) {
			t.Fatalf("first run: %v, want a failed task", err)
		}
		before := fmt.Sprint(runs)
		res, err := (&Runner{Now: c.Now, Wait: c.Wait, Resume: stored}).Run(context.Background(), plan)
		if !errors.Is(err, ErrTaskFailed) || !strings.Contains(err.Error(), "failed in this loop") || res != stored {
			t.Errorf("resumed an ended run: %v; want its own failure and its stored result", err)
		}
		if fmt.Sprint(runs) != before {
			t.Errorf("tasks ran again: %v, before %s", runs, before)
		}
	})
	t.Run("an interrupted run goes on where it stopped", func(t *testing.T) {
		runs := map[string]int{}
		plan := countingPlan(t, header+"spec: {loops: 3, interval: 1h, tasks: [{task: count, with: {name: x}}]}", runs)
		ctx, cancel := context.WithCancel(context.Background())
		wait := func(ctx context.Context, _ time.Time) error {
			cancel()
			return ctx.Err()
		}
		stored, err := (&Runner{Wait: wait}).Run(ctx, plan)
		if !errors.Is(err, ErrInterrupted) || !stored.Interrupted || stored.EndTime == nil || stored.Completed() {
			t.Fatalf("first run: %v, interrupted %v, completed %v; want interrupted before loop 2, with its end time", err, stored.Interrupted, stored.Completed())
		}
		c := clock()
		c.now = stored.EndTime.Add(3 * time.Hour) // the retried pod starts late; the fake clock ticks a second a read
		since := c.now
		res, err := (&Runner{Now: c.Now, Wait: c.Wait, Resume: stored}).Run(context.Background(), plan)
		if err != nil || res.Interrupted || res.Loop != 3 || len(res.History) != 3 {
			t.Fatalf("resumed: %v, interrupted %v, loop %d, %d in history; want 3 loops done", err, res.Interrupted, res.Loop, len(res.History))
		}
		if runs["x@1"] != 1 || runs["x@2"] != 1 || runs["x@3"] != 1 {
			t.Errorf("runs %v, want each loop once", runs)
		}
		// The missed loops do not run back to back: loop 2 at once, loop 3
		// an interval later.
		if len(c.waits) != 2 || c.waits[0].After(since.Add(10*time.Second)) || !c.waits[1].Equal(c.waits[0].Add(time.Hour)) {
			t.Errorf("waits %v after resuming at %v; want loop 2 at once and loop 3 an hour later", c.waits, since)
		}
	})
	t.Run("a result of another spec is not resumed", func(t *testing.T) {
		runs := map[string]int{}
		plan := countingPlan(t, header+"spec: {loops: 2, tasks: [{task: count, with: {name: x}}]}", runs)
		other := countingPlan(t, header+"spec: {loops: 2, tasks: [{task: fake}]}", runs)
		c := clock()
		stored := NewResult(other, 1, c.Now())
		stored.Loop, stored.Loops = 1, 2
		res, err := (&Runner{Now: c.Now, Wait: c.Wait, Resume: stored}).Run(context.Background(), plan)
		if err != nil || res == stored || runs["x@1"] != 1 || runs["x@2"] != 1 {
			t.Errorf("run: %v, runs %v; want a new run of both loops", err, runs)
		}
	})
}

// TestResumeAfterAFailedLoopAndAnInterrupt resumes a run that an interrupt
// stopped while it awaited the loop after a failed one (failedLoops:
// continue): the failed loop stays in the history once, and the next
// loops run.
func TestResumeAfterAFailedLoopAndAnInterrupt(t *testing.T) {
	runs := map[string]int{}
	plan := countingPlan(t, header+"spec: {loops: 3, interval: 1h, failedLoops: continue, tasks: [{task: count, with: {name: x}}, {task: fake, with: {failInLoop: 1}}]}", runs)
	ctx, cancel := context.WithCancel(context.Background())
	wait := func(ctx context.Context, _ time.Time) error {
		cancel()
		return ctx.Err()
	}
	stored, err := (&Runner{Wait: wait}).Run(ctx, plan)
	if !errors.Is(err, ErrInterrupted) || !stored.Interrupted {
		t.Fatalf("first run: %v, interrupted %v", err, stored.Interrupted)
	}
	c := &loopClock{now: stored.EndTime.Add(time.Minute)}
	res, err := (&Runner{Now: c.Now, Wait: c.Wait, Resume: stored}).Run(context.Background(), plan)
	if err != nil {
		t.Fatalf("resumed: %v", err)
	}
	var loops []int
	for _, h := range res.History {
		loops = append(loops, h.Loop)
	}
	if fmt.Sprint(loops) != "[1 2 3]" || !res.History[0].Failed || runs["x@1"] != 1 || runs["x@2"] != 1 || runs["x@3"] != 1 {
		t.Errorf("history loops %v (first failed: %v), runs %v; want 1 2 3 once each", loops, res.History[0].Failed, runs)
	}
}

// TestInterruptAfterTheEndIsNotAnInterrupt: a run that failOnSLOs ended is
// not marked interrupted by a signal that comes as it ends.
func TestInterruptAfterTheEndIsNotAnInterrupt(t *testing.T) {
	plan := decode(t, header+"spec: {loops: 3, failOnSLOs: true, tasks: [{task: fake, with: {value: 5}}, {task: check, with: {metric: fake/value, upper: 2}}]}")
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the signal is in before the run decides; no task waits on it
	res, err := (&Runner{}).Run(ctx, plan)
	if !errors.Is(err, ErrSLOsNotMet) || res.Interrupted {
		t.Errorf("Run: %v, interrupted %v; want unmet SLOs, not an interrupt", err, res.Interrupted)
	}
}

// TestInterruptedRunIsNotCompleted: a run that a signal stopped, between
// loops or in a task, keeps its end time but reports itself interrupted,
// not completed or failed, in its stored form too, since a retried Job's
// pod resumes it; once resumed to its end, it is completed.
func TestInterruptedRunIsNotCompleted(t *testing.T) {
	tests := []struct {
		name, spec string
		failed     bool
	}{
		{"between loops", header + "spec: {loops: 2, interval: 1h, tasks: [{task: fake, with: {value: 1}}]}", false},
		{"in a task", header + "spec: {tasks: [{task: fake, with: {wait: true}}]}", true},
	}
	// The resumed run's task does not wait for a signal.
	resumedPlan := map[string]string{"in a task": header + "spec: {tasks: [{task: fake, with: {value: 1}}]}"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan := decode(t, tt.spec)
			ctx, cancel := context.WithCancel(context.Background())
			wait := func(ctx context.Context, _ time.Time) error {
				cancel()
				return ctx.Err()
			}
			if tt.failed {
				cancel() // the waiting task sees it at once
			}
			res, err := (&Runner{Wait: wait}).Run(ctx, plan)
			cancel()
			if !errors.Is(err, ErrInterrupted) && !errors.Is(err, ErrTaskFailed) || !res.Interrupted {
				t.Fatalf("Run: %v, interrupted %v; want an interrupted run", err, res.Interrupted)
			}
			data, err := json.Marshal(res)
			if err != nil {
				t.Fatal(err)
			}
			var stored Result
			if err := json.Unmarshal(data, &stored); err != nil {
				t.Fatal(err)
			}
			for _, r := range []*Result{res, &stored} {
				if r.State() != StateInterrupted || r.Completed() || r.EndTime == nil || r.Failed() != tt.failed {
					t.Errorf("interrupted run: state %q, completed %v, end time %v, failed %v; want interrupted, not completed, an end time, failed %v",
						r.State(), r.Completed(), r.EndTime, r.Failed(), tt.failed)
				}
			}
			c := &loopClock{now: stored.EndTime.Add(time.Minute)}
			if spec, ok := resumedPlan[tt.name]; ok {
				plan = decode(t, spec)
			}
			resumed, err := (&Runner{Now: c.Now, Wait: c.Wait, Resume: &stored}).Run(context.Background(), plan)
			if err != nil || resumed.State() != StateCompleted || !resumed.Completed() {
				t.Errorf("resumed: %v, state %q, completed %v; want completed", err, resumed.State(), resumed.Completed())
			}
		})
	}
}

// TestResumable: Resumable answers as the runner decides, and leaves the
// stored result as it was.
func TestResumable(t *testing.T) {
	plan := decode(t, header+"spec: {loops: 2, interval: 1h, tasks: [{task: fake, with: {wait: true}}]}")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	stored, err := (&Runner{}).Run(ctx, plan)
	if !errors.Is(err, ErrTaskFailed) || !stored.Interrupted {
		t.Fatalf("first run: %v, interrupted %v; want a task stopped by the interrupt", err, stored.Interrupted)
	}
	before, err := json.Marshal(stored)
	if err != nil {
		t.Fatal(err)
	}
	other := decode(t, header+"spec: {loops: 2, interval: 1h, tasks: [{task: fake}, {task: fake}]}")
	for _, tt := range []struct {
		name     string
		plan     *Plan
		revision int
		want     bool
	}{
		{"its spec and revision", plan, 1, true},
		{"revision 0 is 1", plan, 0, true},
		{"another revision", plan, 2, false},
		{"another spec", other, 1, false},
	} {
		if got := stored.Resumable(tt.plan, tt.revision); got != tt.want {
			t.Errorf("Resumable by %s = %v, want %v", tt.name, got, tt.want)
		}
	}
	if after, _ := json.Marshal(stored); string(after) != string(before) {
		t.Errorf("Resumable changed the stored result:\n%s\nwas\n%s", after, before)
	}
}
