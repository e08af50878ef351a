// Command startup measures the start-up cost of `kubectl iter8 version`
// against kubectl's and Helm's, for the acceptance: the median wall
// time of ours at most 1.05 times `kubectl version --client`'s, and our
// median peak RSS at most 1.1 times `helm version`'s, measured side by side
// in one run:
//
//	go run ./scripts/bench/startup [-n 20] [-check] [-iter8 CMD] [-kubectl CMD] [-helm CMD]
//
// (scripts/bench/startup.sh builds bin/kubectl-iter8 if missing, finds
// Helm 3 with scripts/testbed.sh and runs this with -check.)
//
// The commands run one at a time, interleaved round-robin with the order
// rotated each round, so that machine noise hits all alike: -warmup rounds
// first (not counted), then -n measured rounds. Wall time runs from the
// fork to the wait; peak RSS is the child's ru_maxrss from wait4 (of its
// whole process tree), CPU its user+system time. The children get the same
// environment: this one's, with HOME set to an empty temporary directory
// and KUBECONFIG, XDG_* and HELM_* removed, so that none reads a
// kubeconfig, a Helm configuration or a cache, and none talks to a
// cluster; stdin and stdout are /dev/null and stderr a file, read only when
// a command fails.
//
// Each executable is first copied, with plain reads and writes, into a
// temporary directory, and run from there (-copy=false runs them in place).
// Peak RSS counts the pages of the executable that the process maps, and
// the kernel maps pages that are already cached in blocks around each one
// touched: how a file came into the page cache (written by the linker,
// read whole by cat, faulted in page by page) changed the peak RSS of the
// same binary from 46 to 72 MiB here. Copies put all three in the same
// state.
//
// A command line is split at spaces; single and double quotes and
// backslashes group as in a shell. Exit status: 0 when measured (PASS or
// FAIL printed either way), 1 with -check when a target is missed, 2 for
// bad flags or a command that fails.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// command is one contender and its measurements.
type command struct {
	flag string // the flag that gave it
	line string // as given
	argv []string
	size int64 // bytes of the executable

	wall, cpu []time.Duration
	rssKB     []int64
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("startup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("n", 20, "measured runs of each command")
	warmup := fs.Int("warmup", 2, "warm-up runs of each command, not counted")
	iter8 := fs.String("iter8", "bin/kubectl-iter8 version", "our command")
	kubectl := fs.String("kubectl", "kubectl version --client", "kubectl's command (the time reference)")
	helm := fs.String("helm", "", "Helm's command, the RSS reference (default: \"helm version\" with the helm of the test bed's directory, which bash scripts/testbed.sh prints, else helm from PATH)")
	check := fs.Bool("check", false, "exit 1 when a target is missed")
	copyExec := fs.Bool("copy", true, "run copies of the executables, so that the page cache holds each the same way")
	maxTime := fs.Float64("max-time-ratio", 1.05, "target: our median wall time over kubectl's")
	maxRSS := fs.Float64("max-rss-ratio", 1.1, "target: our median peak RSS over Helm's")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "startup: "+format+"\n", a...)
		return 2
	}
	switch {
	case fs.NArg() > 0:
		return usage("unexpected arguments %q", fs.Args())
	case *n < 1:
		return usage("-n must be at least 1, not %d", *n)
	case *warmup < 0:
		return usage("-warmup must not be negative, not %d", *warmup)
	case !(*maxTime > 0):
		return usage("-max-time-ratio must be positive")
	case !(*maxRSS > 0):
		return usage("-max-rss-ratio must be positive")
	}
	if *helm == "" {
		*helm = defaultHelm(stderr) + " version"
	}

	cmds := []*command{{flag: "-iter8", line: *iter8}, {flag: "-kubectl", line: *kubectl}, {flag: "-helm", line: *helm}}
	for _, c := range cmds {
		argv, err := splitCommand(c.line)
		if err != nil {
			return usage("%s %q: %v", c.flag, c.line, err)
		}
		if len(argv) == 0 {
			return usage("%s is empty", c.flag)
		}
		path, err := exec.LookPath(argv[0])
		if err != nil {
			return usage("%s: %v", c.flag, err)
		}
		if path, err = filepath.Abs(path); err != nil {
			return usage("%s: %v", c.flag, err)
		}
		argv[0] = path
		c.argv = argv
		if st, err := os.Stat(path); err == nil {
			c.size = st.Size()
		}
	}

	home, err := os.MkdirTemp("", "iter8-bench-startup-")
	if err != nil {
		fmt.Fprintln(stderr, "startup:", err)
		return 2
	}
	defer os.RemoveAll(home)
	if *copyExec {
		bin := filepath.Join(home, "bin")
		if err := os.Mkdir(bin, 0o755); err != nil {
			fmt.Fprintln(stderr, "startup:", err)
			return 2
		}
		for _, c := range cmds {
			// Named after its flag: kubectl and ours may share a name.
			dst := filepath.Join(bin, c.flag[1:], filepath.Base(c.argv[0]))
			if err := copyExecutable(c.argv[0], dst); err != nil {
				fmt.Fprintf(stderr, "startup: %s: copy %s: %v\n", c.flag, c.argv[0], err)
				return 2
			}
			c.argv[0] = dst
		}
	}
	env := childEnv(os.Environ(), home)
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		fmt.Fprintln(stderr, "startup:", err)
		return 2
	}
	defer devnull.Close()
	errFile, err := os.CreateTemp("", "iter8-bench-startup-stderr-")
	if err != nil {
		fmt.Fprintln(stderr, "startup:", err)
		return 2
	}
	defer os.Remove(errFile.Name())
	defer errFile.Close()

	fmt.Fprintf(stderr, "startup: %d warm-up and %d measured rounds of %d commands\n", *warmup, *n, len(cmds))
	for round := 0; round < *warmup+*n; round++ {
		for k := range cmds {
			c := cmds[(round+k)%len(cmds)]
			wall, cpu, rss, err := measure(c.argv, env, devnull, errFile)
			if err != nil {
				fmt.Fprintf(stderr, "startup: %s command %q failed: %v\n", c.flag, c.line, err)
				return 2
			}
			if round >= *warmup {
				c.wall = append(c.wall, wall)
				c.cpu = append(c.cpu, cpu)
				c.rssKB = append(c.rssKB, rss)
			}
		}
	}

	fmt.Fprintf(stdout, "startup: %d runs of each command after %d warm-up runs, interleaved round-robin; HOME empty, no KUBECONFIG; %s/%s, %d CPUs\n\n",
		*n, *warmup, runtime.GOOS, runtime.GOARCH, runtime.NumCPU())
	fmt.Fprintln(stdout, "| command | binary MB | wall median ms | p10 | p90 | min | CPU median ms | peak RSS median MiB | max |")
	fmt.Fprintln(stdout, "|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, c := range cmds {
		w := durations(c.wall)
		fmt.Fprintf(stdout, "| %s `%s` | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f |\n",
			c.flag[1:], strings.Join(append([]string{filepath.Base(c.argv[0])}, c.argv[1:]...), " "),
			float64(c.size)/1e6, quantile(w, 0.5), quantile(w, 0.1), quantile(w, 0.9), quantile(w, 0),
			quantile(durations(c.cpu), 0.5), quantile(kbs(c.rssKB), 0.5), quantile(kbs(c.rssKB), 1))
	}
	fmt.Fprintln(stdout)
	for _, c := range cmds {
		fmt.Fprintf(stdout, "%-8s %s\n", c.flag[1:]+":", strings.Join(c.argv, " "))
	}
	fmt.Fprintln(stdout)

	ours, kc, hm := cmds[0], cmds[1], cmds[2]
	timeRatio := quantile(durations(ours.wall), 0.5) / quantile(durations(kc.wall), 0.5)
	rssRatio := quantile(kbs(ours.rssKB), 0.5) / quantile(kbs(hm.rssKB), 0.5)
	ok := true
	verdict := func(what string, got, target float64) {
		v := "PASS"
		if !(got <= target) {
			v, ok = "FAIL", false
		}
		fmt.Fprintf(stdout, "%-58s %.3f (target ≤ %g): %s\n", what, got, target, v)
	}
	verdict("time: iter8 / kubectl, median wall time", timeRatio, *maxTime)
	verdict("RSS:  iter8 / helm, median peak RSS", rssRatio, *maxRSS)
	if ok {
		fmt.Fprintln(stdout, "PASS")
		return 0
	}
	fmt.Fprintln(stdout, "FAIL")
	if *check {
		return 1
	}
	return 0
}

