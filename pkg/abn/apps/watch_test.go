package apps

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/iter8-tools/iter8/pkg/route"
	"github.com/iter8-tools/iter8/test/testbed"
)

// bed is the test bed's API server, with the Gateway API's HTTPRoute CRD and
// without Istio's, started by TestMain.
var (
	bed *testbed.Env
	dyn dynamic.Interface
)

var httpRoutes = schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "httproutes"}

func TestMain(m *testing.M) {
	os.Exit(testbed.MainWith(m, func(e *testbed.Env) (func(), error) {
		bed = e
		var err error
		if dyn, err = dynamic.NewForConfig(e.Config); err != nil {
			return nil, fmt.Errorf("dynamic client: %w", err)
		}
		// The CRD from the Gateway API module this module requires, so that
		// its schema is the one pkg/route decodes.
		out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/gateway-api").Output()
		if err != nil {
			return nil, fmt.Errorf("find module sigs.k8s.io/gateway-api: %w", err)
		}
		crd := filepath.Join(strings.TrimSpace(string(out)), "config", "crd", "standard", "gateway.networking.k8s.io_httproutes.yaml")
		if _, err := envtest.InstallCRDs(e.Config, envtest.CRDInstallOptions{Paths: []string{crd}, ErrorIfPathMissing: true}); err != nil {
			return nil, fmt.Errorf("install CRD %s: %w", crd, err)
		}
		return func() {}, nil
	}))
}

// logBuffer collects the watcher's log lines; safe for the informers'
// goroutines, and for lines that come after the test ended.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// namespace creates a namespace named after the test, with a suffix so
// that -count=N runs on the one API server do not collide.
func namespace(t *testing.T) string {
	t.Helper()
	prefix := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	if len(prefix) > 50 {
		prefix = prefix[:50]
	}
	ns, err := bed.Clientset.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace %s-*: %v", prefix, err)
	}
	return ns.Name
}

// startWatcher starts a Watcher of namespaces, stopped when the test ends,
// and waits until it has synced.
func startWatcher(t *testing.T, namespaces ...string) (*Watcher, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	w := NewWatcher(bed.Clientset, dyn, namespaces...)
	w.Logger = slog.New(slog.NewTextHandler(logs, nil))
	if w.Synced() {
		t.Fatal("Synced before Start")
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "watcher synced", w.Synced)
	return w, logs
}

// waitFor polls cond until it holds, failing the test after 30s; it returns
// how long that took.
func waitFor(t *testing.T, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 30s", what)
		}
		time.Sleep(2 * time.Millisecond) // poll interval, not synchronisation
	}
	return time.Since(start)
}

// version creates a version's Deployment (Available or not, at its current
// generation: the test bed runs no controller, so the test writes the
// status), Service and EndpointSlice with one ready endpoint, labelled as
// the release chart and the EndpointSlice controller label them.
func version(t *testing.T, ns, app, v string, available bool) {
	t.Helper()
	ctx := t.Context()
	labels := map[string]string{route.LabelApp: app, route.LabelVersion: v}
	name := app + "-" + v
	sel := map[string]string{"app": name}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: new(int32(1)),
			Selector: &metav1.LabelSelector{MatchLabels: sel},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: sel},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1"}}},
			},
		},
	}
	d, err := bed.Clientset.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create Deployment %s: %v", name, err)
	}
	setAvailable(t, d, available)
	svc, err := bed.Clientset.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
		Spec:       corev1.ServiceSpec{Selector: sel, Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create Service %s: %v", name, err)
	}
	// As test/node's harness and the EndpointSlice controller write them:
	// the Service's labels plus its name.
	sliceLabels := map[string]string{discoveryv1.LabelServiceName: svc.Name}
	for k, v := range svc.Labels {
		sliceLabels[k] = v
	}
	if _, err := bed.Clientset.DiscoveryV1().EndpointSlices(ns).Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{GenerateName: name + "-", Namespace: ns, Labels: sliceLabels},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.1"}, Conditions: discoveryv1.EndpointConditions{Ready: new(true)}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create EndpointSlice of %s: %v", name, err)
	}
}

