package ready

import (
	"context"
	"errors"
	"net/url"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	k8stesting "k8s.io/client-go/testing"
	"sigs.k8s.io/yaml"

	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/kube"
)

var (
	deployments = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	services    = schema.GroupVersionResource{Version: "v1", Resource: "services"}
)

func TestDecodeObjectErrors(t *testing.T) {
	const ok = `"group": "apps", "version": "v1", "resource": "deployments", "name": "app"`
	tests := []struct{ with, want string }{
		{`{"objects": []}`, "with.url: Required value"},
		{`{"objects": [{"version": "v1", "resource": "services"}]}`, "with.objects[0].name: Required value"},
		{`{"objects": [{"group": "apps", "resource": "deployments", "name": "app"}]}`, "with.objects[0].version: Required value"},
		{`{"objects": [{"group": "apps", "version": "v1", "name": "app"}]}`, "with.objects[0].resource: Required value"},
		{`{"objects": [{"group": "apps", "version": "v1", "resource": "Deployment", "name": "app"}]}`, "with.objects[0].resource: Invalid value"},
		{`{"objects": [{"group": "apps", "version": "v1", "resource": "deployments/status", "name": "app"}]}`, "with.objects[0].resource: Invalid value"},
		{`{"objects": [{"group": "apps/v1", "version": "v1", "resource": "deployments", "name": "app"}]}`, "the version goes in version"},
		{`{"objects": [{"group": "Apps", "version": "v1", "resource": "deployments", "name": "app"}]}`, "with.objects[0].group: Invalid value"},
		{`{"objects": [{"group": "apps", "version": "1", "resource": "deployments", "name": "app"}]}`, "with.objects[0].version: Invalid value"},
		{`{"objects": [{"group": "apps", "version": "v1", "resource": "deployments", "name": "App_1"}]}`, "with.objects[0].name: Invalid value"},
		{`{"objects": [{` + ok + `, "namespace": "Team A"}]}`, "with.objects[0].namespace: Invalid value"},
		{`{"objects": [{` + ok + `, "conditions": [""]}]}`, "with.objects[0].conditions[0]: Required value"},
		{`{"objects": [{` + ok + `, "conditions": ["Available", "not ok!"]}]}`, "with.objects[0].conditions[1]: Invalid value"},
		{`{"objects": [{` + ok + `, "conditions": ["Available", "Available"]}]}`, "with.objects[0].conditions[1]: Duplicate value"},
		{`{"objects": [{` + ok + `}, {"group": "apps", "version": "v2", "resource": "deployments", "name": "app", "conditions": ["Available"]}]}`,
			`with.objects[1]: Duplicate value: "deployments.apps app (as objects[0])"`},
		{`{"objects": [{` + ok + `}, {` + ok + `, "namespace": "other"}]}`, ""}, // not a duplicate
		{`{"objects": [{` + ok + `, "name": "app"}]}`, "with.objects[0].name: Duplicate value"},
		{`{"objects": [{` + ok + `, "kind": "Deployment"}]}`, "with.objects[0].kind: Unsupported value: unknown field"},
		{`{"objects": [{` + ok + `, "conditions": "Available"}]}`, "with.objects[0].conditions: Invalid value: got string, want a list"},
		{`{"objects": [{` + ok + `}, "app"]}`, "with.objects[1]: Invalid value: got string, want an object"},
		{`{"objects": [{` + ok + `}], "method": "POST"}`, "with.method: Forbidden: only with a url"},
		{`{"objects": [{` + ok + `}], "status": [200]}`, "with.status: Forbidden: only with a url"},
		{`{"objects": [{` + ok + `}], "timeout": "0s"}`, "with.timeout: Invalid value"},
		{`{"objects": {"name": "app"}}`, "with.objects"},
	}
	for _, tc := range tests {
		task, errs := decode(t, tc.with)
		got := errs.ToAggregate()
		if tc.want == "" {
			if got != nil {
				t.Errorf("Decode(%s) = %v, want no error", tc.with, got)
			}
			continue
		}
		if task != nil || got == nil || !strings.Contains(got.Error(), tc.want) {
			t.Errorf("Decode(%s) = %v, want an error containing %q", tc.with, got, tc.want)
		}
	}
}

