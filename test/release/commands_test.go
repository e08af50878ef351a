package release_test

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/iter8-tools/iter8/test/testbed"
)

// iter8 runs the built kubectl-iter8 (as kubectl runs the plugin) against
// the test bed, with Helm's homes in the test bed's folder.
func iter8(t *testing.T, args ...string) outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "kubectl-iter8"), append(args, "--kubeconfig", env.Kubeconfig)...)
	cmd.Env = env.HelmEnv()
	return testbed.Run(t, ctx, cmd)
}

// appStatus is the part of release status -o json that the tests read.
type appStatus struct {
	Kind     string `json:"kind"`
	Release  string `json:"release"`
	Strategy string `json:"strategy"`
	Versions []struct {
		Version        string `json:"version"`
		Backend        string `json:"backend"`
		Weight         int    `json:"weight"`
		Percent        int    `json:"percent"`
		Readiness      string `json:"readiness"`
		ReadyReplicas  int    `json:"readyReplicas"`
		Replicas       int    `json:"replicas"`
		ReadyEndpoints int    `json:"readyEndpoints"`
	} `json:"versions"`
	Gates []struct {
		Gate      string `json:"gate"`
		Found     bool   `json:"found"`
		Revision  int    `json:"revision"`
		Completed bool   `json:"completed"`
		Failed    bool   `json:"failed"`
	} `json:"gates"`
	Conditions []any `json:"conditions"`
}

func releaseStatus(t *testing.T, ns, app string) appStatus {
	t.Helper()
	o := iter8(t, "release", "status", app, "-n", ns, "-o", "json")
	if o.Code != 0 {
		t.Fatalf("want success: %s", o)
	}
	var st appStatus
	if err := json.Unmarshal([]byte(o.Stdout), &st); err != nil {
		t.Fatalf("release status -o json: %v\n%s", err, o)
	}
	return st
}

