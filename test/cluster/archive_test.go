package cluster_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/iter8-tools/iter8/test/testbed"
)

// TestHelmPluginArchive builds this machine's helm plugin archive as make
// dist does, signed with a test key, serves it on 127.0.0.1 and installs
// it by URL with Helm 3 and with Helm 4 (which checks the signature) on a
// PATH without Go; then runs an experiment's life through `helm iter8`.
// Helm 4 refuses the archive when the signer is not in its keyring.
func TestHelmPluginArchive(t *testing.T) {
	root, err := testbed.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	secret, public := testbed.TestKeyrings(t, "iter8 release test")
	_, stranger := testbed.TestKeyrings(t, "someone else")
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	dist := exec.CommandContext(ctx, "go", "run", "./scripts/dist", "-platforms", "linux/"+runtime.GOARCH, "-manifest", "",
		"-out", out, "-sign-keyring", secret, "-sign-key", "iter8 release test", "archives")
	dist.Dir = root
	if o := testbed.Run(t, ctx, dist); o.Code != 0 {
		t.Fatalf("make dist's archives: %s", o)
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(out)))
	t.Cleanup(srv.Close)
	_, appVersion := chartMeta(t, "iter8")
	url := srv.URL + "/helm-iter8-" + appVersion + "-linux-" + runtime.GOARCH + ".tar.gz"

	// A machine without Go: nothing on this PATH finds it.
	noGo := "PATH=/usr/bin:/bin"
	if o := command(t, []string{noGo}, "/bin/sh", "-c", "command -v go"); o.Code == 0 {
		t.Fatalf("go is on %s: %s", noGo, o)
	}
	app := sampleApp(t, "fixed:1ms")
	kubeconfig := multiKubeconfig(t, "")
	for _, h := range helms() {
		t.Run(h.name, func(t *testing.T) {
			helmEnv := append(pluginHomes(t), "KUBECONFIG="+kubeconfig, noGo)
			helmCmd := func(extra []string, args ...string) outcome {
				t.Helper()
				return command(t, append(append([]string(nil), helmEnv...), extra...), h.bin, args...)
			}
			install := []string{"plugin", "install", url}
			if h.name == "helm4" {
				if o := helmCmd(nil, "plugin", "install", url, "--keyring", stranger); o.Code == 0 || !strings.Contains(o.Stdout+o.Stderr, "verification failed") {
					t.Errorf("Helm 4 installed an archive signed by a key outside its keyring: %s", o)
				}
				if o := helmCmd(nil, "plugin", "list"); strings.Contains(o.Stdout, "iter8") {
					t.Fatalf("after the refused install, helm plugin list shows iter8: %s", o)
				}
				install = append(install, "--keyring", public)
			}
			o := helmCmd(nil, install...)
			if o.Code != 0 {
				t.Fatalf("helm plugin install %s: %s", url, o)
			}
			if h.name == "helm4" && !strings.Contains(o.Stdout, "Signed by: iter8 release test") {
				t.Errorf("Helm 4 did not say it checked the signature: %s", o)
			}
			if o := helmCmd(nil, "iter8", "version", "--short"); strings.TrimSpace(o.Stdout) != "v"+appVersion {
				t.Errorf("helm iter8 version --short: %s", o)
			}
			pluginLife(t, "archive-"+h.name, helmCmd, app.URL)
		})
	}
}
