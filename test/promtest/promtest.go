// Package promtest starts a real Prometheus server for tests: Debian's
// /usr/bin/prometheus as a child process on a free 127.0.0.1 port, with a
// private data directory and a generated configuration that scrapes the given
// targets every second. Tests then wait for the series they expect with
// [Server.WaitFor] instead of sleeping through scrape intervals.
//
//	app := httptest.NewServer(sampleapp.NewHandler(sampleapp.Options{Version: "v1"}))
//	defer app.Close()
//	prom := promtest.StartT(t, app.Listener.Addr().String())
//	// ... send requests to app ...
//	n, err := prom.WaitFor(ctx, `sum(sampleapp_requests_total{version="v1"})`,
//		func(v float64) bool { return v == 200 })
//
// Prometheus never listens on 9090 here, so a daemon started by the Debian
// package does not interfere. scripts/install-test-deps.sh installs the
// package; [StartT] skips the test when it is missing, or fails it when
// ITER8_REQUIRE_PROMETHEUS is set (make test sets it).
//
// This is test code only; nothing under pkg/ imports it.
package promtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Binary is the Prometheus server that Start runs: the one from Debian's
// package, not whatever is first on PATH, so every machine runs the same one.
const Binary = "/usr/bin/prometheus"

// RequireEnv names the environment variable that makes StartT fail, rather
// than skip, when Binary is missing.
const RequireEnv = "ITER8_REQUIRE_PROMETHEUS"

// ScrapeInterval is how often the server scrapes each target.
const ScrapeInterval = time.Second

// pollInterval is how often Start and WaitFor ask the server again.
const pollInterval = 100 * time.Millisecond

// ErrNotInstalled is wrapped by Start's error when Binary is missing.
var ErrNotInstalled = errors.New(Binary + " not found: run scripts/install-test-deps.sh (as root) to install Debian's prometheus")

// Server is a running Prometheus. Stop ends it.
type Server struct {
	// URL is the server's base URL, http://127.0.0.1:PORT.
	URL string
	// Dir holds the configuration and the data; Stop removes it.
	Dir string

	client *http.Client
	cmd    *exec.Cmd
	out    *tail
	exited chan struct{} // closed when the process has exited
	stop   sync.Once
	err    error // from Stop
}

// StartT starts a server scraping targets for the duration of t and stops it
// in t.Cleanup. It skips t when Binary is missing, or fails it when
// RequireEnv is set.
func StartT(t testing.TB, targets ...string) *Server {
	t.Helper()
	if _, err := os.Stat(Binary); err != nil {
		if os.Getenv(RequireEnv) != "" {
			t.Fatalf("%v (%s is set)", ErrNotInstalled, RequireEnv)
		}
		t.Skip(ErrNotInstalled)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Start(ctx, targets...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Error(err)
		}
	})
	return s
}

// Start runs Binary on a free 127.0.0.1 port, scraping each target (a
// host:port serving /metrics) every ScrapeInterval as a job of its own. A
// target may be written JOB=host:port to name its job; otherwise the job is
// named after its position, t0, t1, .... Start returns once the server
// reports ready on /-/ready; ctx bounds that wait. The server runs until
// Stop, whatever happens to ctx.
func Start(ctx context.Context, targets ...string) (*Server, error) {
	if _, err := os.Stat(Binary); err != nil {
		return nil, fmt.Errorf("start prometheus: %w", ErrNotInstalled)
	}
	config, err := configFor(targets)
	if err != nil {
		return nil, fmt.Errorf("start prometheus: %w", err)
	}
	// The port is free when picked but could be taken before Prometheus
	// binds it; another port is tried then.
	const attempts = 3
	for i := 1; ; i++ {
		s, err := start(ctx, config)
		if err == nil || i == attempts || !errors.Is(err, errAddrInUse) || ctx.Err() != nil {
			return s, err
		}
	}
}

var errAddrInUse = errors.New("address already in use")

func start(ctx context.Context, config string) (*Server, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, fmt.Errorf("start prometheus: pick a port: %w", err)
	}
	dir, err := os.MkdirTemp("", "iter8-promtest-")
	if err != nil {
		return nil, fmt.Errorf("start prometheus: %w", err)
	}
	cfgFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgFile, []byte(config), 0o644); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start prometheus: %w", err)
	}
	s := &Server{
		URL:    "http://" + addr,
		Dir:    dir,
		client: &http.Client{Timeout: 5 * time.Second},
		out:    &tail{max: 8 << 10},
		exited: make(chan struct{}),
	}
	s.cmd = exec.Command(Binary,
		"--config.file="+cfgFile,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--log.level=warn",
	)
	s.cmd.Dir = dir
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	// Do not leave a server behind when the test binary dies.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start prometheus: %s: %w", Binary, err)
	}
	go func() { _ = s.cmd.Wait(); close(s.exited) }()

	if err := s.waitReady(ctx); err != nil {
		_ = s.Stop()
		if strings.Contains(s.out.String(), "address already in use") {
			err = fmt.Errorf("%w: %w", errAddrInUse, err)
		}
		return nil, fmt.Errorf("start prometheus %s on %s: %w", Binary, addr, err)
	}
	return s, nil
}

// waitReady polls /-/ready until it answers 200, the process exits or ctx
// ends.
func (s *Server) waitReady(ctx context.Context) error {
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	last := errors.New("no answer yet")
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/-/ready", nil)
		if err != nil {
			return err
		}
		resp, err := s.client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Errorf("status %s", resp.Status)
		} else {
			last = err
		}
		select {
		case <-s.exited:
			return fmt.Errorf("exited (%v) before /-/ready answered 200; output:\n%s", s.cmd.ProcessState, s.out)
		case <-ctx.Done():
			return fmt.Errorf("waiting for /-/ready to answer 200: %w; last: %v; output:\n%s", ctx.Err(), last, s.out)
		case <-tick.C:
		}
	}
}

