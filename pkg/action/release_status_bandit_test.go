package action

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/route"
	"github.com/iter8-tools/iter8/pkg/store"
)

// banditRoute is the VirtualService of app, owned by the release rel, in
// namespace team.
func banditRoute() *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
		"metadata": map[string]any{
			"name": "app", "namespace": "team",
			"labels": map[string]any{route.LabelInstance: "rel", route.LabelApp: "app"},
		},
		"spec": map[string]any{"http": []any{map[string]any{"name": "weights", "route": []any{
			map[string]any{"destination": map[string]any{"host": "app-v1.team.svc.cluster.local"}, "weight": int64(70)},
			map[string]any{"destination": map[string]any{"host": "app-v2.team.svc.cluster.local"}, "weight": int64(30)},
		}}}},
	}}
}

// experimentSecret is the result Secret of the experiment release in
// namespace, holding results (oldest first).
func experimentSecret(t *testing.T, namespace, release string, results ...experiment.Result) *corev1.Secret {
	t.Helper()
	data, err := json.Marshal(results)
	if err != nil {
		t.Fatal(err)
	}
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name: store.ResultSecretName(release), Namespace: namespace,
			Labels: map[string]string{store.LabelExperiment: release},
		},
		Data: map[string][]byte{store.ResultsKey: data},
	}
}

// banditResult is a result of a bandit over v1 and v2 that targets release
// (namespace/name), started at start.
func banditResult(release string, start time.Time, loop int, b experiment.Bandit) experiment.Result {
	b.Release = release
	return experiment.Result{
		Revision: 1, StartTime: start, Loop: loop, Loops: 10,
		Tasks:    []experiment.TaskResult{{Task: "http", State: experiment.TaskSucceeded}, {Task: "bandit", State: experiment.TaskSucceeded}},
		Versions: []experiment.VersionResult{{Name: "v1"}, {Name: "v2"}},
		Bandit:   &b,
	}
}

func TestReleaseStatusBandits(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	end := t0.Add(time.Hour)
	promoted := banditResult("team/rel", t0, 4, experiment.Bandit{
		Revision: 7, Weights: map[string]int{"v1": 0, "v2": 100},
		ProbabilityBest: map[string]float64{"v1": 0.01, "v2": 0.99},
		Reason:          "promoted v2: P(best) 0.990 by conversion", Promoted: "v2",
	})
	promoted.EndTime = &end
	promoted.Stopped = "the experiment reached its end: promoted v2: P(best) 0.990 by conversion"
	running := banditResult("team/rel", t0.Add(2*time.Hour), 3, experiment.Bandit{
		Revision: 9, Weights: map[string]int{"v1": 70, "v2": 30},
		ProbabilityBest: map[string]float64{"v1": 0.2, "v2": 0.8},
		Reason:          "weights moved toward the evidence: v1 70, v2 30",
	})
	// Its first loop had too little evidence for P(best).
	early := banditResult("team/rel", t0.Add(-time.Hour), 1, experiment.Bandit{
		Weights: map[string]int{"v1": 90, "v2": 10}, Reason: "weights unchanged: too little evidence",
	})
	failedEnd := t0
	early.EndTime = &failedEnd
	early.Tasks[1] = experiment.TaskResult{Task: "bandit", State: experiment.TaskFailed, Error: "bandit: release team/rel: not deployed"}
	// An earlier run targeted rel, the newest targets another release.
	moved := banditResult("team/other", t0.Add(3*time.Hour), 2, experiment.Bandit{Weights: map[string]int{"v1": 50, "v2": 50}})
	movedOld := banditResult("team/rel", t0, 2, experiment.Bandit{})
	moved.Revision, movedOld.Revision = 2, 1

	objs := []runtime.Object{
		experimentSecret(t, "team", "promoted", promoted),
		experimentSecret(t, "team", "running", running),
		experimentSecret(t, "team", "early", early),
		experimentSecret(t, "team", "moved", movedOld, moved),
		experimentSecret(t, "team", "other", banditResult("team/other", t0.Add(4*time.Hour), 1, experiment.Bandit{})),
		experimentSecret(t, "team", "perf", experiment.Result{Revision: 1, StartTime: t0.Add(5 * time.Hour)}),
		// A release called rel in another namespace is another release.
		experimentSecret(t, "team", "namesake", banditResult("prod/rel", t0.Add(6*time.Hour), 1, experiment.Bandit{})),
		// Experiments in other namespaces are not read, even when they
		// target this release.
		experimentSecret(t, "prod", "remote", banditResult("team/rel", t0.Add(7*time.Hour), 1, experiment.Bandit{})),
	}
	a := NewReleaseStatus(testCluster(objs, banditRoute()))
	a.App = "app"
	st, err := a.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.BanditsError != "" || st.BanditsOmitted != 0 {
		t.Errorf("bandits error %q, omitted %d; want none", st.BanditsError, st.BanditsOmitted)
	}
	p := func(f float64) *float64 { return &f }
	want := []BanditStatus{
		{
			Experiment: "running", Revision: 1, State: experiment.StateRunning, Loop: 3, Loops: 10,
			Versions: []BanditVersion{{"v1", 70, p(0.2)}, {"v2", 30, p(0.8)}},
			Reason:   "weights moved toward the evidence: v1 70, v2 30", StartTime: t0.Add(2 * time.Hour),
		},
		{
			Experiment: "promoted", Revision: 1, State: experiment.StateCompleted, Loop: 4, Loops: 10,
			Versions: []BanditVersion{{"v1", 0, p(0.01)}, {"v2", 100, p(0.99)}},
			Reason:   "promoted v2: P(best) 0.990 by conversion", Promoted: "v2",
			Stopped: "the experiment reached its end: promoted v2: P(best) 0.990 by conversion", StartTime: t0,
		},
		{
			Experiment: "early", Revision: 1, State: experiment.StateFailed, Loop: 1, Loops: 10,
			Versions: []BanditVersion{{"v1", 90, nil}, {"v2", 10, nil}},
			Reason:   "weights unchanged: too little evidence",
			Stopped:  "task 1 (bandit) failed: bandit: release team/rel: not deployed", StartTime: t0.Add(-time.Hour),
		},
	}
	if !reflect.DeepEqual(st.Bandits, want) {
		got, _ := json.MarshalIndent(st.Bandits, "", " ")
		w, _ := json.MarshalIndent(want, "", " ")
		t.Errorf("bandits of team/rel:\n%s\nwant\n%s", got, w)
	}
}

