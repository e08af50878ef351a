package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/iter8-tools/iter8/pkg/experiment"
)

func TestWebhookDefaultPayload(t *testing.T) {
	srv := newRecorder(t, http.StatusOK, nil)
	task := mustDecode(t, `{"targets": [{"webhook": {"url": "`+srv.URL+`/hooks/iter8"}}]}`)
	var logs bytes.Buffer
	if err := task.Run(context.Background(), env(sampleResult(), nil, &logs)); err != nil {
		t.Fatalf("Run: %v", err)
	}
	req := srv.only(t)
	if req.Method != http.MethodPost || req.Path != "/hooks/iter8" {
		t.Errorf("request = %s %s, want POST /hooks/iter8", req.Method, req.Path)
	}
	if ct := req.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	if ua := req.Header.Get("User-Agent"); ua != userAgent {
		t.Errorf("User-Agent = %q, want %q", ua, userAgent)
	}
	var got Summary
	if err := json.Unmarshal(req.Body, &got); err != nil {
		t.Fatalf("payload %s: %v", req.Body, err)
	}
	if want := NewSummary(sampleResult()); !reflect.DeepEqual(&got, want) {
		t.Errorf("payload = %+v, want the summary %+v", got, want)
	}
	if !strings.Contains(logs.String(), "msg=notified target=0 kind=webhook endpoint="+srv.URL+"/hooks/iter8 status=200") {
		t.Errorf("log = %s, want a line saying target 0 was notified", logs.String())
	}
}

