package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

// reportCmd reads the JSON lines of the other subcommands (from FILE or
// stdin) and prints the summary table.
func reportCmd(args []string, stdout io.Writer) error {
	var in io.Reader = os.Stdin
	switch len(args) {
	case 0:
	case 1:
		f, err := os.Open(args[0])
		if err != nil {
			return fmt.Errorf("read results: %w", err)
		}
		defer f.Close()
		in = f
	default:
		return usageError{fmt.Errorf("want at most one results file, got %q", args)}
	}
	var recs []Record
	sc := bufio.NewScanner(in)
	for line := 1; sc.Scan(); line++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return fmt.Errorf("results line %d: %w", line, err)
		}
		recs = append(recs, r)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read results: %w", err)
	}
	w := bufio.NewWriter(stdout)
	fmt.Fprintf(w, "Iter8 http task benchmarks: %s, %d CPUs, %s/%s, %s\n", cpuModel(), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version())
	reportEnv(w, recs)
	reportThroughput(w, recs)
	reportMemory(w, recs)
	reportAccuracy(w, recs)
	reportHook(w, recs)
	return w.Flush()
}

// table prints tab-separated rows with aligned columns, indented.
func table(w io.Writer, rows ...string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, r := range rows {
		fmt.Fprintln(tw, "    "+r)
	}
	tw.Flush()
}

// find returns the first record of a bench with the given name.
func find(recs []Record, bench, name string) (Record, bool) {
	for _, r := range recs {
		if r.Bench == bench && r.Name == name {
			return r, true
		}
	}
	return Record{}, false
}

func reportEnv(w io.Writer, recs []Record) {
	start, ok1 := find(recs, "env", "loadavg-start")
	end, ok2 := find(recs, "env", "loadavg-end")
	el, _ := find(recs, "env", "elapsed")
	if ok1 && ok2 {
		fmt.Fprintf(w, "1-minute load average %.2f at the start, %.2f at the end (other work on the machine adds noise); %.0f s in all\n",
			start.Value, end.Value, el.Value)
	}
}

func reportThroughput(w io.Writer, recs []Record) {
	byTool := map[string][]float64{}
	cpuPerReq := map[string][]float64{}
	cpuShare := map[string][]float64{}
	serverShare := map[string][]float64{}
	var info map[string]string
	for _, r := range recs {
		if r.Bench != "throughput" {
			continue
		}
		byTool[r.Name] = append(byTool[r.Name], r.Value)
		if v, err := strconv.ParseFloat(r.Info["cpuPerReq"], 64); err == nil {
			cpuPerReq[r.Name] = append(cpuPerReq[r.Name], v)
		}
		if v, err := strconv.ParseFloat(r.Info["cpuShare"], 64); err == nil {
			cpuShare[r.Name] = append(cpuShare[r.Name], v)
		}
		if v, err := strconv.ParseFloat(r.Info["serverShare"], 64); err == nil && v > 0 {
			serverShare[r.Name] = append(serverShare[r.Name], v)
		}
		info = r.Info
	}
	if len(byTool) == 0 {
		return
	}
	server := "scripts/bench/fastserver (minimal HTTP/1.1)"
	if r, ok := find(recs, "env", "throughput-server"); ok && r.Info["server"] == "sampleapp" {
		server = "sampleapp --latency 0 (net/http)"
	}
	fmt.Fprintf(w, "\n(a) Throughput at full speed over loopback: %s connections, %s per run, median of %d interleaved rounds in balanced orders\n",
		info["connections"], info["duration"], len(byTool["ours"]))
	fmt.Fprintf(w, "    server %s on CPU 0; each load generator a process of its own on CPU 1\n", server)
	labels := map[string]string{
		"ours":   "iter8 http task (Decode+Run, qps 0)",
		"fortio": "fortio RunHTTPTest, qps -1, no hook",
		"wrk":    "wrk -t1 -c" + info["connections"],
	}
	methods := map[string]string{
		"ours":   "http/request-count / duration",
		"fortio": "sum of RetCodes / duration",
		"wrk":    "wrk's requests / its elapsed time",
	}
	rows := []string{"tool\treq/s median\tmin\tmax\tgenerator CPU\tper request\tserver CPU\tcounted as"}
	med := map[string]float64{}
	for _, tool := range []string{"ours", "fortio", "wrk"} {
		vs := byTool[tool]
		if len(vs) == 0 {
			continue
		}
		med[tool] = median(vs)
		rows = append(rows, fmt.Sprintf("%s\t%.0f\t%.0f\t%.0f\t%s\t%s\t%s\t%s", labels[tool], med[tool], slices.Min(vs), slices.Max(vs),
			medianOr(cpuShare[tool], "%.0f%% busy", 100), medianOr(cpuPerReq[tool], "%.2f µs", 1),
			medianOr(serverShare[tool], "%.0f%% busy", 100), methods[tool]))
	}
	table(w, rows...)
	for _, c := range []struct {
		other  string
		target float64
	}{{"fortio", 0.95}, {"wrk", 0.9}} {
		if med["ours"] > 0 && med[c.other] > 0 {
			ratio := med["ours"] / med[c.other]
			fmt.Fprintf(w, "    ours/%s = %.3f (target >= %.2f: %s); %s; best runs: %.3f\n", c.other, ratio, c.target, verdict(ratio >= c.target),
				pairedRatios(recs, c.other), slices.Max(byTool["ours"])/slices.Max(byTool[c.other]))
		}
	}
	fmt.Fprintln(w, "    CPU: medians of user+system time over each run, of the generator's process (also per request) and of the server's;")
	fmt.Fprintln(w, "    a side near 100% busy is the bottleneck of that run. Other work on the machine only slows runs down, so on a shared")
	fmt.Fprintln(w, "    machine the max column and the ratio of best runs are the closer estimates of each tool's capacity")
}

