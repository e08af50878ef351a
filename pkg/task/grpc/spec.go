package grpc

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/task/load"
)

// Name is the task's name in a spec.
const Name = "grpc"

// Defaults of the task's inputs; they are ghz's own.
const (
	DefaultTotal       = 200
	DefaultConcurrency = 50
	DefaultConnections = 1
	DefaultTimeout     = 20 * time.Second
)

// MaxConcurrency bounds concurrency (and so connections) per endpoint.
const MaxConcurrency = 10000

// DefaultPercentiles are always reported as grpc/latency-pXX.
var DefaultPercentiles = []float64{50, 75, 90, 95, 99, 99.9}

// request holds what can be set for all endpoints and overridden per endpoint.
type request struct {
	Host        string            `json:"host,omitempty"`
	Call        string            `json:"call,omitempty"`
	Data        json.RawMessage   `json:"data,omitempty"`
	Metadata    map[string]string `json:"metadata,omitempty"`
	RPS         *float64          `json:"rps,omitempty"`
	Concurrency *int              `json:"concurrency,omitempty"`
	Connections *int              `json:"connections,omitempty"`
}

// inputs is the `with` block as written.
type inputs struct {
	request
	// Version names the version that host belongs to, when there are
	// several.
	Version     *string    `json:"version,omitempty"`
	ProtoFile   string     `json:"protoFile,omitempty"`
	Protoset    string     `json:"protoset,omitempty"`
	ImportPaths []string   `json:"importPaths,omitempty"`
	Total       int64      `json:"total,omitempty"`
	Duration    string     `json:"duration,omitempty"`
	Timeout     string     `json:"timeout,omitempty"`
	Insecure    bool       `json:"insecure,omitempty"`
	SkipVerify  bool       `json:"skipVerify,omitempty"`
	RootCert    string     `json:"rootCert,omitempty"`
	Percentiles []float64  `json:"percentiles,omitempty"`
	Endpoints   []endpoint `json:"endpoints,omitempty"`
}

type endpoint struct {
	request
	Name    string `json:"name,omitempty"`
	Version string `json:"version,omitempty"`
}

// Config is the task's validated configuration.
type Config struct {
	Endpoints []Endpoint
	// Total is the number of calls per endpoint; 0 when Duration is used.
	Total    int64
	Duration time.Duration
	// Timeout bounds each call (and, with reflection, the lookup of the
	// method).
	Timeout time.Duration
	// Protoset describes the calls: a serialized FileDescriptorSet compiled
	// from protoFile or read from protoset at decode time. Nil means that
	// the method is looked up by server reflection when the load starts.
	Protoset []byte
	// TLS is how connections are secured.
	TLS TLS
	// Percentiles reported, DefaultPercentiles included.
	Percentiles []float64
}

// TLS configures the security of connections. The zero value is TLS that
// verifies the server against the system's roots.
type TLS struct {
	// Insecure sends plaintext.
	Insecure bool
	// SkipVerify uses TLS but trusts any server certificate.
	SkipVerify bool
	// RootCert holds PEM certificates to trust instead of the system's
	// roots; nil means the system's.
	RootCert []byte
}

// Endpoint is one load target.
type Endpoint struct {
	// Name gives the endpoint its own metrics (grpc-<name>/...); may be
	// empty.
	Name    string
	Version string
	// Host is host:port.
	Host string
	// Call is package.Service/Method.
	Call string
	// Data is the JSON request message, or a list of them used in turn;
	// ghz's template actions such as {{.RequestNumber}} are expanded per
	// call.
	Data []byte
	// Metadata is sent with every call (templates expanded too).
	Metadata map[string]string
	// RPS is the target rate of calls; 0 means as fast as possible.
	RPS float64
	// Concurrency is the number of calls in flight at once, over
	// Connections connections.
	Concurrency int
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
	b.WriteString(e.Host + " " + e.Call)
	return b.String()
}

