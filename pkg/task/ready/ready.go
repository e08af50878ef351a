package ready

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/redact"
)

// Name is the task's name in a spec.
const Name = "ready"

// Defaults of the task's inputs.
const (
	DefaultTimeout  = 60 * time.Second
	DefaultInterval = time.Second
)

// unreachableFor is how long the task waits for an API server that it
// cannot connect to and that has not answered one check: long enough for a
// Pod's network (a service mesh's proxy) to come up, short enough that a
// kubeconfig naming no live cluster fails at once rather than at the
// timeout. Once the API server has answered, a lost connection is waited
// out as any other transient error.
const unreachableFor = 2 * time.Second

type inputs struct {
	URL    string `json:"url,omitempty"`
	Method string `json:"method,omitempty"`
	Status []int  `json:"status,omitempty"`
	// Objects are decoded one by one, so that errors name their index.
	Objects  []json.RawMessage `json:"objects,omitempty"`
	Timeout  string            `json:"timeout,omitempty"`
	Interval string            `json:"interval,omitempty"`
}

// Task waits for a URL, for Kubernetes objects, or for both.
type Task struct {
	// URL is checked with Method until it answers with one of Status; nil
	// when the task waits for objects only.
	URL    *url.URL
	Method string
	// Status lists the accepted status codes; empty accepts any 2xx.
	Status []int
	// Objects must each exist with their conditions holding.
	Objects []Object
	// Timeout bounds the whole wait; Interval is the time between checks.
	Timeout  time.Duration
	Interval time.Duration
	// Client sends the checks; nil means a client without keep-alive, so
	// that each check opens a new connection as a new client would.
	Client *http.Client
}

