package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"fortio.org/fortio/fhttp"
	"fortio.org/fortio/periodic"

	"github.com/iter8-tools/iter8/pkg/task/http"
)

// throughputCmd sends load at full speed for a fixed duration with one tool
// and records the requests per second.
func throughputCmd(ctx context.Context, args []string, out *emitter, stderr io.Writer) error {
	fs := flag.NewFlagSet("throughput", flag.ContinueOnError)
	tool := fs.String("tool", "", "ours (the http task), fortio (fhttp.RunHTTPTest without an access logger) or wrk")
	rawURL := fs.String("url", "", "loopback `URL` to load")
	conns := fs.Int("connections", 16, "connections (fortio threads, wrk -c)")
	d := fs.Duration("duration", 5*time.Second, "how long to send load; whole seconds for wrk")
	runNo := fs.Int("run", 0, "number of this repetition, for the report")
	serverPID := fs.Int("server-pid", 0, "process id of the server, to report how busy its CPU was (0: do not)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of this process during the load to `file` (ours and fortio)")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	u, err := loopbackURL("url", *rawURL)
	if err != nil {
		return err
	}
	if *conns < 1 || *d <= 0 {
		return usageError{fmt.Errorf("--connections and --duration must be positive")}
	}

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	var m measured
	cpu0 := processCPU()
	server0 := pidCPU(*serverPID)
	start := time.Now()
	switch *tool {
	case "ours":
		m, err = throughputOurs(ctx, u.String(), *conns, *d)
	case "fortio":
		m, err = throughputFortio(u.String(), *conns, *d)
	case "wrk":
		m, err = throughputWrk(ctx, u.String(), *conns, *d)
	default:
		return usageError{fmt.Errorf("--tool %q: want ours, fortio or wrk", *tool)}
	}
	if err != nil {
		return fmt.Errorf("%s: %w", *tool, err)
	}
	wall := time.Since(start)
	serverCPU := pidCPU(*serverPID) - server0
	if m.cpu == 0 { // in this process
		m.cpu = processCPU() - cpu0
	}
	rps := float64(m.requests) / d.Seconds()
	if m.elapsed > 0 {
		rps = float64(m.requests) / m.elapsed.Seconds()
	}
	cpuPerReq := float64(m.cpu) / float64(time.Microsecond) / float64(max(m.requests, 1))
	fmt.Fprintf(stderr, "throughput run %d %-6s %9.0f req/s (%d requests, %d errors; load generator CPU %.2f µs/request, %.0f%% busy; server %.0f%% busy)\n",
		*runNo, *tool, rps, m.requests, m.errors, cpuPerReq, 100*m.cpu.Seconds()/wall.Seconds(), 100*serverCPU.Seconds()/wall.Seconds())
	if m.errors > 0 {
		return fmt.Errorf("%s: %d of %d requests failed; the figure would not be comparable", *tool, m.errors, m.requests)
	}
	return out.emit(Record{
		Bench: "throughput", Name: *tool, Value: rps, Unit: "req/s", Run: *runNo,
		Info: map[string]string{
			"connections": strconv.Itoa(*conns),
			"duration":    d.String(),
			"requests":    strconv.FormatInt(m.requests, 10),
			"method":      m.method,
			"cpuPerReq":   strconv.FormatFloat(cpuPerReq, 'f', 3, 64),
			"cpuShare":    strconv.FormatFloat(m.cpu.Seconds()/wall.Seconds(), 'f', 3, 64),
			"serverShare": strconv.FormatFloat(serverCPU.Seconds()/wall.Seconds(), 'f', 3, 64),
		},
	})
}

// measured is one throughput run. When elapsed is 0 the rate is over the
// requested duration; when cpu is 0 the load ran in this process.
type measured struct {
	requests, errors int64
	elapsed          time.Duration
	cpu              time.Duration // user and system time of the load generator
	method           string
}