// setAvailable writes d's status as a Deployment controller would, and
// returns the updated Deployment.
func setAvailable(t *testing.T, d *appsv1.Deployment, available bool) *appsv1.Deployment {
	t.Helper()
	status := corev1.ConditionFalse
	if available {
		status = corev1.ConditionTrue
	}
	d = d.DeepCopy()
	d.Status = appsv1.DeploymentStatus{
		ObservedGeneration: d.Generation, Replicas: 1, ReadyReplicas: 1,
		Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: status, Reason: "Test"}},
	}
	got, err := bed.Clientset.AppsV1().Deployments(d.Namespace).UpdateStatus(t.Context(), d, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("update status of Deployment %s: %v", d.Name, err)
	}
	return got
}

// backend is one backendRef of the weights rule.
type backend struct {
	service string
	weight  int64
}

// httpRoute returns an HTTPRoute as the release chart renders it: a rule
// named "weights" and, when header is set, a rule per version matching the
// header equal to the version's name.
func httpRoute(ns, app string, labelled bool, header string, backends ...backend) *unstructured.Unstructured {
	meta := map[string]any{"name": app, "namespace": ns}
	if labelled {
		meta["labels"] = map[string]any{route.LabelApp: app}
	}
	if header != "" {
		meta["annotations"] = map[string]any{AnnotationHeader: header}
	}
	var refs []any
	for _, b := range backends {
		refs = append(refs, map[string]any{"name": b.service, "port": int64(80), "weight": b.weight})
	}
	rules := []any{map[string]any{"name": route.WeightsRule, "backendRefs": refs}}
	if header != "" {
		for _, b := range backends {
			v := strings.TrimPrefix(b.service, app+"-")
			rules = append(rules, map[string]any{
				"name":        v + route.MatchSuffix,
				"matches":     []any{map[string]any{"headers": []any{map[string]any{"name": header, "value": v}}}},
				"backendRefs": []any{map[string]any{"name": b.service, "port": int64(80)}},
			})
		}
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": meta,
		"spec": map[string]any{"parentRefs": []any{map[string]any{"name": "gw"}}, "rules": rules},
	}}
}

func createRoute(t *testing.T, u *unstructured.Unstructured) *unstructured.Unstructured {
	t.Helper()
	got, err := dyn.Resource(httpRoutes).Namespace(u.GetNamespace()).Create(t.Context(), u, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create HTTPRoute %s: %v", u.GetName(), err)
	}
	return got
}

// appIs returns a condition: the watcher's app equals want.
func appIs(w *Watcher, want App) func() bool {
	return func() bool {
		got, ok := w.App(want.Namespace, want.Name)
		return ok && reflect.DeepEqual(got, want)
	}
}