func TestWebhookTemplated(t *testing.T) {
	srv := newRecorder(t, http.StatusAccepted, nil)
	with := `{"targets": [{"webhook": {
		"url": "` + srv.URL + `/hook?fixed=1&env=old",
		"method": "put",
		"headers": {"X-Token": "t={{ secret \"HOOK_TOKEN\" }}", "X-Experiment": "{{ .Experiment }}"},
		"headersFrom": {"Authorization": "HOOK_AUTH"},
		"query": {"env": "{{ .Experiment }}-{{ .Revision }}", "key": "{{ secret \"QUERY_KEY\" }}"},
		"contentType": "application/vnd.example+json",
		"payloadTemplate": "{\"name\": {{ toJson .Experiment }}, \"ok\": {{ .SLOsSatisfied }}, \"p99\": {{ index .Metrics.v2 \"http/latency-p99\" }}, \"winner\": {{ toJson .Winner }}}"
	}}]}`
	task := mustDecode(t, with)
	secrets := map[string]string{"HOOK_TOKEN": "tok/en+1", "HOOK_AUTH": "Bearer abc", "QUERY_KEY": "k&y=1"}
	if err := task.Run(context.Background(), env(sampleResult(), secrets, nil)); err != nil {
		t.Fatalf("Run: %v", err)
	}
	req := srv.only(t)
	if req.Method != http.MethodPut || req.Path != "/hook" {
		t.Errorf("request = %s %s, want PUT /hook", req.Method, req.Path)
	}
	q, _ := url.ParseQuery(req.Query)
	if want := (url.Values{"fixed": {"1"}, "env": {"checkout-3"}, "key": {"k&y=1"}}); !reflect.DeepEqual(q, want) {
		t.Errorf("query = %v, want %v (the URL's own, overridden and added to)", q, want)
	}
	for k, want := range map[string]string{
		"X-Token": "t=tok/en+1", "X-Experiment": "checkout", "Authorization": "Bearer abc",
		"Content-Type": "application/vnd.example+json",
	} {
		if got := req.Header.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	if want := `{"name": "checkout", "ok": false, "p99": 120, "winner": "v1"}`; string(req.Body) != want {
		t.Errorf("payload = %s, want %s", req.Body, want)
	}
}

func TestWebhookGET(t *testing.T) {
	srv := newRecorder(t, http.StatusOK, nil)
	task := mustDecode(t, `{"targets": [{"webhook": {"url": "`+srv.URL+`/ping", "method": "GET", "query": {"state": "{{ .State }}"}}}]}`)
	if err := task.Run(context.Background(), env(sampleResult(), nil, nil)); err != nil {
		t.Fatalf("Run: %v", err)
	}
	req := srv.only(t)
	if req.Method != http.MethodGet || req.Query != "state=completed" || len(req.Body) != 0 || req.Header.Get("Content-Type") != "" {
		t.Errorf("request = %s ?%s, body %q, Content-Type %q; want GET ?state=completed without a body", req.Method, req.Query, req.Body, req.Header.Get("Content-Type"))
	}
}

func TestSlack(t *testing.T) {
	srv := newRecorder(t, http.StatusOK, func(*http.Request) string { return "ok" })
	hook := srv.URL + "/services/T000/B000/XXXXXXXXXXXXXXXXXXXXXXXX"
	for _, tc := range []struct{ name, text, want string }{
		{"default", "", "Iter8 experiment *checkout* (revision 3) completed: SLOs not satisfied; winner: v1\n• http/latency-p99 of v2: 120 (upper 100)"},
		{"template", `{{ .Experiment }} <{{ .State }}> {{ with .Winner }}won by {{ . }}{{ end }}`, "checkout <completed> won by v1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv.reqs = nil
			task := mustDecode(t, `{"targets": [{"slack": {"urlFrom": "SLACK_WEBHOOK_URL", "text": `+jsonString(tc.text)+`}}]}`)
			var logs bytes.Buffer
			if err := task.Run(context.Background(), env(sampleResult(), map[string]string{"SLACK_WEBHOOK_URL": hook}, &logs)); err != nil {
				t.Fatalf("Run: %v", err)
			}
			req := srv.only(t)
			if req.Method != http.MethodPost || req.Path != "/services/T000/B000/XXXXXXXXXXXXXXXXXXXXXXXX" || req.Header.Get("Content-Type") != "application/json" {
				t.Errorf("request = %s %s (%s), want a JSON POST to the webhook's path", req.Method, req.Path, req.Header.Get("Content-Type"))
			}
			var body map[string]any
			if err := json.Unmarshal(req.Body, &body); err != nil {
				t.Fatalf("body %s: %v", req.Body, err)
			}
			if want := map[string]any{"text": tc.want}; !reflect.DeepEqual(body, want) {
				t.Errorf("body = %v, want %v", body, want)
			}
			if strings.Contains(logs.String(), "XXXXXXXX") || !strings.Contains(logs.String(), "endpoint=REDACTED") {
				t.Errorf("log = %s, want the endpoint redacted", logs.String())
			}
		})
	}
}

func TestSlackDefaultTextFailed(t *testing.T) {
	s := NewSummary(sampleResult())
	s.State, s.FailedTask = experiment.StateFailed, &FailedTask{Index: 1, Task: "http", Error: "endpoint <v2> unreachable & " + strings.Repeat("x", 400)}
	got := defaultSlackText(s)
	want := "Iter8 experiment *checkout* (revision 3) failed: task 1 (http): endpoint &lt;v2&gt; unreachable &amp; " + strings.Repeat("x", 300-len("endpoint <v2> unreachable & ")) + "…"
	if got != want {
		t.Errorf("defaultSlackText =\n%s\nwant\n%s", got, want)
	}
}

