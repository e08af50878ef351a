package report

import (
	"cmp"
	"fmt"
	"io"
	"iter"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/iter8-tools/iter8/pkg/experiment"
)

// This file shows how an experiment with loops went, loop by loop, from the
// result's History.

// hasLoops reports whether r comes from an experiment that runs its tasks
// in more than one loop.
func hasLoops(r *experiment.Result) bool {
	return r.Loops > 1 || len(r.History) > 1
}

// loopPhrase says which loop r is at, such as "loop 3 of 10".
func loopPhrase(r *experiment.Result) string {
	loop := r.Loop
	if loop == 0 && len(r.History) > 0 {
		loop = r.History[len(r.History)-1].Loop
	}
	switch {
	case loop == 0 && r.Loops > 0:
		return fmt.Sprintf("before loop 1 of %d", r.Loops)
	case r.Loops > 0:
		return fmt.Sprintf("loop %d of %d", loop, r.Loops)
	default:
		return fmt.Sprintf("loop %d", loop)
	}
}

// trendFallback are the metrics a trend shows when no SLO or comparison
// names one.
var trendFallback = []string{"http/latency-p95", "http/error-rate"}

// banditWeight is the bandit task's weight of each version (its
// WeightMetric: the report imports no task).
const banditWeight = "bandit/weight"

