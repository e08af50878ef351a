package http

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
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
var DefaultPercentiles = []float64{50, 75, 90, 95, 99, 99.9}

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
	// Version names the version that url belongs to, when there are several.
	Version           *string      `json:"version,omitempty"`
	NumRequests       int64        `json:"numRequests,omitempty"`
	Duration          string       `json:"duration,omitempty"`
	Timeout           string       `json:"timeout,omitempty"`
	WarmupNumRequests int64        `json:"warmupNumRequests,omitempty"`
	WarmupDuration    string       `json:"warmupDuration,omitempty"`
	ErrorRanges       []errorRange `json:"errorRanges,omitempty"`
	Percentiles       []float64    `json:"percentiles,omitempty"`
	Endpoints         []endpoint   `json:"endpoints,omitempty"`
}

type endpoint struct {
	request
	Name    string `json:"name,omitempty"`
	Version string `json:"version,omitempty"`
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
}

// Endpoint is one load target.
type Endpoint struct {
	// Name gives the endpoint its own metrics (http-<name>/...); may be empty.
	Name        string
	Version     string
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
func (e *Endpoint) Label() string {
	var b strings.Builder
	if e.Version != "" {
		fmt.Fprintf(&b, "version %s ", e.Version)
	}
	if e.Name != "" {
		fmt.Fprintf(&b, "endpoint %s ", e.Name)
	}
	b.WriteString(e.URL.Redacted())
	return b.String()
}

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
	declareMetrics(cfg, d.Metrics)
	return &Task{Config: *cfg}, nil
}

func validate(in *inputs, d *experiment.Decoding) (*Config, field.ErrorList) {
	var errs field.ErrorList
	p := d.Path
	cfg := &Config{NumRequests: in.NumRequests}

	var err *field.Error
	if cfg.Duration, err = d.Duration(in.Duration, 0, p.Child("duration")); err != nil {
		errs = append(errs, err)
	}
	durationParsed := err == nil // err is reused below
	if cfg.Timeout, err = d.Duration(in.Timeout, DefaultTimeout, p.Child("timeout")); err != nil {
		errs = append(errs, err)
	} else if cfg.Timeout == 0 {
		errs = append(errs, field.Invalid(p.Child("timeout"), in.Timeout, "must be above 0"))
	}
	if cfg.WarmupDuration, err = d.Duration(in.WarmupDuration, 0, p.Child("warmupDuration")); err != nil {
		errs = append(errs, err)
	}
	numErr := load.CheckCount(p.Child("numRequests"), in.NumRequests)
	switch {
	case numErr != nil:
		errs = append(errs, numErr)
	case in.NumRequests > 0 && in.Duration != "":
		errs = append(errs, field.Forbidden(p.Child("duration"), "set numRequests or duration, not both"))
	case in.NumRequests == 0 && in.Duration == "":
		cfg.NumRequests = DefaultNumRequests
	case in.Duration != "" && cfg.Duration == 0 && durationParsed:
		errs = append(errs, field.Invalid(p.Child("duration"), in.Duration, "must be above 0"))
	}
	if fe := load.CheckCount(p.Child("warmupNumRequests"), in.WarmupNumRequests); fe != nil {
		errs = append(errs, fe)
	} else if in.WarmupNumRequests > 0 && in.WarmupDuration != "" {
		errs = append(errs, field.Forbidden(p.Child("warmupDuration"), "set warmupNumRequests or warmupDuration, not both"))
	}
	cfg.WarmupNumRequests = in.WarmupNumRequests

	cfg.Percentiles = slices.Clone(DefaultPercentiles)
	for i, pc := range in.Percentiles {
		if !(pc > 0 && pc < 100) {
			errs = append(errs, field.Invalid(p.Child("percentiles").Index(i), pc, "must be above 0 and below 100"))
			continue
		}
		if !slices.Contains(cfg.Percentiles, pc) {
			cfg.Percentiles = append(cfg.Percentiles, pc)
		}
	}
	slices.Sort(cfg.Percentiles)

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

	errs = append(errs, validateEndpoints(in, d, cfg)...)
	if len(errs) == 0 {
		errs = append(errs, checkPlans(in, d.Path, cfg)...)
	}
	return cfg, errs
}

// checkPlans refuses endpoints whose planned load would run longer than
// load.MaxPlan, reporting each at the qps field that the user wrote.
func checkPlans(in *inputs, p *field.Path, cfg *Config) field.ErrorList {
	var errs field.ErrorList
	for i, ep := range cfg.Endpoints {
		qpsPath := p.Child("qps")
		if len(in.Endpoints) > 0 && in.Endpoints[i].QPS != nil {
			qpsPath = p.Child("endpoints").Index(i).Child("qps")
		}
		if fe := load.CheckPlan(qpsPath, ep.QPS, cfg.NumRequests, "numRequests", cfg.WarmupNumRequests, cfg.WarmupDuration, cfg.Duration); fe != nil {
			errs = append(errs, fe)
		}
	}
	return load.Dedupe(errs)
}