func TestGitHubRepositoryDispatch(t *testing.T) {
	srv := newRecorder(t, http.StatusNoContent, nil)
	task := mustDecode(t, `{"targets": [{"github": {"repository": "o/r", "tokenFrom": "GITHUB_TOKEN", "eventType": "iter8-done", "apiURL": "`+srv.URL+`"}}]}`)
	if err := task.Run(context.Background(), env(sampleResult(), map[string]string{"GITHUB_TOKEN": "ghp_secret"}, nil)); err != nil {
		t.Fatalf("Run: %v", err)
	}
	req := srv.only(t)
	if req.Method != http.MethodPost || req.Path != "/repos/o/r/dispatches" {
		t.Errorf("request = %s %s, want POST /repos/o/r/dispatches", req.Method, req.Path)
	}
	checkGitHubHeaders(t, req, "ghp_secret")
	var body struct {
		EventType     string          `json:"event_type"`
		ClientPayload json.RawMessage `json:"client_payload"`
	}
	if err := json.Unmarshal(req.Body, &body); err != nil {
		t.Fatalf("body %s: %v", req.Body, err)
	}
	var payload Summary
	if err := json.Unmarshal(body.ClientPayload, &payload); err != nil {
		t.Fatal(err)
	}
	if body.EventType != "iter8-done" || !reflect.DeepEqual(&payload, NewSummary(sampleResult())) {
		t.Errorf("body = %s, want event_type iter8-done and the summary as client_payload", req.Body)
	}
	var props map[string]any
	if err := json.Unmarshal(body.ClientPayload, &props); err != nil || len(props) > 10 {
		t.Errorf("client_payload has %d top-level properties, GitHub takes at most 10", len(props))
	}
}

func TestGitHubWorkflowDispatch(t *testing.T) {
	srv := newRecorder(t, http.StatusNoContent, nil)
	task := mustDecode(t, `{"targets": [{"github": {
		"repository": "my-org/my.repo", "tokenFrom": "GH", "dispatch": "workflow", "workflow": "promote.yaml", "ref": "main",
		"inputs": {"experiment": "{{ .Experiment }}", "winner": "{{ .Winner }}", "summary": "{{ toJson .SLOsSatisfied }}"},
		"apiURL": "`+srv.URL+`/api/v3"}}]}`)
	if err := task.Run(context.Background(), env(sampleResult(), map[string]string{"GH": "ghs_token"}, nil)); err != nil {
		t.Fatalf("Run: %v", err)
	}
	req := srv.only(t)
	if req.Method != http.MethodPost || req.Path != "/api/v3/repos/my-org/my.repo/actions/workflows/promote.yaml/dispatches" {
		t.Errorf("request = %s %s, want POST /api/v3/repos/my-org/my.repo/actions/workflows/promote.yaml/dispatches", req.Method, req.Path)
	}
	checkGitHubHeaders(t, req, "ghs_token")
	var body map[string]any
	if err := json.Unmarshal(req.Body, &body); err != nil {
		t.Fatalf("body %s: %v", req.Body, err)
	}
	want := map[string]any{"ref": "main", "inputs": map[string]any{"experiment": "checkout", "winner": "v1", "summary": "false"}}
	if !reflect.DeepEqual(body, want) {
		t.Errorf("body = %v, want %v", body, want)
	}
}

func checkGitHubHeaders(t *testing.T, req request, token string) {
	t.Helper()
	for k, want := range map[string]string{
		"Authorization":        "Bearer " + token,
		"Accept":               "application/vnd.github+json",
		"X-Github-Api-Version": "2022-11-28",
		"Content-Type":         "application/json",
		"User-Agent":           userAgent,
	} {
		if got := req.Header.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
}

func TestCloudEvent(t *testing.T) {
	var got *http.Request
	srv := newRecorder(t, http.StatusAccepted, nil)
	task := mustDecode(t, `{"targets": [{"cloudevent": {"urlFrom": "BROKER", "type": "tools.iter8.experiment.completed", "source": "/iter8/experiments/checkout", "subject": "{{ .Experiment }}/{{ .Revision }}"}}]}`)
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	e := env(sampleResult(), map[string]string{"BROKER": srv.URL + "/broker?key=s3cr3t-key"}, nil)
	e.Now = func() time.Time { return now }
	if err := task.Run(context.Background(), e); err != nil {
		t.Fatalf("Run: %v", err)
	}
	req := srv.only(t)
	if req.Method != http.MethodPost || req.Path != "/broker" || req.Query != "key=s3cr3t-key" {
		t.Errorf("request = %s %s?%s, want POST /broker?key=s3cr3t-key", req.Method, req.Path, req.Query)
	}
	for k, want := range map[string]string{
		"Ce-Specversion": "1.0",
		"Ce-Type":        "tools.iter8.experiment.completed",
		"Ce-Source":      "/iter8/experiments/checkout",
		"Ce-Subject":     "checkout/3",
		"Ce-Time":        "2030-01-02T03:04:05Z",
		"Content-Type":   "application/json",
	} {
		if v := req.Header.Get(k); v != want {
			t.Errorf("header %s = %q, want %q (binary mode)", k, v, want)
		}
	}
	if req.Header.Get("Ce-Id") == "" {
		t.Error("no ce-id header")
	}
	// The SDK reads back what it wrote.
	got, _ = http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(req.Body))
	got.Header = req.Header
	ev, err := cehttp.NewEventFromHTTPRequest(got)
	if err != nil {
		t.Fatalf("the SDK cannot read the event: %v", err)
	}
	var data Summary
	if err := ev.DataAs(&data); err != nil || !reflect.DeepEqual(&data, NewSummary(sampleResult())) {
		t.Errorf("event data = %+v (%v), want the summary", data, err)
	}
}

