// Command grpc is the driver of the grpc task's benchmark (run.sh beside
// it): it sends gRPC load with the grpc task in this process, or with a ghz
// binary as a child process, prints one JSON line per measurement, and
// summarises the lines.
//
// Usage:
//
//	grpc ours [--tool ours] --host H --proto FILE [--call C] [--data JSON] [--metadata JSON]
//	          [--concurrency 50] [--connections 1] [--duration 5s | --total N]
//	          [--run N] [--bench throughput|memory]
//	grpc ghz --bin PATH [--tool ghz] --host H --proto FILE [same load flags]
//	grpc report FILE
//
// Each measurement gives the calls made, the errors, the seconds the load
// took, calls per second, and the peak resident memory of the process that
// sent the load. For ghz the seconds are ghz's own (from the start of its
// load to its end, without its start-up), which favours ghz slightly.
package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/task/grpc"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// line is one measurement.
type line struct {
	Bench   string  `json:"bench"` // throughput or memory
	Tool    string  `json:"tool"`
	Run     int     `json:"run,omitempty"`
	Calls   int64   `json:"calls"`
	Errors  int64   `json:"errors"`
	Seconds float64 `json:"seconds"`
	RPS     float64 `json:"rps"`
	// CPUSeconds is the processor time (user and system) of the process
	// that sent the load, over the load (ours) or its whole life (ghz);
	// calls per CPU second is less disturbed by other work on the machine
	// than calls per second.
	CPUSeconds float64 `json:"cpuSeconds"`
	MaxRSSMB   float64 `json:"maxRSSMB"`
	// HeapMB is the live heap after the load, ours only.
	HeapMB float64 `json:"heapMB,omitempty"`
	GRPC   string  `json:"grpc,omitempty"` // grpc-go version of the tool
}

// load is what both tools are asked to do.
type load struct {
	host, proto, call        string
	concurrency, connections int
	duration                 time.Duration
	total                    int64
	run                      int
	bench, tool, data, md    string
}

func (l *load) flags(fs *flag.FlagSet) {
	fs.StringVar(&l.host, "host", "", "greeter host:port")
	fs.StringVar(&l.proto, "proto", "", "path of greeter.proto")
	fs.StringVar(&l.call, "call", "helloworld.Greeter/SayHello", "method to call")
	fs.IntVar(&l.concurrency, "concurrency", 50, "calls in flight")
	fs.IntVar(&l.connections, "connections", 1, "connections")
	fs.DurationVar(&l.duration, "duration", 0, "how long to send load")
	fs.Int64Var(&l.total, "total", 0, "how many calls to make (instead of --duration)")
	fs.IntVar(&l.run, "run", 0, "round number, for the report")
	fs.StringVar(&l.bench, "bench", "throughput", "what the measurement is for: throughput or memory")
	fs.StringVar(&l.data, "data", `{"name":"bench"}`, "request message as JSON")
	fs.StringVar(&l.md, "metadata", "", "metadata as a JSON object of strings")
}

