package action

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	helmchart "helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/release"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/route"
	"github.com/iter8-tools/iter8/pkg/store"
)

func TestPromoteValues(t *testing.T) {
	versions := []map[string]any{
		{"name": "v1", "weight": float64(100), "deployment": map[string]any{"image": "a"}},
		{"name": "v2", "mirror": int64(40)},
		{"name": "v3", "weight": int64(0)},
	}
	next, changes, err := promoteValues(versions, "v2")
	if err != nil {
		t.Fatal(err)
	}
	wantNext := []map[string]any{
		{"name": "v1", "weight": 0, "deployment": map[string]any{"image": "a"}},
		{"name": "v2", "mirror": 0, "weight": 100},
		{"name": "v3", "weight": 0},
	}
	if !reflect.DeepEqual(next, wantNext) {
		t.Errorf("promoteValues: versions %v, want %v", next, wantNext)
	}
	wantChanges := []Change{
		{Version: "v1", Field: "weight", From: 100, To: 0},
		{Version: "v2", Field: "mirror", From: 40, To: 0},
		{Version: "v2", Field: "weight", From: 0, To: 100},
		// v3's weight was already 0: no change.
	}
	if !reflect.DeepEqual(changes, wantChanges) {
		t.Errorf("promoteValues: changes %v, want %v", changes, wantChanges)
	}
	if versions[0]["weight"] != float64(100) {
		t.Errorf("promoteValues changed its input: %v", versions[0])
	}

	if _, ch, err := promoteValues(wantNext, "v2"); err != nil || len(ch) != 0 {
		t.Errorf("promoteValues of a promoted version: changes %v, %v; want none", ch, err)
	}
	_, _, err = promoteValues(versions, "v9")
	if !errors.Is(err, ErrUnknownVersion) || !strings.Contains(err.Error(), "the versions are v1, v2, v3") {
		t.Errorf("promoteValues of an unknown version: %v", err)
	}
}

func TestReleaseVersions(t *testing.T) {
	ch := &helmchart.Chart{Values: map[string]any{"strategy": "blue-green", "versions": []any{}}}
	rel := &release.Release{Chart: ch, Config: map[string]any{
		"strategy": "canary",
		"versions": []any{map[string]any{"name": "v1", "weight": float64(100)}},
	}}
	vs, strategy, err := releaseVersions(rel)
	if err != nil || strategy != route.Canary || len(vs) != 1 || vs[0]["name"] != "v1" {
		t.Errorf("releaseVersions = %v, %q, %v", vs, strategy, err)
	}
	rel.Config = map[string]any{}
	if _, _, err := releaseVersions(rel); err == nil || !strings.Contains(err.Error(), "no versions") {
		t.Errorf("releaseVersions without versions: %v", err)
	}
	rel.Config = map[string]any{"versions": []any{map[string]any{"weight": 1}}}
	if _, _, err := releaseVersions(rel); err == nil || !strings.Contains(err.Error(), "versions[0].name: missing") {
		t.Errorf("releaseVersions without a name: %v", err)
	}
}

var testGVRs = map[schema.GroupVersionResource]string{
	{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "httproutes"}: "HTTPRouteList",
	{Group: "networking.istio.io", Version: "v1", Resource: "virtualservices"}:  "VirtualServiceList",
}

func testCluster(objs []runtime.Object, routes ...*unstructured.Unstructured) *Configuration {
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), testGVRs)
	for _, r := range routes {
		gvr := schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "httproutes"}
		if r.GetKind() == route.KindVirtualService {
			gvr = schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "virtualservices"}
		}
		if _, err := dyn.Resource(gvr).Namespace(r.GetNamespace()).Create(context.Background(), r, metav1.CreateOptions{}); err != nil {
			panic(err)
		}
	}
	cl := &Cluster{Client: fake.NewClientset(objs...), Dynamic: dyn, Namespace: "team"}
	cfg := NewConfiguration()
	cfg.Cluster = func() (*Cluster, error) { return cl, nil }
	return cfg
}

