package notify

import (
	"cmp"
	"fmt"
	"maps"
	"net/http"
	"net/textproto"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	ce "github.com/cloudevents/sdk-go/v2/event"
	"golang.org/x/net/http/httpguts"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/iter8-tools/iter8/pkg/experiment"
)

// Name is the task's name in a spec.
const Name = "notify"

// Defaults of the task's inputs.
const (
	// DefaultTimeout bounds each request to a target.
	DefaultTimeout = 10 * time.Second
	// DefaultGitHubAPI is GitHub's REST API; GitHub Enterprise Server's is
	// https://HOST/api/v3.
	DefaultGitHubAPI = "https://api.github.com"
	// DefaultContentType is the webhook payload's type.
	DefaultContentType = "application/json"
)

// The kinds of target.
const (
	KindWebhook    = "webhook"
	KindSlack      = "slack"
	KindGitHub     = "github"
	KindCloudEvent = "cloudevent"
)

// The dispatch kinds of a github target.
const (
	DispatchRepository = "repository"
	DispatchWorkflow   = "workflow"
	// DispatchStatus posts a commit status with the verdict.
	DispatchStatus = "status"
	// DispatchPullRequest commits a file to a branch and opens a pull
	// request for it.
	DispatchPullRequest = "pullRequest"
)

// inputs is the `with` block as written.
type inputs struct {
	Targets []targetIn `json:"targets"`
	// SoftFailure logs failed notifications as a warning instead of failing
	// the task.
	SoftFailure bool   `json:"softFailure,omitempty"`
	Timeout     string `json:"timeout,omitempty"`
}

// targetIn holds exactly one kind of target.
type targetIn struct {
	Webhook    *webhookIn    `json:"webhook,omitempty"`
	Slack      *slackIn      `json:"slack,omitempty"`
	GitHub     *githubIn     `json:"github,omitempty"`
	CloudEvent *cloudEventIn `json:"cloudevent,omitempty"`
}

type webhookIn struct {
	URL             string            `json:"url,omitempty"`
	URLFrom         string            `json:"urlFrom,omitempty"`
	Method          string            `json:"method,omitempty"`
	Headers         map[string]string `json:"headers,omitempty"`
	HeadersFrom     map[string]string `json:"headersFrom,omitempty"`
	Query           map[string]string `json:"query,omitempty"`
	PayloadTemplate string            `json:"payloadTemplate,omitempty"`
	ContentType     string            `json:"contentType,omitempty"`
}

type slackIn struct {
	// URL is refused with a reason: a Slack webhook URL is a secret.
	URL     string `json:"url,omitempty"`
	URLFrom string `json:"urlFrom,omitempty"`
	Text    string `json:"text,omitempty"`
}

type githubIn struct {
	Repository string            `json:"repository,omitempty"`
	TokenFrom  string            `json:"tokenFrom,omitempty"`
	Dispatch   string            `json:"dispatch,omitempty"`
	EventType  string            `json:"eventType,omitempty"`
	Workflow   string            `json:"workflow,omitempty"`
	Ref        string            `json:"ref,omitempty"`
	Inputs     map[string]string `json:"inputs,omitempty"`
	APIURL     string            `json:"apiURL,omitempty"`
	// SHA, Context, Description and TargetURL (templates) describe a
	// commit status (dispatch: status).
	SHA         string `json:"sha,omitempty"`
	Context     string `json:"context,omitempty"`
	Description string `json:"description,omitempty"`
	TargetURL   string `json:"targetURL,omitempty"`
	// Base, Branch, Path, Content, Message, Title and Body describe a pull
	// request (dispatch: pullRequest); all but Base and Path are templates.
	Base    string `json:"base,omitempty"`
	Branch  string `json:"branch,omitempty"`
	Path    string `json:"path,omitempty"`
	Content string `json:"content,omitempty"`
	Message string `json:"message,omitempty"`
	Title   string `json:"title,omitempty"`
	Body    string `json:"body,omitempty"`
}

