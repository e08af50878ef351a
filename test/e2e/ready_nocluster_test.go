package e2e

import (
	"strings"
	"testing"
	"time"
)

// readyObjectSpec waits up to 20 s for a Deployment: long enough that a run
// which waits instead of failing at once shows in its duration.
const readyObjectSpec = `apiVersion: iter8.tools/v1
kind: Experiment
metadata:
  name: nocluster
spec:
  tasks:
  - task: ready
    with:
      timeout: 20s
      objects:
      - {group: apps, version: v1, resource: deployments, name: httpbin}
`

// unreachableKubeconfig names a cluster at a loopback port where nothing
// listens.
const unreachableKubeconfig = `apiVersion: v1
kind: Config
clusters:
- name: nowhere
  cluster: {server: "https://127.0.0.1:1"}
contexts:
- name: nowhere
  context: {cluster: nowhere, user: nobody, namespace: default}
current-context: nowhere
users:
- name: nobody
  user: {token: x}
`

// TestReadyObjectsWithoutACluster checks that a ready task naming
// Kubernetes objects fails at once, saying why, when no cluster is
// configured or the configured one does not answer, instead of waiting out
// its timeout and blaming the client's rate limiter.
func TestReadyObjectsWithoutACluster(t *testing.T) {
	cases := []struct {
		name string
		// kubeconfig, when set, is written and passed with --kubeconfig;
		// else the test's KUBECONFIG names a file that does not exist.
		kubeconfig string
		want       []string
	}{
		{name: "no kubeconfig", want: []string{"no cluster configured", "KUBECONFIG", "--kubeconfig"}},
		{name: "unreachable server", kubeconfig: unreachableKubeconfig, want: []string{"https://127.0.0.1:1", "unreachable"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, dir, "spec.yaml", readyObjectSpec)
			args := []string{"run", "-f", "spec.yaml"}
			if tc.kubeconfig != "" {
				args = append(args, "--kubeconfig", writeFile(t, dir, "kubeconfig", tc.kubeconfig))
			}
			start := time.Now()
			out := iter8(t, dir, args...)
			took := time.Since(start)
			checkNoCrash(t, out)
			if out.code != 2 {
				t.Errorf("exit %d, want 2\n%s", out.code, out)
			}
			// The binary's start and a refused connection take well under a
			// second; 10 s leaves room for a busy machine and is half the
			// task's timeout.
			if took > 10*time.Second {
				t.Errorf("took %v: the run waited instead of failing at once\n%s", took.Round(time.Millisecond), out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out.stderr, w) {
					t.Errorf("stderr lacks %q\n%s", w, out)
				}
			}
			if strings.Contains(out.stderr, "rate limiter") {
				t.Errorf("stderr blames the rate limiter\n%s", out)
			}
			r, ok, err := readResult(dir + "/spec.result.json")
			if err != nil || !ok || len(r.Tasks) != 1 || r.Tasks[0].State != "failed" {
				t.Errorf("result: want the ready task failed (ok %v, err %v, %+v)", ok, err, r)
			}
		})
	}
}
