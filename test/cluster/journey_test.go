package cluster_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/iter8-tools/iter8/test/node"
	"github.com/iter8-tools/iter8/test/sampleapp"
	"github.com/iter8-tools/iter8/test/testbed"
)

// commandTimeout bounds each helm and kubectl command; helm waits for the
// hook Job within it.
const commandTimeout = 2 * time.Minute

func itoa(n int) string { return strconv.Itoa(n) }

// outcome is what one command did.
type outcome = testbed.Outcome

// helm runs the built helm against the test bed.
func helm(t testing.TB, args ...string) outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	return testbed.Run(t, ctx, env.Helm(ctx, args...))
}

// kubectl runs the machine's kubectl against the test bed, with the built
// kubectl-iter8 on PATH.
func kubectl(t *testing.T, args ...string) outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "kubectl", args...)
	cmd.Env = append(os.Environ(),
		"KUBECONFIG="+env.Kubeconfig,
		"KUBECACHEDIR="+filepath.Join(env.Dir, "kubectl-cache"),
		"PATH="+binDir+string(os.PathListSeparator)+os.Getenv("PATH"),
		"NO_COLOR=1",
	)
	return testbed.Run(t, ctx, cmd)
}

// restrictedNamespace makes a namespace that enforces Pod Security
// "restricted", so that every Job Pod in it passes that profile.
func restrictedNamespace(t *testing.T, name string) {
	t.Helper()
	createNamespace(t, name, map[string]string{"pod-security.kubernetes.io/enforce": "restricted"})
}

// sampleApp serves a version of the sample app on 127.0.0.1.
func sampleApp(t testing.TB, latency string) *httptest.Server {
	t.Helper()
	lat, err := sampleapp.ParseLatency(latency)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sampleapp.NewHandler(sampleapp.Options{Version: "v1", Latency: lat}))
	t.Cleanup(srv.Close)
	return srv
}

