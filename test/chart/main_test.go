// Package chart_test checks the iter8 chart's cluster objects on the test
// bed's API server with the built helm: what they render to, that the Job's
// Pod passes Pod Security "restricted", and that install and uninstall
// create and remove exactly the release's objects. No Job runner runs here,
// so installs use --no-hooks; running the Job is the e2e tests' part.
package chart_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iter8-tools/iter8/test/testbed"
)

// env is the test bed that TestMain starts for the package.
var env *testbed.Env

// chartDir is charts/iter8 in this checkout.
var chartDir string

// helmTimeout bounds every helm command, so that a hang fails the test that
// caused it instead of the whole package.
const helmTimeout = 60 * time.Second

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	root, err := testbed.RepoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	chartDir = filepath.Join(root, "charts", "iter8")
	// ServiceAccount admission, as in a real cluster: a Pod's ServiceAccount
	// must exist, so the admission test also checks the chart's names.
	return testbed.Main(m, func(e *testbed.Env) { env = e }, testbed.WithServiceAccountAdmission())
}

// helmResult is what one helm command did.
type helmResult struct {
	args   []string
	err    error
	stdout string
	stderr string
}

func (r helmResult) String() string {
	return fmt.Sprintf("helm %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(r.args, " "), r.err, r.stdout, r.stderr)
}

// helm runs the test bed's helm with args. It fails the test if helm cannot
// be started or runs past helmTimeout; a non-zero exit is in the result.
// (Not bound to t.Context(): cleanups, which uninstall, run after it ends.)
func helm(t *testing.T, args ...string) helmResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), helmTimeout)
	defer cancel()
	cmd := env.Helm(ctx, args...)
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := helmResult{args: args, err: err, stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("still running after %v: %s", helmTimeout, r)
	case err != nil && !errors.As(err, &ee):
		t.Fatalf("start helm: %s", r)
	}
	return r
}

// mustHelm runs helm and fails the test unless it succeeds.
func mustHelm(t *testing.T, args ...string) helmResult {
	t.Helper()
	r := helm(t, args...)
	if r.err != nil {
		t.Fatalf("want success: %s", r)
	}
	return r
}
