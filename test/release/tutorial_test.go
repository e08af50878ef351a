package release_test

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/iter8-tools/iter8/test/sampleapp"
	"github.com/iter8-tools/iter8/test/traefik"
)

// TestTutorial runs docs/tutorial.md's commands in order, with Traefik as
// the Gateway API data plane (Gateway "gateway" in namespace "infra", as the
// tutorial's values files say) and each version's sample app in a network
// namespace of its own, and checks after every step where 1000 requests
// through the Gateway land.
func TestTutorial(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	root := filepath.Join(chartDir, "..", "..")
	tutorial := func(name string) string { return filepath.Join(root, "docs", "tutorial", name) }
	ns := namespace(t, "demo")
	infra := namespace(t, "infra")

	tr, err := traefik.Start(ctx, traefik.Config{Admin: env.Config, Namespace: infra, Gateway: "gateway", Logf: t.Logf})
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
		// Both apps of the tutorial reach the same two backends.
		for _, app := range []string{"app", "shop"} {
			t.Cleanup(podAddresses.Set(ns, app, v, b.IP))
		}
		backends[v] = b
	}
	client := traefik.NewClient()
	defer client.CloseIdleConnections()
	url := tr.URL + "/"
	tester := map[string]string{"x-user": "tester"}
	split := func(step string, want map[string]int) {
		t.Helper()
		// Traefik applies a changed route after its throttle: wait until
		// 200 requests are near the new split (±16, four standard
		// deviations at 90/10), then count 1000.
		eventually(t, ctx, step, func() (bool, string) {
			counts, errs, first := traefik.Count(ctx, client, url, nil, 200)
			near := errs == 0
			for v, n := range counts {
				near = near && abs(n-want[v]/5) <= 16
			}
			return near, fmt.Sprintf("%v, %d errors (%v)", counts, errs, first)
		})
		wantCounts(t, ctx, client, url, nil, 1000, want, 30)
	}
	step := func(args ...string) {
		t.Helper()
		if o := helm(t, append(args, "--timeout", "90s")...); o.Code != 0 {
			t.Fatalf("want success: %s", o)
		}
	}

	// Blue-green.
	step("upgrade", "--install", "app", chartDir, "-n", ns, "-f", tutorial("blue-green-1.yaml"), "--wait")
	split("blue-green 1", map[string]int{"v1": 1000})
	step("upgrade", "--install", "app", chartDir, "-n", ns, "-f", tutorial("blue-green-2.yaml"), "--wait")
	split("blue-green 2", map[string]int{"v1": 1000})

	// Steps 3 and 4 under continuous load: no request may fail, and v1
	// gets none once step 3 has taken effect.
	load := startLoad(ctx, client, url)
	step("upgrade", "--install", "app", chartDir, "-n", ns, "-f", tutorial("blue-green-3.yaml"), "--wait")
	split("blue-green 3", map[string]int{"v2": 1000})
	st := releaseStatus(t, ns, "app")
	conds := map[string]string{}
	for _, c := range st.Conditions {
		m, _ := c.(map[string]any)
		conds[fmt.Sprint(m["type"])] = fmt.Sprint(m["status"])
	}
	if conds["Accepted"] != "True" || conds["ResolvedRefs"] != "True" {
		t.Errorf("release status: route conditions %v, want Accepted and ResolvedRefs True as Traefik sets them", st.Conditions)
	}
	if o := iter8(t, "release", "status", "app", "-n", ns); !strings.Contains(o.Stdout, "Accepted") || !strings.Contains(o.Stdout, "ResolvedRefs") {
		t.Errorf("release status text lacks the route's conditions:\n%s", o)
	}
	v1Before := served(t, backends["v1"])
	step("upgrade", "--install", "app", chartDir, "-n", ns, "-f", tutorial("blue-green-4.yaml"), "--wait")
	split("blue-green 4", map[string]int{"v2": 1000})
	sent, failed, firstErr := load.stop()
	t.Logf("load during the retirement: %d requests, %d failed", sent, failed)
	if sent == 0 || failed != 0 {
		t.Errorf("load during the retirement: %d of %d requests failed (first: %v), want none", failed, sent, firstErr)
	}
	if after := served(t, backends["v1"]); after != v1Before {
		t.Errorf("v1 served %d requests after its weight went to 0 and the route took effect, want none", after-v1Before)
	}
	step("uninstall", "app", "-n", ns, "--wait")

	// Canary.
	canary := tutorial("canary.yaml")
	step("upgrade", "--install", "shop", chartDir, "-n", ns, "-f", tutorial("canary-1.yaml"), "--wait")
	split("canary 1", map[string]int{"v1": 1000})
	step("upgrade", "--install", "shop", chartDir, "-n", ns, "-f", canary, "--wait")
	eventually(t, ctx, "testers to v2", func() (bool, string) {
		counts, errs, first := traefik.Count(ctx, client, url, tester, 20)
		return errs == 0 && counts["v2"] == 20, fmt.Sprintf("%v, %d errors (%v)", counts, errs, first)
	})
	wantCounts(t, ctx, client, url, nil, 1000, map[string]int{"v1": 1000}, 0)
	wantCounts(t, ctx, client, url, tester, 200, map[string]int{"v2": 200}, 0)
	step("upgrade", "--install", "shop", chartDir, "-n", ns, "-f", canary, "--set", "versions[0].weight=90", "--set", "versions[1].weight=10", "--wait")
	split("canary 90/10", map[string]int{"v1": 900, "v2": 100})
	wantCounts(t, ctx, client, url, tester, 200, map[string]int{"v2": 200}, 0)
	step("upgrade", "--install", "shop", chartDir, "-n", ns, "-f", canary, "--set", "versions[0].weight=50", "--set", "versions[1].weight=50", "--wait")
	split("canary 50/50", map[string]int{"v1": 500, "v2": 500})

	o := helm(t, "upgrade", "--install", "shop", chartDir, "-n", ns, "-f", canary, "--set", "versions[0].weight=10", "--set", "versions[1].weight=90",
		"--set", "gates.slo.enabled=true", "--set", "gates.slo.url="+url,
		"--set", "gates.slo.slos[0].metric=http/latency-p50", "--set", "gates.slo.slos[0].upper=0.001", "--wait", "--atomic", "--timeout", "90s")
	if o.Code == 0 || !strings.Contains(o.Stderr, "post-upgrade hooks failed") {
		t.Fatalf("want the SLO gate to fail the upgrade: %s", o)
	}
	if h := mustHelm(t, "history", "shop", "-n", ns).Stdout; !strings.Contains(h, "Rollback to 4") {
		t.Errorf("helm history shows no rollback to revision 4:\n%s", h)
	}
	res := gateResult(t, ns, "shop-slo", 5)
	if n, _ := res.Value("", "http/request-count"); n == 0 || res.SLOsSatisfied() {
		t.Errorf("SLO gate result: %v requests, SLOs met %v; want load and an unmet SLO", n, res.SLOsSatisfied())
	}
	if o := iter8(t, "report", "shop-slo", "-n", ns); o.Code != 0 || !strings.Contains(o.Stdout, "http/latency-p50") {
		t.Errorf("report of the SLO gate: want its SLO on http/latency-p50: %s", o)
	}
	split("after the rollback", map[string]int{"v1": 500, "v2": 500})

	if o := iter8(t, "release", "promote", "shop", "v2", "-n", ns, "--wait"); o.Code != 0 {
		t.Fatalf("promote: %s", o)
	}
	split("promoted", map[string]int{"v2": 1000})
}

