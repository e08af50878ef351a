package notify

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name, with string
		want       []string
	}{
		{"no targets", `{}`, []string{"with.targets: Required value"}},
		{"empty target", `{"targets": [{}]}`, []string{"with.targets[0]: Required value: one of webhook, slack, github, cloudevent"}},
		{"two kinds", `{"targets": [{"webhook": {"url": "http://h/"}, "slack": {"urlFrom": "S"}}]}`,
			[]string{"with.targets[0].slack: Forbidden: a target is one of webhook, slack, github, cloudevent; this one is already webhook"}},
		{"unknown field", `{"targets": [{"webhook": {"url": "http://h/", "bogus": 1}}]}`, []string{"with.targets[0].webhook.bogus: Unsupported value: unknown field"}},
		{"unknown kind", `{"targets": [{"email": {}}]}`, []string{"with.targets[0].email: Unsupported value: unknown field"}},
		{"wrong type", `{"targets": {"webhook": {}}}`, []string{"with.targets"}},
		{"timeout", `{"timeout": "soon", "targets": [{"webhook": {"url": "http://h/"}}]}`, []string{"with.timeout: Invalid value"}},
		{"zero timeout", `{"timeout": "0s", "targets": [{"webhook": {"url": "http://h/"}}]}`, []string{"with.timeout: Invalid value: \"0s\": must be above 0"}},

		{"webhook without url", `{"targets": [{"webhook": {}}]}`, []string{"with.targets[0].webhook.url: Required value"}},
		{"webhook url and urlFrom", `{"targets": [{"webhook": {"url": "http://h/", "urlFrom": "U"}}]}`,
			[]string{"with.targets[0].webhook.urlFrom: Forbidden: set url or urlFrom, not both"}},
		{"webhook bad url", `{"targets": [{"webhook": {"url": "ftp://h/"}}]}`, []string{"with.targets[0].webhook.url: Invalid value", "http:// or https://"}},
		{"webhook URL in urlFrom", `{"targets": [{"webhook": {"urlFrom": "https://example.com/hook"}}]}`,
			[]string{"with.targets[0].webhook.urlFrom: Invalid value: must be the name of a secret, not its value"}},
		{"webhook bad method", `{"targets": [{"webhook": {"url": "http://h/", "method": "PO ST"}}]}`, []string{"with.targets[0].webhook.method: Invalid value"}},
		{"webhook bad header", `{"targets": [{"webhook": {"url": "http://h/", "headers": {"Bad Header": "x"}}}]}`,
			[]string{"with.targets[0].webhook.headers[Bad Header]: Invalid value", "not a header name"}},
		{"webhook content-type header", `{"targets": [{"webhook": {"url": "http://h/", "headers": {"content-type": "x"}}}]}`,
			[]string{"with.targets[0].webhook.headers[content-type]", "set it with contentType"}},
		{"webhook header twice", `{"targets": [{"webhook": {"url": "http://h/", "headers": {"X-Key": "a"}, "headersFrom": {"x-key": "KEY"}}}]}`,
			[]string{"with.targets[0].webhook.headersFrom[x-key]", "X-Key is set in headers too"}},
		{"webhook bad headersFrom", `{"targets": [{"webhook": {"url": "http://h/", "headersFrom": {"X-Key": "1KEY"}}}]}`,
			[]string{"with.targets[0].webhook.headersFrom[X-Key]: Invalid value: must be the name of a secret"}},
		{"webhook empty headersFrom", `{"targets": [{"webhook": {"url": "http://h/", "headersFrom": {"X-Key": ""}}}]}`,
			[]string{"with.targets[0].webhook.headersFrom[X-Key]: Required value"}},
		{"payload syntax", `{"targets": [{"webhook": {"url": "http://h/", "payloadTemplate": "{{ .Experiment "}}]}`,
			[]string{"with.targets[0].webhook.payloadTemplate: Invalid value", "line 1: unclosed action"}},
		{"payload function", `{"targets": [{"webhook": {"url": "http://h/", "payloadTemplate": "{{ nope }}"}}]}`,
			[]string{"with.targets[0].webhook.payloadTemplate", `function "nope" not defined`}},
		{"secret not quoted", `{"targets": [{"webhook": {"url": "http://h/", "payloadTemplate": "{{ secret .Experiment }}"}}]}`,
			[]string{"with.targets[0].webhook.payloadTemplate", `write {{ secret "NAME" }} with the name in quotes`}},
		{"secret piped", `{"targets": [{"webhook": {"url": "http://h/", "headers": {"X-A": "{{ \"K\" | secret }}"}}}]}`,
			[]string{"with.targets[0].webhook.headers[X-A]", `write {{ secret "NAME" }}`}},
		{"secret bad name", `{"targets": [{"webhook": {"url": "http://h/", "query": {"k": "{{ secret \"a b\" }}"}}}]}`,
			[]string{`with.targets[0].webhook.query[k]: Invalid value: must be the name of a secret`}},
		{"secret in define", `{"targets": [{"webhook": {"url": "http://h/", "payloadTemplate": "{{ define \"x\" }}{{ secret 1 }}{{ end }}{{ template \"x\" }}"}}]}`,
			[]string{"with.targets[0].webhook.payloadTemplate", `write {{ secret "NAME" }}`}},
		{"query without a name", `{"targets": [{"webhook": {"url": "http://h/", "query": {"": "x"}}}]}`,
			[]string{"with.targets[0].webhook.query", "a query parameter needs a name"}},
		{"GET with payload", `{"targets": [{"webhook": {"url": "http://h/", "method": "get", "payloadTemplate": "x"}}]}`,
			[]string{"with.targets[0].webhook.payloadTemplate: Forbidden: GET requests carry no payload"}},

		{"slack url", `{"targets": [{"slack": {"url": "https://hooks.slack.com/services/T/B/SECRETPART"}}]}`,
			[]string{"with.targets[0].slack.url: Forbidden: a Slack webhook URL is a secret"}},
		{"slack no urlFrom", `{"targets": [{"slack": {}}]}`, []string{"with.targets[0].slack.urlFrom: Required value"}},
		{"slack text", `{"targets": [{"slack": {"urlFrom": "S", "text": "{{ if }}"}}]}`, []string{"with.targets[0].slack.text: Invalid value", "line 1: missing value for if"}},

		{"github empty", `{"targets": [{"github": {}}]}`, []string{
			"with.targets[0].github.repository: Required value",
			"with.targets[0].github.tokenFrom: Required value",
			"with.targets[0].github.eventType: Required value",
		}},
		{"github bad repository", `{"targets": [{"github": {"repository": "o/r/x", "tokenFrom": "T", "eventType": "e"}}]}`,
			[]string{`with.targets[0].github.repository: Invalid value: "o/r/x"`}},
		{"github dispatch", `{"targets": [{"github": {"repository": "o/r", "tokenFrom": "T", "dispatch": "push"}}]}`,
			[]string{`with.targets[0].github.dispatch: Unsupported value: "push": supported values: "repository", "workflow", "status", "pullRequest"`}},
		{"github pull request empty", `{"targets": [{"github": {"repository": "o/r", "tokenFrom": "T", "dispatch": "pullRequest"}}]}`,
			[]string{"with.targets[0].github.base: Required value", "with.targets[0].github.path: Required value", "with.targets[0].github.content: Required value"}},
		{"github pull request bad names", `{"targets": [{"github": {"repository": "o/r", "tokenFrom": "T", "dispatch": "pullRequest", "base": "a..b", "branch": "-x", "path": "../etc/passwd", "content": "x"}}]}`,
			[]string{`with.targets[0].github.base: Invalid value: "a..b"`, `with.targets[0].github.branch: Invalid value: "-x"`, `with.targets[0].github.path: Invalid value: "../etc/passwd"`}},
		{"github pull request onto base", `{"targets": [{"github": {"repository": "o/r", "tokenFrom": "T", "dispatch": "pullRequest", "base": "main", "branch": "main", "path": "v.yaml", "content": "x"}}]}`,
			[]string{`with.targets[0].github.branch: Invalid value: "main": the pull request's own branch, not base`}},
		{"github pull request odd names", `{"targets": [{"github": {"repository": "o/r", "tokenFrom": "T", "dispatch": "pullRequest", "base": "a/.b", "branch": "x.lock/y", "path": "100%.md", "content": "x"}}]}`,
			[]string{`with.targets[0].github.base: Invalid value: "a/.b"`, `with.targets[0].github.branch: Invalid value: "x.lock/y"`, `with.targets[0].github.path: Invalid value: "100%.md"`}},
		{"github status literal target URL", `{"targets": [{"github": {"repository": "o/r", "tokenFrom": "T", "dispatch": "status", "sha": "0123456789abcdef0123456789abcdef01234567", "targetURL": "ftp://x/"}}]}`,
			[]string{`with.targets[0].github.targetURL: Invalid value: "ftp://x/": want an http:// or https:// URL`}},
		{"github pull request fields elsewhere", `{"targets": [{"github": {"repository": "o/r", "tokenFrom": "T", "eventType": "e", "base": "main", "path": "x", "content": "y"}}]}`,
			[]string{"with.targets[0].github.base: Forbidden: only for dispatch: pullRequest", "with.targets[0].github.path: Forbidden", "with.targets[0].github.content: Forbidden"}},
		{"github status without sha", `{"targets": [{"github": {"repository": "o/r", "tokenFrom": "T", "dispatch": "status"}}]}`,
			[]string{"with.targets[0].github.sha: Required value: the commit's SHA"}},
		{"github status bad sha", `{"targets": [{"github": {"repository": "o/r", "tokenFrom": "T", "dispatch": "status", "sha": "main"}}]}`,
			[]string{`with.targets[0].github.sha: Invalid value: "main": want a commit SHA: 40 or 64 hex digits`}},
		{"github status with dispatch fields", `{"targets": [{"github": {"repository": "o/r", "tokenFrom": "T", "dispatch": "status", "sha": "{{ .X }}", "eventType": "e", "ref": "main"}}]}`,
			[]string{"with.targets[0].github.eventType: Forbidden", "with.targets[0].github.ref: Forbidden"}},
		{"github status templates", `{"targets": [{"github": {"repository": "o/r", "tokenFrom": "T", "dispatch": "status", "sha": "{{ .X", "description": "{{ end }}"}}]}`,
			[]string{"with.targets[0].github.sha: Invalid value", "with.targets[0].github.description: Invalid value"}},
		{"github dispatch with status fields", `{"targets": [{"github": {"repository": "o/r", "tokenFrom": "T", "eventType": "e", "sha": "abc", "context": "c", "targetURL": "http://x/"}}]}`,
			[]string{"with.targets[0].github.sha: Forbidden: only for dispatch: status", "with.targets[0].github.context: Forbidden", "with.targets[0].github.targetURL: Forbidden"}},
		{"github repository with workflow fields", `{"targets": [{"github": {"repository": "o/r", "tokenFrom": "T", "eventType": "e", "workflow": "w.yaml", "ref": "main", "inputs": {}}}]}`,
			[]string{"with.targets[0].github.workflow: Forbidden", "with.targets[0].github.ref: Forbidden", "with.targets[0].github.inputs: Forbidden"}},
		{"github workflow", `{"targets": [{"github": {"repository": "o/r", "tokenFrom": "T", "dispatch": "workflow", "eventType": "e"}}]}`,
			[]string{"with.targets[0].github.workflow: Required value", "with.targets[0].github.ref: Required value", "with.targets[0].github.eventType: Forbidden"}},
		{"github workflow path", `{"targets": [{"github": {"repository": "o/r", "tokenFrom": "T", "dispatch": "workflow", "workflow": ".github/workflows/x.yaml", "ref": "main"}}]}`,
			[]string{"with.targets[0].github.workflow: Invalid value", "not a path"}},
		{"github inputs template", `{"targets": [{"github": {"repository": "o/r", "tokenFrom": "T", "dispatch": "workflow", "workflow": "x.yaml", "ref": "main", "inputs": {"a": "{{ .X"}}}]}`,
			[]string{"with.targets[0].github.inputs[a]: Invalid value"}},
		{"github input without a name", `{"targets": [{"github": {"repository": "o/r", "tokenFrom": "T", "dispatch": "workflow", "workflow": "x.yaml", "ref": "main", "inputs": {"": "x"}}}]}`,
			[]string{"with.targets[0].github.inputs", "an input needs a name"}},
		{"github apiURL", `{"targets": [{"github": {"repository": "o/r", "tokenFrom": "T", "eventType": "e", "apiURL": "ftp://x"}}]}`,
			[]string{"with.targets[0].github.apiURL: Invalid value"}},
		{"github long event type", `{"targets": [{"github": {"repository": "o/r", "tokenFrom": "T", "eventType": "` + strings.Repeat("e", 101) + `"}}]}`,
			[]string{"with.targets[0].github.eventType: Too long"}},

		{"cloudevent empty", `{"targets": [{"cloudevent": {}}]}`, []string{
			"with.targets[0].cloudevent.url: Required value",
			"with.targets[0].cloudevent.type: Required value",
			"with.targets[0].cloudevent.source: Required value",
		}},
		{"cloudevent subject", `{"targets": [{"cloudevent": {"url": "http://h/", "type": "t", "source": "/s", "subject": "{{ end }}"}}]}`,
			[]string{"with.targets[0].cloudevent.subject: Invalid value"}},
		{"cloudevent source", `{"targets": [{"cloudevent": {"url": "http://h/", "type": "t", "source": "%zz"}}]}`,
			[]string{`with.targets[0].cloudevent.source: Invalid value: "%zz": not a URI reference`}},

		{"every problem at once", `{"timeout": "x", "targets": [{}, {"slack": {}}, {"github": {"repository": "o/r", "tokenFrom": "T", "eventType": "e"}}, {"webhook": {"urlFrom": "Bearer x"}}]}`,
			[]string{"with.timeout", "with.targets[0]: Required", "with.targets[1].slack.urlFrom: Required", "with.targets[3].webhook.urlFrom: Invalid"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			task, errs := decode(t, tc.with)
			if task != nil || len(errs) == 0 {
				t.Fatalf("Decode(%s) succeeded, want errors %q", tc.with, tc.want)
			}
			got := describe(errs)
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("Decode(%s) errors:\n%s\nwant one containing %q", tc.with, got, w)
				}
			}
		})
	}
}

