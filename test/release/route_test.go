package release_test

import (
	"maps"
	"os"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// planes are the data planes the chart renders for.
var planes = []string{"gateway-api", "istio"}

// route is what a live HTTPRoute or VirtualService routes, by backend
// Service name.
type route struct {
	resourceVersion string
	weights         map[string]int64
	// matched maps a backend to the header sets that reach it.
	matched map[string][]map[string]string
	mirrors map[string]int64
}

// readRoute reads the live route of app in ns.
func readRoute(t *testing.T, plane, ns, app string) route {
	t.Helper()
	gvr := httpRoutes
	if plane == "istio" {
		gvr = virtualServices
	}
	u, err := dyn.Resource(gvr).Namespace(ns).Get(t.Context(), app, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get the %s route %s/%s: %v", plane, ns, app, err)
	}
	r := route{resourceVersion: u.GetResourceVersion(), weights: map[string]int64{}, matched: map[string][]map[string]string{}, mirrors: map[string]int64{}}
	if plane == "istio" {
		host := func(m map[string]any) string {
			h, _, _ := unstructured.NestedString(m, "destination", "host")
			if h == "" {
				h, _, _ = unstructured.NestedString(m, "host")
			}
			return strings.TrimSuffix(h, "."+ns+".svc.cluster.local")
		}
		https, _, _ := unstructured.NestedSlice(u.Object, "spec", "http")
		for _, e := range https {
			h := e.(map[string]any)
			routes, _, _ := unstructured.NestedSlice(h, "route")
			if h["name"] == "weights" {
				for _, d := range routes {
					w, _, _ := unstructured.NestedInt64(d.(map[string]any), "weight")
					r.weights[host(d.(map[string]any))] = w
				}
				if m, ok := h["mirror"].(map[string]any); ok {
					p, _, _ := unstructured.NestedFloat64(h, "mirrorPercentage", "value")
					if p == 0 {
						pi, _, _ := unstructured.NestedInt64(h, "mirrorPercentage", "value")
						p = float64(pi)
					}
					r.mirrors[host(m)] = int64(p)
				}
				continue
			}
			matches, _, _ := unstructured.NestedSlice(h, "match")
			for _, m := range matches {
				hs := map[string]string{}
				headers, _, _ := unstructured.NestedMap(m.(map[string]any), "headers")
				for name, v := range headers {
					hs[name], _, _ = unstructured.NestedString(v.(map[string]any), "exact")
				}
				r.matched[host(routes[0].(map[string]any))] = append(r.matched[host(routes[0].(map[string]any))], hs)
			}
		}
		return r
	}
	rules, _, _ := unstructured.NestedSlice(u.Object, "spec", "rules")
	for _, rule := range rules {
		rl := rule.(map[string]any)
		refs, _, _ := unstructured.NestedSlice(rl, "backendRefs")
		if rl["name"] == "weights" {
			for _, ref := range refs {
				name, _, _ := unstructured.NestedString(ref.(map[string]any), "name")
				w, _, _ := unstructured.NestedInt64(ref.(map[string]any), "weight")
				r.weights[name] = w
			}
			filters, _, _ := unstructured.NestedSlice(rl, "filters")
			for _, f := range filters {
				name, _, _ := unstructured.NestedString(f.(map[string]any), "requestMirror", "backendRef", "name")
				p, _, _ := unstructured.NestedInt64(f.(map[string]any), "requestMirror", "percent")
				r.mirrors[name] = p
			}
			continue
		}
		backend, _, _ := unstructured.NestedString(refs[0].(map[string]any), "name")
		matches, _, _ := unstructured.NestedSlice(rl, "matches")
		for _, m := range matches {
			hs := map[string]string{}
			headers, _, _ := unstructured.NestedSlice(m.(map[string]any), "headers")
			for _, h := range headers {
				name, _, _ := unstructured.NestedString(h.(map[string]any), "name")
				hs[name], _, _ = unstructured.NestedString(h.(map[string]any), "value")
			}
			r.matched[backend] = append(r.matched[backend], hs)
		}
	}
	return r
}

// wantWeights checks a route's weights by backend.
func wantWeights(t *testing.T, step string, r route, want map[string]int64) {
	t.Helper()
	if !maps.Equal(r.weights, want) {
		t.Errorf("%s: weights %v, want %v", step, r.weights, want)
	}
}

// version is one entry of the chart's versions value.
type version map[string]any

// deployed is a version whose Deployment and Service the chart creates.
func deployed(name string, weight int, extra ...any) version {
	v := version{"name": name, "weight": weight, "deployment": map[string]any{"image": "registry.example/app:" + name}}
	for i := 0; i+1 < len(extra); i += 2 {
		v[extra[i].(string)] = extra[i+1]
	}
	return v
}

// valuesFile writes the chart's values for plane, strategy and versions
// (and other top-level values) into a file for helm -f.
func valuesFile(t *testing.T, plane, strategy string, versions []version, more map[string]any) string {
	t.Helper()
	v := map[string]any{
		"dataPlane": plane,
		"strategy":  strategy,
		"versions":  versions,
		// Not infra/gateway, where TestTutorial's Traefik listens: these
		// routes must not join its traffic.
		"gatewayAPI": map[string]any{"parentRefs": []any{map[string]any{"name": "gateway", "namespace": "no-data-plane"}}},
		"istio":      map[string]any{"gateways": []string{"no-data-plane/gateway"}},
	}
	maps.Copy(v, more)
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.CreateTemp(t.TempDir(), "values-*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}

// namespace makes a namespace that enforces Pod Security "restricted".
func namespace(t *testing.T, name string) string {
	t.Helper()
	_, err := env.Clientset.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: name, Labels: map[string]string{"pod-security.kubernetes.io/enforce": "restricted"},
	}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// As kube-controller-manager would: Pods without a serviceAccountName
	// need the namespace's default ServiceAccount (ServiceAccount admission).
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}
	if _, err := env.Clientset.CoreV1().ServiceAccounts(name).Create(t.Context(), sa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return name
}

// upgrade runs helm upgrade --install of the chart with a values file.
func upgrade(t *testing.T, ns, release, values string, flags ...string) outcome {
	t.Helper()
	return upgradeAt(t, env.HelmBin, ns, release, values, flags...)
}

// upgradeAt is upgrade with the helm binary bin.
func upgradeAt(t *testing.T, bin, ns, release, values string, flags ...string) outcome {
	t.Helper()
	return helmAt(t, bin, append([]string{"upgrade", "--install", release, chartDir, "-n", ns, "-f", values, "--timeout", "90s"}, flags...)...)
}

func mustUpgrade(t *testing.T, ns, release, values string, flags ...string) {
	t.Helper()
	mustUpgradeAt(t, env.HelmBin, ns, release, values, flags...)
}

func mustUpgradeAt(t *testing.T, bin, ns, release, values string, flags ...string) {
	t.Helper()
	if o := upgradeAt(t, bin, ns, release, values, flags...); o.Code != 0 {
		t.Fatalf("want success: %s", o)
	}
}

// upgradersAt are upgrade and mustUpgrade with the helm binary bin.
func upgradersAt(bin string) (func(*testing.T, string, string, string, ...string) outcome, func(*testing.T, string, string, string, ...string)) {
	return func(t *testing.T, ns, release, values string, flags ...string) outcome {
			t.Helper()
			return upgradeAt(t, bin, ns, release, values, flags...)
		}, func(t *testing.T, ns, release, values string, flags ...string) {
			t.Helper()
			mustUpgradeAt(t, bin, ns, release, values, flags...)
		}
}
