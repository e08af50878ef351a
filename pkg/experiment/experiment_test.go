package experiment

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
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
	for _, v := range env.Versions {
		env.Result.SetMetric(v, f.Metric, f.Value, "")
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
