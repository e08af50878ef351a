package report

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// tableRows returns the text of the cells of each row of the tables that
// match: by id ("#loops") or by class (".trend-table"), cells joined by "|".
func tableRows(t *testing.T, page, sel string) [][]string {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	var tables [][]string
	var text func(n *html.Node) string
	text = func(n *html.Node) string {
		if n.Type == html.TextNode {
			return n.Data
		}
		var b strings.Builder
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			b.WriteString(text(c))
		}
		return b.String()
	}
	matches := func(n *html.Node) bool {
		if id, ok := strings.CutPrefix(sel, "#"); ok {
			return attr(n, "id") == id
		}
		return hasClass(attr(n, "class"), strings.TrimPrefix(sel, "."))
	}
	var walk func(n *html.Node)
	var rows []string
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "tr" {
			var cells []string
			for c := n.FirstChild; c != nil; c = c.NextSibling {
				if c.Type == html.ElementNode {
					cells = append(cells, strings.Join(strings.Fields(text(c)), " "))
				}
			}
			rows = append(rows, strings.Join(cells, "|"))
			return
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	var find func(n *html.Node)
	find = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "table" && matches(n) {
			rows = nil
			walk(n)
			tables = append(tables, rows)
			return
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			find(c)
		}
	}
	find(doc)
	return tables
}

func TestHTMLStatsWithoutPlotly(t *testing.T) {
	r := loopsResult(t)
	var buf bytes.Buffer
	if err := writeHTML(&buf, r, ""); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	if strings.Contains(page, "<script") {
		t.Errorf("a page without plotly has a script")
	}
	check := func(sel string, want ...string) {
		t.Helper()
		tables := tableRows(t, page, sel)
		if len(tables) == 0 {
			t.Errorf("page has no table %s", sel)
			return
		}
		for _, w := range want {
			if !slices.Contains(tables[0], w) {
				t.Errorf("table %s lacks the row %q; it has:\n%s", sel, w, strings.Join(tables[0], "\n"))
			}
		}
	}
	check("#comparisons",
		"Metric|Candidate vs baseline|Test|Effect [interval]|p-value|n (baseline/candidate)|Verdict|Note",
		"http/latency-p95|v2 vs v1|mann-whitney|+20.0% [+12.1%, +28.3%]|0.00031|5000/5000|worse|",
		"http/error-rate|v2 vs v1|two-proportion|-0.012 [-0.0187, -0.00531]|<0.0001|5000/5000|better|",
		"http/latency-mean|v2 vs v1|welch|+1.2% [-3.4%, +5.9%]|0.61|5000/5000|inconclusive|need 1200 more requests per version")
	check("#rewards",
		"http/latency-mean (min)|v1 (best)|91.2%|0.00123",
		"v2|8.8%|0.0541",
		"abn/revenue (max)|-|no version has a sample of abn/revenue")
	check("#loops",
		"Loop|End|SLOs v1|SLOs v2|v2 http/latency-p95|v2 http/error-rate|v2 http/latency-mean",
		"2 failed|03:06:00|✔|✔|inconclusive|inconclusive|inconclusive",
		"5|03:09:00|✔|✗|worse|better|inconclusive")
	trends := tableRows(t, page, ".trend-table")
	if len(trends) != 3 {
		t.Fatalf("%d trend tables, want one per trend metric (p95, error rate, mean)", len(trends))
	}
	if want := "5|10.02|12.04 (worse)"; !slices.Contains(trends[0], want) {
		t.Errorf("p95 trend table lacks %q: %v", want, trends[0])
	}
	if !strings.Contains(page, "so the trend is shown as tables") {
		t.Errorf("page does not say why the trend is tables")
	}

	// One loop: a loop table, but no chart to draw.
	r.History = r.History[:1]
	buf.Reset()
	if err := writeHTML(&buf, r, plotlyJS()); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), `class="trend"`) || len(tableRows(t, buf.String(), "#loops")) != 1 {
		t.Errorf("a history of one loop: want its table and no chart")
	}
}

// TestTrendInChromium draws the trend of the five-loop result in headless
// Chromium with no network: a chart per trend metric with a line of five
// points per version, the bandit's weights among them.
func TestTrendInChromium(t *testing.T) {
	chromium := chromiumWithPlotly(t)
	r := loopsResult(t)
	// A gap: v1 has no p95 in loop 4, which the line skips.
	delete(r.History[3].Metrics["v1"], "http/latency-p95")
	for i := range r.History {
		r.History[i].Metrics["v1"][banditWeight] = float64(50 - 10*i)
		r.History[i].Metrics["v2"][banditWeight] = float64(50 + 10*i)
	}
	page, _ := writePage(t, r)
	dom, logs := openInChromium(t, chromium, page)
	if refs := networkRefs(t, dom); len(refs) > 0 {
		t.Errorf("rendered page refers to the network: %v", refs)
	}
	if lines := consoleLines(logs); lines != "" {
		t.Errorf("console messages while rendering:\n%s", lines)
	}
	charts := lineTraces(t, dom)
	want := map[string]map[string]int{
		"http/latency-p95":  {"v1": 4, "v2": 5},
		"http/error-rate":   {"v1": 5, "v2": 5},
		"http/latency-mean": {"v1": 5, "v2": 5},
		banditWeight:        {"v1": 5, "v2": 5},
	}
	if len(charts) != len(want) {
		t.Errorf("drawn trend charts %v, want %v", charts, want)
	}
	for metric, traces := range want {
		for name, n := range traces {
			if charts[metric][name] != n {
				t.Errorf("trend of %s: line %s has %d points, want %d (drawn: %v)", metric, name, charts[metric][name], n, charts[metric])
			}
		}
	}
}

// lineTraces counts, per trend chart (by metric), the points of each drawn
// line by the trace's legend name.
func lineTraces(t *testing.T, dom string) map[string]map[string]int {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(dom))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]int{}
	var chart func(n *html.Node, points *[]int, names *[]string, inTrace int)
	chart = func(n *html.Node, points *[]int, names *[]string, inTrace int) {
		if n.Type == html.ElementNode {
			class := attr(n, "class")
			switch {
			case n.Data == "g" && hasClass(class, "trace") && hasClass(class, "scatter"):
				*points = append(*points, 0)
				inTrace = len(*points)
			case n.Data == "path" && inTrace > 0 && hasClass(class, "point"):
				(*points)[inTrace-1]++
			case n.Data == "text" && hasClass(class, "legendtext"):
				*names = append(*names, attr(n, "data-unformatted"))
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			chart(c, points, names, inTrace)
		}
	}
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "div" && hasClass(attr(n, "class"), "trend") {
			var points []int
			var names []string
			chart(n, &points, &names, 0)
			if len(names) != len(points) {
				t.Fatalf("trend of %s: %d legend entries for %d line traces", attr(n, "data-metric"), len(names), len(points))
			}
			m := map[string]int{}
			for i, name := range names {
				m[name] = points[i]
			}
			out[attr(n, "data-metric")] = m
			return
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return out
}
