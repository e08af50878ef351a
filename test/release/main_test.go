// Package release_test drives charts/release with the built helm and the
// machine's kubectl against the test bed's API server, with the Gateway API
// and Istio CRDs installed from their Go modules, and the node harness
// playing the Deployment controller and running the gates' Jobs.
package release_test

import (
	"context"
	"encoding/json"
	"fmt"
	corev1 "k8s.io/api/core/v1"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	fortiolog "fortio.org/log"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/iter8-tools/iter8/test/node"
	"github.com/iter8-tools/iter8/test/testbed"
	"github.com/iter8-tools/iter8/test/traefik"
)

var (
	env      *testbed.Env
	chartDir string
	binDir   string
	harness  *node.Harness
	dyn      *dynamic.DynamicClient
)

var (
	httpRoutes      = schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "httproutes"}
	virtualServices = schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "virtualservices"}
	crds            = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	fortiolog.SetLogLevelQuiet(fortiolog.Error)
	root, err := testbed.RepoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	chartDir = filepath.Join(root, "charts", "release")
	return testbed.MainWith(m, setup, testbed.WithServiceAccountAdmission())
}

func setup(e *testbed.Env) (func(), error) {
	env = e
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var err error
	if dyn, err = dynamic.NewForConfig(e.Config); err != nil {
		return nil, err
	}
	if err := installCRDs(ctx); err != nil {
		return nil, err
	}
	binDir = filepath.Join(e.Dir, "bin")
	if err := os.Mkdir(binDir, 0o755); err != nil {
		return nil, err
	}
	// The Pod's user must reach the binary through the test bed's folder.
	if err := os.Chmod(e.Dir, 0o711); err != nil {
		return nil, err
	}
	bin, err := testbed.BuildIter8(ctx, binDir)
	if err != nil {
		return nil, err
	}
	harness, err = node.Start(ctx, node.Config{
		Admin:       e.Config,
		Executables: map[string]string{"iter8": bin},
		Deployments: true,
		// Versions whose backends run in network namespaces (traffic tests)
		// get those addresses in their EndpointSlices.
		PodAddress: podAddresses.PodAddress,
		// The A/B/n service (charts/abn, in the A/B/n tutorial) runs for
		// real; the apps' versions are faked.
		RunDeploymentPods: func(p *corev1.Pod) bool { return p.Labels["app.kubernetes.io/name"] == "abn" },
		ProbePeriod:       100 * time.Millisecond,
		RestartBackoff:    200 * time.Millisecond,
	})
	if err != nil {
		return nil, err
	}
	return harness.Stop, nil
}

// installCRDs creates the HTTPRoute (and the rest of the Gateway API's
// standard channel), Istio's and Traefik's CRDs from the modules' own
// files, fetched through the Go module proxy, and waits until they are
// established.
func installCRDs(ctx context.Context) error {
	files, istio, err := testbed.RouteCRDFiles(ctx)
	if err != nil {
		return err
	}
	files = append(files, istio)
	traefikCRDs, err := traefik.CRDFile(ctx)
	if err != nil {
		return err
	}
	files = append(files, traefikCRDs)
	args := []string{"create"}
	for _, f := range files {
		args = append(args, "-f", f)
	}
	// create, not apply: Istio's CRDs are too large for apply's annotation.
	cmd := exec.CommandContext(ctx, "kubectl", args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+env.Kubeconfig, "KUBECACHEDIR="+filepath.Join(env.Dir, "kubectl-cache"))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("kubectl create the CRDs: %v\n%s", err, out)
	}
	for _, name := range []string{"httproutes.gateway.networking.k8s.io", "virtualservices.networking.istio.io", "traefikservices.traefik.io"} {
		if err := waitEstablished(ctx, name); err != nil {
			return err
		}
	}
	return nil
}

func waitEstablished(ctx context.Context, name string) error {
	for {
		u, err := dyn.Resource(crds).Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			var crd apiextensionsv1.CustomResourceDefinition
			if err := runtimeFromUnstructured(u, &crd); err != nil {
				return err
			}
			for _, c := range crd.Status.Conditions {
				if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("CRD %s not established: %v", name, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// commandTimeout bounds each command; helm waits for the gates within it.
const commandTimeout = 2 * time.Minute

// outcome is what one command did.
type outcome = testbed.Outcome

// helm runs the built helm against the test bed.
func helm(t testing.TB, args ...string) outcome {
	t.Helper()
	return helmAt(t, env.HelmBin, args...)
}

// helmAt runs the helm binary bin (env.HelmBin or env.Helm4Bin).
func helmAt(t testing.TB, bin string, args ...string) outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	return testbed.Run(t, ctx, env.HelmAt(ctx, bin, args...))
}

// helms are the test bed's two Helms, for the tests that run with each.
func helms() []struct{ name, bin string } {
	return []struct{ name, bin string }{{"helm3", env.HelmBin}, {"helm4", env.Helm4Bin}}
}

// mustHelm runs helm and fails the test unless it succeeds.
func mustHelm(t testing.TB, args ...string) outcome {
	t.Helper()
	o := helm(t, args...)
	if o.Code != 0 {
		t.Fatalf("want success: %s", o)
	}
	return o
}

// kubectl runs the machine's kubectl against the test bed, with stdin.
func kubectl(t testing.TB, stdin string, args ...string) outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "kubectl", args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+env.Kubeconfig, "KUBECACHEDIR="+filepath.Join(env.Dir, "kubectl-cache"))
	cmd.Stdin = strings.NewReader(stdin)
	return testbed.Run(t, ctx, cmd)
}

func runtimeFromUnstructured(u *unstructured.Unstructured, into any) error {
	b, err := u.MarshalJSON()
	if err != nil {
		return err
	}
	return json.Unmarshal(b, into)
}