// Decode validates the task's `with` block.
func Decode(d *experiment.Decoding) (experiment.Task, field.ErrorList) {
	var in inputs
	if errs := d.Into(&in); len(errs) > 0 {
		return nil, errs
	}
	var errs field.ErrorList
	t := &Task{Method: cmp.Or(strings.ToUpper(in.Method), http.MethodGet), Status: in.Status}
	var fe *field.Error
	switch {
	case in.URL != "":
		if !experiment.ValidMethod(t.Method) {
			errs = append(errs, field.Invalid(d.Path.Child("method"), in.Method, "not an HTTP method"))
		}
		if t.URL, fe = d.URL(in.URL, d.Path.Child("url"), "http://127.0.0.1:8080/healthz"); fe != nil {
			errs = append(errs, fe)
		}
	case len(in.Objects) == 0:
		errs = append(errs, field.Required(d.Path.Child("url"),
			"a URL such as http://127.0.0.1:8080/healthz, or objects to wait for (or both)"))
	default: // objects only: method and status would be ignored
		if in.Method != "" {
			errs = append(errs, field.Forbidden(d.Path.Child("method"), "only with a url"))
		}
		if len(in.Status) > 0 {
			errs = append(errs, field.Forbidden(d.Path.Child("status"), "only with a url"))
		}
	}
	for i, s := range in.Status {
		if s < 100 || s > 599 {
			errs = append(errs, field.Invalid(d.Path.Child("status").Index(i), s, "status codes run from 100 to 599"))
		}
	}
	var oerrs field.ErrorList
	t.Objects, oerrs = decodeObjects(in.Objects, d.Path.Child("objects"))
	errs = append(errs, oerrs...)
	if t.Timeout, fe = d.PositiveDuration(in.Timeout, DefaultTimeout, d.Path.Child("timeout")); fe != nil {
		errs = append(errs, fe)
	}
	if t.Interval, fe = d.PositiveDuration(in.Interval, DefaultInterval, d.Path.Child("interval")); fe != nil {
		errs = append(errs, fe)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return t, nil
}

// Run checks the URL and the objects every Interval until all are ready or
// Timeout passes; the error names each target that is not ready and what its
// last check saw. An object that the client may not read (forbidden) fails
// the task at once: waiting would not change that.
func (t *Task) Run(ctx context.Context, env *experiment.Env) error {
	w, err := t.newWait(env)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, t.Timeout)
	defer cancel()
	tick := time.NewTicker(t.Interval)
	defer tick.Stop()
	for attempt := 1; ; attempt++ {
		if ready, err := w.check(ctx); err != nil || ready {
			if ready {
				t.logReady(env, w.ns, attempt)
			}
			return err
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("not ready after %v (%d checks): %s", t.Timeout, attempt, w.waiting())
			}
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// wait is one run of the task: what it checks with, and what each target
// lacked at its last check, for the error.
type wait struct {
	*Task
	client   *http.Client
	kube     experiment.ObjectReader
	ns       string // of objects that name none
	start    time.Time
	answered bool // the API server has answered a check
	urlLast  string
	// objLast is each object's last answer; objNow its latest check's,
	// transient or not.
	objLast, objNow []state
}

// newWait starts a run; objects need a Kubernetes connection and the
// namespace of objects that name none.
func (t *Task) newWait(env *experiment.Env) (*wait, error) {
	w := &wait{Task: t, client: t.Client, start: time.Now(),
		objLast: make([]state, len(t.Objects)), objNow: make([]state, len(t.Objects))}
	if w.client == nil {
		w.client = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	}
	for i := range w.objLast {
		w.objLast[i].transient = true // nothing known yet
	}
	if len(t.Objects) == 0 {
		return w, nil
	}
	what := t.ids("")
	if env.Kube == nil {
		return nil, fmt.Errorf("wait for %s: no Kubernetes cluster connection: objects can only be waited for in a cluster or with a kubeconfig", what)
	}
	var err error
	w.kube, w.ns, err = env.Kube()
	switch {
	case err != nil:
		return nil, fmt.Errorf("wait for %s: %w", what, err)
	case w.kube == nil:
		return nil, fmt.Errorf("wait for %s: no Kubernetes cluster connection", what)
	}
	for _, o := range t.Objects {
		if o.Namespace == "" && w.ns == "" {
			return nil, fmt.Errorf("wait for %s: the Kubernetes connection has no default namespace: set its namespace", o.ID(""))
		}
	}
	return w, nil
}

// check checks every target once and says whether all are ready; the error
// is for failures that waiting cannot mend.
func (w *wait) check(ctx context.Context) (bool, error) {
	ready := true
	if w.URL != nil {
		if err := w.checkURL(ctx, w.client); err != nil {
			ready = false
			// A check cut short by the deadline says less than the one
			// before it.
			if w.urlLast == "" || ctx.Err() == nil {
				w.urlLast = err.Error()
			}
		} else {
			w.urlLast = ""
		}
	}
	for i, o := range w.Objects {
		st, err := o.check(ctx, w.kube, w.ns)
		if err != nil {
			return false, err
		}
		ready = ready && st.lack == ""
		w.answered = w.answered || st.answered
		if st.unreachable && !w.answered && time.Since(w.start) >= unreachableFor {
			return false, fmt.Errorf("wait for %s: %s (no answer in %v)", o.ID(w.ns), st.lack, time.Since(w.start).Round(time.Second))
		}
		w.objNow[i] = st
		// An error on the way (the deadline, the client's rate limit, a
		// busy API server) says less than the last answer about the
		// object, whether it was ready or not.
		if !st.transient || w.objLast[i].transient {
			w.objLast[i] = st
		}
	}
	return ready, nil
}

// waiting names each target that is not ready and what it lacks.
func (w *wait) waiting() string {
	var out []string
	if w.urlLast != "" {
		out = append(out, w.URL.Redacted()+": "+w.urlLast)
	}
	lacking := func(states []state) {
		for i, o := range w.Objects {
			if states[i].lack != "" {
				out = append(out, o.ID(w.ns)+": "+states[i].lack)
			}
		}
	}
	lacking(w.objLast)
	if len(out) == 0 {
		// Each was ready at its last answer, but not all at once: name
		// what the latest checks could not read.
		lacking(w.objNow)
	}
	return strings.Join(out, "; ")
}

func (t *Task) logReady(env *experiment.Env, ns string, checks int) {
	args := []any{"checks", checks}
	if t.URL != nil {
		args = append(args, "url", t.URL.Redacted())
	}
	if len(t.Objects) > 0 {
		args = append(args, "objects", t.ids(ns))
	}
	env.Logger().Info("ready", args...)
}

// ids names the objects, joined by ", "; ns as in Object.ID.
func (t *Task) ids(ns string) string {
	ids := make([]string, len(t.Objects))
	for i, o := range t.Objects {
		ids[i] = o.ID(ns)
	}
	return strings.Join(ids, ", ")
}

// checkURL sends one request to the URL and says why its answer is not
// ready; nil when it is.
func (t *Task) checkURL(ctx context.Context, client *http.Client) error {
	req, err := http.NewRequestWithContext(ctx, t.Method, t.URL.String(), nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return redact.WithoutURL(err)
	}
	resp.Body.Close()
	switch {
	case slices.Contains(t.Status, resp.StatusCode), len(t.Status) == 0 && resp.StatusCode/100 == 2:
		return nil
	case len(t.Status) == 0:
		return fmt.Errorf("status %d, want 2xx", resp.StatusCode)
	}
	return fmt.Errorf("status %d, want one of %v", resp.StatusCode, t.Status)
}