func TestReleaseStatusBanditsAtMost(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	var objs []runtime.Object
	names := []string{"b0", "b1", "b2", "b3", "b4"}
	for i, n := range names {
		objs = append(objs, experimentSecret(t, "team", n, banditResult("team/rel", t0.Add(time.Duration(i)*time.Hour), 1, experiment.Bandit{})))
	}
	a := NewReleaseStatus(testCluster(objs, banditRoute()))
	a.App = "app"
	st, err := a.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, b := range st.Bandits {
		got = append(got, b.Experiment)
	}
	if want := []string{"b4", "b3", "b2"}; !reflect.DeepEqual(got, want) || st.BanditsOmitted != 2 {
		t.Errorf("bandits %v, omitted %d; want %v, omitted 2", got, st.BanditsOmitted, want)
	}
}

// TestReleaseStatusBanditsForbidden: a user who may not list Secrets
// still gets the route, versions and gates, and the reason there are no
// bandits.
func TestReleaseStatusBanditsForbidden(t *testing.T) {
	cfg := testCluster(nil, banditRoute())
	cl, err := cfg.Cluster()
	if err != nil {
		t.Fatal(err)
	}
	cl.Client.(*fake.Clientset).PrependReactor("list", "secrets", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "secrets"}, "", nil)
	})
	a := NewReleaseStatus(cfg)
	a.App = "app"
	st, err := a.Run(context.Background())
	if err != nil {
		t.Fatalf("status when secrets may not be listed: %v", err)
	}
	if len(st.Versions) != 2 || len(st.Gates) != 2 {
		t.Errorf("status when secrets may not be listed: versions %+v, gates %+v", st.Versions, st.Gates)
	}
	if st.Bandits == nil || len(st.Bandits) != 0 ||
		!strings.Contains(st.BanditsError, "list experiments in namespace team") || !strings.Contains(st.BanditsError, "forbidden") {
		t.Errorf("bandits %v, error %q; want none, and the forbidden list", st.Bandits, st.BanditsError)
	}
}

// specSecret is the spec Secret of the experiment release in namespace
// team, with a bandit task of the given release field after an abn task.
func specSecret(release, banditRelease string) *corev1.Secret {
	spec := "apiVersion: iter8.tools/v1\nkind: Experiment\nmetadata: {name: " + release + "}\n" +
		"spec:\n  versions: [v1, v2]\n  loops: 10\n  tasks:\n  - task: abn\n    with: {application: team/app}\n" +
		"  - task: bandit\n    with: {release: " + banditRelease + ", reward: abn/purchases-conversion}\n"
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name: store.SpecSecretName(release), Namespace: "team",
			Labels: map[string]string{store.LabelExperiment: release},
		},
		Data: map[string][]byte{store.SpecKey: []byte(spec)},
	}
}

