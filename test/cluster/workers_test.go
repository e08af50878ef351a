package cluster_test

// The load of an http task spread over worker Pods of an Indexed Job (issue
// 19): the chart's Job makes the Job, the node harness runs its Pods under
// the workers' ServiceAccount, each stores its part, and the run merges
// them into one result with one verdict.

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/podworkers"
	"github.com/iter8-tools/iter8/pkg/stats"
	"github.com/iter8-tools/iter8/pkg/store"
	"github.com/iter8-tools/iter8/pkg/task/load"
	"github.com/iter8-tools/iter8/test/greeter"
	"github.com/iter8-tools/iter8/test/sampleapp"
)

// countingApp serves the sample app on 127.0.0.1 and counts its requests.
func countingApp(t *testing.T) (*httptest.Server, *sampleapp.Handler) {
	t.Helper()
	lat, err := sampleapp.ParseLatency("fixed:1ms")
	if err != nil {
		t.Fatal(err)
	}
	h := sampleapp.NewHandler(sampleapp.Options{Version: "v1", Latency: lat})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, h
}

// installWorkers installs the chart with the http task over 4 workers in
// the background; the returned channel gets helm's outcome once the hook
// has ended.
func installWorkers(t *testing.T, ns, release, url string, set ...string) <-chan outcome {
	t.Helper()
	restrictedNamespace(t, ns)
	args := []string{"install", release, chartDir, "-n", ns, "--timeout", "120s",
		"--set", "http.url=" + url + "/", "--set", "http.workers=4", "--set", "http.connections=2"}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	done := make(chan outcome, 1)
	go func() { done <- helm(t, args...) }()
	return done
}