func (l *load) check() error {
	switch {
	case l.host == "" || l.proto == "":
		return errors.New("--host and --proto are required")
	case (l.duration > 0) == (l.total > 0):
		return errors.New("give --duration or --total")
	}
	return nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: grpc ours|ghz|report [flags]")
		return 2
	}
	var err error
	switch args[0] {
	case "ours":
		err = oursCmd(ctx, args[1:], stdout, stderr)
	case "ghz":
		err = ghzCmd(ctx, args[1:], stdout, stderr)
	case "report":
		if len(args) != 2 {
			fmt.Fprintln(stderr, "usage: grpc report FILE")
			return 2
		}
		err = reportCmd(args[1], stdout)
	default:
		fmt.Fprintf(stderr, "grpc: unknown subcommand %q\n", args[0])
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "grpc %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

// oursCmd runs the grpc task in this process.
func oursCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var l load
	fs := flag.NewFlagSet("ours", flag.ContinueOnError)
	fs.SetOutput(stderr)
	l.flags(fs)
	fs.StringVar(&l.tool, "tool", "ours", "name of this run's tool in the report")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := l.check(); err != nil {
		return err
	}
	with := map[string]any{
		"host": l.host, "call": l.call, "insecure": true, "protoFile": filepath.Base(l.proto),
		"concurrency": l.concurrency, "connections": l.connections, "data": json.RawMessage(l.data),
	}
	if l.md != "" {
		with["metadata"] = json.RawMessage(l.md)
	}
	if l.total > 0 {
		with["total"] = l.total
	} else {
		with["duration"] = l.duration.String()
	}
	spec, err := yaml.Marshal(map[string]any{
		"apiVersion": experiment.APIVersion, "kind": experiment.Kind,
		"metadata": map[string]any{"name": "grpc-bench"},
		"spec":     map[string]any{"tasks": []any{map[string]any{"task": grpc.Name, "with": with}}},
	})
	if err != nil {
		return err
	}
	reg := experiment.NewRegistry()
	reg.Register(grpc.Name, grpc.Decode)
	dir := filepath.Dir(l.proto)
	plan, err := experiment.Decode(spec, experiment.DecodeOptions{Registry: reg, ReadFile: func(name string) ([]byte, error) {
		if !filepath.IsAbs(name) {
			name = filepath.Join(dir, name)
		}
		return os.ReadFile(name)
	}})
	if err != nil {
		return err
	}
	env := &experiment.Env{
		Result:   experiment.NewResult(plan, 1, time.Now()),
		Versions: plan.Experiment.Spec.VersionNames(),
		Log:      slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Progress: io.Discard,
		Secret:   func(string) (string, bool) { return "", false },
		Now:      time.Now,
	}
	cpu0 := selfCPU()
	began := time.Now()
	if err := plan.Tasks[0].Task.Run(ctx, env); err != nil {
		return err
	}
	secs := time.Since(began).Seconds()
	cpu := selfCPU() - cpu0
	calls, _ := env.Result.Value("", "grpc/request-count")
	errs, _ := env.Result.Value("", "grpc/error-count")
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return json.NewEncoder(stdout).Encode(line{
		Bench: l.bench, Tool: l.tool, Run: l.run, Calls: int64(calls), Errors: int64(errs), Seconds: secs,
		RPS: calls / secs, CPUSeconds: cpu, MaxRSSMB: selfMaxRSS(), HeapMB: float64(ms.HeapInuse) / (1 << 20), GRPC: grpcVersion(""),
	})
}

// ghzCmd runs a ghz binary and reads its JSON report.
func ghzCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		l   load
		bin string
	)
	fs := flag.NewFlagSet("ghz", flag.ContinueOnError)
	fs.SetOutput(stderr)
	l.flags(fs)
	fs.StringVar(&bin, "bin", "", "ghz binary")
	fs.StringVar(&l.tool, "tool", "ghz", "name of this ghz build in the report")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := l.check(); err != nil {
		return err
	}
	if bin == "" {
		return errors.New("--bin is required")
	}
	cmdArgs := []string{
		"--insecure", "--proto", l.proto, "--call", l.call,
		"-c", strconv.Itoa(l.concurrency), "--connections", strconv.Itoa(l.connections),
		"-d", l.data, "-O", "influx-summary",
	}
	if l.md != "" {
		cmdArgs = append(cmdArgs, "-m", l.md)
	}
	if l.total > 0 {
		cmdArgs = append(cmdArgs, "-n", strconv.FormatInt(l.total, 10))
	} else {
		// Like the task: stop sending at the end and let calls in flight
		// finish, instead of counting them as errors.
		cmdArgs = append(cmdArgs, "-z", l.duration.String(), "--duration-stop", "wait")
	}
	cmd := exec.CommandContext(ctx, bin, append(cmdArgs, l.host)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w", bin, err)
	}
	// One line: ghz_run,<tags> count=N,total=NANOS,...,errors=N <time>
	field := func(name string) (int64, error) {
		m := regexp.MustCompile(`[ ,]` + name + `=([0-9]+)`).FindSubmatch(out.Bytes())
		if m == nil {
			return 0, fmt.Errorf("ghz's report has no %s: %q", name, out.String())
		}
		return strconv.ParseInt(string(m[1]), 10, 64)
	}
	var rep struct{ Count, Errors int64 }
	var total int64
	var err error
	if rep.Count, err = field("count"); err != nil {
		return err
	}
	if rep.Errors, err = field("errors"); err != nil {
		return err
	}
	if total, err = field("total"); err != nil {
		return err
	}
	var maxRSS, cpu float64
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		maxRSS = float64(ru.Maxrss) / 1024 // KiB on Linux
		cpu = tvSeconds(ru.Utime) + tvSeconds(ru.Stime)
	}
	secs := time.Duration(total).Seconds()
	return json.NewEncoder(stdout).Encode(line{
		Bench: l.bench, Tool: l.tool, Run: l.run, Calls: rep.Count, Errors: rep.Errors,
		Seconds: secs, RPS: float64(rep.Count) / secs, CPUSeconds: cpu, MaxRSSMB: maxRSS, GRPC: grpcVersion(bin),
	})
}

