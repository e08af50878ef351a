package abn_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/iter8-tools/iter8/abn/client"
	"github.com/iter8-tools/iter8/pkg/abn/ledger"
)

// eventually polls check until it holds or timeout passes; the failure
// names what the last check saw.
func eventually(t testing.TB, timeout time.Duration, what string, check func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, saw := check()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v; last saw: %s", what, timeout, saw)
		}
		time.Sleep(50 * time.Millisecond) // poll interval, not synchronisation
	}
}

// restrictedNamespace makes a namespace that enforces Pod Security
// "restricted", with the default ServiceAccount that the app's Pods need.
func restrictedNamespace(t *testing.T, name string) {
	t.Helper()
	_, err := env.Clientset.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: name, Labels: map[string]string{"pod-security.kubernetes.io/enforce": "restricted"},
	}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}
	if _, err := env.Clientset.CoreV1().ServiceAccounts(name).Create(t.Context(), sa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// appValues writes charts/release values for versions v1, v2, ... of the
// canary strategy, one for each weight given.
func appValues(t *testing.T, weights ...int) string {
	t.Helper()
	var versions []any
	for i, w := range weights {
		name := fmt.Sprintf("v%d", i+1)
		versions = append(versions, map[string]any{"name": name, "weight": w, "deployment": map[string]any{"image": "registry.example/shop:" + name}})
	}
	v := map[string]any{
		"dataPlane":  "gateway-api",
		"strategy":   "canary",
		"versions":   versions,
		"gatewayAPI": map[string]any{"parentRefs": []any{map[string]any{"name": "gateway", "namespace": "no-data-plane"}}},
	}
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.CreateTemp(t.TempDir(), "values-*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}

// podReady says whether a Pod is Ready.
func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// servicePods waits until release's service has n Pods, all Ready, and
// returns them.
func servicePods(t testing.TB, ns, release string, n int, timeout time.Duration) []corev1.Pod {
	t.Helper()
	var pods []corev1.Pod
	eventually(t, timeout, fmt.Sprintf("%d ready Pods of %s", n, release), func() (bool, string) {
		l, err := env.Clientset.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=" + release})
		if err != nil {
			return false, err.Error()
		}
		var saw []string
		ready := 0
		for _, p := range l.Items {
			saw = append(saw, fmt.Sprintf("%s ready=%v ip=%s", p.Name, podReady(&p), p.Status.PodIP))
			if podReady(&p) && p.DeletionTimestamp == nil {
				ready++
			}
		}
		pods = l.Items
		return ready == n && len(l.Items) == n, strings.Join(saw, "; ")
	})
	return pods
}

// podAddress is the address of a run Pod.
func podAddress(t testing.TB, p corev1.Pod) string {
	t.Helper()
	addr, err := harness.PodAddress(p.Namespace, p.Name)
	if err != nil {
		t.Fatalf("address of Pod %s: %v", p.Name, err)
	}
	return addr
}

// newClient is an SDK client of app at addr's gRPC port; generous
// timeouts, since -race on 2 cores is slow.
func newClient(t testing.TB, addr, app string) *client.Client {
	t.Helper()
	c, err := client.New(client.Options{
		Target: net.JoinHostPort(addr, "50051"), Application: app, Baseline: "v1",
		LookupTimeout: 5 * time.Second, MaxBackoff: 500 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// users are the names of n users.
func users(n int) []string {
	u := make([]string, n)
	for i := range u {
		u[i] = fmt.Sprintf("user-%05d", i)
	}
	return u
}

// lookupAll looks every user up through c with 8 goroutines; it returns
// the versions and a description of each answer that was an error, a
// fallback or neither v1 nor v2.
func lookupAll(c *client.Client, us []string) (map[string]string, []string) {
	return lookupAmong(c, us, "v1", "v2")
}

// lookupAmong is lookupAll for an app of the versions given.
func lookupAmong(c *client.Client, us []string, versions ...string) (map[string]string, []string) {
	got := make([]string, len(us))
	bad := make([]string, len(us))
	var wg sync.WaitGroup
	const workers = 8
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(us); i += workers {
				a := c.Lookup(context.Background(), us[i])
				got[i] = a.Version
				if a.Err != nil || a.Fallback || !slices.Contains(versions, a.Version) {
					bad[i] = fmt.Sprintf("%s: %+v", us[i], a)
				}
			}
		})
	}
	wg.Wait()
	m := make(map[string]string, len(us))
	var problems []string
	for i, u := range us {
		m[u] = got[i]
		if bad[i] != "" {
			problems = append(problems, bad[i])
		}
	}
	return m, problems
}

// share is the percentage of assignments to version.
func share(m map[string]string, version string) float64 {
	n := 0
	for _, v := range m {
		if v == version {
			n++
		}
	}
	return 100 * float64(n) / float64(len(m))
}

// firstFew joins at most 3 of s, with the total.
func firstFew(s []string) string {
	if len(s) > 3 {
		return fmt.Sprintf("%d, such as %s", len(s), strings.Join(s[:3], "; "))
	}
	return strings.Join(s, "; ")
}

// httpClient is a client of the service's HTTP port: the Pods' addresses
// are reached directly, never through a proxy of the environment.
func httpClient() *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{Proxy: nil}}
}

// summary reads GET /v1/summary of app from the service at addr.
func summary(t testing.TB, addr, app string) ledger.Summary {
	t.Helper()
	var s ledger.Summary
	c := httpClient()
	defer c.CloseIdleConnections()
	resp, err := c.Get("http://" + net.JoinHostPort(addr, "8080") + "/v1/summary?application=" + url.QueryEscape(app))
	if err != nil {
		t.Fatalf("GET /v1/summary: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/summary: %d %s", resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("GET /v1/summary: %v: %s", err, b)
	}
	return s
}

// totalUsers adds the users of every version of a summary.
func totalUsers(s ledger.Summary) int64 {
	var n int64
	for _, v := range s.Versions {
		n += v.Users
	}
	return n
}

// transactions are a metric's transactions per version in a summary.
func transactions(s ledger.Summary, metric string) map[string]ledger.Moments {
	out := map[string]ledger.Moments{}
	for name, v := range s.Versions {
		if m, ok := v.Metrics[metric]; ok {
			out[name] = m.Transactions.Moments
		}
	}
	return out
}

// totalCount adds the counts of all versions.
func totalCount(m map[string]ledger.Moments) int64 {
	var n int64
	for _, v := range m {
		n += v.Count
	}
	return n
}

// stream writes metric values (1 each, credited to v1) through c at about
// one per millisecond until stop is closed, and then returns how many it
// wrote.
func stream(c *client.Client, metric, prefix string, stop <-chan struct{}) (int, error) {
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	n := 0
	for {
		select {
		case <-stop:
			return n, nil
		case <-tick.C:
			if err := c.WriteMetric(fmt.Sprintf("%s-%d", prefix, n%500), "v1", metric, 1); err != nil {
				return n, err
			}
			n++
		}
	}
}

// closeClient closes c (letting it retry for up to a minute) and checks
// that it sent every value it took.
func closeClient(t testing.TB, c *client.Client, written int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.Close(ctx); err != nil {
		t.Errorf("Close: %v (stats %+v)", err, c.Stats())
	}
	if s := c.Stats(); s.Sent != uint64(written) || s.Dropped != 0 || s.InDoubt != 0 {
		t.Errorf("after Close: sent %d, dropped %d, in doubt %d (last error %v), want %d sent and none dropped or in doubt", s.Sent, s.Dropped, s.InDoubt, s.LastError, written)
	}
}

// postProto posts m as protojson and returns the status and the answer's
// error message, if any.
func postProto(t testing.TB, url string, m proto.Message) (int, string) {
	t.Helper()
	b, err := protojson.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return postBody(t, url, string(b))
}

// postBody posts body as it is and returns the status and the answer's
// {"error": ...} message ("" for none).
func postBody(t testing.TB, url, body string) (int, string) {
	t.Helper()
	c := httpClient()
	defer c.CloseIdleConnections()
	resp, err := c.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	var e struct{ Error string }
	_ = json.NewDecoder(resp.Body).Decode(&e)
	return resp.StatusCode, e.Error
}
