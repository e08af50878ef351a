package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/iter8-tools/iter8/test/sampleapp"
)

// runMainEnv makes the test binary act as the command, so tests can exercise
// exit codes and signals without building a separate binary.
const runMainEnv = "SAMPLEAPP_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// command returns the test binary set up to run main with args.
func command(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), runMainEnv+"=1")
	return cmd
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		args                 []string
		listen, version, lat string
		rate                 float64
		code                 int
		seed                 uint64
	}{
		{nil, "127.0.0.1:8080", "v1", "0", 0, 503, 0},
		{[]string{"--listen", "127.0.0.1:0", "--version", "v2"}, "127.0.0.1:0", "v2", "0", 0, 503, 0},
		{[]string{"-latency=uniform:2ms-4ms", "--error-rate", "0.25", "--error-code", "500", "--seed", "9"},
			"127.0.0.1:8080", "v1", "uniform:2ms-4ms", 0.25, 500, 9},
		{[]string{"--listen", "[::1]:0"}, "[::1]:0", "v1", "0", 0, 503, 0},
		{[]string{"--listen", "localhost:9000"}, "localhost:9000", "v1", "0", 0, 503, 0},
		{[]string{"--listen", "0.0.0.0:8080", "--allow-non-loopback"}, "0.0.0.0:8080", "v1", "0", 0, 503, 0},
	}
	for _, tt := range tests {
		var stderr strings.Builder
		cfg, err := parseFlags(tt.args, &stderr)
		if err != nil {
			t.Errorf("parseFlags(%q): got error %v (stderr %q), want nil", tt.args, err, stderr.String())
			continue
		}
		o := cfg.opts
		if cfg.listen != tt.listen || o.Version != tt.version || o.Latency.String() != tt.lat ||
			o.ErrorRate != tt.rate || o.ErrorCode != tt.code || o.Seed != tt.seed {
			t.Errorf("parseFlags(%q): got listen %q version %q latency %v rate %v code %d seed %d, want %q %q %v %v %d %d",
				tt.args, cfg.listen, o.Version, o.Latency, o.ErrorRate, o.ErrorCode, o.Seed,
				tt.listen, tt.version, tt.lat, tt.rate, tt.code, tt.seed)
		}
	}
}

func TestParseFlagsErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string // substring of stderr
	}{
		{[]string{"--nope"}, "flag provided but not defined: -nope"},
		{[]string{"--seed", "-1"}, `invalid value "-1" for flag -seed`},
		{[]string{"--error-rate", "x"}, `invalid value "x" for flag -error-rate`},
		{[]string{"extra"}, `unexpected arguments ["extra"]`},
		{[]string{"--latency", "fixed:5"}, `--latency: latency "fixed:5": bad duration "5"`},
		{[]string{"--error-rate", "1.5"}, "--error-rate: error rate 1.5: want a fraction in [0, 1]"},
		{[]string{"--conversion", "1.5"}, "--conversion: conversion 1.5: want a fraction in [0, 1]"},
		{[]string{"--conversion", "-0.1"}, "--conversion: conversion -0.1: want a fraction in [0, 1]"},
		{[]string{"--error-code", "200"}, "--error-code: error code 200: want 0 (meaning 503) or 400-599"},
		{[]string{"--listen", "0.0.0.0:8080"}, `--listen: address "0.0.0.0:8080" is not a loopback address`},
		{[]string{"--listen", ":8080"}, "use --allow-non-loopback to override"},
		{[]string{"--listen", "example.com:80"}, `address "example.com:80" is not a loopback address`},
		{[]string{"--listen", "8080"}, `--listen: address "8080": want host:port`},
	}
	for _, tt := range tests {
		var stderr strings.Builder
		if code := run(context.Background(), tt.args, &stderr); code != 2 {
			t.Errorf("run(%q): got exit %d, want 2", tt.args, code)
		}
		if !strings.Contains(stderr.String(), tt.want) {
			t.Errorf("run(%q): got stderr %q, want it to contain %q", tt.args, stderr.String(), tt.want)
		}
	}
}

