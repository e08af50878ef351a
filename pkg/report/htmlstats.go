package report

import (
	"fmt"
	"html/template"
	"maps"
	"slices"
	"strings"

	"github.com/iter8-tools/iter8/pkg/experiment"
)

// This file builds the html report's views of comparisons, probabilities of
// being best and the trend over loops.

type htmlComparison struct {
	Metric, Versions, Test, Confidence string
	Effect, PValue, Counts, Verdict    string
	// Class colours the verdict: ok (better), no (worse) or muted.
	Class string
	Note  string
}

type htmlReward struct {
	Metric, Direction, Best string
	Rows                    []rewardRow
	Reason                  string
}

type htmlTrend struct {
	// Versions head the SLO columns of the loop table, and Verdicts its
	// comparison columns ("v2 http/latency-p95").
	Versions []string
	Verdicts []string
	Loops    []htmlLoop
	Charts   []htmlTrendChart
}

type htmlLoop struct {
	Loop     int
	Time     string
	Failed   bool
	SLOs     []htmlMark
	Verdicts []htmlMark
}

// htmlMark is one cell of the loop table: an SLO mark or a verdict.
type htmlMark struct {
	Text, Class string
}

type htmlTrendChart struct {
	Metric, Unit string
	// ID is the plot's element id.
	ID string
	// Traces is the plot's data as JSON, one line per version; Layout its
	// layout.
	Traces, Layout template.JS
	// Rows is the same data as a table, for builds without plotly.js.
	Rows []htmlTrendRow
}

type htmlTrendRow struct {
	Loop  int
	Cells []string
}

type lineTrace struct {
	Name string     `json:"name"`
	Type string     `json:"type"`
	Mode string     `json:"mode"`
	X    []int      `json:"x"`
	Y    []*float64 `json:"y"`
}

type axis struct {
	Title     map[string]string `json:"title"`
	TickMode  string            `json:"tickmode,omitempty"`
	TickVals  []int             `json:"tickvals,omitempty"`
	TickFmt   string            `json:"tickformat,omitempty"`
	RangeMode string            `json:"rangemode,omitempty"`
}

type lineLayout struct {
	XAxis  axis           `json:"xaxis"`
	YAxis  axis           `json:"yaxis"`
	Margin map[string]int `json:"margin"`
}

// maxLoopTicks is how many loops a trend's x axis labels one by one; beyond
// it plotly picks the ticks.
const maxLoopTicks = 20

func htmlComparisons(r *experiment.Result) []htmlComparison {
	var out []htmlComparison
	for _, c := range r.Comparisons {
		out = append(out, htmlComparison{
			Metric: c.Metric, Versions: comparisonVersions(c), Test: string(c.Test),
			Confidence: formatConfidence(c.Confidence), Effect: FormatEffect(c),
			PValue: formatPValue(comparisonPValue(c)), Counts: formatCounts(c),
			Verdict: string(c.Verdict), Class: verdictClass(c.Verdict), Note: comparisonNote(c),
		})
	}
	return out
}

func verdictClass(v experiment.Verdict) string {
	switch v {
	case experiment.VerdictBetter:
		return "ok"
	case experiment.VerdictWorse:
		return "no"
	default:
		return "muted"
	}
}

func htmlRewards(r *experiment.Result) []htmlReward {
	if !hasRewardStats(r) {
		return nil
	}
	var out []htmlReward
	for _, rw := range r.Rewards {
		out = append(out, htmlReward{Metric: rw.Metric, Direction: string(rw.Direction),
			Best: rw.Best, Rows: rewardRows(r, rw), Reason: rw.Reason})
	}
	return out
}

// htmlTrendView lays out the history of an experiment with loops: a table
// of SLO marks and verdicts per loop and, when there is more than one loop,
// a chart per trend metric.
func htmlTrendView(r *experiment.Result) (*htmlTrend, error) {
	if !hasLoops(r) || len(r.History) == 0 {
		return nil, nil
	}
	versions, keys := trendVersions(r), verdictKeys(r)
	t := &htmlTrend{Loops: htmlLoops(r.History, versions, keys)}
	for _, v := range versions {
		t.Versions = append(t.Versions, experiment.VersionName(v))
	}
	for _, k := range keys {
		t.Verdicts = append(t.Verdicts, experiment.VersionName(k.Candidate)+" "+k.Metric)
	}
	if len(r.History) < 2 {
		return t, nil
	}
	loops := make([]int, len(r.History))
	for i, l := range r.History {
		loops[i] = l.Loop
	}
	for _, metric := range trendMetrics(r) {
		c, err := htmlTrendChartOf(r, versions, loops, metric)
		if err != nil {
			return nil, fmt.Errorf("trend of %s: %w", metric, err)
		}
		t.Charts = append(t.Charts, c)
	}
	return t, nil
}

