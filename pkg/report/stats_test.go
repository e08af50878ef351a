package report

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"sigs.k8s.io/yaml"

	"github.com/iter8-tools/iter8/pkg/experiment"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// loopsResult is a finished five-loop experiment with two versions: a
// comparison by each test (worse, better, inconclusive with a reason, and
// one that could not be made), a reward with probabilities of being best and
// one without, and a history where a loop failed.
func loopsResult(t *testing.T) *experiment.Result {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "loops.result.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r experiment.Result
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatalf("testdata/loops.result.json: %v", err)
	}
	return &r
}

func text(t *testing.T, r *experiment.Result) string {
	t.Helper()
	var buf bytes.Buffer
	if err := Write(&buf, r, Text); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// rows are the report's lines with their runs of spaces collapsed, so that
// a test can name a row without its column widths.
func rows(out string) []string {
	var rs []string
	for _, l := range strings.Split(out, "\n") {
		rs = append(rs, strings.Join(strings.Fields(l), " "))
	}
	return rs
}

func checkRows(t *testing.T, out string, want ...string) {
	t.Helper()
	have := rows(out)
	for _, w := range want {
		found := false
		for _, h := range have {
			found = found || h == w
		}
		if !found {
			t.Errorf("report lacks the row %q:\n%s", w, out)
		}
	}
}

// section returns the lines of a report from the one that starts with
// title to the next empty line.
func section(out, title string) string {
	i := strings.Index(out, "\n"+title)
	if i < 0 {
		return ""
	}
	s := out[i+1:]
	if j := strings.Index(s, "\n\n"); j >= 0 {
		s = s[:j]
	}
	return s
}

func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (go test ./pkg/report -update writes it): %v", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file %s (go test ./pkg/report -update rewrites it):\n%s", name, path, got)
	}
}

func TestTextComparisons(t *testing.T) {
	out := text(t, loopsResult(t))
	checkGolden(t, "loops.txt", out)
	cmp := section(out, "Comparisons")
	if cmp == "" {
		t.Fatalf("no Comparisons section:\n%s", out)
	}
	// One pair of versions is named once, in the title, so that the table
	// fits 80 columns.
	checkRows(t, cmp,
		"Comparisons (95% confidence): v2 vs v1",
		"METRIC EFFECT P-VALUE N (B/C) VERDICT",
		"http/latency-p95 +20.0% [+12.1%,+28.3%] 0.00031 5000/5000 worse",
		"http/error-rate -0.012 [-0.0187,-0.00531] <0.0001 5000/5000 better",
		"http/latency-mean +1.2% [-3.4%,+5.9%] 0.61 5000/5000 inconclusive",
		"abn/revenue - - - inconclusive",
		"http/latency-mean: need 1200 more requests per version",
		"abn/revenue: no sample of abn/revenue for v1 or v2",
	)
	if strings.Contains(cmp, "http/latency-p95:") {
		t.Errorf("a conclusive comparison without a reason has a note:\n%s", cmp)
	}
}

func TestTextComparisonsOwnConfidence(t *testing.T) {
	r := loopsResult(t)
	r.Comparisons[1].Confidence = 0.99
	r.Comparisons[2].Confidence = 0.995
	out := section(text(t, r), "Comparisons")
	checkRows(t, out,
		"Comparisons: v2 vs v1",
		"METRIC CONFIDENCE EFFECT P-VALUE N (B/C) VERDICT",
		"http/latency-p95 95% +20.0% [+12.1%,+28.3%] 0.00031 5000/5000 worse",
		"http/error-rate 99% -0.012 [-0.0187,-0.00531] <0.0001 5000/5000 better",
		"http/latency-mean 99.5% +1.2% [-3.4%,+5.9%] 0.61 5000/5000 inconclusive",
	)
	// Several candidates keep a column of versions.
	r.Comparisons[3].Candidate = "v3"
	checkRows(t, section(text(t, r), "Comparisons"),
		"METRIC VERSIONS CONFIDENCE EFFECT P-VALUE N (B/C) VERDICT",
		"http/latency-p95 v2 vs v1 95% +20.0% [+12.1%,+28.3%] 0.00031 5000/5000 worse",
		"abn/revenue, v3 vs v1: no sample of abn/revenue for v1 or v2",
	)
}

