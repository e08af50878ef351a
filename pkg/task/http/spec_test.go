package http

import (
	"fmt"
	"io/fs"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/iter8-tools/iter8/pkg/task/load"
)

// files is what ReadFile can read in these tests.
var files = fstest.MapFS{
	"payload.json":     {Data: []byte(`{"hello":"world"}`)},
	"big.bin":          {Data: make([]byte, 16<<20+1)},
	"data/payload.bin": {Data: []byte{0, 1, 2, 255}},
}

func readFile(name string) ([]byte, error) { return fs.ReadFile(files, name) }

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

func ptr[T any](v T) *T { return &v }

// defaults is the Config of a task that sets only url.
func defaults(eps ...Endpoint) Config {
	return Config{
		Endpoints:   eps,
		NumRequests: DefaultNumRequests,
		Timeout:     DefaultTimeout,
		ErrorRanges: []StatusRange{{400, 599}},
		Percentiles: []float64{50, 75, 90, 95, 99, 99.9},
		Workers:     1,
	}
}

func ep(version, name, rawURL string) Endpoint {
	return Endpoint{Target: load.Target{Name: name, Version: version}, URL: mustURL(rawURL), Headers: map[string]string{}, Connections: DefaultConnections}
}

func TestDecodeValid(t *testing.T) {
	tests := []struct {
		name     string
		with     string
		versions []string
		want     Config
		// metrics that the Catalog must list, per version, and ones it
		// must not.
		has, hasNot map[string][]string
	}{{
		name: "url only",
		with: `url: http://127.0.0.1:8080/`,
		want: defaults(ep("", "", "http://127.0.0.1:8080/")),
		has: map[string][]string{"": {
			"http/request-count", "http/error-count", "http/error-rate",
			"http/latency-mean", "http/latency-stddev", "http/latency-min", "http/latency-max",
			"http/latency-p50", "http/latency-p75", "http/latency-p90", "http/latency-p95", "http/latency-p99", "http/latency-p99.9",
		}},
		hasNot: map[string][]string{"": {"http/latency-p99.99", "http/latency", "http-/request-count", "grpc/request-count"}},
	}, {
		name:     "url of one named version",
		with:     `{"url": "https://example.com/api?x=1", "version": "canary"}`,
		versions: []string{"stable", "canary"},
		want:     defaults(ep("canary", "", "https://example.com/api?x=1")),
		has:      map[string][]string{"canary": {"http/request-count", "http/latency-p99.9"}},
		hasNot:   map[string][]string{"stable": {"http/request-count"}},
	}, {
		name: "endpoints for two versions with defaults and overrides",
		with: `
method: post
headers: {X-Team: a, X-Env: task}
qps: 20
connections: 2
payload: hi
contentType: text/plain
endpoints:
- url: http://127.0.0.1:1/v1
  version: v1
- url: http://127.0.0.1:2/v2
  version: v2
  method: put
  headers: {X-Env: v2}
  qps: 0
  connections: 8
  payload: other
`,
		versions: []string{"v1", "v2"},
		want: func() Config {
			c := defaults(
				Endpoint{Target: load.Target{Version: "v1"}, URL: mustURL("http://127.0.0.1:1/v1"), Method: "POST",
					Headers: map[string]string{"X-Team": "a", "X-Env": "task"}, Payload: []byte("hi"),
					ContentType: "text/plain", QPS: 20, Connections: 2},
				Endpoint{Target: load.Target{Version: "v2"}, URL: mustURL("http://127.0.0.1:2/v2"), Method: "PUT",
					Headers: map[string]string{"X-Team": "a", "X-Env": "v2"}, Payload: []byte("other"),
					ContentType: "text/plain", QPS: 0, Connections: 8},
			)
			return c
		}(),
		has:    map[string][]string{"v1": {"http/request-count", "http/latency-p50"}, "v2": {"http/request-count", "http/latency-p50"}},
		hasNot: map[string][]string{"v1": {"http-/request-count"}},
	}, {
		name: "named endpoints",
		with: `
endpoints:
- {name: home, url: "http://127.0.0.1:1/", version: v1}
- {name: search_2, url: "http://127.0.0.1:1/search", version: v1}
- {name: home, url: "http://127.0.0.1:2/", version: v2}
`,
		versions: []string{"v1", "v2"},
		want: defaults(
			ep("v1", "home", "http://127.0.0.1:1/"),
			ep("v1", "search_2", "http://127.0.0.1:1/search"),
			ep("v2", "home", "http://127.0.0.1:2/"),
		),
		has: map[string][]string{
			"v1": {"http/request-count", "http-home/request-count", "http-home/latency-p99.9", "http-search_2/error-rate"},
			"v2": {"http/request-count", "http-home/latency-max"},
		},
		hasNot: map[string][]string{"v2": {"http-search_2/request-count"}},
	}, {
		name: "one endpoint of the only version needs no name or version",
		with: `endpoints: [{url: "http://127.0.0.1:1/"}]`,
		want: defaults(ep("", "", "http://127.0.0.1:1/")),
		has:  map[string][]string{"": {"http/request-count"}},
	}, {
		name: "extra percentiles are sorted and deduplicated",
		with: `{url: "http://127.0.0.1:1/", percentiles: [99.99, 50, 42, 42.5]}`,
		want: func() Config {
			c := defaults(ep("", "", "http://127.0.0.1:1/"))
			c.Percentiles = []float64{42, 42.5, 50, 75, 90, 95, 99, 99.9, 99.99}
			return c
		}(),
		has: map[string][]string{"": {"http/latency-p42", "http/latency-p42.5", "http/latency-p99.99", "http/latency-p50"}},
	}, {
		name: "errorRanges",
		with: `{url: "http://127.0.0.1:1/", errorRanges: [{lower: 500}, {upper: 404}, {lower: 429, upper: 429}]}`,
		want: func() Config {
			c := defaults(ep("", "", "http://127.0.0.1:1/"))
			c.ErrorRanges = []StatusRange{{500, 599}, {100, 404}, {429, 429}}
			return c
		}(),
	}, {
		name: "payloadFile is read with ReadFile",
		with: `{url: "http://127.0.0.1:1/", payloadFile: payload.json, contentType: application/json}`,
		want: func() Config {
			e := ep("", "", "http://127.0.0.1:1/")
			e.Payload, e.ContentType = []byte(`{"hello":"world"}`), "application/json"
			return defaults(e)
		}(),
	}, {
		name:     "endpoint payloadFile in a folder",
		with:     `endpoints: [{url: "http://127.0.0.1:1/", version: b, payloadFile: data/payload.bin}]`,
		versions: []string{"a", "b"},
		want: func() Config {
			e := ep("b", "", "http://127.0.0.1:1/")
			e.Payload = []byte{0, 1, 2, 255}
			return defaults(e)
		}(),
		hasNot: map[string][]string{"a": {"http/request-count"}},
	}, {
		name: "duration, timeout and warmup",
		with: `{url: "http://127.0.0.1:1/", duration: 2s, timeout: 250ms, warmupDuration: 1s}`,
		want: func() Config {
			c := defaults(ep("", "", "http://127.0.0.1:1/"))
			c.NumRequests, c.Duration, c.Timeout, c.WarmupDuration = 0, 2*time.Second, 250*time.Millisecond, time.Second
			return c
		}(),
	}, {
		name: "numRequests and warmupNumRequests",
		with: `{url: "http://127.0.0.1:1/", numRequests: 7, warmupNumRequests: 3}`,
		want: func() Config {
			c := defaults(ep("", "", "http://127.0.0.1:1/"))
			c.NumRequests, c.WarmupNumRequests = 7, 3
			return c
		}(),
	}, {
		name: "empty with block except url in JSON",
		with: `{"url":"http://[::1]:80/"}`,
		want: defaults(ep("", "", "http://[::1]:80/")),
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, errs := decode(t, tt.with, tt.versions, readFile)
			if len(errs) > 0 {
				t.Fatalf("Decode(%s) errors: %v", tt.with, errs)
			}
			if got := f.task.Config; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Decode(%s) config:\n got %s\nwant %s", tt.with, describeConfig(got), describeConfig(tt.want))
			}
			for v, ms := range tt.has {
				for _, m := range ms {
					if !f.catalog.Has(v, m) {
						t.Errorf("Decode(%s): Catalog.Has(%q, %q) = false, want true; known %v", tt.with, v, m, f.catalog.Known())
					}
				}
			}
			for v, ms := range tt.hasNot {
				for _, m := range ms {
					if f.catalog.Has(v, m) {
						t.Errorf("Decode(%s): Catalog.Has(%q, %q) = true, want false", tt.with, v, m)
					}
				}
			}
		})
	}
}