func TestReleaseStatus(t *testing.T) {
	vs := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
		"metadata": map[string]any{
			"name": "app", "namespace": "team",
			"labels":      map[string]any{route.LabelInstance: "rel", route.LabelApp: "app"},
			"annotations": map[string]any{route.AnnotationReceiving: `["v1","v2"]`, route.AnnotationStrategy: "canary"},
		},
		"spec": map[string]any{"http": []any{map[string]any{"name": "weights", "route": []any{
			map[string]any{"destination": map[string]any{"host": "app-v1.team.svc.cluster.local", "port": map[string]any{"number": int64(80)}}, "weight": int64(75)},
			map[string]any{"destination": map[string]any{"host": "app-v2.team.svc.cluster.local", "port": map[string]any{"number": int64(80)}}, "weight": int64(25)},
		}}}},
	}}
	labels := func(v string) map[string]string {
		return map[string]string{route.LabelApp: "app", route.LabelVersion: v}
	}
	one := int32(1)
	ready, notReady := true, false
	results, _ := json.Marshal([]experiment.Result{{Revision: 2, SLOs: []experiment.SLOVerdict{}}})
	objs := []runtime.Object{
		&appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "app-v1", Namespace: "team", Labels: labels("v1"), Generation: 2},
			Spec:       appsv1.DeploymentSpec{Replicas: &one},
			Status: appsv1.DeploymentStatus{ObservedGeneration: 2, ReadyReplicas: 1, Conditions: []appsv1.DeploymentCondition{
				{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue}}},
		},
		&appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "app-v2", Namespace: "team", Labels: labels("v2"), Generation: 3},
			Spec:       appsv1.DeploymentSpec{Replicas: &one},
			Status: appsv1.DeploymentStatus{ObservedGeneration: 2, ReadyReplicas: 1, Conditions: []appsv1.DeploymentCondition{
				{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue}}},
		},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "app-v1", Namespace: "team", Labels: labels("v1")}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "app-v2", Namespace: "team", Labels: labels("v2")}},
		&discoveryv1.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{Name: "app-v1-x", Namespace: "team", Labels: map[string]string{discoveryv1.LabelServiceName: "app-v1"}},
			Endpoints: []discoveryv1.Endpoint{
				{Addresses: []string{"10.0.0.1"}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}},
				{Addresses: []string{"10.0.0.2"}, Conditions: discoveryv1.EndpointConditions{Ready: &notReady}},
				{Addresses: []string{"10.0.0.3"}},
			},
		},
		// The same endpoint again in a second slice, as while slices change:
		// it counts once.
		&discoveryv1.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{Name: "app-v1-y", Namespace: "team", Labels: map[string]string{discoveryv1.LabelServiceName: "app-v1"}},
			Endpoints:  []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.1"}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}},
		},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "rel-ready-result", Namespace: "team"}, Data: map[string][]byte{store.ResultsKey: results}},
	}
	cfg := testCluster(objs, vs)
	a := NewReleaseStatus(cfg)
	a.App = "app"
	st, err := a.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Kind != route.KindVirtualService || st.Release != "rel" || st.Strategy != route.Canary {
		t.Errorf("status: %+v", st)
	}
	if len(st.Versions) != 2 {
		t.Fatalf("versions: %+v", st.Versions)
	}
	v1, v2 := st.Versions[0], st.Versions[1]
	if v1.Version != "v1" || v1.Weight != 75 || v1.Percent != 75 || v1.Readiness != Ready || v1.ReadyEndpoints != 2 || v1.Replicas != 1 {
		t.Errorf("v1: %+v", v1)
	}
	if v2.Version != "v2" || v2.Readiness != NotReady || v2.ReadyEndpoints != 0 ||
		!strings.Contains(v2.Reason, "generation 3 not yet observed") || !strings.Contains(v2.Reason, "no ready endpoints") {
		t.Errorf("v2: %+v", v2)
	}
	want := []GateVerdict{{Gate: "ready", Found: true, Revision: 2, SLOs: "none"}, {Gate: "slo"}}
	if !reflect.DeepEqual(st.Gates, want) {
		t.Errorf("gates: %+v, want %+v", st.Gates, want)
	}
	if len(st.Conditions) != 0 {
		t.Errorf("conditions: %+v, want none", st.Conditions)
	}
}

// TestReleaseStatusJSON pins the words that readiness and gate verdicts
// have in `release status -o json`, which scripts read.
func TestReleaseStatusJSON(t *testing.T) {
	tests := []struct {
		v    any
		want string
	}{
		{VersionStatus{Readiness: Ready}, `"readiness":"ready"`},
		{VersionStatus{Readiness: NotReady}, `"readiness":"not ready"`},
		{VersionStatus{Readiness: Unknown}, `"readiness":"unknown"`},
		{GateVerdict{Gate: GateReady, SLOs: NoSLOs}, `{"gate":"ready","found":false,"completed":false,"failed":false,"slos":"none"}`},
		{GateVerdict{Gate: GateSLO, SLOs: SLOsMet}, `"gate":"slo",`},
		{GateVerdict{SLOs: SLOsMet}, `"slos":"met"`},
		{GateVerdict{SLOs: SLOsNotMet}, `"slos":"not met"`},
	}
	for _, tt := range tests {
		b, err := json.Marshal(tt.v)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), tt.want) {
			t.Errorf("json of %+v: %s, want it to contain %s", tt.v, b, tt.want)
		}
	}
}

