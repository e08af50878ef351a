package release_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/iter8-tools/iter8/test/traefik"
)

// podAddresses gives the Pods of TestTrafficThroughTraefik's versions their
// backends' addresses; TestMain's harness needs
// node.Config{PodAddress: podAddresses.PodAddress}.
var podAddresses traefik.Addresses

// TestTrafficThroughTraefik drives the chart's HTTPRoute through a real
// Gateway API data plane: Traefik on the host, and each version's sample app
// in a network namespace of its own, which the harness's EndpointSlices
// point at. Blue-green: all requests reach v1, then after the flip all reach
// v2; canary 90/10: the split shows in the requests, and the testers' header
// always reaches v2.
func TestTrafficThroughTraefik(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	ns := namespace(t, "traffic")
	infra := namespace(t, "traffic-infra")

	tr, err := traefik.Start(ctx, traefik.Config{Admin: env.Config, Namespace: infra, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("traefik's log:\n%s", tr.Logs())
		}
		if err := tr.Stop(); err != nil {
			t.Error(err)
		}
	})
	bin, err := traefik.BuildSampleApp(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	backends := map[string]*traefik.Backend{}
	for _, v := range []string{"v1", "v2"} {
		b, err := traefik.StartBackend(ctx, traefik.BackendConfig{SampleApp: bin, Version: v})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("sample app %s's output:\n%s", v, b.Output())
			}
			if err := b.Stop(); err != nil {
				t.Error(err)
			}
		})
		t.Cleanup(podAddresses.Set(ns, "app", v, b.IP))
		backends[v] = b
	}

	more := map[string]any{"gatewayAPI": map[string]any{
		"parentRefs": []any{map[string]any{"name": tr.Gateway, "namespace": tr.Namespace}},
	}}
	upgrade := func(strategy string, versions ...version) {
		t.Helper()
		mustUpgrade(t, ns, "app", valuesFile(t, "gateway-api", strategy, versions, more), "--wait")
	}
	client := traefik.NewClient()
	defer client.CloseIdleConnections()
	url := tr.URL + "/"
	tester := map[string]string{"x-user": "tester"}

	// Blue-green, all to v1.
	upgrade("blue-green", deployed("v1", 100), deployed("v2", 0))
	for v, b := range backends {
		pods, err := env.Clientset.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "iter8.tools/version=" + v})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pods.Items {
			if p.Status.PodIP != b.IP {
				t.Skipf("Pod %s has address %q, not its backend's %s: the node harness needs "+
					"node.Config{PodAddress: podAddresses.PodAddress} (in TestMain's setup)", p.Name, p.Status.PodIP, b.IP)
			}
		}
	}
	eventually(t, ctx, "all requests to v1", func() (bool, string) {
		counts, errs, first := traefik.Count(ctx, client, url, nil, 50)
		return errs == 0 && counts["v1"] == 50, fmt.Sprintf("%v, %d errors (%v)", counts, errs, first)
	})
	wantCounts(t, ctx, client, url, nil, 1000, map[string]int{"v1": 1000}, 0)

	// Flip to v2.
	upgrade("blue-green", deployed("v1", 0), deployed("v2", 100))
	eventually(t, ctx, "all requests to v2", func() (bool, string) {
		counts, errs, first := traefik.Count(ctx, client, url, nil, 50)
		return errs == 0 && counts["v2"] == 50, fmt.Sprintf("%v, %d errors (%v)", counts, errs, first)
	})
	wantCounts(t, ctx, client, url, nil, 1000, map[string]int{"v2": 1000}, 0)

	// Canary 90/10, testers to v2.
	upgrade("canary", deployed("v1", 90), deployed("v2", 10, "match", []any{map[string]any{"headers": tester}}))
	eventually(t, ctx, "a 90/10 split", func() (bool, string) {
		counts, errs, first := traefik.Count(ctx, client, url, nil, 100)
		return errs == 0 && counts["v1"] >= 70, fmt.Sprintf("%v, %d errors (%v)", counts, errs, first)
	})
	wantCounts(t, ctx, client, url, nil, 1000, map[string]int{"v1": 900, "v2": 100}, 30)
	wantCounts(t, ctx, client, url, tester, 200, map[string]int{"v2": 200}, 0)
}

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

// eventually polls probe until it holds; Traefik applies a changed route
// after its throttle, so a new split shows only after a while.
func eventually(t *testing.T, ctx context.Context, what string, probe func() (bool, string)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
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
