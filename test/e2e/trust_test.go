package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestSkipReasonInReports: a task skipped because its `if` was false says
// so in the text, json and html reports, and the run still succeeds.
func TestSkipReasonInReports(t *testing.T) {
	tg := newTarget(t)
	dir := t.TempDir()
	writeFile(t, dir, "experiment.yaml", `apiVersion: iter8.tools/v1
kind: Experiment
metadata: {name: skip}
spec:
  tasks:
  - task: http
    with: {url: "`+tg.url()+`", numRequests: 20}
  - task: assess
    if: metrics[""]["http/error-count"] > 0
    with:
      slos: [{metric: http/error-rate, upper: 0}]
`)
	if out := iter8(t, dir, "run"); out.code != 0 {
		t.Fatalf("run: exit %d\n%s", out.code, out)
	}
	const reason = `if: metrics[""]["http/error-count"] > 0 was false`

	out := iter8(t, dir, "report")
	if !strings.Contains(out.stdout, "1 assess: "+reason) {
		t.Errorf("text report lacks the skip reason %q\n%s", reason, out)
	}
	out = iter8(t, dir, "report", "-o", "json")
	var r struct {
		Tasks []struct{ State, Reason string }
	}
	if err := json.Unmarshal([]byte(out.stdout), &r); err != nil || len(r.Tasks) != 2 {
		t.Fatalf("report -o json: %v\n%s", err, out)
	}
	if r.Tasks[1].State != "skipped" || r.Tasks[1].Reason != reason {
		t.Errorf("json task 1 = %+v; want skipped with reason %q", r.Tasks[1], reason)
	}
	out = iter8(t, dir, "report", "-o", "html")
	if !strings.Contains(out.stdout, `if: metrics[&#34;&#34;][&#34;http/error-count&#34;] &gt; 0 was false`) {
		t.Errorf("html report lacks the skip reason (exit %d)", out.code)
	}
}

// TestReportRefusesEmptyResult: a result file holding null used to report
// an empty experiment; now it is an error that names the file.
func TestReportRefusesEmptyResult(t *testing.T) {
	for _, content := range []string{"null\n", "{}\n"} {
		dir := t.TempDir()
		writeFile(t, dir, "experiment.yaml", "apiVersion: iter8.tools/v1\n")
		writeFile(t, dir, "experiment.result.json", content)
		out := iter8(t, dir, "report")
		checkNoCrash(t, out)
		if out.code != 2 || !strings.Contains(out.stderr, "experiment.result.json") || !strings.Contains(out.stderr, "not a valid result file") {
			t.Errorf("report of a result file holding %q: exit %d; want 2 and an error naming the file\n%s", content, out.code, out)
		}
	}
}

// TestReportEscapesTerminalControls: error text from a server that holds
// terminal escapes (set the title, clear the screen) is shown escaped.
func TestReportEscapesTerminalControls(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "experiment.yaml", "apiVersion: iter8.tools/v1\n")
	writeFile(t, dir, "experiment.result.json", `{"experiment": "e", "revision": 1, "startTime": "2026-01-02T03:04:05Z",
 "tasks": [{"task": "metrics", "state": "failed", "error": "server said: \u001b]0;pwned\u0007\u001b[2J"}],
 "versions": [{"name": "", "unavailable": {"prom/up": "\u001b[31mred\u009b0m"}}]}`)
	out := iter8(t, dir, "report")
	if out.code != 0 {
		t.Fatalf("report: exit %d\n%s", out.code, out)
	}
	if strings.ContainsAny(out.stdout, "\x1b\x07\u009b") {
		t.Errorf("report printed terminal controls raw: %q", out.stdout)
	}
	for _, want := range []string{`server said: \x1b]0;pwned\a\x1b[2J`, `\x1b[31mred\u009b0m`} {
		if !strings.Contains(out.stdout, want) {
			t.Errorf("report lacks the escaped text %s\n%s", want, out.stdout)
		}
	}
}

// TestLogAndErrorsEscapeTerminalControls: the kept log lines and an error
// that quotes a server reach the terminal escaped too.
func TestLogAndErrorsEscapeTerminalControls(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "experiment.yaml", "apiVersion: iter8.tools/v1\n")
	writeFile(t, dir, "experiment.result.json", `{"experiment": "e", "revision": 1, "startTime": "2026-01-02T03:04:05Z",
 "tasks": [{"task": "metrics", "state": "succeeded"}], "versions": [{"name": ""}],
 "log": ["backend said \u001b]0;pwned\u0007"]}`)
	out := iter8(t, dir, "log")
	if out.code != 0 || strings.ContainsAny(out.stdout, "\x1b\x07") || !strings.Contains(out.stdout, `backend said \x1b]0;pwned\a`) {
		t.Errorf("log: want the line escaped\n%s", out)
	}

	// A metrics backend whose answer holds escapes fails the task; its
	// words come back in the run's error on stderr.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "not json \x1b]0;pwned\x07\x1b[2J")
	}))
	defer srv.Close()
	writeFile(t, dir, "spec.yaml", `apiVersion: iter8.tools/v1
kind: Experiment
metadata: {name: e}
spec:
  tasks:
  - task: metrics
    with: {provider: prometheus, endpoint: "`+srv.URL+`", queries: [{name: up, query: up}]}
`)
	out = iter8(t, dir, "run", "-f", "spec.yaml")
	if out.code == 0 || !strings.Contains(out.stderr, "not json") {
		t.Fatalf("run against a backend that answers no JSON: want failure quoting it\n%s", out)
	}
	if strings.ContainsAny(out.stderr, "\x1b\x07") {
		t.Errorf("stderr has a raw escape: %q", out.stderr)
	}
}
