// Package ready is the `ready` task: it waits until a URL answers as
// expected, so that load starts only once the target is up.
package ready

import (
	"context"
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

type inputs struct {
	URL      string `json:"url"`
	Method   string `json:"method,omitempty"`
	Status   []int  `json:"status,omitempty"`
	Timeout  string `json:"timeout,omitempty"`
	Interval string `json:"interval,omitempty"`
}

// Task waits for a URL.
type Task struct {
	URL    *url.URL
	Method string
	// Status lists the accepted status codes; empty accepts any 2xx.
	Status   []int
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
	if t.URL, fe = d.URL(in.URL, d.Path.Child("url"), "http://127.0.0.1:8080/healthz"); fe != nil {
		errs = append(errs, fe)
	}
	for i, s := range in.Status {
		if s < 100 || s > 599 {
			errs = append(errs, field.Invalid(d.Path.Child("status").Index(i), s, "status codes run from 100 to 599"))
		}
	}
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

// Run checks the URL every Interval until it answers as expected or Timeout
// passes; the error says what the last check saw.
func (t *Task) Run(ctx context.Context, env *experiment.Env) error {
	client := t.Client
	if client == nil {
		client = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	}
	ctx, cancel := context.WithTimeout(ctx, t.Timeout)
	defer cancel()
	tick := time.NewTicker(t.Interval)
	defer tick.Stop()
	var last error
	for attempt := 1; ; attempt++ {
		err := t.check(ctx, client)
		if err == nil {
			env.Log.Info("ready", "url", t.URL.Redacted(), "checks", attempt)
			return nil
		}
		// A check cut short by the deadline says less than the one before it.
		if last == nil || ctx.Err() == nil {
			last = err
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("%s not ready after %v (%d checks): %w", t.URL.Redacted(), t.Timeout, attempt, last)
			}
			return ctx.Err()
		case <-tick.C:
		}
	}
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