func describeConfig(c Config) string {
	var b strings.Builder
	fmt.Fprintf(&b, "{n=%d d=%v timeout=%v warmup=%d/%v ranges=%v pcts=%v endpoints:", c.NumRequests, c.Duration, c.Timeout,
		c.WarmupNumRequests, c.WarmupDuration, c.ErrorRanges, c.Percentiles)
	for _, e := range c.Endpoints {
		u := "<nil>"
		if e.URL != nil {
			u = e.URL.String()
		}
		fmt.Fprintf(&b, " {name=%q version=%q url=%s method=%q headers=%v payload=%q type=%q qps=%v conns=%d}",
			e.Name, e.Version, u, e.Method, e.Headers, e.Payload, e.ContentType, e.QPS, e.Connections)
	}
	return b.String() + "}"
}

func TestDecodeInvalid(t *testing.T) {
	const u = `url: "http://127.0.0.1:1/"` + "\n"
	tests := []struct {
		name     string
		with     string
		versions []string
		noFiles  bool // ReadFile is nil
		// want lists every error as "<type> <field>", in order.
		want []string
	}{
		{name: "no url", with: ``, want: []string{"Required value spec.tasks[0].with.url"}},
		{name: "empty url", with: `url: ""`, want: []string{"Required value spec.tasks[0].with.url"}},
		{name: "negative qps", with: u + `qps: -1`, want: []string{"Invalid value spec.tasks[0].with.qps"}},
		{name: "qps of the wrong type", with: u + `qps: fast`, want: []string{"Invalid value spec.tasks[0].with.qps"}},
		{name: "unknown field", with: u + `bogus: 1`, want: []string{"Unsupported value spec.tasks[0].with.bogus"}},
		{name: "unknown endpoint field", with: `endpoints: [{url: "http://127.0.0.1:1/", bogus: 1}]`,
			want: []string{"Unsupported value spec.tasks[0].with.endpoints[0].bogus"}},
		{name: "with is a list", with: `[1, 2]`, want: []string{"Invalid value spec.tasks[0].with"}},
		{name: "bad duration", with: u + `duration: soon`, want: []string{"Invalid value spec.tasks[0].with.duration"}},
		{name: "negative duration", with: u + `duration: -1s`, want: []string{"Invalid value spec.tasks[0].with.duration"}},
		{name: "zero duration", with: u + `duration: 0s`, want: []string{"Invalid value spec.tasks[0].with.duration"}},
		{name: "zero duration and bad warmupDuration", with: u + "duration: 0s\nwarmupDuration: x",
			want: []string{"Invalid value spec.tasks[0].with.warmupDuration", "Invalid value spec.tasks[0].with.duration"}},
		{name: "bad duration and timeout", with: u + "duration: x\ntimeout: later",
			want: []string{"Invalid value spec.tasks[0].with.duration", "Invalid value spec.tasks[0].with.timeout"}},
		{name: "numRequests and duration", with: u + "numRequests: 5\nduration: 1s", want: []string{"Forbidden spec.tasks[0].with.duration"}},
		{name: "negative numRequests", with: u + `numRequests: -1`, want: []string{"Invalid value spec.tasks[0].with.numRequests"}},
		{name: "zero timeout", with: u + `timeout: 0s`, want: []string{"Invalid value spec.tasks[0].with.timeout"}},
		{name: "bad timeout", with: u + `timeout: 5`, want: []string{"Invalid value spec.tasks[0].with.timeout"}},
		{name: "negative warmupNumRequests", with: u + `warmupNumRequests: -2`, want: []string{"Invalid value spec.tasks[0].with.warmupNumRequests"}},
		{name: "workers 0", with: u + `workers: 0`, want: []string{"Invalid value spec.tasks[0].with.workers"}},
		{name: "workers above the maximum", with: u + `workers: 1001`, want: []string{"Invalid value spec.tasks[0].with.workers"}},
		{name: "workers above numRequests", with: u + "numRequests: 3\nworkers: 4", want: []string{"Invalid value spec.tasks[0].with.workers"}},
		{name: "qps too low to split over workers", with: u + "qps: 0.2\nworkers: 4", want: []string{"Invalid value spec.tasks[0].with.qps"}},
		{name: "duration within the workers' stagger", with: u + "qps: 2\nduration: 1s\nworkers: 4", want: []string{"Invalid value spec.tasks[0].with.qps"}},
		{name: "workers above the default numRequests", with: u + "workers: 100\nconnections: 1\nqps: 0\nnumRequests: 50", want: []string{"Invalid value spec.tasks[0].with.workers"}},
		{name: "warmupNumRequests and warmupDuration", with: u + "warmupNumRequests: 2\nwarmupDuration: 1s",
			want: []string{"Forbidden spec.tasks[0].with.warmupDuration"}},
		{name: "bad warmupDuration", with: u + `warmupDuration: x`, want: []string{"Invalid value spec.tasks[0].with.warmupDuration"}},
		{name: "zero connections", with: u + `connections: 0`, want: []string{"Invalid value spec.tasks[0].with.connections"}},
		{name: "negative connections", with: u + `connections: -3`, want: []string{"Invalid value spec.tasks[0].with.connections"}},
		{name: "too many connections", with: u + `connections: 10001`, want: []string{"Invalid value spec.tasks[0].with.connections"}},
		{name: "negative endpoint connections", with: `endpoints: [{url: "http://127.0.0.1:1/", connections: -1}]`,
			want: []string{"Invalid value spec.tasks[0].with.endpoints[0].connections"}},
		{name: "payload and payloadFile", with: u + "payload: x\npayloadFile: payload.json", want: []string{"Forbidden spec.tasks[0].with.payloadFile"}},
		{name: "missing payload file", with: u + `payloadFile: nothere.json`, want: []string{"Invalid value spec.tasks[0].with.payloadFile"}},
		{name: "payloadFile without ReadFile", with: u + `payloadFile: payload.json`, noFiles: true,
			want: []string{"Invalid value spec.tasks[0].with.payloadFile"}},
		{name: "ftp url", with: `url: ftp://127.0.0.1/file`, want: []string{"Invalid value spec.tasks[0].with.url"}},
		{name: "url without scheme", with: `url: 127.0.0.1:8080/x`, want: []string{"Invalid value spec.tasks[0].with.url"}},
		{name: "url without host", with: `url: "http:///path"`, want: []string{"Invalid value spec.tasks[0].with.url"}},
		{name: "url that does not parse", with: `url: "http://[::1"`, want: []string{"Invalid value spec.tasks[0].with.url"}},
		{name: "several versions without version", with: u, versions: []string{"v1", "v2"},
			want: []string{"Required value spec.tasks[0].with.version"}},
		{name: "unknown version", with: u + `version: v3`, versions: []string{"v1", "v2"},
			want: []string{"Unsupported value spec.tasks[0].with.version"}},
		{name: "version with endpoints", with: "version: v1\nendpoints: [{url: \"http://127.0.0.1:1/\", version: v1}]", versions: []string{"v1"},
			want: []string{"Forbidden spec.tasks[0].with.version"}},
		{name: "endpoint without version", versions: []string{"v1", "v2"},
			with: "endpoints:\n- {url: \"http://127.0.0.1:1/\", version: v1}\n- {url: \"http://127.0.0.1:2/\"}",
			want: []string{"Required value spec.tasks[0].with.endpoints[1].version"}},
		{name: "endpoint with unknown version", versions: []string{"v1", "v2"},
			with: "endpoints:\n- {url: \"http://127.0.0.1:1/\", version: v1}\n- {url: \"http://127.0.0.1:2/\", version: v9}",
			want: []string{"Unsupported value spec.tasks[0].with.endpoints[1].version"}},
		{name: "endpoint without url", with: "endpoints: [{version: \"\"}]",
			want: []string{"Required value spec.tasks[0].with.endpoints[0].url"}},
		{name: "two endpoints of a version without names",
			with: "endpoints:\n- {url: \"http://127.0.0.1:1/\"}\n- {url: \"http://127.0.0.1:2/\"}",
			want: []string{"Required value spec.tasks[0].with.endpoints[0].name", "Required value spec.tasks[0].with.endpoints[1].name"}},
		{name: "duplicate endpoint names",
			with: "endpoints:\n- {name: a, url: \"http://127.0.0.1:1/\"}\n- {name: a, url: \"http://127.0.0.1:2/\"}",
			want: []string{"Duplicate value spec.tasks[0].with.endpoints[1].name"}},
		{name: "endpoint name with a slash", with: `endpoints: [{name: "a/b", url: "http://127.0.0.1:1/"}]`,
			want: []string{"Invalid value spec.tasks[0].with.endpoints[0].name"}},
		{name: "method with a space", with: u + `method: "GE T"`, want: []string{"Invalid value spec.tasks[0].with.method"}},
		{name: "header name with a space", with: u + `headers: {"Bad Header": x}`,
			want: []string{"Invalid value spec.tasks[0].with.headers[Bad Header]"}},
		{name: "header value with a line break", with: u + `headers: {X-A: "a\r\nX-Injected: 1"}`,
			want: []string{"Invalid value spec.tasks[0].with.headers[X-A]"}},
		{name: "percentile 0", with: u + `percentiles: [50, 0]`, want: []string{"Invalid value spec.tasks[0].with.percentiles[1]"}},
		{name: "percentile 100", with: u + `percentiles: [100]`, want: []string{"Invalid value spec.tasks[0].with.percentiles[0]"}},
		{name: "empty error range", with: u + `errorRanges: [{}]`, want: []string{"Required value spec.tasks[0].with.errorRanges[0]"}},
		{name: "error range beyond 599", with: u + `errorRanges: [{lower: 500}, {lower: 600}]`,
			want: []string{"Invalid value spec.tasks[0].with.errorRanges[1]"}},
		{name: "error range below 100", with: u + `errorRanges: [{upper: 99}]`, want: []string{"Invalid value spec.tasks[0].with.errorRanges[0]"}},
		{name: "inverted error range", with: u + `errorRanges: [{lower: 500, upper: 400}]`,
			want: []string{"Invalid value spec.tasks[0].with.errorRanges[0]"}},
		// Out-of-range numbers and addresses (issue 13).
		{name: "qps so high that fortio stops at once", with: u + `qps: 1e308`, want: []string{"Invalid value spec.tasks[0].with.qps"}},
		{name: "qps above the bound", with: u + `qps: 1000001`, want: []string{"Invalid value spec.tasks[0].with.qps"}},
		{name: "qps below the bound", with: u + `qps: 0.01`, want: []string{"Invalid value spec.tasks[0].with.qps"}},
		{name: "qps 1e999 is not a number", with: u + `qps: 1e999`, want: []string{"Invalid value spec.tasks[0].with.qps"}},
		{name: "inherited qps reported once, where it is written", versions: []string{"v1", "v2"},
			with: "qps: 1e308\nendpoints:\n- {url: \"http://127.0.0.1:1/\", version: v1}\n- {url: \"http://127.0.0.1:2/\", version: v2}",
			want: []string{"Invalid value spec.tasks[0].with.qps"}},
		{name: "numRequests above the bound", with: u + `numRequests: 2000000000`, want: []string{"Invalid value spec.tasks[0].with.numRequests"}},
		{name: "warmupNumRequests above the bound", with: u + `warmupNumRequests: 2000000000`, want: []string{"Invalid value spec.tasks[0].with.warmupNumRequests"}},
		{name: "plan longer than a day", with: u + "qps: 0.1\nnumRequests: 10000", want: []string{"Invalid value spec.tasks[0].with.qps"}},
		{name: "warm-up makes the plan longer than a day", with: u + "qps: 1\nnumRequests: 80000\nwarmupNumRequests: 10000",
			want: []string{"Invalid value spec.tasks[0].with.qps"}},
		{name: "endpoint's own qps makes the plan too long",
			with: "numRequests: 100000\nendpoints: [{url: \"http://127.0.0.1:1/\", qps: 1}]",
			want: []string{"Invalid value spec.tasks[0].with.endpoints[0].qps"}},
		{name: "duration above a day", with: u + `duration: 25h`, want: []string{"Invalid value spec.tasks[0].with.duration"}},
		{name: "timeout above a day", with: u + `timeout: 48h`, want: []string{"Invalid value spec.tasks[0].with.timeout"}},
		{name: "warmupDuration above a day", with: u + `warmupDuration: 100000h`, want: []string{"Invalid value spec.tasks[0].with.warmupDuration"}},
		{name: "url with a port but no host", with: `url: "http://:18080/"`, want: []string{"Invalid value spec.tasks[0].with.url"}},
		{name: "url with port 99999", with: `url: "http://127.0.0.1:99999/"`, want: []string{"Invalid value spec.tasks[0].with.url"}},
		{name: "url with port 0", with: `url: "http://127.0.0.1:0/"`, want: []string{"Invalid value spec.tasks[0].with.url"}},
		{name: "url with an empty port", with: `url: "http://127.0.0.1:/"`, want: []string{"Invalid value spec.tasks[0].with.url"}},
		{name: "header value with a NUL", with: u + `headers: {X-A: "a\0b"}`, want: []string{"Invalid value spec.tasks[0].with.headers[X-A]"}},
		{name: "header value with a DEL", with: u + `headers: {X-A: "a\x7fb"}`, want: []string{"Invalid value spec.tasks[0].with.headers[X-A]"}},
		{name: "inherited bad header reported once", versions: []string{"v1", "v2"},
			with: "headers: {X-A: \"a\\0b\"}\nendpoints:\n- {url: \"http://127.0.0.1:1/\", version: v1}\n- {url: \"http://127.0.0.1:2/\", version: v2}",
			want: []string{"Invalid value spec.tasks[0].with.headers[X-A]"}},
		{name: "payload file above 16 MiB", with: u + `payloadFile: big.bin`, want: []string{"Invalid value spec.tasks[0].with.payloadFile"}},
		{name: "every problem is reported", with: u + "qps: -1\nduration: soon\ntimeout: never\npercentiles: [101]",
			want: []string{
				"Invalid value spec.tasks[0].with.duration",
				"Invalid value spec.tasks[0].with.timeout",
				"Invalid value spec.tasks[0].with.percentiles[0]",
				"Invalid value spec.tasks[0].with.qps",
			}},
		{name: "missing url does not hide other problems", with: `{qps: -1, connections: 0, payload: a, payloadFile: b, method: "A B"}`,
			want: []string{
				"Required value spec.tasks[0].with.url",
				"Invalid value spec.tasks[0].with.method",
				"Invalid value spec.tasks[0].with.qps",
				"Invalid value spec.tasks[0].with.connections",
				"Forbidden spec.tasks[0].with.payloadFile",
			}},
		{name: "problems in several endpoints", versions: []string{"v1", "v2"},
			with: "endpoints:\n- {url: \"ftp://x/\", version: v1}\n- {url: \"http://127.0.0.1:2/\", version: v2, qps: -5, connections: 0}",
			want: []string{
				"Invalid value spec.tasks[0].with.endpoints[0].url",
				"Invalid value spec.tasks[0].with.endpoints[1].qps",
				"Invalid value spec.tasks[0].with.endpoints[1].connections",
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rf := readFile
			if tt.noFiles {
				rf = nil
			}
			f, errs := decode(t, tt.with, tt.versions, rf)
			if f != nil {
				t.Fatalf("Decode(%s) = %s, want errors %v", tt.with, describeConfig(f.task.Config), tt.want)
			}
			var got []string
			for _, e := range errs {
				got = append(got, e.Type.String()+" "+e.Field)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Decode(%s) errors:\n got %q\nwant %q\nfull: %v", tt.with, got, tt.want, errs)
			}
		})
	}
}