// TestDecodeSecretIsNotEchoed: a secret written where its name belongs is
// refused without being shown.
func TestDecodeSecretIsNotEchoed(t *testing.T) {
	for _, with := range []string{
		`{"targets": [{"slack": {"url": "https://hooks.slack.com/services/T/B/SECRETPART"}}]}`,
		`{"targets": [{"slack": {"urlFrom": "https://hooks.slack.com/services/T/B/SECRETPART"}}]}`,
		`{"targets": [{"github": {"repository": "o/r", "tokenFrom": "ghp_SECRETPART+/=", "eventType": "e"}}]}`,
	} {
		_, errs := decode(t, with)
		if got := describe(errs); len(errs) == 0 || strings.Contains(got, "SECRETPART") {
			t.Errorf("Decode(%s) errors %q, want one that does not show the secret", with, got)
		}
	}
}

func TestDecodeDefaults(t *testing.T) {
	task := mustDecode(t, `{"targets": [
		{"webhook": {"url": "https://example.com/hook"}},
		{"github": {"repository": "o/r", "tokenFrom": "GITHUB_TOKEN", "eventType": "iter8"}},
		{"github": {"repository": "o/r", "tokenFrom": "GITHUB_TOKEN", "dispatch": "workflow", "workflow": "deploy.yaml", "ref": "main", "apiURL": "https://ghe.example.com/api/v3/"}}
	]}`)
	if task.Timeout != DefaultTimeout || task.SoftFailure {
		t.Errorf("timeout, softFailure = %v, %v; want %v, false", task.Timeout, task.SoftFailure, DefaultTimeout)
	}
	wh := task.targets[0]
	if wh.method != http.MethodPost || wh.contentType != "application/json" || wh.payload != nil {
		t.Errorf("webhook defaults: method %q, contentType %q, payload %v; want POST, application/json, nil", wh.method, wh.contentType, wh.payload)
	}
	if got, want := task.targets[1].url.String(), "https://api.github.com/repos/o/r/dispatches"; got != want {
		t.Errorf("repository_dispatch URL = %s, want %s", got, want)
	}
	if got, want := task.targets[2].url.String(), "https://ghe.example.com/api/v3/repos/o/r/actions/workflows/deploy.yaml/dispatches"; got != want {
		t.Errorf("workflow_dispatch URL = %s, want %s", got, want)
	}
	if got := task.targets[1].secrets(); len(got) != 1 || got[0] != "GITHUB_TOKEN" {
		t.Errorf("secrets of a github target = %v, want [GITHUB_TOKEN]", got)
	}
	// Secret names follow Kubernetes's env names: '.' and '-' as in a
	// Secret's keys are taken.
	task = mustDecode(t, `{"timeout": "2s", "softFailure": true, "targets": [{"webhook": {"urlFrom": "HOOK", "headersFrom": {"Authorization": "auth.token"}, "query": {"k": "{{ secret \"query-key\" }}"}, "payloadTemplate": "{{ secret \"P\" }}{{ secret \"P\" }}"}}]}`)
	if task.Timeout != 2*time.Second || !task.SoftFailure {
		t.Errorf("timeout, softFailure = %v, %v; want 2s, true", task.Timeout, task.SoftFailure)
	}
	if got, want := strings.Join(task.targets[0].secrets(), ","), "HOOK,P,auth.token,query-key"; got != want {
		t.Errorf("secrets = %s, want %s", got, want)
	}
}

