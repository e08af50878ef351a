package ready

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/iter8-tools/iter8/pkg/experiment"
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
	t := &Task{Method: strings.ToUpper(in.Method), Status: in.Status}
	if t.Method == "" {
		t.Method = http.MethodGet
	}
	var fe *field.Error
	switch {
	case in.URL != "":
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
	if t.Timeout, fe = d.Duration(in.Timeout, DefaultTimeout, d.Path.Child("timeout")); fe != nil {
		errs = append(errs, fe)
	} else if t.Timeout == 0 {
		errs = append(errs, field.Invalid(d.Path.Child("timeout"), in.Timeout, "must be above 0"))
	}
	if t.Interval, fe = d.Duration(in.Interval, DefaultInterval, d.Path.Child("interval")); fe != nil {
		errs = append(errs, fe)
	} else if t.Interval == 0 {
		errs = append(errs, field.Invalid(d.Path.Child("interval"), in.Interval, "must be above 0"))
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
	client := t.Client
	if client == nil {
		client = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	}
	var kube experiment.ObjectReader
	var ns string
	if len(t.Objects) > 0 {
		var err error
		if kube, ns, err = t.connect(env); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, t.Timeout)
	defer cancel()
	tick := time.NewTicker(t.Interval)
	defer tick.Stop()
	// What each target lacked at its last check, for the error.
	var urlLast string
	objLast := make([]state, len(t.Objects))
	objNow := make([]state, len(t.Objects)) // the latest check's, transient or not
	for i := range objLast {
		objLast[i].transient = true // nothing known yet
	}
	start := time.Now()
	answered := false // the API server has answered a check
	for attempt := 1; ; attempt++ {
		ready := true
		if t.URL != nil {
			if err := t.check(ctx, client); err != nil {
				ready = false
				// A check cut short by the deadline says less than the one
				// before it.
				if urlLast == "" || ctx.Err() == nil {
					urlLast = err.Error()
				}
			} else {
				urlLast = ""
			}
		}
		for i, o := range t.Objects {
			st, err := o.check(ctx, kube, ns)
			if err != nil {
				return err
			}
			if st.lack != "" {
				ready = false
			}
			answered = answered || st.answered
			if st.unreachable && !answered && time.Since(start) >= unreachableFor {
				return fmt.Errorf("wait for %s: %s (no answer in %v)", o.ID(ns), st.lack, time.Since(start).Round(time.Second))
			}
			objNow[i] = st
			// An error on the way (the deadline, the client's rate limit,
			// a busy API server) says less than the last answer about the
			// object, whether it was ready or not.
			if !st.transient || objLast[i].transient {
				objLast[i] = st
			}
		}
		if ready {
			t.logReady(env, ns, attempt)
			return nil
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				var waiting []string
				if urlLast != "" {
					waiting = append(waiting, t.URL.Redacted()+": "+urlLast)
				}
				for i, o := range t.Objects {
					if objLast[i].lack != "" {
						waiting = append(waiting, o.ID(ns)+": "+objLast[i].lack)
					}
				}
				if len(waiting) == 0 {
					// Each was ready at its last answer, but not all at
					// once: name what the latest checks could not read.
					for i, o := range t.Objects {
						if objNow[i].lack != "" {
							waiting = append(waiting, o.ID(ns)+": "+objNow[i].lack)
						}
					}
				}
				return fmt.Errorf("not ready after %v (%d checks): %s", t.Timeout, attempt, strings.Join(waiting, "; "))
			}
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// connect returns the Kubernetes client and the namespace of objects that
// name none; without them, no object can be waited for.
func (t *Task) connect(env *experiment.Env) (experiment.ObjectReader, string, error) {
	ids := make([]string, len(t.Objects))
	for i, o := range t.Objects {
		ids[i] = o.ID("")
	}
	what := strings.Join(ids, ", ")
	if env.Kube == nil {
		return nil, "", fmt.Errorf("wait for %s: no Kubernetes cluster connection: objects can only be waited for in a cluster or with a kubeconfig", what)
	}
	kube, ns, err := env.Kube()
	switch {
	case err != nil:
		return nil, "", fmt.Errorf("wait for %s: %w", what, err)
	case kube == nil:
		return nil, "", fmt.Errorf("wait for %s: no Kubernetes cluster connection", what)
	}
	if ns == "" {
		for _, o := range t.Objects {
			if o.Namespace == "" {
				return nil, "", fmt.Errorf("wait for %s: the Kubernetes connection has no default namespace: set its namespace", o.ID(""))
			}
		}
	}
	return kube, ns, nil
}

func (t *Task) logReady(env *experiment.Env, ns string, checks int) {
	if env.Log == nil {
		return
	}
	args := []any{"checks", checks}
	if t.URL != nil {
		args = append(args, "url", t.URL.Redacted())
	}
	if len(t.Objects) > 0 {
		ids := make([]string, len(t.Objects))
		for i, o := range t.Objects {
			ids[i] = o.ID(ns)
		}
		args = append(args, "objects", strings.Join(ids, ", "))
	}
	env.Log.Info("ready", args...)
}

func (t *Task) check(ctx context.Context, client *http.Client) error {
	req, err := http.NewRequestWithContext(ctx, t.Method, t.URL.String(), nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			return ue.Err // url.Error repeats the URL, which may hold a secret
		}
		return err
	}
	resp.Body.Close()
	if len(t.Status) == 0 {
		if resp.StatusCode/100 == 2 {
			return nil
		}
		return fmt.Errorf("status %d, want 2xx", resp.StatusCode)
	}
	for _, s := range t.Status {
		if resp.StatusCode == s {
			return nil
		}
	}
	return fmt.Errorf("status %d, want one of %v", resp.StatusCode, t.Status)
}