func TestWatcher(t *testing.T) {
	ns := namespace(t)
	version(t, ns, "shop", "v1", true)
	version(t, ns, "shop", "v2", true)
	createRoute(t, httpRoute(ns, "shop", true, "", backend{"shop-v1", 75}, backend{"shop-v2", 25}))

	w, logs := startWatcher(t, ns)
	want := App{Namespace: ns, Name: "shop", Versions: []Version{
		{Name: "v1", Weight: 75, Ready: true},
		{Name: "v2", Weight: 25, Ready: true},
	}}
	// Synced means the initial lists are in the map: no waiting.
	if got, ok := w.App(ns, "shop"); !ok || !reflect.DeepEqual(got, want) {
		t.Fatalf("after sync: App = %+v, %v; want %+v", got, ok, want)
	}
	if !strings.Contains(logs.String(), "not watching VirtualServices") {
		t.Errorf("no log line about the missing VirtualService CRD; logs:\n%s", logs)
	}
	if _, ok := w.App(ns, "nothing"); ok {
		t.Error("App of an app with no route: found")
	}

	t.Run("not available", func(t *testing.T) {
		d, err := bed.Clientset.AppsV1().Deployments(ns).Get(t.Context(), "shop-v2", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		d = setAvailable(t, d, false)
		want.Versions[1].Ready = false
		waitFor(t, "v2 not ready", appIs(w, want))
		setAvailable(t, d, true)
		want.Versions[1].Ready = true
		waitFor(t, "v2 ready again", appIs(w, want))
	})

	t.Run("weights changed", func(t *testing.T) {
		u, err := dyn.Resource(httpRoutes).Namespace(ns).Get(t.Context(), "shop", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		u.Object["spec"].(map[string]any)["rules"] = httpRoute(ns, "shop", true, "", backend{"shop-v1", 10}, backend{"shop-v2", 90}).Object["spec"].(map[string]any)["rules"]
		start := time.Now()
		if _, err := dyn.Resource(httpRoutes).Namespace(ns).Update(t.Context(), u, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		want.Versions[0].Weight, want.Versions[1].Weight = 10, 90
		waitFor(t, "weights 10/90", appIs(w, want))
		t.Logf("route update to App: %v (from the update's request)", time.Since(start))
	})

	t.Run("unparsable route", func(t *testing.T) {
		u, err := dyn.Resource(httpRoutes).Namespace(ns).Get(t.Context(), "shop", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// A route of the chart always has a "weights" rule.
		rules := u.Object["spec"].(map[string]any)["rules"].([]any)
		rules[0].(map[string]any)["name"] = "other"
		if _, err := dyn.Resource(httpRoutes).Namespace(ns).Update(t.Context(), u, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "app left out", func() bool { _, ok := w.App(ns, "shop"); return !ok })
		waitFor(t, "the broken route logged", func() bool { return strings.Contains(logs.String(), "its route does not parse") })
		// Another change of the app, not of its route, recomputes it: no
		// second line.
		before := w.computes.Load()
		d, err := bed.Clientset.AppsV1().Deployments(ns).Get(t.Context(), "shop-v1", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		d = setAvailable(t, d, false)
		waitFor(t, "a recomputation", func() bool { return w.computes.Load() > before })
		if n := strings.Count(logs.String(), "its route does not parse"); n != 1 {
			t.Errorf("%d log lines about the broken route, want 1; logs:\n%s", n, logs)
		}
		setAvailable(t, d, true)
		u, err = dyn.Resource(httpRoutes).Namespace(ns).Get(t.Context(), "shop", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		u.Object["spec"].(map[string]any)["rules"].([]any)[0].(map[string]any)["name"] = route.WeightsRule
		if _, err := dyn.Resource(httpRoutes).Namespace(ns).Update(t.Context(), u, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "app back", appIs(w, want))
	})

	t.Run("route deleted", func(t *testing.T) {
		if err := dyn.Resource(httpRoutes).Namespace(ns).Delete(t.Context(), "shop", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "app gone", func() bool { _, ok := w.App(ns, "shop"); return !ok })
	})
}

func TestWatcherIgnoresUnlabelledRoute(t *testing.T) {
	ns := namespace(t)
	version(t, ns, "bare", "v1", true)
	createRoute(t, httpRoute(ns, "bare", false, "", backend{"bare-v1", 100}))
	// A labelled route created after the unlabelled one: once it shows,
	// the watcher has seen the unlabelled one too, were it to see it.
	version(t, ns, "marker", "v1", true)
	createRoute(t, httpRoute(ns, "marker", true, "", backend{"marker-v1", 100}))

	// All namespaces: the label, not the namespace, keeps the route out.
	w, _ := startWatcher(t)
	waitFor(t, "marker app", appIs(w, App{Namespace: ns, Name: "marker", Versions: []Version{{Name: "v1", Weight: 100, Ready: true}}}))
	if a, ok := w.App(ns, "bare"); ok {
		t.Errorf("unlabelled route: App = %+v", a)
	}
}

func TestWatcherHeader(t *testing.T) {
	ns := namespace(t)
	version(t, ns, "hdr", "v1", true)
	version(t, ns, "hdr", "v2", false)
	w, _ := startWatcher(t, ns)
	// Created after the watcher synced: the app comes by a watch event.
	createRoute(t, httpRoute(ns, "hdr", true, "X-Version", backend{"hdr-v1", 50}, backend{"hdr-v2", 50}))
	waitFor(t, "header app", appIs(w, App{Namespace: ns, Name: "hdr", Header: "X-Version", Versions: []Version{
		{Name: "v1", Weight: 50, Ready: true, HeaderValue: "v1"},
		{Name: "v2", Weight: 50, Ready: false, HeaderValue: "v2"},
	}}))
}

func TestWatcherStop(t *testing.T) {
	ns := namespace(t)
	w := NewWatcher(bed.Clientset, dyn, ns)
	w.Logger = slog.New(slog.NewTextHandler(&logBuffer{}, nil))
	ctx, cancel := context.WithCancel(context.Background())
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w.Start(ctx); err == nil {
		t.Error("second Start: no error")
	}
	waitFor(t, "synced", w.Synced)
	cancel()
	waitFor(t, "not synced after stop", func() bool { return !w.Synced() })
}
