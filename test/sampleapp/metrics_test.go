package sampleapp

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape fetches MetricsPath from url and parses it.
func scrape(t *testing.T, c *http.Client, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := c.Get(url + MetricsPath)
	if err != nil {
		t.Fatalf("GET %s%s: %v", url, MetricsPath, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s%s: got status %d, want 200", url, MetricsPath, resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("GET %s%s: parsing: %v", url, MetricsPath, err)
	}
	return mfs
}

// series is one exported series' labels and values.
type series struct {
	version, code, error string
	count                uint64   // counter value, or histogram sample count
	buckets              []uint64 // cumulative histogram bucket counts
}

// collect flattens family name of mfs into series keyed by code.
func collect(t *testing.T, mfs map[string]*dto.MetricFamily, name string) map[string]series {
	t.Helper()
	mf, ok := mfs[name]
	if !ok {
		t.Fatalf("metrics: no family %s", name)
	}
	out := map[string]series{}
	for _, m := range mf.GetMetric() {
		var s series
		for _, lp := range m.GetLabel() {
			switch lp.GetName() {
			case LabelVersion:
				s.version = lp.GetValue()
			case LabelCode:
				s.code = lp.GetValue()
			case LabelError:
				s.error = lp.GetValue()
			default:
				t.Errorf("%s: unexpected label %s=%q", name, lp.GetName(), lp.GetValue())
			}
		}
		if c := m.GetCounter(); c != nil {
			s.count = uint64(c.GetValue())
		}
		if h := m.GetHistogram(); h != nil {
			s.count = h.GetSampleCount()
			for _, b := range h.GetBucket() {
				s.buckets = append(s.buckets, b.GetCumulativeCount())
			}
		}
		out[s.code] = s
	}
	return out
}

func TestMetricsCounts(t *testing.T) {
	const n = 400
	h := NewHandler(Options{Version: "v3", ErrorRate: 0.25, ErrorCode: 500, Seed: 5})
	srv := httptest.NewServer(h)
	defer srv.Close()
	c := srv.Client()

	// Before any request both outcomes are exported at 0.
	reqs := collect(t, scrape(t, c, srv.URL), MetricRequests)
	for _, code := range []string{"200", "500"} {
		if s, ok := reqs[code]; !ok || s.count != 0 {
			t.Errorf("before requests: %s{code=%q}: got %+v (present %v), want 0", MetricRequests, code, s, ok)
		}
	}

	var ok, failed uint64
	for range n {
		resp, _ := get(t, c, srv.URL+"/")
		switch resp.StatusCode {
		case http.StatusOK:
			ok++
		case http.StatusInternalServerError:
			failed++
		default:
			t.Fatalf("got status %d, want 200 or 500", resp.StatusCode)
		}
		get(t, c, srv.URL+HealthPath) // neither counted nor timed
	}
	if failed == 0 || ok == 0 {
		t.Fatalf("error rate 0.25 over %d requests: got %d errors, want some of each outcome", n, failed)
	}

	scrape(t, c, srv.URL)
	mfs := scrape(t, c, srv.URL) // must not count the first scrape
	want := map[string]series{
		"200": {version: "v3", code: "200", error: "false", count: ok},
		"500": {version: "v3", code: "500", error: "true", count: failed},
	}
	reqs = collect(t, mfs, MetricRequests)
	durs := collect(t, mfs, MetricDuration)
	for code, w := range want {
		if g := reqs[code]; g.version != w.version || g.error != w.error || g.count != w.count {
			t.Errorf("%s{code=%q}: got version %q error %q count %d, want %q %q %d",
				MetricRequests, code, g.version, g.error, g.count, w.version, w.error, w.count)
		}
		if g := durs[code]; g.version != w.version || g.error != w.error || g.count != w.count {
			t.Errorf("%s{code=%q}: got version %q error %q count %d, want %q %q %d",
				MetricDuration, code, g.version, g.error, g.count, w.version, w.error, w.count)
		}
	}
	if len(reqs) != 2 || len(durs) != 2 {
		t.Errorf("got %d request series and %d duration series, want 2 each", len(reqs), len(durs))
	}
	if got := h.Requests(); got != n {
		t.Errorf("Requests(): got %d, want %d (scrapes and health checks not counted)", got, n)
	}
}

func TestMetricsBuckets(t *testing.T) {
	// fixed:5ms lands in the (5ms, 10ms] bucket: the wait is at least 5ms,
	// and a busy machine adds less than 5ms to most requests.
	const n = 40
	h := NewHandler(Options{Version: "v1", Latency: mustLatency(t, "fixed:5ms")})
	for range n {
		serveInProcess(t.Context(), h, "/")
	}
	mfs, err := h.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		byName[mf.GetName()] = mf
	}
	s := collect(t, byName, MetricDuration)["200"]
	if len(s.buckets) != len(DurationBuckets) {
		t.Fatalf("%s: got %d buckets, want %d", MetricDuration, len(s.buckets), len(DurationBuckets))
	}
	var bounds []string
	for _, b := range byName[MetricDuration].GetMetric()[0].GetHistogram().GetBucket() {
		bounds = append(bounds, model.SampleValue(b.GetUpperBound()).String())
	}
	if got, want := strings.Join(bounds, ","), "0.001,0.002,0.005,0.01,0.02,0.05,0.1,0.2,0.5,1"; got != want {
		t.Errorf("%s: got bucket bounds %s, want %s", MetricDuration, got, want)
	}
	// Buckets are cumulative: le=0.005 (index 2) holds nothing, since every
	// request waits at least 5ms; le=0.01 holds most; le=1 holds all.
	if s.buckets[2] != 0 {
		t.Errorf("fixed:5ms: got %d requests <= 5ms, want 0", s.buckets[2])
	}
	if s.buckets[3] < n/2 {
		t.Errorf("fixed:5ms: got %d of %d requests <= 10ms, want at least half", s.buckets[3], n)
	}
	if s.buckets[len(s.buckets)-1] != n {
		t.Errorf("fixed:5ms: got %d of %d requests <= 1s, want all", s.buckets[len(s.buckets)-1], n)
	}
}

func TestMetricsTwoHandlers(t *testing.T) {
	// Each handler has its own registry: two versions in one process must
	// neither panic on registration nor see each other's series.
	a := NewHandler(Options{Version: "a"})
	b := NewHandler(Options{Version: "b"})
	serveInProcess(t.Context(), a, "/")
	for _, tt := range []struct {
		h    *Handler
		want string
	}{{a, `version="a"`}, {b, `version="b"`}} {
		rec, _ := serveInProcess(t.Context(), tt.h, MetricsPath)
		body := rec.Body.String()
		if rec.Code != http.StatusOK || !strings.Contains(body, tt.want) {
			t.Errorf("GET %s: got %d, body without %s:\n%s", MetricsPath, rec.Code, tt.want, body)
		}
		if strings.Contains(body, `version="a"`) == strings.Contains(body, `version="b"`) {
			t.Errorf("GET %s: want exactly one version's series, got:\n%s", MetricsPath, body)
		}
	}
	if !strings.Contains(exposition(t, a), MetricRequests+`{code="200",error="false",version="a"} 1`) {
		t.Errorf("handler a after one request: counter not 1")
	}
}

// exposition returns what h serves on MetricsPath.
func exposition(t *testing.T, h *Handler) string {
	t.Helper()
	rec, _ := serveInProcess(t.Context(), h, MetricsPath)
	return rec.Body.String()
}