func TestSeveralTargets(t *testing.T) {
	ok := newRecorder(t, http.StatusOK, nil)
	bad := newRecorder(t, http.StatusBadRequest, func(*http.Request) string { return "invalid_payload\n" })
	task := mustDecode(t, `{"targets": [
		{"webhook": {"url": "`+ok.URL+`/a"}},
		{"webhook": {"url": "`+bad.URL+`/b?token=abc"}},
		{"slack": {"urlFrom": "SLACK"}},
		{"webhook": {"url": "`+ok.URL+`/c"}}
	]}`)
	err := task.Run(context.Background(), env(sampleResult(), nil, nil))
	want := "2 of 4 targets failed: target 1 (webhook): POST " + bad.URL + "/b: status 400: invalid_payload; " +
		"target 2 (slack): secret SLACK is not set (locally an environment variable; in a cluster an env entry of the Job, from a Secret)"
	if err == nil || err.Error() != want {
		t.Errorf("Run error:\n%v\nwant\n%s", err, want)
	}
	if n := len(ok.reqs); n != 2 {
		t.Errorf("the working server got %d requests, want 2: a failing target does not stop the others", n)
	}
}

func TestRedirectNotFollowed(t *testing.T) {
	srv := newRecorder(t, http.StatusFound, nil)
	task := mustDecode(t, `{"targets": [{"webhook": {"url": "`+srv.URL+`/a"}}]}`)
	err := task.Run(context.Background(), env(sampleResult(), nil, nil))
	if err == nil || !strings.Contains(err.Error(), "status 302 (redirects are not followed: give the final URL)") {
		t.Errorf("Run = %v, want status 302 with a hint", err)
	}
}

func TestSecretNotAURL(t *testing.T) {
	task := mustDecode(t, `{"targets": [{"slack": {"urlFrom": "SLACK"}}]}`)
	for _, v := range []string{"not a url with s3cr3t", "ftp://host/s3cr3t", "http://[::1/s3cr3t"} {
		err := task.Run(context.Background(), env(sampleResult(), map[string]string{"SLACK": v}, nil))
		if err == nil || err.Error() != "target 0 (slack): secret SLACK does not hold an http:// or https:// URL" {
			t.Errorf("Run with SLACK=%q: %v; want a clear error that does not show the value", v, err)
		}
	}
	err := task.Run(context.Background(), env(sampleResult(), map[string]string{"SLACK": ""}, nil))
	if err == nil || err.Error() != "target 0 (slack): secret SLACK is empty" {
		t.Errorf("Run with SLACK empty: %v", err)
	}
}

