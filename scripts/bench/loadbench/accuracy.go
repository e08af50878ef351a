package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/stats"
	"github.com/iter8-tools/iter8/test/sampleapp"
)

// accuracyCmd compares the percentiles that the http task reports against a
// sample app with uniform latency with the true ones: the quantiles of the
// distribution and, free of sampling error, the quantiles of the latencies
// that the seeded server actually drew; both plus the loopback floor, the
// median latency of the same load against a server without latency.
//
// The load runs in repetitions, with the floor measured before the first and
// after each one; a repetition's floor is the mean of the floors around it,
// as the floor drifts with the machine. Other work on a shared machine
// delays some requests, which inflates the percentiles of the repetitions
// it overlaps; the median error over repetitions is robust to one such
// repetition, and the pooled figures (all repetitions' histograms merged)
// are printed as well.
func accuracyCmd(ctx context.Context, args []string, out *emitter, stderr io.Writer) error {
	fs := flag.NewFlagSet("accuracy", flag.ContinueOnError)
	floorURL := fs.String("floor-url", "", "loopback `URL` of a sample app without latency")
	rawURL := fs.String("url", "", "loopback `URL` of a sample app started with --latency and --seed")
	spec := fs.String("latency", "uniform:2ms-20ms", "the server's --latency; uniform only")
	seed := fs.Uint64("seed", 0, "the server's --seed; the server must be fresh (no request yet)")
	conns := fs.Int("connections", 16, "connections")
	qps := fs.Float64("qps", 800, "requests per second, in total")
	reps := fs.Int("reps", 3, "repetitions")
	n := fs.Int64("requests", 13000, "requests per repetition against the server with latency")
	floorN := fs.Int64("floor-requests", 2000, "requests per floor measurement")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	fu, err := loopbackURL("floor-url", *floorURL)
	if err != nil {
		return err
	}
	u, err := loopbackURL("url", *rawURL)
	if err != nil {
		return err
	}
	lo, hi, err := parseUniform(*spec)
	if err != nil {
		return usageError{err}
	}
	lat, err := sampleapp.ParseLatency(*spec)
	if err != nil {
		return usageError{err}
	}
	if *seed == 0 || *reps < 1 || *n < 100 || *floorN < 100 || *qps <= 0 || *conns < 1 {
		return usageError{fmt.Errorf("want --seed > 0, --reps >= 1, --requests and --floor-requests >= 100, --qps and --connections > 0")}
	}

	dev, err := checkReplica(ctx, lat, *seed, 25)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "accuracy: replica of the server's draws matches an in-process handler: median deviation %v over 25 requests\n", dev)

	load := func(target string, requests int64) (*experiment.Result, error) {
		t, env, err := httpTask(map[string]any{
			"url": target, "qps": *qps, "connections": *conns, "numRequests": requests,
		})
		if err != nil {
			return nil, err
		}
		if err := t.Run(ctx, env); err != nil {
			return nil, fmt.Errorf("run the http task against %s: %w", target, err)
		}
		m, err := metrics(env.Result, "http/request-count", "http/error-count")
		if err != nil {
			return nil, err
		}
		if int64(m["http/request-count"]) != requests || m["http/error-count"] != 0 {
			return nil, fmt.Errorf("%s: %v requests with %v errors, want %d without errors",
				target, m["http/request-count"], m["http/error-count"], requests)
		}
		return env.Result, nil
	}
	quantiles := []float64{50, 95, 99, 99.9}
	// summary reads the percentiles (ms) of a run from its stored histogram.
	summary := func(hs ...*stats.Histogram) (map[float64]float64, error) {
		h, err := stats.MergeHistograms(hs...)
		if err != nil {
			return nil, err
		}
		s, err := h.Summarize(quantiles)
		if err != nil {
			return nil, err
		}
		out := map[float64]float64{}
		for q, d := range s.Percentiles {
			out[q] = msecOf(d)
		}
		return out, nil
	}
	histogram := func(r *experiment.Result) *stats.Histogram {
		return r.Version("").Histograms["http/latency"]
	}

	// floors[k] is measured before repetition k and after repetition k-1.
	var floors []map[float64]float64
	measureFloor := func() error {
		r, err := load(fu.String(), *floorN)
		if err != nil {
			return err
		}
		f, err := summary(histogram(r))
		if err != nil {
			return err
		}
		floors = append(floors, f)
		fmt.Fprintf(stderr, "accuracy: floor %d: p50 %.3f ms, p99 %.3f ms\n", len(floors), f[50], f[99])
		return nil
	}
	if err := measureFloor(); err != nil {
		return err
	}
	type rep struct {
		reported map[float64]float64
		floor    float64
		drawn    []float64 // sorted injected latencies, ms
		err      map[float64]float64
	}
	runs := make([]rep, *reps)
	var hs []*stats.Histogram
	for k := range runs {
		r, err := load(u.String(), *n)
		if err != nil {
			return err
		}
		if err := measureFloor(); err != nil {
			return err
		}
		h := histogram(r)
		hs = append(hs, h)
		reported, err := summary(h)
		if err != nil {
			return err
		}
		if m, ok := r.Value("", "http/latency-p50"); !ok || math.Abs(m-reported[50]) > 0.001 {
			return fmt.Errorf("http/latency-p50 is %v ms, its histogram says %v ms", m, reported[50])
		}
		// The server numbers requests from 1 in arrival order and draws the
		// latency of request i from its seed and i alone, so repetition k
		// got exactly the draws of requests k*n+1 .. (k+1)*n.
		drawn := make([]float64, *n)
		for i := range drawn {
			drawn[i] = msecOf(replicaDraw(lat, *seed, uint64(int64(k)**n+int64(i)+1)))
		}
		slices.Sort(drawn)
		runs[k] = rep{reported: reported, drawn: drawn, err: map[float64]float64{},
			floor: (floors[k][50] + floors[k+1][50]) / 2}
		for _, q := range quantiles {
			runs[k].err[q] = reported[q]/(rankValue(drawn, q/100)+runs[k].floor) - 1
		}
		fmt.Fprintf(stderr, "accuracy: repetition %d: p50 %.3f ms (%+.2f%%), p95 %.3f ms (%+.2f%%), p99 %.3f ms (%+.2f%%) against the draws + floor %.3f ms\n",
			k+1, reported[50], 100*runs[k].err[50], reported[95], 100*runs[k].err[95], reported[99], 100*runs[k].err[99], runs[k].floor)
	}

	pooled, err := summary(hs...)
	if err != nil {
		return err
	}
	var allDrawn []float64
	var floor, worstFloorP99 float64
	for _, r := range runs {
		allDrawn = append(allDrawn, r.drawn...)
		floor += r.floor / float64(len(runs))
	}
	for _, f := range floors {
		worstFloorP99 = max(worstFloorP99, f[99])
	}
	slices.Sort(allDrawn)
	total := int64(len(allDrawn))
	loMs, hiMs := msecOf(lo), msecOf(hi)
	info := map[string]string{
		"latency":       *spec,
		"seed":          strconv.FormatUint(*seed, 10),
		"reps":          strconv.Itoa(*reps),
		"requests":      strconv.FormatInt(*n, 10),
		"total":         strconv.FormatInt(total, 10),
		"connections":   strconv.Itoa(*conns),
		"qps":           strconv.FormatFloat(*qps, 'g', -1, 64),
		"floorN":        strconv.FormatInt(*floorN, 10),
		"floors":        joinFloats(floors, 50),
		"floorP99s":     joinFloats(floors, 99),
		"worstFloorP99": strconv.FormatFloat(worstFloorP99, 'f', 3, 64),
		"replicaDev":    dev.String(),
	}
	if err := out.emit(Record{Bench: "accuracy", Name: "floor", Value: floor, Unit: "ms", Info: info}); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "%-6s %9s %9s %8s %8s %9s %8s %8s\n", "pooled", "reported", "theory", "error", "samp.SE", "drawn", "error", "rep.med")
	for _, q := range quantiles {
		p := q / 100
		theory := loMs + (hiMs-loMs)*p + floor
		// The empirical p-quantile of n draws from a density f has standard
		// error sqrt(p(1-p)/n)/f(x_p); for U(lo, hi), 1/f = hi-lo.
		se := (hiMs - loMs) * math.Sqrt(p*(1-p)/float64(total))
		sample := rankValue(allDrawn, p) + floor
		var repErrs []float64
		for _, r := range runs {
			repErrs = append(repErrs, r.err[q])
		}
		got := pooled[q]
		rec := Record{Bench: "accuracy", Name: experiment.Percentile(q), Value: got, Unit: "ms", Info: map[string]string{
			"theory":     strconv.FormatFloat(theory, 'f', 4, 64),
			"theoryErr":  strconv.FormatFloat(got/theory-1, 'f', 5, 64),
			"relSE":      strconv.FormatFloat(se/theory, 'f', 5, 64),
			"drawn":      strconv.FormatFloat(sample, 'f', 4, 64),
			"drawnErr":   strconv.FormatFloat(got/sample-1, 'f', 5, 64),
			"repErrs":    joinPercents(repErrs),
			"repMedian":  strconv.FormatFloat(median(repErrs), 'f', 5, 64),
			"repSamples": strconv.FormatInt(*n, 10),
		}}
		fmt.Fprintf(stderr, "%-6s %9.3f %9.3f %+7.2f%% %7.2f%% %9.3f %+7.2f%% %+7.2f%%\n",
			rec.Name, got, theory, 100*(got/theory-1), 100*se/theory, sample, 100*(got/sample-1), 100*median(repErrs))
		if err := out.emit(rec); err != nil {
			return err
		}
	}
	return nil
}

