package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/iter8-tools/iter8/pkg/experiment"
)

// hostile is text a metrics or notification server may send back: it sets
// the terminal's title and clears the screen when printed raw.
const hostile = "\x1b]0;pwned\x07\x1b[2J\u202egnp.exe\u009b31m\xff"

// hostileResult puts hostile text everywhere a result carries text from
// outside: errors, reasons, names.
func hostileResult() *experiment.Result {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	end := start.Add(time.Minute)
	r := &experiment.Result{Experiment: "e" + hostile, Revision: 1, StartTime: start, EndTime: &end}
	r.Tasks = []experiment.TaskResult{
		{Task: "metrics", State: experiment.TaskFailed, Error: "query: " + hostile + "\nsecond line\tend", Duration: time.Second},
		{Task: "assess" + hostile, State: experiment.TaskSkipped, Reason: "if: " + hostile + " was false"},
	}
	r.Versions = []experiment.VersionResult{{Name: "v1" + hostile}, {Name: "v2"}}
	r.SetMetric("v1"+hostile, "prom/"+hostile, 1, "msec"+hostile)
	r.SetUnavailable("v2", "prom/"+hostile, "backend said "+hostile)
	r.SLOs = []experiment.SLOVerdict{{Metric: "prom/" + hostile, Version: "v2", Reason: hostile}}
	r.Comparisons = []experiment.Comparison{{Metric: "prom/" + hostile, Baseline: "v1" + hostile, Candidate: "v2", Verdict: experiment.VerdictInconclusive, Reason: hostile}}
	r.Rewards = []experiment.RewardResult{{Metric: "prom/" + hostile, Direction: "max", Reason: hostile}}
	r.Log = []string{"log " + hostile}
	return r
}

// TestTextEscapesOutsideText: no control character, bidirectional override
// or stray byte of a result reaches the terminal; each shows as an escape.
func TestTextEscapesOutsideText(t *testing.T) {
	out := text(t, hostileResult())
	for i, r := range out {
		if r == '\n' {
			continue
		}
		if unsafeRune(r) {
			t.Fatalf("text report has %q at byte %d:\n%s", r, i, out)
		}
	}
	if !utf8.ValidString(out) {
		t.Errorf("text report is not valid UTF-8")
	}
	words := strings.Join(strings.Fields(out), " ")
	for _, want := range []string{`\x1b]0;pwned\a\x1b[2J\u202egnp.exe\u009b31m\xff`, "query: ", "; second line\\tend", "v1\\x1b"} {
		if !strings.Contains(words, want) {
			t.Errorf("text report lacks %q:\n%s", want, out)
		}
	}
}

func TestPrintable(t *testing.T) {
	for in, want := range map[string]string{
		"plain ✔ text":  "plain ✔ text",
		"a\x1bb":        `a\x1bb`,
		"tab\there":     `tab\there`,
		"nl\n":          `nl\n`,
		"del\x7f":       `del\x7f`,
		"bidi\u202e":    `bidi\u202e`,
		"bad\xffbyte":   `bad\xffbyte`,
		`back\slash`:    `back\slash`,
		"csi\u009b":     `csi\u009b`,
		"line\u2028sep": `line\u2028sep`,
	} {
		if got := Printable(in); got != want {
			t.Errorf("Printable(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestSkipReasonShown: a task skipped by its `if` says so in text, json
// and html.
func TestSkipReasonShown(t *testing.T) {
	r := loopsResult(t)
	r.Tasks[1] = experiment.TaskResult{Task: "assess", State: experiment.TaskSkipped, Reason: experiment.SkipReasonIf(`metrics["v2"]["http/request-count"] > 0`)}
	const want = `if: metrics["v2"]["http/request-count"] > 0 was false`
	if out := text(t, r); !strings.Contains(out, "1 assess: "+want) {
		t.Errorf("text report lacks the skip reason:\n%s", out)
	}
	var buf bytes.Buffer
	if err := Write(&buf, r, JSON); err != nil {
		t.Fatal(err)
	}
	var back struct {
		Tasks []struct{ State, Reason string }
	}
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil || back.Tasks[1].State != "skipped" || back.Tasks[1].Reason != want {
		t.Errorf("json task 1 = %+v (%v); want skipped with reason %q", back.Tasks[1], err, want)
	}
	buf.Reset()
	if err := writeHTML(&buf, r, ""); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `if: metrics[&#34;v2&#34;][&#34;http/request-count&#34;] &gt; 0 was false`) {
		t.Errorf("html report lacks the skip reason")
	}
}

// TestTextFits80Columns: values are rounded to four significant digits and
// every line fits 80 columns, long errors and reasons included.
func TestTextFits80Columns(t *testing.T) {
	r := loopsResult(t)
	r.SetMetric("v1", "http/error-rate", 0.02004008016032064, "")
	r.Tasks[0].State, r.Tasks[0].Error = experiment.TaskFailed,
		"http://127.0.0.1:1/: none of 100 requests got a response (connect: connection refused); the target is not listening on that port"
	r.SLOs[0].Reason = strings.Repeat("a long reason ", 12)
	r.Rewards[0].Best, r.Winner = "", ""
	out := text(t, r)
	if !strings.Contains(out, " 0.02004 ") || strings.Contains(out, "0.0200400801") {
		t.Errorf("http/error-rate not shown as 0.02004:\n%s", out)
	}
	for _, l := range strings.Split(out, "\n") {
		if n := utf8.RuneCountInString(l); n > 80 {
			t.Errorf("line of %d columns:\n%s", n, l)
		}
	}
	words := strings.Join(strings.Fields(out), " ")
	if !strings.Contains(words, "0 http: http://127.0.0.1:1/: none of 100 requests got a response (connect: connection refused); the target is not listening on that port") {
		t.Errorf("the task's error is not shown whole:\n%s", out)
	}
}
