package e2e

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// TestLocalJourney follows a user through a local experiment: launch, the
// three report formats, assert, log, delete, and the commands' answers when
// there is nothing to read or a cluster would be needed.
func TestLocalJourney(t *testing.T) {
	tg := newTarget(t)
	dir := t.TempDir()
	specPath := filepath.Join(dir, "experiment.yaml")
	resultPath := filepath.Join(dir, "experiment.result.json")

	// Step functions share dir and stop the journey at the first broken step:
	// later steps read what earlier ones wrote.
	mustRun := func(t *testing.T, wantCode int, args ...string) outcome {
		t.Helper()
		out := iter8(t, dir, args...)
		checkNoCrash(t, out)
		if out.code != wantCode {
			t.Fatalf("exit code %d, want %d\n%s", out.code, wantCode, out)
		}
		return out
	}

	t.Run("launch", func(t *testing.T) {
		out := mustRun(t, 0, "launch", "--local",
			"--set", "tasks={ready,http,assess}",
			"--set", "ready.url="+tg.url(),
			"--set", "http.url="+tg.url(),
			"--set", "http.numRequests=40",
			"--set", "http.connections=2",
			"--set", "assess.slos[0].metric=http/error-rate",
			"--set", "assess.slos[0].upper=0",
			"--set", "assess.slos[1].metric=http/latency-p99",
			"--set", "assess.slos[1].upper=5000",
		)
		for _, p := range []string{specPath, resultPath} {
			if !fileExists(p) {
				t.Errorf("launch did not write %s\n%s", p, out)
			}
		}
		// 1 ready check, 40 measured requests, warm-up requests per connection.
		if n := tg.requests.Load(); n < 41 {
			t.Errorf("the target got %d requests, want at least 41", n)
		}
	})
	if t.Failed() {
		t.FailNow()
	}

	t.Run("report text", func(t *testing.T) {
		out := mustRun(t, 0, "report")
		for _, want := range []string{"http/request-count", "http/error-rate", "http/latency-p99", "http/latency-mean", "✔"} {
			if !strings.Contains(out.stdout, want) {
				t.Errorf("report does not show %q\n%s", want, out)
			}
		}
		if strings.Contains(out.stdout, "✗") {
			t.Errorf("report shows a failed verdict\n%s", out)
		}
	})

	t.Run("report json", func(t *testing.T) {
		out := mustRun(t, 0, "report", "-o", "json")
		var r result
		if err := json.Unmarshal([]byte(out.stdout), &r); err != nil {
			t.Fatalf("report -o json is not JSON: %v\n%s", err, out)
		}
		checkPassingResult(t, &r)
	})

	t.Run("report yaml", func(t *testing.T) {
		out := mustRun(t, 0, "report", "-o", "yaml")
		var r result
		if err := yaml.Unmarshal([]byte(out.stdout), &r); err != nil {
			t.Fatalf("report -o yaml is not YAML: %v\n%s", err, out)
		}
		checkPassingResult(t, &r)
	})

	t.Run("assert holds", func(t *testing.T) {
		out := mustRun(t, 0, "assert", "-c", "completed,nofailure,slos")
		for _, c := range []string{"completed", "nofailure", "slos"} {
			if !strings.Contains(out.stdout, "✔ "+c) {
				t.Errorf("assert does not show %q as holding\n%s", c, out)
			}
		}
	})

	t.Run("log", func(t *testing.T) {
		out := mustRun(t, 0, "log")
		lines := strings.Split(strings.TrimSpace(out.stdout), "\n")
		if len(lines) < 3 || !strings.Contains(out.stdout, "task succeeded") {
			t.Errorf("log shows %d lines, want the run's log with its tasks\n%s", len(lines), out)
		}
	})

	t.Run("version", func(t *testing.T) {
		out := mustRun(t, 0, "version")
		if strings.TrimSpace(out.stdout) == "" {
			t.Errorf("version prints nothing\n%s", out)
		}
	})

	t.Run("report of a release needs a cluster", func(t *testing.T) {
		// A kubeconfig that does not exist: the release form must say it could
		// not reach a cluster, and never fall back to a local result.
		out := mustRun(t, 2, "report", "somerelease", "--kubeconfig", filepath.Join(t.TempDir(), "none"))
		if !strings.Contains(out.stderr, "somerelease") || !strings.Contains(out.stderr, "cluster") {
			t.Errorf("stderr does not say that release somerelease needs a cluster\n%s", out)
		}
	})

	t.Run("delete", func(t *testing.T) {
		out := mustRun(t, 0, "delete")
		for _, p := range []string{specPath, resultPath} {
			if fileExists(p) {
				t.Errorf("delete left %s\n%s", p, out)
			}
			if !strings.Contains(out.stdout, filepath.Base(p)) {
				t.Errorf("delete does not say it removed %s\n%s", filepath.Base(p), out)
			}
		}
	})
}

