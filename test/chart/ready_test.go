package chart_test

import (
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/cli/values"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/iter8-tools/iter8/pkg/action"
	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/kube"
	"github.com/iter8-tools/iter8/pkg/task"
	"github.com/iter8-tools/iter8/pkg/task/ready"
)

var (
	deployments       = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	services          = schema.GroupVersionResource{Version: "v1", Resource: "services"}
	inferenceServices = schema.GroupVersionResource{Group: "serving.kserve.io", Version: "v1beta1", Resource: "inferenceservices"}
	statefulSets      = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "statefulsets"}
)

// baseRules are the Role's rules without ready objects.
func baseRules(release string) []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{release + "-spec"}, Verbs: []string{"get"}},
		{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{release + "-result"}, Verbs: []string{"get", "update"}},
		{APIGroups: []string{"batch"}, Resources: []string{"jobs"}, ResourceNames: []string{release + "-iter8-run"}, Verbs: []string{"patch"}},
	}
}

// readyTask decodes an experiment spec with every task, as the Job does,
// and returns its ready task (nil when it has none).
func readyTask(t *testing.T, spec string) *ready.Task {
	t.Helper()
	plan, err := experiment.Decode([]byte(spec), experiment.DecodeOptions{Registry: task.Registry()})
	if err != nil {
		t.Fatalf("decode the rendered spec: %v\n%s", err, spec)
	}
	for _, pt := range plan.Tasks {
		if rt, ok := pt.Task.(*ready.Task); ok {
			return rt
		}
	}
	return nil
}