// lastRun is the harness's last run of the release's hook Job.
func lastRun(t testing.TB, ns, release string) node.Run {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := harness.WaitRun(ctx, ns, release+"-iter8-run")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// checkNothingLeft fails the test when ns holds an object that garbage
// collection would not remove, found through discovery over every
// namespaced resource type; it returns the collectable ones.
func checkNothingLeft(t *testing.T, ns string) []string {
	t.Helper()
	objs, err := env.Objects(context.Background(), ns)
	if err != nil {
		t.Fatal(err)
	}
	if left := testbed.Uncollectable(objs); len(left) != 0 {
		t.Errorf("after uninstall, namespace %s holds %v, which no garbage collector would remove", ns, left)
	}
	var ids []string
	for _, o := range objs {
		ids = append(ids, o.ID)
	}
	return ids
}

// TestJourney is a user's path: install, report, assert, upgrade with a
// tighter SLO, uninstall; helm waits for each hook Job, which the node
// harness runs as a Pod would run it, in a namespace enforcing "restricted".
func TestJourney(t *testing.T) {
	const ns, release = "journey", "perf"
	restrictedNamespace(t, ns)
	app := sampleApp(t, "fixed:5ms")

	install := helm(t, "install", release, chartDir, "-n", ns, "--timeout", "90s",
		"--set", "tasks={http,assess}",
		"--set", "http.url="+app.URL+"/",
		"--set", "http.numRequests=40", "--set", "http.connections=2",
		"--set", "assess.slos[0].metric=http/latency-mean", "--set", "assess.slos[0].upper=50",
		"--set", "assess.slos[1].metric=http/error-rate", "--set", "assess.slos[1].upper=0")
	if install.Code != 0 {
		t.Fatalf("helm install: %s\nJob log:\n%s", install, lastRun(t, ns, release).Output)
	}
	// helm returned after the hook: the run is over and its Job is gone.
	r := lastRun(t, ns, release)
	if r.ExitCode != 0 || r.Pod == "" {
		t.Fatalf("hook run: exit %d, %v\n%s", r.ExitCode, r.Err, r.Output)
	}
	// The process had the container's environment only: no kubeconfig, no
	// admin credentials of the test.
	var names []string
	for _, kv := range r.Env {
		name, value, _ := strings.Cut(kv, "=")
		names = append(names, name)
		if strings.Contains(value, "BEGIN") || (env.Config.BearerToken != "" && strings.Contains(value, env.Config.BearerToken)) {
			t.Errorf("the Job's environment holds credentials in %s", name)
		}
	}
	slices.Sort(names)
	if got, want := strings.Join(names, " "), "HOME HOSTNAME KUBERNETES_SERVICE_HOST KUBERNETES_SERVICE_PORT KUBERNETES_SERVICE_PORT_HTTPS PATH"; got != want {
		t.Errorf("the Job's environment = %s; want %s", got, want)
	}
	if _, err := env.Clientset.BatchV1().Jobs(ns).Get(context.Background(), release+"-iter8-run", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the succeeded hook Job is still there (%v); helm deletes it on success", err)
	}

	report := kubectl(t, "iter8", "report", release, "-n", ns)
	if report.Code != 0 || !strings.Contains(report.Stdout, "http/latency-mean") {
		t.Fatalf("kubectl iter8 report: %s", report)
	}
	if o := kubectl(t, "iter8", "assert", release, "-n", ns, "-c", "completed", "-c", "nofailure", "-c", "slos"); o.Code != 0 {
		t.Errorf("kubectl iter8 assert: %s", o)
	}
	if got := int(sampleRequests(t, release, ns)); got != 40 {
		t.Errorf("the result counts %d requests, want 40", got)
	}

	// A tighter SLO: the 5 ms app cannot keep a 1 ms mean.
	// (--set replaces a list whole, so both SLOs are given again.)
	upgrade := helm(t, "upgrade", release, chartDir, "-n", ns, "--reuse-values", "--timeout", "90s",
		"--set", "assess.slos[0].metric=http/latency-mean", "--set", "assess.slos[0].upper=1",
		"--set", "assess.slos[1].metric=http/error-rate", "--set", "assess.slos[1].upper=0")
	if upgrade.Code != 0 {
		t.Fatalf("helm upgrade: %s\nJob log:\n%s", upgrade, lastRun(t, ns, release).Output)
	}
	var res struct {
		Revision int
		SLOs     []struct {
			Metric    string
			Satisfied bool
		}
	}
	report = kubectl(t, "iter8", "report", release, "-n", ns, "-o", "json")
	if err := json.Unmarshal([]byte(report.Stdout), &res); err != nil || report.Code != 0 {
		t.Fatalf("report -o json: %v\n%s", err, report)
	}
	if res.Revision != 2 || len(res.SLOs) != 2 || res.SLOs[0].Satisfied || !res.SLOs[1].Satisfied {
		t.Errorf("revision 2 result = %+v; want the latency SLO not met and the error SLO met", res)
	}
	o := kubectl(t, "iter8", "assert", release, "-n", ns, "-c", "completed", "-c", "nofailure", "-c", "slos")
	if o.Code != 1 || !strings.Contains(o.Stdout+o.Stderr, "http/latency-mean") {
		t.Errorf("assert after the tighter SLO: want exit 1 naming http/latency-mean: %s", o)
	}
	if o := kubectl(t, "iter8", "report", release, "-n", ns, "--revision", "1", "-o", "json"); o.Code != 0 || !strings.Contains(o.Stdout, `"revision": 1`) {
		t.Errorf("report --revision 1: %s", o)
	}
	if o := kubectl(t, "iter8", "log", release, "-n", ns, "--revision", "3"); o.Code != 2 || !strings.Contains(o.Stderr, "no result of revision 3 (kept: 1, 2)") {
		t.Errorf("log --revision 3: want exit 2 naming the kept revisions: %s", o)
	}

	if o := helm(t, "uninstall", release, "-n", ns); o.Code != 0 {
		t.Fatalf("helm uninstall: %s", o)
	}
	left := checkNothingLeft(t, ns)
	// What is left are the two runs' Pods, owned by their deleted Jobs.
	if pods := slices.DeleteFunc(left, func(id string) bool { return !strings.HasPrefix(id, "Pod/") }); len(pods) != 2 {
		t.Errorf("after uninstall: %v; want the two hook Pods (collectable)", left)
	}
}

// sampleRequests reads the request count of the newest result with
// kubectl iter8 report.
func sampleRequests(t *testing.T, release, ns string) float64 {
	t.Helper()
	o := kubectl(t, "iter8", "report", release, "-n", ns, "-o", "json")
	var res struct {
		Versions []struct {
			Metrics map[string]struct{ Value float64 }
		}
	}
	if err := json.Unmarshal([]byte(o.Stdout), &res); err != nil || len(res.Versions) != 1 {
		t.Fatalf("report -o json: %v\n%s", err, o)
	}
	return res.Versions[0].Metrics["http/request-count"].Value
}

// TestTargetDown: the hook fails, helm says so, the result says why, and
// uninstall still leaves nothing a garbage collector would not remove
// (the failed Job is owned by the result Secret).
func TestTargetDown(t *testing.T) {
	const ns, release = "down", "perf"
	restrictedNamespace(t, ns)
	install := helm(t, "install", release, chartDir, "-n", ns, "--timeout", "90s",
		"--set", "tasks={http}", "--set", "http.url=http://127.0.0.1:1/", "--set", "http.numRequests=5")
	if install.Code == 0 || !strings.Contains(install.Stderr, "post-install") || !strings.Contains(install.Stderr, "BackoffLimitExceeded") {
		t.Errorf("helm install against a closed port: want a failed post-install hook: %s", install)
	}
	if r := lastRun(t, ns, release); r.ExitCode != 2 || !strings.Contains(r.Output, "connection refused") {
		t.Errorf("hook run: exit %d, want 2 and the reason in its log:\n%s", r.ExitCode, r.Output)
	}
	o := kubectl(t, "iter8", "assert", release, "-n", ns, "-c", "completed", "-c", "nofailure")
	if o.Code != 1 || !strings.Contains(o.Stdout, "connection refused") {
		t.Errorf("assert: want exit 1 with the reason: %s", o)
	}
	if o := kubectl(t, "iter8", "log", release, "-n", ns); o.Code != 0 || !strings.Contains(o.Stdout, "127.0.0.1:1") {
		t.Errorf("log: want the run's log naming the endpoint: %s", o)
	}
	job, err := env.Clientset.BatchV1().Jobs(ns).Get(context.Background(), release+"-iter8-run", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the failed hook Job: %v; want it kept for its log", err)
	}
	if len(job.OwnerReferences) != 1 || job.OwnerReferences[0].Name != release+"-result" {
		t.Errorf("failed Job owners = %+v; want the result Secret", job.OwnerReferences)
	}
	if o := helm(t, "uninstall", release, "-n", ns); o.Code != 0 {
		t.Fatalf("helm uninstall: %s", o)
	}
	left := checkNothingLeft(t, ns)
	if !slices.Contains(left, "Job.batch/"+release+"-iter8-run") {
		t.Errorf("after uninstall: %v; want the failed Job there, collectable", left)
	}
}

// TestUnknownRelease: report and assert of a release that does not exist
// exit 2 naming it and the namespace.
func TestUnknownRelease(t *testing.T) {
	for _, cmd := range [][]string{{"report"}, {"assert", "-c", "completed"}, {"log"}} {
		o := kubectl(t, append(append([]string{"iter8"}, cmd...), "ghost", "-n", "nowhere")...)
		if o.Code != 2 || !strings.Contains(o.Stderr, "ghost") || !strings.Contains(o.Stderr, "nowhere") {
			t.Errorf("kubectl iter8 %s ghost: want exit 2 naming release and namespace: %s", cmd[0], o)
		}
	}
}

// TestSecretEnv: a user secret reaches the Job as env through secretEnv
// (secretKeyRef, resolved as a kubelet would), the notify task uses it, and
// it appears neither in the release, the spec, the result nor the log.
func TestSecretEnv(t *testing.T) {
	const ns, release, secret = "secret-env", "perf", "s3cr3t-T0KEN"
	restrictedNamespace(t, ns)
	app := sampleApp(t, "fixed:1ms")
	got := make(chan string, 10)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Method + " " + r.URL.RequestURI()
	}))
	t.Cleanup(receiver.Close)
	_, err := env.Clientset.CoreV1().Secrets(ns).Create(context.Background(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "hook"},
		StringData: map[string]string{"url": receiver.URL + "/hook?token=" + secret},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	install := helm(t, "install", release, chartDir, "-n", ns, "--timeout", "90s",
		"--set", "tasks={http,notify}", "--set", "http.url="+app.URL+"/", "--set", "http.numRequests=10",
		"--set", "notify.targets[0].webhook.urlFrom=HOOK_URL",
		"--set", "secretEnv[0].name=HOOK_URL", "--set", "secretEnv[0].secretName=hook", "--set", "secretEnv[0].key=url")
	if install.Code != 0 {
		t.Fatalf("helm install: %s\nJob log:\n%s", install, lastRun(t, ns, release).Output)
	}
	select {
	case req := <-got:
		if req != "POST /hook?token="+secret {
			t.Errorf("the webhook got %q", req)
		}
	default:
		t.Fatal("the webhook got nothing")
	}

	checkSecretAbsent(t, ns, release, secret, "hook")
}

