package load

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/iter8-tools/iter8/pkg/experiment"
)

// Kind describes a load task to the decoding that the tasks share.
type Kind struct {
	// Family names the task and its metrics (http, grpc).
	Family string
	// Target is the field that says where a load goes (url, host).
	Target string
	// Count is the field of the number of requests per endpoint
	// (numRequests, total); DefaultCount applies when neither it nor a
	// duration is given.
	Count        string
	DefaultCount int64
	// DefaultTimeout bounds a request when timeout is not given.
	DefaultTimeout time.Duration
}

// DefaultPercentiles are always reported as <family>/latency-pXX.
var DefaultPercentiles = []float64{50, 75, 90, 95, 99, 99.9}

// Inputs are the fields of the `with` block that every load task has; a
// task's inputs embed them.
type Inputs struct {
	// Version names the version of the task-level target when there are
	// several versions and no endpoints.
	Version     *string   `json:"version,omitempty"`
	Duration    string    `json:"duration,omitempty"`
	Timeout     string    `json:"timeout,omitempty"`
	Percentiles []float64 `json:"percentiles,omitempty"`
	// Workers spreads the load over this many workers, each sending its
	// Share of the requests at its share of the rate.
	Workers *int `json:"workers,omitempty"`
}

// Common is Inputs and the task's count, checked.
type Common struct {
	// Count of requests per endpoint; 0 when Duration is used.
	Count    int64
	Duration time.Duration
	Timeout  time.Duration
	// Percentiles reported, DefaultPercentiles included, in order.
	Percentiles []float64
	// Workers is how many workers share the load (1: no spreading).
	Workers int
}

// Decode checks the fields that every load task has; count is the task's
// Count field as written.
func (k Kind) Decode(d *experiment.Decoding, in *Inputs, count int64) (Common, field.ErrorList) {
	p := d.Path
	var errs field.ErrorList
	c := Common{Count: count}
	var err *field.Error
	if c.Duration, err = d.PositiveDuration(in.Duration, 0, p.Child("duration")); err != nil {
		errs = append(errs, err)
	}
	if c.Timeout, err = d.PositiveDuration(in.Timeout, k.DefaultTimeout, p.Child("timeout")); err != nil {
		errs = append(errs, err)
	}
	countErr := CheckCount(p.Child(k.Count), count)
	switch {
	case countErr != nil:
		errs = append(errs, countErr)
	case count > 0 && in.Duration != "":
		errs = append(errs, field.Forbidden(p.Child("duration"), fmt.Sprintf("set %s or duration, not both", k.Count)))
	case count == 0 && in.Duration == "":
		c.Count = k.DefaultCount
	}
	c.Percentiles = slices.Clone(DefaultPercentiles)
	for i, pc := range in.Percentiles {
		if !(pc > 0 && pc < 100) {
			errs = append(errs, field.Invalid(p.Child("percentiles").Index(i), pc, "must be above 0 and below 100"))
		} else if !slices.Contains(c.Percentiles, pc) {
			c.Percentiles = append(c.Percentiles, pc)
		}
	}
	slices.Sort(c.Percentiles)
	c.Workers = 1
	if in.Workers != nil {
		c.Workers = *in.Workers
		switch wp := p.Child("workers"); {
		case c.Workers < 1 || c.Workers > MaxWorkers:
			errs = append(errs, field.Invalid(wp, c.Workers, fmt.Sprintf("must be from 1 to %d", MaxWorkers)))
		case countErr == nil && c.Count > 0 && c.Count < int64(c.Workers):
			def := ""
			if count == 0 {
				def = " (its default)"
			}
			errs = append(errs, field.Invalid(wp, c.Workers, fmt.Sprintf("above %s %d%s: every worker sends at least one", k.Count, c.Count, def)))
		}
	}
	return c, errs
}

