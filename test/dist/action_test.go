package dist

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/iter8-tools/iter8/test/sampleapp"
	"github.com/iter8-tools/iter8/test/testbed"
)

// actionlint is the linter of GitHub workflows the Action is checked with.
const actionlint = "github.com/rhysd/actionlint/cmd/actionlint@v1.7.12"

// runActionlint runs actionlint in the project folder dir.
func runActionlint(t *testing.T, dir string) testbed.Outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "run", actionlint, "-no-color")
	cmd.Dir = dir
	return testbed.Run(t, ctx, cmd)
}

// TestActionLint: the example workflows in docs/action pass actionlint
// with `uses:` pointing at the action in this checkout, so that their
// inputs and outputs are checked against action.yml; a workflow giving an
// input the action lacks does not.
func TestActionLint(t *testing.T) {
	root := repoRoot(t)
	_, version := release(t)
	project := t.TempDir()
	if err := os.CopyFS(filepath.Join(project, "action"), os.DirFS(filepath.Join(root, "action"))); err != nil {
		t.Fatal(err)
	}
	// actionlint lints the workflows of the git repository it runs in.
	if o := gitInit(t, project); o.Code != 0 {
		t.Fatalf("git init: %s", o)
	}
	workflows := filepath.Join(project, ".github", "workflows")
	if err := os.MkdirAll(workflows, 0o755); err != nil {
		t.Fatal(err)
	}
	examples, err := filepath.Glob(filepath.Join(root, "docs", "action", "*.yml"))
	if err != nil || len(examples) < 2 {
		t.Fatalf("docs/action holds %v (%v), want the example workflows", examples, err)
	}
	pinned := "uses: iter8-tools/iter8/action@" + version
	for _, ex := range examples {
		data, err := os.ReadFile(ex)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(data, []byte(pinned)) {
			t.Errorf("%s: no %q (the release's action)", ex, pinned)
		}
		local := bytes.ReplaceAll(data, []byte(pinned), []byte("uses: ./action"))
		if err := os.WriteFile(filepath.Join(workflows, filepath.Base(ex)), local, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if o := runActionlint(t, project); o.Code != 0 {
		t.Fatalf("actionlint: %s", o)
	}

	bad := `on: push
jobs:
  iter8:
    runs-on: ubuntu-latest
    steps:
      - uses: ./action
        with:
          valuez: values.yaml
`
	if err := os.WriteFile(filepath.Join(workflows, "bad.yml"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	if o := runActionlint(t, project); o.Code == 0 || !strings.Contains(o.Stdout, "valuez") {
		t.Errorf("actionlint passed a workflow with an input the action lacks: %s", o)
	}
}

func gitInit(t *testing.T, dir string) testbed.Outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", "init", "-q", dir)
	return testbed.Run(t, ctx, cmd)
}

// TestActionVersion: the action installs the release it belongs to by default.
func TestActionVersion(t *testing.T) {
	_, version := release(t)
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "action", "action.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var a struct {
		Inputs map[string]struct{ Default string }
	}
	if err := yaml.Unmarshal(data, &a); err != nil {
		t.Fatal(err)
	}
	if got := a.Inputs["version"].Default; got != version {
		t.Errorf("action.yml: input version defaults to %q, want the release %s", got, version)
	}
}

// actionScript runs action/<name> with env (and HOME, PATH) only.
func actionScript(t *testing.T, name string, env ...string) testbed.Outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(repoRoot(t), "action", name))
	cmd.Env = append([]string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH")}, env...)
	return testbed.Run(t, ctx, cmd)
}

// serveRelease serves the files of dir as a release's download folder
// <url>/<version>/<file>.
func serveRelease(t *testing.T, version, dir string) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/"+version+"/", http.StripPrefix("/"+version+"/", http.FileServer(http.Dir(dir))))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

// installAction runs the action's install script against the release at
// url into a new folder and returns the outcome and the folder.
func installAction(t *testing.T, version, url string, env ...string) (testbed.Outcome, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "bin")
	path := filepath.Join(t.TempDir(), "github_path")
	o := actionScript(t, "install.sh", append([]string{"ITER8_VERSION=" + version, "ITER8_DOWNLOAD_URL=" + url,
		"ITER8_INSTALL_DIR=" + dir, "GITHUB_PATH=" + path}, env...)...)
	if o.Code == 0 {
		if got, err := os.ReadFile(path); err != nil || string(got) != dir+"\n" {
			t.Errorf("GITHUB_PATH holds %q (%v), want %s", got, err, dir)
		}
	}
	return o, dir
}

