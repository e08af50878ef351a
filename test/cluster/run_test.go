// Package cluster_test runs experiments the way the chart's Job does, against
// the test bed's API server: the spec comes from the release's Secret (put
// there by the real helm), the result goes to the release's result Secret,
// and report, assert, log and list read it back through both front-ends.
// Here the run is started in-process with the same arguments the Job's
// command has, so that both front-ends are covered; journey_test.go runs the
// real hook Job through the node harness.
package cluster_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/iter8-tools/iter8/pkg/cli"
	"github.com/iter8-tools/iter8/pkg/store"
)

// iter8 runs a front-end's command tree in-process with the test bed's
// kubeconfig.
func iter8(t *testing.T, fe cli.Frontend, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := cli.NewRootCmd(fe, cli.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	root.SetArgs(append(args, "--kubeconfig", env.Kubeconfig))
	err := root.ExecuteContext(context.Background())
	if err != nil {
		errOut.WriteString("Error: " + err.Error() + "\n")
	}
	return out.String(), errOut.String(), cli.ExitCode(err)
}

func helmInstall(t testing.TB, ns, release string, set ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := []string{"install", release, chartDir, "-n", ns, "--no-hooks"}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	if out, err := env.Helm(ctx, args...).CombinedOutput(); err != nil {
		t.Fatalf("helm %v: %v\n%s", args, err, out)
	}
}

func namespace(t testing.TB, name string) {
	t.Helper()
	createNamespace(t, name, nil)
}

// createNamespace makes a namespace with labels.
func createNamespace(t testing.TB, name string, labels map[string]string) {
	t.Helper()
	_, err := env.Clientset.CoreV1().Namespaces().Create(context.Background(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

func TestRunInClusterAndReadBack(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	t.Cleanup(srv.Close)
	namespace(t, "exp")
	helmInstall(t, "exp", "perf",
		"tasks={http,assess}", "http.url="+srv.URL+"/", "http.numRequests=20", "http.connections=2",
		"assess.slos[0].metric=http/error-rate", "assess.slos[0].upper=0")

	// What the Job runs, revision by revision.
	for rev := 1; rev <= 2; rev++ {
		if _, stderr, code := iter8(t, cli.Kubectl(), "run", "--namespace", "exp", "--experiment", "perf", "--revision", fmt.Sprint(rev)); code != 0 {
			t.Fatalf("run revision %d: exit %d\n%s", rev, code, stderr)
		}
	}
	if got := hits.Load(); got < 40 {
		t.Errorf("the target got %d requests, want at least 2 runs of 20", got)
	}

	// The result Secret holds both revisions.
	s := &store.Secrets{Client: env.Clientset, Namespace: "exp", Release: "perf"}
	all, err := s.ReadResults(context.Background())
	if err != nil || len(all) != 2 || all[0].Revision != 1 || all[1].Revision != 2 {
		t.Fatalf("results by revision = %d entries, %v; want revisions 1 and 2", len(all), err)
	}

	for _, fe := range []cli.Frontend{cli.Kubectl(), cli.Helm()} {
		t.Run(fe.DisplayName, func(t *testing.T) {
			stdout, stderr, code := iter8(t, fe, "report", "perf", "-n", "exp", "-o", "json")
			if code != 0 {
				t.Fatalf("report: exit %d\n%s", code, stderr)
			}
			var res struct {
				Revision int `json:"revision"`
				Versions []struct {
					Metrics map[string]struct{ Value float64 } `json:"metrics"`
				} `json:"versions"`
				SLOs []struct{ Satisfied bool } `json:"slos"`
			}
			if err := json.Unmarshal([]byte(stdout), &res); err != nil {
				t.Fatalf("report -o json: %v\n%s", err, stdout)
			}
			if res.Revision != 2 || res.Versions[0].Metrics["http/request-count"].Value != 20 || len(res.SLOs) != 1 || !res.SLOs[0].Satisfied {
				t.Errorf("report = %+v; want revision 2, 20 requests, the SLO satisfied", res)
			}
			if _, stderr, code := iter8(t, fe, "assert", "perf", "-n", "exp", "-c", "completed,nofailure,slos"); code != 0 {
				t.Errorf("assert: exit %d\n%s", code, stderr)
			}
			if stdout, _, code := iter8(t, fe, "log", "perf", "-n", "exp"); code != 0 || !strings.Contains(stdout, "task succeeded") {
				t.Errorf("log: exit %d\n%s", code, stdout)
			}
		})
	}

	stdout, stderr, code := iter8(t, cli.Kubectl(), "list", "-A", "-o", "json")
	if code != 0 {
		t.Fatalf("list -A: exit %d\n%s", code, stderr)
	}
	var items []struct {
		Namespace, Experiment, State, SLOs string
		Revision                           int
	}
	if err := json.Unmarshal([]byte(stdout), &items); err != nil {
		t.Fatalf("list -o json: %v\n%s", err, stdout)
	}
	found := false
	for _, it := range items {
		if it.Namespace == "exp" && it.Experiment == "perf" {
			found = true
			if it.Revision != 2 || it.State != "completed" || it.SLOs != "satisfied" {
				t.Errorf("list item = %+v; want revision 2, completed, satisfied", it)
			}
		}
	}
	if !found {
		t.Errorf("list -A does not show exp/perf:\n%s", stdout)
	}
}

func TestRunInClusterErrors(t *testing.T) {
	namespace(t, "errs")
	// No release at all: the error names the experiment, namespace and Secret.
	_, stderr, code := iter8(t, cli.Kubectl(), "run", "-n", "errs", "--experiment", "ghost")
	if code != 2 || !strings.Contains(stderr, "ghost-spec") || !strings.Contains(stderr, "errs") {
		t.Errorf("run of a missing release: exit %d\n%s", code, stderr)
	}
	_, stderr, code = iter8(t, cli.Kubectl(), "report", "ghost", "-n", "errs")
	if code != 2 || !strings.Contains(stderr, "ghost-result") {
		t.Errorf("report of a missing release: exit %d\n%s", code, stderr)
	}
	// A release whose target is down: the run fails (exit 2) and the failure
	// is in the stored result.
	helmInstall(t, "errs", "down", "tasks={http}", "http.url=http://127.0.0.1:1/", "http.numRequests=5")
	if _, stderr, code := iter8(t, cli.Kubectl(), "run", "-n", "errs", "--experiment", "down"); code != 2 {
		t.Errorf("run against a closed port: exit %d, want 2\n%s", code, stderr)
	}
	stdout, _, code := iter8(t, cli.Kubectl(), "assert", "down", "-n", "errs", "-c", "completed,nofailure")
	if code != 1 || !strings.Contains(stdout, "connection refused") {
		t.Errorf("assert of the failed run: exit %d, want 1 naming the failure\n%s", code, stdout)
	}
}
