package e2e

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/test/sampleapp"
)

// TestLoopsAndComparisons runs, through the CLI, an experiment of three
// loops that compares a version ten times slower (20 ms against 2 ms) with
// the baseline, and reads the trend and the verdicts back in every report
// format. The SLO (p50 under 10 ms) leaves v1 five times its latency, as a
// busy CI machine can stretch it. Both versions run at the same qps, so
// that they share the same second and every time block pairs them: at full
// speed v1 would finish in a tenth of v2's time, and the few blocks they
// share left the first look inconclusive on a busy machine.
func TestLoopsAndComparisons(t *testing.T) {
	var urls []string
	for i, latency := range []string{"fixed:2ms", "fixed:20ms"} {
		lat, err := sampleapp.ParseLatency(latency)
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(sampleapp.NewHandler(sampleapp.Options{Version: fmt.Sprint("v", i+1), Latency: lat, Seed: 3}))
		t.Cleanup(srv.Close)
		urls = append(urls, srv.URL)
	}
	dir := t.TempDir()
	writeFile(t, dir, "experiment.yaml", fmt.Sprintf(`apiVersion: iter8.tools/v1
kind: Experiment
metadata: {name: loops}
spec:
  versions: [v1, v2]
  loops: 2
  interval: 1h
  tasks:
  - task: http
    with:
      numRequests: 100
      qps: 100
      endpoints:
      - {version: v1, url: %q}
      - {version: v2, url: %q}
  - task: assess
    with:
      slos: [{metric: http/latency-p50, upper: 10}]
      rewards: {min: [http/latency-mean]}
      comparisons: [{metric: http/latency}, {metric: http/error-rate}]
`, urls[0], urls[1]))

	// --loops and --interval replace the spec's 2 loops an hour apart.
	out := iter8(t, dir, "run", "--loops", "3", "--interval", "10ms")
	checkNoCrash(t, out)
	if out.code != 0 {
		t.Fatalf("run: exit %d\n%s", out.code, out)
	}

	out = iter8(t, dir, "report", "-o", "json")
	var r experiment.Result
	if err := json.Unmarshal([]byte(out.stdout), &r); err != nil {
		t.Fatalf("report -o json: %v\n%s", err, out)
	}
	if r.Loop != 3 || r.Loops != 3 || len(r.History) != 3 {
		t.Fatalf("loop %d of %d with %d in history; want 3 of 3 and 3", r.Loop, r.Loops, len(r.History))
	}
	for _, h := range r.History {
		if p50 := h.Metrics["v2"]["http/latency-p50"]; p50 < 20 || !h.SLOsSatisfied["v1"] || h.SLOsSatisfied["v2"] {
			t.Errorf("loop %d: v2 p50 %v ms, SLOs met %v; want at least 20 ms, met by v1 only", h.Loop, p50, h.SLOsSatisfied)
		}
		if v := h.Verdicts[experiment.VerdictKey{Candidate: "v2", Metric: "http/latency"}]; v != experiment.VerdictWorse {
			t.Errorf("loop %d: v2's latency is %q, want worse", h.Loop, v)
		}
	}
	verdicts := map[string]experiment.Comparison{}
	for _, c := range r.Comparisons {
		verdicts[c.Metric] = c
	}
	// A looping experiment judges sequentially: the evidence of all three
	// loops, pooled.
	if c := verdicts["http/latency"]; c.Verdict != experiment.VerdictWorse || c.Effect == nil || *c.Effect < 0.5 || c.Test != "log-ratio" ||
		c.Sequential == nil || c.Sequential.Looks != 3 || c.Sequential.Pooling != "pooled" {
		t.Errorf("http/latency: %+v; want worse, at least +50%% (2 ms against 20 ms), by log-ratio, pooled over 3 loops", c)
	}
	if c := verdicts["http/error-rate"]; c.Verdict != experiment.VerdictInconclusive || !strings.Contains(c.Reason, "no verdict yet after 3 loops") {
		t.Errorf("http/error-rate: %s (%s); want inconclusive with no verdict yet after 3 loops", c.Verdict, c.Reason)
	}
	if p := r.Rewards[0].ProbabilityBest["v1"]; p < 0.99 {
		t.Errorf("P(v1 best by latency-mean) = %v, want above 0.99", p)
	}

	out = iter8(t, dir, "report")
	for _, want := range []string{"loop 3 of 3", "Comparisons (95% confidence)", "v2 vs v1", "worse", "P(BEST)", "Trend"} {
		if !strings.Contains(out.stdout, want) {
			t.Errorf("text report lacks %q\n%s", want, out.stdout)
		}
	}
	// The trend of the SLO's and the comparisons' metrics, as plots or (in
	// a build without plotly) tables.
	out = iter8(t, dir, "report", "-o", "html")
	for _, want := range []string{"<h2>Trend</h2>", `data-metric="http/latency-p50"`, "inconclusive", "worse"} {
		if out.code != 0 || !strings.Contains(out.stdout, want) {
			t.Errorf("html report: exit %d, lacks %q", out.code, want)
		}
	}
}