func TestReleaseStatusNoRoute(t *testing.T) {
	a := NewReleaseStatus(testCluster(nil))
	a.App = "missing"
	_, err := a.Run(context.Background())
	if !errors.Is(err, ErrNoRoute) || !strings.Contains(err.Error(), "named missing in namespace team") {
		t.Errorf("status of a missing app: %v", err)
	}
}

// renderChart renders charts/release with values in namespace team.
func renderChart(t *testing.T, ch *helmchart.Chart, values map[string]any) map[string]string {
	t.Helper()
	rv, err := chartutil.ToRenderValues(ch, values, chartutil.ReleaseOptions{Name: "rel", Namespace: "team", Revision: 1, IsInstall: true}, chartutil.DefaultCapabilities)
	if err != nil {
		t.Fatalf("values %v: %v", values, err)
	}
	out, err := engine.Render(ch, rv)
	if err != nil {
		t.Fatalf("render %v: %v", values, err)
	}
	return out
}

// renderRoute renders charts/release with values and parses its route.
func renderRoute(t *testing.T, ch *helmchart.Chart, values map[string]any) *route.Route {
	t.Helper()
	out := renderChart(t, ch, values)
	for name, doc := range out {
		if !strings.HasSuffix(name, "httproute.yaml") && !strings.HasSuffix(name, "virtualservice.yaml") || strings.TrimSpace(doc) == "" {
			continue
		}
		var obj map[string]any
		if err := sigsyaml.Unmarshal([]byte(doc), &obj); err != nil {
			t.Fatalf("%s: %v\n%s", name, err, doc)
		}
		r, err := route.Parse(&unstructured.Unstructured{Object: obj})
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, doc)
		}
		return r
	}
	t.Fatalf("values %v: no route rendered", values)
	return nil
}

// TestChartRoutes renders the release chart for each data plane and
// strategy and checks that route.Parse reads back what the values say, and
// that the VirtualService's weights are route.Percentages of the values'.
func TestChartRoutes(t *testing.T) {
	ch, err := loader.Load(filepath.Join("..", "..", "charts", "release"))
	if err != nil {
		t.Fatal(err)
	}
	dep := func(name string, weight int, extra ...any) map[string]any {
		v := map[string]any{"name": name, "weight": weight, "deployment": map[string]any{"image": "app:" + name}}
		for i := 0; i+1 < len(extra); i += 2 {
			v[extra[i].(string)] = extra[i+1]
		}
		return v
	}
	tester := []any{map[string]any{"headers": map[string]any{"x-user": "tester"}}}
	cases := []struct {
		strategy string
		versions []any
		matches  map[string]int
		mirrors  map[string]int
	}{
		{"blue-green", []any{dep("v1", 0), dep("v2", 100)}, nil, nil},
		{"canary", []any{dep("v1", 2), dep("v2", 1, "match", tester)}, map[string]int{"app-v2": 1}, nil},
		{"mirror", []any{dep("v1", 100), dep("v2", 0)}, nil, nil},
		{"mirror", []any{dep("v1", 100), dep("v2", 0, "mirror", 40)}, nil, map[string]int{"app-v2": 40}},
		{"mirror", []any{dep("v1", 100), dep("v2", 0, "mirror", 40), dep("v3", 0, "mirror", 5)}, nil, map[string]int{"app-v2": 40, "app-v3": 5}},
		{"none", []any{dep("v1", 33), dep("v2", 33), dep("v3", 33)}, nil, nil},
	}
	for _, plane := range []string{"gateway-api", "traefik", "istio"} {
		for _, c := range cases {
			values := map[string]any{"app": map[string]any{"name": "app"}, "dataPlane": plane, "strategy": c.strategy, "versions": c.versions,
				"gatewayAPI": map[string]any{"parentRefs": []any{map[string]any{"name": "gw"}}}}
			r := renderRoute(t, ch, values)
			weights := make([]int, len(c.versions))
			for i, v := range c.versions {
				weights[i] = v.(map[string]any)["weight"].(int)
			}
			want := weights
			if plane == "istio" {
				if want, err = route.Percentages(weights); err != nil {
					t.Fatal(err)
				}
			}
			if got := r.Weights(); !reflect.DeepEqual(got, want) || string(r.Strategy) != c.strategy || r.Release != "rel" {
				t.Errorf("%s %s: weights %v strategy %q release %q, want %v %s rel", plane, c.strategy, got, r.Strategy, r.Release, want, c.strategy)
			}
			for _, b := range r.Backends {
				if len(b.Matches) != c.matches[b.Name] || b.Mirror != c.mirrors[b.Name] {
					t.Errorf("%s %s: backend %+v, want %d matches and mirror %d", plane, c.strategy, b, c.matches[b.Name], c.mirrors[b.Name])
				}
			}
			checkTraefikService(t, plane, c.strategy, renderChart(t, ch, values), r)
		}
	}
}

