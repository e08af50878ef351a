package metrics

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
)

// Fixtures are modelled on each vendor's documented example response; the
// source is named beside each.
const (
	// https://prometheus.io/docs/prometheus/latest/querying/api/#instant-queries
	promVector = `{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"up","job":"prometheus","instance":"localhost:9090"},"value":[1435781451.781,"42.5"]}]}}`
	// https://docs.newrelic.com/docs/query-nrql-through-new-relic-graphql-api/
	newRelicResults = `{"data":{"actor":{"account":{"nrql":{"results":[{"count":1000}]}}}}}`
	// https://github.com/sysdiglabs/sysdig-sdk-python (SdcClient.get_data; examples/get_data_simple.py)
	sysdigData = `{"data":[{"t":1582756200,"d":[6.481]}],"start":1582755600,"end":1582756200}`
	// https://www.elastic.co/guide/en/elasticsearch/reference/current/search-aggregations-metrics-avg-aggregation.html
	elasticAvg = `{"took":12,"timed_out":false,"_shards":{"total":1,"successful":1,"skipped":0,"failed":0},"hits":{"total":{"value":105,"relation":"eq"},"max_score":null,"hits":[]},"aggregations":{"result":{"value":75.0}}}`
	// https://docs.datadoghq.com/api/latest/metrics/query-timeseries-points/
	datadogSeries = `{"status":"ok","res_type":"time_series","from_date":1636542671000,"to_date":1636629071000,"query":"avg:system.cpu.idle{*}","group_by":[],"series":[{"metric":"system.cpu.idle","display_name":"system.cpu.idle","aggr":"avg","scope":"*","expression":"avg:system.cpu.idle{*}","interval":20,"length":3,"start":1636542671000,"end":1636542711000,"pointlist":[[1636542671000,90.1],[1636542691000,91.5],[1636542711000,null]],"unit":null}]}`
)