type cloudEventIn struct {
	URL     string `json:"url,omitempty"`
	URLFrom string `json:"urlFrom,omitempty"`
	Type    string `json:"type,omitempty"`
	Source  string `json:"source,omitempty"`
	Subject string `json:"subject,omitempty"`
}

// Task is the decoded notify task.
type Task struct {
	// SoftFailure: failed notifications are logged as a warning (and so kept
	// in the result's log tail) and the task succeeds.
	SoftFailure bool
	// Timeout bounds each request to a target (a pull request makes five).
	Timeout time.Duration
	// targets are notified at the same time; each failure is reported.
	targets []*target
}

// target is one validated destination; kind says which fields are set.
type target struct {
	kind string
	// url is where the request goes; nil when urlFrom names a secret that
	// holds it.
	url     *url.URL
	urlFrom string
	method  string
	// headers are templates; headersFrom maps a header to a secret's name.
	headers     map[string]*tmpl
	headersFrom map[string]string
	// query parameters (templates) are added to the URL's own.
	query map[string]*tmpl
	// payload of a webhook, or text of a Slack message; nil means the
	// default (the Summary as JSON, or defaultSlackText).
	payload     *tmpl
	contentType string
	github      *githubTarget
	cloudEvent  *cloudEventTarget
}

// githubTarget is what a github target adds; the repository and workflow
// are in its URL.
type githubTarget struct {
	tokenFrom string
	dispatch  string
	eventType string
	ref       string
	inputs    map[string]*tmpl
	// A commit status's fields (nil: the default), and its URL's base,
	// .../statuses, to which the rendered SHA is added.
	sha, statusContext, description, targetURL *tmpl
	// A pull request's base branch and file path, and its templates (nil:
	// the default); the target's URL is the repository's.
	base, path                            string
	branch, content, message, title, body *tmpl
}

// cloudEventTarget is what a cloudevent target adds.
type cloudEventTarget struct {
	eventType string
	source    string
	subject   *tmpl // nil: no subject
}

