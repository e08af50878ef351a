package e2e

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iter8-tools/iter8/test/rawhttp"
)

// closedPort returns a loopback address where nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestUnreachableTargetFailsEarlyAndQuietly: 20 s of load against a closed
// port once wrote a quarter of a million log lines from the load library.
// Now the task stops after its bounded run of failed connection attempts,
// says so once, and keeps what it measured.
func TestUnreachableTargetFailsEarlyAndQuietly(t *testing.T) {
	dir := t.TempDir()
	url := "http://" + closedPort(t) + "/"
	writeFile(t, dir, "spec.yaml", `apiVersion: iter8.tools/v1
kind: Experiment
metadata:
  name: unreachable
spec:
  tasks:
  - task: http
    with:
      url: "`+url+`"
      duration: 20s
`)
	start := time.Now()
	out := iter8(t, dir, "run", "-f", "spec.yaml")
	elapsed := time.Since(start)
	t.Logf("stopped after %v with %d bytes of stderr", elapsed, len(out.stderr))
	if out.code == 0 {
		t.Fatalf("run against a closed port succeeded\n%s", out)
	}
	if !strings.Contains(out.stderr, url) || !strings.Contains(out.stderr, "connection attempts in a row failed") {
		t.Errorf("stderr does not name the endpoint and the failed attempts\n%s", out)
	}
	if lines := strings.Count(out.stderr, "\n"); lines > 10 {
		t.Errorf("stderr has %d lines, want a few\n%s", lines, out)
	}
	if elapsed > 15*time.Second {
		t.Errorf("run took %v of its 20 s, want it stopped early", elapsed)
	}
	r, ok, err := readResult(filepath.Join(dir, "spec.result.json"))
	if err != nil || !ok {
		t.Fatalf("result: ok %v, err %v", ok, err)
	}
	if n, _ := r.metric(0, "http/error-count"); n < 20 {
		t.Errorf("http/error-count = %v, want the failed attempts counted", n)
	}
	checkNoCrash(t, out)
}

// TestTruncatedBodiesAreErrors: a target that promises 1000 bytes and
// closes after 10 was counted as a success.
func TestTruncatedBodiesAreErrors(t *testing.T) {
	srv := rawhttp.Answer(t, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789")
	dir := t.TempDir()
	out := iter8(t, dir, "launch", "--local", "--set", "tasks={http}",
		"--set", "http.url="+srv.URL(), "--set", "http.numRequests=20")
	if out.code != 0 {
		t.Fatalf("launch: want the load measured (errors are metrics)\n%s", out)
	}
	data, err := os.ReadFile(filepath.Join(dir, "experiment.result.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Versions []struct {
			Metrics  map[string]struct{ Value float64 }
			Failures map[string][]struct {
				Kind    string
				Count   int64
				Example string
			}
		}
	}
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	v := r.Versions[0]
	if got := v.Metrics["http/error-count"].Value; got != 20 {
		t.Errorf("http/error-count = %v, want 20", got)
	}
	f := v.Failures["http"]
	if len(f) != 1 || f[0].Kind != "short body" || f[0].Count != 20 || !strings.Contains(f[0].Example, "got 10 of 1000 bytes") {
		t.Errorf("failures %+v, want 20 short bodies with the reason", f)
	}
	if !strings.Contains(out.stderr, "short body") {
		t.Errorf("stderr does not say why requests failed\n%s", out)
	}
}