// TestReadyTemplate renders ready's short names into the spec's objects and
// the Role's rules: get on exactly those objects, by name.
func TestReadyTemplate(t *testing.T) {
	const release, ns = "perf", "team-a"
	// sts is a short name that the user adds to resourceTypes.
	sts := "resourceTypes.sts.group=apps,resourceTypes.sts.version=v1,resourceTypes.sts.resource=statefulsets,resourceTypes.sts.conditions={Ready}"
	tests := []struct {
		name        string
		set         []string
		wantObjects []ready.Object
		wantRules   []rbacv1.PolicyRule // after baseRules
	}{
		{
			name: "short names",
			set: []string{"tasks={ready,http}", "http.url=http://app:8080/",
				"ready.deploy=app", "ready.svc={app,backend}", "ready.isvc=model", "ready.timeout=120s", sts, "ready.sts=db"},
			wantObjects: []ready.Object{
				{Resource: deployments, Name: "app", Conditions: []string{"Available"}},
				{Resource: inferenceServices, Name: "model", Conditions: []string{"Ready"}},
				{Resource: statefulSets, Name: "db", Conditions: []string{"Ready"}},
				{Resource: services, Name: "app"},
				{Resource: services, Name: "backend"},
			},
			wantRules: []rbacv1.PolicyRule{
				{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, ResourceNames: []string{"app"}, Verbs: []string{"get"}},
				{APIGroups: []string{"serving.kserve.io"}, Resources: []string{"inferenceservices"}, ResourceNames: []string{"model"}, Verbs: []string{"get"}},
				{APIGroups: []string{"apps"}, Resources: []string{"statefulsets"}, ResourceNames: []string{"db"}, Verbs: []string{"get"}},
				{APIGroups: []string{""}, Resources: []string{"services"}, ResourceNames: []string{"app", "backend"}, Verbs: []string{"get"}},
			},
		},
		{
			name: "url and objects in the release's namespace, conditions changed",
			set: []string{"tasks={ready}", "ready.url=http://app:8080/healthz", "ready.deploy=app",
				"ready.namespace=" + ns, "resourceTypes.deploy.conditions={Progressing,Available}"},
			wantObjects: []ready.Object{
				{Resource: deployments, Name: "app", Namespace: ns, Conditions: []string{"Progressing", "Available"}},
			},
			wantRules: []rbacv1.PolicyRule{
				{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, ResourceNames: []string{"app"}, Verbs: []string{"get"}},
			},
		},
		{
			name: "existence only",
			set:  []string{"tasks={ready}", "ready.deploy=app", "resourceTypes.deploy.conditions={}"},
			wantObjects: []ready.Object{
				{Resource: deployments, Name: "app"},
			},
			wantRules: []rbacv1.PolicyRule{
				{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, ResourceNames: []string{"app"}, Verbs: []string{"get"}},
			},
		},
		{
			name: "services with endpoints",
			set:  []string{"tasks={ready}", "ready.deploy=app", "ready.svc={app,backend}", "resourceTypes.svc.endpoints=true"},
			wantObjects: []ready.Object{
				{Resource: deployments, Name: "app", Conditions: []string{"Available"}},
				{Resource: services, Name: "app", Endpoints: true},
				{Resource: services, Name: "backend", Endpoints: true},
			},
			wantRules: []rbacv1.PolicyRule{
				{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, ResourceNames: []string{"app"}, Verbs: []string{"get"}},
				{APIGroups: []string{""}, Resources: []string{"services"}, ResourceNames: []string{"app", "backend"}, Verbs: []string{"get"}},
				{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: []string{"list"}},
			},
		},
		{
			name: "endpoints on a type that ready does not use",
			set:  []string{"tasks={ready}", "ready.deploy=app", "resourceTypes.svc.endpoints=true"},
			wantObjects: []ready.Object{
				{Resource: deployments, Name: "app", Conditions: []string{"Available"}},
			},
			wantRules: []rbacv1.PolicyRule{
				{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, ResourceNames: []string{"app"}, Verbs: []string{"get"}},
			},
		},
		{
			name: "url only",
			set:  []string{"tasks={ready}", "ready.url=http://app:8080/healthz"},
		},
		{
			name: "ready not among the tasks",
			set:  []string{"tasks={http}", "http.url=http://app:8080/", "ready.deploy=app"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"template", release, chartDir, "--namespace", ns}
			for _, s := range tc.set {
				args = append(args, "--set", s)
			}
			m := parseManifests(t, mustHelm(t, args...).stdout)

			var role rbacv1.Role
			m.decode(t, "Role/perf-iter8", &role)
			if want := append(baseRules(release), tc.wantRules...); !reflect.DeepEqual(role.Rules, want) {
				t.Errorf("Role rules:\n got %+v\nwant %+v", role.Rules, want)
			}

			var s corev1.Secret
			m.decode(t, "Secret/perf-spec", &s)
			rt := readyTask(t, s.StringData["experiment.yaml"])
			if !slices.Contains(tc.set, "tasks={http}") && rt == nil {
				t.Fatalf("the spec has no ready task:\n%s", s.StringData["experiment.yaml"])
			}
			var got []ready.Object
			if rt != nil {
				got = rt.Objects
			}
			if !reflect.DeepEqual(got, tc.wantObjects) {
				t.Errorf("ready objects:\n got %+v\nwant %+v\nspec:\n%s", got, tc.wantObjects, s.StringData["experiment.yaml"])
			}
		})
	}
}

// TestReadyLocalRender shows that a local launch, which has no Role, may
// name objects in any namespace: the run reads them with the user's own
// credentials.
func TestReadyLocalRender(t *testing.T) {
	l := action.NewLaunch(action.NewConfiguration())
	l.ChartPath = chartDir
	l.Values = values.Options{Values: []string{"tasks={ready}", "ready.deploy=app", "ready.namespace=elsewhere"}}
	spec, err := l.Render()
	if err != nil {
		t.Fatalf("render locally: %v", err)
	}
	want := []ready.Object{{Resource: deployments, Name: "app", Namespace: "elsewhere", Conditions: []string{"Available"}}}
	if got := readyTask(t, string(spec)).Objects; !reflect.DeepEqual(got, want) {
		t.Errorf("ready objects:\n got %+v\nwant %+v", got, want)
	}
}

