package action

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/cli/values"

	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/store"
)

func TestLaunchRendersTheSpec(t *testing.T) {
	dir := t.TempDir()
	valuesFile := filepath.Join(dir, "values.yaml")
	if err := os.WriteFile(valuesFile, []byte(`
versions: [v1, v2]
failOnSLOs: true
tasks: [http, assess]
http:
  duration: 2s
  endpoints:
  - {version: v1, url: "http://127.0.0.1:1/"}
  - {version: v2, url: "http://127.0.0.1:2/"}
assess:
  if: slos
  slos:
  - {metric: http/latency-p99, upper: 50}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	a := NewLaunch(NewConfiguration())
	a.Name = "perf"
	a.Values = values.Options{
		ValueFiles: []string{valuesFile},
		Values:     []string{"http.qps=2.5", "assess.slos[0].upper=12.5", "http.percentiles={99.99}"},
	}
	spec, err := a.Render()
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	// The rendered spec must decode, and say what the values said.
	plan, err := experiment.Decode(spec, experiment.DecodeOptions{Registry: NewConfiguration().Registry})
	if err != nil {
		t.Fatalf("the rendered spec does not decode: %v\n%s", err, spec)
	}
	e := plan.Experiment
	if e.Metadata.Name != "perf" || !e.Spec.FailOnSLOs || strings.Join(e.Spec.Versions, ",") != "v1,v2" {
		t.Errorf("metadata/spec = %+v", e)
	}
	if len(plan.Tasks) != 2 || plan.Tasks[1].Spec.If != "slos" {
		t.Fatalf("tasks = %+v; want http, then assess with if: slos", plan.Tasks)
	}
	var with map[string]any
	if err := json.Unmarshal(plan.Tasks[1].Spec.With, &with); err != nil {
		t.Fatal(err)
	}
	if _, hasIf := with["if"]; hasIf {
		t.Errorf("assess inputs keep `if`: %v", with)
	}
	slo := with["slos"].([]any)[0].(map[string]any)
	if slo["upper"] != 12.5 {
		t.Errorf("slo upper = %#v, want the number 12.5 from --set", slo["upper"])
	}
	if err := json.Unmarshal(plan.Tasks[0].Spec.With, &with); err != nil {
		t.Fatal(err)
	}
	if with["qps"] != 2.5 {
		t.Errorf("http qps = %#v, want the number 2.5 from --set", with["qps"])
	}
}

func TestLaunchRejectsBadValuesBeforeWritingAnything(t *testing.T) {
	tests := []struct {
		name string
		set  []string
		want string
	}{
		{"unknown key", []string{"tasks={http}", "http.url=http://h/", "http.urls=x"}, "/http"},
		{"unknown task", []string{"tasks={http,notify2}"}, "/tasks/1"},
		{"negative qps", []string{"tasks={http}", "http.url=http://h/", "http.qps=-1"}, "/http/qps"},
		{"not a number", []string{"tasks={assess}", "assess.slos[0].metric=m", "assess.slos[0].upper=fast"}, "/assess/slos/0/upper"},
		{"bad duration", []string{"tasks={http}", "http.url=http://h/", "http.duration=5 parsecs"}, "/http/duration"},
		{"no tasks", nil, "tasks"},
		{"spec error after rendering", []string{"tasks={http}", "http.url=http://h/", "http.numRequests=5", "http.duration=5s"}, "spec.tasks[0].with.duration"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			a := NewLaunch(NewConfiguration())
			a.SpecPath = filepath.Join(dir, "experiment.yaml")
			a.Values.Values = tc.set
			_, err := a.Run(context.Background())
			if !errors.Is(err, ErrInvalidSpec) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("--set %v: error = %v\nwant ErrInvalidSpec naming %q", tc.set, err, tc.want)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("--set %v left files behind: %v", tc.set, entries)
			}
		})
	}
}

func TestLaunchDryWritesOnlyTheSpec(t *testing.T) {
	dir := t.TempDir()
	a := NewLaunch(NewConfiguration())
	a.SpecPath, a.Dry = filepath.Join(dir, "e.yaml"), true
	a.Values.Values = []string{"tasks={http}", "http.url=http://127.0.0.1:1/"}
	res, err := a.Run(context.Background())
	if err != nil || res.Result != nil {
		t.Fatalf("dry launch: %v, result %v", err, res.Result)
	}
	if _, err := os.Stat(filepath.Join(dir, "e.yaml")); err != nil {
		t.Errorf("spec not written: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "e.result.json")); !os.IsNotExist(err) {
		t.Errorf("a dry launch wrote a result (stat: %v)", err)
	}
}

func writeResult(t *testing.T, spec string, r *experiment.Result) {
	t.Helper()
	if err := (&store.File{SpecPath: spec}).WriteResult(context.Background(), r); err != nil {
		t.Fatal(err)
	}
}

func running() *experiment.Result {
	return &experiment.Result{Experiment: "e", Tasks: []experiment.TaskResult{{Task: "http", State: experiment.TaskRunning}}}
}

func TestAssertWaitsForTheRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		spec := filepath.Join(t.TempDir(), "experiment.yaml")
		writeResult(t, spec, running())
		go func() {
			time.Sleep(3 * time.Second)
			r := running()
			r.Tasks[0].State = experiment.TaskSucceeded
			end := time.Now()
			r.EndTime = &end
			writeResult(t, spec, r)
		}()
		a := NewAssert(NewConfiguration())
		a.Experiment, a.Conditions, a.Timeout = &store.File{SpecPath: spec}, []Condition{Completed, NoFailure}, 10*time.Second
		start := time.Now()
		res, err := a.Run(context.Background())
		if err != nil || !res.Holds() {
			t.Fatalf("Assert = %+v, %v; want the conditions to hold once the run ends", res, err)
		}
		if waited := time.Since(start); waited < 3*time.Second || waited > 4*time.Second {
			t.Errorf("assert returned after %v, want soon after the 3s the run took", waited)
		}
	})
}

func TestAssertTimesOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		spec := filepath.Join(t.TempDir(), "experiment.yaml")
		writeResult(t, spec, running())
		a := NewAssert(NewConfiguration())
		a.Experiment, a.Conditions, a.Timeout = &store.File{SpecPath: spec}, []Condition{Completed}, 5*time.Second
		start := time.Now()
		res, err := a.Run(context.Background())
		if err != nil || res.Holds() || res.Verdicts[0].Why == "" {
			t.Fatalf("Assert = %+v, %v; want a false condition with a reason", res, err)
		}
		if waited := time.Since(start); waited != 5*time.Second {
			t.Errorf("assert gave up after %v, want the 5s timeout", waited)
		}
	})
}

func TestAssertWithoutResult(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := NewAssert(NewConfiguration())
		a.Experiment, a.Conditions, a.Timeout = &store.File{SpecPath: filepath.Join(t.TempDir(), "x.yaml")}, []Condition{Completed}, 2*time.Second
		_, err := a.Run(context.Background())
		if !errors.Is(err, store.ErrNoResult) || !strings.Contains(err.Error(), "waited 2s") {
			t.Fatalf("Assert error = %v; want no result after waiting 2s", err)
		}
	})
}

func TestParseConditions(t *testing.T) {
	got, err := ParseConditions([]string{"completed,nofailure", " SLOs ", "completed"})
	if err != nil || len(got) != 3 || got[2] != SLOs {
		t.Errorf("ParseConditions = %v, %v; want completed, nofailure, slos", got, err)
	}
	for _, bad := range [][]string{{"fast"}, {}, {""}} {
		if _, err := ParseConditions(bad); err == nil {
			t.Errorf("ParseConditions(%q) succeeded", bad)
		}
	}
}

// TestReleaseNameRuleIsHelms: the one check of experiment and release names
// (pkg/experiment cannot import Helm's) agrees with Helm's own.
func TestReleaseNameRuleIsHelms(t *testing.T) {
	for _, name := range []string{
		"perf", "a", "perf-1", "perf.v1", "a.b.c", "0abc", strings.Repeat("a", 53), strings.Repeat("a", 54),
		"", "-perf", "perf-", "Perf", "perf_1", "perf..v1", ".perf", "perf.", "perf.-v1", "pérf", "perf v1",
	} {
		helm := chartutil.ValidateReleaseName(name) == nil
		if ours := experiment.ValidName(name); ours != helm {
			t.Errorf("ValidName(%q) = %v, Helm's ValidateReleaseName accepts it: %v", name, ours, helm)
		}
	}
}
