package readme

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	fortiolog "fortio.org/log"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/iter8-tools/iter8/pkg/cli"
	"github.com/iter8-tools/iter8/test/greeter"
	"github.com/iter8-tools/iter8/test/sampleapp"
)

var update = flag.Bool("update", false, "rewrite the scripts' golden files with what the commands print")

// pluginCmd is the test binary run as a plugin: `iter8-plugin kubectl
// ARGS` is `kubectl iter8 ARGS`. One command serves both front-ends
// because testscript copies the test binary (over 150 MB) once per command.
const pluginCmd = "iter8-plugin"

// TestMain makes the test binary, run as pluginCmd, the plugin the docs
// call.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){pluginCmd: func() { os.Exit(plugin(os.Args[1:])) }})
}

// plugin runs a front-end (the first argument: kubectl or helm) with the
// rest of args as cmd/kubectl-iter8 and cmd/helm-iter8 do (their mains are
// package main, so they cannot be called from here).
func plugin(args []string) int {
	if len(args) == 0 || args[0] != "kubectl" && args[0] != "helm" {
		fmt.Fprintf(os.Stderr, "usage: %s kubectl|helm ARGS...\n", pluginCmd)
		return 2
	}
	fe := cli.Kubectl
	if args[0] == "helm" {
		fe = cli.Helm
	}
	fortiolog.SetLogLevelQuiet(fortiolog.Error)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	os.Args = append([]string{os.Args[0]}, args[1:]...)
	return cli.Execute(ctx, fe())
}

// programs are the script commands that run the plugin as the docs write
// it: `kubectl iter8 ...`, `helm iter8 ...` and `kubectl-iter8 ...`.
var programs = []string{"kubectl", "helm", "kubectl-iter8"}

// runPlugin runs one of the programs with args and returns the error of
// the run (an *exec.ExitError for a non-zero exit). kubectl and helm run
// only their iter8 plugin, the only thing the docs' local commands ask of
// them.
func runPlugin(ts *testscript.TestScript, program string, args []string) error {
	fe := "kubectl"
	if program == "kubectl" || program == "helm" {
		if len(args) == 0 || args[0] != "iter8" {
			ts.Fatalf("this test's %s runs only its iter8 plugin, not %q", program, args)
		}
		fe, args = program, args[1:]
	}
	return ts.Exec(pluginCmd, append([]string{fe}, args...)...)
}

// runProgram is the script command of a program: like exec, it fails the
// script when the program fails, or with !, when it succeeds.
func runProgram(program string) func(ts *testscript.TestScript, neg bool, args []string) {
	return func(ts *testscript.TestScript, neg bool, args []string) {
		err := runPlugin(ts, program, args)
		var ee *exec.ExitError
		switch {
		case err != nil && !errors.As(err, &ee):
			ts.Fatalf("%v", err) // it did not run
		case neg && err == nil:
			ts.Fatalf("unexpected success")
		case !neg && err != nil:
			ts.Fatalf("unexpected failure: %v", err)
		}
	}
}

// TestScripts runs testdata/*.txtar.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                "testdata",
		RequireUniqueNames: true,
		UpdateScripts:      *update,
		Setup: func(env *testscript.Env) error {
			// Commands that would need a cluster fail at once rather than
			// find one through the environment.
			env.Setenv("KUBECONFIG", filepath.Join(env.WorkDir, "no-such-kubeconfig"))
			env.Setenv("NO_COLOR", "1")
			env.Values[testingT{}] = env.T()
			return nil
		},
		Cmds: scriptCmds(),
	})
}

// scriptCmds are the scripts' own commands: the programs, the servers and
// exits.
func scriptCmds() map[string]func(ts *testscript.TestScript, neg bool, args []string) {
	cmds := map[string]func(ts *testscript.TestScript, neg bool, args []string){
		"sampleapp": startSampleApp,
		"greeter":   startGreeter,
		"exits":     exits,
	}
	for _, p := range programs {
		cmds[p] = runProgram(p)
	}
	return cmds
}

// serverFlags are the settings the sampleapp and greeter script commands
// take, named as the flags of cmd/sampleapp and cmd/greeter.
type serverFlags struct {
	name      string // the env var that gets the address
	version   string
	latency   sampleapp.Latency
	errorRate float64
	seed      uint64
}

