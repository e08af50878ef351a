package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	fortiolog "fortio.org/log"

	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/task"
)

func main() {
	// fortio logs every run at Info level through its own global logger.
	fortiolog.SetLogLevelQuiet(fortiolog.Error)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches to a subcommand and returns the exit status: 2 for bad
// usage, 1 for a failed measurement.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmds := map[string]func(context.Context, []string, *emitter, io.Writer) error{
		"throughput": throughputCmd,
		"memory":     memoryCmd,
		"rss":        rssCmd,
		"accuracy":   accuracyCmd,
	}
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: loadbench throughput|memory|rss|accuracy|report [flags]")
		return 2
	}
	var err error
	if args[0] == "report" {
		err = reportCmd(args[1:], stdout)
	} else if cmd, ok := cmds[args[0]]; ok {
		err = cmd(ctx, args[1:], &emitter{enc: json.NewEncoder(stdout)}, stderr)
	} else {
		fmt.Fprintf(stderr, "loadbench: unknown subcommand %q\n", args[0])
		return 2
	}
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, new(usageError)):
		fmt.Fprintf(stderr, "loadbench %s: %v\n", args[0], err)
		return 2
	case err != nil:
		fmt.Fprintf(stderr, "loadbench %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

// usageError is a bad flag or argument.
type usageError struct{ error }

// parseFlags parses a subcommand's flags, turning any error into a
// usageError (the flag package has already printed it).
func parseFlags(fs *flag.FlagSet, args []string, stderr io.Writer) error {
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	return nil
}

// Record is one measurement, written as a JSON line.
type Record struct {
	// Bench is the benchmark: throughput, memory, rss or accuracy.
	Bench string `json:"bench"`
	// Name is what was measured, such as a tool or a percentile.
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit,omitempty"`
	// Run numbers the repetitions of a measurement, from 1.
	Run int `json:"run,omitempty"`
	// Info holds the settings and side figures of the measurement.
	Info map[string]string `json:"info,omitempty"`
}

// emitter writes Records as JSON lines.
type emitter struct{ enc *json.Encoder }

func (e *emitter) emit(r Record) error {
	if err := e.enc.Encode(r); err != nil {
		return fmt.Errorf("write record %s/%s: %w", r.Bench, r.Name, err)
	}
	return nil
}

// loopbackURL parses a flag value and refuses anything but http:// on a
// loopback IP: the benchmark must never send load elsewhere.
func loopbackURL(flagName, s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "http" {
		return nil, usageError{fmt.Errorf("--%s %q: want http://127.0.0.1:PORT/", flagName, s)}
	}
	if ip := net.ParseIP(u.Hostname()); ip == nil || !ip.IsLoopback() {
		return nil, usageError{fmt.Errorf("--%s %q: not a loopback address", flagName, s)}
	}
	return u, nil
}

// httpTask decodes an experiment with one http task with the given `with`
// block through the real registry, as a user's spec would be, and returns
// the task with a fresh Env.
func httpTask(with map[string]any) (experiment.Task, *experiment.Env, error) {
	spec := map[string]any{
		"apiVersion": experiment.APIVersion,
		"kind":       experiment.Kind,
		"metadata":   map[string]any{"name": "loadbench"},
		"spec":       map[string]any{"tasks": []any{map[string]any{"task": "http", "with": with}}},
	}
	data, err := json.Marshal(spec)
	if err != nil {
		return nil, nil, err
	}
	plan, err := experiment.Decode(data, experiment.DecodeOptions{Registry: task.Registry()})
	if err != nil {
		return nil, nil, fmt.Errorf("decode the http task: %w", err)
	}
	env := &experiment.Env{
		Result:   experiment.NewResult(plan, 1, time.Now()),
		Versions: plan.Experiment.Spec.VersionNames(),
		Log:      slog.New(slog.DiscardHandler),
		Progress: io.Discard,
		Secret:   func(string) (string, bool) { return "", false },
		Now:      time.Now,
	}
	return plan.Tasks[0].Task, env, nil
}

// metrics reads metrics of the experiment's single (unnamed) version.
func metrics(r *experiment.Result, names ...string) (map[string]float64, error) {
	out := make(map[string]float64, len(names))
	for _, n := range names {
		v, ok := r.Value("", n)
		if !ok {
			return nil, fmt.Errorf("the result has no metric %s", n)
		}
		out[n] = v
	}
	return out, nil
}