// checkTraefikService: on dataPlane traefik the chart renders a
// TraefikService whatever the strategy, for the first weighted version,
// mirroring what route.Parse read from the route; on the other data planes
// none.
func checkTraefikService(t *testing.T, plane, strategy string, out map[string]string, r *route.Route) {
	t.Helper()
	var doc string
	for name, d := range out {
		if strings.HasSuffix(name, "traefikservice.yaml") {
			doc = strings.TrimSpace(d)
		}
	}
	if plane != "traefik" {
		if doc != "" {
			t.Errorf("%s %s: a TraefikService:\n%s", plane, strategy, doc)
		}
		return
	}
	var ts struct {
		Kind     string `json:"kind"`
		Metadata struct{ Name string }
		Spec     struct {
			Mirroring struct {
				Name    string
				Port    int
				Mirrors []struct {
					Name    string
					Port    int
					Percent int
				}
			}
		}
	}
	if err := sigsyaml.Unmarshal([]byte(doc), &ts); err != nil || ts.Kind != "TraefikService" {
		t.Fatalf("%s %s: TraefikService %v:\n%s", plane, strategy, err, doc)
	}
	m := ts.Spec.Mirroring
	serving := r.Backends[slices.IndexFunc(r.Backends, func(b route.Backend) bool { return b.Weight > 0 })]
	if ts.Metadata.Name != "app" || m.Name != serving.Name || m.Port != serving.Port {
		t.Errorf("%s %s: TraefikService %s for %s:%d, want app for %s:%d", plane, strategy, ts.Metadata.Name, m.Name, m.Port, serving.Name, serving.Port)
	}
	mirrors := map[string]int{}
	for _, mm := range m.Mirrors {
		mirrors[mm.Name] = mm.Percent
	}
	for _, b := range r.Backends {
		if mirrors[b.Name] != b.Mirror {
			t.Errorf("%s %s: TraefikService mirrors %v, route %+v", plane, strategy, mirrors, r.Backends)
		}
	}
}

// TestPercentagesMatchChart renders the chart's VirtualService for random
// weights and compares its weights with route.Percentages.
func TestPercentagesMatchChart(t *testing.T) {
	ch, err := loader.Load(filepath.Join("..", "..", "charts", "release"))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 200 {
		n := 1 + rng.IntN(5)
		weights := make([]int, n)
		versions := make([]any, n)
		for i := range weights {
			weights[i] = rng.IntN(101)
			if rng.IntN(3) == 0 {
				weights[i] = 0
			}
		}
		if slices.Max(weights) == 0 {
			weights[0] = 1
		}
		for i, w := range weights {
			versions[i] = map[string]any{"name": fmt.Sprintf("v%d", i), "weight": w, "deployment": map[string]any{"image": "app"}}
		}
		r := renderRoute(t, ch, map[string]any{"dataPlane": "istio", "strategy": "none", "versions": versions})
		want, err := route.Percentages(weights)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.Weights(); !slices.Equal(got, want) {
			t.Fatalf("weights %v: the chart renders %v, Percentages gives %v", weights, got, want)
		}
	}
}

