package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/iter8-tools/iter8/pkg/action"
	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/route"
	"github.com/iter8-tools/iter8/pkg/store"
)

// TestReleaseCommands checks the release commands' arguments and flags; none
// of these cases reaches a cluster.
func TestReleaseCommands(t *testing.T) {
	noCluster := []string{"--kubeconfig", "/nonexistent/kubeconfig"}
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
		stdout string
	}{
		{name: "release help", args: []string{"release"}, stdout: "Available Commands:"},
		{name: "release unknown sub-command", args: []string{"release", "promotee"}, code: 2, stderr: `unknown command "promotee"`},
		{name: "status needs an app", args: []string{"release", "status"}, code: 2, stderr: "accepts 1 arg(s), received 0"},
		{name: "status one app", args: []string{"release", "status", "a", "b"}, code: 2, stderr: "accepts 1 arg(s), received 2"},
		{name: "status bad format", args: []string{"release", "status", "app", "-o", "html"}, code: 2, stderr: `release status: -o: unknown output format "html"`},
		{name: "status bad app", args: []string{"release", "status", "App_1"}, code: 2, stderr: `release status: app name "App_1"`},
		{name: "status without a cluster", args: append([]string{"release", "status", "app"}, noCluster...), code: 2, stderr: "release status app: connect to the cluster"},
		{name: "promote needs a version", args: []string{"release", "promote", "app"}, code: 2, stderr: "accepts 2 arg(s), received 1"},
		{name: "promote bad version", args: []string{"release", "promote", "app", "V2"}, code: 2, stderr: `release promote: version "V2"`},
		{name: "promote zero timeout", args: []string{"release", "promote", "app", "v2", "--timeout", "0s"}, code: 2, stderr: "--timeout must be above 0"},
		{name: "promote bad timeout", args: []string{"release", "promote", "app", "v2", "--timeout", "soon"}, code: 2, stderr: `invalid argument "soon" for "--timeout"`},
		{name: "promote bad format", args: []string{"release", "promote", "app", "v2", "-o", "xml"}, code: 2, stderr: `unknown output format "xml"`},
		{name: "promote without a cluster", args: append([]string{"release", "promote", "app", "v2", "--atomic", "--wait"}, noCluster...), code: 2, stderr: "release promote app v2: connect to the cluster"},
		{name: "rollback needs an app", args: []string{"release", "rollback"}, code: 2, stderr: "accepts between 1 and 2 arg(s), received 0"},
		{name: "rollback bad revision", args: []string{"release", "rollback", "app", "two"}, code: 2, stderr: `revision "two": want a whole number of at least 1`},
		{name: "rollback revision zero", args: []string{"release", "rollback", "app", "0"}, code: 2, stderr: `revision "0"`},
		{name: "rollback negative timeout", args: []string{"release", "rollback", "app", "--timeout", "-1s"}, code: 2, stderr: "--timeout must be above 0"},
		{name: "rollback without a cluster", args: append([]string{"release", "rollback", "app", "2", "--wait"}, noCluster...), code: 2, stderr: "release rollback app: connect to the cluster"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := execute(t, tt.args...)
			if code != tt.code {
				t.Errorf("%v: exit %d, want %d\nstdout: %s\nstderr: %s", tt.args, code, tt.code, stdout, stderr)
			}
			if !strings.Contains(stderr, tt.stderr) {
				t.Errorf("%v: stderr %q, want it to contain %q", tt.args, stderr, tt.stderr)
			}
			if !strings.Contains(stdout, tt.stdout) {
				t.Errorf("%v: stdout %q, want it to contain %q", tt.args, stdout, tt.stdout)
			}
		})
	}
}

// TestReleaseHelmFrontend checks that the helm front-end has the same
// commands, named as helm iter8.
func TestReleaseHelmFrontend(t *testing.T) {
	var out strings.Builder
	root := NewRootCmd(Helm(), IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &out})
	root.SetArgs([]string{"release", "promote", "--help"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"helm iter8 release promote APP VERSION", "--atomic", "--wait", "--timeout"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("helm iter8 release promote --help: no %q in\n%s", want, out.String())
		}
	}
}