// TestDecodeReportsEveryProblem shows that one bad object does not hide the
// problems of the others.
func TestDecodeReportsEveryProblem(t *testing.T) {
	_, errs := decode(t, `{"objects": [
		{"version": "v1", "resource": "services"},
		{"group": "apps", "version": "v1", "resource": "Deployments", "name": "app", "conditions": [""]}
	], "interval": "soon"}`)
	want := []string{"with.objects[0].name", "with.objects[1].resource", "with.objects[1].conditions[0]", "with.interval"}
	var got []string
	for _, e := range errs {
		got = append(got, e.Field)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("error fields: got %q, want %q (%v)", got, want, errs)
	}
}

func TestDecodeObjects(t *testing.T) {
	task, errs := decode(t, `{"url": "http://app:8080/healthz", "timeout": "2m", "objects": [
		{"group": "apps", "version": "v1", "resource": "deployments", "name": "app", "conditions": ["Available"]},
		{"group": "", "version": "v1", "resource": "services", "name": "app", "namespace": "other"},
		{"group": "serving.kserve.io", "version": "v1beta1", "resource": "inferenceservices", "name": "model", "conditions": ["Ready", "example.com/Warm"]}
	]}`)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	want := []Object{
		{Resource: deployments, Name: "app", Conditions: []string{"Available"}},
		{Resource: services, Name: "app", Namespace: "other"},
		{Resource: schema.GroupVersionResource{Group: "serving.kserve.io", Version: "v1beta1", Resource: "inferenceservices"}, Name: "model", Conditions: []string{"Ready", "example.com/Warm"}},
	}
	if !reflect.DeepEqual(task.Objects, want) {
		t.Errorf("objects:\n got %+v\nwant %+v", task.Objects, want)
	}
	if task.URL == nil || task.URL.String() != "http://app:8080/healthz" || task.Timeout != 2*time.Minute || task.Interval != DefaultInterval {
		t.Errorf("url %v, timeout %v, interval %v; want the url, 2m and the default interval", task.URL, task.Timeout, task.Interval)
	}
	if got := []string{want[0].ID("ns"), want[1].ID("ns"), want[0].ID("")}; !reflect.DeepEqual(got, []string{"deployments.apps ns/app", "services other/app", "deployments.apps app"}) {
		t.Errorf("IDs: got %q", got)
	}

	// Objects alone: no URL.
	task, errs = decode(t, `{"objects": [{"version": "v1", "resource": "services", "name": "app"}]}`)
	if len(errs) > 0 || task.URL != nil || task.Timeout != DefaultTimeout {
		t.Errorf("objects alone: task %+v, errors %v; want no URL and the default timeout", task, errs)
	}
}

// object builds an unstructured object from YAML.
func object(t *testing.T, y string) *unstructured.Unstructured {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal([]byte(y), &m); err != nil {
		t.Fatalf("parse %s: %v", y, err)
	}
	return &unstructured.Unstructured{Object: m}
}