// checkSecretAbsent fails the test when secret (plain, base64 or
// URL-encoded) appears in the release (helm get all, and Helm's release
// Secret decoded), in any Secret of ns but the user's own (userSecret), in
// the report, the stored log or the hook Pod's log.
func checkSecretAbsent(t *testing.T, ns, release, secret, userSecret string) {
	t.Helper()
	places := map[string]string{
		"helm get all": helm(t, "get", "all", release, "-n", ns).Stdout,
		"report":       kubectl(t, "iter8", "report", release, "-n", ns, "-o", "json").Stdout,
		"log":          kubectl(t, "iter8", "log", release, "-n", ns).Stdout,
		"Pod log":      lastRun(t, ns, release).Output,
	}
	secrets, err := env.Clientset.CoreV1().Secrets(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range secrets.Items {
		if s.Name == userSecret {
			continue
		}
		for k, v := range s.Data {
			places["Secret "+s.Name+" "+k] = string(v)
			if s.Type == "helm.sh/release.v1" {
				places["Secret "+s.Name+" "+k+" decoded"] = helmRelease(t, v)
			}
		}
	}
	if len(places) < 8 { // with the spec, result and Helm's release Secrets
		t.Fatalf("looked in %d places, want at least 8: %v", len(places), slices.Collect(maps.Keys(places)))
	}
	forms := []string{secret, base64.StdEncoding.EncodeToString([]byte(secret)), url.QueryEscape(secret)}
	for where, text := range places {
		for _, f := range forms {
			if strings.Contains(text, f) {
				t.Errorf("the secret appears in %s (as %q)", where, f)
			}
		}
	}
}

// TestMetricsSecret: the metrics task reads a backend with a bearer token
// from a Secret (secretEnv → secretKeyRef), and the token is nowhere in the
// release, its Secrets, the report or the logs.
func TestMetricsSecret(t *testing.T) {
	const ns, release, token = "metrics-secret", "perf", "t0k+en/with=chars&more"
	restrictedNamespace(t, ns)
	var authorized atomic.Int64
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token || r.URL.Path != "/api/v1/query" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		authorized.Add(1)
		fmt.Fprintf(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[%d,"42"]}]}}`, time.Now().Unix())
	}))
	t.Cleanup(backend.Close)
	_, err := env.Clientset.CoreV1().Secrets(ns).Create(context.Background(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "prom"}, StringData: map[string]string{"token": token},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	install := helm(t, "install", release, chartDir, "-n", ns, "--timeout", "90s",
		"--set", "tasks={metrics,assess}",
		"--set", "metrics.provider=prometheus", "--set", "metrics.endpoint="+backend.URL,
		"--set", "metrics.auth.bearerFrom=PROM_TOKEN",
		"--set", "metrics.queries[0].name=up", "--set", "metrics.queries[0].query=up",
		"--set", "secretEnv[0].name=PROM_TOKEN", "--set", "secretEnv[0].secretName=prom", "--set", "secretEnv[0].key=token",
		"--set", "assess.slos[0].metric=prometheus/up", "--set", "assess.slos[0].upper=100")
	if install.Code != 0 {
		t.Fatalf("helm install: %s\nJob log:\n%s", install, lastRun(t, ns, release).Output)
	}
	if authorized.Load() != 1 {
		t.Errorf("the backend answered %d authorized queries, want 1", authorized.Load())
	}
	if o := kubectl(t, "iter8", "report", release, "-n", ns, "-o", "json"); !strings.Contains(o.Stdout, `"prometheus/up"`) || !strings.Contains(o.Stdout, `"value": 42`) {
		t.Errorf("report: want prometheus/up = 42: %s", o)
	}
	checkSecretAbsent(t, ns, release, token, "prom")
}

// helmRelease decodes a release as Helm stores it in a Secret: base64 of
// gzipped JSON.
func helmRelease(t *testing.T, data []byte) string {
	t.Helper()
	zipped, err := base64.StdEncoding.DecodeString(string(data))
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(zipped))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return string(plain)
}

// TestLaunchFailOnSLOs: with failOnSLOs an unmet SLO fails the hook, and
// launch exits 1 (a verdict), as run does, with the report.
func TestLaunchFailOnSLOs(t *testing.T) {
	const ns = "fail-on-slos"
	restrictedNamespace(t, ns)
	app := sampleApp(t, "fixed:5ms")
	o := kubectl(t, "iter8", "launch", "perf", "-n", ns, "--set", "failOnSLOs=true",
		"--set", "tasks={http,assess}", "--set", "http.url="+app.URL+"/", "--set", "http.numRequests=10",
		"--set", "assess.slos[0].metric=http/latency-mean", "--set", "assess.slos[0].upper=1")
	if o.Code != 1 || !strings.Contains(o.Stdout, "STATUS: failed") || !strings.Contains(o.Stdout, "http/latency-mean") {
		t.Errorf("launch with an unmet SLO and failOnSLOs: want exit 1, the failed release and the report: %s", o)
	}
}