func TestHeaderLineBreaks(t *testing.T) {
	srv := newRecorder(t, http.StatusOK, nil)
	for _, tc := range []struct{ with, want string }{
		{`{"headersFrom": {"Authorization": "AUTH"}}`, "target 0 (webhook): header Authorization: secret AUTH has a line break"},
		{`{"headers": {"X-A": "{{ secret \"AUTH\" }}"}}`, "target 0 (webhook): header X-A: the value has a line break"},
	} {
		task := mustDecode(t, `{"targets": [{"webhook": `+strings.Replace(tc.with, "{", `{"url": "`+srv.URL+`", `, 1)+`}]}`)
		err := task.Run(context.Background(), env(sampleResult(), map[string]string{"AUTH": "Bearer x\r\nX-Evil: 1"}, nil))
		if err == nil || err.Error() != tc.want {
			t.Errorf("Run(%s) = %v, want %s", tc.with, err, tc.want)
		}
	}
	if n := len(srv.reqs); n != 0 {
		t.Errorf("server got %d requests, want none", n)
	}
}

func TestRunTimeTemplateErrors(t *testing.T) {
	srv := newRecorder(t, http.StatusOK, nil)
	spec := `apiVersion: iter8.tools/v1
kind: Experiment
metadata: {name: t}
spec:
  versions: [v1, v2]
  tasks:
  - task: produce
    with:
      declare: {v1: [http/latency-p99], v2: [http/latency-p99]}
      values: {v1: {http/latency-p99: 10}}
  - task: notify
    with:
      targets:
      - webhook:
          url: ` + srv.URL + `
          payloadTemplate: '{{ index .Metrics.v1 "http/latency-p99" }} {{ .Metrics.v2 }}'
      - webhook:
          url: ` + srv.URL + `
          headers: {X-Failed: '{{ .FailedTask.Task }}'}
`
	r := runSpec(t, spec, nil)
	want := []string{
		`target 0 (webhook): spec.tasks[1].with.targets[0].webhook.payloadTemplate: line 1:54: <.Metrics.v2>: map has no entry for key "v2"`,
		`target 1 (webhook): spec.tasks[1].with.targets[1].webhook.headers[X-Failed]: line 1:14: <.FailedTask.Task>: nil pointer evaluating *notify.FailedTask.Task`,
	}
	for _, w := range want {
		if r.err == nil || !strings.Contains(r.err.Error(), w) {
			t.Errorf("run error %v, want one containing %q", r.err, w)
		}
	}
	if n := len(srv.reqs); n != 0 {
		t.Errorf("server got %d requests; a target whose template fails sends nothing", n)
	}
}

func TestCancelled(t *testing.T) {
	task := mustDecode(t, `{"softFailure": true, "targets": [{"webhook": {"url": "`+hangingURL(t)+`"}}]}`)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := task.Run(ctx, env(sampleResult(), nil, nil)); err == nil {
		t.Error("Run with a cancelled context succeeded; softFailure must not hide an interrupt")
	}
}

// TestGitHubCommitStatus: the verdict as a commit status, by the documented
// request (POST /repos/{owner}/{repo}/statuses/{sha}); the SHA from a
// secret, the token in no log line.
func TestGitHubCommitStatus(t *testing.T) {
	const sha = "0123456789abcdef0123456789abcdef01234567"
	srv := newRecorder(t, http.StatusCreated, nil)
	task := mustDecode(t, `{"targets": [{"github": {"repository": "o/r", "tokenFrom": "GH", "dispatch": "status",
		"sha": "{{ secret \"COMMIT\" }}", "targetURL": "https://ci.example.com/runs/{{ .Revision }}", "apiURL": "`+srv.URL+`"}}]}`)
	var logs strings.Builder
	if err := task.Run(context.Background(), env(sampleResult(), map[string]string{"GH": "ghs_token", "COMMIT": sha}, &logs)); err != nil {
		t.Fatalf("Run: %v", err)
	}
	req := srv.only(t)
	if req.Method != http.MethodPost || req.Path != "/repos/o/r/statuses/"+sha {
		t.Errorf("request = %s %s, want POST /repos/o/r/statuses/%s", req.Method, req.Path, sha)
	}
	checkGitHubHeaders(t, req, "ghs_token")
	var body map[string]any
	if err := json.Unmarshal(req.Body, &body); err != nil {
		t.Fatalf("body %s: %v", req.Body, err)
	}
	want := map[string]any{"state": "failure", "description": "iter8: SLOs not met: v2 http/latency-p99",
		"context": "iter8/checkout", "target_url": "https://ci.example.com/runs/3"}
	if !reflect.DeepEqual(body, want) {
		t.Errorf("body = %v, want %v", body, want)
	}
	if strings.Contains(logs.String(), "ghs_token") {
		t.Errorf("the token is in the log:\n%s", logs.String())
	}
}

