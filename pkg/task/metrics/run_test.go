package metrics

import (
	"net/http"
	"strings"
	"testing"

	"github.com/iter8-tools/iter8/pkg/experiment/experimenttest"
)

const promQuery = `
provider: prometheus
endpoint: %s
auth: {bearerFrom: PROM_TOKEN}
queries:
- name: q
  query: up{version="{{.version}}"}[{{.window}}]
`

const secret = "s3cr3t/t0ken+value=="

func TestRunFailures(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		want   []string // substrings of the error and of the recorded reason
	}{
		{"non-2xx", http.StatusServiceUnavailable, `{"status":"error","error":"overloaded, token ` + secret + `"}`, []string{"status 503", "overloaded", "REDACTED"}},
		{"bad JSON", http.StatusOK, `<html>not json</html>`, []string{"not JSON", "<html>not json"}},
		{"jq no result", http.StatusOK, `{"status":"success","data":{"resultType":"vector","result":[]}}`, []string{"no value"}},
		{"jq several", http.StatusOK, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"1"]},{"metric":{},"value":[1,"2"]}]}}`, []string{"more than one value"}},
		{"NaN", http.StatusOK, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"NaN"]}]}}`, []string{"NaN"}},
		{"not a number", http.StatusOK, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"abc"]}]}}`, []string{"jq"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBackend(t, tt.status, tt.body)
			task, _, plan := decode(t, strings.ReplaceAll(promQuery, "%s", b.URL), []string{"v1"})
			err, res, log := run(t, task, plan, map[string]string{"PROM_TOKEN": secret})
			if err == nil {
				t.Fatal("Run succeeded, want an error")
			}
			reason := res.Version("v1").Unavailable["prometheus/q"]
			for _, w := range append(tt.want, "provider prometheus", `q for version "v1"`) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			for _, w := range tt.want {
				if !strings.Contains(reason, w) {
					t.Errorf("reason %q does not contain %q", reason, w)
				}
			}
			if _, ok := res.Value("v1", "prometheus/q"); ok {
				t.Error("the metric has a value")
			}
			assertNoSecret(t, secret, err.Error(), log, resultJSON(t, res))
		})
	}
}

func TestRunUnreachable(t *testing.T) {
	b := newBackend(t, 200, promVector)
	url := b.URL
	b.Close()
	task, _, plan := decode(t, strings.ReplaceAll(promQuery, "%s", url), []string{"v1"})
	err, _, _ := run(t, task, plan, map[string]string{"PROM_TOKEN": secret})
	if err == nil || !strings.Contains(err.Error(), "GET "+url+"/api/v1/query") {
		t.Fatalf("Run = %v, want an error naming the request", err)
	}
}

func TestAllowMissing(t *testing.T) {
	b := newBackend(t, http.StatusInternalServerError, `boom `+secret)
	with := strings.ReplaceAll(promQuery, "%s", b.URL) + "allowMissing: true\n"
	task, _, plan := decode(t, with, []string{"v1", "v2"})
	err, res, log := run(t, task, plan, map[string]string{"PROM_TOKEN": secret})
	if err != nil {
		t.Fatalf("Run = %v, want success with allowMissing", err)
	}
	for _, v := range []string{"v1", "v2"} {
		if r := res.Version(v).Unavailable["prometheus/q"]; !strings.Contains(r, "status 500") {
			t.Errorf("version %s: reason %q, want the status", v, r)
		}
	}
	if !strings.Contains(log, "metric unavailable") || !strings.Contains(log, "status 500") {
		t.Errorf("log does not give the reason: %s", log)
	}
	assertNoSecret(t, secret, log, resultJSON(t, res))
}

func TestMissingSecret(t *testing.T) {
	b := newBackend(t, 200, promVector)
	task, _, plan := decode(t, strings.ReplaceAll(promQuery, "%s", b.URL), nil)
	for _, tc := range []struct {
		secrets map[string]string
		want    string
	}{
		{nil, "provider prometheus: secret PROM_TOKEN is not set (locally an environment variable; in a cluster an env entry of the Job, from a Secret)"},
		{map[string]string{"PROM_TOKEN": ""}, "provider prometheus: secret PROM_TOKEN is empty"},
	} {
		if err, _, _ := run(t, task, plan, tc.secrets); err == nil || err.Error() != tc.want {
			t.Errorf("Run with secrets %v = %v, want %s", tc.secrets, err, tc.want)
		}
	}
	if n := len(b.requests()); n != 0 {
		t.Errorf("%d requests sent without credentials", n)
	}
}

// TestSecretsEchoed checks the forms of secrets a backend may echo: plain,
// URL-encoded, base64 (Basic auth header) and JSON-escaped.
func TestSecretsEchoed(t *testing.T) {
	user, pass := "admin-user", `p@ss/w"rd+1`
	echo := strings.Join([]string{pass, "p%40ss%2Fw%22rd%2B1", b64(user + ":" + pass), `p@ss/w\"rd+1`}, " | ")
	b := newBackend(t, http.StatusUnauthorized, echo)
	with := strings.ReplaceAll(`
provider: prometheus
endpoint: %s
auth: {basic: {usernameFrom: U, passwordFrom: P}}
queries: [{name: q, query: up}]
`, "%s", b.URL)
	task, _, plan := decode(t, with, nil)
	err, res, log := run(t, task, plan, map[string]string{"U": user, "P": pass})
	if err == nil {
		t.Fatal("Run succeeded")
	}
	for _, text := range []string{err.Error(), log, resultJSON(t, res)} {
		for _, f := range strings.Split(echo, " | ") {
			if strings.Contains(text, f) {
				t.Errorf("secret form %q in %q", f, text)
			}
		}
	}
}

