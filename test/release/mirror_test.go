package release_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	iter8route "github.com/iter8-tools/iter8/pkg/route"
	"github.com/iter8-tools/iter8/test/traefik"
)

// TestTraefikMirror proves strategy mirror on dataPlane traefik in traffic:
// Traefik implements no Gateway API RequestMirror, so the chart mirrors
// through a TraefikService. v2 gets a copy of 30% of the requests (±3% of
// 1000), every answer comes from v1, switching from blue-green to the
// mirror under a sequential client fails no request, and neither does the
// mirror turning unready.
func TestTraefikMirror(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	ns := namespace(t, "traefik-mirror")
	infra := namespace(t, "traefik-mirror-infra")
	tr, backends := startTrafficBed(t, ctx, ns, infra, "app", map[string]traefik.BackendConfig{"v1": {}, "v2": {}}, true)
	client := traefik.NewClient()
	t.Cleanup(client.CloseIdleConnections)
	url := tr.URL + "/"
	more := map[string]any{"gatewayAPI": map[string]any{"parentRefs": []any{map[string]any{"name": "gateway", "namespace": infra}}}}

	mustUpgrade(t, ns, "app", valuesFile(t, "traefik", "blue-green", []version{deployed("v1", 100), deployed("v2", 0)}, more), "--wait")
	eventually(t, ctx, "Traefik routes to v1", func() (bool, string) {
		counts, errs, first := traefik.Count(ctx, client, url, nil, 50)
		return errs == 0 && counts["v1"] == 50, fmt.Sprintf("%v, %d errors (%v)", counts, errs, first)
	})
	if n := served(t, backends["v2"]); n != 0 {
		t.Fatalf("v2 served %d requests before its mirror, want 0", n)
	}

	// The route's backend for v1 becomes the TraefikService.
	load := startTimedLoad(ctx, client, url)
	mustUpgrade(t, ns, "app", valuesFile(t, "traefik", "mirror", []version{deployed("v1", 100), deployed("v2", 0, "mirror", 30)}, more), "--wait")
	live := readParsedRoute(t, ns, "app")
	if b, v1 := live.Backend("app-v2"), live.Backend("app-v1"); b == nil || v1 == nil || b.Mirror != 30 || b.Weight != 0 || v1.Weight != 100 {
		t.Errorf("route.Parse of the live route: %+v, want app-v1 at 100 and app-v2 at 0 mirroring 30%%", live.Backends)
	}
	eventually(t, ctx, "Traefik mirrors to v2", func() (bool, string) {
		n := served(t, backends["v2"])
		return n > 0, fmt.Sprintf("v2 served %d", n)
	})
	sent, failed := load.stop()
	t.Logf("a sequential client across the mirror's arrival: %d requests, %d failed", sent, len(failed))
	if len(failed) > 0 {
		t.Errorf("%d of %d requests failed while the mirror came in, the first at %v", len(failed), sent, failed[0].Format(time.RFC3339Nano))
	}

	before := settledServed(t, ctx, backends["v2"])
	wantCounts(t, ctx, client, url, nil, 1000, map[string]int{"v1": 1000}, 0)
	// Mirrored requests go out after their originals are answered.
	waitUntil(t, ctx, 30*time.Second, "v2 to receive the mirrored requests", func() (bool, string) {
		n := served(t, backends["v2"]) - before
		return n >= 270, fmt.Sprintf("v2 served %d of the 1000", n)
	})
	mirrored := settledServed(t, ctx, backends["v2"]) - before
	t.Logf("1000 requests through Traefik: all answered by v1, %d mirrored to v2 (want 300 ±30)", mirrored)
	if mirrored < 270 || mirrored > 330 {
		t.Errorf("v2 got %d mirrored requests of 1000, want 300 ±30", mirrored)
	}

	// The mirror turns unready: Traefik stops copying to it (its count
	// settles while the load goes on) and v1 goes on answering everything.
	load = startTimedLoad(ctx, client, url)
	harness.HoldUnready(ns, "app-v2", true)
	settledServed(t, ctx, backends["v2"])
	base := served(t, backends["v1"])
	waitUntil(t, ctx, time.Minute, "v1 to answer 1000 more requests", func() (bool, string) {
		n := served(t, backends["v1"]) - base
		return n >= 1000, fmt.Sprintf("%d", n)
	})
	sent, failed = load.stop()
	t.Logf("the mirror unready: %d requests, %d failed", sent, len(failed))
	if len(failed) > 0 {
		t.Errorf("%d of %d requests failed with the mirror unready, the first at %v", len(failed), sent, failed[0].Format(time.RFC3339Nano))
	}
}

// settledServed returns b's served count once it has stopped changing for
// a second (mirrored requests still in flight have landed).
func settledServed(t *testing.T, ctx context.Context, b *traefik.Backend) int {
	t.Helper()
	last, since := served(t, b), time.Now()
	waitUntil(t, ctx, 30*time.Second, "the mirror's count to settle", func() (bool, string) {
		if n := served(t, b); n != last {
			last, since = n, time.Now()
		}
		return time.Since(since) >= time.Second, fmt.Sprintf("%d, changed %v ago", last, time.Since(since))
	})
	return last
}

// readParsedRoute reads the app's live HTTPRoute with route.Parse, as the
// release commands and the A/B/n service do.
func readParsedRoute(t *testing.T, ns, app string) *iter8route.Route {
	t.Helper()
	u, err := dyn.Resource(httpRoutes).Namespace(ns).Get(t.Context(), app, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := iter8route.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