// CheckWorkerRate refuses a rate at path that, split over workers, leaves
// each worker less than MinRate, or a duration d (0: none) shorter than
// the workers' stagger (one request interval of a worker, workers/rate).
func CheckWorkerRate(path *field.Path, rate float64, workers int, d time.Duration) *field.Error {
	if rate == 0 || workers <= 1 {
		return nil
	}
	// The tolerance lets 0.3 over 3 workers be 0.1 each.
	if rate < MinRate*float64(workers)*(1-1e-9) {
		return field.Invalid(path, rate, fmt.Sprintf("split over %d workers is %.4g per second each, below %v: raise it or use fewer workers", workers, rate/float64(workers), MinRate))
	}
	if stagger := Stagger(rate, workers); d > 0 && d <= stagger {
		return field.Invalid(path, rate, fmt.Sprintf("split over %d workers, whose starts are spread over %v, leaves the duration %v too short: raise the rate or the duration, or use fewer workers", workers, stagger.Round(time.Millisecond), d))
	}
	return nil
}

// Target is an endpoint's name and version. A task's endpoint types, as
// written and as checked, embed it.
type Target struct {
	// Name gives the endpoint metrics of its own (<family>-<name>/...).
	Name    string `json:"name,omitempty"`
	Version string `json:"version,omitempty"`
}

// target lets the generic functions here take any type that embeds Target:
// the method is unexported, so only embedding provides it.
func (t Target) target() Target { return t }

type endpoint interface{ target() Target }

// Label names the endpoint in messages: its version and name, if any, then
// where its load goes.
func (t Target) Label(where string) string {
	if t.Name != "" {
		where = "endpoint " + t.Name + " " + where
	}
	if t.Version != "" {
		where = "version " + t.Version + " " + where
	}
	return where
}

// Scope is where an endpoint's fields are reported: a field that the
// endpoint sets at its own path, one that it inherits at the task's `with`
// block, where the user wrote it. For the task-level target both are the
// `with` block.
type Scope struct{ Own, Task *field.Path }

// Pick gives the endpoint's own value if it sets one, else the task's, and
// the path of the field that holds it. A value that neither sets is the
// endpoint's to give.
func Pick[T comparable](s Scope, name string, own, task T) (T, *field.Path) {
	var zero T
	if own == zero && task != zero {
		return task, s.Task.Child(name)
	}
	return own, s.Own.Child(name)
}

// Merge adds the endpoint's entries to the task's (the endpoint's win) and
// checks each with check, which says what is wrong with one, or "".
func Merge(s Scope, name string, own, task map[string]string, check func(k, v string) string) (map[string]string, field.ErrorList) {
	var errs field.ErrorList
	out := map[string]string{}
	maps.Copy(out, task)
	maps.Copy(out, own)
	for _, k := range slices.Sorted(maps.Keys(out)) {
		if msg := check(k, out[k]); msg != "" {
			at := s.Task
			if _, mine := own[k]; mine {
				at = s.Own
			}
			errs = append(errs, field.Invalid(at.Child(name).Key(k), field.OmitValueType{}, msg))
		}
	}
	return out, errs
}

// Endpoints checks a load task's endpoints as written (eps) and resolves
// each with resolve, which merges it with the task-level fields, checks it
// and reports under s. Without eps the task-level target is the one
// endpoint (resolved from the zero In); hasTarget says whether the task
// gives it. A bad task-level field that several endpoints inherit is
// reported once.
func Endpoints[In endpoint, Out any](k Kind, d *experiment.Decoding, in *Inputs, hasTarget bool, eps []In,
	resolve func(e In, t Target, s Scope) (*Out, field.ErrorList)) ([]Out, field.ErrorList) {
	p := d.Path
	var out []Out
	add := func(r *Out, errs field.ErrorList) field.ErrorList {
		if r != nil {
			out = append(out, *r)
		}
		return errs
	}
	var zero In
	if len(eps) == 0 && !hasTarget {
		// Resolve anyway, so that every problem is reported at once.
		_, errs := resolve(zero, Target{}, Scope{p, p})
		for _, e := range errs {
			if e.Field == p.Child(k.Target).String() {
				e.Detail = fmt.Sprintf("give %[1]s, or endpoints with a %[1]s each", k.Target)
			}
		}
		return nil, errs
	}
	if len(eps) == 0 {
		version, fe := singleVersion(p, d.Versions, in.Version, k.Target)
		if fe != nil {
			return nil, field.ErrorList{fe}
		}
		return out, add(resolve(zero, Target{Version: version}, Scope{p, p}))
	}
	var errs field.ErrorList
	if in.Version != nil {
		errs = append(errs, field.Forbidden(p.Child("version"), "with endpoints, each endpoint names its version"))
	}
	targets := make([]Target, len(eps))
	for i, e := range eps {
		targets[i] = e.target()
	}
	checker := newEndpointChecker(k.Family, d.Versions, targets)
	for i, e := range eps {
		at := p.Child("endpoints").Index(i)
		ok, checkErrs := checker.check(at, targets[i])
		errs = append(errs, checkErrs...)
		if ok {
			errs = append(errs, add(resolve(e, targets[i], Scope{at, p}))...)
		}
	}
	return out, dedupe(errs)
}

