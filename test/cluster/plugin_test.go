package cluster_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/yaml"

	"github.com/iter8-tools/iter8/test/testbed"
)

// multiKubeconfig writes a kubeconfig whose current context reaches
// nothing, so that a command works only when it is given the context
// "testbed" (or "testbed-ns", whose namespace is ns).
func multiKubeconfig(t *testing.T, ns string) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(env.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cur := cfg.Contexts[cfg.CurrentContext]
	cfg.Clusters["nowhere"] = &clientcmdapi.Cluster{Server: "https://127.0.0.1:1"}
	cfg.Contexts = map[string]*clientcmdapi.Context{
		"broken":     {Cluster: "nowhere", AuthInfo: cur.AuthInfo},
		"testbed":    {Cluster: cur.Cluster, AuthInfo: cur.AuthInfo},
		"testbed-ns": {Cluster: cur.Cluster, AuthInfo: cur.AuthInfo, Namespace: ns},
	}
	cfg.CurrentContext = "broken"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// command runs name with args and the test's environment plus extra.
func command(t testing.TB, extra []string, name string, args ...string) outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), extra...)
	return testbed.Run(t, ctx, cmd)
}

// checkoutCopy copies what the plugin needs of this checkout (the module,
// the A/B/n SDK's module that go.mod replaces with ./abn, plugin.yaml and
// its install hook) into a fresh folder, as a user's clone.
func checkoutCopy(t *testing.T) string {
	t.Helper()
	root, err := testbed.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "iter8")
	for _, dir := range []string{"cmd", "pkg", "charts", "scripts", "abn"} {
		if err := os.CopyFS(filepath.Join(dst, dir), os.DirFS(filepath.Join(root, dir))); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"go.mod", "go.sum", "plugin.yaml"} {
		data, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// experimentValues are the values of a short http experiment with an SLO
// against app.
func experimentValues(appURL string) []string {
	return []string{
		"--set", "tasks={http,assess}", "--set", "http.url=" + appURL + "/",
		"--set", "http.numRequests=20", "--set", "http.connections=2",
		"--set", "assess.slos[0].metric=http/error-rate", "--set", "assess.slos[0].upper=0",
	}
}

// helms are the test bed's two Helms: the plugin and the charts are
// tested with each.
func helms() []struct{ name, bin string } {
	return []struct{ name, bin string }{{"helm3", env.HelmBin}, {"helm4", env.Helm4Bin}}
}

// TestHelmPlugin installs the plugin from a copy of the checkout into an
// empty HELM_PLUGINS with each built helm (3 and 4), then runs an
// experiment's whole life through `helm iter8`: first with -n and
// --kube-context given to helm, then with HELM_NAMESPACE and
// HELM_KUBECONTEXT only.
func TestHelmPlugin(t *testing.T) {
	app := sampleApp(t, "fixed:1ms")
	kubeconfig := multiKubeconfig(t, "")
	checkout := checkoutCopy(t)
	for _, h := range helms() {
		t.Run(h.name, func(t *testing.T) {
			helmEnv := append(pluginHomes(t), "KUBECONFIG="+kubeconfig)
			helmCmd := func(extra []string, args ...string) outcome {
				t.Helper()
				return command(t, append(append([]string(nil), helmEnv...), extra...), h.bin, args...)
			}
			if o := helmCmd(nil, "plugin", "install", checkout); o.Code != 0 {
				t.Fatalf("helm plugin install: %s", o)
			}
			if o := helmCmd(nil, "plugin", "list"); !strings.Contains(o.Stdout, "iter8") || !strings.Contains(o.Stdout, "0.1.0") {
				t.Errorf("helm plugin list: %s", o)
			}
			if o := helmCmd(nil, "iter8", "version", "--short"); strings.TrimSpace(o.Stdout) != "v0.1.0" {
				t.Errorf("helm iter8 version --short: want the plugin's version v0.1.0: %s", o)
			}
			// The hook again (as `helm plugin update` runs it): harmless.
			hook := command(t, append(helmEnv, "HELM_PLUGIN_DIR="+checkout), "sh", filepath.Join(checkout, "scripts", "helm-plugin-install.sh"))
			if hook.Code != 0 {
				t.Errorf("install hook, second run: %s", hook)
			}
			pluginLife(t, h.name, helmCmd, app.URL)
		})
	}
}

// pluginHomes is the test bed's helm environment with an empty plugin
// folder and cache of the test's own (Helm 3 cannot extract an archive
// into a cache folder an earlier install of the same URL left). Helm 4
// (4.3.1) installs plugins into $HELM_DATA_HOME/plugins whatever
// HELM_PLUGINS says, and loads them from HELM_PLUGINS: the two must agree.
func pluginHomes(t *testing.T) []string {
	data := t.TempDir()
	return append(env.HelmEnv(), "HELM_DATA_HOME="+data, "HELM_PLUGINS="+filepath.Join(data, "plugins"), "HELM_CACHE_HOME="+t.TempDir())
}

// pluginLife runs an experiment's life through `helm iter8` (helmCmd runs
// helm with extra environment): with -n and --kube-context, then with
// HELM_NAMESPACE and HELM_KUBECONTEXT only, each in a namespace of its own
// named after prefix.
func pluginLife(t *testing.T, prefix string, helmCmd func(extra []string, args ...string) outcome, appURL string) {
	for _, tc := range []struct {
		name  string
		ns    string
		flags []string
		env   []string
	}{
		{"flags", prefix + "-flags", []string{"-n", prefix + "-flags", "--kube-context", "testbed"}, nil},
		{"environment", prefix + "-env", nil, []string{"HELM_NAMESPACE=" + prefix + "-env", "HELM_KUBECONTEXT=testbed", "HELM_DRIVER=configmap", "HELM_DEBUG=true"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			restrictedNamespace(t, tc.ns)
			iter8 := func(args ...string) outcome {
				t.Helper()
				return helmCmd(tc.env, append(append([]string{"iter8"}, args...), tc.flags...)...)
			}
			o := iter8(append([]string{"launch", "perf"}, experimentValues(appURL)...)...)
			if o.Code != 0 || !strings.Contains(o.Stdout, "STATUS: deployed") || !strings.Contains(o.Stdout, "NAMESPACE: "+tc.ns) {
				t.Fatalf("helm iter8 launch: %s", o)
			}
			if tc.env != nil {
				// HELM_DRIVER: the release is kept in a ConfigMap; HELM_DEBUG:
				// Helm's debug lines.
				cms, err := env.Clientset.CoreV1().ConfigMaps(tc.ns).List(context.Background(), metav1.ListOptions{LabelSelector: "owner=helm,name=perf"})
				if err != nil || len(cms.Items) != 1 {
					t.Errorf("release ConfigMaps with HELM_DRIVER=configmap: %d, %v; want 1", len(cms.Items), err)
				}
				if !strings.Contains(o.Stderr, "helm: ") {
					t.Errorf("HELM_DEBUG=true: no debug lines from helm on stderr: %s", o)
				}
			}
			if o := iter8("report", "perf"); o.Code != 0 || !strings.Contains(o.Stdout, "http/error-rate") {
				t.Errorf("helm iter8 report: %s", o)
			}
			if o := iter8("assert", "perf", "-c", "completed,nofailure,slos"); o.Code != 0 {
				t.Errorf("helm iter8 assert: %s", o)
			}
			if o := iter8("list"); o.Code != 0 || !strings.Contains(o.Stdout, "perf") {
				t.Errorf("helm iter8 list: %s", o)
			}
			if o := iter8("delete", "perf"); o.Code != 0 || !strings.Contains(o.Stdout, "removed release/perf") {
				t.Errorf("helm iter8 delete: %s", o)
			}
			checkEmpty(t, tc.ns)
		})
	}
}

// checkEmpty fails the test unless namespace ns holds no object at all.
func checkEmpty(t *testing.T, ns string) {
	t.Helper()
	objs, err := env.Objects(context.Background(), ns)
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 0 {
		var ids []string
		for _, o := range objs {
			ids = append(ids, o.ID)
		}
		t.Errorf("after delete, namespace %s holds %v; want nothing", ns, ids)
	}
}

// TestKubectlPlugin runs an experiment's life through the machine's
// kubectl with kubectl-iter8 on PATH: with -n and --context, then with the
// namespace of the kubeconfig's context.
func TestKubectlPlugin(t *testing.T) {
	app := sampleApp(t, "fixed:1ms")
	kubeconfig := multiKubeconfig(t, "kubectl-ctx")
	extra := []string{
		"KUBECONFIG=" + kubeconfig,
		"KUBECACHEDIR=" + filepath.Join(t.TempDir(), "cache"),
		"PATH=" + binDir + string(os.PathListSeparator) + os.Getenv("PATH"),
	}
	if o := command(t, extra, "kubectl", "plugin", "list"); !strings.Contains(o.Stdout, filepath.Join(binDir, "kubectl-iter8")) {
		t.Errorf("kubectl plugin list does not show kubectl-iter8: %s", o)
	}
	for _, tc := range []struct {
		name, ns string
		flags    []string
	}{
		{"flags", "kubectl-flags", []string{"-n", "kubectl-flags", "--context", "testbed"}},
		{"context namespace", "kubectl-ctx", []string{"--context", "testbed-ns"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			restrictedNamespace(t, tc.ns)
			iter8 := func(args ...string) outcome {
				t.Helper()
				return command(t, extra, "kubectl", append(append([]string{"iter8"}, args...), tc.flags...)...)
			}
			o := iter8(append([]string{"launch", "perf"}, experimentValues(app.URL)...)...)
			if o.Code != 0 || !strings.Contains(o.Stdout, "NAMESPACE: "+tc.ns) {
				t.Fatalf("kubectl iter8 launch: %s", o)
			}
			if o := iter8("report", "perf", "-o", "json"); o.Code != 0 || !strings.Contains(o.Stdout, `"revision": 1`) {
				t.Errorf("kubectl iter8 report: %s", o)
			}
			if o := iter8("assert", "perf", "-c", "completed,nofailure,slos"); o.Code != 0 {
				t.Errorf("kubectl iter8 assert: %s", o)
			}
			// A second launch upgrades the release: revision 2.
			if o := iter8(append([]string{"launch", "perf"}, experimentValues(app.URL)...)...); o.Code != 0 || !strings.Contains(o.Stdout, "REVISION: 2") {
				t.Errorf("kubectl iter8 launch again: %s", o)
			}
			if o := iter8("list", "-o", "json"); o.Code != 0 || !strings.Contains(o.Stdout, `"revision": 2`) {
				t.Errorf("kubectl iter8 list: %s", o)
			}
			if o := iter8("delete", "perf"); o.Code != 0 {
				t.Errorf("kubectl iter8 delete: %s", o)
			}
			checkEmpty(t, tc.ns)
			if o := iter8("delete", "perf"); o.Code != 2 || !strings.Contains(o.Stderr, "release perf not found in namespace "+tc.ns) {
				t.Errorf("kubectl iter8 delete of a deleted release: want exit 2 naming it: %s", o)
			}
		})
	}
}

// sameDocuments: the YAML documents of a and b are equal as data (Helm 4
// keeps a release's manifest with other blank lines than Helm 3).
func sameDocuments(t *testing.T, a, b string) bool {
	t.Helper()
	docs := func(s string) []any {
		var out []any
		for _, d := range regexp.MustCompile(`(?m)^---[ \t]*$`).Split(s, -1) {
			if strings.TrimSpace(d) == "" {
				continue
			}
			var v any
			if err := yaml.Unmarshal([]byte(d), &v); err != nil {
				t.Fatalf("%v in\n%s", err, d)
			}
			out = append(out, v)
		}
		return out
	}
	return reflect.DeepEqual(docs(a), docs(b))
}

// sloValues writes the values of a 10-request http experiment against
// appURL with the SLO metric <= upper, and returns the file's path.
func sloValues(t *testing.T, appURL, metric string, upper float64) string {
	t.Helper()
	values := filepath.Join(t.TempDir(), "values.yaml")
	content := fmt.Sprintf("tasks: [http, assess]\nhttp:\n  url: %s/\n  numRequests: 10\nassess:\n  slos:\n  - metric: %s\n    upper: %v\n", appURL, metric, upper)
	if err := os.WriteFile(values, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return values
}

// TestLaunchIsPlainHelm: `helm iter8 launch`, `kubectl iter8 launch` and
// plain `helm install` (Helm 3's and Helm 4's) of the same values make the
// same release.
func TestLaunchIsPlainHelm(t *testing.T) {
	const ns, release = "same", "perf"
	restrictedNamespace(t, ns)
	app := sampleApp(t, "fixed:1ms")
	values := sloValues(t, app.URL, "http/latency-p99", 100)
	kubectlEnv := []string{"KUBECONFIG=" + env.Kubeconfig, "PATH=" + binDir + string(os.PathListSeparator) + os.Getenv("PATH")}
	helmPluginEnv := append(env.HelmEnv(), "HELM_PLUGINS="+t.TempDir())
	if o := command(t, helmPluginEnv, env.HelmBin, "plugin", "install", checkoutCopy(t)); o.Code != 0 {
		t.Fatalf("helm plugin install: %s", o)
	}

	releaseOf := func() map[string]string {
		t.Helper()
		got := map[string]string{}
		for _, what := range [][]string{{"manifest"}, {"hooks"}, {"values", "--all"}} {
			o := helm(t, append(append([]string{"get"}, what...), release, "-n", ns)...)
			if o.Code != 0 {
				t.Fatalf("helm get %v: %s", what, o)
			}
			got[what[0]] = o.Stdout
		}
		return got
	}
	install := []struct {
		name string
		run  func() outcome
	}{
		{"helm install", func() outcome {
			return helm(t, "install", release, chartDir, "-n", ns, "-f", values)
		}},
		{"Helm 4's helm install", func() outcome {
			ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
			defer cancel()
			return testbed.Run(t, ctx, env.HelmAt(ctx, env.Helm4Bin, "install", release, chartDir, "-n", ns, "-f", values))
		}},
		{"helm iter8 launch", func() outcome {
			return command(t, helmPluginEnv, env.HelmBin, "--kubeconfig", env.Kubeconfig, "iter8", "launch", release, "-n", ns, "-f", values)
		}},
		{"kubectl iter8 launch", func() outcome {
			return command(t, kubectlEnv, "kubectl", "iter8", "launch", release, "-n", ns, "-f", values)
		}},
	}
	var first map[string]string
	for _, in := range install {
		if o := in.run(); o.Code != 0 {
			t.Fatalf("%s: %s", in.name, o)
		}
		got := releaseOf()
		if first == nil {
			first = got
		} else {
			for k, want := range first {
				if !sameDocuments(t, got[k], want) {
					t.Errorf("%s: helm get %s differs from plain helm install's:\n%s\nwant:\n%s", in.name, k, got[k], want)
				}
			}
		}
		if o := command(t, kubectlEnv, "kubectl", "iter8", "delete", release, "-n", ns); o.Code != 0 {
			t.Fatalf("delete after %s: %s", in.name, o)
		}
	}
}