// TestReadyBadValues shows that bad ready values and resource types fail
// `helm install` with a message naming the value, before anything exists in
// the cluster.
func TestReadyBadValues(t *testing.T) {
	const ns = "iter8-ready-bad"
	createNamespace(t, ns, nil)
	before := snapshot(t, ns)
	tests := []badValues{
		{"unknown short name", []string{"ready.deploi=app"},
			`ready.deploi: unknown short name "deploi": want one of cm, deploy, httproute, isvc, job, ksvc, pod, svc, or add it to resourceTypes`},
		{"unknown short name lists the user's types", []string{"resourceTypes.sts.version=v1,resourceTypes.sts.resource=statefulsets", "ready.statefulset=db"},
			"want one of cm, deploy, httproute, isvc, job, ksvc, pod, sts, svc,"},
		{"another namespace", []string{"ready.deploy=app", "ready.namespace=other"},
			`ready.namespace: "other" is not the release's namespace "iter8-ready-bad"`},
		{"object named twice", []string{"ready.svc={app,app}"}, "/ready/svc"},
		{"object named twice by two short names",
			[]string{"resourceTypes.service.version=v1,resourceTypes.service.resource=services", "ready.svc=app", "ready.service=app"},
			`ready.svc: services "app" is already named by ready.service`},
		{"short name shadows an input", []string{"resourceTypes.timeout.version=v1,resourceTypes.timeout.resource=services"},
			`resourceTypes.timeout: "timeout" is an input of ready (ready.timeout), not a short name`},
		{"name not an object name", []string{"ready.deploy=My_App"}, "/ready/deploy"},
		{"empty list of names", []string{"ready.deploy={}"}, "/ready/deploy"},
		{"namespace not a DNS label", []string{"ready.deploy=app", "ready.namespace=Team.A"}, "/ready/namespace"},
		{"resource type without resource", []string{"resourceTypes.sts.version=v1"}, "missing property 'resource'"},
		{"resource type unknown key", []string{"resourceTypes.deploy.kind=Deployment"}, "additional properties 'kind' not allowed"},
		{"resource type resource not lowercase plural", []string{"resourceTypes.deploy.resource=Deployment"}, "/resourceTypes/deploy/resource"},
		{"resource type group with version", []string{"resourceTypes.deploy.group=apps/v1"}, "/resourceTypes/deploy/group"},
		{"resource type bad condition", []string{"resourceTypes.deploy.conditions={Is Available}"}, "/resourceTypes/deploy/conditions/0"},
		{"endpoints on a Deployment", []string{"ready.deploy=app", "resourceTypes.deploy.endpoints=true"},
			`resourceTypes.deploy.endpoints: only for Services (group "", version v1, resource services): deployments has no EndpointSlices`},
		{"endpoints on Knative Services", []string{"ready.ksvc=app", "resourceTypes.ksvc.endpoints=true"},
			`resourceTypes.ksvc.endpoints: only for Services (group "", version v1, resource services)`},
		{"endpoints not a boolean", []string{"ready.svc=app", "resourceTypes.svc.endpoints=yes"}, "/resourceTypes/svc/endpoints"},
		{"short name not a name", []string{"resourceTypes.My_Type.version=v1,resourceTypes.My_Type.resource=things"}, "My_Type"},
	}
	checkBadInstalls(t, ns, []string{"--set", "tasks={ready}"}, before, tests)
}