// checkPassingResult checks a report of the journey's experiment.
func checkPassingResult(t *testing.T, r *result) {
	t.Helper()
	if r.Experiment == "" || r.EndTime == nil {
		t.Errorf("experiment %q, endTime %v: want a named, completed experiment", r.Experiment, r.EndTime)
	}
	if len(r.Tasks) != 3 {
		t.Fatalf("%d tasks, want 3", len(r.Tasks))
	}
	for i, tk := range r.Tasks {
		if tk.State != "succeeded" {
			t.Errorf("tasks[%d] (%s) %s, want succeeded: %s", i, tk.Task, tk.State, tk.Error)
		}
	}
	if n, ok := r.metric(0, "http/request-count"); !ok || n != 40 {
		t.Errorf("http/request-count = %v (present %v), want 40", n, ok)
	}
	wantSLOs := []string{"http/error-rate", "http/latency-p99"}
	if len(r.SLOs) != len(wantSLOs) {
		t.Fatalf("%d SLO verdicts, want %d: %+v", len(r.SLOs), len(wantSLOs), r.SLOs)
	}
	for i, v := range r.SLOs {
		if v.Metric != wantSLOs[i] || !v.Satisfied || v.Value == nil {
			t.Errorf("slos[%d] = %+v, want %s satisfied with a value", i, v, wantSLOs[i])
		}
	}
}

// TestAssertFails checks the two ways assert can fail: a condition that is
// false (exit 1, naming the SLO) and no result to check (exit 2).
func TestAssertFails(t *testing.T) {
	t.Parallel()
	t.Run("impossible SLO", func(t *testing.T) {
		t.Parallel()
		tg := newTarget(t)
		dir := t.TempDir()
		launch := iter8(t, dir, "launch", "--local", "--spec", "impossible.yaml",
			"--set", "tasks={http,assess}",
			"--set", "http.url="+tg.url(),
			"--set", "http.numRequests=10",
			"--set", "assess.slos[0].metric=http/error-rate",
			"--set", "assess.slos[0].upper=0",
			"--set", "assess.slos[1].metric=http/request-count",
			"--set", "assess.slos[1].lower=1000000",
		)
		checkNoCrash(t, launch)
		// An unmet SLO is a verdict, not a failure, without failOnSLOs.
		if launch.code != 0 {
			t.Fatalf("launch: exit code %d, want 0\n%s", launch.code, launch)
		}
		out := iter8(t, dir, "assert", "-f", "impossible.yaml", "-c", "completed,nofailure,slos")
		checkNoCrash(t, out)
		if out.code != 1 {
			t.Errorf("assert: exit code %d, want 1\n%s", out.code, out)
		}
		if !strings.Contains(out.stdout, "✔ completed") || !strings.Contains(out.stdout, "✔ nofailure") {
			t.Errorf("assert does not show completed and nofailure holding\n%s", out)
		}
		if !strings.Contains(out.stdout, "✗ slos") || !strings.Contains(out.stdout, "http/request-count") {
			t.Errorf("assert does not name the unmet SLO http/request-count\n%s", out)
		}
		if strings.Contains(out.stdout, "http/error-rate") {
			t.Errorf("assert names the SLO on http/error-rate, which is met\n%s", out)
		}
	})

	t.Run("failOnSLOs", func(t *testing.T) {
		t.Parallel()
		tg := newTarget(t)
		dir := t.TempDir()
		out := iter8(t, dir, "launch", "--local",
			"--set", "failOnSLOs=true",
			"--set", "tasks={http,assess}",
			"--set", "http.url="+tg.url(),
			"--set", "http.numRequests=10",
			"--set", "assess.slos[0].metric=http/request-count",
			"--set", "assess.slos[0].lower=1000000",
		)
		checkNoCrash(t, out)
		if out.code != 1 {
			t.Errorf("launch with an unmet SLO and failOnSLOs: exit code %d, want 1\n%s", out.code, out)
		}
		if !fileExists(filepath.Join(dir, "experiment.result.json")) {
			t.Errorf("no result for a run whose SLOs were not met")
		}
	})

	t.Run("no result", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		out := iter8(t, dir, "assert", "-c", "completed")
		checkNoCrash(t, out)
		if out.code != 2 {
			t.Errorf("exit code %d, want 2\n%s", out.code, out)
		}
		for _, want := range []string{"experiment.yaml", "-f SPEC"} {
			if !strings.Contains(out.stderr, want) {
				t.Errorf("stderr does not say what assert expected (%q)\n%s", want, out)
			}
		}
	})
}

// TestLaunchDry checks that a dry launch writes the spec and sends nothing,
// and that the spec it writes runs.
func TestLaunchDry(t *testing.T) {
	t.Parallel()
	tg := newTarget(t)
	dir := t.TempDir()
	out := iter8(t, dir, "launch", "--local", "--dry",
		"--set", "tasks={ready,http}",
		"--set", "ready.url="+tg.url(),
		"--set", "http.url="+tg.url(),
		"--set", "http.numRequests=5",
	)
	checkNoCrash(t, out)
	if out.code != 0 {
		t.Fatalf("exit code %d, want 0\n%s", out.code, out)
	}
	if !fileExists(filepath.Join(dir, "experiment.yaml")) {
		t.Fatalf("launch --dry did not write experiment.yaml\n%s", out)
	}
	if files := resultFiles(t, dir); len(files) > 0 {
		t.Errorf("launch --dry wrote results %v", files)
	}
	if n := tg.requests.Load(); n != 0 {
		t.Fatalf("launch --dry sent %d requests, want 0", n)
	}

	run := iter8(t, dir, "run", "-f", "experiment.yaml")
	checkNoCrash(t, run)
	if run.code != 0 {
		t.Errorf("run of the spec that launch --dry wrote: exit code %d, want 0\n%s", run.code, run)
	}
	if n := tg.requests.Load(); n < 6 {
		t.Errorf("run of the dry spec: the target got %d requests, want at least 6", n)
	}
}