// TestReleaseCommands installs a canary of two deployed versions, then
// reads it with release status, promotes v2 and rolls back, with the
// built plugin binary.
func TestReleaseCommands(t *testing.T) {
	ns := namespace(t, "release-commands")
	values := valuesFile(t, "gateway-api", "canary", []version{deployed("v1", 90), deployed("v2", 10)}, nil)
	mustUpgrade(t, ns, "app", values, "--wait")
	wantWeights(t, "install", readRoute(t, "gateway-api", ns, "app"), map[string]int64{"app-v1": 90, "app-v2": 10})

	o := iter8(t, "release", "status", "app", "-n", ns)
	if o.Code != 0 {
		t.Fatalf("want success: %s", o)
	}
	for _, want := range []string{"Route:      HTTPRoute app", "Strategy:   canary", "Receiving:  v1, v2",
		"app-v1:80", "app-v2:80", "90%", "10%", "no controller has reported"} {
		if !strings.Contains(o.Stdout, want) {
			t.Errorf("release status: no %q in\n%s", want, o.Stdout)
		}
	}
	st := releaseStatus(t, ns, "app")
	if st.Kind != "HTTPRoute" || st.Release != "app" || st.Strategy != "canary" || len(st.Versions) != 2 {
		t.Fatalf("release status: %+v", st)
	}
	for i, want := range []struct {
		version string
		weight  int
	}{{"v1", 90}, {"v2", 10}} {
		v := st.Versions[i]
		if v.Version != want.version || v.Backend != "app-"+want.version || v.Weight != want.weight || v.Percent != want.weight {
			t.Errorf("release status: versions[%d] = %+v, want %s at %d", i, v, want.version, want.weight)
		}
		if v.Readiness != "ready" || v.ReadyReplicas != 1 || v.Replicas != 1 || v.ReadyEndpoints < 1 {
			t.Errorf("release status: versions[%d] = %+v, want ready with 1/1 replicas and endpoints", i, v)
		}
	}
	if len(st.Gates) != 2 || st.Gates[0].Gate != "ready" || st.Gates[1].Gate != "slo" || st.Gates[1].Found {
		t.Errorf("release status: gates %+v, want ready and slo (which never ran)", st.Gates)
	}

	if o := iter8(t, "release", "promote", "app", "v3", "-n", ns); o.Code != 2 || !strings.Contains(o.Stderr, "the versions are v1, v2") {
		t.Errorf("promote of an unknown version: want exit 2 listing the versions: %s", o)
	}

	o = iter8(t, "release", "promote", "app", "v2", "-n", ns, "--wait", "--timeout", "90s")
	if o.Code != 0 {
		t.Fatalf("want success: %s", o)
	}
	for _, want := range []string{"promoted v2 (revision 1 -> 2)", "v1 weight: 90 -> 0", "v2 weight: 10 -> 100"} {
		if !strings.Contains(o.Stdout, want) {
			t.Errorf("release promote: no %q in\n%s", want, o.Stdout)
		}
	}
	wantWeights(t, "promote", readRoute(t, "gateway-api", ns, "app"), map[string]int64{"app-v1": 0, "app-v2": 100})
	// The readiness gate ran before the upgrade, for the versions that get
	// traffic.
	if st := releaseStatus(t, ns, "app"); len(st.Gates) == 0 || !st.Gates[0].Found || st.Gates[0].Revision != 2 || st.Gates[0].Failed {
		t.Errorf("after promote: gates %+v, want the ready gate's verdict of revision 2", st.Gates)
	}
	// The release keeps its other values: the chart and strategy are its own.
	if o := mustHelm(t, "get", "values", "app", "-n", ns, "-o", "json"); !strings.Contains(o.Stdout, `"strategy":"canary"`) {
		t.Errorf("after promote: values lost the strategy: %s", o.Stdout)
	}

	if o := iter8(t, "release", "promote", "app", "v2", "-n", ns); o.Code != 0 || !strings.Contains(o.Stdout, "nothing changed") {
		t.Errorf("promote of the promoted version: want success, nothing changed: %s", o)
	}

	o = iter8(t, "release", "rollback", "app", "-n", ns, "--wait", "--timeout", "90s")
	if o.Code != 0 || !strings.Contains(o.Stdout, "rolled back from revision 2 to 1 (now revision 3)") {
		t.Fatalf("want success: %s", o)
	}
	wantWeights(t, "rollback", readRoute(t, "gateway-api", ns, "app"), map[string]int64{"app-v1": 90, "app-v2": 10})

	o = iter8(t, "release", "status", "nope", "-n", ns)
	if o.Code != 2 || !strings.Contains(o.Stderr, "no HTTPRoute or VirtualService named nope in namespace "+ns) {
		t.Errorf("status of a missing app: want exit 2 naming the app and namespace: %s", o)
	}
	if o := iter8(t, "release", "rollback", "nope", "-n", ns); o.Code != 2 || !strings.Contains(o.Stderr, "release nope not found in namespace "+ns) {
		t.Errorf("rollback of a missing app: want exit 2: %s", o)
	}
}

// TestReleaseStatusIstio reads a VirtualService: weights are percentages.
func TestReleaseStatusIstio(t *testing.T) {
	ns := namespace(t, "release-status-istio")
	values := valuesFile(t, "istio", "canary", []version{deployed("v1", 2), deployed("v2", 1)}, nil)
	mustUpgrade(t, ns, "web", values, "--wait", "--set", "app.name=shop")
	st := releaseStatus(t, ns, "shop")
	if st.Kind != "VirtualService" || st.Release != "web" || len(st.Versions) != 2 {
		t.Fatalf("release status: %+v", st)
	}
	if v := st.Versions[0]; v.Version != "v1" || v.Weight != 67 || v.Percent != 67 || v.Readiness != "ready" {
		t.Errorf("release status: v1 %+v, want weight 67, ready", v)
	}
	if v := st.Versions[1]; v.Version != "v2" || v.Weight != 33 || v.Percent != 33 || v.Readiness != "ready" {
		t.Errorf("release status: v2 %+v, want weight 33, ready", v)
	}
	o := iter8(t, "release", "promote", "shop", "v2", "-n", ns, "--atomic", "--timeout", "90s")
	if o.Code != 0 || !strings.Contains(o.Stdout, "release web in namespace "+ns+": promoted v2") {
		t.Fatalf("want success: %s", o)
	}
	wantWeights(t, "promote", readRoute(t, "istio", ns, "shop"), map[string]int64{"shop-v1": 0, "shop-v2": 100})
}