func validateEndpoints(in *inputs, d *experiment.Decoding, cfg *Config) field.ErrorList {
	var errs field.ErrorList
	p := d.Path
	defaults := in.request
	if len(in.Endpoints) == 0 {
		if in.URL == "" {
			errs = append(errs, field.Required(p.Child("url"), "give url, or endpoints with a url each"))
			// Check the other task-level fields too, so that every
			// problem is reported at once.
			_, epErrs := resolveEndpoint(endpoint{}, defaults, d, p)
			for _, e := range epErrs {
				if e.Field != p.Child("url").String() {
					errs = append(errs, e)
				}
			}
			return errs
		}
		version, fe := load.SingleVersion(p, d.Versions, in.Version, "url")
		if fe != nil {
			return append(errs, fe)
		}
		ep, epErrs := resolveEndpoint(endpoint{Version: version}, defaults, d, p)
		if ep != nil {
			cfg.Endpoints = append(cfg.Endpoints, *ep)
		}
		return epErrs
	}
	if in.Version != nil {
		errs = append(errs, field.Forbidden(p.Child("version"), "with endpoints, each endpoint names its version"))
	}
	targets := make([]load.Target, len(in.Endpoints))
	for i, e := range in.Endpoints {
		targets[i] = load.Target{Name: e.Name, Version: e.Version}
	}
	checker := load.NewEndpointChecker(Name, d.Versions, targets)
	for i, e := range in.Endpoints {
		ep := p.Child("endpoints").Index(i)
		ok, checkErrs := checker.Check(ep, targets[i])
		errs = append(errs, checkErrs...)
		if !ok {
			continue
		}
		resolved, epErrs := resolveEndpoint(e, defaults, d, ep)
		errs = append(errs, epErrs...)
		if resolved != nil {
			cfg.Endpoints = append(cfg.Endpoints, *resolved)
		}
	}
	return load.Dedupe(errs)
}

// resolveEndpoint merges an endpoint with the task-level defaults and checks
// it. Numbers, headers and files that the endpoint inherits are reported at
// the task-level field (d.Path), where the user wrote them.
func resolveEndpoint(e endpoint, def request, d *experiment.Decoding, p *field.Path) (*Endpoint, field.ErrorList) {
	var errs field.ErrorList
	at := func(own bool, name string) *field.Path {
		if own {
			return p.Child(name)
		}
		return d.Path.Child(name)
	}
	pick := func(v, dv string) string {
		if v != "" {
			return v
		}
		return dv
	}
	out := &Endpoint{
		Name:        e.Name,
		Version:     e.Version,
		Method:      strings.ToUpper(pick(e.Method, def.Method)),
		ContentType: pick(e.ContentType, def.ContentType),
		Connections: DefaultConnections,
		Headers:     map[string]string{},
	}
	for k, v := range def.Headers {
		out.Headers[k] = v
	}
	for k, v := range e.Headers {
		out.Headers[k] = v
	}
	if u, fe := d.URL(pick(e.URL, def.URL), p.Child("url"), "http://127.0.0.1:8080/"); fe != nil {
		errs = append(errs, fe)
	} else {
		out.URL = u
	}
	if out.Method != "" && !load.ValidName(out.Method) {
		errs = append(errs, field.Invalid(p.Child("method"), out.Method, "not an HTTP method"))
	}
	for _, k := range slices.Sorted(maps.Keys(out.Headers)) {
		if msg := experiment.CheckHeader(k, out.Headers[k]); msg != "" {
			_, own := e.Headers[k]
			errs = append(errs, field.Invalid(at(own, "headers").Key(k), field.OmitValueType{}, msg))
		}
	}
	qps, conns := def.QPS, def.Connections
	if e.QPS != nil {
		qps = e.QPS
	}
	if e.Connections != nil {
		conns = e.Connections
	}
	if qps != nil {
		if fe := load.CheckRate(at(e.QPS != nil, "qps"), *qps); fe != nil {
			errs = append(errs, fe)
		}
		out.QPS = *qps
	}
	if conns != nil {
		if *conns < 1 || *conns > 10000 {
			errs = append(errs, field.Invalid(at(e.Connections != nil, "connections"), *conns, "must be from 1 to 10000"))
		}
		out.Connections = *conns
	}
	payload, payloadFile := pick(e.Payload, def.Payload), pick(e.PayloadFile, def.PayloadFile)
	switch {
	case payload != "" && payloadFile != "":
		errs = append(errs, field.Forbidden(p.Child("payloadFile"), "set payload or payloadFile, not both"))
	case payloadFile != "":
		data, fe := d.File(payloadFile, at(e.PayloadFile != "", "payloadFile"))
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

func declareMetrics(cfg *Config, c *experiment.Catalog) {
	targets := make([]load.Target, len(cfg.Endpoints))
	for i, ep := range cfg.Endpoints {
		targets[i] = load.Target{Name: ep.Name, Version: ep.Version}
	}
	load.Declare(c, Name, targets, cfg.Percentiles)
}