func TestTextRewards(t *testing.T) {
	r := loopsResult(t)
	out := text(t, r)
	checkRows(t, section(out, "Rewards"),
		"Rewards VERSION P(BEST) EXPECTED LOSS",
		"http/latency-mean (min) v1 (best) 91.2% 0.00123",
		"v2 8.8% 0.0541",
		"abn/revenue (max) - - -",
		"abn/revenue: no version has a sample of abn/revenue",
	)

	// Probabilities near certainty are not rounded to it.
	r.Rewards[0].ProbabilityBest = map[string]float64{"v1": 0.99996, "v2": 0.00004}
	checkRows(t, section(text(t, r), "Rewards"), "http/latency-mean (min) v1 (best) >99.9% 0.00123", "v2 <0.1% 0.0541")

	// A result from before probabilities has no Rewards section: the Winner
	// line says it all.
	for i := range r.Rewards {
		r.Rewards[i].ProbabilityBest, r.Rewards[i].ExpectedLoss, r.Rewards[i].Reason = nil, nil, ""
	}
	if out := text(t, r); strings.Contains(out, "\nRewards") || !strings.Contains(out, "Winner:      v1 (by http/latency-mean, min)") {
		t.Errorf("rewards without probabilities: want only the Winner line:\n%s", out)
	}
}

func TestTextTrend(t *testing.T) {
	out := text(t, loopsResult(t))
	checkRows(t, out, "State: completed: loop 5 of 5, 2 of 2 tasks done, none failed")
	trend := section(out, "Trend")
	// The SLO metrics (p95, error rate), then the compared ones the history
	// has (latency-mean; not abn/revenue, which it lacks), without the
	// shared http/.
	checkRows(t, trend,
		"Trend (http/ metrics)",
		"LOOP END VERSION SLOS latency-p95 error-rate latency-mean",
		"1 03:05:00 v1 ✔ 9.8 0.02 4.4",
		"v2 ✔ 11.2 ? 0.012 ? 4.5 ?",
		"2 failed 03:06:00 v1 ✔ 9.9 0.018 4.31",
		"3 03:07:00 v1 ✗ 10.1 0.021 4.38",
		"v2 ✗ 12.3 worse 0.008 ? 4.39 ?",
		"5 03:09:00 v1 ✔ 10.02 0.02 4.373",
		"v2 ✗ 12.04 worse 0.008 better 4.426 ?",
		"better, worse: the candidate against the baseline; ?: inconclusive",
	)
	if n := strings.Count(trend, "\n  "); n != 1+2*5+1 {
		t.Errorf("trend has %d rows, want a header, 2 per loop for 5 loops and the legend:\n%s", n, trend)
	}
	for _, l := range strings.Split(trend, "\n") {
		if w := utf8.RuneCountInString(l); w > 80 {
			t.Errorf("trend line is %d columns wide, want at most 80: %q", w, l)
		}
	}
}

// unnamedLoops is a running experiment with the one unnamed version and no
// SLOs or comparisons, at loop 3 of 5, whose history was thinned.
func unnamedLoops() *experiment.Result {
	start := time.Date(2026, 1, 2, 23, 58, 0, 0, time.UTC)
	r := &experiment.Result{Experiment: "soak", Revision: 1, StartTime: start, Loop: 4, Loops: 5,
		Tasks:    []experiment.TaskResult{{Task: "http", State: experiment.TaskSucceeded}, {Task: "assess", State: experiment.TaskPending}},
		Versions: []experiment.VersionResult{{Name: ""}}}
	for i, loop := range []int{1, 2, 4} {
		at := start.Add(time.Duration(i+1) * time.Minute)
		r.History = append(r.History, experiment.LoopSummary{
			Loop: loop, StartTime: at.Add(-50 * time.Second), EndTime: at,
			Metrics: map[string]map[string]float64{"": {
				"http/latency-p95":   10 + float64(i),
				"http/error-rate":    0.001 * float64(i),
				"http/request-count": 1000 * float64(i+1),
				"http/latency-mean":  4,
			}},
			SLOsSatisfied: map[string]bool{"": i != 1},
		})
	}
	return r
}