// TestDecodeErrorsAreClear checks the wording where the path alone does not
// say what is wrong.
func TestDecodeErrorsAreClear(t *testing.T) {
	tests := []struct {
		with     string
		versions []string
		want     []string
	}{
		{`url: ftp://127.0.0.1/file`, nil, []string{"ftp://127.0.0.1/file", "http:// or https://"}},
		{`{url: "http://127.0.0.1:1/", payloadFile: nothere.json}`, nil, []string{"nothere.json", "cannot read it", "not exist"}},
		{`{url: "http://127.0.0.1:1/", numRequests: 3, duration: 1s}`, nil, []string{"numRequests or duration, not both"}},
		{`url: "http://127.0.0.1:1/"`, []string{"v1", "v2"}, []string{"v1, v2", "name the version of url"}},
		{`{url: "http://user:secret@127.0.0.1:1/", qps: -1}`, nil, []string{"must be 0 (as fast as possible) or from 0.1 to 1000000"}},
		{`{url: "http://127.0.0.1:1/", qps: 0.1, numRequests: 100000}`, nil, []string{"numRequests 100000 at 0.1 per second", "more than 24h"}},
		{`{url: "http://127.0.0.1:1/", duration: 25h}`, nil, []string{"must be at most 24h"}},
		{`url: "http://127.0.0.1:99999/"`, nil, []string{"port must be a number from 1 to 65535"}},
		{`{url: "http://127.0.0.1:1/", headers: {X-A: "a\0b"}}`, nil, []string{"control characters"}},
		{`{url: "http://127.0.0.1:1/", payloadFile: big.bin}`, nil, []string{"big.bin", "larger than 16 MiB"}},
		{`url: "ftp://user:secret@127.0.0.1:1/"`, nil, []string{"user:xxxxx@"}},
		{`{url: "http://127.0.0.1:1/", qps: fast}`, nil, []string{"got string", "want"}},
	}
	for _, tt := range tests {
		_, errs := decode(t, tt.with, tt.versions, readFile)
		if len(errs) == 0 {
			t.Errorf("Decode(%s) = no errors, want some", tt.with)
			continue
		}
		msg := errs.ToAggregate().Error()
		for _, w := range tt.want {
			if !strings.Contains(msg, w) {
				t.Errorf("Decode(%s) error %q does not contain %q", tt.with, msg, w)
			}
		}
		if strings.Contains(msg, "secret") {
			t.Errorf("Decode(%s) error %q shows the URL's password", tt.with, msg)
		}
	}
}

