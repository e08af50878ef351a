package notify

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	ce "github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/redact"
)

// maxBodyRead is how much of a response body is read for an error message.
const maxBodyRead = 4 << 10

// userAgent identifies the task to the services it calls (GitHub requires
// one).
const userAgent = "iter8-notify"

// Run notifies every target at the same time. A target that fails (a
// missing secret, a template error, no response within Timeout, a status
// other than 2xx) does not stop the others; the error lists each failure as
// "target <i> (<kind>): ...", with every secret redacted. With SoftFailure
// the failures are logged as a warning and Run returns nil, unless ctx was
// cancelled.
func (t *Task) Run(ctx context.Context, env *experiment.Env) error {
	log := env.Logger()
	red := &redact.Redactor{}
	secrets, missing := t.lookupSecrets(env.Secret, red)
	s := &sender{
		client:  redact.Client(t.Timeout),
		task:    t,
		summary: NewSummary(env.Result),
		secrets: secrets,
		missing: missing,
		red:     red,
		log:     log,
		now:     env.Time,
	}
	defer s.client.CloseIdleConnections()

	errs := make([]error, len(t.targets))
	var wg sync.WaitGroup
	for i, tg := range t.targets {
		wg.Go(func() {
			if err := s.notify(ctx, i, tg); err != nil {
				errs[i] = red.Error(fmt.Errorf("target %d (%s): %w", i, tg.kind, err))
			}
		})
	}
	wg.Wait()

	var msgs []string
	for _, err := range errs {
		if err != nil {
			msgs = append(msgs, err.Error())
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	msg := msgs[0]
	if len(msgs) > 1 {
		msg = fmt.Sprintf("%d of %d targets failed: %s", len(msgs), len(t.targets), strings.Join(msgs, "; "))
	}
	if t.SoftFailure && ctx.Err() == nil {
		log.Warn("notification failed; the task succeeds because softFailure is set", "error", red.String(msg))
		return nil
	}
	return errors.New(msg)
}

// lookupSecrets looks up every secret the targets name, registers each value
// with red, and says why each missing one is missing.
func (t *Task) lookupSecrets(lookup func(string) (string, bool), red *redact.Redactor) (found map[string]string, missing map[string]error) {
	found, missing = map[string]string{}, map[string]error{}
	names := map[string]bool{}
	for _, tg := range t.targets {
		for _, n := range tg.secrets() {
			names[n] = true
		}
	}
	for n := range names {
		v, err := experiment.LookupSecret(lookup, n)
		if err != nil {
			missing[n] = err
			continue
		}
		found[n] = v
		red.Add(v)
	}
	return found, missing
}

// sender holds what every target's request needs.
type sender struct {
	client  *http.Client
	task    *Task
	summary *Summary
	secrets map[string]string
	missing map[string]error
	red     *redact.Redactor
	log     *slog.Logger
	now     func() time.Time
}

// secret returns a secret's value; every name was looked up before.
func (s *sender) secret(name string) (string, error) {
	if v, ok := s.secrets[name]; ok {
		return v, nil
	}
	return "", fmt.Errorf("secret %s is not set", name)
}

// notify sends one target's request. Its error may hold secrets: the caller
// redacts it.
func (s *sender) notify(ctx context.Context, i int, tg *target) error {
	for _, n := range tg.secrets() {
		if err, ok := s.missing[n]; ok {
			return err
		}
	}
	if tg.github != nil && tg.github.dispatch == DispatchPullRequest {
		return s.pullRequest(ctx, i, tg)
	}
	req, display, err := s.request(ctx, tg)
	if err != nil {
		return err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		if err = redact.WithoutURL(err); os.IsTimeout(err) && ctx.Err() == nil {
			return fmt.Errorf("%s %s: no response within %v (timeout)", req.Method, display, s.task.Timeout)
		}
		return fmt.Errorf("%s %s: %w", req.Method, display, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxBodyRead))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // so the connection can be reused
	if resp.StatusCode/100 != 2 {
		hint := ""
		if resp.StatusCode/100 == 3 {
			hint = " (redirects are not followed: give the final URL)"
		}
		return fmt.Errorf("%s %s: status %d%s: %s", req.Method, display, resp.StatusCode, hint, s.red.Excerpt(body))
	}
	s.log.Info("notified", "target", i, "kind", tg.kind, "endpoint", s.red.String(display), "status", resp.StatusCode)
	return nil
}

// request builds a target's request; display names its URL in messages
// (REDACTED when the URL is a secret).
func (s *sender) request(ctx context.Context, tg *target) (req *http.Request, display string, err error) {
	u, display, err := s.endpoint(tg)
	if err != nil {
		return nil, "", err
	}
	var body []byte
	var event *ce.Event
	header := http.Header{"User-Agent": {userAgent}}
	switch tg.kind {
	case KindWebhook:
		u, body, err = s.webhook(tg, u, header)
	case KindSlack:
		body, err = s.slack(tg)
	case KindGitHub:
		u, body, err = s.github(tg, u, header)
		if err == nil && tg.urlFrom == "" {
			display = displayURL(u) // with a status's SHA
		}
	case KindCloudEvent:
		event, err = s.cloudEvent(tg)
	}
	if err != nil {
		return nil, "", err
	}
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
		header.Set("Content-Type", tg.contentType)
	}
	req, err = http.NewRequestWithContext(ctx, tg.method, u.String(), r)
	if err != nil {
		return nil, "", fmt.Errorf("%s %s: %w", tg.method, display, err)
	}
	maps.Copy(req.Header, header)
	if event != nil {
		if err := cehttp.WriteRequest(binding.WithForceBinary(ctx), binding.ToMessage(event), req); err != nil {
			return nil, "", fmt.Errorf("CloudEvent: %w", err)
		}
	}
	return req, display, nil
}

// endpoint returns the target's URL, from its secret when urlFrom is set.
func (s *sender) endpoint(tg *target) (*url.URL, string, error) {
	if tg.urlFrom == "" {
		return tg.url, displayURL(tg.url), nil
	}
	raw := s.secrets[tg.urlFrom]
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// Neither the value nor the parser's error (which quotes it) is shown.
		return nil, "", fmt.Errorf("secret %s does not hold an http:// or https:// URL", tg.urlFrom)
	}
	return u, redact.Redacted, nil
}

