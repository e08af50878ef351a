package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iter8-tools/iter8/test/testbed"
)

// iter8Bin is the kubectl-iter8 binary that TestMain builds.
var iter8Bin string

// commandTimeout bounds every run of the binary, so that a hang fails the
// test that caused it instead of the whole package.
const commandTimeout = 30 * time.Second

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "iter8-e2e-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: make a folder for the binary: %v\n", err)
		return 2
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	bin, err := testbed.BuildIter8(ctx, dir)
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 2
	}
	iter8Bin = bin
	return m.Run()
}

// outcome is what one run of the binary did.
type outcome struct {
	args   []string
	code   int
	stdout string
	stderr string
}

func (o outcome) String() string {
	return fmt.Sprintf("kubectl-iter8 %s: exit %d\nstdout:\n%s\nstderr:\n%s",
		strings.Join(o.args, " "), o.code, o.stdout, o.stderr)
}

// iter8 runs the binary in dir with args and returns what it did. It fails
// the test if the binary cannot be started or runs past commandTimeout.
func iter8(t *testing.T, dir string, args ...string) outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), commandTimeout)
	defer cancel()
	cmd := command(ctx, dir, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	out := outcome{args: args, stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("kubectl-iter8 %s: still running after %v\n%s", strings.Join(args, " "), commandTimeout, out)
	case errors.As(err, &ee):
		out.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("kubectl-iter8 %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// command prepares a run of the binary in dir, with an environment that
// points away from any real cluster.
func command(ctx context.Context, dir string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, iter8Bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"KUBECONFIG="+filepath.Join(dir, "no-such-kubeconfig"),
		"NO_COLOR=1",
	)
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// checkNoCrash fails the test when the binary's stderr shows a Go panic or
// a goroutine dump.
func checkNoCrash(t *testing.T, o outcome) {
	t.Helper()
	for _, bad := range []string{"panic", "goroutine "} {
		if strings.Contains(o.stderr, bad) {
			t.Errorf("stderr contains %q:\n%s", bad, o)
		}
	}
}

// target is a loopback HTTP server that counts the requests it gets.
type target struct {
	*httptest.Server
	requests atomic.Int64
}

// newTarget starts a target answering 200 "ok" on 127.0.0.1; it is closed
// when the test ends.
func newTarget(t *testing.T) *target {
	t.Helper()
	tg := &target{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tg.requests.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, "ok\n")
	}))
	srv.Config.ErrorLog = log.New(testLogWriter{t}, "target: ", 0)
	srv.Start()
	t.Cleanup(srv.Close)
	tg.Server = srv
	return tg
}

// url is the target's root URL with a trailing slash.
func (tg *target) url() string { return tg.URL + "/" }

// testLogWriter sends a server's log lines to the test's log.
type testLogWriter struct{ t *testing.T }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s", bytes.TrimRight(p, "\n"))
	return len(p), nil
}

// resultFiles lists the *.result.json files in dir and its sub-folders.
func resultFiles(t *testing.T, dir string) []string {
	t.Helper()
	var found []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(d.Name(), ".result.json") {
			found = append(found, p)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("list result files in %s: %v", dir, err)
	}
	return found
}

// writeFile writes a file in dir, failing the test on error.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatalf("write %s: %v", p, err)
	}
	return p
}

// checkFilesUnchanged fails the test when a file of dir no longer has its
// content (name → content).
func checkFilesUnchanged(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || string(data) != content {
			t.Errorf("%s was changed or removed (err %v)", name, err)
		}
	}
}

// fileExists reports whether path exists.
func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// result is the part of the result file (DESIGN.md §3) that the tests read;
// it is declared here rather than imported so that the tests pin the file
// format, not the Go type.
type result struct {
	Experiment string     `json:"experiment"`
	Revision   int        `json:"revision"`
	StartTime  *time.Time `json:"startTime"`
	EndTime    *time.Time `json:"endTime"`
	Tasks      []struct {
		Task  string `json:"task"`
		State string `json:"state"`
		Error string `json:"error"`
	} `json:"tasks"`
	Versions []struct {
		Name    string `json:"name"`
		Metrics map[string]struct {
			Value float64 `json:"value"`
			Unit  string  `json:"unit"`
		} `json:"metrics"`
	} `json:"versions"`
	SLOs []struct {
		Metric    string   `json:"metric"`
		Version   string   `json:"version"`
		Upper     *float64 `json:"upper"`
		Lower     *float64 `json:"lower"`
		Value     *float64 `json:"value"`
		Satisfied bool     `json:"satisfied"`
	} `json:"slos"`
	Log []string `json:"log"`
}

// readResult reads a result file; ok is false when it does not exist yet.
func readResult(path string) (r *result, ok bool, err error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	r = &result{}
	if err := json.Unmarshal(data, r); err != nil {
		return nil, false, fmt.Errorf("%s: %w", path, err)
	}
	return r, true, nil
}

// metric returns a metric of the i-th version of r.
func (r *result) metric(i int, name string) (float64, bool) {
	if i >= len(r.Versions) {
		return 0, false
	}
	m, ok := r.Versions[i].Metrics[name]
	return m.Value, ok
}