// TestReadyOnCluster installs the chart (without running its hook) with
// ready objects, checks what the Job's ServiceAccount may read, and runs the
// release's ready task with that ServiceAccount's token: the Role is enough
// for the task, and nothing more is allowed.
func TestReadyOnCluster(t *testing.T) {
	const ns, release = "iter8-ready", "perf"
	createNamespace(t, ns, nil)
	ctx, c := t.Context(), env.Clientset
	mustHelm(t, "install", release, chartDir, "-n", ns, "--no-hooks",
		"--set", "tasks={ready}", "--set", "ready.deploy=app", "--set", "ready.svc={app,backend}", "--set", "ready.timeout=30s", "--set", "ready.interval=10ms")
	t.Cleanup(func() { helm(t, "uninstall", release, "-n", ns) })

	checkAccess(t, ns, "perf-iter8", []accessCheck{
		{"get", "apps", "deployments", "app", ns, true},
		{"get", "", "services", "app", ns, true},
		{"get", "", "services", "backend", ns, true},
		{"get", "apps", "deployments", "backend", ns, false},
		{"get", "apps", "deployments", "other", ns, false},
		{"get", "", "pods", "app", ns, false},
		{"get", "apps", "replicasets", "app", ns, false},
		{"list", "apps", "deployments", "", ns, false},
		{"watch", "apps", "deployments", "", ns, false},
		{"update", "apps", "deployments", "app", ns, false},
		{"patch", "apps", "deployments", "app", ns, false},
		{"delete", "", "services", "app", ns, false},
		{"get", "apps", "deployments", "app", "default", false},
		{"list", "discovery.k8s.io", "endpointslices", "", ns, false}, // no Service needs endpoints
	})

	// The objects, ready: the Deployment Available at its generation.
	labels := map[string]string{"app": "app"}
	d, err := c.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "app"},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1"}}},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Conditions: []appsv1.DeploymentCondition{
		{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "MinimumReplicasAvailable"},
	}}
	if _, err := c.AppsV1().Deployments(ns).UpdateStatus(ctx, d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"app", "backend"} {
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}
		if _, err := c.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	// The release's spec and the ServiceAccount's credentials, as the Job
	// has them.
	secret, err := c.CoreV1().Secrets(ns).Get(ctx, release+"-spec", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rt := readyTask(t, string(secret.Data["experiment.yaml"]))
	if rt == nil {
		t.Fatalf("the release's spec has no ready task:\n%s", secret.Data["experiment.yaml"])
	}
	run := asServiceAccount(t, ns, "perf-iter8")
	if err := run(rt); err != nil {
		t.Errorf("the release's ready task, as perf-iter8: %v", err)
	}

	// An object that the values did not name is forbidden: the task fails
	// at once, naming it.
	other := *rt
	other.Objects = []ready.Object{{Resource: deployments, Name: "other"}}
	if err := run(&other); !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "deployments.apps "+ns+"/other") {
		t.Errorf("ready task for an object the values did not name, as perf-iter8: got %v, want Forbidden naming deployments.apps %s/other", err, ns)
	}
}

// accessCheck is one SubjectAccessReview: may the ServiceAccount do verb on
// the object?
type accessCheck struct {
	verb, group, resource, name, ns string
	allowed                         bool
}

// checkAccess asks the API server whether ServiceAccount sa of ns may do
// each check, and reports the answers that differ.
func checkAccess(t *testing.T, ns, sa string, checks []accessCheck) {
	t.Helper()
	user := "system:serviceaccount:" + ns + ":" + sa
	groups := []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}
	for _, ck := range checks {
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: user, Groups: groups,
			ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: ck.ns, Verb: ck.verb, Group: ck.group, Resource: ck.resource, Name: ck.name},
		}}
		got, err := env.Clientset.AuthorizationV1().SubjectAccessReviews().Create(t.Context(), sar, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("review %s %s %s: %v", ck.verb, ck.resource, ck.name, err)
		}
		if got.Status.Allowed != ck.allowed {
			t.Errorf("%s may %s %s.%s %s/%q: got %v, want %v (%s)", user, ck.verb, ck.resource, ck.group, ck.ns, ck.name, got.Status.Allowed, ck.allowed, got.Status.Reason)
		}
	}
}

// asServiceAccount returns a function that runs a ready task with a token of
// ServiceAccount sa in ns, as the release's Job would, with ns as the
// default namespace.
func asServiceAccount(t *testing.T, ns, sa string) func(*ready.Task) error {
	t.Helper()
	tok, err := env.Clientset.CoreV1().ServiceAccounts(ns).CreateToken(t.Context(), sa, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("request a token for %s: %v", sa, err)
	}
	cfg := &rest.Config{Host: env.Config.Host, TLSClientConfig: rest.TLSClientConfig{CAData: env.Config.CAData}, BearerToken: tok.Status.Token}
	client, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return func(rt *ready.Task) error {
		return rt.Run(t.Context(), &experiment.Env{
			Log:  slog.New(slog.DiscardHandler),
			Kube: func() (experiment.ObjectReader, string, error) { return kube.Objects(client), ns, nil },
		})
	}
}

