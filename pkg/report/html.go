package report

import (
	"bytes"
	"compress/gzip"
	"embed"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/stats"
)

// HTML is a self-contained page: styles and plotly.js are inside it, so it
// renders with no network.
const HTML Format = "html"

//go:embed templates/report.html.tmpl
var htmlTemplate string

// assets holds the README and, when the build fetched it, plotly.js
// gzip-compressed (1.5 MB instead of 4.8). The pattern matches names ending
// in d or z, so that it always matches something (README.md) and leaves out
// an uncompressed plotly.min.js that older builds left in the folder.
//
//go:embed assets/*[dz]
var assets embed.FS

// plotlyAsset is where make puts plotly.js, compressed with gzip -9 -n.
const plotlyAsset = "assets/plotly.min.js.gz"

// plotlyJS is plotly.js when the build embedded it, else empty. It is
// decompressed on first use: doing so at start-up would slow every command.
// An archive that does not decompress leaves the report with tables, as a
// build without plotly.js has, and logs why.
var plotlyJS = sync.OnceValue(func() string { return loadPlotly(assets) })

// loadPlotly is readPlotly of plotlyAsset in fsys, with an error logged and
// taken as no plotly.js.
func loadPlotly(fsys fs.FS) string {
	js, err := readPlotly(fsys, plotlyAsset)
	if err != nil {
		slog.Warn("HTML reports show tables instead of plots: the embedded plotly.js is unusable", "error", err)
		return ""
	}
	return js
}

// maxPlotly bounds the decompressed plotly.js (4.8 MB in version 4), so
// that a corrupt size in the archive cannot ask for gigabytes.
const maxPlotly = 64 << 20

// readPlotly decompresses the gzip file name in fsys: "" and no error when
// there is none (a build without plotly.js), an error naming the file when
// it does not decompress whole (bad header, data or checksum, truncated,
// empty or oversized).
func readPlotly(fsys fs.FS, name string) (string, error) {
	data, err := fs.ReadFile(fsys, name)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	var js strings.Builder
	// gzip's trailer ends with the uncompressed size (mod 2^32); data has
	// at least the 10 bytes of the header NewReader read.
	if size := binary.LittleEndian.Uint32(data[len(data)-4:]); size <= maxPlotly {
		js.Grow(int(size))
	}
	n, err := io.Copy(&js, io.LimitReader(zr, maxPlotly+1))
	switch {
	case err != nil:
		return "", fmt.Errorf("%s: %w", name, err)
	case n > maxPlotly:
		return "", fmt.Errorf("%s: decompresses to more than %d bytes", name, maxPlotly)
	case n == 0:
		return "", fmt.Errorf("%s: decompresses to nothing", name)
	}
	return js.String(), nil
}

// HasPlotly reports whether this binary can draw histograms.
func HasPlotly() bool { return plotlyJS() != "" }

var reportTemplate = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("report").Option("missingkey=error").Parse(htmlTemplate))
})

// displayBins is how many bins a histogram plot has at most: HDR buckets are
// far finer than a person can read.
const displayBins = 40

type htmlView struct {
	Experiment string
	Revision   int
	State      experiment.State
	StateLine  string
	Started    string
	Took       string
	SLOSummary string
	Winner     string
	// Stopped says why the loops ended early.
	Stopped  string
	Versions []string
	Tasks    []htmlTask
	SLORows  []htmlSLORow
	Metrics  []htmlMetric
	// Users is the A/B/n users table; UserWeights whether it has weights.
	Users       []userRow
	UserWeights bool
	UsersNote   string
	Bandit      *htmlBandit
	// Failures are the requests of each load without a complete response.
	Failures   []failedRequest
	Histograms []htmlHistogram
	// Confidence is the level all comparisons share, if they do.
	Confidence  string
	Comparisons []htmlComparison
	// Method says how the comparisons were judged: Holm, sequential.
	Method  string
	Rewards []htmlReward
	Trend   *htmlTrend
	Plotly  template.JS
}

