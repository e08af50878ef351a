package grpc

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"
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
var DefaultPercentiles = load.DefaultPercentiles

// kind tells pkg/task/load this task's names and defaults.
var kind = load.Kind{Family: Name, Target: "host", Count: "total", DefaultCount: DefaultTotal, DefaultTimeout: DefaultTimeout}

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
	load.Inputs
	ProtoFile   string     `json:"protoFile,omitempty"`
	Protoset    string     `json:"protoset,omitempty"`
	ImportPaths []string   `json:"importPaths,omitempty"`
	Total       int64      `json:"total,omitempty"`
	Insecure    bool       `json:"insecure,omitempty"`
	SkipVerify  bool       `json:"skipVerify,omitempty"`
	RootCert    string     `json:"rootCert,omitempty"`
	Endpoints   []endpoint `json:"endpoints,omitempty"`
}

type endpoint struct {
	request
	load.Target
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
	// Workers share the load (1: one load generator); each makes its
	// load.Share of Total at its share of each endpoint's RPS, for the
	// whole Duration.
	Workers int
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
	// Target's name gives the endpoint its own metrics (grpc-<name>/...);
	// it may be empty.
	load.Target
	// Host is host:port.
	Host string
	// Call is package.Service/Method.
	Call string
	// Data is the JSON request message, or a list of them used in turn;
	// template actions such as {{.RequestNumber}} (ghz's) are expanded per
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
func (e *Endpoint) Label() string { return e.Target.Label(e.Host + " " + e.Call) }

// Decode validates the task's `with` block. A protoFile or protoset is read
// and compiled here, so that a missing method or a bad file is reported
// with its path before anything runs.
func Decode(d *experiment.Decoding) (experiment.Task, field.ErrorList) {
	var in inputs
	if errs := d.Into(&in); len(errs) > 0 {
		return nil, errs
	}
	c, errs := kind.Decode(d, &in.Inputs, in.Total)
	cfg := Config{Total: c.Count, Duration: c.Duration, Timeout: c.Timeout, Percentiles: c.Percentiles, Workers: c.Workers}
	var more field.ErrorList
	cfg.TLS, more = decodeTLS(&in, d)
	errs = append(errs, more...)
	methods, more := loadDescriptors(&in, d, &cfg)
	errs = append(errs, more...)
	r := &resolver{def: in.request, methods: methods, cfg: &cfg, planned: len(errs) == 0}
	cfg.Endpoints, more = load.Endpoints(kind, d, &in.Inputs, in.Host != "", in.Endpoints, r.resolve)
	if errs = append(errs, more...); len(errs) > 0 {
		return nil, errs
	}
	load.Declare(d.Metrics, Name, cfg.Endpoints, cfg.Percentiles)
	return &Task{Config: cfg}, nil
}

func decodeTLS(in *inputs, d *experiment.Decoding) (TLS, field.ErrorList) {
	const plaintext = "insecure sends plaintext: there is no certificate to verify"
	tls := TLS{Insecure: in.Insecure, SkipVerify: in.SkipVerify}
	rootCert := d.Path.Child("rootCert")
	var fe *field.Error
	switch {
	case in.Insecure && in.SkipVerify:
		fe = field.Forbidden(d.Path.Child("skipVerify"), plaintext)
	case in.Insecure && in.RootCert != "":
		fe = field.Forbidden(rootCert, plaintext)
	case in.SkipVerify && in.RootCert != "":
		fe = field.Forbidden(rootCert, "skipVerify trusts any certificate: set rootCert or skipVerify, not both")
	case in.RootCert != "":
		tls.RootCert, fe = d.File(in.RootCert, rootCert)
		if fe == nil && !x509.NewCertPool().AppendCertsFromPEM(tls.RootCert) {
			fe = field.Invalid(rootCert, in.RootCert, "holds no PEM certificate")
		}
	}
	if fe != nil {
		return tls, field.ErrorList{fe}
	}
	return tls, nil
}

// callPattern is package.Service/Method (the package may be empty) or, as
// ghz also takes it, package.Service.Method with a package: a lone
// "a.B" would be ambiguous.
var callPattern = regexp.MustCompile(`^(([A-Za-z_][A-Za-z0-9_]*\.)*[A-Za-z_][A-Za-z0-9_]*/|([A-Za-z_][A-Za-z0-9_]*\.){2,})[A-Za-z_][A-Za-z0-9_]*$`)

// resolver merges endpoints with the task-level request and checks them.
type resolver struct {
	def     request
	methods *methodSet
	cfg     *Config
	// planned says that cfg's counts and durations are valid, so that the
	// load planned at a rate can be checked.
	planned bool
}

func (r *resolver) resolve(e endpoint, t load.Target, s load.Scope) (*Endpoint, field.ErrorList) {
	var errs, more field.ErrorList
	add := func(fe *field.Error) {
		if fe != nil {
			errs = append(errs, fe)
		}
	}
	def := r.def
	out := &Endpoint{Target: t, Concurrency: DefaultConcurrency, Connections: DefaultConnections}
	var hostPath *field.Path
	out.Host, hostPath = load.Pick(s, "host", e.Host, def.Host)
	add(checkHost(out.Host, hostPath))
	var method protoreflect.MethodDescriptor
	var fe *field.Error
	out.Call, method, fe = r.resolveCall(load.Pick(s, "call", e.Call, def.Call))
	add(fe)

	data, dataPath := def.Data, s.Task.Child("data")
	if !isNull(e.Data) {
		data, dataPath = e.Data, s.Own.Child("data")
	}
	if isNull(data) {
		data = json.RawMessage(`{}`)
	}
	out.Data, more = checkData(data, dataPath, method)
	errs = append(errs, more...)
	out.Metadata, more = load.Merge(s, "metadata", e.Metadata, def.Metadata, checkMetadata)
	errs = append(errs, more...)

	if rps, at := load.Pick(s, "rps", e.RPS, def.RPS); rps != nil {
		out.RPS = *rps
		fe := load.CheckRate(at, *rps)
		if fe == nil {
			fe = load.CheckWorkerRate(at, *rps, r.cfg.Workers, r.cfg.Duration)
		}
		if fe == nil && r.planned {
			fe = load.CheckPlan(at, *rps, r.cfg.Total, "total", 0, 0, r.cfg.Duration)
		}
		add(fe)
	}
	if conc, at := load.Pick(s, "concurrency", e.Concurrency, def.Concurrency); conc != nil {
		out.Concurrency = *conc
		if *conc < 1 || *conc > MaxConcurrency {
			add(field.Invalid(at, *conc, fmt.Sprintf("must be from 1 to %d", MaxConcurrency)))
		}
	}
	conns, connsPath := load.Pick(s, "connections", e.Connections, def.Connections)
	if conns != nil {
		out.Connections = *conns
		if *conns < 1 {
			add(field.Invalid(connsPath, *conns, "must be >= 1"))
		}
	}
	if out.Connections > out.Concurrency && out.Concurrency >= 1 {
		add(field.Invalid(connsPath, out.Connections,
			fmt.Sprintf("must not be above concurrency (%d): each connection carries at least one call at a time", out.Concurrency)))
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return out, nil
}

// resolveCall checks a call written at path, writes it as
// package.Service/Method and, when the methods are known, finds it.
func (r *resolver) resolveCall(call string, path *field.Path) (string, protoreflect.MethodDescriptor, *field.Error) {
	switch {
	case call == "":
		return "", nil, field.Required(path, "the method to call, such as helloworld.Greeter/SayHello")
	case !callPattern.MatchString(call):
		return "", nil, field.Invalid(path, call, "want package.Service/Method, such as helloworld.Greeter/SayHello")
	}
	if !strings.Contains(call, "/") {
		i := strings.LastIndex(call, ".")
		call = call[:i] + "/" + call[i+1:]
	}
	if r.methods == nil {
		return call, nil, nil
	}
	method, fe := r.methods.find(call, path)
	return call, method, fe
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
// that its templates expand, and, when the method is known, that it (as a
// sample call expands it) fits the method's input message. It returns data
// compacted, as the load tells a list from an object by its first byte.
func checkData(data json.RawMessage, path *field.Path, method protoreflect.MethodDescriptor) ([]byte, field.ErrorList) {
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
		if bytes.Contains(m, []byte("{{")) {
			var err error
			if m, err = expandSample(string(m), method); err != nil {
				errs = append(errs, field.Invalid(mp, field.OmitValueType{}, err.Error()))
				continue
			}
		}
		if method != nil {
			if err := checkMessage(method.Input(), m); err != nil {
				errs = append(errs, field.Invalid(mp, field.OmitValueType{}, err.Error()))
			}
		}
	}
	return compact, errs
}

// checkMetadata says what is wrong with one metadata entry, or "". A
// templated key or value is checked as a sample call expands it.
func checkMetadata(k, v string) string {
	if strings.Contains(k, "{{") || strings.Contains(v, "{{") {
		var ek, ev []byte
		var err error
		if ek, err = expandSample(k, nil); err == nil {
			ev, err = expandSample(v, nil)
		}
		if err != nil {
			return err.Error()
		}
		if problem := checkMetadataEntry(string(ek), string(ev)); problem != "" {
			return fmt.Sprintf("as a first call expands it (%q: %q): %s", ek, ev, problem)
		}
		return ""
	}
	return checkMetadataEntry(k, v)
}

func checkMetadataEntry(k, v string) string {
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
	if strings.HasSuffix(lk, "-bin") {
		if _, err := base64.StdEncoding.DecodeString(v); err != nil {
			return "a value of a key ending in -bin must be base64: " + err.Error()
		}
		return ""
	}
	for _, r := range v {
		if r < 0x20 || r > 0x7e {
			return "a metadata value holds printable ASCII only (use a key ending in -bin for binary values)"
		}
	}
	return ""
}

// expandSample expands a template of data or metadata as it would be for
// a first call to method (when known), so that a template that cannot work
// is refused before the load rather than failing every call.
func expandSample(text string, method protoreflect.MethodDescriptor) ([]byte, error) {
	t, err := parseTemplate(text)
	if err != nil {
		return nil, err
	}
	sample := &callData{WorkerID: "g0c0", FullyQualifiedName: "package.Service.Method", MethodName: "Method",
		ServiceName: "Service", InputName: "Input", OutputName: "Output", Timestamp: "2026-01-01T00:00:00Z",
		UUID: "00000000-0000-4000-8000-000000000000"}
	if method != nil {
		sample = (&caller{method: method}).callData("g0c0", 0)
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, sample); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
