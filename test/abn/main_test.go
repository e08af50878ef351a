// Package abn_test drives the A/B/n service end to end through its chart:
// charts/abn installed with the built helm on the test bed's API server,
// its Pod run for real by the node harness (the built kubectl-iter8 as the
// container's "iter8"), an app installed with charts/release whose versions'
// Pods the harness fakes, and the service reached over gRPC (the Go SDK)
// and HTTP/JSON at the Pod's address.
package abn_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	fortiolog "fortio.org/log"
	corev1 "k8s.io/api/core/v1"

	"github.com/iter8-tools/iter8/test/node"
	"github.com/iter8-tools/iter8/test/testbed"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

var (
	env             *testbed.Env
	harness         *node.Harness
	abnChart        string
	experimentChart string
	releaseChart    string
	// iter8Bin is the built kubectl-iter8, the Pods' "iter8".
	iter8Bin string
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	flag.Parse()
	fortiolog.SetLogLevelQuiet(fortiolog.Error)
	root, err := testbed.RepoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	abnChart = filepath.Join(root, "charts", "abn")
	experimentChart = filepath.Join(root, "charts", "iter8")
	releaseChart = filepath.Join(root, "charts", "release")
	return testbed.MainWith(m, setup, testbed.WithServiceAccountAdmission())
}

func setup(e *testbed.Env) (func(), error) {
	env = e
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := installCRDs(ctx); err != nil {
		return nil, err
	}
	binDir := filepath.Join(e.Dir, "bin")
	if err := os.Mkdir(binDir, 0o755); err != nil {
		return nil, err
	}
	// The Pod's user (65532) must reach the binary through the test bed's
	// folder.
	if err := os.Chmod(e.Dir, 0o711); err != nil {
		return nil, err
	}
	bin, err := testbed.BuildIter8(ctx, binDir)
	if err != nil {
		return nil, err
	}
	iter8Bin = bin
	harness, err = node.Start(ctx, node.Config{
		Admin:       e.Config,
		Executables: map[string]string{"iter8": bin},
		Deployments: true,
		// Only the service's Pods run; the app's versions are faked.
		RunDeploymentPods: func(p *corev1.Pod) bool { return p.Labels["app.kubernetes.io/name"] == "abn" },
		ProbePeriod:       100 * time.Millisecond,
		RestartBackoff:    200 * time.Millisecond,
		// Above the chart's 5s drain, so that a Pod's process exits of
		// itself (the chart's grace period is 30s).
		StopGrace: 10 * time.Second,
	})
	if err != nil {
		return nil, err
	}
	// The harness also plays the pvc-protection controller, so that the
	// chart's claim goes once its Pod has.
	return harness.Stop, nil
}

// installCRDs creates the Gateway API's standard channel and Istio's CRDs
// from the modules' own files (the service watches HTTPRoutes and
// VirtualServices) and waits until kubectl sees them established.
func installCRDs(ctx context.Context) error {
	files, istio, err := testbed.RouteCRDFiles(ctx)
	if err != nil {
		return err
	}
	files = append(files, istio)
	args := []string{"create"}
	for _, f := range files {
		args = append(args, "-f", f)
	}
	if out, err := kubectlCmd(ctx, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("kubectl create the CRDs: %v\n%s", err, out)
	}
	cmd := kubectlCmd(ctx, "wait", "--for=condition=Established", "--timeout=120s",
		"crd/httproutes.gateway.networking.k8s.io", "crd/virtualservices.networking.istio.io")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("kubectl wait for the CRDs: %v\n%s", err, out)
	}
	return nil
}

// kubectlCmd runs the machine's kubectl as the test bed's admin.
func kubectlCmd(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "kubectl", args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+env.Kubeconfig, "KUBECACHEDIR="+filepath.Join(env.Dir, "kubectl-cache"))
	return cmd
}

// helm runs the built helm against the test bed and fails the test unless
// it succeeds.
func helm(t testing.TB, args ...string) testbed.Outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	o := testbed.Run(t, ctx, env.Helm(ctx, args...))
	if o.Code != 0 {
		t.Fatalf("want success: %s", o)
	}
	return o
}