// pairedRatios describes ours/other within each round of interleaved runs,
// which cancels slow drifts in the machine's load.
func pairedRatios(recs []Record, other string) string {
	ours, theirs := map[int]float64{}, map[int]float64{}
	for _, r := range recs {
		if r.Bench != "throughput" || r.Run == 0 {
			continue
		}
		switch r.Name {
		case "ours":
			ours[r.Run] = r.Value
		case other:
			theirs[r.Run] = r.Value
		}
	}
	var ratios []float64
	for run, v := range ours {
		if t, ok := theirs[run]; ok && t > 0 {
			ratios = append(ratios, v/t)
		}
	}
	if len(ratios) == 0 {
		return ""
	}
	return fmt.Sprintf("within rounds: median %.3f, range %.3f-%.3f", median(ratios), slices.Min(ratios), slices.Max(ratios))
}

func reportMemory(w io.Writer, recs []Record) {
	if g, ok := find(recs, "memory", "growth"); ok {
		rc, _ := find(recs, "memory", "recorders")
		h5, _ := find(recs, "memory", "heap-1e5")
		h7, _ := find(recs, "memory", "heap-1e7")
		fmt.Fprintf(w, "\n(b) Memory: %s stats.Recorder (highest %s, 3 significant digits) written round-robin with %s values; live heap after runtime.GC\n",
			g.Info["recorders"], g.Info["highest"], g.Info["values"])
		table(w,
			fmt.Sprintf("the recorders themselves\t%s", mib(int64(rc.Value))),
			fmt.Sprintf("live heap at 10^5 values\t%s", mib(int64(h5.Value))),
			fmt.Sprintf("live heap at 10^7 values\t%s", mib(int64(h7.Value))),
			fmt.Sprintf("growth from 10^5 to 10^7\t%+d bytes (target <= 1 MB: %s)", int64(g.Value), verdict(g.Value <= 1e6)),
			fmt.Sprintf("time per Record\t%s", g.Info["recordCost"]),
		)
	}
	if r, ok := find(recs, "rss", "vmhwm"); ok {
		start, _ := find(recs, "rss", "vmhwm-start")
		heap, _ := find(recs, "rss", "heap-after")
		fmt.Fprintf(w, "    peak RSS (VmHWM) of a process sending %s requests with the http task, %s connections, full speed: %s\n",
			r.Info["requests"], r.Info["connections"], mib(int64(r.Value)))
		fmt.Fprintf(w, "      (VmHWM %s before the run; the run took %s, %s; live heap after it %s)\n",
			mib(int64(start.Value)), r.Info["elapsed"], r.Info["rate"], mib(int64(heap.Value)))
	}
}