func TestUnmet(t *testing.T) {
	tests := []struct {
		name       string
		obj        string
		conditions []string
		want       string
	}{
		{"existence only", `metadata: {generation: 3}`, nil, ""},
		{"existence only ignores conditions", `{metadata: {generation: 3}, status: {observedGeneration: 1, conditions: [{type: Available, status: "False"}]}}`, nil, ""},
		{"no status", `metadata: {generation: 1}`, []string{"Available"}, "condition Available is missing"},
		{"True and current",
			`{metadata: {generation: 2}, status: {observedGeneration: 2, conditions: [{type: Available, status: "True"}]}}`,
			[]string{"Available"}, ""},
		{"True, newer observedGeneration",
			`{metadata: {generation: 2}, status: {observedGeneration: 3, conditions: [{type: Available, status: "True"}]}}`,
			[]string{"Available"}, ""},
		{"True without observedGeneration (pods)",
			`{metadata: {generation: 1}, status: {conditions: [{type: Ready, status: "True"}]}}`,
			[]string{"Ready"}, ""},
		{"True, no generation",
			`{metadata: {}, status: {observedGeneration: 1, conditions: [{type: Ready, status: "True"}]}}`,
			[]string{"Ready"}, ""},
		{"False with reason and message",
			`{metadata: {generation: 1}, status: {observedGeneration: 1, conditions: [{type: Available, status: "False", reason: MinimumReplicasUnavailable, message: Deployment does not have minimum availability.}]}}`,
			[]string{"Available"}, "condition Available is False (MinimumReplicasUnavailable: Deployment does not have minimum availability.)"},
		{"Unknown with reason only",
			`{metadata: {generation: 1}, status: {conditions: [{type: Ready, status: Unknown, reason: Pending}]}}`,
			[]string{"Ready"}, "condition Ready is Unknown (Pending)"},
		{"no status field in the condition",
			`{metadata: {generation: 1}, status: {conditions: [{type: Ready}]}}`,
			[]string{"Ready"}, "condition Ready is not set"},
		{"True but the status is stale",
			`{metadata: {generation: 2}, status: {observedGeneration: 1, conditions: [{type: Available, status: "True"}]}}`,
			[]string{"Available"}, "condition Available is True but stale (status.observedGeneration 1 < metadata.generation 2)"},
		{"True but the condition is stale (metav1.Condition)",
			`{metadata: {generation: 5}, status: {conditions: [{type: Ready, status: "True", observedGeneration: 4}]}}`,
			[]string{"Ready"}, "condition Ready is True but stale (its observedGeneration 4 < metadata.generation 5)"},
		{"condition current, status stale",
			`{metadata: {generation: 5}, status: {observedGeneration: 4, conditions: [{type: Ready, status: "True", observedGeneration: 5}]}}`,
			[]string{"Ready"}, "condition Ready is True but stale (status.observedGeneration 4 < metadata.generation 5)"},
		{"several conditions, each named",
			`{metadata: {generation: 1}, status: {observedGeneration: 1, conditions: [{type: Ready, status: "True"}, {type: Warm, status: "False"}]}}`,
			[]string{"Ready", "Warm", "Routed"}, "condition Warm is False; condition Routed is missing"},
		{"conditions not a list",
			`{metadata: {generation: 1}, status: {conditions: {Ready: "True"}}}`,
			[]string{"Ready"}, "condition Ready is missing"},
		{"odd entries",
			`{metadata: {generation: 1}, status: {conditions: [1, "Ready", null, {type: 7}]}}`,
			[]string{"Ready"}, "condition Ready is missing"},
		{"status not an object",
			`{metadata: {generation: 1}, status: "ok"}`,
			[]string{"Ready"}, "condition Ready is missing"},
		{"generation not a number",
			`{metadata: {generation: two}, status: {observedGeneration: 1, conditions: [{type: Ready, status: "True"}]}}`,
			[]string{"Ready"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := unmet(object(t, tc.obj), tc.conditions); got != tc.want {
				t.Errorf("unmet(%s, %q):\n got %q\nwant %q", tc.obj, tc.conditions, got, tc.want)
			}
		})
	}
}

func TestUnmetShortensLongMessages(t *testing.T) {
	long := strings.Repeat("é", 500)
	got := unmet(object(t, `{status: {conditions: [{type: Ready, status: "False", message: `+long+`}]}}`), []string{"Ready"})
	if want := "condition Ready is False (" + strings.Repeat("é", 200) + "…)"; got != want {
		t.Errorf("unmet with a 500-rune message: got %d runes, want the message cut to 200 runes", len([]rune(got)))
	}
}

// kubeEnv returns an Env whose Kube gives client and namespace ns.
func kubeEnv(client dynamic.Interface, ns string) *experiment.Env {
	e := env()
	e.Kube = func() (experiment.ObjectReader, string, error) { return kube.Objects(client), ns, nil }
	return e
}

func TestNoCluster(t *testing.T) {
	task, errs := decode(t, `{"objects": [{"group": "apps", "version": "v1", "resource": "deployments", "name": "app", "conditions": ["Available"]},
		{"version": "v1", "resource": "services", "name": "app", "namespace": "web"}]}`)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	e := env() // Kube is nil
	err := task.Run(context.Background(), e)
	if err == nil || !strings.Contains(err.Error(), "wait for deployments.apps app, services web/app: no Kubernetes cluster connection") {
		t.Errorf("Run without Kube = %v; want an error naming both objects and the missing connection", err)
	}

	refused := errors.New("no configuration has been provided")
	e.Kube = func() (experiment.ObjectReader, string, error) { return nil, "", refused }
	if err := task.Run(context.Background(), e); !errors.Is(err, refused) || !strings.Contains(err.Error(), "deployments.apps app") {
		t.Errorf("Run with a failing Kube = %v; want it wrapped, naming the object", err)
	}

	e.Kube = func() (experiment.ObjectReader, string, error) { return nil, "", nil }
	if err := task.Run(context.Background(), e); err == nil || !strings.Contains(err.Error(), "no Kubernetes cluster connection") {
		t.Errorf("Run with a nil client = %v; want no Kubernetes cluster connection", err)
	}

	client := dynamicfake.NewSimpleDynamicClient(runtime.NewScheme())
	e = kubeEnv(client, "")
	if err := task.Run(context.Background(), e); err == nil || !strings.Contains(err.Error(), "deployments.apps app: the Kubernetes connection has no default namespace") {
		t.Errorf("Run with no default namespace = %v; want an error naming the object without a namespace", err)
	}

	// A URL alone needs no cluster.
	urlOnly, _ := decode(t, `{"url": "http://127.0.0.1:1/", "timeout": "1ms"}`)
	if err := urlOnly.Run(context.Background(), env()); err == nil || strings.Contains(err.Error(), "cluster") {
		t.Errorf("Run of a URL without Kube = %v; want a plain not-ready error", err)
	}
}