// parseServerFlags reads `NAME [--version V] [--latency SPEC] [--error-rate
// F] [--seed N]`; the version defaults to NAME.
func parseServerFlags(ts *testscript.TestScript, cmd string, neg bool, args []string) serverFlags {
	if neg {
		ts.Fatalf("%s: cannot be negated", cmd)
	}
	if len(args) == 0 {
		ts.Fatalf("usage: %s NAME [--version V] [--latency SPEC] [--error-rate F] [--seed N]", cmd)
	}
	f := serverFlags{name: args[0]}
	var latency string
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(ts.Stderr())
	fs.StringVar(&f.version, "version", f.name, "")
	fs.StringVar(&latency, "latency", "", "")
	fs.Float64Var(&f.errorRate, "error-rate", 0, "")
	fs.Uint64Var(&f.seed, "seed", 0, "")
	if err := fs.Parse(args[1:]); err != nil {
		ts.Fatalf("%s: %v", cmd, err)
	}
	l, err := sampleapp.ParseLatency(latency)
	if err != nil {
		ts.Fatalf("%s: --latency: %v", cmd, err)
	}
	f.latency = l
	return f
}

// startSampleApp is the script command `sampleapp NAME [flags]`: it serves
// the sample HTTP app on a free 127.0.0.1 port until the script ends and
// sets $NAME to its host:port.
func startSampleApp(ts *testscript.TestScript, neg bool, args []string) {
	f := parseServerFlags(ts, "sampleapp", neg, args)
	opts := sampleapp.Options{Version: f.version, Latency: f.latency, ErrorRate: f.errorRate, Seed: f.seed}
	if err := opts.Validate(); err != nil {
		ts.Fatalf("sampleapp: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	ts.Check(err)
	// The server logs from its own goroutines, which may not write the
	// script's log; the test's may, until the script ends.
	t := ts.Value(testingT{}).(testscript.T)
	srv := &http.Server{Handler: sampleapp.NewHandler(opts), ErrorLog: log.New(tLog{t}, "sampleapp "+f.name+": ", 0)}
	go func() { _ = srv.Serve(ln) }() // ErrServerClosed at Shutdown
	ts.Defer(func() {
		// Shutdown waits for the handlers, so nothing logs after the script.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			srv.Close()
		}
	})
	ts.Setenv(f.name, ln.Addr().String())
}

// startGreeter is the script command `greeter NAME [flags]`: it serves the
// gRPC greeter (plaintext, with reflection) on a free 127.0.0.1 port until
// the script ends and sets $NAME to its host:port.
func startGreeter(ts *testscript.TestScript, neg bool, args []string) {
	f := parseServerFlags(ts, "greeter", neg, args)
	s, err := greeter.Start("127.0.0.1:0", greeter.Options{Version: f.version, Latency: f.latency, ErrorRate: f.errorRate, Seed: f.seed})
	if err != nil {
		ts.Fatalf("greeter: %v", err)
	}
	ts.Defer(func() { _ = s.Stop() })
	ts.Setenv(f.name, s.Addr())
}

// exits is the script command `exits CODE PROGRAM [ARGS...]`: it runs one
// of the programs and fails unless it exits with CODE, because the exit
// code says which failure it was (1: a verdict, 2: could not work) and `!`
// accepts any.
func exits(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("exits: cannot be negated")
	}
	if len(args) < 2 {
		ts.Fatalf("usage: exits CODE COMMAND [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exits: code %q: %v", args[0], err)
	}
	if !slices.Contains(programs, args[1]) {
		ts.Fatalf("exits: %s is not one of %q", args[1], programs)
	}
	err = runPlugin(ts, args[1], args[2:])
	got := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		got = ee.ExitCode()
	case err != nil:
		ts.Fatalf("exits: %v", err)
	}
	if got != want {
		ts.Fatalf("%s exited %d, want %d", args[1], got, want)
	}
}

// testingT is the key of the script's testing.T in Env.Values.
type testingT struct{}

// tLog sends a server's log lines to the test's log.
type tLog struct{ t testscript.T }

func (w tLog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
