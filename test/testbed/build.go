package testbed

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
)

// BuildIter8 builds cmd/kubectl-iter8 into dir (with the go command on PATH,
// or the one in $GOROOT/bin) and returns the binary's path. Static and with
// -trimpath, as the image, the release archives and the helm plugin's
// install hook build it, so that they all share Go's cache. The binary and
// dir are readable and executable by every user, so that a node harness
// may run it as a Pod's non-root user.
func BuildIter8(ctx context.Context, dir string) (string, error) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		goroot := os.Getenv("GOROOT")
		if goroot == "" {
			return "", fmt.Errorf("find the go command: %w", err)
		}
		goCmd = filepath.Join(goroot, "bin", "go")
	}
	bin := filepath.Join(dir, "kubectl-iter8")
	if runtime.GOOS == "windows" {
		bin += ".exe"
	}
	cmd := exec.CommandContext(ctx, goCmd, "build", "-trimpath", "-o", bin, "github.com/iter8-tools/iter8/cmd/kubectl-iter8")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build kubectl-iter8: %w\n%s", err, out.String())
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", err
	}
	return bin, nil
}