// TestWindow checks the rendered window: given, and by default the time
// since the experiment started (37s in run).
func TestWindow(t *testing.T) {
	for _, tt := range []struct{ window, want string }{{"", "[37s]"}, {"5m", "[5m]"}, {"2h", "[2h]"}} {
		b := newBackend(t, 200, promVector)
		with := strings.ReplaceAll(promQuery, "%s", b.URL)
		if tt.window != "" {
			with += "window: " + tt.window + "\n"
		}
		task, _, plan := decode(t, with, []string{"v1", "v2"})
		if err, _, _ := run(t, task, plan, map[string]string{"PROM_TOKEN": secret}); err != nil {
			t.Fatal(err)
		}
		reqs := b.requests()
		for i, v := range []string{"v1", "v2"} {
			if want := `up{version="` + v + `"}` + tt.want; reqs[i].query.Get("query") != want {
				t.Errorf("window %q: query %q, want %q", tt.window, reqs[i].query.Get("query"), want)
			}
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		with string
		want []string
	}{
		{"unknown provider", `provider: graphite`, []string{"spec.tasks[0].with.provider", "graphite"}},
		{"no provider", `{}`, []string{"spec.tasks[0].with.provider: Required"}},
		{"no queries", `{provider: prometheus, endpoint: "http://127.0.0.1:9090"}`, []string{"spec.tasks[0].with.queries: Required"}},
		{"bad query template", `{provider: prometheus, endpoint: "http://127.0.0.1:9090", queries: [{name: q, query: "{{ .x"}]}`, []string{"spec.tasks[0].with.queries[0].query"}},
		{"bad jq", `{provider: prometheus, endpoint: "http://127.0.0.1:9090", queries: [{name: q, query: up, jq: ".data[["}]}`, []string{"spec.tasks[0].with.queries[0].jq", "jq:"}},
		{"missing value", `{provider: istio, endpoint: "http://127.0.0.1:9090", values: {namespace: x}}`, []string{"spec.tasks[0].with.values", "workload"}},
		{"reserved value", `{provider: istio, endpoint: "http://127.0.0.1:9090", values: {namespace: x, workload: y, window: 1m}}`, []string{"spec.tasks[0].with.values[window]"}},
		{"auth value instead of name", `{provider: prometheus, endpoint: "http://127.0.0.1:9090", auth: {bearer: "abc.def"}, queries: [{name: q, query: up}]}`, []string{"spec.tasks[0].with.auth.bearer", "unknown field"}},
		{"auth secret value in From", `{provider: prometheus, endpoint: "http://127.0.0.1:9090", auth: {bearerFrom: "Bearer abc/def"}, queries: [{name: q, query: up}]}`, []string{"spec.tasks[0].with.auth.bearerFrom: Invalid value: must be the name of a secret, not its value"}},
		{"auth name starting with a digit", `{provider: prometheus, endpoint: "http://127.0.0.1:9090", auth: {basic: {usernameFrom: U, passwordFrom: 1PASS}}, queries: [{name: q, query: up}]}`, []string{"spec.tasks[0].with.auth.basic.passwordFrom: Invalid value: must be the name of a secret"}},
		{"auth empty name", `{provider: prometheus, endpoint: "http://127.0.0.1:9090", auth: {apiKey: {header: X-Key}}, queries: [{name: q, query: up}]}`, []string{"spec.tasks[0].with.auth.apiKey.keyFrom: Required value: the name of a secret"}},
		{"auth header not a token", `{provider: prometheus, endpoint: "http://127.0.0.1:9090", auth: {apiKey: {header: "X Key", keyFrom: K}, headersFrom: {"Bad:Name": K}}, queries: [{name: q, query: up}]}`, []string{"spec.tasks[0].with.auth.apiKey.header: Invalid value: \"X Key\": a header name is a token", "spec.tasks[0].with.auth.headersFrom[Bad:Name]: Invalid value"}},
		{"inline provider header not a token", `{provider: mine, endpoint: "http://127.0.0.1:1", providers: [{name: mine, metrics: [{name: m, type: gauge, request: {url: /q, headers: {"X Y": v}}, jq: .}]}]}`, []string{"providers[0].metrics[0].request.headers[X Y]: Invalid value"}},
		{"relative url without endpoint", `{provider: prometheus, queries: [{name: q, query: up}]}`, []string{"relative and there is no endpoint"}},
		{"bad window", `{provider: prometheus, endpoint: "http://127.0.0.1:9090", window: soon, queries: [{name: q, query: up}]}`, []string{"spec.tasks[0].with.window"}},
		{"inline provider bad template and jq", `
provider: mine
endpoint: http://127.0.0.1:1
providers:
- name: mine
  metrics:
  - name: m
    type: histogram
    request: {url: "{{ .a", headers: {X: "{{ end }}"}}
    jq: "]"
`, []string{"spec.tasks[0].with.providers[0].metrics[0].request.url", "providers[0].metrics[0].request.headers[X]", "providers[0].metrics[0].jq", "providers[0].metrics[0].type"}},
		{"inline shadows builtin", `{provider: istio, endpoint: "http://127.0.0.1:1", providers: [{name: istio}]}`, []string{"spec.tasks[0].with.providers[0].name", "built-in"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, _ := experimenttest.Decoding(t, tt.with, []string{"v1"}, nil)
			task, errs := Decode(d)
			if len(errs) == 0 {
				t.Fatalf("Decode(%s) = %v, want errors", tt.with, task)
			}
			msg := errs.ToAggregate().Error()
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("errors %q do not contain %q", msg, w)
				}
			}
			if strings.Contains(msg, "abc/def") {
				t.Errorf("errors show a secret-like value: %s", msg)
			}
		})
	}
}