func TestWithWeights(t *testing.T) {
	versions := []map[string]any{
		{"name": "v1", "weight": float64(50), "deployment": map[string]any{"image": "a"}},
		{"name": "v2", "weight": int64(50), "mirror": int64(0)},
	}
	ws, list, err := withWeights(versions, map[string]int{"v2": 70, "v1": 30})
	if err != nil {
		t.Fatal(err)
	}
	want := []any{
		map[string]any{"name": "v1", "weight": 30, "deployment": map[string]any{"image": "a"}},
		map[string]any{"name": "v2", "weight": 70, "mirror": int64(0)},
	}
	if !slices.Equal(ws, []int{30, 70}) || !reflect.DeepEqual(list, want) {
		t.Errorf("withWeights = %v, %v; want [30 70], %v", ws, list, want)
	}
	if versions[0]["weight"] != float64(50) {
		t.Errorf("withWeights changed its input: %v", versions[0])
	}
	for _, w := range []map[string]int{{"v1": 100}, {"v1": 50, "v3": 50}, {"v1": 40, "v2": 30, "v3": 30}} {
		if _, _, err := withWeights(versions, w); err == nil || !strings.Contains(err.Error(), "want the same versions") {
			t.Errorf("withWeights(%v): %v, want an error naming the versions", w, err)
		}
	}
}

func TestAppOf(t *testing.T) {
	named := map[string]any{"app": map[string]any{"name": "shop"}}
	unnamed := map[string]any{"app": map[string]any{"name": ""}}
	for _, tt := range []struct {
		config, defaults map[string]any
		want             string
	}{
		{named, unnamed, "shop"},
		{nil, named, "shop"},
		{unnamed, unnamed, "rel"},
		{nil, nil, "rel"},
	} {
		if got := appOf("rel", tt.config, tt.defaults); got != tt.want {
			t.Errorf("appOf(rel, %v, %v) = %q, want %q", tt.config, tt.defaults, got, tt.want)
		}
	}
}

// TestReleaseRolloutSpecWithPrometheus: with Prometheus queries and no
// URL, the rollout's experiment reads the queries over the last interval
// and sends no load; a query that is not a template is refused by the
// metrics task's own check, naming it.
func TestReleaseRolloutSpecWithPrometheus(t *testing.T) {
	cfg := NewConfiguration()
	a := NewReleaseRollout(cfg)
	a.App, a.Version, a.Interval, a.SpecPath = "app", "v2", 30*time.Second, "rollout.yaml"
	a.Prometheus = "http://prom.monitoring:9090"
	a.Queries = map[string]string{"error-rate": `sum(rate(errors_total{version="{{.version}}"}[{{.window}}]))`}
	a.SLOs = []string{"prometheus/error-rate<=0.01"}
	if err := a.Validate(); err != nil {
		t.Fatal(err)
	}
	spec, err := a.spec("team", "rel", []string{"v1", "v2"}, "v1")
	if err != nil {
		t.Fatal(err)
	}
	plan, err := decodeSpec(spec, cfg, ".", nil, nil)
	if err != nil {
		t.Fatalf("%v\n%s", err, spec)
	}
	var tasks []string
	for _, tk := range plan.Tasks {
		tasks = append(tasks, tk.Spec.Task)
	}
	if fmt.Sprint(tasks) != "[metrics assess rollout]" || !strings.Contains(string(spec), "window: 30s") {
		t.Errorf("tasks %v, want [metrics assess rollout] with window 30s:\n%s", tasks, spec)
	}
	a.Queries["error-rate"] = "sum(errors_total{version={{.version}"
	if spec, err = a.spec("team", "rel", []string{"v1", "v2"}, "v1"); err != nil {
		t.Fatal(err)
	}
	if _, err := decodeSpec(spec, cfg, ".", nil, nil); err == nil || !strings.Contains(err.Error(), "queries[0]") {
		t.Errorf("a query that is not a template: %v, want an error naming queries[0]", err)
	}
}

// TestCheckPrometheus: release rollout asks Prometheus once before it
// starts, and names the URL when the answer is not a query result.
func TestCheckPrometheus(t *testing.T) {
	prom := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/prom/api/v1/query" || r.URL.Query().Get("query") != "vector(1)" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, `{"status":"success","data":{"resultType":"vector","result":[]}}`)
	}))
	defer prom.Close()
	if err := checkPrometheus(t.Context(), prom.URL+"/prom"); err != nil {
		t.Errorf("a Prometheus: %v", err)
	}
	if err := checkPrometheus(t.Context(), prom.URL); err == nil || !strings.Contains(err.Error(), "prometheus "+prom.URL+": GET "+prom.URL+"/api/v1/query") {
		t.Errorf("a 404: %v, want an error naming the URL", err)
	}
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	if err := checkPrometheus(t.Context(), closed.URL); err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Errorf("nothing listening: %v, want unreachable", err)
	}
}