// banditCluster is namespace team with the VirtualService of app (release
// rel, versions v1 and v2) and the result Secrets of two bandits: one that
// promoted v2 in rel, one that moves the weights of another release.
func banditCluster(t *testing.T) *fake.Clientset {
	t.Helper()
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	end := t0.Add(time.Hour)
	secret := func(name string, r experiment.Result) runtime.Object { return resultSecret(t, name, r) }
	return fake.NewClientset(
		secret("canary-bandit", experiment.Result{
			Revision: 2, StartTime: t0, EndTime: &end, Loop: 4, Loops: 10,
			Tasks:    []experiment.TaskResult{{Task: "bandit", State: experiment.TaskSucceeded}},
			Versions: []experiment.VersionResult{{Name: "v1"}, {Name: "v2"}},
			Stopped:  "the experiment reached its end: promoted v2: P(best) 0.990 by conversion",
			Bandit: &experiment.Bandit{
				Release: "team/rel", Revision: 7, Weights: map[string]int{"v1": 0, "v2": 100},
				ProbabilityBest: map[string]float64{"v1": 0.01, "v2": 0.99},
				Reason:          "promoted v2: P(best) 0.990 by conversion", Promoted: "v2",
			},
		}),
		secret("other-bandit", experiment.Result{
			Revision: 1, StartTime: t0, Loop: 2, Loops: 10,
			Tasks:    []experiment.TaskResult{{Task: "bandit", State: experiment.TaskSucceeded}},
			Versions: []experiment.VersionResult{{Name: "v1"}, {Name: "v2"}},
			Bandit: &experiment.Bandit{
				Release: "team/other", Weights: map[string]int{"v1": 55, "v2": 45},
				ProbabilityBest: map[string]float64{"v1": 0.6, "v2": 0.4}, Reason: "other reason",
			},
		}),
	)
}

// resultSecret is the result Secret of experiment name in namespace team.
func resultSecret(t *testing.T, name string, r experiment.Result) runtime.Object {
	t.Helper()
	data, err := json.Marshal([]experiment.Result{r})
	if err != nil {
		t.Fatal(err)
	}
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: store.ResultSecretName(name), Namespace: "team", Labels: map[string]string{store.LabelExperiment: name}},
		Data:       map[string][]byte{store.ResultsKey: data},
	}
}

// TestReleaseStatusRollouts: a paused rollout of rel shows its step, next
// step, verdict, pause and reason; one of another release does not show.
func TestReleaseStatusRollouts(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	next, paused := t0.Add(time.Minute), t0.Add(30*time.Second)
	client := fake.NewClientset(
		resultSecret(t, "canary", experiment.Result{Revision: 1, StartTime: t0, Loop: 3, Loops: 10,
			Tasks: []experiment.TaskResult{{Task: "rollout", State: experiment.TaskSucceeded}},
			Rollout: &experiment.Rollout{Release: "team/rel", Candidate: "v2", Steps: []int{10, 25, 100}, Step: 1,
				Weights: map[string]int{"v1": 100, "v2": 0}, Verdict: "passed", PausedSince: &paused, NextStepAt: &next,
				Reason: "paused: v2 is not ready, so its weight is 0 (v1 100, v2 0) until it is ready"}}),
		resultSecret(t, "elsewhere", experiment.Result{Revision: 1, StartTime: t0, Loop: 1, Loops: 10,
			Rollout: &experiment.Rollout{Release: "team/other", Candidate: "v2", Steps: []int{100}, Reason: "other reason"}}),
	)
	stdout, stderr, code := executeOn(t, client, "release", "status", "app")
	if code != 0 {
		t.Fatalf("release status app: exit %d\nstderr: %s", code, stderr)
	}
	want := `Rollouts:
  canary (revision 1): running, loop 3 of 10
    Step:     v2 at step 2 of 3 (0%), paused
    Next:     ` + next.Local().Format(time.DateTime) + `
    Verdict:  passed
    Paused:   since ` + paused.Local().Format(time.DateTime) + `
    Reason:   paused: v2 is not ready, so its weight is 0 (v1 100, v2 0) until it is ready

Conditions:`
	if !strings.Contains(stdout, want) {
		t.Errorf("release status app: stdout\n%s\nwant it to contain\n%s", stdout, want)
	}
	if strings.Contains(stdout, "other reason") {
		t.Errorf("release status app shows the rollout of another release:\n%s", stdout)
	}
}