// singleVersion finds the version of a task's single target (a url or host
// given without endpoints): the version field when set, else the only
// version. what names the target field in messages ("url", "host").
func singleVersion(p *field.Path, versions []string, version *string, what string) (string, *field.Error) {
	switch {
	case version != nil:
		if !slices.Contains(versions, *version) {
			return "", field.NotSupported(p.Child("version"), *version, versions)
		}
		return *version, nil
	case len(versions) > 1:
		return "", field.Required(p.Child("version"),
			fmt.Sprintf("the experiment has versions %s: name the version of %s, or use endpoints", strings.Join(versions, ", "), what))
	}
	return versions[0], nil
}

// endpointChecker checks the versions and names of a task's endpoints.
type endpointChecker struct {
	family     string
	versions   []string
	perVersion map[string]int
	names      map[string]map[string]bool
}

// newEndpointChecker prepares the checks of all of a task's endpoints;
// family is the metric family (http, grpc).
func newEndpointChecker(family string, versions []string, targets []Target) *endpointChecker {
	c := &endpointChecker{family: family, versions: versions, perVersion: map[string]int{}, names: map[string]map[string]bool{}}
	for _, t := range targets {
		c.perVersion[t.Version]++
	}
	return c
}

// check checks one endpoint at path p. When ok is false its version is
// unknown and there is no point in checking the rest of it.
func (c *endpointChecker) check(p *field.Path, t Target) (ok bool, errs field.ErrorList) {
	if t.Version == "" && len(c.versions) > 1 {
		return false, field.ErrorList{field.Required(p.Child("version"), "one of "+strings.Join(c.versions, ", "))}
	}
	if !slices.Contains(c.versions, t.Version) {
		return false, field.ErrorList{field.NotSupported(p.Child("version"), t.Version, c.versions)}
	}
	if t.Name == "" {
		if c.perVersion[t.Version] > 1 {
			errs = append(errs, field.Required(p.Child("name"),
				fmt.Sprintf("a version with several endpoints needs a name for each (its metrics are %s-<name>/...)", c.family)))
		}
		return true, errs
	}
	if !validName(t.Name) {
		errs = append(errs, field.Invalid(p.Child("name"), t.Name, "use letters, digits, '-' and '_' only"))
	}
	if c.names[t.Version] == nil {
		c.names[t.Version] = map[string]bool{}
	}
	if c.names[t.Version][t.Name] {
		errs = append(errs, field.Duplicate(p.Child("name"), t.Name))
	}
	c.names[t.Version][t.Name] = true
	return true, errs
}

// validName reports whether s is a usable endpoint name.
func validName(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return s != ""
}

// dedupe drops repeated errors: a bad task-level default is inherited by
// every endpoint but reported once, at its own path.
func dedupe(errs field.ErrorList) field.ErrorList {
	seen := map[string]bool{}
	out := errs[:0]
	for _, e := range errs {
		if k := e.Error(); !seen[k] {
			seen[k] = true
			out = append(out, e)
		}
	}
	return out
}