// copyExecutable copies the executable src to dst, creating dst's
// directory, with reads and writes (not a reflink or hard link), so that
// dst's pages are cached as freshly written ones.
func copyExecutable(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o755)
	if err != nil {
		return err
	}
	buf := make([]byte, 128<<10) // as cp writes
	_, err = io.CopyBuffer(struct{ io.Writer }{out}, struct{ io.Reader }{in}, buf)
	return errors.Join(err, out.Close())
}

// measure runs argv once and returns its wall time, CPU time (user +
// system) and peak RSS in KB. A failure carries the command's stderr.
func measure(argv, env []string, devnull, errFile *os.File) (wall, cpu time.Duration, rssKB int64, err error) {
	if err := errFile.Truncate(0); err != nil {
		return 0, 0, 0, err
	}
	if _, err := errFile.Seek(0, io.SeekStart); err != nil {
		return 0, 0, 0, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Stdin = devnull
	cmd.Stdout = devnull
	cmd.Stderr = errFile
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, 0, err
	}
	werr := cmd.Wait()
	wall = time.Since(start)
	if werr != nil {
		b, _ := os.ReadFile(errFile.Name())
		msg := strings.TrimRight(string(b), "\n")
		const max = 4000
		if len(msg) > max {
			msg = msg[:max] + "..."
		}
		if msg == "" {
			return 0, 0, 0, fmt.Errorf("%v (stderr empty)", werr)
		}
		return 0, 0, 0, fmt.Errorf("%v; stderr:\n%s", werr, msg)
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return 0, 0, 0, fmt.Errorf("no rusage on %s", runtime.GOOS)
	}
	rssKB = int64(ru.Maxrss)
	if runtime.GOOS == "darwin" {
		rssKB /= 1024 // bytes there
	}
	cpu = time.Duration(syscall.TimevalToNsec(ru.Utime) + syscall.TimevalToNsec(ru.Stime))
	return wall, cpu, rssKB, nil
}

