package report

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/stats"
)

// histogramResult has two versions with latencies in different ranges, so
// that their bins differ.
func histogramResult(t *testing.T) *experiment.Result {
	t.Helper()
	r := &experiment.Result{Experiment: "perf", Revision: 2, StartTime: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	end := r.StartTime.Add(10 * time.Second)
	r.EndTime = &end
	r.Tasks = []experiment.TaskResult{{Task: "http", State: experiment.TaskSucceeded, Duration: 10 * time.Second}}
	for i, v := range []string{"v1", "v2"} {
		r.Versions = append(r.Versions, experiment.VersionResult{Name: v})
		rec := stats.NewRecorder(10*time.Second, r.StartTime)
		at := r.StartTime
		for j := 0; j < 2000; j++ {
			// v1: 2–6 ms; v2: 5–15 ms, with a gap so some bins are empty.
			d := time.Duration(2000+j*2) * time.Microsecond
			if i == 1 {
				d = time.Duration(5000+(j%1000)*10) * time.Microsecond
				if d > 9*time.Millisecond && d < 11*time.Millisecond {
					continue
				}
			}
			rec.Record(at, d, false)
			at = at.Add(d)
		}
		r.SetHistogram(v, "http/latency", rec.Histogram())
		r.SetMetric(v, "http/latency-p99", float64(6+i*9), "msec")
	}
	upper := 10.0
	val1, val2 := 5.9, 14.9
	r.SLOs = []experiment.SLOVerdict{
		{Metric: "http/latency-p99", Version: "v1", Upper: &upper, Value: &val1, Satisfied: true},
		{Metric: "http/latency-p99", Version: "v2", Upper: &upper, Value: &val2, Satisfied: false},
	}
	return r
}

func TestHTMLWithoutPlotlyShowsTables(t *testing.T) {
	r := histogramResult(t)
	var buf bytes.Buffer
	if err := writeHTML(&buf, r, ""); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	for _, want := range []string{"no plotting library embedded", `class="histogram-table"`, "<th>v1</th><th>v2</th>", "✗", "http/latency-p99"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(page, "<script") {
		t.Errorf("a page without plotly has a script")
	}
	hs, err := htmlHistograms(r)
	if err != nil {
		t.Fatal(err)
	}
	table := page[strings.Index(page, `class="histogram-table"`):]
	table = table[:strings.Index(table, "</table>")]
	if got := strings.Count(table, "<tr><td>"); got != len(hs[0].Rows) {
		t.Errorf("histogram table has %d rows, want %d non-empty bins", got, len(hs[0].Rows))
	}
}

func TestBinEdges(t *testing.T) {
	edges := binEdges(2*time.Millisecond, 15*time.Millisecond)
	if n := len(edges) - 1; n > displayBins || n < displayBins/3 {
		t.Errorf("%d bins, want at most %d and not far fewer", n, displayBins)
	}
	if edges[0] > 2*time.Millisecond || edges[len(edges)-1] < 15*time.Millisecond {
		t.Errorf("edges %v..%v do not cover 2ms..15ms", edges[0], edges[len(edges)-1])
	}
	w := edges[1] - edges[0]
	if w != 500*time.Microsecond {
		t.Errorf("bin width %v, want the round 500µs", w)
	}
}

// chromiumWithPlotly finds Chromium, and skips the test when it or the
// embedded plotly.js is missing (fails under ITER8_REQUIRE_BROWSER).
func chromiumWithPlotly(t *testing.T) string {
	t.Helper()
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("ITER8_REQUIRE_BROWSER") != "" {
			t.Fatalf("chromium not found (scripts/install-test-deps.sh installs it): %v", err)
		}
		t.Skip("chromium not installed")
	}
	if !HasPlotly() {
		if os.Getenv("ITER8_REQUIRE_BROWSER") != "" {
			t.Fatal("plotly.js is not embedded: run make plotly")
		}
		t.Skip("plotly.js not embedded")
	}
	return chromium
}

// writePage writes r's HTML report into a file of its own.
func writePage(t *testing.T, r *experiment.Result) (string, *bytes.Buffer) {
	t.Helper()
	page := filepath.Join(t.TempDir(), "report.html")
	var buf bytes.Buffer
	if err := Write(&buf, r, HTML); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(page, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return page, &buf
}

// TestHTMLInChromium opens the report in headless Chromium with no network
// (a new network namespace) and checks what it draws. make test sets
// ITER8_REQUIRE_BROWSER so that a missing browser fails rather than skips.
func TestHTMLInChromium(t *testing.T) {
	chromium := chromiumWithPlotly(t)
	r := histogramResult(t)
	page, buf := writePage(t, r)
	// No src or href to the network in the page's markup, as written and as
	// drawn (plotly's own source mentions URLs in strings, which load nothing).
	if refs := networkRefs(t, buf.String()); len(refs) > 0 {
		t.Errorf("page refers to the network: %v", refs)
	}

	dom, logs := openInChromium(t, chromium, page)
	if refs := networkRefs(t, dom); len(refs) > 0 {
		t.Errorf("rendered page refers to the network: %v", refs)
	}
	traces := barTraces(t, dom)
	hs, err := htmlHistograms(r)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{}
	for _, row := range hs[0].Rows {
		for i, c := range row.Counts {
			if c > 0 {
				want[r.Versions[i].Name]++
			}
		}
	}
	if len(traces) != 2 {
		t.Fatalf("drawn traces %v, want one per version (v1, v2)", traces)
	}
	for name, n := range want {
		if traces[name] != n {
			t.Errorf("trace %s has %d bar paths, want %d non-empty bins", name, traces[name], n)
		}
	}
	if lines := consoleLines(logs); lines != "" {
		t.Errorf("console messages while rendering:\n%s", lines)
	}

	// The checks can fail: a reference to the network is caught, and so is a
	// console error.
	if refs := networkRefs(t, `<img src="https://cdn.example/x.png"><a href="//cdn.example/">`); len(refs) != 2 {
		t.Errorf("networkRefs missed references: %v", refs)
	}
	// A page that logs an error is caught.
	bad := filepath.Join(t.TempDir(), "bad.html")
	if err := os.WriteFile(bad, []byte(`<html><body><script>console.error("broken")</script></body></html>`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, logs := openInChromium(t, chromium, bad); !strings.Contains(consoleLines(logs), "broken") {
		t.Errorf("a console error went unseen; chromium's log:\n%s", logs)
	}
}

// consoleLines picks the page's console messages from Chromium's log; the
// browser's own pages (chrome://) log there too.
func consoleLines(logs string) string {
	var out []string
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, ":CONSOLE") && strings.Contains(l, "source: file://") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

var networkURL = regexp.MustCompile(`(?i)^\s*(https?:)?//`)

// networkRefs lists src and href attributes that point at the network.
func networkRefs(t *testing.T, page string) []string {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	var refs []string
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			for _, a := range n.Attr {
				if (a.Key == "src" || a.Key == "href" || a.Key == "xlink:href") && networkURL.MatchString(a.Val) {
					refs = append(refs, n.Data+" "+a.Key+"="+a.Val)
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return refs
}

// openInChromium loads a page with no network and returns the DOM after its
// scripts ran, and Chromium's log (which carries console messages).
func openInChromium(t *testing.T, chromium, page string) (string, string) {
	t.Helper()
	args := []string{"-n", chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir(), "--enable-logging=stderr", "--v=0",
		"--virtual-time-budget=10000", "--dump-dom", "file://" + page}
	cmd := exec.Command("unshare", args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("chromium: %v\n%s", err, stderr.String())
		}
	case <-time.After(90 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("chromium did not finish within 90s:\n%s", stderr.String())
	}
	return stdout.String(), stderr.String()
}

// barTraces counts the bar paths of each drawn trace, by the trace's legend
// name (legend entries are in trace order).
func barTraces(t *testing.T, dom string) map[string]int {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(dom))
	if err != nil {
		t.Fatal(err)
	}
	var bars []int
	var names []string
	var walk func(n *html.Node, inTrace int)
	walk = func(n *html.Node, inTrace int) {
		if n.Type == html.ElementNode {
			class := attr(n, "class")
			switch {
			case n.Data == "g" && hasClass(class, "trace") && hasClass(class, "bars"):
				bars = append(bars, 0)
				inTrace = len(bars)
			case n.Data == "path" && inTrace > 0 && n.Parent != nil && hasClass(attr(n.Parent, "class"), "point"):
				bars[inTrace-1]++
			case n.Data == "text" && hasClass(class, "legendtext"):
				names = append(names, attr(n, "data-unformatted"))
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, inTrace)
		}
	}
	walk(doc, 0)
	if len(names) != len(bars) {
		t.Fatalf("%d legend entries for %d bar traces", len(names), len(bars))
	}
	out := map[string]int{}
	for i, n := range names {
		out[n] = bars[i]
	}
	return out
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func hasClass(classes, c string) bool {
	for _, f := range strings.Fields(classes) {
		if f == c {
			return true
		}
	}
	return false
}