// Stop kills the server and removes Dir. It may be called more than once.
func (s *Server) Stop() error {
	s.stop.Do(func() {
		if s.cmd.Process != nil {
			_ = s.cmd.Process.Kill() // fails only if it has already exited
			<-s.exited
		}
		if err := os.RemoveAll(s.Dir); err != nil {
			s.err = fmt.Errorf("stop prometheus: %w", err)
		}
	})
	return s.err
}

// Output returns the end of what the server has logged (warnings and
// errors only).
func (s *Server) Output() string { return s.out.String() }

// Sample is one element of a query's result.
type Sample struct {
	Labels map[string]string
	Value  float64
}

// Query evaluates promql at the current time with /api/v1/query and returns
// its samples; a scalar result is one sample without labels.
func (s *Server) Query(ctx context.Context, promql string) ([]Sample, error) {
	u := s.URL + "/api/v1/query?" + url.Values{"query": {promql}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("query %q: %w", promql, err)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("query %q: %w", promql, err)
	}
	defer resp.Body.Close()
	var body struct {
		Status    string `json:"status"`
		ErrorType string `json:"errorType"`
		Error     string `json:"error"`
		Data      struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("query %q: %s: decoding answer: %w", promql, resp.Status, err)
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("query %q: %s: %s: %s", promql, resp.Status, body.ErrorType, body.Error)
	}
	switch body.Data.ResultType {
	case "scalar":
		var v [2]json.RawMessage
		if err := json.Unmarshal(body.Data.Result, &v); err != nil {
			return nil, fmt.Errorf("query %q: decoding scalar: %w", promql, err)
		}
		f, err := parseValue(v[1])
		if err != nil {
			return nil, fmt.Errorf("query %q: %w", promql, err)
		}
		return []Sample{{Value: f}}, nil
	case "vector":
		var vec []struct {
			Metric map[string]string  `json:"metric"`
			Value  [2]json.RawMessage `json:"value"`
		}
		if err := json.Unmarshal(body.Data.Result, &vec); err != nil {
			return nil, fmt.Errorf("query %q: decoding vector: %w", promql, err)
		}
		out := make([]Sample, len(vec))
		for i, e := range vec {
			f, err := parseValue(e.Value[1])
			if err != nil {
				return nil, fmt.Errorf("query %q: sample %v: %w", promql, e.Metric, err)
			}
			out[i] = Sample{Labels: e.Metric, Value: f}
		}
		return out, nil
	default:
		return nil, fmt.Errorf("query %q: got result type %q, want vector or scalar", promql, body.Data.ResultType)
	}
}

// parseValue reads a sample value, which the API sends as a JSON string
// ("1.5", "NaN", "+Inf").
func parseValue(raw json.RawMessage) (float64, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return 0, fmt.Errorf("sample value %s: %w", raw, err)
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("sample value %s: %w", raw, err)
	}
	return f, nil
}

// WaitFor evaluates promql, which must yield a single value, until cond
// holds for it, and returns that value. An empty result (nothing scraped
// yet) counts as not holding; more than one sample, or a query Prometheus
// rejects, is an error at once. When ctx ends first, the error gives the
// last value seen.
func (s *Server) WaitFor(ctx context.Context, promql string, cond func(float64) bool) (float64, error) {
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	last := "no samples"
	for {
		samples, err := s.Query(ctx, promql)
		switch {
		case err != nil && ctx.Err() == nil:
			return 0, err
		case err == nil && len(samples) > 1:
			return 0, fmt.Errorf("query %q: got %d samples %v, want one", promql, len(samples), samples)
		case err == nil && len(samples) == 1:
			v := samples[0].Value
			if cond(v) {
				return v, nil
			}
			last = strconv.FormatFloat(v, 'g', -1, 64)
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("wait for query %q on %s: %w; last value: %s", promql, s.URL, ctx.Err(), last)
		case <-s.exited:
			return 0, fmt.Errorf("wait for query %q on %s: prometheus exited (%v); output:\n%s", promql, s.URL, s.cmd.ProcessState, s.out)
		case <-tick.C:
		}
	}
}

// WaitUp waits until every configured target has been scraped successfully
// (the series up is 1 for all of them).
func (s *Server) WaitUp(ctx context.Context, targets int) error {
	_, err := s.WaitFor(ctx, "count(up == 1) or vector(0)", func(v float64) bool { return v == float64(targets) })
	return err
}

// configFor renders the configuration: one job per target.
func configFor(targets []string) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "global:\n  scrape_interval: %s\n  scrape_timeout: %s\n  evaluation_interval: %s\n",
		ScrapeInterval, ScrapeInterval, ScrapeInterval)
	b.WriteString("scrape_configs:\n")
	jobs := map[string]bool{}
	for i, t := range targets {
		job, addr, named := strings.Cut(t, "=")
		if !named {
			job, addr = "t"+strconv.Itoa(i), t
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return "", fmt.Errorf("target %q: want host:port or JOB=host:port: %w", t, err)
		}
		if job == "" || jobs[job] {
			return "", fmt.Errorf("target %q: job name %q empty or repeated", t, job)
		}
		jobs[job] = true
		// strconv.Quote's output is a valid YAML double-quoted scalar for
		// the printable ASCII that job names and addresses are made of.
		fmt.Fprintf(&b, "  - job_name: %s\n    static_configs:\n      - targets: [%s]\n",
			strconv.Quote(job), strconv.Quote(addr))
	}
	return b.String(), nil
}

// freeAddr returns a 127.0.0.1 address with a port that was free just now.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}

// tail keeps the last max bytes written to it, for error messages.
type tail struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
