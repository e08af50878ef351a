package release_test

import (
	"slices"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestRetirement: a version leaves only in the upgrade after the one that
// stopped its traffic.
func TestRetirement(t *testing.T) {
	ns := namespace(t, "retire")
	mustUpgrade(t, ns, "app", valuesFile(t, "gateway-api", "blue-green", []version{deployed("v1", 100), deployed("v2", 0)}, nil), "--wait")
	o := upgrade(t, ns, "app", valuesFile(t, "gateway-api", "blue-green", []version{deployed("v2", 100)}, nil))
	if o.Code == 0 || !strings.Contains(o.Stderr, "v1 still receives traffic in the live route") {
		t.Fatalf("removing v1 while it has weight 100: want a refusal: %s", o)
	}
	mustUpgrade(t, ns, "app", valuesFile(t, "gateway-api", "blue-green", []version{deployed("v1", 0), deployed("v2", 100)}, nil), "--wait")
	mustUpgrade(t, ns, "app", valuesFile(t, "gateway-api", "blue-green", []version{deployed("v2", 100)}, nil), "--wait")
	wantWeights(t, "v1 retired", readRoute(t, "gateway-api", ns, "app"), map[string]int64{"app-v2": 100})
	if _, err := env.Clientset.AppsV1().Deployments(ns).Get(t.Context(), "app-v1", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("Deployment app-v1 after its retirement: %v, want not found", err)
	}
}

// TestBadValues: each bad value set is refused with a message naming the
// value, at install and at upgrade, and nothing in the namespace changes.
func TestBadValues(t *testing.T) {
	ns := namespace(t, "bad-values")
	good := []version{deployed("v1", 100), deployed("v2", 0)}
	mustUpgrade(t, ns, "app", valuesFile(t, "gateway-api", "canary", good, nil), "--wait")
	before := snapshot(t, ns)
	tests := []struct {
		name, strategy string
		versions       []version
		more           map[string]any
		want           string
	}{
		{"weight above 100", "canary", []version{deployed("v1", 101)}, nil, "/versions/0/weight"},
		{"negative weight", "canary", []version{deployed("v1", -1)}, nil, "/versions/0/weight"},
		{"every weight 0", "canary", []version{deployed("v1", 0), deployed("v2", 0)}, nil, "every weight is 0"},
		{"duplicate names", "canary", []version{deployed("v1", 50), deployed("v1", 50)}, nil, `versions[1].name: "v1" is already the name of versions[0]`},
		{"mirror above 100", "mirror", []version{deployed("v1", 100), deployed("v2", 0, "mirror", 150)}, nil, "/versions/1/mirror"},
		{"canary candidate without weight or match", "canary", []version{deployed("v1", 100), {"name": "v2", "deployment": map[string]any{"image": "x"}}}, nil, "a canary candidate needs a weight or match rules"},
		{"blue-green split", "blue-green", []version{deployed("v1", 50), deployed("v2", 50)}, nil, "strategy blue-green sends all traffic to one version"},
		{"match outside canary", "blue-green", []version{deployed("v1", 100), deployed("v2", 0, "match", []any{map[string]any{"headers": map[string]any{"x": "y"}}})}, nil, "versions[1].match: match rules need strategy canary"},
		{"unknown key", "canary", []version{deployed("v1", 100, "colour", "red")}, nil, "additional properties 'colour' not allowed"},
		{"two backends", "canary", []version{deployed("v1", 100, "service", map[string]any{"name": "s"})}, nil, "/versions/0"},
		{"no backend", "canary", []version{{"name": "v1", "weight": 100}}, nil, "/versions/0"},
		{"bad version name", "canary", []version{deployed("V_1", 100)}, nil, "/versions/0/name"},
		{"unknown strategy", "rolling", good, nil, "/strategy"},
		{"no parentRefs", "canary", good, map[string]any{"gatewayAPI": map[string]any{"parentRefs": []any{}}}, "gatewayAPI.parentRefs"},
		{"traefik without parentRefs", "mirror", []version{deployed("v1", 100), deployed("v2", 0, "mirror", 10)},
			map[string]any{"dataPlane": "traefik", "gatewayAPI": map[string]any{"parentRefs": []any{}}}, "gatewayAPI.parentRefs: an HTTPRoute (dataPlane traefik)"},
		{"unknown data plane", "canary", good, map[string]any{"dataPlane": "nginx"}, "/dataPlane"},
		{"SLO gate without url", "canary", good, map[string]any{"gates": map[string]any{"slo": map[string]any{"enabled": true, "slos": []any{map[string]any{"metric": "http/error-rate", "upper": 0.01}}}}}, "gates.slo.url"},
		{"abn header not a header name", "canary", good, map[string]any{"abn": map[string]any{"header": "x y"}}, `abn.header: "x y" is not a valid header name`},
		{"abn header outside canary", "blue-green", good, map[string]any{"abn": map[string]any{"header": "x-version"}}, "abn.header: per-version header routing needs strategy canary (or none), not blue-green"},
		{"abn header in match rules", "canary", []version{deployed("v1", 100), deployed("v2", 0, "match", []any{map[string]any{"headers": map[string]any{"X-Version": "v1"}}})}, map[string]any{"abn": map[string]any{"header": "x-version"}}, "versions[1].match[0]: header X-Version is abn.header's"},
		{"removing a version with traffic", "canary", []version{deployed("v2", 100)}, nil, "v1 still receives traffic"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			values := valuesFile(t, "gateway-api", tc.strategy, tc.versions, tc.more)
			for _, release := range []string{"app", "fresh"} { // an upgrade, and an install
				if release == "fresh" && tc.name == "removing a version with traffic" {
					continue // only an upgrade has a live route to read
				}
				o := upgrade(t, ns, release, values)
				if o.Code == 0 || !strings.Contains(o.Stderr, tc.want) {
					t.Errorf("%s: want a refusal saying %q: %s", release, tc.want, o)
				}
			}
		})
	}
	if after := snapshot(t, ns); !slices.Equal(after, before) {
		t.Errorf("after refused upgrades and installs, namespace %s changed:\n got %v\nwant %v", ns, after, before)
	}
}

