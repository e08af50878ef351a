//go:build !windows

package e2e

import (
	"bytes"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// signalSpec is a run whose http task is under way long enough for a
// signal to arrive in the middle of its load.
const signalSpec = `apiVersion: iter8.tools/v1
kind: Experiment
metadata:
  name: signal
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

// TestSignalsStopARun sends SIGINT (Ctrl-C), SIGHUP (the terminal closes,
// an ssh session drops) and SIGTERM (a CI runner or Kubernetes stops the
// process) in the middle of a run's load, and checks that each ends the run
// promptly, with a non-zero code, and with the result kept, correct and no
// longer "running": the ready task's success, the load measured so far, the
// http task failed as interrupted and the assess task skipped.
func TestSignalsStopARun(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGHUP, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) { testSignalStopsRun(t, sig) })
	}
}

func testSignalStopsRun(t *testing.T, sig syscall.Signal) {
	tg := newTarget(t)
	dir := t.TempDir()
	writeFile(t, dir, "spec.yaml", strings.ReplaceAll(signalSpec, "{{URL}}", tg.url()))
	resultPath := filepath.Join(dir, "spec.result.json")

	cmd := command(t.Context(), dir, "run", "-f", "spec.yaml")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start kubectl-iter8: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	reaped := false
	t.Cleanup(func() {
		if !reaped {
			_ = cmd.Process.Kill()
			<-exited
		}
	})

	// Wait until the http task runs and has sent measured load.
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
			t.Fatalf("kubectl-iter8 ended before the signal: %v\nstderr:\n%s", err, stderr.String())
		case <-poll.C:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the http task was not running with load after 15s (result %+v)\nstderr:\n%s", r, stderr.String())
		}
	}

	if err := cmd.Process.Signal(sig); err != nil {
		t.Fatalf("send %v: %v", sig, err)
	}
	signalled := time.Now()
	var waitErr error
	select {
	case waitErr = <-exited:
		reaped = true
	case <-time.After(15 * time.Second):
		t.Fatalf("kubectl-iter8 still running 15s after %v\nstderr:\n%s", sig, stderr.String())
	}
	took := time.Since(signalled)
	t.Logf("stopped %v after %v; the target had %d requests", took.Round(time.Millisecond), sig, tg.requests.Load())
	if took > 2*time.Second {
		t.Errorf("took %v to stop after %v, want under 2s", took.Round(time.Millisecond), sig)
	}

	out := outcome{args: cmd.Args[1:], stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case waitErr == nil:
		t.Errorf("exit code 0 after %v, want non-zero\n%s", sig, out)
	case errors.As(waitErr, &ee):
		out.code = ee.ExitCode()
		if !ee.Exited() {
			t.Errorf("killed by %v instead of stopping by itself: the measured load and the result's end are lost\n%s", sig, out)
		}
	default:
		t.Errorf("wait: %v", waitErr)
	}
	checkNoCrash(t, out)

	r, ok, err := readResult(resultPath)
	if err != nil || !ok {
		t.Fatalf("read result after %v: ok %v, %v", sig, ok, err)
	}
	for i, want := range []string{"succeeded", "failed", "skipped"} {
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
	if len(r.SLOs) != 0 {
		t.Errorf("SLO verdicts %+v from a skipped assess task", r.SLOs)
	}
	if r.EndTime == nil || r.EndTime.IsZero() {
		t.Errorf("endTime is not set after %v", sig)
	}
	n, ok := r.metric(0, "http/request-count")
	if !ok || n <= 0 {
		t.Errorf("versions[0] http/request-count = %v (present %v), want > 0: the load sent before %v is lost", n, ok, sig)
	}
	// The measured load is what the target saw, less the ready task's
	// check and the requests in flight when the load stopped (at most one
	// per connection), with a little room for more ready checks.
	if got := tg.requests.Load(); n > float64(got) || n < float64(got)-8 {
		t.Errorf("http/request-count %v, the target counted %d", n, got)
	}
}