// joinFloats lists one percentile of each floor measurement, in ms.
func joinFloats(fs []map[float64]float64, q float64) string {
	parts := make([]string, len(fs))
	for i, f := range fs {
		parts[i] = strconv.FormatFloat(f[q], 'f', 3, 64)
	}
	return strings.Join(parts, ", ")
}

// joinPercents lists relative errors as signed percentages.
func joinPercents(vs []float64) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = fmt.Sprintf("%+.2f%%", 100*v)
	}
	return strings.Join(parts, ", ")
}

// parseUniform reads "uniform:MIN-MAX".
func parseUniform(s string) (lo, hi time.Duration, err error) {
	arg, ok := strings.CutPrefix(s, "uniform:")
	a, b, ok2 := strings.Cut(arg, "-")
	if ok && ok2 {
		lo, err = time.ParseDuration(a)
		if err == nil {
			hi, err = time.ParseDuration(b)
		}
		if err == nil && 0 <= lo && lo < hi {
			return lo, hi, nil
		}
	}
	return 0, 0, fmt.Errorf("--latency %q: want uniform:MIN-MAX with MIN < MAX, such as uniform:2ms-20ms", s)
}

// replicaDraw is the latency that sampleapp's Handler injects into its
// n-th request (handler.go: draw and mix); checkReplica guards the copy.
func replicaDraw(lat sampleapp.Latency, seed, n uint64) time.Duration {
	x := n + 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	x ^= x >> 31
	return lat.Sample(rand.New(rand.NewPCG(seed, x)))
}