// snapshot lists the namespace's objects with their resourceVersions.
func snapshot(t *testing.T, ns string) []string {
	t.Helper()
	objs, err := env.Objects(t.Context(), ns)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, o := range objs {
		out = append(out, o.ID+"@"+o.ResourceVersion)
	}
	return out
}

// TestServerDryRun renders every strategy for both data planes and has the
// API server validate the manifests (the CRDs' schemas included).
func TestServerDryRun(t *testing.T) {
	ns := namespace(t, "dry-run")
	tester := []any{map[string]any{"headers": map[string]any{"x-user": "tester"}}}
	sets := map[string][]version{
		"blue-green": {deployed("v1", 100), {"name": "v2", "weight": 0, "service": map[string]any{"name": "existing", "port": 8080}}},
		"canary":     {deployed("v1", 90), deployed("v2", 10, "match", tester), {"name": "v3", "weight": 0, "inferenceService": map[string]any{"name": "model"}}},
		"mirror":     {deployed("v1", 100), deployed("v2", 0, "mirror", 40), deployed("v3", 0, "mirror", 10)},
		"none":       {deployed("v1", 3), deployed("v2", 1)},
	}
	slo := map[string]any{"gates": map[string]any{"slo": map[string]any{"enabled": true, "url": "http://app.example/", "slos": []any{map[string]any{"metric": "http/latency-p99", "upper": 100}}}}}
	for _, plane := range planes {
		for strategy, versions := range sets {
			t.Run(plane+"/"+strategy, func(t *testing.T) {
				manifests := mustHelm(t, "template", "app", chartDir, "-n", ns, "-f", valuesFile(t, plane, strategy, versions, slo)).Stdout
				o := kubectl(t, manifests, "apply", "--dry-run=server", "-n", ns, "-f", "-")
				if o.Code != 0 {
					t.Fatalf("server dry run: %s\nmanifests:\n%s", o, manifests)
				}
				for _, kind := range []string{"deployment.apps/app-v1", "job.batch/app-ready-gate", "job.batch/app-slo-gate"} {
					if !strings.Contains(o.Stdout, kind) {
						t.Errorf("dry run did not take %s:\n%s", kind, o.Stdout)
					}
				}
			})
		}
	}
}