// TestReadyEndpointsOnCluster installs the chart with ready waiting for the
// endpoints of three Services: web, whose EndpointSlice has a ready
// endpoint; idle, whose endpoints are not ready; and none, which has no
// EndpointSlice (the test bed runs no EndpointSlice controller, so the test
// writes the slices). As the Job's ServiceAccount, web alone is ready, and
// the others fail naming what they lack; the Role lets the Job list
// EndpointSlices and nothing more.
func TestReadyEndpointsOnCluster(t *testing.T) {
	const ns, release = "iter8-ready-endpoints", "perf"
	createNamespace(t, ns, nil)
	ctx, c := t.Context(), env.Clientset
	mustHelm(t, "install", release, chartDir, "-n", ns, "--no-hooks",
		"--set", "tasks={ready}", "--set", "ready.svc={web,idle,none}", "--set", "resourceTypes.svc.endpoints=true",
		"--set", "ready.timeout=300ms", "--set", "ready.interval=20ms")
	t.Cleanup(func() { helm(t, "uninstall", release, "-n", ns) })

	checkAccess(t, ns, "perf-iter8", []accessCheck{
		{"get", "", "services", "web", ns, true},
		{"list", "discovery.k8s.io", "endpointslices", "", ns, true},
		{"get", "discovery.k8s.io", "endpointslices", "web-a", ns, false},
		{"watch", "discovery.k8s.io", "endpointslices", "", ns, false},
		{"create", "discovery.k8s.io", "endpointslices", "", ns, false},
		{"list", "discovery.k8s.io", "endpointslices", "", "default", false},
		{"list", "", "services", "", ns, false},
		{"list", "", "endpoints", "", ns, false},
	})

	for _, name := range []string{"web", "idle", "none"} {
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}
		if _, err := c.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// The API server refuses loopback addresses in EndpointSlices: these
	// are in 10.0.0.0/8, and nothing needs to answer on them.
	endpoint := func(ip string, ready bool) discoveryv1.Endpoint {
		return discoveryv1.Endpoint{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}
	}
	slices := []*discoveryv1.EndpointSlice{
		{ObjectMeta: metav1.ObjectMeta{Name: "web-a", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
			Endpoints: []discoveryv1.Endpoint{endpoint("10.0.0.1", false), endpoint("10.0.0.2", true)}},
		{ObjectMeta: metav1.ObjectMeta{Name: "idle-a", Labels: map[string]string{discoveryv1.LabelServiceName: "idle"}},
			Endpoints: []discoveryv1.Endpoint{endpoint("10.0.1.1", false), endpoint("10.0.1.2", false)}},
		{ObjectMeta: metav1.ObjectMeta{Name: "idle-b", Labels: map[string]string{discoveryv1.LabelServiceName: "idle"}},
			Endpoints: []discoveryv1.Endpoint{endpoint("10.0.1.3", false)}},
	}
	for _, s := range slices {
		s.AddressType = discoveryv1.AddressTypeIPv4
		s.Ports = []discoveryv1.EndpointPort{{Port: new(int32(8080))}}
		if _, err := c.DiscoveryV1().EndpointSlices(ns).Create(ctx, s, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create EndpointSlice %s/%s: %v", ns, s.Name, err)
		}
	}

	secret, err := c.CoreV1().Secrets(ns).Get(ctx, release+"-spec", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rt := readyTask(t, string(secret.Data["experiment.yaml"]))
	want := []ready.Object{{Resource: services, Name: "web", Endpoints: true}, {Resource: services, Name: "idle", Endpoints: true}, {Resource: services, Name: "none", Endpoints: true}}
	if rt == nil || !reflect.DeepEqual(rt.Objects, want) {
		t.Fatalf("the release's ready task waits for %+v, want %+v", rt, want)
	}
	run := asServiceAccount(t, ns, "perf-iter8")

	web := *rt
	web.Objects = rt.Objects[:1]
	if err := run(&web); err != nil {
		t.Errorf("ready for Service web with a ready endpoint, as perf-iter8: %v", err)
	}
	err = run(rt)
	if err == nil {
		t.Fatal("ready for web, idle and none succeeded; want idle and none not ready")
	}
	for _, want := range []string{
		"not ready after 300ms (",
		"services " + ns + "/idle: 0 of 3 endpoints ready",
		"services " + ns + "/none: no EndpointSlice",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("ready for web, idle and none = %v\nwant it to say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "/web") {
		t.Errorf("ready for web, idle and none = %v; web is ready and should not be named", err)
	}
}