// executeOn runs the kubectl front-end's command tree against client and
// a route of app in namespace team.
func executeOn(t *testing.T, client *fake.Clientset, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	gvr := schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "virtualservices"}
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
		gvr: "VirtualServiceList",
		{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "httproutes"}: "HTTPRouteList",
	})
	vs := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
		"metadata": map[string]any{
			"name": "app", "namespace": "team",
			"labels": map[string]any{route.LabelInstance: "rel", route.LabelApp: "app"},
		},
		"spec": map[string]any{"http": []any{map[string]any{"name": "weights", "route": []any{
			map[string]any{"destination": map[string]any{"host": "app-v1.team.svc.cluster.local"}, "weight": int64(0)},
			map[string]any{"destination": map[string]any{"host": "app-v2.team.svc.cluster.local"}, "weight": int64(100)},
		}}}},
	}}
	if _, err := dyn.Resource(gvr).Namespace("team").Create(context.Background(), vs, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	fe := Frontend{DisplayName: "kubectl iter8", cluster: func() (*action.Cluster, error) {
		return &action.Cluster{Client: client, Dynamic: dyn, Namespace: "team"}, nil
	}}
	var out, errOut bytes.Buffer
	root := NewRootCmd(fe, IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	if err != nil {
		errOut.WriteString("Error: " + err.Error() + "\n")
	}
	return out.String(), errOut.String(), ExitCode(err)
}

func TestReleaseStatusBandits(t *testing.T) {
	stdout, stderr, code := executeOn(t, banditCluster(t), "release", "status", "app")
	if code != 0 {
		t.Fatalf("release status app: exit %d\nstderr: %s", code, stderr)
	}
	want := `Bandits:
  canary-bandit (revision 2): completed, loop 4 of 10
    Weights:  v1 0, v2 100
    P(best):  v1 0.010, v2 0.990
    Reason:   promoted v2: P(best) 0.990 by conversion
    Stopped:  the experiment reached its end: promoted v2: P(best) 0.990 by conversion

Conditions:`
	if !strings.Contains(stdout, want) {
		t.Errorf("release status app: stdout\n%s\nwant it to contain\n%s", stdout, want)
	}
	// The other bandit moves another release's weights.
	for _, not := range []string{"other-bandit", "v1 55", "other reason"} {
		if strings.Contains(stdout, not) {
			t.Errorf("release status app shows %q of a bandit of another release:\n%s", not, stdout)
		}
	}

	stdout, stderr, code = executeOn(t, banditCluster(t), "release", "status", "app", "-o", "json")
	if code != 0 {
		t.Fatalf("release status app -o json: exit %d\nstderr: %s", code, stderr)
	}
	var st action.AppStatus
	if err := json.Unmarshal([]byte(stdout), &st); err != nil {
		t.Fatalf("release status app -o json: %v\n%s", err, stdout)
	}
	if len(st.Bandits) != 1 || st.Bandits[0].Experiment != "canary-bandit" || st.Bandits[0].Promoted != "v2" {
		t.Errorf("release status app -o json: bandits %+v, want canary-bandit alone", st.Bandits)
	}
	if !strings.Contains(stdout, `"bandits": [`) {
		t.Errorf("release status app -o json: no bandits field in\n%s", stdout)
	}
}

// TestReleaseStatusBanditsForbidden: a user who may not list Secrets gets
// the rest of the status and the reason.
func TestReleaseStatusBanditsForbidden(t *testing.T) {
	client := banditCluster(t)
	client.PrependReactor("list", "secrets", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "secrets"}, "", nil)
	})
	stdout, stderr, code := executeOn(t, client, "release", "status", "app")
	if code != 0 {
		t.Fatalf("release status app: exit %d\nstderr: %s", code, stderr)
	}
	for _, want := range []string{"Route:      VirtualService app", "Gates:", "Bandits:\n  unreadable: read bandits: list experiments in namespace team: secrets is forbidden", "Conditions:"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("release status app, secrets forbidden: stdout\n%s\nwant it to contain %q", stdout, want)
		}
	}
}

