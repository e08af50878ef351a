package e2e

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

const sigintSpec = `apiVersion: iter8.tools/v1
kind: Experiment
metadata:
  name: sigint
spec:
  tasks:
  - task: ready
    with:
      url: "{{URL}}"
      timeout: 10s
      interval: 50ms
  - task: http
    with:
      url: "{{URL}}"
      duration: 30s
      qps: 0
      connections: 2
  - task: assess
    with:
      slos:
      - {metric: http/error-rate, upper: 0}
`

// TestSIGINT interrupts a run in the middle of its load and checks that the
// binary stops promptly with a non-zero code, keeping what finished: the
// ready task's success, the load measured so far, the http task failed as
// interrupted and the assess task skipped.
func TestSIGINT(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("os.Interrupt cannot be sent to a process on Windows")
	}
	tg := newTarget(t)
	dir := t.TempDir()
	writeFile(t, dir, "spec.yaml", strings.ReplaceAll(sigintSpec, "{{URL}}", tg.url()))
	resultPath := filepath.Join(dir, "spec.result.json")

	cmd := command(t.Context(), dir, "run", "-f", "spec.yaml")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start kubectl-iter8: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	// The process is always gone when the test ends, also when it fails.
	reaped := false
	t.Cleanup(func() {
		if !reaped {
			_ = cmd.Process.Kill()
			<-exited
		}
	})

	// Wait until the result shows the http task running and the target has
	// had some of its measured load: beyond the ready check and fortio's
	// one unmeasured warm-up request per connection.
	deadline := time.Now().Add(15 * time.Second)
	poll := time.NewTicker(20 * time.Millisecond)
	defer poll.Stop()
	for {
		r, ok, err := readResult(resultPath)
		if err != nil {
			t.Fatalf("read result while running: %v", err)
		}
		if ok && len(r.Tasks) == 3 && r.Tasks[1].State == "running" && tg.requests.Load() >= 20 {
			break
		}
		select {
		case err := <-exited:
			reaped = true
			t.Fatalf("kubectl-iter8 ended before it was interrupted: %v\nstderr:\n%s", err, stderr.String())
		case <-poll.C:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the http task was not running with load after 15s (result %+v)\nstderr:\n%s", r, stderr.String())
		}
	}

	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatalf("send interrupt: %v", err)
	}
	signalled := time.Now()
	var waitErr error
	select {
	case waitErr = <-exited:
		reaped = true
	case <-time.After(2 * time.Second):
		t.Fatalf("kubectl-iter8 still running 2s after the interrupt\nstderr:\n%s", stderr.String())
	}
	took := time.Since(signalled)
	t.Logf("exited %v after the interrupt, the target had %d requests", took.Round(time.Millisecond), tg.requests.Load())

	out := outcome{args: cmd.Args[1:], stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case waitErr == nil:
		t.Errorf("exit code 0 after an interrupt, want non-zero\n%s", out)
	case errors.As(waitErr, &ee):
		out.code = ee.ExitCode()
		if !ee.Exited() {
			t.Errorf("killed by the signal (%v) instead of stopping by itself\n%s", ee, out)
		}
	default:
		t.Errorf("wait: %v", waitErr)
	}
	checkNoCrash(t, out)

	r, ok, err := readResult(resultPath)
	if err != nil || !ok {
		t.Fatalf("read result after the interrupt: ok %v, %v", ok, err)
	}
	wantStates := []string{"succeeded", "failed", "skipped"}
	for i, want := range wantStates {
		if i >= len(r.Tasks) {
			t.Fatalf("result has %d tasks, want 3", len(r.Tasks))
		}
		if got := r.Tasks[i].State; got != want {
			t.Errorf("tasks[%d] (%s) state %q, want %q", i, r.Tasks[i].Task, got, want)
		}
	}
	if len(r.Tasks) > 1 && !strings.Contains(r.Tasks[1].Error, "interrupted") {
		t.Errorf("tasks[1] error %q does not mention %q", r.Tasks[1].Error, "interrupted")
	}
	if r.EndTime == nil || r.EndTime.IsZero() {
		t.Errorf("endTime is not set after the interrupt")
	}
	if n, ok := r.metric(0, "http/request-count"); !ok || n <= 0 {
		t.Errorf("versions[0] http/request-count = %v (present %v), want > 0: the load sent before the interrupt is lost", n, ok)
	}
	if len(r.SLOs) != 0 {
		t.Errorf("SLO verdicts %+v from a skipped assess task", r.SLOs)
	}
}
