package testbed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Outcome is what one command did.
type Outcome struct {
	Args           []string
	Code           int
	Stdout, Stderr string
}

func (o Outcome) String() string {
	return fmt.Sprintf("%s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(o.Args, " "), o.Code, o.Stdout, o.Stderr)
}

// Run runs cmd, made with ctx, and returns what it did; a non-zero exit is
// in the Outcome. It fails the test when cmd cannot start or is still
// running when ctx ends.
func Run(t testing.TB, ctx context.Context, cmd *exec.Cmd) Outcome {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	o := Outcome{Args: cmd.Args, Stdout: stdout.String(), Stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("still running at its deadline: %s", o)
	case errors.As(err, &ee):
		o.Code = ee.ExitCode()
	case err != nil:
		t.Fatalf("%s: %v", strings.Join(cmd.Args, " "), err)
	}
	return o
}