// Decode validates the task's `with` block. A protoFile or protoset is read
// and compiled here, so that a missing method or a bad file is reported
// with its path before anything runs.
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
	cfg := &Config{Total: in.Total}

	var err *field.Error
	if cfg.Duration, err = d.Duration(in.Duration, 0, p.Child("duration")); err != nil {
		errs = append(errs, err)
	}
	durationParsed := err == nil
	if cfg.Timeout, err = d.Duration(in.Timeout, DefaultTimeout, p.Child("timeout")); err != nil {
		errs = append(errs, err)
	} else if cfg.Timeout == 0 {
		errs = append(errs, field.Invalid(p.Child("timeout"), in.Timeout, "must be above 0"))
	}
	switch {
	case load.CheckCount(p.Child("total"), in.Total) != nil:
		errs = append(errs, load.CheckCount(p.Child("total"), in.Total))
	case in.Total > 0 && in.Duration != "":
		errs = append(errs, field.Forbidden(p.Child("duration"), "set total or duration, not both"))
	case in.Total == 0 && in.Duration == "":
		cfg.Total = DefaultTotal
	case in.Duration != "" && cfg.Duration == 0 && durationParsed:
		errs = append(errs, field.Invalid(p.Child("duration"), in.Duration, "must be above 0"))
	}

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

	errs = append(errs, validateTLS(in, d, cfg)...)
	methods, descErrs := loadDescriptors(in, d, cfg)
	errs = append(errs, descErrs...)
	errs = append(errs, validateEndpoints(in, d, cfg, methods)...)
	if len(errs) == 0 {
		errs = append(errs, checkPlans(in, p, cfg)...)
	}
	return cfg, errs
}

// checkPlans refuses endpoints whose planned load (total calls at rps)
// would run longer than load.MaxPlan, reporting each at the rps field that
// the user wrote.
func checkPlans(in *inputs, p *field.Path, cfg *Config) field.ErrorList {
	var errs field.ErrorList
	for i, ep := range cfg.Endpoints {
		rpsPath := p.Child("rps")
		if len(in.Endpoints) > 0 && in.Endpoints[i].RPS != nil {
			rpsPath = p.Child("endpoints").Index(i).Child("rps")
		}
		if fe := load.CheckPlan(rpsPath, ep.RPS, cfg.Total, "total", 0, 0, cfg.Duration); fe != nil {
			errs = append(errs, fe)
		}
	}
	return load.Dedupe(errs)
}

func validateTLS(in *inputs, d *experiment.Decoding, cfg *Config) field.ErrorList {
	var errs field.ErrorList
	p := d.Path
	cfg.TLS = TLS{Insecure: in.Insecure, SkipVerify: in.SkipVerify}
	switch {
	case in.Insecure && in.SkipVerify:
		errs = append(errs, field.Forbidden(p.Child("skipVerify"), "insecure sends plaintext: there is no certificate to verify"))
	case in.Insecure && in.RootCert != "":
		errs = append(errs, field.Forbidden(p.Child("rootCert"), "insecure sends plaintext: there is no certificate to verify"))
	case in.SkipVerify && in.RootCert != "":
		errs = append(errs, field.Forbidden(p.Child("rootCert"), "skipVerify trusts any certificate: set rootCert or skipVerify, not both"))
	case in.RootCert != "":
		data, fe := readSpecFile(d, p.Child("rootCert"), in.RootCert)
		if fe != nil {
			errs = append(errs, fe)
			break
		}
		if !x509.NewCertPool().AppendCertsFromPEM(data) {
			errs = append(errs, field.Invalid(p.Child("rootCert"), in.RootCert, "holds no PEM certificate"))
		}
		cfg.TLS.RootCert = data
	}
	return errs
}

// readSpecFile reads a file that the spec names, of at most
// experiment.MaxFileSize bytes.
func readSpecFile(d *experiment.Decoding, path *field.Path, name string) ([]byte, *field.Error) {
	return d.File(name, path)
}

func validateEndpoints(in *inputs, d *experiment.Decoding, cfg *Config, methods *methodSet) field.ErrorList {
	var errs field.ErrorList
	p := d.Path
	defaults := in.request
	if len(in.Endpoints) == 0 {
		if in.Host == "" {
			errs = append(errs, field.Required(p.Child("host"), "give host, or endpoints with a host each"))
			// Check the other task-level fields too, so that every
			// problem is reported at once.
			_, epErrs := resolveEndpoint(endpoint{}, defaults, p, p, methods)
			for _, e := range epErrs {
				if e.Field != p.Child("host").String() {
					errs = append(errs, e)
				}
			}
			return errs
		}
		version, fe := load.SingleVersion(p, d.Versions, in.Version, "host")
		if fe != nil {
			return append(errs, fe)
		}
		ep, epErrs := resolveEndpoint(endpoint{Version: version}, defaults, p, p, methods)
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
		resolved, epErrs := resolveEndpoint(e, defaults, ep, p, methods)
		errs = append(errs, epErrs...)
		if resolved != nil {
			cfg.Endpoints = append(cfg.Endpoints, *resolved)
		}
	}
	return load.Dedupe(errs)
}

