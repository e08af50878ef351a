package http

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/task/load"
)

// Name is the task's name in a spec.
const Name = "http"

// Defaults of the task's inputs.
const (
	DefaultNumRequests = 400
	DefaultConnections = 4
	DefaultTimeout     = 5 * time.Second
)

// DefaultPercentiles are always reported as http/latency-pXX.
var DefaultPercentiles = load.DefaultPercentiles

// kind tells pkg/task/load this task's names and defaults.
var kind = load.Kind{Family: Name, Target: "url", Count: "numRequests", DefaultCount: DefaultNumRequests, DefaultTimeout: DefaultTimeout}

// request holds what can be set for all endpoints and overridden per endpoint.
type request struct {
	URL         string            `json:"url,omitempty"`
	Method      string            `json:"method,omitempty"`
	Headers     map[string]string `json:"headers,omitempty"`
	Payload     string            `json:"payload,omitempty"`
	PayloadFile string            `json:"payloadFile,omitempty"`
	ContentType string            `json:"contentType,omitempty"`
	QPS         *float64          `json:"qps,omitempty"`
	Connections *int              `json:"connections,omitempty"`
}

// inputs is the `with` block as written.
type inputs struct {
	request
	load.Inputs
	NumRequests       int64        `json:"numRequests,omitempty"`
	WarmupNumRequests int64        `json:"warmupNumRequests,omitempty"`
	WarmupDuration    string       `json:"warmupDuration,omitempty"`
	ErrorRanges       []errorRange `json:"errorRanges,omitempty"`
	Endpoints         []endpoint   `json:"endpoints,omitempty"`
}

type endpoint struct {
	request
	load.Target
}

type errorRange struct {
	Lower *int `json:"lower,omitempty"`
	Upper *int `json:"upper,omitempty"`
}

// Config is the task's validated configuration.
type Config struct {
	Endpoints []Endpoint
	// NumRequests per endpoint; 0 when Duration is used.
	NumRequests int64
	Duration    time.Duration
	Timeout     time.Duration
	// Warmup load, not recorded.
	WarmupNumRequests int64
	WarmupDuration    time.Duration
	// ErrorRanges are the status codes counted as errors, besides failed
	// connections and timeouts, which always are.
	ErrorRanges []StatusRange
	// Percentiles reported, DefaultPercentiles included.
	Percentiles []float64
	// Workers share the load (1: one load generator); each sends its
	// load.Share of NumRequests and WarmupNumRequests, at its share of
	// each endpoint's QPS, for the whole Duration.
	Workers int
}

// Endpoint is one load target.
type Endpoint struct {
	// Target's name gives the endpoint its own metrics (http-<name>/...);
	// it may be empty.
	load.Target
	URL         *url.URL
	Method      string
	Headers     map[string]string
	Payload     []byte
	ContentType string
	// QPS is the target rate; 0 means as fast as possible.
	QPS         float64
	Connections int
}

// Label names the endpoint in messages.
func (e *Endpoint) Label() string { return e.Target.Label(e.URL.Redacted()) }

// StatusRange is an inclusive range of HTTP status codes.
type StatusRange struct{ Lower, Upper int }

// Contains reports whether code is in the range.
func (r StatusRange) Contains(code int) bool { return code >= r.Lower && code <= r.Upper }

// Decode validates the task's `with` block.
func Decode(d *experiment.Decoding) (experiment.Task, field.ErrorList) {
	var in inputs
	if errs := d.Into(&in); len(errs) > 0 {
		return nil, errs
	}
	cfg, errs := validate(&in, d)
	if len(errs) > 0 {
		return nil, errs
	}
	load.Declare(d.Metrics, Name, cfg.Endpoints, cfg.Percentiles)
	return &Task{Config: *cfg}, nil
}

func validate(in *inputs, d *experiment.Decoding) (*Config, field.ErrorList) {
	var errs field.ErrorList
	p := d.Path
	cfg := &Config{WarmupNumRequests: in.WarmupNumRequests}
	var err *field.Error
	if cfg.WarmupDuration, err = d.Duration(in.WarmupDuration, 0, p.Child("warmupDuration")); err != nil {
		errs = append(errs, err)
	}
	c, commonErrs := kind.Decode(d, &in.Inputs, in.NumRequests)
	errs = append(errs, commonErrs...)
	cfg.NumRequests, cfg.Duration, cfg.Timeout, cfg.Percentiles, cfg.Workers = c.Count, c.Duration, c.Timeout, c.Percentiles, c.Workers
	if fe := load.CheckCount(p.Child("warmupNumRequests"), in.WarmupNumRequests); fe != nil {
		errs = append(errs, fe)
	} else if in.WarmupNumRequests > 0 && in.WarmupDuration != "" {
		errs = append(errs, field.Forbidden(p.Child("warmupDuration"), "set warmupNumRequests or warmupDuration, not both"))
	}
	errs = append(errs, validateErrorRanges(in, p, cfg)...)

	r := &resolver{def: in.request, d: d, cfg: cfg, planned: len(errs) == 0}
	var epErrs field.ErrorList
	cfg.Endpoints, epErrs = load.Endpoints(kind, d, &in.Inputs, in.URL != "", in.Endpoints, r.resolve)
	return cfg, append(errs, epErrs...)
}

