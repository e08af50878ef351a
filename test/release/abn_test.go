package release_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/iter8-tools/iter8/pkg/abn/apps"
	routepkg "github.com/iter8-tools/iter8/pkg/route"
	"github.com/iter8-tools/iter8/test/traefik"
)

// abnValues turns on abn.header.
func abnValues(header string) map[string]any {
	return map[string]any{"abn": map[string]any{"header": header}}
}

// liveRoute reads the live route object of app in ns.
func liveRoute(t *testing.T, plane, ns, app string) *unstructured.Unstructured {
	t.Helper()
	gvr := httpRoutes
	if plane == "istio" {
		gvr = virtualServices
	}
	u, err := dyn.Resource(gvr).Namespace(ns).Get(t.Context(), app, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get the %s route %s/%s: %v", plane, ns, app, err)
	}
	return u
}

// ruleNames lists the names of a route's rules (HTTPRoute) or http entries
// (VirtualService), in order.
func ruleNames(u *unstructured.Unstructured) []string {
	field := "rules"
	if u.GetKind() == routepkg.KindVirtualService {
		field = "http"
	}
	rules, _, _ := unstructured.NestedSlice(u.Object, "spec", field)
	var names []string
	for _, r := range rules {
		n, _, _ := unstructured.NestedString(r.(map[string]any), "name")
		names = append(names, n)
	}
	return names
}

// TestABNHeaderRoute: with abn.header, the route carries the header in its
// annotation, and each version with a weight gets a "<version>-match" rule
// on the header equal to its name, before the weights rule, alongside its
// own match rules; pkg/route (what the A/B/n service reads) finds the
// header among the backends' matches. The VirtualService's header key is
// lowercased, as Istio wants; the service compares names case-insensitively.
func TestABNHeaderRoute(t *testing.T) {
	tester := []any{map[string]any{"headers": map[string]any{"x-user": "tester"}}}
	for _, tc := range []struct{ plane, header, key string }{
		{"gateway-api", "x-version", "x-version"},
		{"istio", "X-Version", "x-version"},
	} {
		t.Run(tc.plane, func(t *testing.T) {
			ns := namespace(t, "abn-"+tc.plane)
			versions := []version{deployed("v1", 50), deployed("v2", 50, "match", tester)}
			mustUpgrade(t, ns, "app", valuesFile(t, tc.plane, "canary", versions, abnValues(tc.header)), "--wait")
			u := liveRoute(t, tc.plane, ns, "app")
			if got := u.GetAnnotations()[apps.AnnotationHeader]; got != tc.header {
				t.Errorf("annotation %s = %q, want %q", apps.AnnotationHeader, got, tc.header)
			}
			if got, want := ruleNames(u), []string{"v1-match", "v2-match", "weights"}; !slices.Equal(got, want) {
				t.Errorf("rules %v, want %v", got, want)
			}
			live := readRoute(t, tc.plane, ns, "app")
			wantMatched := map[string][]map[string]string{
				"app-v1": {{tc.key: "v1"}},
				"app-v2": {{tc.key: "v2"}, {"x-user": "tester"}},
			}
			if !maps.EqualFunc(live.matched, wantMatched, func(a, b []map[string]string) bool {
				return slices.EqualFunc(a, b, func(x, y map[string]string) bool { return maps.Equal(x, y) })
			}) {
				t.Errorf("matches %v, want %v", live.matched, wantMatched)
			}
			wantWeights(t, "abn 50/50", live, map[string]int64{"app-v1": 50, "app-v2": 50})

			r, err := routepkg.Parse(u)
			if err != nil {
				t.Fatalf("route.Parse: %v", err)
			}
			for _, b := range r.Backends {
				want := map[string]string{"app-v1": "v1", "app-v2": "v2"}[b.Name]
				if !slices.ContainsFunc(b.Matches, func(m map[string]string) bool { return m[tc.key] == want }) {
					j, _ := json.Marshal(r.Backends)
					t.Errorf("route.Parse: backend %s has no match %s=%s: %s", b.Name, tc.key, want, j)
				}
			}
			mustHelm(t, "lint", chartDir, "-f", valuesFile(t, tc.plane, "canary", versions, abnValues(tc.header)))
		})
	}
}