func TestTextTrendUnnamedVersion(t *testing.T) {
	out := text(t, unnamedLoops())
	checkRows(t, out,
		"State: running: loop 4 of 5, 1 of 2 tasks done",
		// No SLOs or comparisons: the key metrics. The loops span midnight,
		// so times have their date.
		"LOOP END VERSION SLOS latency-p95 error-rate",
		"1 01-02 23:59 default ✔ 10 0",
		"2 01-03 00:00 default ✗ 11 0.001",
		"4 01-03 00:01 default ✔ 12 0.002",
	)
	if strings.Contains(out, "better, worse") {
		t.Errorf("a trend without verdicts explains them:\n%s", out)
	}
}

func TestTextWithoutLoops(t *testing.T) {
	r := histogramResult(t)
	r.Loop, r.Loops = 1, 1
	r.History = []experiment.LoopSummary{{Loop: 1}}
	out := text(t, r)
	for _, unwanted := range []string{"loop", "Trend", "Comparisons", "Rewards"} {
		if strings.Contains(out, unwanted) {
			t.Errorf("a result of one loop without comparisons shows %q:\n%s", unwanted, out)
		}
	}
	checkRows(t, out, "State: completed: 1 of 1 tasks done, none failed")
}

func TestFormatEffect(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	tests := []struct {
		name string
		c    experiment.Comparison
		want string
	}{
		{"relative", experiment.Comparison{Effect: f(0.2), Low: f(0.121), High: f(0.283), Relative: true}, "+20.0% [+12.1%, +28.3%]"},
		{"relative improvement", experiment.Comparison{Effect: f(-0.05), Low: f(-0.0912), High: f(-0.0088), Relative: true}, "-5.0% [-9.1%, -0.9%]"},
		{"difference", experiment.Comparison{Effect: f(0.0023000000000000004), Low: f(0), High: f(0.0046)}, "+0.0023 [+0, +0.0046]"},
		{"no interval", experiment.Comparison{Effect: f(-1.5)}, "-1.5"},
		{"no estimate", experiment.Comparison{}, "-"},
	}
	for _, tc := range tests {
		if got := FormatEffect(tc.c); got != tc.want {
			t.Errorf("FormatEffect(%s) = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestFormatsRoundTripAllFields: json and yaml carry comparisons,
// probabilities and the history unchanged.
func TestFormatsRoundTripAllFields(t *testing.T) {
	r := loopsResult(t)
	r.History = append(r.History, unnamedLoops().History...)
	want, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []Format{JSON, YAML} {
		var buf bytes.Buffer
		if err := Write(&buf, r, f); err != nil {
			t.Fatal(err)
		}
		var back experiment.Result
		if f == JSON {
			err = json.Unmarshal(buf.Bytes(), &back)
		} else {
			err = yaml.Unmarshal(buf.Bytes(), &back)
		}
		if err != nil {
			t.Fatalf("%s does not read back: %v", f, err)
		}
		got, err := json.Marshal(&back)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s round trip changed the result:\ngot  %s\nwant %s", f, got, want)
		}
		if len(back.Comparisons) != 4 || back.Comparisons[0].Effect == nil || *back.Comparisons[0].Effect != 0.2 ||
			back.Rewards[0].ProbabilityBest["v1"] != 0.9123 || len(back.History) != 8 || back.Loops != 5 {
			t.Errorf("%s round trip lost new fields: %+v", f, back)
		}
	}
}
