package report

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/iter8-tools/iter8/pkg/experiment"
)

// abnResult is an A/B/n experiment after a bandit loop: 2400 and 2600
// users, weights 30 and 70.
func abnResult() *experiment.Result {
	r := &experiment.Result{Experiment: "shop"}
	for _, v := range []string{"a", "b"} {
		r.Versions = append(r.Versions, experiment.VersionResult{Name: v})
	}
	r.SetMetric("a", abnUsers, 2400, "")
	r.SetMetric("b", abnUsers, 2600, "")
	r.SetMetric("a", "abn/purchase-per-user", 0.8, "")
	r.SetMetric("b", "abn/purchase-per-user", 1.1, "")
	r.SetMetric("a", banditWeight, 30, "%")
	r.SetMetric("b", banditWeight, 70, "%")
	r.Stopped = "the experiment reached its end: promoted b"
	r.Bandit = &experiment.Bandit{Release: "shop/backend", Revision: 7, Weights: map[string]int{"a": 30, "b": 70},
		ProbabilityBest: map[string]float64{"a": 0.03, "b": 0.97}, Reason: "moved 20 to b", Promoted: "b"}
	return r
}

func htmlPage(t *testing.T, r *experiment.Result) string {
	t.Helper()
	var buf bytes.Buffer
	if err := writeHTML(&buf, r, ""); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func TestTextUsers(t *testing.T) {
	out := text(t, abnResult())
	checkRows(t, out,
		"Users",
		"VERSION USERS SHARE WEIGHT",
		"a 2400 48.0% 30%",
		"b 2600 52.0% 70%",
		"users since the start of the experiment; weight after the last loop",
		"Promoted: b",
		"moved 20 to b",
	)
}

func TestTextUsersWeights(t *testing.T) {
	tests := []struct {
		name   string
		change func(r *experiment.Result)
		want   []string
		absent string
	}{
		{"the metric without the bandit's state", func(r *experiment.Result) { r.Bandit = nil },
			[]string{"VERSION USERS SHARE WEIGHT", "a 2400 48.0% 30%", "b 2600 52.0% 70%"}, "Promoted:"},
		{"the bandit's state over a stale metric", func(r *experiment.Result) { r.Bandit.Weights = map[string]int{"a": 10, "b": 90} },
			[]string{"a 2400 48.0% 10%", "b 2600 52.0% 90%"}, ""},
		{"no weights, no weight column", func(r *experiment.Result) {
			r.Bandit = nil
			for _, v := range r.Versions {
				delete(v.Metrics, banditWeight)
			}
		}, []string{"VERSION USERS SHARE", "a 2400 48.0%", "b 2600 52.0%"}, "weight after the last loop"},
		{"a version without users", func(r *experiment.Result) {
			r.Versions = append(r.Versions, experiment.VersionResult{Name: "c"})
		}, []string{"a 2400 48.0% 30%", "c - - -"}, ""},
		{"no users at all", func(r *experiment.Result) {
			r.SetMetric("a", abnUsers, 0, "")
			r.SetMetric("b", abnUsers, 0, "")
		}, []string{"a 0 - 30%"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := abnResult()
			tc.change(r)
			out := text(t, r)
			checkRows(t, out, tc.want...)
			if tc.absent != "" && strings.Contains(out, tc.absent) {
				t.Errorf("report has %q:\n%s", tc.absent, out)
			}
		})
	}
}

// TestNoUsersWithoutABn: a result without abn/users has no users table,
// bandit/weight or not.
func TestNoUsersWithoutABn(t *testing.T) {
	r := result(map[string]float64{"a": 1, "b": 2}, "http/latency-p99")
	r.SetMetric("a", banditWeight, 50, "%")
	if out := text(t, r); slices.Contains(rows(out), "Users") {
		t.Errorf("text report of a result without abn/users has a users table:\n%s", out)
	}
	page := htmlPage(t, r)
	for _, unwanted := range []string{`id="users"`, "<h2>Users</h2>", `id="bandit"`} {
		if strings.Contains(page, unwanted) {
			t.Errorf("html report of a result without abn/users or bandit has %q", unwanted)
		}
	}
}

func TestHTMLUsersAndBandit(t *testing.T) {
	page := htmlPage(t, abnResult())
	check := func(sel string, want ...string) {
		t.Helper()
		tables := tableRows(t, page, sel)
		if len(tables) != 1 {
			t.Fatalf("page has %d tables %s, want 1", len(tables), sel)
		}
		if !slices.Equal(tables[0], want) {
			t.Errorf("table %s:\n%s\nwant:\n%s", sel, strings.Join(tables[0], "\n"), strings.Join(want, "\n"))
		}
	}
	check("#users", "Version|Users|Share|Weight", "a|2400|48.0%|30%", "b|2600|52.0%|70%")
	check("#bandit", "Version|Weight|P(best)", "a|30%|0.030", "b (promoted)|70%|0.970")
	for _, want := range []string{
		"<dt>Release</dt><dd>shop/backend</dd>",
		"<dt>Revision</dt><dd>7</dd>",
		"<dt>Reason</dt><dd>moved 20 to b</dd>",
		`<dt>Promoted</dt><dd><span class="ok">b</span></dd>`,
		"<dt>Stopped</dt><dd>the experiment reached its end: promoted b</dd>",
		"users since the start of the experiment",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}

	// Not promoted yet, and a version the bandit names that the result
	// does not list.
	r := abnResult()
	r.Bandit.Promoted = ""
	r.Bandit.Weights["z"] = 0
	page = htmlPage(t, r)
	check("#bandit", "Version|Weight|P(best)", "a|30%|0.030", "b|70%|0.970", "z|0%|-")
	if !strings.Contains(page, `<dt>Promoted</dt><dd><span class="muted">none yet</span></dd>`) {
		t.Errorf("page does not say that no version is promoted yet")
	}
}

// TestUsersEscapeNames: version names, the release and the reason come
// from a result file; html/template escapes them, Printable the text.
func TestUsersEscapeNames(t *testing.T) {
	evil := `<img src=x onerror=alert(1)>` + "\x1b[2J"
	r := abnResult()
	r.Versions[1].Name = evil
	r.Bandit.Release, r.Bandit.Reason, r.Bandit.Promoted = "<script>alert(1)</script>", "<b>bold</b>", evil
	r.Bandit.Weights = map[string]int{"a": 30, evil: 70}
	page := htmlPage(t, r)
	for _, raw := range []string{"<img", "<script>alert", "<b>bold"} {
		if strings.Contains(page, raw) {
			t.Errorf("html report has %q unescaped", raw)
		}
	}
	if !strings.Contains(page, "&lt;img src=x onerror=alert(1)&gt;") {
		t.Errorf("html report lacks the escaped version name")
	}
	out := text(t, r)
	if strings.Contains(out, "\x1b") {
		t.Errorf("text report has a raw escape:\n%q", out)
	}
	checkRows(t, out, `<img src=x onerror=alert(1)>\x1b[2J 2600 52.0% 70%`)
}

// TestHTMLWeightTrend: with the bandit's weights in the history, the
// trend has a chart of them (a table without plotly). TestTrendInChromium
// draws it.
func TestHTMLWeightTrend(t *testing.T) {
	r := loopsResult(t)
	for i := range r.History {
		r.History[i].Metrics["v1"][banditWeight] = float64(50 - 10*i)
		r.History[i].Metrics["v2"][banditWeight] = float64(50 + 10*i)
	}
	if page := htmlPage(t, r); !strings.Contains(page, `<table class="trend-table" data-metric="bandit/weight">`) {
		t.Errorf("page without plotly has no trend table of %s", banditWeight)
	}
	var buf bytes.Buffer
	if err := writeHTML(&buf, r, "/* plotly */"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `class="trend" data-metric="bandit/weight"`) {
		t.Errorf("page with plotly has no trend chart of %s", banditWeight)
	}
}