// TestABNRetirement: a version at weight 0 gets no abn.header match, so it
// stops receiving traffic and leaves in the next upgrade.
func TestABNRetirement(t *testing.T) {
	ns := namespace(t, "abn-retire")
	abn := abnValues("x-version")
	mustUpgrade(t, ns, "app", valuesFile(t, "gateway-api", "canary", []version{deployed("v1", 50), deployed("v2", 50)}, abn), "--wait")
	mustUpgrade(t, ns, "app", valuesFile(t, "gateway-api", "canary", []version{deployed("v1", 100), deployed("v2", 0)}, abn), "--wait")
	u := liveRoute(t, "gateway-api", ns, "app")
	if got, want := ruleNames(u), []string{"v1-match", "weights"}; !slices.Equal(got, want) {
		t.Errorf("v2 at weight 0: rules %v, want %v", got, want)
	}
	if got := u.GetAnnotations()[routepkg.AnnotationReceiving]; got != `["v1"]` {
		t.Errorf("v2 at weight 0: %s = %s, want [\"v1\"]", routepkg.AnnotationReceiving, got)
	}
	if m := readRoute(t, "gateway-api", ns, "app").matched["app-v2"]; len(m) != 0 {
		t.Errorf("v2 at weight 0: matches %v, want none", m)
	}
	mustUpgrade(t, ns, "app", valuesFile(t, "gateway-api", "canary", []version{deployed("v1", 100)}, abn), "--wait")
	wantWeights(t, "v2 retired", readRoute(t, "gateway-api", ns, "app"), map[string]int64{"app-v1": 100})
	if _, err := env.Clientset.AppsV1().Deployments(ns).Get(t.Context(), "app-v2", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("Deployment app-v2 after its retirement: %v, want not found", err)
	}
}

// TestABNTraffic: through a real Gateway API data plane (Traefik), a request
// with the abn.header equal to a version's name reaches that version whatever
// the weights (here 90/10).
func TestABNTraffic(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	ns := namespace(t, "abn-traffic")
	infra := namespace(t, "abn-infra")
	tr := trafficBed(t, ctx, ns, infra, map[string]float64{"v1": 0, "v2": 0})
	more := abnValues("x-version")
	more["gatewayAPI"] = map[string]any{"parentRefs": []any{map[string]any{"name": "gateway", "namespace": infra}}}
	mustUpgrade(t, ns, "app", valuesFile(t, "gateway-api", "canary", []version{deployed("v1", 90), deployed("v2", 10)}, more), "--wait")

	client := traefik.NewClient()
	defer client.CloseIdleConnections()
	url := tr.URL + "/"
	eventually(t, ctx, "x-version: v2 to v2", func() (bool, string) {
		counts, errs, first := traefik.Count(ctx, client, url, map[string]string{"x-version": "v2"}, 20)
		return errs == 0 && counts["v2"] == 20, fmt.Sprintf("%v, %d errors (%v)", counts, errs, first)
	})
	wantCounts(t, ctx, client, url, map[string]string{"x-version": "v2"}, 200, map[string]int{"v2": 200}, 0)
	wantCounts(t, ctx, client, url, map[string]string{"x-version": "v1"}, 200, map[string]int{"v1": 200}, 0)
}

// trafficBed starts Traefik for the Gateway "gateway" in infra and, for
// each version of the app "app" in ns, a sample app that converts that
// share of users; all stop when the test ends.
func trafficBed(t *testing.T, ctx context.Context, ns, infra string, conversion map[string]float64) *traefik.Traefik {
	t.Helper()
	return trafficBedFor(t, ctx, ns, infra, "app", conversion)
}

// trafficBedFor is trafficBed for the versions of another app.
func trafficBedFor(t *testing.T, ctx context.Context, ns, infra, app string, conversion map[string]float64) *traefik.Traefik {
	t.Helper()
	backends := map[string]traefik.BackendConfig{}
	for v, c := range conversion {
		backends[v] = traefik.BackendConfig{Conversion: c}
	}
	tr, _ := startTrafficBed(t, ctx, ns, infra, app, backends, false)
	return tr
}

// startTrafficBed starts Traefik for namespace ns's Gateway (in infra) and
// a sample app per version of app, configured by backends (SampleApp and
// Version are filled in), as the Pods of the versions' Deployments; all
// stop when the test ends. crdProvider runs Traefik's CRD provider too.
func startTrafficBed(t *testing.T, ctx context.Context, ns, infra, app string, backends map[string]traefik.BackendConfig, crdProvider bool) (*traefik.Traefik, map[string]*traefik.Backend) {
	t.Helper()
	tr, err := traefik.Start(ctx, traefik.Config{Admin: env.Config, Namespace: infra, Gateway: "gateway", CRDProvider: crdProvider, Logf: t.Logf})
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
	started := map[string]*traefik.Backend{}
	for _, v := range slices.Sorted(maps.Keys(backends)) {
		cfg := backends[v]
		cfg.SampleApp, cfg.Version = bin, v
		b, err := traefik.StartBackend(ctx, cfg)
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
		t.Cleanup(podAddresses.Set(ns, app, v, b.IP))
		started[v] = b
	}
	return tr, started
}
