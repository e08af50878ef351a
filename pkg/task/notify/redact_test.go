package notify

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// leaks lists the forms of each secret that must not appear in out.
func leaks(out string, secrets ...string) []string {
	var found []string
	for _, s := range secrets {
		for _, f := range []string{s, url.QueryEscape(s), url.PathEscape(s), strconv.Quote(s), html.EscapeString(s)} {
			if strings.Contains(out, f) {
				found = append(found, f)
			}
		}
	}
	return found
}

// TestFailuresAreRedacted runs failing targets of every kind through the
// real runner and looks for the secrets, in several encodings, in the error,
// the log and the stored result. The servers echo what they received, as
// real services do in their error pages.
func TestFailuresAreRedacted(t *testing.T) {
	const (
		slackPath  = "/services/T0SECRET/B0SECRET/abcdefghijklmnopqrstuvwx"
		hookToken  = "hook token/with+special&chars=1"
		ghToken    = "ghp_0123456789abcdefSECRET"
		headerKey  = "header-key-SECRET"
		brokerPath = "/broker/secret-broker-path"
	)
	echo := func(r *http.Request) string {
		// The URL as sent, the Authorization header, and the JSON-escaped URL.
		u := r.URL.String()
		return fmt.Sprintf("bad request to %s (raw %q) auth=%s json={\"url\":%s}", u, r.URL.RawQuery, r.Header.Get("Authorization"), strings.ReplaceAll(jsonString(u), "/", `\/`))
	}
	failing := newRecorder(t, http.StatusInternalServerError, echo)
	unauthorized := newRecorder(t, http.StatusUnauthorized, echo)
	refused := refusedURL(t)
	hanging := hangingURL(t)

	secrets := map[string]string{
		"SLACK_WEBHOOK_URL": failing.URL + slackPath,
		"HOOK_URL":          refused + "/hook?token=" + url.QueryEscape(hookToken),
		"HOOK_KEY":          headerKey,
		"GITHUB_TOKEN":      ghToken,
		"BROKER_URL":        hanging + brokerPath,
	}
	spec := `apiVersion: iter8.tools/v1
kind: Experiment
metadata: {name: leak}
spec:
  tasks:
  - task: notify
    with:
      timeout: 300ms
      targets:
      - slack: {urlFrom: SLACK_WEBHOOK_URL}
      - webhook:
          urlFrom: HOOK_URL
          headers: {X-Key: '{{ secret "HOOK_KEY" }}'}
          query: {again: '{{ secret "HOOK_KEY" }}'}
      - github: {repository: o/r, tokenFrom: GITHUB_TOKEN, eventType: e, apiURL: '` + unauthorized.URL + `'}
      - webhook:
          url: ` + failing.URL + `/plain
          headersFrom: {Authorization: GITHUB_TOKEN}
          query: {k: '{{ secret "HOOK_KEY" }}'}
      - cloudevent: {urlFrom: BROKER_URL, type: t, source: /s}
`
	r := runSpec(t, spec, secrets)
	if r.err == nil {
		t.Fatal("run succeeded, want the notify task to fail")
	}
	msg := r.result.Tasks[0].Error
	for _, want := range []string{
		"5 of 5 targets failed: ",
		"target 0 (slack): POST REDACTED: status 500: bad request to REDACTED",
		"target 1 (webhook): POST REDACTED: dial tcp " + strings.TrimPrefix(refused, "http://") + ": connect: connection refused",
		"target 2 (github): POST " + unauthorized.URL + "/repos/o/r/dispatches: status 401: bad request to /repos/o/r/dispatches (raw \"\") auth=Bearer REDACTED",
		"target 3 (webhook): POST " + failing.URL + "/plain: status 500: bad request to /plain?k=REDACTED",
		"target 4 (cloudevent): POST REDACTED: no response within 300ms (timeout)",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("task error:\n%s\nwant it to contain\n%s", msg, want)
		}
	}
	all := []string{slackPath, "T0SECRET", "abcdefghijklmnopqrstuvwx", hookToken, ghToken, headerKey, brokerPath, "secret-broker-path"}
	for _, s := range secrets {
		all = append(all, s)
	}
	for what, out := range map[string]string{"run error": r.err.Error(), "log": r.log, "stored result": r.json} {
		if found := leaks(out, all...); len(found) > 0 {
			t.Errorf("the %s holds secrets %q:\n%s", what, found, out)
		}
	}
	if !strings.Contains(r.json, `"error":"5 of 5 targets failed: target 0 (slack): POST REDACTED`) {
		t.Errorf("stored result = %s, want the task's error in it", r.json)
	}
}

func TestSoftFailure(t *testing.T) {
	failing := newRecorder(t, http.StatusInternalServerError, func(r *http.Request) string { return "no_service for " + r.URL.Path })
	spec := `apiVersion: iter8.tools/v1
kind: Experiment
metadata: {name: soft}
spec:
  tasks:
  - task: notify
    with:
      softFailure: true
      targets:
      - slack: {urlFrom: SLACK_WEBHOOK_URL}
`
	secret := failing.URL + "/services/T/B/softsecretsoftsecret"
	r := runSpec(t, spec, map[string]string{"SLACK_WEBHOOK_URL": secret})
	if r.err != nil {
		t.Fatalf("run: %v; with softFailure a failed notification does not fail the task", r.err)
	}
	if tr := r.result.Tasks[0]; tr.State != "succeeded" || tr.Error != "" {
		t.Errorf("task result = %+v, want succeeded", tr)
	}
	const warning = `level=WARN msg="notification failed; the task succeeds because softFailure is set" error="target 0 (slack): POST REDACTED: status 500: no_service for REDACTED"`
	if !strings.Contains(r.log, warning) {
		t.Errorf("log:\n%s\nwant the warning\n%s", r.log, warning)
	}
	if !strings.Contains(r.json, "notification failed") {
		t.Errorf("stored result = %s, want the warning in its log tail", r.json)
	}
	for what, out := range map[string]string{"log": r.log, "stored result": r.json} {
		if found := leaks(out, secret, "/services/T/B/softsecretsoftsecret", "softsecretsoftsecret"); len(found) > 0 {
			t.Errorf("the %s holds secrets %q", what, found)
		}
	}
}

func TestMissingSecret(t *testing.T) {
	task := mustDecode(t, `{"targets": [{"github": {"repository": "o/r", "tokenFrom": "GITHUB_TOKEN", "eventType": "e"}}]}`)
	err := task.Run(context.Background(), env(sampleResult(), nil, nil))
	want := "target 0 (github): secret GITHUB_TOKEN is not set (locally an environment variable; in a cluster an env entry of the Job, from a Secret)"
	if err == nil || err.Error() != want {
		t.Errorf("Run = %v, want %s", err, want)
	}
}