// displayURL shows a URL from the spec without user, query or fragment.
func displayURL(u *url.URL) string {
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}).String()
}

func (s *sender) webhook(tg *target, u *url.URL, header http.Header) (*url.URL, []byte, error) {
	if len(tg.query) > 0 {
		q := u.Query()
		for _, k := range slices.Sorted(maps.Keys(tg.query)) {
			v, err := tg.query[k].render(s.summary, s.secret)
			if err != nil {
				return nil, nil, err
			}
			q.Set(k, v)
		}
		withQuery := *u
		withQuery.RawQuery = q.Encode()
		u = &withQuery
	}
	for _, k := range slices.Sorted(maps.Keys(tg.headers)) {
		v, err := tg.headers[k].render(s.summary, s.secret)
		if err != nil {
			return nil, nil, err
		}
		if strings.ContainsAny(v, "\r\n") {
			return nil, nil, fmt.Errorf("header %s: the value has a line break", k)
		}
		header.Set(k, v)
	}
	for _, k := range slices.Sorted(maps.Keys(tg.headersFrom)) {
		v := s.secrets[tg.headersFrom[k]]
		if strings.ContainsAny(v, "\r\n") {
			return nil, nil, fmt.Errorf("header %s: secret %s has a line break", k, tg.headersFrom[k])
		}
		header.Set(k, v)
	}
	if tg.method == http.MethodGet || tg.method == http.MethodHead {
		return u, nil, nil
	}
	if tg.payload == nil {
		body, err := json.Marshal(s.summary)
		return u, body, err
	}
	payload, err := tg.payload.render(s.summary, s.secret)
	return u, []byte(payload), err
}

func (s *sender) slack(tg *target) ([]byte, error) {
	text := defaultSlackText(s.summary)
	if tg.payload != nil {
		var err error
		if text, err = tg.payload.render(s.summary, s.secret); err != nil {
			return nil, err
		}
	}
	return json.Marshal(struct {
		Text string `json:"text"`
	}{text})
}