// readResult reads the release's newest result.
func readResult(t *testing.T, ns, release string) *experiment.Result {
	t.Helper()
	s := &store.Secrets{Client: env.Clientset, Namespace: ns, Release: release}
	r, err := s.ReadResult(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// readParts reads the workers' part Secrets, decoded.
func readParts(t *testing.T, ns, release string, n int) []*load.Part {
	t.Helper()
	var parts []*load.Part
	for w := range n {
		sec, err := env.Clientset.CoreV1().Secrets(ns).Get(context.Background(), podworkers.PartName(release, w), metav1.GetOptions{})
		if err != nil {
			t.Fatalf("worker %d's part: %v", w, err)
		}
		if owner := sec.OwnerReferences; len(owner) != 1 || owner[0].Name != store.ResultSecretName(release) {
			t.Errorf("worker %d's part is owned by %v, want the result Secret", w, owner)
		}
		p := &load.Part{}
		if err := json.Unmarshal(sec.Data[podworkers.PartKey], p); err != nil {
			t.Fatalf("worker %d's part: %v", w, err)
		}
		parts = append(parts, p)
	}
	return parts
}

// waitNewIndexPod waits for a running Pod of the worker index other than
// last.
func waitNewIndexPod(t *testing.T, ns, job string, index int, last string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		pod, err := harness.WaitJobIndexRunning(ctx, ns, job, index)
		if err != nil {
			t.Fatalf("worker %d of %s: %v", index, job, err)
		}
		if pod != last {
			return pod
		}
		select {
		case <-ctx.Done():
			t.Fatalf("worker %d of %s: no Pod after %s", index, job, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitRequests polls until the app has served at least n requests.
func waitRequests(t *testing.T, h *sampleapp.Handler, n int64) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for h.Requests() < n {
		if time.Now().After(deadline) {
			t.Fatalf("the app served %d requests, want %d", h.Requests(), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func metricValue(t *testing.T, r *experiment.Result, name string) float64 {
	t.Helper()
	if len(r.Versions) != 1 {
		t.Fatalf("result has %d versions, want 1", len(r.Versions))
	}
	v, ok := r.Versions[0].Metrics[name]
	if !ok {
		t.Fatalf("result has no %s", name)
	}
	return v.Value
}

// TestWorkersMergeExactly: 4 workers, 4,000 requests, one worker's Pod
// killed mid-load and retried: the merged count is 4,000 exactly, the
// merged histogram is the parts' added bucket for bucket, and the SLO is
// judged once, by the experiment's run.
func TestWorkersMergeExactly(t *testing.T) {
	t.Parallel()
	const ns, release = "workers-merge", "perf"
	app, h := countingApp(t)
	done := installWorkers(t, ns, release, app.URL,
		"tasks={http,assess}", "http.numRequests=4000", "http.qps=400",
		"assess.slos[0].metric=http/error-rate", "assess.slos[0].upper=0")
	job := podworkers.JobName(release)
	pod := waitNewIndexPod(t, ns, job, 1, "")
	waitRequests(t, h, 1200)
	if err := harness.KillJobIndexPod(ns, job, 1); err != nil {
		t.Fatal(err)
	}
	waitNewIndexPod(t, ns, job, 1, pod)
	if o := <-done; o.Code != 0 {
		t.Fatalf("helm install: %s\nJob log:\n%s", o, lastRun(t, ns, release).Output)
	}

	r := readResult(t, ns, release)
	if got := metricValue(t, r, "http/request-count"); got != 4000 {
		t.Errorf("http/request-count = %v, want 4000 exactly", got)
	}
	if sent := h.Requests(); sent <= 4000 {
		t.Errorf("the app served %d requests; the killed worker's retry should have sent its share again (more than 4000)", sent)
	}
	t.Logf("merged request-count 4000; the app served %d (the killed worker's share sent again)", h.Requests())
	parts := readParts(t, ns, release, 4)
	var hs []*stats.Histogram
	for _, p := range parts {
		if p.Endpoints[0].Requests != 1000 {
			t.Errorf("worker %d sent %d, want 1000", p.Worker, p.Endpoints[0].Requests)
		}
		hs = append(hs, p.Endpoints[0].Latency)
	}
	want, err := stats.MergeHistograms(hs...)
	if err != nil {
		t.Fatal(err)
	}
	got := r.Versions[0].Histograms["http/latency"]
	if got == nil || got.Count != 4000 || !reflect.DeepEqual(got, want) {
		t.Errorf("merged histogram (count %d) differs from the parts' added bucket for bucket (count %d)", countOf(got), want.Count)
	}
	if len(r.SLOs) != 1 || !r.SLOs[0].Satisfied {
		t.Errorf("SLOs = %+v, want one, satisfied", r.SLOs)
	}
	if n := strings.Count(strings.Join(r.Log, "\n"), `msg="task started" task=1 name=assess`); n != 1 {
		t.Errorf("assess started %d times in the run's log, want once:\n%s", n, strings.Join(r.Log, "\n"))
	}
	for _, run := range harness.Runs() {
		if run.Namespace == ns && run.Job == job && strings.Contains(run.Output, "assess") {
			t.Errorf("worker %d's Pod ran assess:\n%s", run.Index, run.Output)
		}
	}
	report := kubectl(t, "iter8", "report", release, "-n", ns)
	if report.Code != 0 || !strings.Contains(report.Stdout, "4 workers, 1000 to 1000 requests each, 0 errors") {
		t.Errorf("report: want the workers' counts: %s", report)
	}
	if o := helm(t, "uninstall", release, "-n", ns); o.Code != 0 {
		t.Fatalf("helm uninstall: %s", o)
	}
	checkNothingLeft(t, ns)
}

func countOf(h *stats.Histogram) int64 {
	if h == nil {
		return -1
	}
	return h.Count
}

// TestWorkerFailsForGood: a worker whose Pod fails every retry fails the
// task, which names its index; what the other workers sent is kept.
func TestWorkerFailsForGood(t *testing.T) {
	t.Parallel()
	const ns, release = "workers-fail", "perf"
	app, _ := countingApp(t)
	done := installWorkers(t, ns, release, app.URL, "tasks={http}", "http.numRequests=4000", "http.qps=200")
	job := podworkers.JobName(release)
	pod := ""
	for range podworkers.DefaultRetries + 1 {
		pod = waitNewIndexPod(t, ns, job, 2, pod)
		if err := harness.KillJobIndexPod(ns, job, 2); err != nil {
			t.Fatal(err)
		}
	}
	if o := <-done; o.Code == 0 {
		t.Fatalf("helm install: want the hook failed: %s", o)
	}
	r := readResult(t, ns, release)
	if len(r.Tasks) == 0 || !strings.Contains(r.Tasks[0].Error, "worker 2 failed: its pod failed 3 times") {
		t.Errorf("task 0: %+v; want it failed naming worker 2", r.Tasks)
	}
	if got := metricValue(t, r, "http/request-count"); got != 3000 {
		t.Errorf("http/request-count = %v, want the other workers' 3000", got)
	}
	// The failed worker is listed, with why, among the others.
	if counts := r.Versions[0].Workers["http"]; len(counts) != 4 || counts[2].Requests != 0 || !strings.Contains(counts[2].Error, "its pod failed 3 times") {
		t.Errorf("workers' counts %+v; want 4, worker 2 with no requests and its failure", counts)
	}
}

// TestWorkersSplitTheRate: 4 workers at qps 200 for 10s send 200 ± 5% a
// second in all.
func TestWorkersSplitTheRate(t *testing.T) {
	t.Parallel()
	const ns, release = "workers-rate", "perf"
	app, _ := countingApp(t)
	done := installWorkers(t, ns, release, app.URL, "tasks={http}", "http.duration=10s", "http.qps=200")
	if o := <-done; o.Code != 0 {
		t.Fatalf("helm install: %s\nJob log:\n%s", o, lastRun(t, ns, release).Output)
	}
	r := readResult(t, ns, release)
	rate := metricValue(t, r, "http/request-count") / 10
	t.Logf("4 workers at qps 200 for 10s: %.1f a second", rate)
	if rate < 190 || rate > 210 {
		t.Errorf("4 workers at qps 200 for 10s sent %.1f a second, want 200 ± 5%%", rate)
	}
}

// TestGRPCWorkers: the grpc task's calls spread over 3 worker Pods add up
// exactly, each worker's share is its own, and the merged histogram is
// the parts' added.
func TestGRPCWorkers(t *testing.T) {
	t.Parallel()
	const ns, release = "workers-grpc", "perf"
	srv, err := greeter.Start("127.0.0.1:0", greeter.Options{Version: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	restrictedNamespace(t, ns)
	o := helm(t, "install", release, chartDir, "-n", ns, "--timeout", "120s",
		"--set", "tasks={grpc}", "--set", "grpc.host="+srv.Addr(), "--set", "grpc.call="+greeter.SayHello,
		"--set", "grpc.insecure=true", "--set", "grpc.total=301", "--set", "grpc.workers=3", "--set", "grpc.concurrency=2")
	if o.Code != 0 {
		t.Fatalf("helm install: %s\nJob log:\n%s", o, lastRun(t, ns, release).Output)
	}
	r := readResult(t, ns, release)
	if got := metricValue(t, r, "grpc/request-count"); got != 301 || srv.Calls() != 301 {
		t.Errorf("grpc/request-count = %v, the server saw %d; want 301", got, srv.Calls())
	}
	var hs []*stats.Histogram
	for i, p := range readParts(t, ns, release, 3) {
		if want := load.Share(301, 3, i); p.Endpoints[0].Requests != want {
			t.Errorf("worker %d made %d calls, want %d", i, p.Endpoints[0].Requests, want)
		}
		hs = append(hs, p.Endpoints[0].Latency)
	}
	want, err := stats.MergeHistograms(hs...)
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Versions[0].Histograms["grpc/latency"]; !reflect.DeepEqual(got, want) {
		t.Errorf("merged histogram (count %d) differs from the parts' added (count %d)", countOf(got), want.Count)
	}
}