func validateErrorRanges(in *inputs, p *field.Path, cfg *Config) field.ErrorList {
	var errs field.ErrorList
	if len(in.ErrorRanges) == 0 {
		cfg.ErrorRanges = []StatusRange{{Lower: 400, Upper: 599}}
	}
	for i, r := range in.ErrorRanges {
		rp := p.Child("errorRanges").Index(i)
		sr := StatusRange{Lower: 100, Upper: 599}
		if r.Lower != nil {
			sr.Lower = *r.Lower
		}
		if r.Upper != nil {
			sr.Upper = *r.Upper
		}
		switch {
		case r.Lower == nil && r.Upper == nil:
			errs = append(errs, field.Required(rp, "set lower, upper or both"))
		case sr.Lower < 100 || sr.Upper > 599:
			errs = append(errs, field.Invalid(rp, fmt.Sprintf("%d-%d", sr.Lower, sr.Upper), "status codes run from 100 to 599"))
		case sr.Lower > sr.Upper:
			errs = append(errs, field.Invalid(rp, fmt.Sprintf("%d-%d", sr.Lower, sr.Upper), "lower must not be above upper"))
		}
		cfg.ErrorRanges = append(cfg.ErrorRanges, sr)
	}
	return errs
}

// resolver merges endpoints with the task-level request and checks them.
type resolver struct {
	def request
	d   *experiment.Decoding
	cfg *Config
	// planned says that cfg's counts and durations are valid, so that the
	// load planned at a rate can be checked.
	planned bool
}

func (r *resolver) resolve(e endpoint, t load.Target, s load.Scope) (*Endpoint, field.ErrorList) {
	var errs, headerErrs field.ErrorList
	def := r.def
	out := &Endpoint{Target: t, Connections: DefaultConnections}
	rawURL, urlPath := load.Pick(s, "url", e.URL, def.URL)
	if u, fe := r.d.URL(rawURL, urlPath, "http://127.0.0.1:8080/"); fe != nil {
		errs = append(errs, fe)
	} else {
		out.URL = u
	}
	method, methodPath := load.Pick(s, "method", e.Method, def.Method)
	if out.Method = strings.ToUpper(method); out.Method != "" && !experiment.ValidMethod(out.Method) {
		errs = append(errs, field.Invalid(methodPath, out.Method, "not an HTTP method"))
	}
	out.Headers, headerErrs = load.Merge(s, "headers", e.Headers, def.Headers, experiment.CheckHeader)
	errs = append(errs, headerErrs...)
	out.ContentType, _ = load.Pick(s, "contentType", e.ContentType, def.ContentType)
	if qps, at := load.Pick(s, "qps", e.QPS, def.QPS); qps != nil {
		out.QPS = *qps
		fe := load.CheckRate(at, *qps)
		if fe == nil {
			fe = load.CheckWorkerRate(at, *qps, r.cfg.Workers, r.cfg.Duration)
		}
		if c := r.cfg; fe == nil && r.planned {
			fe = load.CheckPlan(at, *qps, c.NumRequests, "numRequests", c.WarmupNumRequests, c.WarmupDuration, c.Duration)
		}
		if fe != nil {
			errs = append(errs, fe)
		}
	}
	if conns, at := load.Pick(s, "connections", e.Connections, def.Connections); conns != nil {
		if *conns < 1 || *conns > 10000 {
			errs = append(errs, field.Invalid(at, *conns, "must be from 1 to 10000"))
		}
		out.Connections = *conns
	}
	payload, payloadAt := load.Pick(s, "payload", e.Payload, def.Payload)
	payloadFile, fileAt := load.Pick(s, "payloadFile", e.PayloadFile, def.PayloadFile)
	switch {
	case payload != "" && payloadFile != "":
		at := fileAt
		if e.Payload != "" && e.PayloadFile == "" {
			at = payloadAt // the one of the two that the endpoint sets
		}
		errs = append(errs, field.Forbidden(at, "set payload or payloadFile, not both"))
	case payloadFile != "":
		data, fe := r.d.File(payloadFile, fileAt)
		if fe != nil {
			errs = append(errs, fe)
		}
		out.Payload = data
	case payload != "":
		out.Payload = []byte(payload)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return out, nil
}
