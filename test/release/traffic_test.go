package release_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/iter8-tools/iter8/test/traefik"
)

// podAddresses gives the Pods of the traffic tests' versions their
// backends' addresses (TestMain passes it to the harness).
var podAddresses traefik.Addresses

// wantCounts sends n requests and checks how many reached each version,
// within ±tolerance requests, with no errors.
func wantCounts(t *testing.T, ctx context.Context, client *http.Client, url string, header map[string]string, n int, want map[string]int, tolerance int) {
	t.Helper()
	got, errs, first := traefik.Count(ctx, client, url, header, n)
	t.Logf("%d requests (header %v): %v", n, header, got)
	if errs != 0 {
		t.Fatalf("%d requests (header %v): %d failed, first: %v; by version %v", n, header, errs, first, got)
	}
	for v, w := range want {
		if got[v] < w-tolerance || got[v] > w+tolerance {
			t.Errorf("%d requests (header %v): %v, want %v ±%d", n, header, got, want, tolerance)
			return
		}
	}
	for v := range got {
		if _, ok := want[v]; !ok {
			t.Errorf("%d requests (header %v): %v reached %s, want only %v", n, header, got, v, want)
			return
		}
	}
}

// eventually polls probe until it holds, for at most a minute; Traefik
// applies a changed route after its throttle, so a new split shows only
// after a while.
func eventually(t *testing.T, ctx context.Context, what string, probe func() (bool, string)) {
	t.Helper()
	waitUntil(t, ctx, 60*time.Second, what, probe)
}

// waitUntil polls probe every 200ms until it holds, for at most timeout.
func waitUntil(t *testing.T, ctx context.Context, timeout time.Duration, what string, probe func() (bool, string)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, state := probe()
		if ok {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v; last: %s", what, ctx.Err(), state)
		case <-tick.C:
		}
	}
}
