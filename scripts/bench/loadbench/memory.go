package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/iter8-tools/iter8/pkg/stats"
	"github.com/iter8-tools/iter8/pkg/task/http"
)

// memoryCmd records 10^5, then 10^7 latencies into per-thread recorders like
// the http task's and measures the live heap after a GC at both points.
func memoryCmd(_ context.Context, args []string, out *emitter, stderr io.Writer) error {
	fs := flag.NewFlagSet("memory", flag.ContinueOnError)
	n := fs.Int("recorders", 16, "per-thread recorders, written round-robin")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if *n < 1 {
		return usageError{fmt.Errorf("--recorders must be positive")}
	}
	const lo, hi = 100 * time.Microsecond, 5 * time.Second
	// Log-uniform values over 100µs-5s touch every HDR bucket range in
	// between; precomputed so that drawing them allocates nothing.
	values := make([]time.Duration, 1<<16)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range values {
		values[i] = time.Duration(float64(lo) * math.Exp(rng.Float64()*math.Log(float64(hi)/float64(lo))))
	}
	base := liveHeap()
	// The http task's recorders track up to twice the request timeout.
	recs := make([]*stats.Recorder, *n)
	origin := time.Now()
	for i := range recs {
		recs[i] = stats.NewRecorder(2*http.DefaultTimeout, origin)
	}
	var recorded int64
	// A request every microsecond: 10^7 requests span 10 s, so the time
	// blocks coarsen as in a real run.
	record := func(upTo int64) {
		for ; recorded < upTo; recorded++ {
			at := origin.Add(time.Duration(recorded) * time.Microsecond)
			recs[recorded%int64(len(recs))].Record(at, values[recorded&(1<<16-1)], false)
		}
	}
	record(1e5)
	at1e5 := liveHeap()
	start := time.Now()
	record(1e7)
	perValue := time.Since(start) / time.Duration(1e7-1e5)
	at1e7 := liveHeap()

	var count, dropped int64
	for _, r := range recs {
		count += r.Count()
		dropped += r.Dropped()
	}
	// Both stay live across every measurement, so that only the
	// recorders' own growth shows.
	runtime.KeepAlive(recs)
	runtime.KeepAlive(values)
	if count+dropped != 1e7 || dropped != 0 {
		return fmt.Errorf("recorders hold %d values and dropped %d, want 10000000 and 0", count, dropped)
	}
	growth := at1e7 - at1e5
	fmt.Fprintf(stderr, "memory: %d recorders take %s; live heap %s after 1e5 values, %s after 1e7 (growth %d bytes); %v per Record\n",
		*n, mib(at1e5-base), mib(at1e5), mib(at1e7), growth, perValue)
	info := map[string]string{
		"recorders":  strconv.Itoa(*n),
		"values":     "log-uniform 100µs-5s",
		"highest":    (2 * http.DefaultTimeout).String(),
		"recordCost": perValue.String(),
	}
	for _, r := range []Record{
		{Name: "recorders", Value: float64(at1e5 - base), Unit: "bytes"},
		{Name: "heap-1e5", Value: float64(at1e5), Unit: "bytes"},
		{Name: "heap-1e7", Value: float64(at1e7), Unit: "bytes"},
		{Name: "growth", Value: float64(growth), Unit: "bytes"},
	} {
		r.Bench, r.Info = "memory", info
		if err := out.emit(r); err != nil {
			return err
		}
	}
	return nil
}

// liveHeap returns the bytes of live heap objects after a full GC.
func liveHeap() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

func mib(b int64) string { return fmt.Sprintf("%.2f MiB", float64(b)/(1<<20)) }

// rssCmd sends requests with the http task at full speed and reports the
// process's peak resident set size.
func rssCmd(ctx context.Context, args []string, out *emitter, stderr io.Writer) error {
	fs := flag.NewFlagSet("rss", flag.ContinueOnError)
	rawURL := fs.String("url", "", "loopback `URL` to load")
	n := fs.Int64("requests", 1_000_000, "numRequests of the http task")
	conns := fs.Int("connections", 16, "connections")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	u, err := loopbackURL("url", *rawURL)
	if err != nil {
		return err
	}
	t, env, err := httpTask(map[string]any{"url": u.String(), "qps": 0, "connections": *conns, "numRequests": *n})
	if err != nil {
		return err
	}
	before, err := procStatus("VmHWM")
	if err != nil {
		return err
	}
	start := time.Now()
	if err := t.Run(ctx, env); err != nil {
		return fmt.Errorf("run the http task: %w", err)
	}
	elapsed := time.Since(start)
	peak, err := procStatus("VmHWM")
	if err != nil {
		return err
	}
	m, err := metrics(env.Result, "http/request-count", "http/error-count")
	if err != nil {
		return err
	}
	if int64(m["http/request-count"]) != *n || m["http/error-count"] != 0 {
		return fmt.Errorf("the task sent %v requests with %v errors, want %d without errors", m["http/request-count"], m["http/error-count"], *n)
	}
	heap := liveHeap()
	runtime.KeepAlive(env)
	fmt.Fprintf(stderr, "rss: %d requests in %v (%.0f req/s); VmHWM %s before the run, %s after; live heap after the run %s\n",
		*n, elapsed.Round(time.Millisecond), float64(*n)/elapsed.Seconds(), mib(before), mib(peak), mib(heap))
	info := map[string]string{
		"requests":    strconv.FormatInt(*n, 10),
		"connections": strconv.Itoa(*conns),
		"elapsed":     elapsed.Round(time.Millisecond).String(),
		"rate":        fmt.Sprintf("%.0f req/s", float64(*n)/elapsed.Seconds()),
	}
	for _, r := range []Record{
		{Name: "vmhwm-start", Value: float64(before), Unit: "bytes"},
		{Name: "vmhwm", Value: float64(peak), Unit: "bytes"},
		{Name: "heap-after", Value: float64(heap), Unit: "bytes"},
	} {
		r.Bench, r.Info = "rss", info
		if err := out.emit(r); err != nil {
			return err
		}
	}
	return nil
}

// procStatus reads a "kB" field of /proc/self/status, in bytes.
func procStatus(field string) (int64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("read peak RSS: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != field {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("read %s in /proc/self/status: %q", field, rest)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("no %s in /proc/self/status", field)
}