// selfCPU is this process's processor time so far, in seconds.
func selfCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return tvSeconds(ru.Utime) + tvSeconds(ru.Stime)
}

func tvSeconds(tv syscall.Timeval) float64 {
	return float64(tv.Sec) + float64(tv.Usec)/1e6
}

// selfMaxRSS is this process's peak resident memory in MiB.
func selfMaxRSS() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Maxrss) / 1024
}

// grpcVersion is the grpc-go version built into bin ("" for this program).
func grpcVersion(bin string) string {
	out, err := exec.Command("go", "version", "-m", cmp.Or(bin, os.Args[0])).Output()
	if err != nil {
		return ""
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 3 && f[0] == "dep" && f[1] == "google.golang.org/grpc" {
			return f[2]
		}
	}
	return ""
}

// reportCmd summarises the lines in file.
func reportCmd(file string, stdout io.Writer) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	byTool := map[string][]line{}
	var tools []string
	for _, raw := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
		var l line
		if err := json.Unmarshal(raw, &l); err != nil {
			return fmt.Errorf("%s: %w", raw, err)
		}
		key := l.Bench + " " + l.Tool
		if _, seen := byTool[key]; !seen {
			tools = append(tools, key)
		}
		byTool[key] = append(byTool[key], l)
	}
	median := func(ls []line, f func(line) float64) float64 {
		vs := make([]float64, len(ls))
		for i, l := range ls {
			vs[i] = f(l)
		}
		slices.Sort(vs)
		if len(vs)%2 == 1 {
			return vs[len(vs)/2]
		}
		return (vs[len(vs)/2-1] + vs[len(vs)/2]) / 2
	}
	rate := func(l line) float64 { return l.RPS }
	perCPU := func(l line) float64 {
		if l.CPUSeconds == 0 {
			return 0
		}
		return float64(l.Calls) / l.CPUSeconds
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "BENCH\tTOOL\tGRPC-GO\tRUNS\tCALLS/S (MEDIAN)\tCALLS/S (RUNS)\tCALLS/CPU-S (MEDIAN)\tCALLS (MEDIAN)\tERRORS\tPEAK RSS MB\tHEAP MB")
	for _, key := range tools {
		ls := byTool[key]
		var rates []string
		var errs int64
		for _, l := range ls {
			rates = append(rates, fmt.Sprintf("%.0f", l.RPS))
			errs += l.Errors
		}
		heap := "-"
		if strings.HasPrefix(ls[0].Tool, "ours") {
			heap = fmt.Sprintf("%.1f", median(ls, func(l line) float64 { return l.HeapMB }))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%.0f\t%s\t%.0f\t%.0f\t%d\t%.1f\t%s\n", ls[0].Bench, ls[0].Tool, ls[0].GRPC, len(ls),
			median(ls, rate), strings.Join(rates, " "), median(ls, perCPU),
			median(ls, func(l line) float64 { return float64(l.Calls) }), errs,
			median(ls, func(l line) float64 { return l.MaxRSSMB }), heap)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// Each pair compares a with b; the first is the target.
	pairs := []struct{ a, b, what string }{
		{"ours", "ghz", "target >= 0.95"},
		{"ours", "ghz-samegrpc", "the same grpc-go"},
		{"ghz-samegrpc", "ghz", "grpc-go's version alone"},
		{"ours-templated", "ghz-samegrpc-templated", "the same grpc-go and templates per call"},
	}
	for _, p := range pairs {
		as, bs := byTool["throughput "+p.a], byTool["throughput "+p.b]
		if len(as) == 0 || len(bs) == 0 {
			continue
		}
		r := median(as, rate) / median(bs, rate)
		what := p.what
		if p.a == "ours" && p.b == "ghz" {
			what += map[bool]string{true: ": met", false: ": MISSED"}[r >= 0.95]
		}
		fmt.Fprintf(stdout, "%s / %s: calls/s %.3f, calls per CPU second %.3f (%s)\n",
			p.a, p.b, r, median(as, perCPU)/median(bs, perCPU), what)
	}
	return nil
}
