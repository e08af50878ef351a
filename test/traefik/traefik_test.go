package traefik_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/dynamic"

	"github.com/iter8-tools/iter8/test/node"
	"github.com/iter8-tools/iter8/test/testbed"
	"github.com/iter8-tools/iter8/test/traefik"
)

const gatewayAPIModule = "sigs.k8s.io/gateway-api@v1.6.3"

var (
	env       *testbed.Env
	dyn       dynamic.Interface
	sampleApp string
	// addrs gives the Deployments' Pods their backends' addresses.
	addrs traefik.Addresses

	httpRoutes = schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "httproutes"}
)

func TestMain(m *testing.M) {
	os.Exit(testbed.MainWith(m, setup))
}

func setup(e *testbed.Env) (func(), error) {
	env = e
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var err error
	if dyn, err = dynamic.NewForConfig(e.Config); err != nil {
		return nil, err
	}
	if err := installGatewayAPI(ctx); err != nil {
		return nil, err
	}
	if sampleApp, err = traefik.BuildSampleApp(ctx, e.Dir); err != nil {
		return nil, err
	}
	h, err := node.Start(ctx, node.Config{Admin: e.Config, Deployments: true, PodAddress: addrs.PodAddress})
	if err != nil {
		return nil, err
	}
	return h.Stop, nil
}

// installGatewayAPI creates the Gateway API's standard CRDs from the
// module's files and waits until they are established.
func installGatewayAPI(ctx context.Context) error {
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", gatewayAPIModule)
	cmd.Dir = os.TempDir()
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("go mod download %s: %v", gatewayAPIModule, err)
	}
	var mod struct{ Dir, Error string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		return fmt.Errorf("go mod download %s: %v %s", gatewayAPIModule, err, mod.Error)
	}
	files, _ := filepath.Glob(filepath.Join(mod.Dir, "config", "crd", "standard", "gateway.networking.k8s.io_*.yaml"))
	if len(files) == 0 {
		return fmt.Errorf("no CRDs in %s", mod.Dir)
	}
	args := []string{"create"}
	for _, f := range files {
		args = append(args, "-f", f)
	}
	cmd = exec.CommandContext(ctx, "kubectl", args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+env.Kubeconfig, "KUBECACHEDIR="+filepath.Join(env.Dir, "kubectl-cache"))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("kubectl create the CRDs: %v\n%s", err, out)
	}
	return traefik.WaitCRDs(ctx, env.Config)
}

func TestWeightedRoute(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cs := env.Clientset
	for _, ns := range []string{"infra", "app"} {
		if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	tr, err := traefik.Start(ctx, traefik.Config{Admin: env.Config, Namespace: "infra", Logf: t.Logf})
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

	versions := []string{"v1", "v2"}
	for _, v := range versions {
		b, err := traefik.StartBackend(ctx, traefik.BackendConfig{SampleApp: sampleApp, Version: v})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := b.Stop(); err != nil {
				t.Error(err)
			}
		})
		t.Cleanup(addrs.Set("app", "web", v, b.IP))
		createVersion(t, ctx, "app", "web", v)
	}

	backendRefs := []any{}
	for _, v := range versions {
		backendRefs = append(backendRefs, map[string]any{"name": "web-" + v, "port": int64(80), "weight": int64(50)})
	}
	route := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "gateway.networking.k8s.io/v1",
		"kind":       "HTTPRoute",
		"metadata":   map[string]any{"name": "web", "namespace": "app"},
		"spec": map[string]any{
			"parentRefs": []any{map[string]any{"name": tr.Gateway, "namespace": tr.Namespace}},
			"rules":      []any{map[string]any{"backendRefs": backendRefs}},
		},
	}}
	if _, err := dyn.Resource(httpRoutes).Namespace("app").Create(ctx, route, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// Poll until both versions answer; then 400 requests split about evenly.
	client := traefik.NewClient()
	deadline := time.Now().Add(60 * time.Second)
	for {
		counts, errs, first := traefik.Count(ctx, client, tr.URL+"/", nil, 40)
		if errs == 0 && counts["v1"] > 0 && counts["v2"] > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no split through Traefik after 60s: %v, %d errors (%v)", counts, errs, first)
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
	counts, errs, first := traefik.Count(ctx, client, tr.URL+"/", nil, 400)
	if errs != 0 || counts["v1"] < 140 || counts["v2"] < 140 {
		t.Errorf("400 requests at 50/50: %v, %d errors (%v)", counts, errs, first)
	}
}

// createVersion creates Deployment and Service app-version as the release
// chart would.
func createVersion(t *testing.T, ctx context.Context, ns, app, version string) {
	t.Helper()
	labels := map[string]string{"iter8.tools/app": app, "iter8.tools/version": version}
	one := int32(1)
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: app + "-" + version, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: &one,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "app", Image: "registry.example/app:" + version,
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
				}}},
			},
		},
	}
	if _, err := env.Clientset.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: app + "-" + version, Namespace: ns},
		Spec: corev1.ServiceSpec{
			Selector: labels,
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}},
		},
	}
	if _, err := env.Clientset.CoreV1().Services(ns).Create(ctx, s, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestBackend checks a backend on its own: reachable from the host at its
// namespace's address, and gone after Stop.
func TestBackend(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	b, err := traefik.StartBackend(ctx, traefik.BackendConfig{SampleApp: sampleApp, Version: "solo"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Stop()
	resp, err := traefik.NewClient().Get(b.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Header.Get("X-Version") != "solo" || !bytes.Contains(body, []byte(`"solo"`)) {
		t.Errorf("got %s %q", resp.Header, body)
	}
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/run/netns/" + b.NetNS); err == nil {
		t.Errorf("network namespace %s left after Stop", b.NetNS)
	}
	if out, err := exec.Command("ip", "link", "show", b.HostLink).CombinedOutput(); err == nil {
		t.Errorf("host link left after Stop: %s", out)
	}
}