// childEnv is env with HOME set to home and the variables that point
// kubectl, Helm or Iter8 to a configuration, a cluster or a cache removed.
func childEnv(env []string, home string) []string {
	out := []string{"HOME=" + home}
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case k == "HOME", k == "KUBECONFIG", k == "KUBECACHEDIR",
			strings.HasPrefix(k, "XDG_"), strings.HasPrefix(k, "HELM_"):
			continue
		}
		out = append(out, kv)
	}
	return out
}

// defaultHelm is the helm of the test bed (bash scripts/testbed.sh, which
// builds it once into a cache), else helm from PATH.
func defaultHelm(stderr io.Writer) string {
	if _, err := os.Stat("scripts/testbed.sh"); err == nil {
		fmt.Fprintln(stderr, "startup: finding Helm 3 with bash scripts/testbed.sh")
		cmd := exec.Command("bash", "scripts/testbed.sh")
		cmd.Env = append(os.Environ(), "ITER8_TESTBED_TRAEFIK=0")
		cmd.Stderr = stderr
		out, err := cmd.Output()
		if dir := strings.TrimSpace(string(out)); err == nil && dir != "" {
			helm := filepath.Join(dir, "helm")
			if _, err := os.Stat(helm); err == nil {
				return quote(helm)
			}
		}
		fmt.Fprintln(stderr, "startup: no Helm from scripts/testbed.sh; using helm from PATH")
	}
	return "helm"
}

// quote quotes s for splitCommand.
func quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// splitCommand splits a command line at unquoted spaces; single quotes
// keep everything, double quotes everything but backslash escapes, and a
// backslash outside single quotes keeps the next character.
func splitCommand(line string) ([]string, error) {
	var (
		args    []string
		cur     strings.Builder
		inWord  bool
		quoteCh rune
		escape  bool
	)
	for _, r := range line {
		switch {
		case escape:
			cur.WriteRune(r)
			escape = false
		case quoteCh == '\'':
			if r == '\'' {
				quoteCh = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '\\':
			escape, inWord = true, true
		case quoteCh == '"':
			if r == '"' {
				quoteCh = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quoteCh, inWord = r, true
		case r == ' ' || r == '\t' || r == '\n':
			if inWord {
				args = append(args, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if escape || quoteCh != 0 {
		return nil, errors.New("unterminated quote or escape")
	}
	if inWord {
		args = append(args, cur.String())
	}
	return args, nil
}

// durations converts to milliseconds.
func durations(d []time.Duration) []float64 {
	out := make([]float64, len(d))
	for i, v := range d {
		out[i] = float64(v) / float64(time.Millisecond)
	}
	return out
}

// kbs converts KB to MiB.
func kbs(k []int64) []float64 {
	out := make([]float64, len(k))
	for i, v := range k {
		out[i] = float64(v) / 1024
	}
	return out
}

// quantile interpolates linearly between the order statistics (q = 0 is
// the minimum, 0.5 the median, 1 the maximum).
func quantile(x []float64, q float64) float64 {
	if len(x) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), x...)
	sort.Float64s(s)
	pos := q * float64(len(s)-1)
	lo := int(math.Floor(pos))
	hi := int(math.Ceil(pos))
	return s[lo] + (s[hi]-s[lo])*(pos-float64(lo))
}
