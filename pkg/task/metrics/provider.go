package metrics

import (
	"cmp"
	"embed"
	"encoding/json"
	"fmt"
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

// ParseQuery checks that src parses as a query's template, as the task
// parses its queries, for callers that build a task's spec.
func ParseQuery(src string) error {
	_, err := template.New("query").Option("missingkey=error").Funcs(funcs).Parse(src)
	return err
}

// parseTemplate parses the template of the field at p, adding a problem to
// errs.
func parseTemplate(name, src string, p *field.Path, errs *field.ErrorList) *template.Template {
	t, err := template.New(name).Option("missingkey=error").Funcs(funcs).Parse(src)
	if err != nil {
		*errs = append(*errs, field.Invalid(p, src, err.Error()))
	}
	return t
}

// compileJQ compiles the jq expression of the field at p so that it sees
// nothing of the environment: $ENV and env would otherwise let an
// expression reach secrets.
func compileJQ(src string, p *field.Path, errs *field.ErrorList) *gojq.Code {
	q, err := gojq.Parse(src)
	var code *gojq.Code
	if err == nil {
		code, err = gojq.Compile(q, gojq.WithEnvironLoader(func() []string { return nil }))
	}
	if err != nil {
		*errs = append(*errs, field.Invalid(p, src, "jq: "+err.Error()))
	}
	return code
}

// checkName checks a provider's or a metric's name, part of the metrics'
// names in the result.
func checkName(name string, p *field.Path) field.ErrorList {
	if nameRE.MatchString(name) {
		return nil
	}
	return field.ErrorList{field.Invalid(p, name, "want lowercase letters, digits, '-', '_' and '.'")}
}

// builtins returns the embedded providers by name; it panics when one does
// not compile, a programming error that the tests catch.
func builtins() map[string]*ProviderSpec {
	out := map[string]*ProviderSpec{}
	entries, err := providerFiles.ReadDir("providers")
	if err != nil {
		panic(err)
	}
	for _, e := range entries {
		data, err := providerFiles.ReadFile(path.Join("providers", e.Name()))
		if err == nil {
			data, err = yaml.YAMLToJSONStrict(data)
		}
		if err != nil {
			panic(fmt.Sprintf("provider file %s: %v", e.Name(), err))
		}
		var p ProviderSpec
		if errs := experiment.DecodeStrict(data, &p, nil); len(errs) > 0 {
			panic(fmt.Sprintf("provider file %s: %v", e.Name(), errs.ToAggregate()))
		}
		out[p.Name] = &p
	}
	return out
}

// BuiltinProviders lists the names of the embedded providers, sorted.
func BuiltinProviders() []string { return slices.Sorted(maps.Keys(builtins())) }

// compileProvider checks and compiles a provider, reporting problems under p.
func compileProvider(ps *ProviderSpec, p *field.Path) (*provider, field.ErrorList) {
	errs := checkName(ps.Name, p.Child("name"))
	out := &provider{name: ps.Name, endpoint: ps.Endpoint, apiKeyHeader: ps.APIKeyHeader}
	if ps.Request != nil {
		out.request = compileRequest(ps.Request, p.Child("request"), &errs)
	}
	if ps.JQ != "" {
		out.jq = compileJQ(ps.JQ, p.Child("jq"), &errs)
	}
	seen := map[string]bool{}
	for i, ms := range ps.Metrics {
		mp := p.Child("metrics").Index(i)
		if seen[ms.Name] {
			errs = append(errs, field.Duplicate(mp.Child("name"), ms.Name))
		}
		seen[ms.Name] = true
		out.metrics = append(out.metrics, compileMetric(&ms, out, mp, &errs))
	}
	return out, errs
}

// compileMetric compiles one metric, falling back on the provider's request
// and jq.
func compileMetric(ms *MetricSpec, prov *provider, p *field.Path, errs *field.ErrorList) *metric {
	*errs = append(*errs, checkName(ms.Name, p.Child("name"))...)
	switch ms.Type {
	case "", TypeCounter, TypeGauge:
	default:
		*errs = append(*errs, field.NotSupported(p.Child("type"), ms.Type, []string{TypeCounter, TypeGauge}))
	}
	m := &metric{name: ms.Name, units: ms.Units, request: prov.request, jq: prov.jq}
	if ms.Query != "" {
		m.query = parseTemplate("query", ms.Query, p.Child("query"), errs)
	}
	if ms.Request != nil {
		m.request = compileRequest(ms.Request, p.Child("request"), errs)
	} else if prov.request == nil {
		*errs = append(*errs, field.Required(p.Child("request"), "the provider has no request of its own"))
	}
	if ms.JQ != "" {
		m.jq = compileJQ(ms.JQ, p.Child("jq"), errs)
	} else if prov.jq == nil {
		*errs = append(*errs, field.Required(p.Child("jq"), "the provider has no jq of its own"))
	}
	return m
}

func compileRequest(rs *RequestSpec, p *field.Path, errs *field.ErrorList) *request {
	r := &request{method: cmp.Or(strings.ToUpper(rs.Method), http.MethodGet), headers: map[string]*template.Template{}}
	switch r.method {
	case http.MethodGet, http.MethodPost, http.MethodPut:
	default:
		*errs = append(*errs, field.NotSupported(p.Child("method"), rs.Method, []string{http.MethodGet, http.MethodPost, http.MethodPut}))
	}
	if rs.URL == "" {
		*errs = append(*errs, field.Required(p.Child("url"), "a URL template, relative to the endpoint or absolute"))
	} else {
		r.url = parseTemplate("url", rs.URL, p.Child("url"), errs)
	}
	for i, ps := range rs.Params {
		pp := p.Child("params").Index(i)
		if ps.Name == "" {
			*errs = append(*errs, field.Required(pp.Child("name"), ""))
		}
		r.params = append(r.params, param{name: ps.Name, value: parseTemplate(ps.Name, ps.Value, pp.Child("value"), errs)})
	}
	for _, h := range slices.Sorted(maps.Keys(rs.Headers)) {
		checkHeaderName(h, p.Child("headers").Key(h), errs)
		r.headers[h] = parseTemplate(h, rs.Headers[h], p.Child("headers").Key(h), errs)
	}
	if rs.Body != "" {
		r.body = parseTemplate("body", rs.Body, p.Child("body"), errs)
	}
	return r
}
