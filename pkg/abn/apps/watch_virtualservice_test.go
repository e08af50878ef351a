package apps

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/iter8-tools/iter8/test/testbed"
)

// virtualServices is the resource of the chart's istio route (apiVersion
// networking.istio.io/v1), the one the watcher watches; crds are the
// API server's CRDs.
var (
	virtualServices = schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "virtualservices"}
	crds            = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
)

// installVirtualServiceCRD installs Istio's VirtualService CRD, from the
// istio.io/api module's own file, until the test ends. The package's other
// tests want the API server without it (TestWatcher checks the watcher says
// it skips VirtualServices), so the cleanup waits until discovery no longer
// serves the group. Call it before startWatcher, so that the watcher stops
// before its CRD goes. Through the dynamic client rather than envtest's,
// whose logger prints a stack trace when first used 30s into a run.
func installVirtualServiceCRD(t *testing.T) {
	t.Helper()
	crd := virtualServiceCRD(t)
	if _, err := dyn.Resource(crds).Create(t.Context(), crd, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create CRD %s: %v", crd.GetName(), err)
	}
	// What the watcher's Start asks before it watches a route kind.
	served := func() (bool, error) {
		list, err := bed.Clientset.Discovery().ServerResourcesForGroupVersion(virtualServices.GroupVersion().String())
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil && slices.ContainsFunc(list.APIResources, func(r metav1.APIResource) bool { return r.Name == virtualServices.Resource }), err
	}
	t.Cleanup(func() {
		// t.Context() is done by now.
		if err := dyn.Resource(crds).Delete(context.Background(), crd.GetName(), metav1.DeleteOptions{}); err != nil {
			t.Errorf("delete CRD %s: %v", crd.GetName(), err)
			return
		}
		waitFor(t, "VirtualServices no longer served", func() bool { ok, err := served(); return !ok && err == nil })
	})
	waitFor(t, "VirtualServices served", func() bool { ok, _ := served(); return ok })
}

// virtualServiceCRD returns the VirtualService CRD from the file of
// Istio's CRDs that the test beds install.
func virtualServiceCRD(t *testing.T) *unstructured.Unstructured {
	t.Helper()
	_, file, err := testbed.RouteCRDFiles(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	docs := utilyaml.NewYAMLReader(bufio.NewReader(f))
	for {
		doc, err := docs.Read()
		if err == io.EOF {
			t.Fatalf("no CRD %s in %s", virtualServices.GroupResource(), file)
		}
		if err != nil {
			t.Fatalf("read %s: %v", file, err)
		}
		js, err := yaml.YAMLToJSON(doc)
		if err != nil {
			t.Fatalf("read %s: %v", file, err)
		}
		if string(js) == "null" {
			continue // a document of comments only
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(js); err != nil {
			t.Fatalf("read %s: %v", file, err)
		}
		if u.GetKind() == "CustomResourceDefinition" && u.GetName() == virtualServices.GroupResource().String() {
			return u
		}
	}
}

// chartVersion is one entry of the release chart's versions value.
type chartVersion struct {
	name   string
	weight int
}

// renderVirtualService renders the release chart's route for the istio data
// plane with helm template, so that the test creates exactly what a release
// of app in ns applies: strategy canary, abn.header header, and versions in
// order, each with its own Deployment and Service (<app>-<version>).
func renderVirtualService(t *testing.T, ns, app, header string, versions ...chartVersion) *unstructured.Unstructured {
	t.Helper()
	root, err := testbed.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	var vs []map[string]any
	for _, v := range versions {
		vs = append(vs, map[string]any{"name": v.name, "weight": v.weight, "deployment": map[string]any{"image": "registry.example/app:1"}})
	}
	values, err := json.Marshal(map[string]any{
		"app": map[string]any{"name": app}, "dataPlane": "istio", "strategy": "canary",
		"abn": map[string]any{"header": header}, "versions": vs,
	})
	if err != nil {
		t.Fatal(err)
	}
	valuesFile := filepath.Join(t.TempDir(), "values.json")
	if err := os.WriteFile(valuesFile, values, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	o := testbed.Run(t, ctx, bed.Helm(ctx, "template", app, filepath.Join(root, "charts", "release"),
		"--namespace", ns, "--values", valuesFile, "--show-only", "templates/virtualservice.yaml"))
	if o.Code != 0 {
		t.Fatalf("render the VirtualService: %s", o)
	}
	js, err := yaml.YAMLToJSON([]byte(o.Stdout))
	if err != nil {
		t.Fatalf("rendered VirtualService: %v\n%s", err, o.Stdout)
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(js); err != nil {
		t.Fatalf("rendered VirtualService: %v\n%s", err, o.Stdout)
	}
	if u.GetKind() != "VirtualService" || u.GetAPIVersion() != virtualServices.GroupVersion().String() {
		t.Fatalf("rendered %s %s, want a VirtualService of %s", u.GetAPIVersion(), u.GetKind(), virtualServices.GroupVersion())
	}
	// helm template leaves the namespace to the client, as helm install does.
	u.SetNamespace(ns)
	return u
}

// TestWatcherVirtualService follows an app whose route is the chart's Istio
// VirtualService: its http entries put each version's header match before
// the weights entry, name backends by host (<service>.<ns>.svc.cluster.local)
// and weigh them in percent.
func TestWatcherVirtualService(t *testing.T) {
	installVirtualServiceCRD(t)
	ns := namespace(t)
	version(t, ns, "shop", "v1", true)
	version(t, ns, "shop", "v2", false)
	rendered := renderVirtualService(t, ns, "shop", "X-Version", chartVersion{"v1", 75}, chartVersion{"v2", 25})
	if _, err := dyn.Resource(virtualServices).Namespace(ns).Create(t.Context(), rendered, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create VirtualService shop: %v", err)
	}

	w, logs := startWatcher(t, ns)
	// The annotation's header, as the chart writes it; the match keys are
	// lowercased, which must not lose the versions' header values.
	want := App{Namespace: ns, Name: "shop", Header: "X-Version", Versions: []Version{
		{Name: "v1", Weight: 75, Ready: true, HeaderValue: "v1"},
		{Name: "v2", Weight: 25, Ready: false, HeaderValue: "v2"},
	}}
	// Synced means the initial lists are in the map: no waiting.
	if got, ok := w.App(ns, "shop"); !ok || !reflect.DeepEqual(got, want) {
		t.Fatalf("after sync: App = %+v, %v; want %+v; logs:\n%s", got, ok, want, logs)
	}
	if strings.Contains(logs.String(), "not watching VirtualServices") {
		t.Errorf("the watcher skipped VirtualServices with their CRD installed; logs:\n%s", logs)
	}

	t.Run("weights changed", func(t *testing.T) {
		u, err := dyn.Resource(virtualServices).Namespace(ns).Get(t.Context(), "shop", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// An upgrade of the release: the spec the chart renders for the new
		// weights, over the live object.
		u.Object["spec"] = renderVirtualService(t, ns, "shop", "X-Version", chartVersion{"v1", 10}, chartVersion{"v2", 90}).Object["spec"]
		if _, err := dyn.Resource(virtualServices).Namespace(ns).Update(t.Context(), u, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		want.Versions[0].Weight, want.Versions[1].Weight = 10, 90
		waitFor(t, "weights 10/90", appIs(w, want))
	})

	t.Run("route deleted", func(t *testing.T) {
		if err := dyn.Resource(virtualServices).Namespace(ns).Delete(t.Context(), "shop", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "app gone", func() bool { _, ok := w.App(ns, "shop"); return !ok })
	})
}
