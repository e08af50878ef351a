package release_test

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/store"
	"github.com/iter8-tools/iter8/test/sampleapp"
)

// TestReadinessGate: an upgrade that would give traffic to a version that
// is not ready fails in its pre-upgrade hook, before the route changes;
// with Helm 3 and with Helm 4.
func TestReadinessGate(t *testing.T) {
	for _, h := range helms() {
		t.Run(h.name, func(t *testing.T) { testReadinessGate(t, h.bin, h.name) })
	}
}

func testReadinessGate(t *testing.T, helmBin, name string) {
	ns := namespace(t, "ready-gate-"+name)
	upgrade, mustUpgrade := upgradersAt(helmBin)
	mustUpgrade(t, ns, "app", valuesFile(t, "gateway-api", "canary", []version{deployed("v1", 100)}, nil), "--wait")
	harness.HoldUnready(ns, "app-v2", true)
	// v2 at 0 gets no traffic: the gate does not ask for it.
	mustUpgrade(t, ns, "app", valuesFile(t, "gateway-api", "canary", []version{deployed("v1", 100), deployed("v2", 0)}, nil))
	before := readRoute(t, "gateway-api", ns, "app")

	fast := map[string]any{"gates": map[string]any{"readiness": map[string]any{"enabled": true, "timeout": "3s"}}}
	o := upgrade(t, ns, "app", valuesFile(t, "gateway-api", "canary", []version{deployed("v1", 90), deployed("v2", 10)}, fast))
	if o.Code == 0 || !strings.Contains(o.Stderr, "pre-upgrade hooks failed") {
		t.Fatalf("an upgrade giving weight to unready v2: want a failed pre-upgrade hook: %s", o)
	}
	after := readRoute(t, "gateway-api", ns, "app")
	if after.resourceVersion != before.resourceVersion {
		t.Errorf("the route changed (resourceVersion %s → %s) although the gate failed", before.resourceVersion, after.resourceVersion)
	}
	wantWeights(t, "after the failed gate", after, map[string]int64{"app-v1": 100, "app-v2": 0})
	res := gateResult(t, ns, "app-ready", 0)
	if !res.Failed() || !strings.Contains(res.Tasks[0].Error, "app-v2") {
		t.Errorf("readiness gate result: failed %v, error %q; want a failure naming app-v2", res.Failed(), res.Tasks[0].Error)
	}

	harness.HoldUnready(ns, "app-v2", false)
	mustUpgrade(t, ns, "app", valuesFile(t, "gateway-api", "canary", []version{deployed("v1", 90), deployed("v2", 10)}, fast))
	wantWeights(t, "once v2 is ready", readRoute(t, "gateway-api", ns, "app"), map[string]int64{"app-v1": 90, "app-v2": 10})
}

// TestSLOGateRollsBack: an upgrade whose SLO gate fails on real load, run
// with --atomic, brings the previous weights back; with Helm 3 and with
// Helm 4.
func TestSLOGateRollsBack(t *testing.T) {
	for _, h := range helms() {
		t.Run(h.name, func(t *testing.T) { testSLOGateRollsBack(t, h.bin, h.name) })
	}
}

func testSLOGateRollsBack(t *testing.T, helmBin, name string) {
	upgrade, mustUpgrade := upgradersAt(helmBin)
	good := sampleApp(t, "fixed:1ms", 0)
	bad := sampleApp(t, "fixed:1ms", 0.5)
	gate := func(url string) map[string]any {
		return map[string]any{"gates": map[string]any{"slo": map[string]any{
			"enabled": true, "url": url, "numRequests": 50,
			"slos": []any{map[string]any{"metric": "http/error-rate", "upper": 0.01}},
		}}}
	}
	ns := namespace(t, "slo-gate-"+name)
	mustUpgrade(t, ns, "app", valuesFile(t, "istio", "canary", []version{deployed("v1", 100)}, gate(good.URL)), "--wait")
	mustUpgrade(t, ns, "app", valuesFile(t, "istio", "canary", []version{deployed("v1", 100), deployed("v2", 0)}, gate(good.URL)), "--wait")
	wantWeights(t, "v2 at 0", readRoute(t, "istio", ns, "app"), map[string]int64{"app-v1": 100, "app-v2": 0})

	// The gate's load now meets errors (standing in for a bad v2 behind the route).
	o := upgrade(t, ns, "app", valuesFile(t, "istio", "canary", []version{deployed("v1", 50), deployed("v2", 50)}, gate(bad.URL)), "--wait", "--atomic")
	if o.Code == 0 || !strings.Contains(o.Stderr, "post-upgrade hooks failed") {
		t.Fatalf("want the upgrade to fail in its post-upgrade SLO gate: %s", o)
	}
	wantWeights(t, "after --atomic", readRoute(t, "istio", ns, "app"), map[string]int64{"app-v1": 100, "app-v2": 0})
	history := mustHelm(t, "history", "app", "-n", ns, "-o", "json").Stdout // Helm 3 reads Helm 4's history too
	var revs []struct {
		Revision    int
		Status      string
		Description string
	}
	if err := json.Unmarshal([]byte(history), &revs); err != nil {
		t.Fatal(err)
	}
	if n := len(revs); n != 4 || revs[2].Status != "failed" || revs[3].Status != "deployed" || !strings.Contains(revs[3].Description, "Rollback to 2") {
		t.Errorf("helm history: %+v; want revision 3 failed and 4 deployed as the rollback to 2", revs)
	}
	res := gateResult(t, ns, "app-slo", 3)
	n, _ := res.Value("", "http/request-count")
	if n <= 0 || res.SLOsSatisfied() || len(res.SLOs) != 1 || res.SLOs[0].Satisfied {
		t.Errorf("SLO gate result of revision 3: request-count %v, SLOs %+v; want load sent and the SLO not met", n, res.SLOs)
	}
}

// gateResult reads a gate's result of a revision (0: the last) from its
// result Secret.
func gateResult(t *testing.T, ns, experimentName string, revision int) *experiment.Result {
	t.Helper()
	s, err := env.Clientset.CoreV1().Secrets(ns).Get(t.Context(), store.ResultSecretName(experimentName), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var results []experiment.Result
	if err := json.Unmarshal(s.Data[store.ResultsKey], &results); err != nil || len(results) == 0 {
		t.Fatalf("results of %s: %v (%d)", experimentName, err, len(results))
	}
	if revision == 0 {
		return &results[len(results)-1]
	}
	for i := range results {
		if results[i].Revision == revision {
			return &results[i]
		}
	}
	t.Fatalf("%s has no result of revision %d", experimentName, revision)
	return nil
}

// sampleApp serves the sample app on 127.0.0.1 (the harness runs the gates'
// Jobs on this host).
func sampleApp(t *testing.T, latency string, errorRate float64) *httptest.Server {
	t.Helper()
	lat, err := sampleapp.ParseLatency(latency)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sampleapp.NewHandler(sampleapp.Options{Version: fmt.Sprint(latency, errorRate), Latency: lat, ErrorRate: errorRate, Seed: 5}))
	t.Cleanup(srv.Close)
	return srv
}
