package grpc

import (
	"fmt"
	"testing"

	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/test/greeter"
)

// TestRunWorkersMakeExactShares: 4 workers, 402 calls: the merged counts
// are exact, each worker made its share (101, 101, 100, 100), and the
// merged histogram holds every call.
func TestRunWorkersMakeExactShares(t *testing.T) {
	s := startGreeter(t, greeter.Options{})
	f := mustDecode(t, fmt.Sprintf(`{host: %q, call: %s, insecure: true, total: 402, workers: 4, concurrency: 4}`,
		s.Addr(), greeter.SayHello), nil)
	r, err := f.run(t, t.Context())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	checkCounts(t, r, "", "grpc", 402, 0)
	checkLatencies(t, r, "", "grpc")
	if got := s.Calls(); got != 402 {
		t.Errorf("the greeter got %d calls, want exactly 402", got)
	}
	if h := r.Version("").Histograms["grpc/latency"]; h == nil || h.Count != 402 {
		t.Errorf("merged histogram %+v, want 402 calls", h)
	}
	want := []experiment.WorkerCount{{Worker: 0, Requests: 101}, {Worker: 1, Requests: 101}, {Worker: 2, Requests: 100}, {Worker: 3, Requests: 100}}
	if got := r.Version("").Workers["grpc"]; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("workers %v, want %v", got, want)
	}
}