// TestReleaseStatusBanditsBeforeTheirFirstLoop: a bandit whose bandit task
// has not run yet is shown running with no bandit loop yet; one whose spec
// may not be read is named above the others; an interrupted gate is
// neither running nor completed.
func TestReleaseStatusBanditsBeforeTheirFirstLoop(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 13, 0, 0, 0, time.UTC)
	client := banditCluster(t)
	add := func(name string, labelled bool, data map[string][]byte) {
		t.Helper()
		sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "team"}, Data: data}
		if labelled {
			sec.Labels = map[string]string{store.LabelExperiment: strings.TrimSuffix(strings.TrimSuffix(name, "-result"), "-spec")}
		}
		if _, err := client.CoreV1().Secrets("team").Create(context.Background(), sec, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	results := func(r experiment.Result) map[string][]byte {
		t.Helper()
		data, err := json.Marshal([]experiment.Result{r})
		if err != nil {
			t.Fatal(err)
		}
		return map[string][]byte{store.ResultsKey: data}
	}
	firstLoop := experiment.Result{
		Revision: 1, StartTime: t0, Loop: 1, Loops: 10,
		Tasks:    []experiment.TaskResult{{Task: "abn", State: experiment.TaskRunning}, {Task: "bandit", State: experiment.TaskPending}},
		Versions: []experiment.VersionResult{{Name: "v1"}, {Name: "v2"}},
	}
	spec := map[string][]byte{store.SpecKey: []byte("apiVersion: iter8.tools/v1\nkind: Experiment\nmetadata: {name: starting}\n" +
		"spec: {tasks: [{task: abn}, {task: bandit, with: {release: rel}}]}\n")}
	add("starting-result", true, results(firstLoop))
	add("starting-spec", true, spec)
	add("hidden-result", true, results(firstLoop))
	add("hidden-spec", true, spec)
	end := t0
	add("rel-ready-result", false, results(experiment.Result{Revision: 1, StartTime: t0, EndTime: &end, Interrupted: true}))
	client.PrependReactor("get", "secrets", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.(k8stesting.GetAction).GetName() != "hidden-spec" {
			return false, nil, nil
		}
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "secrets"}, "hidden-spec", nil)
	})
	stdout, stderr, code := executeOn(t, client, "release", "status", "app")
	if code != 0 {
		t.Fatalf("release status app: exit %d\nstderr: %s", code, stderr)
	}
	for _, want := range []string{
		"  ready  revision 1: interrupted, no task failed, SLOs none\n",
		`Bandits:
  unreadable: read bandits: read spec of experiment hidden in namespace team: get secret hidden-spec: secrets "hidden-spec" is forbidden`,
		`
  starting (revision 1): running, loop 1 of 10
    Weights:  -
    P(best):  -
    Reason:   no bandit loop yet: the bandit task has not run
  canary-bandit (revision 2): completed, loop 4 of 10
`,
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("release status app: stdout\n%s\nwant it to contain\n%s", stdout, want)
		}
	}
}