func TestServe(t *testing.T) {
	addrFile := filepath.Join(t.TempDir(), "addr")
	var stderr strings.Builder
	cfg, err := parseFlags([]string{"--listen", "127.0.0.1:0", "--version", "v7", "--conversion", "1", "--addr-file", addrFile}, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	readyc := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, io.Discard, func(addr string) { readyc <- addr }) }()

	var addr string
	select {
	case addr = <-readyc:
	case err := <-done:
		t.Fatalf("serve: got %v before listening", err)
	}
	if b, err := os.ReadFile(addrFile); err != nil || string(b) != addr {
		t.Errorf("addr file %s: got %q, %v; want %q", addrFile, b, err, addr)
	}
	resp, err := http.Get("http://" + addr + "/buy?user=ann")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Version") != "v7" {
		t.Errorf("GET http://%s/buy?user=ann: got %d X-Version %q, want 200 v7", addr, resp.StatusCode, resp.Header.Get("X-Version"))
	}
	// --conversion 1: every user buys.
	if a, _ := sampleapp.Purchase("v7", "ann", 1); resp.Header.Get(sampleapp.PurchaseHeader) != strconv.Itoa(a) {
		t.Errorf("GET http://%s/buy?user=ann with --conversion 1: got X-Purchase %q, want %d", addr, resp.Header.Get(sampleapp.PurchaseHeader), a)
	}

	cancel()
	if err := <-done; err != nil {
		t.Errorf("serve after cancel: got %v, want nil", err)
	}
	if _, err := os.Stat(addrFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("addr file %s after shutdown: got stat error %v, want not exist", addrFile, err)
	}
}

func TestServeListenError(t *testing.T) {
	cfg, err := parseFlags([]string{"--listen", "127.0.0.1:99999"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if err := serve(context.Background(), cfg, io.Discard, nil); err == nil {
		t.Error("serve on 127.0.0.1:99999: got nil, want an error")
	}
}

// TestCommandSignal runs the real main: it must announce its address, serve,
// and exit 0 on SIGTERM or SIGINT after removing the address file.
func TestCommandSignal(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			addrFile := filepath.Join(t.TempDir(), "addr")
			cmd := command(t, "--listen", "127.0.0.1:0", "--addr-file", addrFile, "--version", "vs")
			stderr, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := false
			t.Cleanup(func() {
				if !exited {
					cmd.Process.Kill()
					cmd.Wait()
				}
			})

			// The "listening" line is logged after the address file is
			// written, so reading it synchronises without polling.
			sc := bufio.NewScanner(stderr)
			if !sc.Scan() || !strings.Contains(sc.Text(), "listening on") {
				t.Fatalf("got first stderr line %q, want \"listening on\"", sc.Text())
			}
			b, err := os.ReadFile(addrFile)
			if err != nil {
				t.Fatal(err)
			}
			c := &http.Client{Timeout: 5 * time.Second}
			resp, err := c.Get("http://" + string(b) + "/")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got := resp.Header.Get("X-Version"); got != "vs" {
				t.Errorf("GET http://%s/: got X-Version %q, want vs", b, got)
			}

			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			// Drain stderr to EOF (the process exiting) before Wait closes it.
			for sc.Scan() {
			}
			err = cmd.Wait()
			exited = true
			if err != nil {
				t.Errorf("after %v: got exit %v, want 0", sig, err)
			}
			if _, err := os.Stat(addrFile); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("after %v: addr file: got stat error %v, want not exist", sig, err)
			}
		})
	}
}

func TestCommandBadFlagExit2(t *testing.T) {
	cmd := command(t, "--latency", "uniform:20ms-2ms")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Errorf("--latency uniform:20ms-2ms: got %v, want exit status 2", err)
	}
	want := `latency "uniform:20ms-2ms": want uniform:MIN-MAX with MIN <= MAX`
	if !strings.Contains(string(out), want) {
		t.Errorf("--latency uniform:20ms-2ms: got output %q, want it to contain %q", out, want)
	}
}
