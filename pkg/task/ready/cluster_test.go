package ready

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/test/testbed"
)

// bed is the test bed's API server, started by TestMain. The unit tests in
// this package do not use it.
var bed *testbed.Env

func TestMain(m *testing.M) {
	os.Exit(testbed.Main(m, func(e *testbed.Env) { bed = e }))
}

// clusterEnv makes a namespace on the test bed and returns it with an Env
// whose Kube reaches the API server, with that namespace as the default.
func clusterEnv(t *testing.T, client dynamic.Interface) (string, *experiment.Env) {
	t.Helper()
	ns := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	if len(ns) > 63 {
		ns = ns[:63]
	}
	_, err := bed.Clientset.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace %s: %v", ns, err)
	}
	if client == nil {
		client = dynamicClient(t, bed.Config)
	}
	return ns, kubeEnv(client, ns)
}

func dynamicClient(t *testing.T, cfg *rest.Config) dynamic.Interface {
	t.Helper()
	c, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// createDeployment creates a Deployment named app in ns, with no status:
// the test bed runs no controller.
func createDeployment(t *testing.T, ns string) *appsv1.Deployment {
	t.Helper()
	labels := map[string]string{"app": "app"}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: new(int32(1)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1"}}},
			},
		},
	}
	d, err := bed.Clientset.AppsV1().Deployments(ns).Create(t.Context(), d, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create Deployment %s/app: %v", ns, err)
	}
	return d
}

// setAvailable writes the Deployment's status as its controller would: it
// has seen generation observed, and Available is status.
func setAvailable(t *testing.T, d *appsv1.Deployment, observed int64, status corev1.ConditionStatus) *appsv1.Deployment {
	t.Helper()
	d = d.DeepCopy()
	d.Status = appsv1.DeploymentStatus{
		ObservedGeneration: observed,
		Conditions: []appsv1.DeploymentCondition{{
			Type: appsv1.DeploymentAvailable, Status: status, Reason: "MinimumReplicasAvailable",
			LastUpdateTime: metav1.Now(), LastTransitionTime: metav1.Now(),
		}},
	}
	if status != corev1.ConditionTrue {
		d.Status.Conditions[0].Reason = "MinimumReplicasUnavailable"
	}
	d, err := bed.Clientset.AppsV1().Deployments(d.Namespace).UpdateStatus(t.Context(), d, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("update status of Deployment %s/%s: %v", d.Namespace, d.Name, err)
	}
	return d
}

// gatedClient lets the test drive the task's checks: each Get waits until
// the test sends on gate, and hands what it read to the test on seen.
type gatedClient struct {
	dynamic.Interface
	gate chan struct{}
	seen chan *unstructured.Unstructured
}

func (c *gatedClient) Resource(r schema.GroupVersionResource) dynamic.NamespaceableResourceInterface {
	return gatedResource{c.Interface.Resource(r), c}
}

type gatedResource struct {
	dynamic.NamespaceableResourceInterface
	c *gatedClient
}

func (r gatedResource) Namespace(ns string) dynamic.ResourceInterface {
	return gatedNamespace{r.NamespaceableResourceInterface.Namespace(ns), r.c}
}

type gatedNamespace struct {
	dynamic.ResourceInterface
	c *gatedClient
}