// fakeDeployment is a Deployment at generation 2 whose controller has seen
// generation 1 and found it not available.
const fakeDeployment = `
apiVersion: apps/v1
kind: Deployment
metadata: {name: app, namespace: team-a, generation: 2}
status:
  observedGeneration: 1
  conditions:
  - {type: Available, status: "False", reason: MinimumReplicasUnavailable}
`

// TestTimeoutNamesEachObject waits the default 60s (in a synctest bubble,
// so at once) for a stale Deployment and a missing Service.
func TestTimeoutNamesEachObject(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client := dynamicfake.NewSimpleDynamicClient(runtime.NewScheme(), object(t, fakeDeployment))
		task, errs := decode(t, `{"objects": [
			{"group": "apps", "version": "v1", "resource": "deployments", "name": "app", "conditions": ["Available"]},
			{"version": "v1", "resource": "services", "name": "app"}]}`)
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		start := time.Now()
		err := task.Run(context.Background(), kubeEnv(client, "team-a"))
		// At 60s the deadline and the 61st tick come together: 60 or 61 checks.
		want := regexp.MustCompile(`^not ready after 1m0s \(6[01] checks\): ` +
			regexp.QuoteMeta("deployments.apps team-a/app: condition Available is False (MinimumReplicasUnavailable); services team-a/app: not found") + "$")
		if err == nil || !want.MatchString(err.Error()) {
			t.Errorf("Run:\n got %v\nwant %s", err, want)
		}
		if took := time.Since(start); took != DefaultTimeout {
			t.Errorf("Run took %v, want the default timeout %v", took, DefaultTimeout)
		}
	})
}

// TestStaleThenCurrent updates the object between checks (the fake client's
// reactor sees every Get) and shows that a stale True is not ready.
func TestStaleThenCurrent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client := dynamicfake.NewSimpleDynamicClient(runtime.NewScheme())
		steps := []string{
			fakeDeployment,
			`{apiVersion: apps/v1, kind: Deployment, metadata: {name: app, namespace: team-a, generation: 2},
			  status: {observedGeneration: 1, conditions: [{type: Available, status: "True"}]}}`,
			`{apiVersion: apps/v1, kind: Deployment, metadata: {name: app, namespace: team-a, generation: 2},
			  status: {observedGeneration: 2, conditions: [{type: Available, status: "True"}]}}`,
		}
		gets := 0
		client.PrependReactor("get", "deployments", func(k8stesting.Action) (bool, runtime.Object, error) {
			gets++
			return true, object(t, steps[min(gets, len(steps))-1]), nil
		})
		task, _ := decode(t, `{"objects": [{"group": "apps", "version": "v1", "resource": "deployments", "name": "app", "conditions": ["Available"]}], "interval": "5s"}`)
		start := time.Now()
		if err := task.Run(context.Background(), kubeEnv(client, "team-a")); err != nil {
			t.Fatalf("Run: %v", err)
		}
		if gets != 3 || time.Since(start) != 10*time.Second {
			t.Errorf("Run returned after %d checks and %v, want 3 checks (not available, stale, current) 5s apart", gets, time.Since(start))
		}
	})
}