// firstLoop is a result of a bandit experiment whose first loop runs its
// first task: the bandit task has not run.
func firstLoop(start time.Time) experiment.Result {
	r := banditResult("", start, 1, experiment.Bandit{})
	r.Tasks = []experiment.TaskResult{{Task: "abn", State: experiment.TaskRunning}, {Task: "bandit", State: experiment.TaskPending}}
	r.Bandit = nil
	return r
}

// TestReleaseStatusBanditsBeforeTheirFirstLoop: a bandit experiment whose
// bandit task has not run yet is found by its spec's release, and shown
// running with no bandit loop yet; one that targets another release is
// not, and one whose spec cannot be read is named in the error while the
// others are shown.
func TestReleaseStatusBanditsBeforeTheirFirstLoop(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	objs := []runtime.Object{
		experimentSecret(t, "team", "starting", firstLoop(t0)), specSecret("starting", "rel"),
		experimentSecret(t, "team", "qualified", firstLoop(t0.Add(time.Hour))), specSecret("qualified", "team/rel"),
		experimentSecret(t, "team", "elsewhere", firstLoop(t0.Add(2*time.Hour))), specSecret("elsewhere", "other"),
		experimentSecret(t, "team", "namesake", firstLoop(t0.Add(3*time.Hour))), specSecret("namesake", "prod/rel"),
		// Its spec Secret is gone.
		experimentSecret(t, "team", "nospec", firstLoop(t0.Add(4*time.Hour))),
	}
	a := NewReleaseStatus(testCluster(objs, banditRoute()))
	a.App = "app"
	st, err := a.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []BanditStatus{
		{Experiment: "qualified", Revision: 1, State: experiment.StateRunning, Loop: 1, Loops: 10, Versions: []BanditVersion{}, Reason: NoBanditLoop, StartTime: t0.Add(time.Hour)},
		{Experiment: "starting", Revision: 1, State: experiment.StateRunning, Loop: 1, Loops: 10, Versions: []BanditVersion{}, Reason: NoBanditLoop, StartTime: t0},
	}
	if !reflect.DeepEqual(st.Bandits, want) {
		got, _ := json.MarshalIndent(st.Bandits, "", " ")
		w, _ := json.MarshalIndent(want, "", " ")
		t.Errorf("bandits of team/rel before their first bandit loop:\n%s\nwant\n%s", got, w)
	}
	if !strings.Contains(st.BanditsError, "read bandits: read spec of experiment nospec in namespace team") || !strings.Contains(st.BanditsError, "not found") {
		t.Errorf("bandits error %q; want the spec of nospec not found", st.BanditsError)
	}
}

// TestReleaseStatusBanditsSpecsForbidden: a user who may list Secrets but
// not get a spec Secret gets the bandits that have run, and the reason the
// others may be missing.
func TestReleaseStatusBanditsSpecsForbidden(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	cfg := testCluster([]runtime.Object{
		experimentSecret(t, "team", "starting", firstLoop(t0)), specSecret("starting", "rel"),
		experimentSecret(t, "team", "moving", banditResult("team/rel", t0, 2, experiment.Bandit{Weights: map[string]int{"v1": 60, "v2": 40}})),
	}, banditRoute())
	cl, err := cfg.Cluster()
	if err != nil {
		t.Fatal(err)
	}
	cl.Client.(*fake.Clientset).PrependReactor("get", "secrets", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "secrets"}, "starting-spec", nil)
	})
	a := NewReleaseStatus(cfg)
	a.App = "app"
	st, err := a.Run(context.Background())
	if err != nil {
		t.Fatalf("status when spec secrets may not be read: %v", err)
	}
	if len(st.Bandits) != 1 || st.Bandits[0].Experiment != "moving" {
		t.Errorf("bandits %+v; want moving alone", st.Bandits)
	}
	if !strings.Contains(st.BanditsError, "read spec of experiment starting") || !strings.Contains(st.BanditsError, "forbidden") {
		t.Errorf("bandits error %q; want the forbidden spec of starting", st.BanditsError)
	}
}

// TestReleaseStatusInterruptedBandit: a bandit whose run a signal stopped
// is interrupted, not ended: a retried Job's pod resumes it.
func TestReleaseStatusInterruptedBandit(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	r := banditResult("team/rel", t0, 3, experiment.Bandit{Weights: map[string]int{"v1": 60, "v2": 40}, Reason: "weights moved"})
	end := t0.Add(time.Hour)
	r.EndTime, r.Interrupted = &end, true
	a := NewReleaseStatus(testCluster([]runtime.Object{experimentSecret(t, "team", "bandit", r)}, banditRoute()))
	a.App = "app"
	st, err := a.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Bandits) != 1 || st.Bandits[0].State != experiment.StateInterrupted || st.Bandits[0].Stopped != "" {
		t.Errorf("bandits %+v; want bandit interrupted, not stopped", st.Bandits)
	}
}
