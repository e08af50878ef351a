package metrics

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"net/http"
	"path"
	"regexp"
	"slices"
	"strings"
	"text/template"

	"github.com/itchyny/gojq"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"

	"github.com/iter8-tools/iter8/pkg/experiment"
)

//go:embed providers/*.yaml
var providerFiles embed.FS

// ProviderSpec is a metrics provider as written in a provider file (under
// providers/) or inline in a spec's `providers`.
type ProviderSpec struct {
	// Name is the provider's name; metrics are stored as <name>/<metric>.
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Endpoint is the default base URL when the spec gives none (a SaaS
	// API such as https://api.newrelic.com).
	Endpoint string `json:"endpoint,omitempty"`
	// APIKeyHeader is the default header of auth.apiKey.
	APIKeyHeader string `json:"apiKeyHeader,omitempty"`
	// Request and JQ are the defaults of every metric that gives none; a
	// query provider (prometheus, newrelic, ...) sets them and leaves the
	// query itself to each metric or to the spec's `queries`.
	Request *RequestSpec `json:"request,omitempty"`
	JQ      string       `json:"jq,omitempty"`
	// Metrics are the provider's own metrics.
	Metrics []MetricSpec `json:"metrics,omitempty"`
}

// MetricSpec is one metric of a provider.
type MetricSpec struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Units such as msec; empty for counts and ratios.
	Units string `json:"units,omitempty"`
	// Type is counter or gauge (default gauge).
	Type string `json:"type,omitempty"`
	// Query is a template rendered first; the request's templates see it as
	// .query.
	Query string `json:"query,omitempty"`
	// Request overrides the provider's request.
	Request *RequestSpec `json:"request,omitempty"`
	// JQ is a gojq expression applied to the JSON response; it must yield
	// exactly one number. It overrides the provider's.
	JQ string `json:"jq,omitempty"`
}

// RequestSpec is an HTTP request; every string but Method is a template.
type RequestSpec struct {
	// Method defaults to GET.
	Method string `json:"method,omitempty"`
	// URL is relative to the endpoint, or absolute.
	URL     string            `json:"url"`
	Params  []ParamSpec       `json:"params,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    string            `json:"body,omitempty"`
}

// ParamSpec is one query parameter.
type ParamSpec struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// The metric types.
const (
	TypeCounter = "counter"
	TypeGauge   = "gauge"
)

// provider is a compiled provider.
type provider struct {
	name         string
	endpoint     string
	apiKeyHeader string
	metrics      []*metric
	// request and jq are kept compiled for the spec's queries.
	request *request
	jq      *gojq.Code
	jqSrc   string
}

// metric is a compiled metric: templates parsed, jq compiled.
type metric struct {
	name    string
	units   string
	query   *template.Template // nil: none
	request *request
	jq      *gojq.Code
}

type request struct {
	method  string
	url     *template.Template
	params  []param
	headers map[string]*template.Template
	body    *template.Template // nil: no body
}

type param struct {
	name  string
	value *template.Template
}

var nameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9_.]*[a-z0-9])?$`)

// funcs are the functions templates may use beyond text/template's own.
var funcs = template.FuncMap{
	// json writes v as JSON, such as a string quoted for a JSON body.
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
}

func parseTemplate(name, src string) (*template.Template, error) {
	return template.New(name).Option("missingkey=error").Funcs(funcs).Parse(src)
}

// compileJQ compiles a jq expression that sees nothing of the environment:
// $ENV and env would otherwise let an expression reach secrets.
func compileJQ(src string) (*gojq.Code, error) {
	q, err := gojq.Parse(src)
	if err != nil {
		return nil, err
	}
	return gojq.Compile(q, gojq.WithEnvironLoader(func() []string { return nil }))
}

// builtins returns the embedded providers by name; it panics when one does
// not compile, a programming error that the tests catch.
func builtins() map[string]*ProviderSpec {
	out := map[string]*ProviderSpec{}
	entries, err := fs.ReadDir(providerFiles, "providers")
	if err != nil {
		panic(err)
	}
	for _, e := range entries {
		data, err := providerFiles.ReadFile(path.Join("providers", e.Name()))
		if err != nil {
			panic(err)
		}
		var p ProviderSpec
		jsonData, err := yaml.YAMLToJSONStrict(data)
		if err != nil {
			panic(fmt.Sprintf("provider file %s: %v", e.Name(), err))
		}
		if errs := experiment.DecodeStrict(jsonData, &p, nil); len(errs) > 0 {
			panic(fmt.Sprintf("provider file %s: %v", e.Name(), errs.ToAggregate()))
		}
		out[p.Name] = &p
	}
	return out
}