// trendMetrics picks the metrics whose trend to show: those the SLOs and
// comparisons use, then the bandit's weights, in that order, and which the
// history has a value or a verdict of. Without any, the key metrics of
// trendFallback, or else the first three the history has.
func trendMetrics(r *experiment.Result) []string {
	versions := trendVersions(r)
	// A verdict shows in its candidate's row; without one it does not show.
	shown := func(k experiment.VerdictKey) bool { return k.Candidate != "" && slices.Contains(versions, k.Candidate) }
	inHistory := map[string]bool{}
	for _, l := range r.History {
		for _, ms := range l.Metrics {
			for m := range ms {
				inHistory[m] = true
			}
		}
		for k := range l.Verdicts {
			if shown(k) {
				inHistory[k.Metric] = true
			}
		}
	}
	var out []string
	add := func(m string) {
		if inHistory[m] && !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	for _, s := range r.SLOs {
		add(s.Metric)
	}
	for _, c := range r.Comparisons {
		add(c.Metric)
	}
	add(banditWeight)
	for _, l := range r.History {
		for _, k := range slices.SortedFunc(maps.Keys(l.Verdicts), byCandidateMetric) {
			if shown(k) {
				add(k.Metric)
			}
		}
	}
	if len(out) > 0 {
		return out
	}
	for _, m := range trendFallback {
		add(m)
	}
	if len(out) > 0 {
		return out
	}
	all := slices.Sorted(maps.Keys(inHistory))
	return all[:min(len(all), 3)]
}

// trendVersions lists the versions of a trend: those of the result, in
// order, then any other the history names.
func trendVersions(r *experiment.Result) []string {
	var others []iter.Seq[string]
	for _, l := range r.History {
		others = append(others, maps.Keys(l.Metrics), maps.Keys(l.SLOsSatisfied))
	}
	return versionsAnd(r, others...)
}

// versionsAnd lists the versions of the result, in order, then the others,
// sorted.
func versionsAnd(r *experiment.Result, others ...iter.Seq[string]) []string {
	var out, rest []string
	for _, v := range r.Versions {
		out = append(out, v.Name)
	}
	for _, names := range others {
		rest = slices.AppendSeq(rest, names)
	}
	slices.Sort(rest)
	for _, v := range rest {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// byCandidateMetric orders verdict keys as their JSON forms sort (a space
// sorts before every character of a version's name).
func byCandidateMetric(a, b experiment.VerdictKey) int {
	return cmp.Or(strings.Compare(a.Candidate, b.Candidate), strings.Compare(a.Metric, b.Metric))
}

// loopVerdict returns the verdict of a candidate's comparison on a metric
// in one loop.
func loopVerdict(l experiment.LoopSummary, candidate, metric string) (experiment.Verdict, bool) {
	v, ok := l.Verdicts[experiment.VerdictKey{Candidate: candidate, Metric: metric}]
	return v, ok
}

// loopTimes shows when each loop of the history ended (or began, if it has
// no end): as a time of day when they all fall on one day, with the date
// otherwise.
func loopTimes(history []experiment.LoopSummary) []string {
	at := make([]time.Time, len(history))
	days := map[string]bool{}
	for i, l := range history {
		at[i] = l.EndTime
		if at[i].IsZero() {
			at[i] = l.StartTime
		}
		if !at[i].IsZero() {
			days[at[i].Format(time.DateOnly)] = true
		}
	}
	layout := time.TimeOnly
	if len(days) > 1 {
		layout = "01-02 15:04"
	}
	out := make([]string, len(history))
	for i, t := range at {
		out[i] = "-"
		if !t.IsZero() {
			out[i] = t.Format(layout)
		}
	}
	return out
}

// compact shows a metric value in a trend's narrow columns: four
// significant digits, and whole numbers from a thousand up.
func compact(v float64) string {
	if math.Abs(v) >= 1000 {
		return FormatValue(math.Round(v))
	}
	return FormatValue(roundSignificant(v, 4))
}

// verdictMark is a verdict in a trend cell: better and worse spelled out,
// and inconclusive (the usual state) kept short.
func verdictMark(v experiment.Verdict) string {
	if v == experiment.VerdictInconclusive {
		return "?"
	}
	return string(v)
}

// metricHeaders drops a namespace ("http/") that every metric shares, so
// that a trend of three metrics fits in 80 columns; it returns the
// namespace, or "" when the metrics do not share one.
func metricHeaders(metrics []string) ([]string, string) {
	if len(metrics) == 0 {
		return nil, ""
	}
	i := strings.Index(metrics[0], "/")
	if i < 0 {
		return metrics, ""
	}
	ns := metrics[0][:i+1]
	out := make([]string, len(metrics))
	for j, m := range metrics {
		rest, ok := strings.CutPrefix(m, ns)
		if !ok || rest == "" {
			return metrics, ""
		}
		out[j] = rest
	}
	return out, ns
}

// writeTrend writes one row per loop and version of the history: the
// loop's number and end, whether the version met all its SLOs, and its
// values of the trend metrics, each with the verdict of the version's
// comparison with the baseline.
func writeTrend(w io.Writer, r *experiment.Result) {
	if !hasLoops(r) || len(r.History) == 0 {
		return
	}
	metrics := trendMetrics(r)
	versions := trendVersions(r)
	headers, ns := metricHeaders(metrics)
	title := "Trend"
	if ns != "" {
		title += " (" + ns + " metrics)"
	}
	fmt.Fprintf(w, "\n%s\n", Printable(title))
	header := []string{"LOOP", "END", "VERSION", "SLOS"}
	for _, h := range headers {
		header = append(header, Printable(h))
	}
	fmt.Fprintf(w, "  %s\n", strings.Join(header, "\t"))
	anyVerdict := false
	times := loopTimes(r.History)
	for j, l := range r.History {
		loop, end := fmt.Sprint(l.Loop), times[j]
		if l.Failed {
			loop += " failed"
		}
		for i, v := range versions {
			if i > 0 {
				loop, end = "", ""
			}
			slo := "-"
			if ok, found := l.SLOsSatisfied[v]; found {
				slo = mark(ok)
			}
			cells := []string{loop, end, textVersion(v), slo}
			for _, m := range metrics {
				cell := "-"
				if val, ok := l.Metrics[v][m]; ok {
					cell = compact(val)
				}
				if verdict, ok := loopVerdict(l, v, m); ok && v != "" {
					cell += " " + verdictMark(verdict)
					anyVerdict = true
				}
				cells = append(cells, cell)
			}
			fmt.Fprintf(w, "  %s\n", strings.Join(cells, "\t"))
		}
	}
	if anyVerdict {
		fmt.Fprintln(w, "  better, worse: the candidate against the baseline; ?: inconclusive")
	}
}