// checkReplica times k requests served one after another by an in-process
// Handler with the same latency and seed, and checks that each took what
// replicaDraw predicts; it returns the median deviation. The handler never
// answers before its deadline but may be descheduled on a busy machine, so a
// few late requests are tolerated; with a wrong replica the deviations are
// spread over milliseconds in both directions.
func checkReplica(ctx context.Context, lat sampleapp.Latency, seed uint64, k int) (time.Duration, error) {
	h := sampleapp.NewHandler(sampleapp.Options{Latency: lat, Seed: seed})
	devs := make([]time.Duration, 0, k)
	late := 0
	for i := 1; i <= k; i++ {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		req := httptest.NewRequestWithContext(ctx, "GET", "/", nil)
		start := time.Now()
		h.ServeHTTP(httptest.NewRecorder(), req)
		took := time.Since(start)
		want := replicaDraw(lat, seed, uint64(i))
		dev := took - want
		if dev < -50*time.Microsecond {
			return 0, fmt.Errorf("replica of sampleapp's latency draws is out of date: request %d took %v, the replica predicts %v", i, took, want)
		}
		if dev > 2*time.Millisecond {
			late++
		}
		devs = append(devs, dev)
	}
	if late > k/5 {
		return 0, fmt.Errorf("replica of sampleapp's latency draws: %d of %d requests took over 2ms longer than predicted; out of date, or the machine is too busy", late, k)
	}
	slices.Sort(devs)
	return devs[len(devs)/2], nil
}

// rankValue is the p-quantile of sorted values with the rank HDR histograms
// use: the value at rank round(p*n), at least 1.
func rankValue(sorted []float64, p float64) float64 {
	rank := max(int(p*float64(len(sorted))+0.5), 1)
	return sorted[rank-1]
}

func msecOf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