// TestCommitStatusVerdicts: success, failure and error, each with its
// description, the context and a long description cut to GitHub's 140.
func TestCommitStatusVerdicts(t *testing.T) {
	passed := sampleResult()
	passed.SLOs = passed.SLOs[:1]
	failedTask := sampleResult()
	failedTask.Tasks[0] = experiment.TaskResult{Task: "http", State: experiment.TaskFailed, Error: "unreachable"}
	for _, c := range []struct {
		name        string
		result      *experiment.Result
		extra       string
		state, desc string
	}{
		{"success", passed, "", "success", "iter8: 1 SLOs met"},
		{"error", failedTask, "", "error", "iter8: task 0 (http) failed"},
		{"templates", passed, `, "context": "perf/{{ .Experiment }}", "description": "` + strings.Repeat("é", 200) + `"`, "success", strings.Repeat("é", 139) + "…"},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := newRecorder(t, http.StatusCreated, nil)
			task := mustDecode(t, `{"targets": [{"github": {"repository": "o/r", "tokenFrom": "GH", "dispatch": "status",
				"sha": "0123456789abcdef0123456789abcdef01234567", "apiURL": "`+srv.URL+`"`+c.extra+`}}]}`)
			if err := task.Run(context.Background(), env(c.result, map[string]string{"GH": "ghs_tok"}, nil)); err != nil {
				t.Fatalf("Run: %v", err)
			}
			var body map[string]any
			if err := json.Unmarshal(srv.only(t).Body, &body); err != nil {
				t.Fatal(err)
			}
			if body["state"] != c.state || body["description"] != c.desc {
				t.Errorf("state %v, description %q; want %s, %q", body["state"], body["description"], c.state, c.desc)
			}
			if wantContext := map[bool]string{true: "perf/checkout", false: "iter8/checkout"}[c.extra != ""]; body["context"] != wantContext {
				t.Errorf("context %v, want %s", body["context"], wantContext)
			}
		})
	}
}

// TestCommitStatusBadValues: a SHA or target URL that renders wrong fails
// the target, naming the field; nothing is sent.
func TestCommitStatusBadValues(t *testing.T) {
	for _, c := range []struct{ name, fields, want string }{
		{"sha", `"sha": "{{ .Experiment }}"`, `with.targets[0].github.sha: "checkout" is not a commit SHA (40 or 64 hex digits)`},
		{"targetURL", `"sha": "0123456789abcdef0123456789abcdef01234567", "targetURL": "ftp://{{ .Experiment }}"`, `with.targets[0].github.targetURL: "ftp://checkout" is not an http:// or https:// URL`},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := newRecorder(t, http.StatusCreated, nil)
			task := mustDecode(t, `{"targets": [{"github": {"repository": "o/r", "tokenFrom": "GH", "dispatch": "status", `+c.fields+`, "apiURL": "`+srv.URL+`"}}]}`)
			err := task.Run(context.Background(), env(sampleResult(), map[string]string{"GH": "ghs_tok"}, nil))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Run: %v; want an error containing %q", err, c.want)
			}
			srv.mu.Lock()
			n := len(srv.reqs)
			srv.mu.Unlock()
			if n != 0 {
				t.Errorf("%d requests sent, want none", n)
			}
		})
	}
}