func TestInlineProvider(t *testing.T) {
	b := newBackend(t, 200, `{"value": {"v1": 3, "v2": 4}}`)
	with := strings.ReplaceAll(`
provider: mine
endpoint: %s
auth: {apiKey: {header: X-Api-Key, keyFrom: api.key-1}} # a name as a Secret's key
values: {base: stats}
providers:
- name: mine
  metrics:
  - name: score
    units: points
    type: gauge
    request:
      method: POST
      url: '{{.base}}/{{.version}}'
      params: [{name: since, value: '{{.startTime}}'}]
      headers: {X-Window: '{{.window}}'}
      body: '{"version": {{json .version}}}'
    jq: .value[.version // "v1"]
`, "%s", b.URL)
	task, d, plan := decode(t, with, []string{"v1"})
	if !d.Metrics.Has("v1", "mine/score") {
		t.Errorf("Catalog lacks mine/score: %v", d.Metrics.Known())
	}
	err, res, _ := run(t, task, plan, map[string]string{"api.key-1": secret})
	if err != nil {
		t.Fatal(err)
	}
	r := b.requests()[0]
	if r.method != "POST" || r.path != "/stats/v1" || r.query.Get("since") != "2026-01-02T03:04:05Z" ||
		r.header.Get("X-Window") != "37s" || r.header.Get("X-Api-Key") != secret || r.body != `{"version": "v1"}` {
		t.Errorf("request %+v", r)
	}
	if m := res.Version("v1").Metrics["mine/score"]; m.Value != 3 || m.Unit != "points" {
		t.Errorf("mine/score = %+v", m)
	}
}
