package cluster_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	fortiolog "fortio.org/log"

	"github.com/iter8-tools/iter8/test/node"
	"github.com/iter8-tools/iter8/test/testbed"
)

var (
	env      *testbed.Env
	chartDir string
	// binDir holds the built kubectl-iter8, for the machine's kubectl to
	// find as a plugin on PATH.
	binDir string
	// harness runs the chart's hook Jobs with the built binary as the
	// image's iter8.
	harness *node.Harness
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
	chartDir = filepath.Join(root, "charts", "iter8")
	// ServiceAccount admission as in a real cluster: the Job's Pod gets
	// the chart's ServiceAccount and its token volume.
	return testbed.MainWith(m, setup, testbed.WithServiceAccountAdmission())
}

func setup(e *testbed.Env) (func(), error) {
	env = e
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
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
	})
	if err != nil {
		return nil, err
	}
	return harness.Stop, nil
}
