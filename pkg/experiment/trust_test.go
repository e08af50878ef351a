package experiment

import (
	"context"
	"errors"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// gapTask declares a metric that it never sets, as a backend without data
// does: a later `if` that reads it must fail, not read 0.
type gapTask struct{}

func (gapTask) Run(_ context.Context, env *Env) error {
	for _, v := range env.Versions {
		env.Result.SetUnavailable(v, "gap/value", "no data for the query")
	}
	return nil
}

func trustRegistry() *Registry {
	r := testRegistry()
	r.Register("gap", func(d *Decoding) (Task, field.ErrorList) {
		for _, v := range d.Versions {
			d.Metrics.Add(v, "gap/value")
		}
		return gapTask{}, nil
	})
	return r
}

// TestIfNamesAreChecked: a version or metric named in an `if` that the spec
// does not have is a decoding error at the `if`'s path, as assess reports
// its metrics; before, a typo made the condition quietly false.
func TestIfNamesAreChecked(t *testing.T) {
	const two = header + "spec:\n  versions: [a, b]\n  tasks:\n  - {task: fake, with: {value: 3}}\n"
	tests := []struct {
		name, cond string
		want       []string
	}{
		{"metric typo", `metrics["b"]["fake/valeu"] > 0`, []string{"spec.tasks[1].if", `"fake/valeu"`, "fake/value"}},
		{"metric typo, dot syntax", `metrics.b["fake/valeu"] > 0`, []string{"spec.tasks[1].if", `"fake/valeu"`}},
		{"unknown version", `metrics["c"]["fake/value"] > 0`, []string{"spec.tasks[1].if", `version "c"`}},
		{"unknown version in versions", `"c" in versions`, []string{"spec.tasks[1].if", `version "c"`}},
		{"unknown metric in a guard", `"fake/valeu" in metrics["a"]`, []string{"spec.tasks[1].if", `"fake/valeu"`}},
		{"unknown metric of any version", `all(versions, {metrics[#]["fake/valeu"] > 0})`, []string{"spec.tasks[1].if", `"fake/valeu"`}},
		{"metric of a later task", `metrics["a"]["fake/later"] > 0`, []string{"spec.tasks[1].if", `"fake/later"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec := two + "  - {task: fake, if: '" + tc.cond + "', with: {metric: fake/other}}\n" +
				"  - {task: fake, with: {metric: fake/later}}\n"
			_, err := Decode([]byte(spec), DecodeOptions{Registry: testRegistry()})
			if err == nil {
				t.Fatalf("Decode with if %s succeeded; want an error", tc.cond)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Decode with if %s: error\n%v\nwant it to contain %q", tc.cond, err, w)
				}
			}
		})
	}
	for _, ok := range []string{
		`metrics["b"]["fake/value"] > 0`,
		`"fake/value" in metrics["a"] && metrics["a"]["fake/value"] > 1`,
		`all(versions, {metrics[#]["fake/value"] > 0})`,
		`"b" in versions && loop == loops`,
	} {
		spec := two + "  - {task: fake, if: '" + ok + "', with: {metric: fake/other}}\n"
		if _, err := Decode([]byte(spec), DecodeOptions{Registry: testRegistry()}); err != nil {
			t.Errorf("Decode with if %s: %v", ok, err)
		}
	}
}

// TestIfMissingValueFails: at run time a metric without a value is an
// error that fails the task and says why, not a quiet false; a guard with
// `in` skips the task instead, and says so.
func TestIfMissingValueFails(t *testing.T) {
	spec := header + `spec:
  tasks:
  - {task: gap}
  - {task: fake, if: 'metrics[""]["gap/value"] > 0', with: {metric: fake/ran}}
`
	plan, err := Decode([]byte(spec), DecodeOptions{Registry: trustRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	res, err := (&Runner{Now: fixedClock()}).Run(context.Background(), plan)
	if !errors.Is(err, ErrTaskFailed) {
		t.Fatalf("Run error = %v; want a task failure", err)
	}
	if got := states(*res); got != "succeeded,failed" {
		t.Errorf("states = %s; want succeeded,failed", got)
	}
	for _, w := range []string{`"gap/value"`, "has no value", "no data for the query", "in metrics"} {
		if !strings.Contains(res.Tasks[1].Error, w) {
			t.Errorf("task 1 error %q lacks %q", res.Tasks[1].Error, w)
		}
	}

	guarded := strings.Replace(spec, `'metrics[""]["gap/value"] > 0'`, `'"gap/value" in metrics[""] && metrics[""]["gap/value"] > 0'`, 1)
	plan, err = Decode([]byte(guarded), DecodeOptions{Registry: trustRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	res, err = (&Runner{Now: fixedClock()}).Run(context.Background(), plan)
	if err != nil {
		t.Fatalf("guarded run: %v", err)
	}
	if got := states(*res); got != "succeeded,skipped" {
		t.Errorf("guarded states = %s; want succeeded,skipped", got)
	}
}

// TestSkipReasons: a skipped task says why: its `if` was false, or an
// earlier task failed.
func TestSkipReasons(t *testing.T) {
	plan := decode(t, header+`spec: {tasks: [
  {task: fake, with: {value: 3}},
  {task: fake, if: "slos && loop > 1", with: {metric: fake/other}},
  {task: fake, with: {fail: boom}},
  {task: fake}]}`)
	res, _ := (&Runner{Now: fixedClock()}).Run(context.Background(), plan)
	if got := states(*res); got != "succeeded,skipped,failed,skipped" {
		t.Fatalf("states = %s", got)
	}
	if got, want := res.Tasks[1].Reason, "if: slos && loop > 1 was false"; got != want {
		t.Errorf("reason of the task whose if was false = %q, want %q", got, want)
	}
	if got := res.Tasks[3].Reason; !strings.Contains(got, "earlier task failed") {
		t.Errorf("reason of the task after a failure = %q", got)
	}
}

// TestDecodeShapeErrors: a file of two documents is refused (it used to run
// the first), a type error names the list index, and a version name is kept
// to a safe character set (it reaches terminals and headers).
func TestDecodeShapeErrors(t *testing.T) {
	tests := []struct {
		name, spec string
		want       []string
	}{
		{"two documents", header + "spec: {tasks: [{task: fake}]}\n---\n" + header + "spec: {tasks: [{task: fake}]}\n",
			[]string{"holds 2 YAML documents; one experiment per file"}},
		{"number for a task", header + "spec: {tasks: [{task: fake}, 3]}", []string{"spec.tasks[1]: got number, want an object"}},
		{"number for a version", header + "spec: {versions: [a, 2], tasks: [{task: fake}]}", []string{"spec.versions[1]: got number, want a string"}},
		{"list for a task name", header + "spec: {tasks: [{task: fake}, {task: [a]}]}", []string{"spec.tasks[1].task: got array, want a string"}},
		{"nested in with", header + "spec: {tasks: [{task: fake}, {task: fake, with: {value: [1]}}]}", []string{"spec.tasks[1].with.value: got array, want a number"}},
		{"escape in a version", header + "spec: {versions: [\"v1\\e]0;pwned\\a\"], tasks: [{task: fake}]}", []string{"spec.versions[0]", `\x1b`, "letters, digits"}},
		{"space in a version", header + "spec: {versions: ['v 1'], tasks: [{task: fake}]}", []string{"spec.versions[0]"}},
		{"version starting with a dot", header + "spec: {versions: [.v1], tasks: [{task: fake}]}", []string{"spec.versions[0]"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode([]byte(tc.spec), DecodeOptions{Registry: testRegistry()})
			if err == nil {
				t.Fatalf("Decode succeeded; want an error with %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\nwant it to contain %q", err, w)
				}
			}
		})
	}
	// What the charts and examples use stays valid, and empty documents
	// around the one spec (as helm template writes) do not count.
	for _, ok := range []string{
		header + "spec: {versions: [v1, v2, stable, canary, v1.2.3, blue_green, A-1], tasks: [{task: fake}]}",
		"---\n# Source: iter8/templates/experiment.yaml\n" + header + "spec: {tasks: [{task: fake}]}\n---\n",
	} {
		if _, err := Decode([]byte(ok), DecodeOptions{Registry: testRegistry()}); err != nil {
			t.Errorf("Decode(%q): %v", ok, err)
		}
	}
}