// TestActionInstall: the action's install script installs kubectl-iter8
// from the archives make dist builds, served on 127.0.0.1, after checking
// the archive's sha256; a sha256 that does not match (given, or in the
// release's sha256sums.txt) installs nothing and exits 1.
func TestActionInstall(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the archives built here are linux's")
	}
	a := build(t)
	_, version := release(t)
	url := serveRelease(t, version, a.archives)

	o, dir := installAction(t, version, url)
	if o.Code != 0 || !strings.Contains(o.Stdout, "installed "+version) {
		t.Fatalf("install: %s", o)
	}
	if out := runVersion(t, filepath.Join(dir, "kubectl-iter8"), "version", "--short"); out != version+"\n" {
		t.Errorf("installed kubectl-iter8: version --short printed %q", out)
	}

	// A release whose sha256sums.txt does not match its archive.
	tampered := t.TempDir()
	archive := "kubectl-iter8_" + version + "_linux_" + runtime.GOARCH + ".tar.gz"
	data, err := os.ReadFile(filepath.Join(a.archives, archive))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tampered, archive), append(data, 0), 0o644); err != nil {
		t.Fatal(err)
	}
	sums, err := os.ReadFile(filepath.Join(a.archives, "sha256sums.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tampered, "sha256sums.txt"), sums, 0o644); err != nil {
		t.Fatal(err)
	}
	bad := []struct {
		name string
		url  string
		env  []string
		want string
	}{
		{"archive changed after its sum", serveRelease(t, version, tampered), nil, "sha256 mismatch for " + archive},
		{"given sha256 differs", url, []string{"ITER8_SHA256=" + strings.Repeat("0", 64)}, "sha256 mismatch for " + archive},
		{"sha256 not hex", url, []string{"ITER8_SHA256=abc"}, `sha256 "abc": want 64 lowercase hex digits`},
		{"version without v", url, nil, `version "` + version[1:] + `": want a release tag`},
		{"no such release", url + "/nowhere", nil, "download " + url + "/nowhere/" + version + "/" + archive + " failed"},
	}
	for _, b := range bad {
		v := version
		if b.name == "version without v" {
			v = version[1:]
		}
		o, dir := installAction(t, v, b.url, b.env...)
		if o.Code != 1 || !strings.Contains(o.Stderr, b.want) {
			t.Errorf("%s: want exit 1 saying %q: %s", b.name, b.want, o)
		}
		if _, err := os.Stat(filepath.Join(dir, "kubectl-iter8")); err == nil {
			t.Errorf("%s: kubectl-iter8 was installed", b.name)
		}
	}
}

// TestActionRun: the action's run step, with the kubectl-iter8 its install
// step put on PATH, runs a local experiment against the sample app and
// gives the verdict as an output and the report as the job summary: pass
// when the SLOs hold; fail (exit 1, or 0 with fail-on-verdict false) when
// one does not; error (exit 2) for a bad mode.
func TestActionRun(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the archives built here are linux's")
	}
	a := build(t)
	_, version := release(t)
	o, dir := installAction(t, version, serveRelease(t, version, a.archives))
	if o.Code != 0 {
		t.Fatalf("install: %s", o)
	}
	lat, err := sampleapp.ParseLatency("fixed:1ms")
	if err != nil {
		t.Fatal(err)
	}
	app := httptest.NewServer(sampleapp.NewHandler(sampleapp.Options{Version: "v1", Latency: lat}))
	t.Cleanup(app.Close)
	set := func(upper string) string {
		return "tasks={http,assess}\nhttp.url=" + app.URL + "/\nhttp.numRequests=40\n" +
			"  assess.slos[0].metric=http/latency-p99\nassess.slos[0].upper=" + upper + "\n"
	}
	for _, tc := range []struct {
		name     string
		env      []string
		code     int
		verdict  string
		summary  string
		reported bool
	}{
		{"SLO met", []string{"ITER8_SET=" + set("1000")}, 0, "pass", "## Iter8: pass", true},
		{"SLO missed", []string{"ITER8_SET=" + set("0.000001")}, 1, "fail", "## Iter8: fail", true},
		{"SLO missed, not failing the step", []string{"ITER8_SET=" + set("0.000001"), "ITER8_FAIL_ON_VERDICT=false"}, 0, "fail", "## Iter8: fail", true},
		{"bad mode", []string{"ITER8_MODE=remote"}, 2, "error", `mode "remote": want local or assert`, false},
		{"no values file", []string{"ITER8_VALUES=/nonexistent/values.yaml"}, 2, "error", `values "/nonexistent/values.yaml": no such file`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmp := t.TempDir()
			output, summary := filepath.Join(tmp, "output"), filepath.Join(tmp, "summary.md")
			env := append([]string{"RUNNER_TEMP=" + tmp, "GITHUB_OUTPUT=" + output, "GITHUB_STEP_SUMMARY=" + summary,
				"PATH=" + dir + string(os.PathListSeparator) + os.Getenv("PATH")}, tc.env...)
			o := actionScript(t, "run.sh", env...)
			if o.Code != tc.code {
				t.Fatalf("exit %d, want %d: %s", o.Code, tc.code, o)
			}
			outputs := readOutputs(t, output)
			if outputs["verdict"] != tc.verdict {
				t.Errorf("verdict %q, want %q (outputs %v)", outputs["verdict"], tc.verdict, outputs)
			}
			if s, err := os.ReadFile(summary); err != nil || !strings.Contains(string(s), tc.summary) {
				t.Errorf("job summary %q (%v), want %q in it", s, err, tc.summary)
			} else if tc.reported && !strings.Contains(string(s), "http/latency-p99") {
				t.Errorf("job summary without the report: %s", s)
			}
			if !tc.reported {
				return
			}
			for k, want := range map[string]string{"report": "<html", "result": `"tasks"`} {
				if data, err := os.ReadFile(outputs[k]); err != nil || !bytes.Contains(data, []byte(want)) {
					t.Errorf("output %s=%q: %v, or no %s in it", k, outputs[k], err, want)
				}
			}
		})
	}
}

// readOutputs reads a GITHUB_OUTPUT file of key=value lines.
func readOutputs(t *testing.T, path string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("GITHUB_OUTPUT line %q is not key=value", line)
		}
		out[k] = v
	}
	return out
}
