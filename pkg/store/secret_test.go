package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/stats"
	"github.com/iter8-tools/iter8/test/testbed"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
	k8stesting "k8s.io/client-go/testing"
)

// env is the package's test bed, started by TestMain.
var env *testbed.Env

func TestMain(m *testing.M) {
	os.Exit(testbed.Main(m, func(e *testbed.Env) { env = e }))
}

// newNamespace creates a fresh namespace for one test. It is not deleted:
// the test bed runs no namespace controller to finish a deletion.
func newNamespace(t *testing.T) string {
	t.Helper()
	ns, err := env.Clientset.CoreV1().Namespaces().Create(context.Background(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "store-"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	return ns.Name
}

// chartSecrets returns the two Secrets as the experiment chart creates them:
// the spec, and an empty result Secret.
func chartSecrets(ns, release string, spec []byte) []*corev1.Secret {
	labels := map[string]string{LabelManagedBy: "Helm", LabelExperiment: release}
	return []*corev1.Secret{
		{
			ObjectMeta: metav1.ObjectMeta{Name: SpecSecretName(release), Namespace: ns, Labels: labels},
			Data:       map[string][]byte{SpecKey: spec},
		},
		{
			ObjectMeta: metav1.ObjectMeta{Name: ResultSecretName(release), Namespace: ns, Labels: labels},
		},
	}
}

// install creates the chart's Secrets for release in ns on the test bed.
func install(t *testing.T, ns, release string) {
	t.Helper()
	for _, s := range chartSecrets(ns, release, []byte("kind: Experiment\n")) {
		if _, err := env.Clientset.CoreV1().Secrets(ns).Create(context.Background(), s, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create secret %s/%s: %v", ns, s.Name, err)
		}
	}
}

// setResults overwrites the results key of release's result Secret.
func setResults(t *testing.T, client kubernetes.Interface, ns, release string, data []byte) {
	t.Helper()
	ctx := context.Background()
	sec, err := client.CoreV1().Secrets(ns).Get(ctx, ResultSecretName(release), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sec.Data = map[string][]byte{ResultsKey: data}
	if _, err := client.CoreV1().Secrets(ns).Update(ctx, sec, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// rawResults reads the results key of release's result Secret as stored.
func rawResults(t *testing.T, ns, release string) []byte {
	t.Helper()
	sec, err := env.Clientset.CoreV1().Secrets(ns).Get(context.Background(), ResultSecretName(release), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return sec.Data[ResultsKey]
}

// testResult is a result of revision rev with a request count of rev and,
// when buckets > 0, a latency histogram with that many buckets.
func testResult(rev, buckets int) *experiment.Result {
	r := &experiment.Result{
		Experiment: "perf",
		Revision:   rev,
		StartTime:  time.Date(2026, 1, 1, 0, rev, 0, 0, time.UTC),
		Tasks:      []experiment.TaskResult{{Task: "http", State: experiment.TaskSucceeded}},
		Versions:   []experiment.VersionResult{{Name: "v1"}},
	}
	r.SetMetric("v1", "http/request-count", float64(rev), "")
	if buckets > 0 {
		h := &stats.Histogram{Unit: "ns", Highest: 1e10, SigFigs: 3, Count: int64(buckets)}
		for i := range buckets {
			h.Sparse = append(h.Sparse, int64(1000000+i), 1)
		}
		r.SetHistogram("v1", "http/latency", h)
	}
	return r
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func revisions(rs []experiment.Result) []int {
	var out []int
	for _, r := range rs {
		out = append(out, r.Revision)
	}
	return out
}

func TestSecretsRoundTrip(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	install(t, ns, "perf")
	s := &Secrets{Client: env.Clientset, Namespace: ns, Release: "perf", Revision: 1}

	spec, err := s.ReadSpec(ctx)
	if err != nil || string(spec) != "kind: Experiment\n" {
		t.Errorf("ReadSpec = %q, %v; want the chart's spec", spec, err)
	}
	if _, err := s.ReadResult(ctx); !errors.Is(err, ErrNoResult) {
		t.Errorf("ReadResult of the empty result Secret = %v, want ErrNoResult", err)
	}

	want := testResult(1, 10)
	if err := s.WriteResult(ctx, want); err != nil {
		t.Fatal(err)
	}
	got, err := s.ReadResult(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if g, w := mustJSON(t, got), mustJSON(t, want); g != w {
		t.Errorf("ReadResult after WriteResult:\n got %s\nwant %s", g, w)
	}

	// The chart's labels survive the Job's updates.
	sec, err := env.Clientset.CoreV1().Secrets(ns).Get(ctx, "perf-result", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sec.Labels[LabelExperiment] != "perf" || sec.Labels[LabelManagedBy] != "Helm" {
		t.Errorf("result Secret labels after a write = %v", sec.Labels)
	}
}

func TestSecretsRevisionsAppendAndReplace(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	install(t, ns, "perf")
	writer := func(rev int) *Secrets {
		return &Secrets{Client: env.Clientset, Namespace: ns, Release: "perf", Revision: rev}
	}

	for _, rev := range []int{1, 3, 2} { // a late writer of an older revision keeps the order
		if err := writer(rev).WriteResult(ctx, testResult(rev, 0)); err != nil {
			t.Fatal(err)
		}
	}
	// Rewriting a revision (after every task) replaces its entry; a result
	// without a revision takes the writer's.
	again := testResult(0, 0)
	again.SetMetric("v1", "http/request-count", 42, "")
	if err := writer(2).WriteResult(ctx, again); err != nil {
		t.Fatal(err)
	}

	rs, err := writer(0).ReadResults(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := revisions(rs), []int{1, 2, 3}; !slices.Equal(got, want) {
		t.Fatalf("revisions after writes = %v, want %v", got, want)
	}
	if v, _ := rs[1].Value("v1", "http/request-count"); v != 42 {
		t.Errorf("revision 2 request-count = %v, want 42 (the rewrite)", v)
	}
	newest, err := writer(0).ReadResult(ctx)
	if err != nil || newest.Revision != 3 {
		t.Errorf("ReadResult = revision %v, %v; want the newest, 3", newest, err)
	}
	if r, err := writer(0).ReadRevision(ctx, 2); err != nil || r.Revision != 2 {
		t.Errorf("ReadRevision(2) = %v, %v", r, err)
	}
	if _, err := writer(0).ReadRevision(ctx, 7); !errors.Is(err, ErrNoResult) || !strings.Contains(err.Error(), "no result of revision 7 (kept: 1, 2, 3)") {
		t.Errorf("ReadRevision(7) = %v; want ErrNoResult naming the kept revisions", err)
	}

	err = writer(5).WriteResult(ctx, testResult(4, 0))
	if err == nil || !strings.Contains(err.Error(), "revision 4 given to the writer of revision 5") {
		t.Errorf("WriteResult of another revision's result = %v", err)
	}
}

func TestSecretsConcurrentWriters(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	install(t, ns, "perf")

	// Count the conflicts the API server answers, to show that the race is
	// real (it is likely, not certain, so it is logged, not asserted).
	var conflicts atomic.Int32
	cfg := rest.CopyConfig(env.Config)
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(req *http.Request) (*http.Response, error) {
			resp, err := rt.RoundTrip(req)
			if err == nil && resp.StatusCode == http.StatusConflict {
				conflicts.Add(1)
			}
			return resp, err
		})
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}

	// Several rounds of two writers released together by a barrier, each
	// with its own revision: every write lands, conflict or not.
	const rounds = 5
	for round := range rounds {
		start := make(chan struct{})
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for w := range 2 {
			rev := 2*round + w + 1
			s := &Secrets{Client: client, Namespace: ns, Release: "perf", Revision: rev}
			wg.Go(func() {
				<-start
				errs[w] = s.WriteResult(ctx, testResult(rev, 5))
			})
		}
		close(start)
		wg.Wait()
		for w, err := range errs {
			if err != nil {
				t.Fatalf("round %d writer %d: %v", round, w, err)
			}
		}
	}
	t.Logf("%d conflicts in %d rounds", conflicts.Load(), rounds)
	rs, err := (&Secrets{Client: env.Clientset, Namespace: ns, Release: "perf"}).ReadResults(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var want []int
	for rev := 1; rev <= 2*rounds; rev++ {
		want = append(want, rev)
	}
	if got := revisions(rs); !slices.Equal(got, want) {
		t.Errorf("revisions after concurrent writes = %v, want %v", got, want)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

func TestSecretsSizeBudget(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	install(t, ns, "perf")

	// Each result carries about 100 KiB of histogram and 96 KiB of log: a
	// few revisions fill the budget with histograms, a few more without.
	const buckets, logSize = 10000, 96 << 10
	result := func(rev int) *experiment.Result {
		r := testResult(rev, buckets)
		r.Log = []string{strings.Repeat("l", logSize)}
		return r
	}
	plain := result(1)
	stripHistograms(plain)
	revs := ResultBudget/len(mustJSON(t, plain)) + 3
	var last *experiment.Result
	for rev := 1; rev <= revs; rev++ {
		last = result(rev)
		s := &Secrets{Client: env.Clientset, Namespace: ns, Release: "perf", Revision: rev}
		if err := s.WriteResult(ctx, last); err != nil {
			t.Fatalf("write revision %d: %v", rev, err)
		}
		if n := len(rawResults(t, ns, "perf")); n > ResultBudget {
			t.Fatalf("after revision %d the results take %d bytes, over the budget of %d", rev, n, ResultBudget)
		}
	}
	if last.Version("v1").Histograms == nil {
		t.Error("WriteResult dropped the histograms of the caller's result")
	}

	rs, err := (&Secrets{Client: env.Clientset, Namespace: ns, Release: "perf"}).ReadResults(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := revisions(rs)
	t.Logf("kept revisions %v", got)
	if got[len(got)-1] != revs || got[0] == 1 {
		t.Errorf("kept revisions %v; want the oldest dropped and the newest, %d, kept", got, revs)
	}
	for i := 1; i < len(got); i++ {
		if got[i] != got[i-1]+1 {
			t.Errorf("kept revisions %v are not the newest ones in a row", got)
			break
		}
	}
	if g, w := mustJSON(t, rs[len(rs)-1]), mustJSON(t, last); g != w {
		t.Error("the current revision was not kept intact")
	}
	seenHist := false
	for _, r := range rs[:len(rs)-1] {
		if hasHistograms(&r) {
			seenHist = true
		} else if seenHist {
			t.Errorf("older revision %d lost its histograms before an older one", r.Revision)
		}
		if v, ok := r.Value("v1", "http/request-count"); !ok || v != float64(r.Revision) {
			t.Errorf("older revision %d lost its metrics", r.Revision)
		}
	}
}

func TestSecretsSizeBudgetHistogramsOnly(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	install(t, ns, "perf")

	// Without logs, dropping older histograms is enough: every revision stays.
	const buckets = 10000
	revs := ResultBudget/len(mustJSON(t, testResult(1, buckets))) + 3
	var last *experiment.Result
	for rev := 1; rev <= revs; rev++ {
		last = testResult(rev, buckets)
		s := &Secrets{Client: env.Clientset, Namespace: ns, Release: "perf", Revision: rev}
		if err := s.WriteResult(ctx, last); err != nil {
			t.Fatalf("write revision %d: %v", rev, err)
		}
	}
	if n := len(rawResults(t, ns, "perf")); n > ResultBudget {
		t.Fatalf("the results take %d bytes, over the budget of %d", n, ResultBudget)
	}
	rs, err := (&Secrets{Client: env.Clientset, Namespace: ns, Release: "perf"}).ReadResults(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := revisions(rs); len(got) != revs {
		t.Errorf("kept revisions %v, want all %d", got, revs)
	}
	if hasHistograms(&rs[0]) {
		t.Errorf("the oldest revision kept its histograms")
	}
	if !hasHistograms(&rs[revs-2]) {
		t.Errorf("the previous revision lost its histograms; only the oldest should go")
	}
	if g, w := mustJSON(t, rs[len(rs)-1]), mustJSON(t, last); g != w {
		t.Error("the current revision was not kept intact")
	}
}

func TestFitBudget(t *testing.T) {
	// A budget that holds three results without histograms, or one with.
	plain := len(mustJSON(t, testResult(1, 0)))
	withHist := len(mustJSON(t, testResult(1, 100)))
	budget := max(3*plain+4, withHist+2)

	t.Run("histograms of older revisions go first", func(t *testing.T) {
		rs := []experiment.Result{*testResult(1, 100), *testResult(2, 0), *testResult(3, 100)}
		data, err := fitBudget(rs, 3, withHist+2*plain+4)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := decodeResults(data)
		if !slices.Equal(revisions(got), []int{1, 2, 3}) || hasHistograms(&got[0]) || !hasHistograms(&got[2]) {
			t.Errorf("fitBudget kept %v (histograms %v %v)", revisions(got), hasHistograms(&got[0]), hasHistograms(&got[2]))
		}
	})
	t.Run("the current revision alone over the budget loses its histograms", func(t *testing.T) {
		rs := []experiment.Result{*testResult(1, 0), *testResult(2, 0), *testResult(3, 10*budget)}
		data, err := fitBudget(rs, 3, budget)
		if err != nil {
			t.Fatal(err)
		}
		if len(data) > budget {
			t.Errorf("fitBudget returned %d bytes, over the budget of %d", len(data), budget)
		}
		got, _ := decodeResults(data)
		if r := got[len(got)-1]; r.Revision != 3 || hasHistograms(&r) {
			t.Errorf("fitBudget kept %v; want revision 3 last, without histograms", revisions(got))
		}
	})
	t.Run("the current revision without histograms over the budget fails", func(t *testing.T) {
		big := testResult(2, 0)
		big.Log = []string{strings.Repeat("x", 2*budget)}
		_, err := fitBudget([]experiment.Result{*testResult(1, 0), *big}, 2, budget)
		if err == nil || !strings.Contains(err.Error(), "result of revision 2 takes") {
			t.Errorf("fitBudget of an oversized result = %v", err)
		}
	})
}

func TestSecretsMissing(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	s := &Secrets{Client: env.Clientset, Namespace: ns, Release: "perf", Revision: 1}

	_, err := s.ReadResult(ctx)
	want := fmt.Sprintf("read result of experiment perf in namespace %s: secret perf-result not found", ns)
	if err == nil || !strings.HasPrefix(err.Error(), want) || !errors.Is(err, ErrNoResult) {
		t.Errorf("ReadResult without a Secret = %v; want %q wrapping ErrNoResult", err, want)
	}
	err = s.WriteResult(ctx, testResult(1, 0))
	want = fmt.Sprintf("write result of experiment perf in namespace %s: secret perf-result not found", ns)
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("WriteResult without a Secret = %v; want %q", err, want)
	}
	_, err = s.ReadSpec(ctx)
	want = fmt.Sprintf("read spec of experiment perf in namespace %s: secret perf-spec not found", ns)
	if err == nil || !strings.HasPrefix(err.Error(), want) || !apierrors.IsNotFound(err) {
		t.Errorf("ReadSpec without a Secret = %v; want %q wrapping NotFound", err, want)
	}
	// Nothing was created on the way.
	if _, err := env.Clientset.CoreV1().Secrets(ns).Get(ctx, "perf-result", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("get perf-result after the failed write = %v, want NotFound", err)
	}

	install(t, ns, "perf")
	setResults(t, env.Clientset, ns, "perf", []byte("[]"))
	if _, err := s.ReadResult(ctx); !errors.Is(err, ErrNoResult) {
		t.Errorf("ReadResult of an empty array = %v, want ErrNoResult", err)
	}
}

func TestSecretsMalformed(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	install(t, ns, "perf")
	setResults(t, env.Clientset, ns, "perf", []byte("{not json"))
	s := &Secrets{Client: env.Clientset, Namespace: ns, Release: "perf", Revision: 2}

	want := fmt.Sprintf("read result of experiment perf in namespace %s: secret perf-result key results.json: not a valid results array", ns)
	if _, err := s.ReadResult(ctx); err == nil || !strings.HasPrefix(err.Error(), want) || errors.Is(err, ErrNoResult) {
		t.Errorf("ReadResult of malformed data = %v; want %q", err, want)
	}
	// A write refuses to overwrite what it cannot read.
	if err := s.WriteResult(ctx, testResult(2, 0)); err == nil || !strings.Contains(err.Error(), "not a valid results array") {
		t.Errorf("WriteResult over malformed data = %v", err)
	}
	if got := rawResults(t, ns, "perf"); string(got) != "{not json" {
		t.Errorf("malformed data was overwritten with %q", got)
	}

	// A spec Secret without the spec key.
	sec, err := env.Clientset.CoreV1().Secrets(ns).Get(ctx, "perf-spec", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sec.Data = nil
	if _, err := env.Clientset.CoreV1().Secrets(ns).Update(ctx, sec, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReadSpec(ctx); err == nil || !strings.Contains(err.Error(), "secret perf-spec has no key experiment.yaml") {
		t.Errorf("ReadSpec without the key = %v", err)
	}
}

func TestListExperiments(t *testing.T) {
	ctx := context.Background()
	ns1, ns2 := newNamespace(t), newNamespace(t)
	install(t, ns1, "a")
	install(t, ns1, "b")
	install(t, ns2, "c") // installed, not yet run
	install(t, ns2, "d")
	setResults(t, env.Clientset, ns2, "d", []byte("oops"))
	for rev := 1; rev <= 2; rev++ {
		s := &Secrets{Client: env.Clientset, Namespace: ns1, Release: "a", Revision: rev}
		if err := s.WriteResult(ctx, testResult(rev, 0)); err != nil {
			t.Fatal(err)
		}
	}
	if err := (&Secrets{Client: env.Clientset, Namespace: ns1, Release: "b", Revision: 7}).WriteResult(ctx, testResult(7, 0)); err != nil {
		t.Fatal(err)
	}
	// A Secret named like a result but without the label is not an experiment.
	stray := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "x-result", Namespace: ns1}}
	if _, err := env.Clientset.CoreV1().Secrets(ns1).Create(ctx, stray, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	type row struct {
		Release, Namespace string
		Revision           int
		HasResult          bool
		Error              bool
	}
	rows := func(ss []Summary, keep ...string) []row {
		var out []row
		for _, s := range ss {
			if slices.Contains(keep, s.Namespace) {
				out = append(out, row{s.Release, s.Namespace, s.Revision, s.Result != nil, s.Error != ""})
			}
		}
		return out
	}
	wantNS1 := []row{{"a", ns1, 2, true, false}, {"b", ns1, 7, true, false}}
	wantNS2 := []row{{"c", ns2, 0, false, false}, {"d", ns2, 0, false, true}}
	wantAll := append(slices.Clone(wantNS1), wantNS2...)
	if ns2 < ns1 {
		wantAll = append(slices.Clone(wantNS2), wantNS1...)
	}

	all, err := ListExperiments(ctx, env.Clientset, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := rows(all, ns1, ns2); !slices.Equal(got, wantAll) {
		t.Errorf("ListExperiments in all namespaces = %+v, want %+v", got, wantAll)
	}
	one, err := ListExperiments(ctx, env.Clientset, ns1)
	if err != nil {
		t.Fatal(err)
	}
	if got := rows(one, ns1, ns2); !slices.Equal(got, wantNS1) || len(one) != len(got) {
		t.Errorf("ListExperiments in %s = %+v, want %+v", ns1, got, wantNS1)
	}
	if r := one[0].Result; r == nil || r.Revision != 2 {
		t.Errorf("summary of a holds %v, want revision 2's result", r)
	}
	empty, err := ListExperiments(ctx, env.Clientset, newNamespace(t))
	if err != nil || empty == nil || len(empty) != 0 {
		t.Errorf("ListExperiments of an empty namespace = %#v, %v; want an empty, non-nil list", empty, err)
	}
}

// fakeWithResult is a fake clientset holding perf's Secrets in namespace
// test, whose secret updates go through react first.
func fakeWithResult(react func(n int) error) (*fake.Clientset, *int) {
	var objs []runtime.Object
	for _, s := range chartSecrets("test", "perf", []byte("spec")) {
		objs = append(objs, s)
	}
	client := fake.NewClientset(objs...)
	var updates int
	client.PrependReactor("update", "secrets", func(k8stesting.Action) (bool, runtime.Object, error) {
		updates++
		if err := react(updates); err != nil {
			return true, nil, err
		}
		return false, nil, nil // on to the tracker
	})
	return client, &updates
}

func conflict() error {
	return apierrors.NewConflict(schema.GroupResource{Resource: "secrets"}, "perf-result", errors.New("the object has been modified"))
}

func TestWriteResultRetriesConflicts(t *testing.T) {
	ctx := context.Background()
	client, updates := fakeWithResult(func(n int) error {
		if n <= 2 {
			return conflict()
		}
		return nil
	})
	var gets int
	client.PrependReactor("get", "secrets", func(k8stesting.Action) (bool, runtime.Object, error) {
		gets++
		return false, nil, nil
	})
	s := &Secrets{Client: client, Namespace: "test", Release: "perf", Revision: 1}
	if err := s.WriteResult(ctx, testResult(1, 0)); err != nil {
		t.Fatal(err)
	}
	if *updates != 3 || gets != 3 {
		t.Errorf("WriteResult made %d update attempts and %d reads, want 3 and 3 (re-read on every conflict)", *updates, gets)
	}
	if r, err := s.ReadResult(ctx); err != nil || r.Revision != 1 {
		t.Errorf("ReadResult after conflicts = %v, %v", r, err)
	}
}

func TestWriteResultFailures(t *testing.T) {
	ctx := context.Background()
	t.Run("other errors are not retried", func(t *testing.T) {
		client, updates := fakeWithResult(func(int) error {
			return apierrors.NewForbidden(schema.GroupResource{Resource: "secrets"}, "perf-result", errors.New("no"))
		})
		s := &Secrets{Client: client, Namespace: "test", Release: "perf", Revision: 1}
		err := s.WriteResult(ctx, testResult(1, 0))
		want := "write result of experiment perf in namespace test: update secret perf-result: "
		if err == nil || !strings.HasPrefix(err.Error(), want) || !apierrors.IsForbidden(err) || *updates != 1 {
			t.Errorf("WriteResult = %v after %d attempts; want one attempt and %q wrapping Forbidden", err, *updates, want)
		}
	})
	t.Run("endless conflicts end", func(t *testing.T) {
		client, updates := fakeWithResult(func(int) error { return conflict() })
		s := &Secrets{Client: client, Namespace: "test", Release: "perf", Revision: 1}
		err := s.WriteResult(ctx, testResult(1, 0))
		if err == nil || !apierrors.IsConflict(err) || !strings.Contains(err.Error(), "secret perf-result: gave up after") || *updates != conflictBackoff.Steps {
			t.Errorf("WriteResult = %v after %d attempts; want a conflict after %d", err, *updates, conflictBackoff.Steps)
		}
	})
	t.Run("a cancelled context stops", func(t *testing.T) {
		client, updates := fakeWithResult(func(int) error { return nil })
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		s := &Secrets{Client: client, Namespace: "test", Release: "perf", Revision: 1}
		if err := s.WriteResult(cctx, testResult(1, 0)); !errors.Is(err, context.Canceled) || *updates != 0 {
			t.Errorf("WriteResult with a cancelled context = %v after %d attempts", err, *updates)
		}
	})
}

// The stored array is plain JSON that other tools (kubectl, jq) can read.
func TestStoredFormat(t *testing.T) {
	client, _ := fakeWithResult(func(int) error { return nil })
	s := &Secrets{Client: client, Namespace: "test", Release: "perf", Revision: 1}
	if err := s.WriteResult(context.Background(), testResult(1, 0)); err != nil {
		t.Fatal(err)
	}
	sec, err := client.CoreV1().Secrets("test").Get(context.Background(), "perf-result", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var arr []json.RawMessage
	data := sec.Data[ResultsKey]
	if err := json.Unmarshal(data, &arr); err != nil || len(arr) != 1 || !bytes.HasPrefix(data, []byte(`[{"experiment":"perf","revision":1`)) {
		t.Errorf("stored %s (%v); want a JSON array of one result", data, err)
	}
}

func TestAdoptJob(t *testing.T) {
	ns := newNamespace(t)
	install(t, ns, "perf")
	ctx := context.Background()
	other := metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: "keeper", UID: "0a0a0a0a-0000-4000-8000-000000000001"}
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "perf-iter8-run", OwnerReferences: []metav1.OwnerReference{other}},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers:    []corev1.Container{{Name: "iter8", Image: "iter8"}},
		}}},
	}
	if _, err := env.Clientset.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	s := &Secrets{Client: env.Clientset, Namespace: ns, Release: "perf"}
	if err := s.AdoptJob(ctx, "perf-iter8-run"); err != nil {
		t.Fatal(err)
	}
	sec, err := env.Clientset.CoreV1().Secrets(ns).Get(ctx, ResultSecretName("perf"), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := env.Clientset.BatchV1().Jobs(ns).Get(ctx, "perf-iter8-run", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// A strategic merge patch adds the reference (first) to the one there.
	want := []metav1.OwnerReference{{APIVersion: "v1", Kind: "Secret", Name: "perf-result", UID: sec.UID}, other}
	if mustJSON(t, got.OwnerReferences) != mustJSON(t, want) {
		t.Errorf("owners = %s; want %s", mustJSON(t, got.OwnerReferences), mustJSON(t, want))
	}

	err = s.AdoptJob(ctx, "absent")
	if err == nil || !strings.Contains(err.Error(), "adopt job of experiment perf in namespace "+ns+": patch job absent") {
		t.Errorf("AdoptJob(absent) = %v; want an error naming the experiment and the Job", err)
	}
}

// TestSecretsUpdateKeepsConcurrentChanges: writers that update the same
// revision at once each see the others' changes; none is lost to a
// conflict.
func TestSecretsUpdateKeepsConcurrentChanges(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	install(t, ns, "perf")
	const writers = 5
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := &Secrets{Client: env.Clientset, Namespace: ns, Release: "perf", Revision: 1}
			errs <- s.Update(ctx, func(r *experiment.Result) error {
				r.Log = append(r.Log, fmt.Sprint("writer ", i))
				return nil
			})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	r, err := (&Secrets{Client: env.Clientset, Namespace: ns, Release: "perf"}).ReadRevision(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Log) != writers || r.Revision != 1 {
		t.Errorf("after %d concurrent updates: revision %d, log %q; want every writer's line", writers, r.Revision, r.Log)
	}
}