func (n gatedNamespace) Get(ctx context.Context, name string, opts metav1.GetOptions, sub ...string) (*unstructured.Unstructured, error) {
	select {
	case <-n.c.gate:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	obj, err := n.ResourceInterface.Get(ctx, name, opts, sub...)
	select {
	case n.c.seen <- obj:
	case <-ctx.Done():
	}
	return obj, err
}

// TestWaitsForCurrentAvailable drives the task through a Deployment's life
// on the API server, one check at a time: without status, not available,
// available for an older generation, then available for the current one. It
// must go on waiting until the last step, and then succeed.
func TestWaitsForCurrentAvailable(t *testing.T) {
	client := &gatedClient{Interface: dynamicClient(t, bed.Config), gate: make(chan struct{}), seen: make(chan *unstructured.Unstructured)}
	ns, e := clusterEnv(t, client)
	d := createDeployment(t, ns)
	if d.Generation != 1 {
		t.Fatalf("new Deployment at generation %d, want 1", d.Generation)
	}
	task, errs := decode(t, `{"objects": [{"group": "apps", "version": "v1", "resource": "deployments", "name": "app", "conditions": ["Available"]}],
		"interval": "1ms", "timeout": "2m"}`)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	done := make(chan error, 1)
	go func() { done <- task.Run(t.Context(), e) }()

	// check lets one Get through once the object is at resourceVersion rv,
	// and returns what the task saw.
	check := func(step, rv string) *unstructured.Unstructured {
		t.Helper()
		select {
		case client.gate <- struct{}{}:
		case err := <-done:
			t.Fatalf("%s: Run returned %v before checking it", step, err)
		}
		obj := <-client.seen
		if obj == nil || obj.GetResourceVersion() != rv {
			t.Fatalf("%s: the task read %v, want resourceVersion %s", step, obj, rv)
		}
		return obj
	}
	steps := []struct {
		name   string
		change func()
		want   string // what unmet says of the object the task saw
	}{
		{"no status", func() {}, "condition Available is missing"},
		{"not available", func() { d = setAvailable(t, d, 1, corev1.ConditionFalse) },
			"condition Available is False (MinimumReplicasUnavailable)"},
		{"available, then the spec changes", func() {
			d = setAvailable(t, d, 1, corev1.ConditionTrue)
			d.Spec.Replicas = new(int32(2))
			var err error
			if d, err = bed.Clientset.AppsV1().Deployments(ns).Update(t.Context(), d, metav1.UpdateOptions{}); err != nil {
				t.Fatalf("scale Deployment: %v", err)
			}
			if d.Generation != 2 {
				t.Fatalf("scaled Deployment at generation %d, want 2", d.Generation)
			}
		}, "condition Available is True but stale (status.observedGeneration 1 < metadata.generation 2)"},
		{"available at the current generation", func() { d = setAvailable(t, d, 2, corev1.ConditionTrue) }, ""},
	}
	for _, s := range steps {
		s.change()
		obj := check(s.name, d.ResourceVersion)
		if got := unmet(obj, task.Objects[0].Conditions); got != s.want {
			t.Errorf("%s: the task saw %q, want %q", s.name, got, s.want)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("Run after the Deployment became available: %v", err)
	}
}

// TestTimeoutOnCluster waits for a Deployment that is not available, a
// Service that does not exist, a type that the API server does not serve,
// and a Service in another namespace that exists.
func TestTimeoutOnCluster(t *testing.T) {
	ns, e := clusterEnv(t, nil)
	setAvailable(t, createDeployment(t, ns), 1, corev1.ConditionFalse)
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}
	if _, err := bed.Clientset.CoreV1().Services("default").Create(t.Context(), svc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	task, errs := decode(t, `{"objects": [
		{"group": "apps", "version": "v1", "resource": "deployments", "name": "app", "conditions": ["Available"]},
		{"version": "v1", "resource": "services", "name": "app"},
		{"group": "serving.kserve.io", "version": "v1beta1", "resource": "inferenceservices", "name": "model", "conditions": ["Ready"]},
		{"version": "v1", "resource": "services", "name": "web", "namespace": "default"}
	], "interval": "20ms", "timeout": "300ms"}`)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	err := task.Run(t.Context(), e)
	if err == nil {
		t.Fatal("Run succeeded, want a timeout")
	}
	for _, want := range []string{
		"not ready after 300ms (",
		fmt.Sprintf("deployments.apps %s/app: condition Available is False (MinimumReplicasUnavailable)", ns),
		fmt.Sprintf("services %s/app: not found", ns),
		fmt.Sprintf("inferenceservices.serving.kserve.io %s/model: the API server serves no resource inferenceservices in serving.kserve.io/v1beta1", ns),
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Run = %v\nwant it to say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "default/web") {
		t.Errorf("Run = %v; the existing Service default/web is ready and should not be named", err)
	}
}

// TestForbiddenOnCluster reads as a user without permissions: the task
// fails at its first check with the API server's Forbidden, naming the
// object, instead of waiting for its timeout.
func TestForbiddenOnCluster(t *testing.T) {
	cfg := rest.CopyConfig(bed.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "nobody"}
	ns, e := clusterEnv(t, dynamicClient(t, cfg))
	task, _ := decode(t, `{"objects": [{"group": "apps", "version": "v1", "resource": "deployments", "name": "app"}], "timeout": "10m"}`)
	start := time.Now()
	err := task.Run(t.Context(), e)
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "get deployments.apps "+ns+"/app: ") {
		t.Errorf("Run as nobody = %v; want Forbidden naming deployments.apps %s/app", err, ns)
	}
	if took := time.Since(start); took > time.Minute {
		t.Errorf("Run as nobody took %v; want it to fail at the first check", took)
	}
}

// TestExistenceOnCluster waits for a ConfigMap to exist (no conditions);
// the test creates it once the task has seen it missing.
func TestExistenceOnCluster(t *testing.T) {
	client := &gatedClient{Interface: dynamicClient(t, bed.Config), gate: make(chan struct{}), seen: make(chan *unstructured.Unstructured)}
	ns, e := clusterEnv(t, client)
	task, _ := decode(t, `{"objects": [{"version": "v1", "resource": "configmaps", "name": "settings"}], "interval": "1ms", "timeout": "2m"}`)
	done := make(chan error, 1)
	go func() { done <- task.Run(t.Context(), e) }()
	client.gate <- struct{}{}
	if obj := <-client.seen; obj != nil {
		t.Fatalf("the task read %v before the ConfigMap exists", obj)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings", Namespace: ns}}
	if _, err := bed.Clientset.CoreV1().ConfigMaps(ns).Create(t.Context(), cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case client.gate <- struct{}{}:
	case err := <-done:
		t.Fatalf("Run returned %v while the ConfigMap was missing", err)
	}
	if obj := <-client.seen; obj == nil {
		t.Fatal("the task did not find the ConfigMap after it was created")
	}
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}