func (s *sender) github(tg *target, u *url.URL, header http.Header) (*url.URL, []byte, error) {
	g := tg.github
	// GitHub's REST API headers; see
	// https://docs.github.com/en/rest/repos/repos#create-a-repository-dispatch-event.
	header.Set("Accept", "application/vnd.github+json")
	header.Set("X-GitHub-Api-Version", "2022-11-28")
	header.Set("Authorization", "Bearer "+s.secrets[g.tokenFrom])
	switch g.dispatch {
	case DispatchRepository:
		body, err := json.Marshal(struct {
			EventType     string   `json:"event_type"`
			ClientPayload *Summary `json:"client_payload"`
		}{g.eventType, s.summary})
		return u, body, err
	case DispatchStatus:
		return s.commitStatus(g, u)
	}
	inputs := map[string]string{}
	for _, k := range slices.Sorted(maps.Keys(g.inputs)) {
		v, err := g.inputs[k].render(s.summary, s.secret)
		if err != nil {
			return nil, nil, err
		}
		inputs[k] = v
	}
	body, err := json.Marshal(struct {
		Ref    string            `json:"ref"`
		Inputs map[string]string `json:"inputs,omitempty"`
	}{g.ref, inputs})
	return u, body, err
}

// maxStatusDescription is the longest description GitHub keeps.
const maxStatusDescription = 140

// commitStatus is the request of a commit status with the verdict: error
// when a task failed, failure when an SLO is not met, else success.
func (s *sender) commitStatus(g *githubTarget, u *url.URL) (*url.URL, []byte, error) {
	sha, err := g.sha.render(s.summary, s.secret)
	if err != nil {
		return nil, nil, err
	}
	if sha = strings.TrimSpace(sha); !commitSHA.MatchString(sha) {
		return nil, nil, fmt.Errorf("%s: %q is not a commit SHA (40 or 64 hex digits)", g.sha.name, sha)
	}
	state, description := statusVerdict(s.summary)
	statusContext := "iter8/" + s.summary.Experiment
	for _, f := range []struct {
		t    *tmpl
		into *string
	}{{g.statusContext, &statusContext}, {g.description, &description}} {
		if f.t == nil {
			continue
		}
		v, err := f.t.render(s.summary, s.secret)
		if err != nil {
			return nil, nil, err
		}
		if v != "" { // empty: the default
			*f.into = v
		}
	}
	var targetURL string
	if g.targetURL != nil {
		if targetURL, err = g.targetURL.render(s.summary, s.secret); err != nil {
			return nil, nil, err
		}
		if t, err := url.Parse(targetURL); err != nil || (t.Scheme != "http" && t.Scheme != "https") || t.Host == "" {
			return nil, nil, fmt.Errorf("%s: %q is not an http:// or https:// URL", g.targetURL.name, targetURL)
		}
	}
	if r := []rune(description); len(r) > maxStatusDescription {
		description = string(r[:maxStatusDescription-1]) + "…"
	}
	body, err := json.Marshal(struct {
		State       string `json:"state"`
		TargetURL   string `json:"target_url,omitempty"`
		Description string `json:"description,omitempty"`
		Context     string `json:"context"`
	}{state, targetURL, description, statusContext})
	return u.JoinPath(sha), body, err
}

// statusVerdict is a commit status's state and default description.
func statusVerdict(s *Summary) (state, description string) {
	switch {
	case s.FailedTask != nil:
		return "error", fmt.Sprintf("iter8: task %d (%s) failed", s.FailedTask.Index, s.FailedTask.Task)
	case !s.SLOsSatisfied:
		var unmet []string
		for _, v := range s.SLOs {
			if !v.Satisfied {
				unmet = append(unmet, strings.TrimSpace(v.Version+" "+v.Metric))
			}
		}
		return "failure", "iter8: SLOs not met: " + strings.Join(unmet, ", ")
	}
	if len(s.SLOs) == 0 {
		return "success", "iter8: completed, no SLOs"
	}
	return "success", fmt.Sprintf("iter8: %d SLOs met", len(s.SLOs))
}

// cloudEvent builds a CloudEvent with the Summary as its JSON data. request
// writes it in binary mode (the attributes in ce-* headers), so that a
// receiver that does not speak CloudEvents still reads a plain JSON payload.
func (s *sender) cloudEvent(tg *target) (*ce.Event, error) {
	c := tg.cloudEvent
	e := ce.New()
	e.SetID(rand.Text())
	e.SetType(c.eventType)
	e.SetSource(c.source)
	e.SetTime(s.now())
	if c.subject != nil {
		subject, err := c.subject.render(s.summary, s.secret)
		if err != nil {
			return nil, err
		}
		e.SetSubject(subject)
	}
	data, err := json.Marshal(s.summary)
	if err != nil {
		return nil, err
	}
	if err := e.SetData(ce.ApplicationJSON, data); err != nil {
		return nil, fmt.Errorf("CloudEvent data: %w", err)
	}
	if err := e.Validate(); err != nil {
		return nil, fmt.Errorf("CloudEvent: %w", err)
	}
	return &e, nil
}