// BuiltinProviders lists the names of the embedded providers, sorted.
func BuiltinProviders() []string {
	var names []string
	for n := range builtins() {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// compileProvider checks and compiles a provider, reporting problems under p.
func compileProvider(ps *ProviderSpec, p *field.Path) (*provider, field.ErrorList) {
	var errs field.ErrorList
	if !nameRE.MatchString(ps.Name) {
		errs = append(errs, field.Invalid(p.Child("name"), ps.Name, "want lowercase letters, digits, '-', '_' and '.'"))
	}
	out := &provider{name: ps.Name, endpoint: ps.Endpoint, apiKeyHeader: ps.APIKeyHeader, jqSrc: ps.JQ}
	if ps.Request != nil {
		r, rerrs := compileRequest(ps.Request, p.Child("request"))
		errs = append(errs, rerrs...)
		out.request = r
	}
	if ps.JQ != "" {
		code, err := compileJQ(ps.JQ)
		if err != nil {
			errs = append(errs, field.Invalid(p.Child("jq"), ps.JQ, "jq: "+err.Error()))
		}
		out.jq = code
	}
	seen := map[string]bool{}
	for i, ms := range ps.Metrics {
		mp := p.Child("metrics").Index(i)
		if seen[ms.Name] {
			errs = append(errs, field.Duplicate(mp.Child("name"), ms.Name))
		}
		seen[ms.Name] = true
		m, merrs := compileMetric(&ms, out, mp)
		errs = append(errs, merrs...)
		out.metrics = append(out.metrics, m)
	}
	return out, errs
}

// compileMetric compiles one metric, falling back on the provider's request
// and jq.
func compileMetric(ms *MetricSpec, prov *provider, p *field.Path) (*metric, field.ErrorList) {
	var errs field.ErrorList
	if !nameRE.MatchString(ms.Name) {
		errs = append(errs, field.Invalid(p.Child("name"), ms.Name, "want lowercase letters, digits, '-', '_' and '.'"))
	}
	switch ms.Type {
	case "", TypeCounter, TypeGauge:
	default:
		errs = append(errs, field.NotSupported(p.Child("type"), ms.Type, []string{TypeCounter, TypeGauge}))
	}
	m := &metric{name: ms.Name, units: ms.Units, request: prov.request, jq: prov.jq}
	if ms.Query != "" {
		t, err := parseTemplate("query", ms.Query)
		if err != nil {
			errs = append(errs, field.Invalid(p.Child("query"), ms.Query, err.Error()))
		}
		m.query = t
	}
	if ms.Request != nil {
		r, rerrs := compileRequest(ms.Request, p.Child("request"))
		errs = append(errs, rerrs...)
		m.request = r
	} else if prov.request == nil {
		errs = append(errs, field.Required(p.Child("request"), "the provider has no request of its own"))
	}
	if ms.JQ != "" {
		code, err := compileJQ(ms.JQ)
		if err != nil {
			errs = append(errs, field.Invalid(p.Child("jq"), ms.JQ, "jq: "+err.Error()))
		}
		m.jq = code
	} else if prov.jq == nil {
		errs = append(errs, field.Required(p.Child("jq"), "the provider has no jq of its own"))
	}
	return m, errs
}

func compileRequest(rs *RequestSpec, p *field.Path) (*request, field.ErrorList) {
	var errs field.ErrorList
	r := &request{method: strings.ToUpper(rs.Method), headers: map[string]*template.Template{}}
	if r.method == "" {
		r.method = http.MethodGet
	}
	switch r.method {
	case http.MethodGet, http.MethodPost, http.MethodPut:
	default:
		errs = append(errs, field.NotSupported(p.Child("method"), rs.Method, []string{http.MethodGet, http.MethodPost, http.MethodPut}))
	}
	var err error
	if rs.URL == "" {
		errs = append(errs, field.Required(p.Child("url"), "a URL template, relative to the endpoint or absolute"))
	} else if r.url, err = parseTemplate("url", rs.URL); err != nil {
		errs = append(errs, field.Invalid(p.Child("url"), rs.URL, err.Error()))
	}
	for i, ps := range rs.Params {
		pp := p.Child("params").Index(i)
		if ps.Name == "" {
			errs = append(errs, field.Required(pp.Child("name"), ""))
		}
		t, err := parseTemplate(ps.Name, ps.Value)
		if err != nil {
			errs = append(errs, field.Invalid(pp.Child("value"), ps.Value, err.Error()))
		}
		r.params = append(r.params, param{name: ps.Name, value: t})
	}
	for _, h := range slices.Sorted(maps.Keys(rs.Headers)) {
		t, err := parseTemplate(h, rs.Headers[h])
		if err != nil {
			errs = append(errs, field.Invalid(p.Child("headers").Key(h), rs.Headers[h], err.Error()))
		}
		r.headers[h] = t
	}
	if rs.Body != "" {
		if r.body, err = parseTemplate("body", rs.Body); err != nil {
			errs = append(errs, field.Invalid(p.Child("body"), rs.Body, err.Error()))
		}
	}
	return r, errs
}