// TestDecodeDoesNotShareState checks that decoding one task leaves nothing
// in package state for the next: DefaultPercentiles stays as it was, and
// each task has its own header maps.
func TestDecodeDoesNotShareState(t *testing.T) {
	before := slices.Clone(DefaultPercentiles)
	a := mustDecode(t, `{url: "http://127.0.0.1:1/", percentiles: [12, 13], headers: {X-A: "1"}}`, nil)
	b := mustDecode(t, `{url: "http://127.0.0.1:1/"}`, nil)
	if !slices.Equal(DefaultPercentiles, before) {
		t.Errorf("DefaultPercentiles = %v after Decode, want %v", DefaultPercentiles, before)
	}
	if got := b.task.Config.Percentiles; !slices.Equal(got, before) {
		t.Errorf("second task's percentiles = %v, want %v", got, before)
	}
	a.task.Config.Endpoints[0].Headers["X-B"] = "2"
	if len(b.task.Config.Endpoints[0].Headers) != 0 {
		t.Errorf("second task's headers = %v, want none", b.task.Config.Endpoints[0].Headers)
	}
}

func TestEndpointLabel(t *testing.T) {
	tests := []struct {
		e    Endpoint
		want string
	}{
		{Endpoint{URL: mustURL("http://127.0.0.1:1/x")}, "http://127.0.0.1:1/x"},
		{Endpoint{Target: load.Target{Version: "v2"}, URL: mustURL("http://127.0.0.1:1/")}, "version v2 http://127.0.0.1:1/"},
		{Endpoint{Target: load.Target{Version: "v2", Name: "home"}, URL: mustURL("http://127.0.0.1:1/")}, "version v2 endpoint home http://127.0.0.1:1/"},
		{Endpoint{URL: mustURL("http://bob:hunter2@127.0.0.1:1/")}, "http://bob:xxxxx@127.0.0.1:1/"},
	}
	for _, tt := range tests {
		if got := tt.e.Label(); got != tt.want {
			t.Errorf("Label() of %+v = %q, want %q", tt.e, got, tt.want)
		}
	}
}

func TestStatusRangeContains(t *testing.T) {
	r := StatusRange{Lower: 400, Upper: 499}
	for code, want := range map[int]bool{399: false, 400: true, 450: true, 499: true, 500: false, -1: false} {
		if got := r.Contains(code); got != want {
			t.Errorf("%+v.Contains(%d) = %v, want %v", r, code, got, want)
		}
	}
}