// TestDecodeTriesTemplates: a template that names an unknown field, or a
// version that no earlier task produces metrics for, fails before anything
// runs; errors that depend on the data are left to run time.
func TestDecodeTriesTemplates(t *testing.T) {
	spec := func(tmpl string) string {
		return `apiVersion: iter8.tools/v1
kind: Experiment
metadata: {name: t}
spec:
  versions: [v1, v2]
  tasks:
  - task: produce
    with:
      declare: {v1: [http/latency-p99]}
  - task: notify
    with:
      targets:
      - webhook:
          url: http://127.0.0.1:1/
          payloadTemplate: ` + jsonString(tmpl) + "\n"
	}
	for _, tc := range []struct{ tmpl, want string }{
		{`{{ .Experimnt }}`, `spec.tasks[1].with.targets[0].webhook.payloadTemplate: line 1:3: <.Experimnt>: can't evaluate field Experimnt`},
		{`{{ .Metrics.v2 }}`, `spec.tasks[1].with.targets[0].webhook.payloadTemplate: line 1:11: <.Metrics.v2>: map has no entry for key "v2"; earlier tasks produce metrics for "v1"`},
		{`{{ with .FailedTask }}{{ .Tsk }}{{ end }}`, `can't evaluate field Tsk`},
		{`{{ range .SLOs }}{{ .Verdict }}{{ end }}`, `can't evaluate field Verdict`},
		{`{{ header "x" }}`, `function "header" not defined`},
	} {
		_, err := decodeSpec(spec(tc.tmpl))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("template %s: decode error %v, want %q", tc.tmpl, err, tc.want)
		}
	}
	for _, ok := range []string{
		`{{ index .Metrics.v1 "http/latency-p99" }}`,
		`{{ .FailedTask.Task }}`, // nil when no task failed: a run-time error
		`{{ (index .SLOs 3).Metric }}`,
		`{{ toJson . }}`,
		`{"exp": {{ toJson .Experiment }}, "token": {{ toJson (secret "TOKEN") }}}`,
		`{{ range $v, $m := .Metrics }}{{ $v }}{{ end }}{{ with .FailedTask }}{{ .Index }} {{ .Task }} {{ .Error }}{{ end }}{{ .State }} {{ .SLOsSatisfied }} {{ .Winner }} {{ .Revision }} {{ .Versions }}`,
	} {
		if _, err := decodeSpec(spec(ok)); err != nil {
			t.Errorf("template %s: %v", ok, err)
		}
	}
}