func TestProviders(t *testing.T) {
	const token = "tok-3x4mpl3/+=secret"
	tests := []struct {
		name     string
		with     string // %s is the backend's URL
		versions []string
		secrets  map[string]string
		fixture  string
		// want per request
		method  string
		path    string
		params  map[string]string // query parameter → substring
		body    []string          // substrings of the body
		headers map[string]string // header → exact value
		// metric (<provider>/<name>) → value for every version
		metrics map[string]float64
		units   map[string]string
	}{
		{
			name: "prometheus",
			with: `
provider: prometheus
endpoint: %s
auth: {bearerFrom: PROM_TOKEN}
values: {namespace: default}
versionValues: [{app: v1}, {app: v2}]
queries:
- name: cpu
  units: cores
  query: sum(rate(container_cpu_usage_seconds_total{namespace="{{.namespace}}",app="{{.app}}"}[{{.window}}]))
`,
			versions: []string{"v1", "v2"},
			secrets:  map[string]string{"PROM_TOKEN": token},
			fixture:  promVector,
			method:   http.MethodGet, path: "/api/v1/query",
			params:  map[string]string{"query": `namespace="default",app="v`, "time": "1767323082.000"},
			headers: map[string]string{"Authorization": "Bearer " + token},
			metrics: map[string]float64{"prometheus/cpu": 42.5},
			units:   map[string]string{"prometheus/cpu": "cores"},
		},
		{
			name: "istio",
			with: `
provider: istio
endpoint: %s
values: {namespace: bookinfo}
versionValues: [{workload: reviews-v1}]
`,
			versions: []string{"v1"},
			fixture:  promVector,
			method:   http.MethodGet, path: "/api/v1/query",
			params: map[string]string{"query": `destination_workload="reviews-v1"`},
			metrics: map[string]float64{"istio/request-count": 42.5, "istio/error-count": 42.5, "istio/error-rate": 42.5,
				"istio/latency-mean": 42.5, "istio/latency-p50": 42.5, "istio/latency-p90": 42.5, "istio/latency-p95": 42.5, "istio/latency-p99": 42.5},
			units: map[string]string{"istio/latency-p99": "msec", "istio/request-count": ""},
		},
		{
			name: "envoy-gateway",
			with: `
provider: envoy-gateway
endpoint: %s
versionValues: [{cluster: httproute/default/app/rule/0}]
`,
			fixture: promVector,
			method:  http.MethodGet, path: "/api/v1/query",
			params:  map[string]string{"query": `envoy_cluster_name="httproute/default/app/rule/0"`},
			metrics: map[string]float64{"envoy-gateway/request-count": 42.5, "envoy-gateway/latency-p95": 42.5},
			units:   map[string]string{"envoy-gateway/latency-p95": "msec"},
		},
		{
			name: "newrelic",
			with: `
provider: newrelic
endpoint: %s
auth: {apiKey: {keyFrom: NR_KEY}}
values: {accountID: 12345}
queries:
- name: count
  query: SELECT count(*) FROM Transaction WHERE appName = 'app' SINCE {{.windowSeconds}} seconds AGO
`,
			secrets: map[string]string{"NR_KEY": token},
			fixture: newRelicResults,
			method:  http.MethodPost, path: "/graphql",
			body:    []string{`{"query":`, `account(id: 12345)`, `nrql(query: \"SELECT count(*) FROM Transaction WHERE appName = 'app'`},
			headers: map[string]string{"API-Key": token, "Content-Type": "application/json"},
			metrics: map[string]float64{"newrelic/count": 1000},
		},
		{
			name: "sysdig",
			with: `
provider: sysdig
endpoint: %s
auth: {bearerFrom: SYSDIG_TOKEN}
values: {filter: 'kubernetes.deployment.name = "app"'}
queries:
- name: request-time
  units: msec
  query: net.request.time
`,
			secrets: map[string]string{"SYSDIG_TOKEN": token},
			fixture: sysdigData,
			method:  http.MethodPost, path: "/api/data",
			body:    []string{`"id": "net.request.time"`, `"last": 37`, `"sampling": 37`, `"filter": "kubernetes.deployment.name = \"app\""`},
			headers: map[string]string{"Authorization": "Bearer " + token},
			metrics: map[string]float64{"sysdig/request-time": 6.481},
			units:   map[string]string{"sysdig/request-time": "msec"},
		},
		{
			name: "elastic",
			with: `
provider: elastic
endpoint: %s
auth: {basic: {usernameFrom: ES_USER, passwordFrom: ES_PASS}}
values: {index: app-logs, filter: '{"term": {"version": "v1"}}'}
queries:
- name: latency
  units: msec
  query: '{"avg": {"field": "latency"}}'
`,
			secrets: map[string]string{"ES_USER": "elastic", "ES_PASS": token},
			fixture: elasticAvg,
			method:  http.MethodPost, path: "/app-logs/_search",
			body:    []string{`"size": 0`, `"@timestamp": {"gte": "2026-01-02T03:04:05Z", "lte": "2026-01-02T03:04:42Z"}`, `{"term": {"version": "v1"}}`, `"aggs": {"result": {"avg": {"field": "latency"}}}`},
			headers: map[string]string{"Authorization": "Basic " + b64("elastic:"+token)},
			metrics: map[string]float64{"elastic/latency": 75},
		},
		{
			name: "datadog",
			with: `
provider: datadog
endpoint: %s
auth: {headersFrom: {DD-API-KEY: DD_API_KEY, DD-APPLICATION-KEY: DD_APP_KEY}}
queries:
- name: cpu-idle
  query: avg:system.cpu.idle{version:{{.version}}}
`,
			versions: []string{"v1"},
			secrets:  map[string]string{"DD_API_KEY": token, "DD_APP_KEY": "app-" + token},
			fixture:  datadogSeries,
			method:   http.MethodGet, path: "/api/v1/query",
			params:  map[string]string{"from": "1767323045", "to": "1767323082", "query": "avg:system.cpu.idle{version:v1}"},
			headers: map[string]string{"DD-API-KEY": token, "DD-APPLICATION-KEY": "app-" + token},
			metrics: map[string]float64{"datadog/cpu-idle": 91.5},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBackend(t, http.StatusOK, tt.fixture)
			with := strings.ReplaceAll(tt.with, "%s", b.URL)
			task, d, plan := decode(t, with, tt.versions)
			for _, v := range d.Versions {
				for m := range tt.metrics {
					if !d.Metrics.Has(v, m) {
						t.Errorf("Catalog.Has(%q, %q) = false; known %v", v, m, d.Metrics.Known())
					}
				}
			}
			err, res, log := run(t, task, plan, tt.secrets)
			if err != nil {
				t.Fatalf("Run: %v\nlog: %s", err, log)
			}
			reqs := b.requests()
			if want := len(d.Versions) * len(task.metrics); len(reqs) != want {
				t.Errorf("backend got %d requests, want %d", len(reqs), want)
			}
			for _, r := range reqs {
				if r.method != tt.method || r.path != tt.path {
					t.Errorf("request %s %s, want %s %s", r.method, r.path, tt.method, tt.path)
				}
				for k, sub := range tt.params {
					if got := r.query.Get(k); !strings.Contains(got, sub) {
						t.Errorf("param %s = %q, want it to contain %q", k, got, sub)
					}
				}
				for _, sub := range tt.body {
					if !strings.Contains(r.body, sub) {
						t.Errorf("body %s\nwant it to contain %s", r.body, sub)
					}
				}
				for h, want := range tt.headers {
					if got := r.header.Get(h); got != want {
						t.Errorf("header %s = %q, want %q", h, got, want)
					}
				}
			}
			for _, v := range d.Versions {
				for m, want := range tt.metrics {
					if got, ok := res.Value(v, m); !ok || got != want {
						t.Errorf("version %q metric %s = %v, %v; want %v", v, m, got, ok, want)
					}
				}
				for m, want := range tt.units {
					if got := res.Version(v).Metrics[m].Unit; got != want {
						t.Errorf("version %q metric %s unit %q, want %q", v, m, got, want)
					}
				}
			}
			for _, s := range tt.secrets {
				if len(s) > 8 {
					assertNoSecret(t, s, log, resultJSON(t, res))
				}
			}
		})
	}
}

// TestBuiltinsCompile checks that every embedded provider decodes strictly
// and compiles.
func TestBuiltinsCompile(t *testing.T) {
	names := BuiltinProviders()
	want := []string{"datadog", "elastic", "envoy-gateway", "istio", "newrelic", "prometheus", "sysdig"}
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Errorf("BuiltinProviders() = %v, want %v", names, want)
	}
	for name, ps := range builtins() {
		if _, errs := compileProvider(ps, nil); len(errs) > 0 {
			t.Errorf("provider %s: %v", name, errs.ToAggregate())
		}
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
