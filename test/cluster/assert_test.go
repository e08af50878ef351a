package cluster_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/iter8-tools/iter8/pkg/action"
	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/store"
)

// firstRead closes read once the first plain GET of a result Secret has
// returned, so that a test can change the Secret knowing assert has
// already seen the old state.
type firstRead struct {
	next http.RoundTripper
	once sync.Once
	read chan struct{}
}

func (f *firstRead) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := f.next.RoundTrip(req)
	if req.Method == http.MethodGet && strings.HasSuffix(req.URL.Path, "-result") && req.URL.Query().Get("watch") == "" {
		f.once.Do(func() { close(f.read) })
	}
	return resp, err
}

// startAssert runs assert -c completed on release in ns, polling only
// every hour, so that only the watch can make it answer in time.
func startAssert(t testing.TB, ns, release string) (<-chan struct{}, <-chan error) {
	t.Helper()
	spy := &firstRead{read: make(chan struct{})}
	cfg := rest.CopyConfig(env.Config)
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { spy.next = rt; return spy })
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	conf := action.NewConfiguration()
	conf.Cluster = func() (*action.Cluster, error) { return &action.Cluster{Client: client, Namespace: ns}, nil }
	exp, err := conf.ClusterExperiment(release, 0)
	if err != nil {
		t.Fatal(err)
	}
	a := action.NewAssert(conf)
	a.Experiment, a.Conditions = exp, []action.Condition{action.Completed}
	a.Timeout, a.Interval = time.Minute, time.Hour
	done := make(chan error, 1)
	go func() {
		res, err := a.Run(context.Background())
		if err == nil && !res.Holds() {
			err = fmt.Errorf("assert answered %+v, want completed", res.Verdicts)
		}
		done <- err
	}()
	return spy.read, done
}

// writeResult stores a result of revision 1, ended or not.
func writeResult(t testing.TB, ns, release string, ended bool) {
	t.Helper()
	r := &experiment.Result{Revision: 1, StartTime: time.Now()}
	if ended {
		end := time.Now()
		r.EndTime = &end
	}
	s := &store.Secrets{Client: env.Clientset, Namespace: ns, Release: release, Revision: 1}
	if err := s.WriteResult(context.Background(), r); err != nil {
		t.Fatal(err)
	}
}

// TestAssertFollowsTheResult: assert --timeout answers when the result
// Secret changes, through its watch (polling is set to an hour here).
func TestAssertFollowsTheResult(t *testing.T) {
	const ns, release = "assert-watch", "perf"
	namespace(t, ns)
	helmInstall(t, ns, release, "tasks={assess}")
	writeResult(t, ns, release, false)

	read, done := startAssert(t, ns, release)
	select {
	case <-read:
	case err := <-done:
		t.Fatalf("assert ended before the result changed: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("assert did not read the result within 30s")
	}
	writeResult(t, ns, release, true)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("assert did not answer within 30s of the result changing")
	}
}

// BenchmarkAssertAnswer measures the time from a result's update to
// assert's answer.
func BenchmarkAssertAnswer(b *testing.B) {
	namespace(b, "assert-bench")
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		release := "perf" + itoa(i)
		helmInstall(b, "assert-bench", release, "tasks={assess}")
		writeResult(b, "assert-bench", release, false)
		read, done := startAssert(b, "assert-bench", release)
		<-read
		b.StartTimer()
		writeResult(b, "assert-bench", release, true)
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
}
