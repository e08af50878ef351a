package load

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/stats"
)

// fakePool answers Run with fixed outcomes and records the work.
type fakePool struct {
	out  []experiment.WorkerOutcome
	err  error
	work experiment.Work
}

func (f *fakePool) Run(_ context.Context, w experiment.Work) ([]experiment.WorkerOutcome, error) {
	f.work = w
	return f.out, f.err
}

func partJSON(t *testing.T, w int, requests int64, errText string) []byte {
	t.Helper()
	h := testHistogram(t, requests)
	data, err := json.Marshal(&Part{Worker: w, Endpoints: []*PartEndpoint{{Requests: requests, Answered: requests, Latency: h, Error: errText}}})
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// testHistogram records n latencies of 1ms.
func testHistogram(t *testing.T, n int64) *stats.Histogram {
	t.Helper()
	start := time.Date(2026, 12, 3, 7, 0, 0, 0, time.UTC)
	r := stats.NewRecorder(time.Second, start)
	for range n {
		r.Record(start, time.Millisecond, false)
	}
	return r.Histogram()
}

// TestRunPool: every worker of the pool gets a row, one without a part
// with why; the error names each worker that failed.
func TestRunPool(t *testing.T) {
	pool := &fakePool{out: []experiment.WorkerOutcome{
		{Part: nil},
		{Err: errors.New("worker 1 failed: its pod failed 3 times")},
		{Part: []byte("{not json")},
		{Part: nil},
		{Part: nil},
	}}
	t.Run("outcomes", func(t *testing.T) {
		pool.out[0].Part = partJSON(t, 0, 10, "")
		pool.out[3].Part = partJSON(t, 0, 10, "") // worker 0's, not 3's
		pool.out[4].Part = partJSON(t, 4, 5, "worker 4: http://x: unreachable")
		env := &experiment.Env{Result: &experiment.Result{Loop: 2}, Workers: pool, Task: 3}
		parts, err := RunPool(context.Background(), env, 5, 1)
		if pool.work.Task != 3 || pool.work.Loop != 2 || pool.work.Workers != 5 {
			t.Errorf("work %+v, want task 3 of loop 2, 5 workers", pool.work)
		}
		if len(parts) != 5 {
			t.Fatalf("%d parts, want a row for each of 5 workers", len(parts))
		}
		for _, want := range []string{"worker 1 failed", "worker 2: its part is not a part", "worker 3: its part is worker 0's", "worker 4: http://x: unreachable"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("error %v; want it to name %q", err, want)
			}
		}
		if strings.Contains(err.Error(), "worker 0:") || strings.Contains(err.Error(), "worker 0 ") {
			t.Errorf("error %v names worker 0, which did its share", err)
		}
		merged, merr := MergeParts(parts, 1)
		if merr != nil || merged[0].Requests != 15 {
			t.Errorf("merged %+v, %v; want workers 0 and 4's 15 requests", merged[0], merr)
		}
	})
	t.Run("pool failed", func(t *testing.T) {
		env := &experiment.Env{Result: &experiment.Result{}, Workers: &fakePool{err: errors.New("workers: create job x: forbidden")}}
		parts, err := RunPool(context.Background(), env, 3, 1)
		if len(parts) != 0 || err == nil || err.Error() != "workers: create job x: forbidden" {
			t.Errorf("parts %d, error %v; want none and the pool's error alone", len(parts), err)
		}
	})
}