type htmlTask struct {
	Index                        int
	Task, State, Duration, Error string
	// Reason says why a skipped task was skipped.
	Reason         string
	Failed, Passed bool
}

type htmlSLORow struct {
	Label string
	Cells []htmlSLOCell
}

type htmlSLOCell struct {
	Applies, Satisfied bool
	Value              string
}

type htmlMetric struct {
	Name, Unit string
	Cells      []string
	Best       string
}

type htmlHistogram struct {
	Metric string
	// ID is a safe element id for the plot.
	ID string
	// Traces is the plot's data as JSON, one bar trace per version.
	Traces template.JS
	// Rows is the same data as a table, for builds without plotly.js.
	Rows []htmlBinRow
}

type htmlBinRow struct {
	Range  string
	Counts []int64
}

type trace struct {
	Name    string    `json:"name"`
	Type    string    `json:"type"`
	X       []float64 `json:"x"`
	Y       []int64   `json:"y"`
	Width   []float64 `json:"width"`
	Opacity float64   `json:"opacity"`
}

func writeHTML(w io.Writer, r *experiment.Result, plotly string) error {
	v, err := newHTMLView(r, plotly)
	if err != nil {
		return err
	}
	return reportTemplate().Execute(w, v)
}

func newHTMLView(r *experiment.Result, plotly string) (*htmlView, error) {
	v := &htmlView{
		Experiment: r.Experiment,
		Revision:   r.Revision,
		State:      r.State(),
		StateLine:  stateLine(r),
		Started:    r.StartTime.Format(time.RFC3339),
		Took:       "running",
		Plotly:     template.JS(plotly),
	}
	if r.EndTime != nil {
		v.Took = r.EndTime.Sub(r.StartTime).Round(time.Millisecond).String()
	}
	if len(r.SLOs) > 0 {
		v.SLOSummary = sloLine(r)
	}
	if len(r.Rewards) > 0 {
		v.Winner = "none"
		if r.Winner != "" {
			v.Winner = experiment.VersionName(r.Winner)
		}
		v.Winner += fmt.Sprintf(" (by %s, %s)", r.Rewards[0].Metric, r.Rewards[0].Direction)
	}
	for _, ver := range r.Versions {
		v.Versions = append(v.Versions, experiment.VersionName(ver.Name))
	}
	for i, t := range r.Tasks {
		v.Tasks = append(v.Tasks, htmlTask{Index: i, Task: t.Task, State: string(t.State), Duration: taskDuration(t),
			Error: t.Error, Reason: t.Reason, Failed: t.State == experiment.TaskFailed, Passed: t.State == experiment.TaskSucceeded})
	}
	v.SLORows = htmlSLORows(r)
	for _, name := range r.MetricNames() {
		m := htmlMetric{Name: name, Cells: make([]string, len(r.Versions)), Best: Best(r, name)}
		for i, ver := range r.Versions {
			m.Cells[i] = "-"
			if val, ok := ver.Metrics[name]; ok {
				m.Cells[i], m.Unit = FormatValue(val.Value), val.Unit
			}
		}
		v.Metrics = append(v.Metrics, m)
	}
	v.Stopped, v.Bandit = r.Stopped, newHTMLBandit(r)
	if v.Users, v.UserWeights = userRows(r); v.UserWeights {
		v.UsersNote = usersNote
	}
	v.Failures, v.Comparisons, v.Rewards = failedRequests(r), htmlComparisons(r), htmlRewards(r)
	v.Method = comparisonsMethod(r.Comparisons)
	if c, ok := sharedConfidence(r.Comparisons); ok {
		v.Confidence = formatConfidence(c)
	}
	var err error
	if v.Histograms, err = htmlHistograms(r); err != nil {
		return nil, err
	}
	v.Trend, err = htmlTrendView(r)
	return v, err
}

