package cluster_test

import (
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestJobPermissions: what the Job's ServiceAccount may do, as kubectl
// lists it, equals testdata/can-i-list.golden (go test ./test/cluster
// -run JobPermissions -update rewrites it); other Secrets are denied.
func TestJobPermissions(t *testing.T) {
	const ns, release = "rbac", "perf"
	namespace(t, ns)
	helmInstall(t, ns, release, "tasks={assess}")
	as := "--as=system:serviceaccount:" + ns + ":" + release + "-iter8"

	o := kubectl(t, "auth", "can-i", "--list", "-n", ns, as)
	if o.Code != 0 {
		t.Fatalf("can-i --list: %s", o)
	}
	// Sorted lines: kubectl does not promise an order of rules.
	lines := strings.Split(strings.TrimRight(o.Stdout, "\n"), "\n")
	slices.Sort(lines[1:])
	got := strings.Join(lines, "\n") + "\n"
	golden := filepath.Join("testdata", "can-i-list.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (rewrite it with -update)", err)
	}
	if got != string(want) {
		t.Errorf("kubectl auth can-i --list as the Job's ServiceAccount (lines sorted):\n%s\nwant (%s):\n%s", got, golden, want)
	}

	for _, c := range []struct {
		verb, object, ns string
		yes              bool
	}{
		{"get", "secret/perf-spec", ns, true},
		{"update", "secret/perf-result", ns, true},
		{"patch", "jobs.batch/perf-iter8-run", ns, true},
		{"get", "secret/other", ns, false},
		{"get", "secret/perf-result", "default", false},
		{"list", "secrets", ns, false},
		{"update", "secret/perf-spec", ns, false},
		{"patch", "jobs.batch/other-iter8-run", ns, false},
	} {
		o := kubectl(t, "auth", "can-i", c.verb, c.object, "-n", c.ns, as)
		if got := strings.TrimSpace(o.Stdout) == "yes"; got != c.yes || (o.Code == 0) != c.yes {
			t.Errorf("can-i %s %s -n %s: %s; want yes=%v", c.verb, c.object, c.ns, o, c.yes)
		}
	}
}

// TestForbiddenFailsTheRun: with the Role's rule for the result Secret
// removed, the hook run fails with a Forbidden error that names the Secret,
// and helm reports the failed hook.
func TestForbiddenFailsTheRun(t *testing.T) {
	const ns, release = "forbidden", "perf"
	restrictedNamespace(t, ns)
	chart := copyChart(t)
	rbac := filepath.Join(chart, "templates", "rbac.yaml")
	data, err := os.ReadFile(rbac)
	if err != nil {
		t.Fatal(err)
	}
	rule := `- apiGroups: [""]
  resources: ["secrets"]
  resourceNames: [{{ include "iter8.resultSecret" . | quote }}]
  verbs: ["get", "update"]
`
	if !strings.Contains(string(data), rule) {
		t.Fatalf("%s has no rule for the result Secret:\n%s", rbac, data)
	}
	if err := os.WriteFile(rbac, []byte(strings.Replace(string(data), rule, "", 1)), 0o644); err != nil {
		t.Fatal(err)
	}

	install := helm(t, "install", release, chart, "-n", ns, "--timeout", "90s", "--set", "tasks={assess}")
	if install.Code == 0 || !strings.Contains(install.Stderr, "post-install") {
		t.Errorf("helm install without the result rule: want a failed post-install hook: %s", install)
	}
	r := lastRun(t, ns, release)
	want := `secrets "perf-result" is forbidden: User "system:serviceaccount:forbidden:perf-iter8" cannot get resource "secrets"`
	if r.ExitCode != 2 || !strings.Contains(r.Output, want) {
		t.Errorf("hook run: exit %d, want 2 and %q in its log:\n%s", r.ExitCode, want, r.Output)
	}
	// No result, so log turns to the Pod's log, which only a kubelet serves
	// (the test bed's API server answers with an empty one).
	o := kubectl(t, "iter8", "log", release, "-n", ns)
	if o.Code != 2 || !strings.Contains(o.Stderr, "no result") || !strings.Contains(o.Stderr, "log of pod "+r.Pod) {
		t.Errorf("kubectl iter8 log without a result: want exit 2 naming the missing result and the Pod tried: %s", o)
	}
}

// copyChart copies charts/iter8 into a temporary folder.
func copyChart(t *testing.T) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "iter8")
	if err := os.CopyFS(dst, os.DirFS(chartDir)); err != nil {
		t.Fatal(err)
	}
	return dst
}