// callPattern is package.Service/Method (the package may be empty) or, as
// ghz also takes it, package.Service.Method with a package: a lone
// "a.B" would be ambiguous.
var callPattern = regexp.MustCompile(`^(([A-Za-z_][A-Za-z0-9_]*\.)*[A-Za-z_][A-Za-z0-9_]*/|([A-Za-z_][A-Za-z0-9_]*\.){2,})[A-Za-z_][A-Za-z0-9_]*$`)

// canonicalCall writes a call as package.Service/Method.
func canonicalCall(c string) string {
	if strings.Contains(c, "/") {
		return c
	}
	i := strings.LastIndex(c, ".")
	return c[:i] + "/" + c[i+1:]
}

// resolveEndpoint merges an endpoint with the task-level defaults and checks
// it. Fields the endpoint sets are reported under p, inherited ones under
// task (the `with` block).
func resolveEndpoint(e endpoint, def request, p, task *field.Path, methods *methodSet) (*Endpoint, field.ErrorList) {
	var errs field.ErrorList
	at := func(own bool, name string) *field.Path {
		if own {
			return p.Child(name)
		}
		return task.Child(name)
	}
	out := &Endpoint{
		Name:        e.Name,
		Version:     e.Version,
		Concurrency: DefaultConcurrency,
		Connections: DefaultConnections,
		Metadata:    map[string]string{},
	}

	host, hostPath := def.Host, at(false, "host")
	if e.Host != "" {
		host, hostPath = e.Host, at(true, "host")
	}
	if fe := checkHost(host, hostPath); fe != nil {
		errs = append(errs, fe)
	}
	out.Host = host

	call, callPath := def.Call, at(false, "call")
	if e.Call != "" {
		call, callPath = e.Call, at(true, "call")
	}
	var input messageType
	switch {
	case call == "":
		errs = append(errs, field.Required(callPath, "the method to call, such as helloworld.Greeter/SayHello"))
	case !callPattern.MatchString(call):
		errs = append(errs, field.Invalid(callPath, call, "want package.Service/Method, such as helloworld.Greeter/SayHello"))
	default:
		out.Call = canonicalCall(call)
		if methods != nil {
			var fe *field.Error
			if input, fe = methods.find(out.Call, callPath); fe != nil {
				errs = append(errs, fe)
			}
		}
	}

	data, dataPath := def.Data, at(false, "data")
	if !isNull(e.Data) {
		data, dataPath = e.Data, at(true, "data")
	}
	if isNull(data) {
		data = json.RawMessage(`{}`)
	}
	compact, dataErrs := checkData(data, dataPath, input)
	errs = append(errs, dataErrs...)
	out.Data = compact

	maps.Copy(out.Metadata, def.Metadata)
	maps.Copy(out.Metadata, e.Metadata)
	for _, k := range slices.Sorted(maps.Keys(out.Metadata)) {
		_, own := e.Metadata[k]
		if msg := checkMetadata(k, out.Metadata[k]); msg != "" {
			errs = append(errs, field.Invalid(at(own, "metadata").Key(k), field.OmitValueType{}, msg))
		}
	}

	rps, rpsPath := def.RPS, at(false, "rps")
	if e.RPS != nil {
		rps, rpsPath = e.RPS, at(true, "rps")
	}
	if rps != nil {
		if fe := load.CheckRate(rpsPath, *rps); fe != nil {
			errs = append(errs, fe)
		}
		out.RPS = *rps
	}
	conc, concPath := def.Concurrency, at(false, "concurrency")
	if e.Concurrency != nil {
		conc, concPath = e.Concurrency, at(true, "concurrency")
	}
	if conc != nil {
		if *conc < 1 || *conc > MaxConcurrency {
			errs = append(errs, field.Invalid(concPath, *conc, fmt.Sprintf("must be from 1 to %d", MaxConcurrency)))
		}
		out.Concurrency = *conc
	}
	conns, connsPath := def.Connections, at(false, "connections")
	if e.Connections != nil {
		conns, connsPath = e.Connections, at(true, "connections")
	}
	if conns != nil {
		out.Connections = *conns
		if *conns < 1 {
			errs = append(errs, field.Invalid(connsPath, *conns, "must be >= 1"))
		}
	}
	if out.Connections > out.Concurrency && out.Concurrency >= 1 {
		errs = append(errs, field.Invalid(connsPath, out.Connections,
			fmt.Sprintf("must not be above concurrency (%d): each connection carries at least one call at a time", out.Concurrency)))
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return out, nil
}

func isNull(m json.RawMessage) bool {
	t := bytes.TrimSpace(m)
	return len(t) == 0 || bytes.Equal(t, []byte("null"))
}

// checkHost checks a host:port target.
func checkHost(host string, path *field.Path) *field.Error {
	const want = "want host:port, such as 127.0.0.1:50051 or greeter.default.svc:50051"
	if host == "" {
		return field.Required(path, want)
	}
	if strings.Contains(host, "://") {
		return field.Invalid(path, host, "a host has no scheme: "+want)
	}
	h, port, err := net.SplitHostPort(host)
	if err != nil || h == "" {
		return field.Invalid(path, host, want)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return field.Invalid(path, host, "the port must be a number from 1 to 65535")
	}
	if strings.ContainsAny(h, " /?#@") {
		return field.Invalid(path, host, want)
	}
	return nil
}

// checkData checks that data is a JSON object, or a non-empty list of them,
// and, when the method is known and data has no template actions, that it
// fits the method's input message. It returns data compacted, as ghz tells
// a list from an object by its first byte.
func checkData(data json.RawMessage, path *field.Path, input messageType) ([]byte, field.ErrorList) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, data); err != nil {
		return nil, field.ErrorList{field.Invalid(path, field.OmitValueType{}, "not JSON: "+err.Error())}
	}
	compact := buf.Bytes()
	var msgs []json.RawMessage
	switch compact[0] {
	case '{':
		msgs = []json.RawMessage{compact}
	case '[':
		if err := json.Unmarshal(compact, &msgs); err != nil {
			return nil, field.ErrorList{field.Invalid(path, field.OmitValueType{}, err.Error())}
		}
		if len(msgs) == 0 {
			return nil, field.ErrorList{field.Invalid(path, field.OmitValueType{}, "an empty list: give at least one message")}
		}
	default:
		return nil, field.ErrorList{field.Invalid(path, field.OmitValueType{}, "want a message (an object) or a list of messages")}
	}
	var errs field.ErrorList
	for i, m := range msgs {
		mp := path
		if compact[0] == '[' {
			mp = path.Index(i)
		}
		if len(m) == 0 || m[0] != '{' {
			errs = append(errs, field.Invalid(mp, field.OmitValueType{}, "want a message (an object)"))
			continue
		}
		if input != nil && !bytes.Contains(m, []byte("{{")) {
			if err := input.check(m); err != nil {
				errs = append(errs, field.Invalid(mp, field.OmitValueType{}, err.Error()))
			}
		}
	}
	return compact, errs
}

// checkMetadata says what is wrong with one metadata entry, or "".
func checkMetadata(k, v string) string {
	lk := strings.ToLower(k)
	switch {
	case k == "":
		return "a metadata key must not be empty"
	case strings.HasPrefix(lk, "grpc-"):
		return "keys starting with grpc- are reserved for gRPC itself"
	}
	for _, r := range lk {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return "a metadata key may hold letters, digits, '-', '_' and '.' only"
		}
	}
	if !strings.HasSuffix(lk, "-bin") {
		for _, r := range v {
			if r < 0x20 || r > 0x7e {
				return "a metadata value holds printable ASCII only (use a key ending in -bin for binary values)"
			}
		}
	}
	return ""
}

func declareMetrics(cfg *Config, c *experiment.Catalog) {
	targets := make([]load.Target, len(cfg.Endpoints))
	for i, ep := range cfg.Endpoints {
		targets[i] = load.Target{Name: ep.Name, Version: ep.Version}
	}
	load.Declare(c, Name, targets, cfg.Percentiles)
}
