package cluster_test

import (
	"context"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	"sigs.k8s.io/yaml"

	"github.com/iter8-tools/iter8/test/testbed"
)

// chartMeta is the version and appVersion in charts/<name>/Chart.yaml.
func chartMeta(t *testing.T, name string) (version, appVersion string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(filepath.Dir(chartDir), name, "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var meta struct{ Version, AppVersion string }
	if err := yaml.Unmarshal(b, &meta); err != nil || meta.Version == "" || meta.AppVersion == "" {
		t.Fatalf("charts/%s/Chart.yaml: version %q, appVersion %q, %v", name, meta.Version, meta.AppVersion, err)
	}
	return meta.Version, meta.AppVersion
}

// chartVersion is the version in charts/<name>/Chart.yaml.
func chartVersion(t *testing.T, name string) string {
	t.Helper()
	v, _ := chartMeta(t, name)
	return v
}

// TestOCICharts pushes the charts as make charts does to a registry on
// loopback (without TLS), then installs the experiment chart from there
// with plain helm and with kubectl iter8 launch -c oci://, and checks that
// a wrong reference exits 2 naming it, with nothing installed.
func TestOCICharts(t *testing.T) {
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(reg.Close)
	remote := "oci://" + strings.TrimPrefix(reg.URL, "http://") + "/iter8-tools/charts"
	iter8Ref, version := remote+"/iter8", chartVersion(t, "iter8")

	root, err := testbed.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	push := exec.CommandContext(ctx, "go", "run", "./scripts/dist", "-out", t.TempDir(), "-push", remote, "-plain-http", "charts")
	push.Dir = root
	// Not the machine's registry logins.
	push.Env = append(os.Environ(), "HELM_REGISTRY_CONFIG="+filepath.Join(t.TempDir(), "registry.json"), "HELM_CACHE_HOME="+t.TempDir())
	if o := testbed.Run(t, ctx, push); o.Code != 0 {
		t.Fatalf("make charts' push: %s", o)
	} else {
		for _, name := range []string{"iter8", "release", "abn"} {
			want := "pushed " + remote + "/" + name + ":" + chartVersion(t, name)
			if !strings.Contains(o.Stdout, want+"\n") {
				t.Errorf("push printed no %q: %s", want, o)
			}
		}
	}
	for _, name := range []string{"release", "abn"} {
		o := helm(t, "show", "chart", remote+"/"+name, "--version", chartVersion(t, name), "--plain-http")
		if o.Code != 0 || !strings.Contains(o.Stdout, "name: "+name+"\n") {
			t.Errorf("helm show chart of the pushed %s: %s", name, o)
		}
	}

	const ns, release = "oci", "perf"
	restrictedNamespace(t, ns)
	app := sampleApp(t, "fixed:1ms")
	values := sloValues(t, app.URL, "http/error-rate", 0)
	kubectlEnv := []string{"KUBECONFIG=" + env.Kubeconfig, "PATH=" + binDir + string(os.PathListSeparator) + os.Getenv("PATH"),
		"HELM_REGISTRY_CONFIG=" + filepath.Join(t.TempDir(), "registry.json"), "HELM_CACHE_HOME=" + t.TempDir()}
	kubectl := func(args ...string) outcome { return command(t, kubectlEnv, "kubectl", args...) }
	installs := []struct {
		name string
		run  func() outcome
	}{
		{"helm install", func() outcome {
			return helm(t, "install", release, iter8Ref, "--version", version, "--plain-http", "-n", ns, "-f", values)
		}},
		{"kubectl iter8 launch", func() outcome {
			return kubectl("iter8", "launch", release, "-c", iter8Ref, "--version", version, "--plain-http", "-n", ns, "-f", values)
		}},
	}
	for _, in := range installs {
		if o := in.run(); o.Code != 0 {
			t.Fatalf("%s from %s: %s", in.name, iter8Ref, o)
		}
		if o := helm(t, "get", "metadata", release, "-n", ns); o.Code != 0 || !strings.Contains(o.Stdout, "CHART: iter8\nVERSION: "+version+"\n") {
			t.Errorf("%s: the release's chart is not iter8 %s: %s", in.name, version, o)
		}
		if o := kubectl("iter8", "assert", release, "-n", ns, "-c", "completed", "-c", "nofailure", "-c", "slos"); o.Code != 0 {
			t.Errorf("%s: assert: %s", in.name, o)
		}
		if o := kubectl("iter8", "delete", release, "-n", ns); o.Code != 0 {
			t.Fatalf("delete after %s: %s", in.name, o)
		}
	}

	bad := []struct {
		name string
		args []string
		want string
	}{
		{"no such chart", []string{"-c", remote + "/nope", "--version", version, "--plain-http"}, remote + "/nope"},
		{"no such version", []string{"-c", iter8Ref, "--version", "9.9.9", "--plain-http"}, iter8Ref},
		{"no such registry", []string{"-c", "oci://127.0.0.1:1/charts/iter8", "--version", version, "--plain-http"}, "oci://127.0.0.1:1/charts/iter8"},
	}
	for _, b := range bad {
		o := kubectl(append([]string{"iter8", "launch", release, "-n", ns, "-f", values}, b.args...)...)
		if o.Code != 2 || !strings.Contains(o.Stderr, "chart "+b.want) {
			t.Errorf("%s: want exit 2 naming chart %s: %s", b.name, b.want, o)
		}
	}
	if o := helm(t, "list", "-q", "-a", "-n", ns); o.Code != 0 || strings.TrimSpace(o.Stdout) != "" {
		t.Errorf("releases left after the wrong references: %s", o)
	}
}