// secrets lists the names of the secrets the target uses, sorted.
func (t *target) secrets() []string {
	var out []string
	if t.urlFrom != "" {
		out = append(out, t.urlFrom)
	}
	if t.github != nil {
		out = append(out, t.github.tokenFrom)
	}
	out = append(out, slices.Collect(maps.Values(t.headersFrom))...)
	for _, x := range t.templates() {
		out = append(out, x.secrets...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// templates lists the target's templates.
func (t *target) templates() []*tmpl {
	var out []*tmpl
	ms := []map[string]*tmpl{t.headers, t.query}
	if t.github != nil {
		ms = append(ms, t.github.inputs)
	}
	for _, m := range ms {
		for _, k := range slices.Sorted(maps.Keys(m)) {
			out = append(out, m[k])
		}
	}
	if g := t.github; g != nil {
		for _, x := range []*tmpl{g.sha, g.statusContext, g.description, g.targetURL, g.branch, g.content, g.message, g.title, g.body} {
			if x != nil {
				out = append(out, x)
			}
		}
	}
	if t.payload != nil {
		out = append(out, t.payload)
	}
	if t.cloudEvent != nil && t.cloudEvent.subject != nil {
		out = append(out, t.cloudEvent.subject)
	}
	return out
}

// Decode validates the task's `with` block.
func Decode(d *experiment.Decoding) (experiment.Task, field.ErrorList) {
	var in inputs
	if errs := d.Into(&in); len(errs) > 0 {
		return nil, errs
	}
	var errs field.ErrorList
	t := &Task{SoftFailure: in.SoftFailure}
	var fe *field.Error
	if t.Timeout, fe = d.PositiveDuration(in.Timeout, DefaultTimeout, d.Path.Child("timeout")); fe != nil {
		errs = append(errs, fe)
	}
	tp := d.Path.Child("targets")
	if len(in.Targets) == 0 {
		errs = append(errs, field.Required(tp, "a list of targets, each one of webhook, slack, github, cloudevent"))
	}
	// Templates are tried on samples only when the metrics that earlier
	// tasks produce are known; otherwise a missing version proves nothing.
	var samples []*Summary
	if d.Metrics != nil && !d.Metrics.Incomplete() {
		versions := d.Versions
		if len(versions) == 0 {
			versions = []string{""}
		}
		samples = sampleSummaries(versions, d.Metrics)
	}
	for i, ti := range in.Targets {
		p := tp.Index(i)
		tg, terrs := decodeTarget(d, ti, p)
		errs = append(errs, terrs...)
		if tg == nil {
			continue
		}
		if samples != nil {
			// Every template that parsed is tried, even when the target has
			// other problems, so that all of them are reported at once.
			for _, x := range tg.templates() {
				if fe := x.dryRun(samples); fe != nil {
					errs = append(errs, fe)
				}
			}
		}
		t.targets = append(t.targets, tg)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return t, nil
}

func decodeTarget(d *experiment.Decoding, ti targetIn, p *field.Path) (*target, field.ErrorList) {
	var set []string
	for _, k := range []struct {
		name string
		on   bool
	}{{KindWebhook, ti.Webhook != nil}, {KindSlack, ti.Slack != nil}, {KindGitHub, ti.GitHub != nil}, {KindCloudEvent, ti.CloudEvent != nil}} {
		if k.on {
			set = append(set, k.name)
		}
	}
	switch {
	case len(set) == 0:
		return nil, field.ErrorList{field.Required(p, "one of webhook, slack, github, cloudevent")}
	case len(set) > 1:
		var errs field.ErrorList
		for _, k := range set[1:] {
			errs = append(errs, field.Forbidden(p.Child(k), fmt.Sprintf("a target is one of webhook, slack, github, cloudevent; this one is already %s", set[0])))
		}
		return nil, errs
	}
	switch {
	case ti.Webhook != nil:
		return decodeWebhook(d, ti.Webhook, p.Child(KindWebhook))
	case ti.Slack != nil:
		return decodeSlack(ti.Slack, p.Child(KindSlack))
	case ti.GitHub != nil:
		return decodeGitHub(d, ti.GitHub, p.Child(KindGitHub))
	default:
		return decodeCloudEvent(d, ti.CloudEvent, p.Child(KindCloudEvent))
	}
}

// decodeURL checks that exactly one of url and urlFrom is set.
func decodeURL(d *experiment.Decoding, raw, from string, p *field.Path, example string) (*url.URL, field.ErrorList) {
	switch {
	case raw != "" && from != "":
		return nil, field.ErrorList{field.Forbidden(p.Child("urlFrom"), "set url or urlFrom, not both")}
	case from != "":
		if fe := experiment.CheckSecretName(from, p.Child("urlFrom")); fe != nil {
			return nil, field.ErrorList{fe}
		}
		return nil, nil
	case raw == "":
		return nil, field.ErrorList{field.Required(p.Child("url"), "a URL such as "+example+", or urlFrom: the name of a secret that holds it")}
	}
	u, fe := d.URL(raw, p.Child("url"), example)
	if fe != nil {
		return nil, field.ErrorList{fe}
	}
	return u, nil
}

// templateMap parses a map of templates (headers, query, inputs), adding
// problems to errs; checkKey says what is wrong with a key, or "".
func templateMap(m map[string]string, p *field.Path, checkKey func(string) string, errs *field.ErrorList) map[string]*tmpl {
	out := map[string]*tmpl{}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		kp := p.Key(k)
		if why := checkKey(k); why != "" {
			*errs = append(*errs, field.Invalid(kp, field.OmitValueType{}, why))
		} else if x := parseTemplate(m[k], kp, errs); x != nil {
			out[k] = x
		}
	}
	return out
}

// named is a templateMap key check that refuses only an empty key, such as
// a query parameter's.
func named(what string) func(string) string {
	return func(k string) string {
		if k == "" {
			return what + " needs a name"
		}
		return ""
	}
}

func decodeWebhook(d *experiment.Decoding, in *webhookIn, p *field.Path) (*target, field.ErrorList) {
	t := &target{
		kind: KindWebhook, urlFrom: in.URLFrom, method: cmp.Or(strings.ToUpper(in.Method), http.MethodPost),
		contentType: cmp.Or(in.ContentType, DefaultContentType),
	}
	u, errs := decodeURL(d, in.URL, in.URLFrom, p, "https://example.com/hooks/iter8")
	t.url = u
	if !experiment.ValidMethod(t.method) {
		errs = append(errs, field.Invalid(p.Child("method"), in.Method, "not an HTTP method"))
	}
	if strings.ContainsAny(t.contentType, "\r\n") {
		errs = append(errs, field.Invalid(p.Child("contentType"), field.OmitValueType{}, "must not contain line breaks"))
	}
	seen := map[string]string{} // canonical header name → the field that sets it
	checkHeader := func(from string) func(string) string {
		return func(k string) string {
			c := textproto.CanonicalMIMEHeaderKey(k)
			switch {
			case !httpguts.ValidHeaderFieldName(k):
				return "not a header name"
			case c == "Content-Type":
				return "set it with contentType"
			case c == "Host":
				return "the host is the URL's"
			case seen[c] != "":
				return fmt.Sprintf("%s is set in %s too", c, seen[c])
			}
			seen[c] = from
			return ""
		}
	}
	t.headers = templateMap(in.Headers, p.Child("headers"), checkHeader("headers"), &errs)
	t.headersFrom = map[string]string{}
	fromCheck := checkHeader("headersFrom")
	for _, k := range slices.Sorted(maps.Keys(in.HeadersFrom)) {
		kp := p.Child("headersFrom").Key(k)
		if why := fromCheck(k); why != "" {
			errs = append(errs, field.Invalid(kp, field.OmitValueType{}, why))
		} else if fe := experiment.CheckSecretName(in.HeadersFrom[k], kp); fe != nil {
			errs = append(errs, fe)
		} else {
			t.headersFrom[k] = in.HeadersFrom[k]
		}
	}
	t.query = templateMap(in.Query, p.Child("query"), named("a query parameter"), &errs)
	if in.PayloadTemplate != "" {
		if t.method == http.MethodGet || t.method == http.MethodHead {
			errs = append(errs, field.Forbidden(p.Child("payloadTemplate"), t.method+" requests carry no payload"))
		}
		t.payload = parseTemplate(in.PayloadTemplate, p.Child("payloadTemplate"), &errs)
	}
	return t, errs
}

func decodeSlack(in *slackIn, p *field.Path) (*target, field.ErrorList) {
	var errs field.ErrorList
	t := &target{kind: KindSlack, urlFrom: in.URLFrom, method: http.MethodPost, contentType: "application/json"}
	switch {
	case in.URL != "":
		// The value is not shown: it is the secret.
		errs = append(errs, field.Forbidden(p.Child("url"),
			"a Slack webhook URL is a secret: keep it in one (an environment variable, or a Kubernetes Secret in a cluster) and name it in urlFrom"))
	case in.URLFrom == "":
		errs = append(errs, field.Required(p.Child("urlFrom"), "the name of the secret that holds the incoming-webhook URL, such as SLACK_WEBHOOK_URL"))
	default:
		if fe := experiment.CheckSecretName(in.URLFrom, p.Child("urlFrom")); fe != nil {
			errs = append(errs, fe)
		}
	}
	if in.Text != "" {
		t.payload = parseTemplate(in.Text, p.Child("text"), &errs)
	}
	return t, errs
}

var (
	// repository is owner/name as GitHub allows them.
	repository = regexp.MustCompile(`^[A-Za-z0-9-]+/[A-Za-z0-9._-]+$`)
	// workflowFile is a workflow's file name or numeric ID.
	workflowFile = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)
)

// maxEventType is the longest event_type GitHub takes.
const maxEventType = 100

func decodeGitHub(d *experiment.Decoding, in *githubIn, p *field.Path) (*target, field.ErrorList) {
	var errs field.ErrorList
	g := &githubTarget{
		tokenFrom: in.TokenFrom, dispatch: cmp.Or(in.Dispatch, DispatchRepository), eventType: in.EventType, ref: in.Ref,
	}
	t := &target{kind: KindGitHub, method: http.MethodPost, contentType: "application/json", github: g}
	switch {
	case in.Repository == "":
		errs = append(errs, field.Required(p.Child("repository"), "owner/name, such as iter8-tools/iter8"))
	case !repository.MatchString(in.Repository):
		errs = append(errs, field.Invalid(p.Child("repository"), in.Repository, "want owner/name, such as iter8-tools/iter8"))
	}
	if in.TokenFrom == "" {
		errs = append(errs, field.Required(p.Child("tokenFrom"), "the name of the secret that holds a GitHub token, such as GITHUB_TOKEN"))
	} else if fe := experiment.CheckSecretName(in.TokenFrom, p.Child("tokenFrom")); fe != nil {
		errs = append(errs, fe)
	}
	base, fe := d.URL(cmp.Or(in.APIURL, DefaultGitHubAPI), p.Child("apiURL"), DefaultGitHubAPI)
	if fe != nil {
		errs = append(errs, fe)
	} else if base.RawQuery != "" || base.Fragment != "" || base.User != nil {
		errs = append(errs, field.Invalid(p.Child("apiURL"), base.Redacted(), "want the API's base URL, without user, query or fragment"))
		base = nil
	}
	forbid := func(name string, set bool, dispatch string) {
		if set {
			errs = append(errs, field.Forbidden(p.Child(name), "only for dispatch: "+dispatch))
		}
	}
	switch g.dispatch {
	case DispatchRepository:
		switch {
		case in.EventType == "":
			errs = append(errs, field.Required(p.Child("eventType"), "the event type that the workflow's on.repository_dispatch.types lists"))
		case len(in.EventType) > maxEventType:
			errs = append(errs, field.TooLong(p.Child("eventType"), field.OmitValueType{}, maxEventType))
		}
		forbid("workflow", in.Workflow != "", DispatchWorkflow)
		forbid("ref", in.Ref != "", DispatchWorkflow)
		forbid("inputs", in.Inputs != nil, DispatchWorkflow)
		forbidStatus(in, forbid)
		forbidPullRequest(in, forbid)
		if base != nil && repository.MatchString(in.Repository) {
			t.url = base.JoinPath("repos", in.Repository, "dispatches")
		}
	case DispatchWorkflow:
		switch {
		case in.Workflow == "":
			errs = append(errs, field.Required(p.Child("workflow"), "the workflow's file name (such as deploy.yaml) or ID"))
		case !workflowFile.MatchString(in.Workflow):
			errs = append(errs, field.Invalid(p.Child("workflow"), in.Workflow, "the workflow's file name (such as deploy.yaml, not a path) or ID"))
		}
		if in.Ref == "" {
			errs = append(errs, field.Required(p.Child("ref"), "the branch or tag to run the workflow on, such as main"))
		}
		forbid("eventType", in.EventType != "", DispatchRepository)
		forbidStatus(in, forbid)
		forbidPullRequest(in, forbid)
		g.inputs = templateMap(in.Inputs, p.Child("inputs"), named("an input"), &errs)
		if base != nil && repository.MatchString(in.Repository) && workflowFile.MatchString(in.Workflow) {
			t.url = base.JoinPath("repos", in.Repository, "actions", "workflows", in.Workflow, "dispatches")
		}
	case DispatchStatus:
		// https://docs.github.com/en/rest/commits/statuses#create-a-commit-status
		forbid("eventType", in.EventType != "", DispatchRepository)
		forbid("workflow", in.Workflow != "", DispatchWorkflow)
		forbid("ref", in.Ref != "", DispatchWorkflow)
		forbid("inputs", in.Inputs != nil, DispatchWorkflow)
		forbidPullRequest(in, forbid)
		switch {
		case in.SHA == "":
			errs = append(errs, field.Required(p.Child("sha"), "the commit's SHA (40 or 64 hex digits), or a template that gives it"))
		case !strings.Contains(in.SHA, "{{") && !commitSHA.MatchString(in.SHA):
			errs = append(errs, field.Invalid(p.Child("sha"), in.SHA, "want a commit SHA: 40 or 64 hex digits"))
		default:
			g.sha = parseTemplate(in.SHA, p.Child("sha"), &errs)
		}
		if in.TargetURL != "" && !strings.Contains(in.TargetURL, "{{") {
			if u, err := url.Parse(in.TargetURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				errs = append(errs, field.Invalid(p.Child("targetURL"), in.TargetURL, "want an http:// or https:// URL"))
			}
		}
		for _, f := range []struct {
			name, text string
			into       **tmpl
		}{{"context", in.Context, &g.statusContext}, {"description", in.Description, &g.description}, {"targetURL", in.TargetURL, &g.targetURL}} {
			if f.text != "" {
				*f.into = parseTemplate(f.text, p.Child(f.name), &errs)
			}
		}
		if base != nil && repository.MatchString(in.Repository) {
			t.url = base.JoinPath("repos", in.Repository, "statuses")
		}
	case DispatchPullRequest:
		forbid("eventType", in.EventType != "", DispatchRepository)
		forbid("workflow", in.Workflow != "", DispatchWorkflow)
		forbid("ref", in.Ref != "", DispatchWorkflow)
		forbid("inputs", in.Inputs != nil, DispatchWorkflow)
		forbidStatus(in, forbid)
		errs = append(errs, decodePullRequest(in, g, p)...)
		if base != nil && repository.MatchString(in.Repository) {
			t.url = base.JoinPath("repos", in.Repository)
		}
	default:
		errs = append(errs, field.NotSupported(p.Child("dispatch"), in.Dispatch, []string{DispatchRepository, DispatchWorkflow, DispatchStatus, DispatchPullRequest}))
	}
	return t, errs
}

// forbidPullRequest refuses a pull request's fields on another dispatch.
func forbidPullRequest(in *githubIn, forbid func(name string, set bool, dispatch string)) {
	for _, f := range []struct {
		name string
		set  bool
	}{{"base", in.Base != ""}, {"branch", in.Branch != ""}, {"path", in.Path != ""}, {"content", in.Content != ""},
		{"message", in.Message != ""}, {"title", in.Title != ""}, {"body", in.Body != ""}} {
		forbid(f.name, f.set, DispatchPullRequest)
	}
}

// branchName is a branch name as git allows it, in the characters that
// need no escaping in a URL; checkBranch refuses the rest.
var branchName = regexp.MustCompile(`^[A-Za-z0-9._/-]+$`)

// checkBranch says why name is no branch name, or "".
func checkBranch(name string) string {
	if !branchName.MatchString(name) {
		return "want a branch name of letters, digits, '.', '_', '-' and '/'"
	}
	bad := strings.Contains(name, "..") || strings.HasPrefix(name, "-") || strings.HasSuffix(name, ".")
	for _, part := range strings.Split(name, "/") {
		bad = bad || part == "" || strings.HasPrefix(part, ".") || strings.HasSuffix(part, ".lock")
	}
	if bad {
		return "not a branch name git allows (no '..', empty parts, a part starting with '.' or ending in '.lock', a leading '-' or a trailing '.')"
	}
	return ""
}

// checkRepoPath says why path is no file path in a repository, or "".
func checkRepoPath(path string) string {
	// '%' too: the path goes into the URL as it is.
	if path == "" || strings.HasPrefix(path, "/") || strings.HasSuffix(path, "/") || strings.ContainsAny(path, "\\\x00?#%") {
		return "want a file's path in the repository, such as charts/app/values.yaml (no leading or trailing '/')"
	}
	for _, seg := range strings.Split(path, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return "want a file's path in the repository without '.', '..' or empty segments"
		}
	}
	return ""
}

// decodePullRequest checks a pull request's fields into g.
func decodePullRequest(in *githubIn, g *githubTarget, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch why := checkBranch(in.Base); {
	case in.Base == "":
		errs = append(errs, field.Required(p.Child("base"), "the branch to merge into, such as main"))
	case why != "":
		errs = append(errs, field.Invalid(p.Child("base"), in.Base, why))
	}
	switch why := checkRepoPath(in.Path); {
	case in.Path == "":
		errs = append(errs, field.Required(p.Child("path"), "the file to commit, such as charts/app/values.yaml"))
	case why != "":
		errs = append(errs, field.Invalid(p.Child("path"), in.Path, why))
	}
	if in.Content == "" {
		errs = append(errs, field.Required(p.Child("content"), "the file's new content, a template over the summary"))
	}
	if in.Branch != "" && !strings.Contains(in.Branch, "{{") {
		if why := checkBranch(in.Branch); why != "" {
			errs = append(errs, field.Invalid(p.Child("branch"), in.Branch, why))
		} else if in.Branch == in.Base {
			errs = append(errs, field.Invalid(p.Child("branch"), in.Branch, "the pull request's own branch, not base: the file would be committed to base unreviewed"))
		}
	}
	g.base, g.path = in.Base, in.Path
	for _, f := range []struct {
		name, text string
		into       **tmpl
	}{{"branch", in.Branch, &g.branch}, {"content", in.Content, &g.content}, {"message", in.Message, &g.message},
		{"title", in.Title, &g.title}, {"body", in.Body, &g.body}} {
		if f.text != "" {
			*f.into = parseTemplate(f.text, p.Child(f.name), &errs)
		}
	}
	return errs
}

// commitSHA is a commit's SHA-1 or SHA-256 name in hex.
var commitSHA = regexp.MustCompile(`^([0-9a-f]{40}|[0-9a-f]{64})$`)

// forbidStatus refuses a commit status's fields on a dispatch.
func forbidStatus(in *githubIn, forbid func(name string, set bool, dispatch string)) {
	forbid("sha", in.SHA != "", DispatchStatus)
	forbid("context", in.Context != "", DispatchStatus)
	forbid("description", in.Description != "", DispatchStatus)
	forbid("targetURL", in.TargetURL != "", DispatchStatus)
}

func decodeCloudEvent(d *experiment.Decoding, in *cloudEventIn, p *field.Path) (*target, field.ErrorList) {
	c := &cloudEventTarget{eventType: in.Type, source: in.Source}
	t := &target{kind: KindCloudEvent, urlFrom: in.URLFrom, method: http.MethodPost, contentType: "application/json", cloudEvent: c}
	u, errs := decodeURL(d, in.URL, in.URLFrom, p, "https://broker.example.com/")
	t.url = u
	if in.Type == "" {
		errs = append(errs, field.Required(p.Child("type"), "the event's type, such as tools.iter8.experiment.completed"))
	}
	_, sourceErr := url.Parse(in.Source)
	switch {
	case in.Source == "":
		errs = append(errs, field.Required(p.Child("source"), "the event's source (a URI reference), such as /iter8/experiments/checkout"))
	case sourceErr != nil:
		errs = append(errs, field.Invalid(p.Child("source"), in.Source, "not a URI reference such as /iter8/experiments/checkout"))
	}
	if in.Subject != "" {
		c.subject = parseTemplate(in.Subject, p.Child("subject"), &errs)
	}
	if in.Type != "" && in.Source != "" && sourceErr == nil {
		// Let the SDK check the attributes as it will when sending.
		e := ce.New()
		e.SetID("sample")
		e.SetType(in.Type)
		e.SetSource(in.Source)
		if err := e.Validate(); err != nil {
			errs = append(errs, field.Invalid(p, field.OmitValueType{}, "not a valid CloudEvent: "+err.Error()))
		}
	}
	return t, errs
}