// TestForbiddenFailsAtOnce shows that a missing permission ends the wait at
// the first check, with the object named.
func TestForbiddenFailsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client := dynamicfake.NewSimpleDynamicClient(runtime.NewScheme())
		client.PrependReactor("get", "deployments", func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "apps", Resource: "deployments"}, "app", errors.New("no rule"))
		})
		task, _ := decode(t, `{"objects": [{"group": "apps", "version": "v1", "resource": "deployments", "name": "app"}], "timeout": "1h"}`)
		start := time.Now()
		err := task.Run(context.Background(), kubeEnv(client, "team-a"))
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "get deployments.apps team-a/app: ") {
			t.Errorf("Run = %v; want Forbidden naming deployments.apps team-a/app", err)
		}
		if took := time.Since(start); took != 0 {
			t.Errorf("Run took %v, want no wait", took)
		}
	})
}

func TestObjectsCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client := dynamicfake.NewSimpleDynamicClient(runtime.NewScheme())
		task, _ := decode(t, `{"objects": [{"version": "v1", "resource": "services", "name": "app"}], "timeout": "1h"}`)
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(3*time.Second, cancel)
		err := task.Run(ctx, kubeEnv(client, "team-a"))
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run cancelled after 3s = %v, want context.Canceled", err)
		}
	})
}

// TestTransientErrorsKeepTheAnswer shows that an error on the way to the
// object (here the API server unreachable after the first check) does not
// hide what the last answer said, and is reported when there is no answer.
func TestTransientErrorsKeepTheAnswer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client := dynamicfake.NewSimpleDynamicClient(runtime.NewScheme())
		refused := errors.New("dial tcp 10.0.0.1:443: connect: connection refused")
		gets := map[string]int{}
		client.PrependReactor("get", "services", func(a k8stesting.Action) (bool, runtime.Object, error) {
			name := a.(k8stesting.GetAction).GetName()
			gets[name]++
			if name == "app" && gets[name] == 1 {
				return false, nil, nil // the tracker answers: not found
			}
			return true, nil, refused
		})
		task, _ := decode(t, `{"objects": [{"version": "v1", "resource": "services", "name": "app"},
			{"version": "v1", "resource": "services", "name": "web"}], "timeout": "5s"}`)
		err := task.Run(context.Background(), kubeEnv(client, "team-a"))
		want := "services team-a/app: not found; services team-a/web: " + refused.Error()
		if err == nil || !strings.HasSuffix(err.Error(), want) {
			t.Errorf("Run:\n got %v\nwant it to end with %s", err, want)
		}
		if gets["app"] < 5 {
			t.Errorf("%d checks of app, want one a second for 5s: transient errors are retried", gets["app"])
		}
	})
}

// TestUnreachableClusterFailsSoon shows that an API server that cannot be
// connected to, and has not answered, ends the wait after unreachableFor
// instead of the timeout, naming the server; once it has answered, the same
// failure is waited out (see TestTransientErrorsKeepTheAnswer).
func TestUnreachableClusterFailsSoon(t *testing.T) {
	refused := &url.Error{Op: "Get", URL: "https://127.0.0.1:1/apis/apps/v1/namespaces/team-a/deployments/app?timeout=5s",
		Err: errors.New("dial tcp 127.0.0.1:1: connect: connection refused")}
	for _, answerFirst := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			client := dynamicfake.NewSimpleDynamicClient(runtime.NewScheme())
			gets := 0
			client.PrependReactor("get", "deployments", func(k8stesting.Action) (bool, runtime.Object, error) {
				gets++
				if answerFirst && gets == 1 {
					return false, nil, nil // the tracker answers: not found
				}
				return true, nil, refused
			})
			task, _ := decode(t, `{"objects": [{"group": "apps", "version": "v1", "resource": "deployments", "name": "app"}], "timeout": "1m"}`)
			start := time.Now()
			err := task.Run(context.Background(), kubeEnv(client, "team-a"))
			took := time.Since(start)
			if answerFirst {
				if took != time.Minute || err == nil || !strings.Contains(err.Error(), "not ready after 1m0s") {
					t.Errorf("after an answer: Run = %v after %v, want the 1m timeout", err, took)
				}
				return
			}
			want := "wait for deployments.apps team-a/app: Kubernetes cluster at https://127.0.0.1:1 unreachable: dial tcp 127.0.0.1:1: connect: connection refused (no answer in 2s)"
			if err == nil || err.Error() != want {
				t.Errorf("Run:\n got %v\nwant %s", err, want)
			}
			if took != unreachableFor {
				t.Errorf("Run took %v, want %v", took, unreachableFor)
			}
		})
	}
}