// pidCPU is the user and system time another process has used so far, from
// /proc/PID/stat (fields 14 and 15, in clock ticks of 1/100 s); 0 when pid
// is 0 or unreadable.
func pidCPU(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name in parentheses may hold spaces; fields follow it.
	_, rest, ok := strings.Cut(string(data), ") ")
	f := strings.Fields(rest)
	if !ok || len(f) < 13 {
		return 0
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// processCPU is the user and system time this process has used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// throughputOurs runs the http task through Decode and Run, as an
// experiment would, and reads http/request-count.
func throughputOurs(ctx context.Context, u string, conns int, d time.Duration) (measured, error) {
	t, env, err := httpTask(map[string]any{
		"url": u, "qps": 0, "connections": conns, "duration": d.String(),
	})
	if err != nil {
		return measured{}, err
	}
	if err := t.Run(ctx, env); err != nil {
		return measured{}, fmt.Errorf("run the http task: %w", err)
	}
	m, err := metrics(env.Result, "http/request-count", "http/error-count")
	if err != nil {
		return measured{}, err
	}
	return measured{
		requests: int64(m["http/request-count"]), errors: int64(m["http/error-count"]),
		method: "http/request-count / requested duration",
	}, nil
}

// throughputFortio runs fortio's runner with the options the http task
// uses (pkg/task/http/run.go), minus the access logger that records
// latencies: this is the cost of the load loop alone.
func throughputFortio(u string, conns int, d time.Duration) (measured, error) {
	o := &fhttp.HTTPRunnerOptions{
		RunnerOptions: periodic.RunnerOptions{
			QPS:         -1, // full speed; fortio's 0 means 8 per second
			NumThreads:  conns,
			Duration:    d,
			Out:         io.Discard,
			Stop:        periodic.NewAborter(),
			Percentiles: []float64{50},
		},
		AllowInitialErrors: true,
	}
	o.HTTPOptions.InitHeaders()
	if err := o.AddAndValidateExtraHeader("User-Agent: iter8"); err != nil {
		return measured{}, err
	}
	o.URL = u
	o.HTTPReqTimeOut = http.DefaultTimeout
	res, err := fhttp.RunHTTPTest(o)
	if err != nil {
		return measured{}, fmt.Errorf("run fortio: %w", err)
	}
	var m measured
	for code, n := range res.RetCodes {
		m.requests += n
		if code < 200 || code > 399 {
			m.errors += n
		}
	}
	m.method = "sum of RetCodes / requested duration"
	return m, nil
}

// throughputWrk runs wrk with one thread and reads its request count and
// elapsed time.
func throughputWrk(ctx context.Context, u string, conns int, d time.Duration) (measured, error) {
	secs := int(d.Round(time.Second) / time.Second)
	if secs < 1 || time.Duration(secs)*time.Second != d {
		return measured{}, usageError{fmt.Errorf("--duration %v: wrk takes whole seconds", d)}
	}
	ctx, cancel := context.WithTimeout(ctx, d+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "wrk", "-t1", "-c"+strconv.Itoa(conns), "-d"+strconv.Itoa(secs)+"s", u)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return measured{}, fmt.Errorf("%v: %w: %s", cmd.Args, err, strings.TrimSpace(stderr.String()))
	}
	m, err := parseWrk(stdout.String())
	m.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	return m, err
}

// parseWrk reads wrk's summary:
//
//	  123456 requests in 5.00s, 12.34MB read
//	  Socket errors: connect 0, read 0, write 0, timeout 0
//	  Non-2xx or 3xx responses: 12
//	Requests/sec:  24691.20
func parseWrk(s string) (measured, error) {
	var m measured
	var found bool
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) >= 4 && f[1] == "requests" && f[2] == "in":
			n, err1 := strconv.ParseInt(f[0], 10, 64)
			el, err2 := time.ParseDuration(strings.TrimSuffix(f[3], ","))
			if err1 != nil || err2 != nil || el <= 0 {
				return m, fmt.Errorf("cannot read wrk's line %q", sc.Text())
			}
			m.requests, m.elapsed, found = n, el, true
		case len(f) >= 4 && f[0] == "Non-2xx":
			n, err := strconv.ParseInt(f[len(f)-1], 10, 64)
			if err != nil {
				return m, fmt.Errorf("cannot read wrk's line %q", sc.Text())
			}
			m.errors += n
		case len(f) >= 3 && f[0] == "Socket" && f[1] == "errors:":
			for _, part := range strings.Split(strings.Join(f[2:], " "), ",") {
				kv := strings.Fields(part)
				if len(kv) == 2 {
					n, err := strconv.ParseInt(kv[1], 10, 64)
					if err != nil {
						return m, fmt.Errorf("cannot read wrk's line %q", sc.Text())
					}
					m.errors += n
				}
			}
		}
	}
	if !found {
		return m, fmt.Errorf("no request count in wrk's output:\n%s", s)
	}
	m.method = "wrk's request count / its elapsed time"
	return m, nil
}
