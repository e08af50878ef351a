package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/iter8-tools/iter8/pkg/experiment/experimenttest"
)

// TestJQBounded checks that the task's timeout bounds the jq step and that
// a program building one huge value is stopped before it exhausts memory
// (issue 13: `last(range(1e12))` with timeout 3s ran past 30s, and
// `[range(1e9)]` ran out of memory).
func TestJQBounded(t *testing.T) {
	tests := []struct {
		name, jq, timeout string
		want              string
	}{
		{"runaway loop", "last(range(1e12))", "2s", "within the timeout (2s)"},
		{"huge value", "[range(1e9)] | length", "60s", "more than 256 MiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBackend(t, 200, `{}`)
			with := "provider: prometheus\nendpoint: " + b.URL + "\ntimeout: " + tt.timeout +
				"\nqueries: [{name: q, query: up, jq: '" + tt.jq + "'}]\n"
			task, _, plan := decode(t, with, []string{"v1"})
			type outcome struct{ err error }
			done := make(chan outcome, 1)
			go func() {
				err, _, _ := run(t, task, plan, nil)
				done <- outcome{err}
			}()
			// A generous bound: the point is that the run ends (a
			// runaway program never would), not how fast.
			select {
			case o := <-done:
				if o.err == nil || !strings.Contains(o.err.Error(), tt.want) {
					t.Errorf("Run error = %v, want one containing %q", o.err, tt.want)
				}
			case <-time.After(45 * time.Second):
				t.Fatalf("jq %q still running after 45s", tt.jq)
			}
		})
	}
}

func TestWindowBound(t *testing.T) {
	with := `{provider: prometheus, endpoint: "http://127.0.0.1:9090", window: 9000h, queries: [{name: q, query: up}]}`
	d, _ := experimenttest.Decoding(t, with, []string{"v1"}, nil)
	if _, errs := Decode(d); len(errs) == 0 || !strings.Contains(errs.ToAggregate().Error(), "spec.tasks[0].with.window") {
		t.Errorf("Decode(window: 9000h) errors = %v, want one at window", errs)
	}
}

// TestZeroTimeout: a timeout of 0s is refused, as by every other task
// (it once became the default silently).
func TestZeroTimeout(t *testing.T) {
	with := `{provider: prometheus, endpoint: "http://127.0.0.1:9090", timeout: 0s, queries: [{name: q, query: up}]}`
	d, _ := experimenttest.Decoding(t, with, []string{"v1"}, nil)
	if _, errs := Decode(d); len(errs) == 0 || !strings.Contains(errs.ToAggregate().Error(), `spec.tasks[0].with.timeout: Invalid value: "0s": must be above 0`) {
		t.Errorf("Decode(timeout: 0s) errors = %v, want one at timeout", errs)
	}
}