// htmlLoops has a row per loop of history: its SLO marks by version, and
// its verdicts by key.
func htmlLoops(history []experiment.LoopSummary, versions []string, keys []experiment.VerdictKey) []htmlLoop {
	times := loopTimes(history)
	var out []htmlLoop
	for i, l := range history {
		hl := htmlLoop{Loop: l.Loop, Time: times[i], Failed: l.Failed}
		for _, v := range versions {
			m := htmlMark{Text: "-", Class: "muted"}
			if ok, found := l.SLOsSatisfied[v]; found {
				m = htmlMark{Text: mark(ok), Class: "no"}
				if ok {
					m.Class = "ok"
				}
			}
			hl.SLOs = append(hl.SLOs, m)
		}
		for _, k := range keys {
			m := htmlMark{Text: "-", Class: "muted"}
			if v, ok := l.Verdicts[k]; ok {
				m = htmlMark{Text: string(v), Class: verdictClass(v)}
			}
			hl.Verdicts = append(hl.Verdicts, m)
		}
		out = append(out, hl)
	}
	return out
}

// htmlTrendChartOf plots a metric over the loops, a line per version, and
// keeps the same values, with verdicts, as a table.
func htmlTrendChartOf(r *experiment.Result, versions []string, loops []int, metric string) (htmlTrendChart, error) {
	c := htmlTrendChart{Metric: metric, Unit: metricUnit(r, metric),
		ID: "trend-" + strings.NewReplacer("/", "-", ".", "-", " ", "-").Replace(metric)}
	var traces []lineTrace
	for _, v := range versions {
		tr := lineTrace{Name: experiment.VersionName(v), Type: "scatter", Mode: "lines+markers", X: loops}
		for _, l := range r.History {
			var y *float64
			if val, ok := l.Metrics[v][metric]; ok {
				y = &val
			}
			tr.Y = append(tr.Y, y)
		}
		if slices.ContainsFunc(tr.Y, func(y *float64) bool { return y != nil }) {
			traces = append(traces, tr)
		}
	}
	for _, l := range r.History {
		row := htmlTrendRow{Loop: l.Loop}
		for _, v := range versions {
			cell := "-"
			if val, ok := l.Metrics[v][metric]; ok {
				cell = FormatValue(val)
			}
			if verdict, ok := loopVerdict(l, v, metric); ok && v != "" {
				cell += " (" + string(verdict) + ")"
			}
			row.Cells = append(row.Cells, cell)
		}
		c.Rows = append(c.Rows, row)
	}
	yTitle := metric
	if c.Unit != "" {
		yTitle += " (" + c.Unit + ")"
	}
	layout := lineLayout{
		XAxis:  axis{Title: map[string]string{"text": "loop"}, TickFmt: "d"},
		YAxis:  axis{Title: map[string]string{"text": yTitle}, RangeMode: "tozero"},
		Margin: map[string]int{"t": 20},
	}
	if len(loops) <= maxLoopTicks {
		layout.XAxis.TickMode, layout.XAxis.TickVals = "array", loops
	}
	var err error
	if c.Traces, err = jsonJS(traces); err != nil {
		return c, err
	}
	c.Layout, err = jsonJS(layout)
	return c, err
}

// verdictKeys lists the LoopSummary.Verdicts keys of the history: those of
// the comparisons first, in order, then any other, sorted.
func verdictKeys(r *experiment.Result) []experiment.VerdictKey {
	inHistory := map[experiment.VerdictKey]bool{}
	for _, l := range r.History {
		for k := range l.Verdicts {
			inHistory[k] = true
		}
	}
	var out []experiment.VerdictKey
	for _, c := range r.Comparisons {
		k := experiment.VerdictKey{Candidate: c.Candidate, Metric: c.Metric}
		if inHistory[k] && !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	for _, k := range slices.SortedFunc(maps.Keys(inHistory), byCandidateMetric) {
		if !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out
}

// metricUnit returns the unit of a metric, from any version that has it.
func metricUnit(r *experiment.Result, metric string) string {
	for _, v := range r.Versions {
		if m, ok := v.Metrics[metric]; ok && m.Unit != "" {
			return m.Unit
		}
	}
	return ""
}