func reportAccuracy(w io.Writer, recs []Record) {
	floor, ok := find(recs, "accuracy", "floor")
	if !ok {
		return
	}
	in := floor.Info
	fmt.Fprintf(w, "\n(c) Accuracy: sampleapp --latency %s --seed %s; %s repetitions of %s requests (%s in all), %s connections, qps %s\n",
		in["latency"], in["seed"], in["reps"], in["requests"], in["total"], in["connections"], in["qps"])
	if r, ok := find(recs, "env", "accuracy-pinned"); ok {
		if r.Value == 1 {
			fmt.Fprintln(w, "    servers pinned to CPU 0, load to CPU 1")
		} else {
			fmt.Fprintln(w, "    servers and load not pinned (free to move away from other work)")
		}
	}
	fmt.Fprintf(w, "    floor: p50 of %s requests with the same load to sampleapp --latency 0, before the first repetition and after each: %s ms (p99 %s ms)\n",
		in["floorN"], in["floors"], in["floorP99s"])
	fmt.Fprintf(w, "    a repetition's floor is the mean of the floors around it; their mean is %.3f ms\n", floor.Value)
	// On a quiet 2-CPU VM the floor's p99 stays near 1-2.5 ms.
	switch worst := atof(in["worstFloorP99"]); {
	case worst > 4:
		fmt.Fprintf(w, "    CONTAMINATED: a floor's p99 reached %.1f ms (quiet: about 1-2.5 ms): other work on the machine delayed requests, and the errors below include that\n", worst)
	case worst > 2.5:
		fmt.Fprintf(w, "    note: a floor's p99 reached %.1f ms (quiet: about 1-2.5 ms): some requests were delayed by other work\n", worst)
	}
	fmt.Fprintln(w, "    reported = the task's percentile over all repetitions (their histograms merged)")
	fmt.Fprintln(w, "    theory   = MIN + (MAX-MIN)q + floor; SE = sampling standard error of the empirical quantile of all requests, (MAX-MIN)sqrt(q(1-q)/n)")
	fmt.Fprintln(w, "    drawn    = the same quantile of the latencies the seeded server injected + floor: no sampling error")
	fmt.Fprintln(w, "    per repetition: reported/drawn - 1 in each repetition; the target is checked on their median")
	rows := []string{"pct\treported ms\ttheory ms\terror\tSE\tdrawn ms\terror\tper repetition\tmedian\ttarget |error| <= 1%"}
	for _, r := range recs {
		if r.Bench != "accuracy" || !strings.HasPrefix(r.Name, "p") {
			continue
		}
		te, se, de, rm := atof(r.Info["theoryErr"]), atof(r.Info["relSE"]), atof(r.Info["drawnErr"]), atof(r.Info["repMedian"])
		target := verdict(rm >= -0.01 && rm <= 0.01)
		if r.Name == "p99.9" {
			target = "none (shows delays in the tail)"
		}
		rows = append(rows, fmt.Sprintf("%s\t%.3f\t%s\t%+.2f%%\t%.2f%%\t%s\t%+.2f%%\t%s\t%+.2f%%\t%s",
			r.Name, r.Value, r.Info["theory"], 100*te, 100*se, r.Info["drawn"], 100*de, r.Info["repErrs"], 100*rm, target))
	}
	table(w, rows...)
	if sr, ok := find(recs, "accuracy", "server-requests"); ok {
		note := "as the drawn column assumes"
		if strconv.FormatFloat(sr.Value, 'f', -1, 64) != in["total"] {
			note = "NOT the number sent, so the drawn column is off"
		}
		fmt.Fprintf(w, "    the latency server answered %.0f requests, %s\n", sr.Value, note)
	}
}

func reportHook(w io.Writer, recs []Record) {
	for _, r := range recs {
		if r.Bench == "hook" {
			fmt.Fprintf(w, "\n(hook) go test -bench %s ./pkg/stats: %.1f %s\n", r.Name, r.Value, r.Unit)
		}
	}
}

func atof(s string) float64 {
	v, _ := strconv.ParseFloat(s, 64)
	return v
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT MET"
}

// medianOr formats the median of vs times scale, or "-" when vs is empty.
func medianOr(vs []float64, format string, scale float64) string {
	if len(vs) == 0 {
		return "-"
	}
	return fmt.Sprintf(format, scale*median(vs))
}

func median(vs []float64) float64 {
	s := slices.Sorted(slices.Values(vs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// cpuModel names the processor, for the reader of the figures.
func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for line := range strings.Lines(string(data)) {
		if name, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(name) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}