// TestReleaseRolloutRefusesBadFlags: each bad flag is refused, naming it,
// before the cluster is read or anything is written.
func TestReleaseRolloutRefusesBadFlags(t *testing.T) {
	dir := t.TempDir()
	ok := []string{"release", "rollout", "app", "v2", "--url", "v2=http://app-v2.team:8080/", "--slo", "http/error-rate<=0.01",
		"--spec", filepath.Join(dir, "rollout.yaml")}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"steps falling", []string{"--steps", "10,5,100"}, "steps [10 5 100]: step 2 is 5"},
		{"steps not ending at 100", []string{"--steps", "10,50"}, "steps [10 50]: want weights from 1 to 100"},
		{"step 0", []string{"--steps", "0,100"}, "step 1 is 0"},
		{"interval 0", []string{"--interval", "0s"}, "interval 0s: want above 0"},
		{"interval too long", []string{"--interval", "48h"}, "interval 48h0m0s: want above 0 and at most 24h0m0s"},
		{"timeout 0", []string{"--timeout", "0s"}, "timeout 0s"},
		{"negative progress deadline", []string{"--progress-deadline", "-1s"}, "progress deadline -1s"},
		{"requests 0", []string{"--requests", "0"}, "requests 0"},
		{"url without =", []string{"--url", "v1"}, `--url "v1": want VERSION=URL`},
		{"url twice", []string{"--url", "v2=http://other/"}, "--url: version v2 given twice"},
		{"url not http", []string{"--url", "v1=ftp://app-v1/"}, "url v1=ftp://app-v1/: want an absolute http or https URL"},
		{"url version not a name", []string{"--url", "V_1=http://app/"}, `url V_1=...: version "V_1"`},
		{"slo without bound", []string{"--slo", "http/error-rate"}, `slo "http/error-rate": want METRIC<=NUMBER`},
		{"slo bound not a number", []string{"--slo", "http/error-rate<=low"}, `slo "http/error-rate<=low": "low" is not a finite number`},
		{"baseline is the candidate", []string{"--baseline", "v2"}, "baseline v2: the candidate v2 must differ from it"},
		{"output", []string{"-o", "xml"}, `release rollout: -o: unknown output format "xml"`},
		{"query without prometheus", []string{"--query", "errors=up"}, "query: no Prometheus to send it to"},
		{"prometheus without query", []string{"--prometheus", "http://prom:9090"}, "prometheus http://prom:9090: no query"},
		{"prometheus not http", []string{"--prometheus", "prom:9090", "--query", "errors=up"}, "prometheus prom:9090: want an absolute http or https URL"},
		{"query without =", []string{"--prometheus", "http://prom:9090", "--query", "up"}, `--query "up": want NAME=PROMQL`},
		{"query name not a metric name", []string{"--prometheus", "http://prom:9090", "--query", "Error Rate=up"}, `query Error Rate=...: name "Error Rate"`},
		{"query twice", []string{"--prometheus", "http://prom:9090", "--query", "errors=up", "--query", "errors=down"}, "--query: metric errors given twice"},
		{"query blank", []string{"--prometheus", "http://prom:9090", "--query", "errors= "}, "query errors=: empty PromQL"},
		{"query not a template", []string{"--prometheus", "http://prom:9090", "--query", "errors=up{v=\"{{.version\"}"}, "query errors=...: not a template"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := executeOn(t, fake.NewClientset(), append(slices.Clone(ok), tc.args...)...)
			if code != 2 || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, stderr, tc.want)
			}
		})
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no url for the candidate", []string{"release", "rollout", "app", "v2", "--url", "v1=http://app-v1/", "--slo", "http/error-rate<=0.01"}, "url: none for the candidate v2"},
		{"no slo", []string{"release", "rollout", "app", "v2", "--url", "v2=http://app-v2/"}, "slo: none"},
		{"version not a name", []string{"release", "rollout", "app", "V2", "--url", "V2=http://app-v2/", "--slo", "http/error-rate<=0.01"}, `version "V2"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := executeOn(t, fake.NewClientset(), tc.args...)
			if code != 2 || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, stderr, tc.want)
			}
		})
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("files written: %v, want none", entries)
	}
}