func htmlSLORows(r *experiment.Result) []htmlSLORow {
	var rows []htmlSLORow
	for _, row := range sloRows(r) {
		hr := htmlSLORow{Label: row.label, Cells: make([]htmlSLOCell, len(row.verdicts))}
		for j, s := range row.verdicts {
			if s == nil {
				continue
			}
			hr.Cells[j] = htmlSLOCell{Applies: true, Satisfied: s.Satisfied, Value: s.Reason}
			if s.Value != nil {
				hr.Cells[j].Value = FormatValue(*s.Value)
			}
		}
		rows = append(rows, hr)
	}
	return rows
}

// htmlHistograms overlays, per histogram metric, one trace per version on
// shared bins, so that versions can be compared bar by bar. Only non-empty
// bins are listed.
func htmlHistograms(r *experiment.Result) ([]htmlHistogram, error) {
	var out []htmlHistogram
	for _, name := range r.HistogramNames() {
		bars := make([][]stats.Bar, len(r.Versions))
		lo, hi := time.Duration(math.MaxInt64), time.Duration(0)
		for i, ver := range r.Versions {
			h, ok := ver.Histograms[name]
			if !ok {
				continue
			}
			b, err := h.Bars()
			if err != nil {
				return nil, fmt.Errorf("histogram %s of version %s: %w", name, experiment.VersionName(ver.Name), err)
			}
			bars[i] = b
			if len(b) > 0 {
				lo, hi = min(lo, b[0].From), max(hi, b[len(b)-1].To)
			}
		}
		if hi == 0 {
			continue
		}
		edges := binEdges(lo, hi)
		counts := make([][]int64, len(r.Versions))
		var traces []trace
		for i, ver := range r.Versions {
			counts[i] = make([]int64, len(edges)-1)
			for _, bar := range bars[i] {
				mid := bar.From + (bar.To-bar.From)/2
				j := sort.Search(len(edges)-1, func(k int) bool { return edges[k+1] > mid })
				counts[i][min(j, len(edges)-2)] += bar.Count
			}
			if bars[i] == nil {
				continue
			}
			t := trace{Name: experiment.VersionName(ver.Name), Type: "bar", Opacity: 0.6}
			for j, c := range counts[i] {
				if c > 0 {
					t.X = append(t.X, msecOf(edges[j]+(edges[j+1]-edges[j])/2))
					t.Y = append(t.Y, c)
					t.Width = append(t.Width, msecOf(edges[j+1]-edges[j]))
				}
			}
			traces = append(traces, t)
		}
		hh := htmlHistogram{Metric: name, ID: "hist-" + strings.NewReplacer("/", "-", ".", "-").Replace(name)}
		for j := range len(edges) - 1 {
			row := htmlBinRow{Range: fmt.Sprintf("%s – %s", FormatValue(msecOf(edges[j])), FormatValue(msecOf(edges[j+1])))}
			for i := range r.Versions {
				row.Counts = append(row.Counts, counts[i][j])
			}
			if slices.ContainsFunc(row.Counts, func(c int64) bool { return c != 0 }) {
				hh.Rows = append(hh.Rows, row)
			}
		}
		var err error
		if hh.Traces, err = jsonJS(traces); err != nil {
			return nil, err
		}
		out = append(out, hh)
	}
	return out, nil
}

// binEdges splits [lo, hi] into at most displayBins bins of a round width
// (1, 2 or 5 times a power of ten, in nanoseconds).
func binEdges(lo, hi time.Duration) []time.Duration {
	span := float64(hi - lo)
	if span <= 0 {
		span = 1
	}
	raw := span / displayBins
	width := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if width*m >= raw {
			width *= m
			break
		}
	}
	w := time.Duration(math.Max(width, 1))
	start := lo / w * w
	edges := []time.Duration{start}
	for e := start; e <= hi; {
		e += w
		edges = append(edges, e)
	}
	return edges
}

// jsonJS is v as JSON, for a script.
func jsonJS(v any) (template.JS, error) {
	data, err := json.Marshal(v)
	return template.JS(data), err
}

func msecOf(d time.Duration) float64 {
	return math.Round(float64(d)/1e3) / 1e3
}