// load sends requests one after another until stopped, counting failures
// (errors and non-2xx answers); bounded by its context and 100,000 requests.
type load struct {
	cancel       context.CancelFunc
	done         chan struct{}
	sent, failed atomic.Int64
	mu           sync.Mutex
	firstErr     error
}

func startLoad(ctx context.Context, client *http.Client, url string) *load {
	ctx, cancel := context.WithCancel(ctx)
	l := &load{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for i := 0; i < 100000 && ctx.Err() == nil; i++ {
			err := get(ctx, client, url)
			if ctx.Err() != nil {
				return
			}
			l.sent.Add(1)
			if err != nil {
				l.failed.Add(1)
				l.mu.Lock()
				if l.firstErr == nil {
					l.firstErr = err
				}
				l.mu.Unlock()
			}
		}
	}()
	return l
}

func get(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

func (l *load) stop() (sent, failed int64, firstErr error) {
	l.cancel()
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sent.Load(), l.failed.Load(), l.firstErr
}

// served reads how many requests a backend's sample app has answered, from
// its metrics (which the scrape itself does not count).
func served(t *testing.T, b *traefik.Backend) int {
	t.Helper()
	resp, err := traefik.NewClient().Get(b.URL + sampleapp.MetricsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, m := range mfs[sampleapp.MetricRequests].GetMetric() {
		n += m.GetCounter().GetValue()
	}
	return int(n)
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}
