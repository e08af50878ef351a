package metrics

import (
	"cmp"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/iter8-tools/iter8/pkg/experiment"
)

// MaxWindow bounds the window that metrics are read over: unlike a wait, a
// window of days is a fair question to ask a backend (business metrics
// over a week), but not one of years.
const MaxWindow = 366 * 24 * time.Hour

// Name is the task's name in a spec.
const Name = "metrics"

// DefaultTimeout bounds each request to the backend.
const DefaultTimeout = 10 * time.Second

// inputs is the `with` block as written.
type inputs struct {
	Provider      string           `json:"provider"`
	Endpoint      string           `json:"endpoint,omitempty"`
	Auth          *authIn          `json:"auth,omitempty"`
	Values        map[string]any   `json:"values,omitempty"`
	VersionValues []map[string]any `json:"versionValues,omitempty"`
	Window        string           `json:"window,omitempty"`
	Timeout       string           `json:"timeout,omitempty"`
	AllowMissing  bool             `json:"allowMissing,omitempty"`
	Queries       []MetricSpec     `json:"queries,omitempty"`
	Providers     []ProviderSpec   `json:"providers,omitempty"`
}

// authIn names secrets, never values: every field ending in From names a
// secret looked up through experiment.Env.Secret at run time.
type authIn struct {
	BearerFrom  string            `json:"bearerFrom,omitempty"`
	Basic       *basicIn          `json:"basic,omitempty"`
	APIKey      *apiKeyIn         `json:"apiKey,omitempty"`
	HeadersFrom map[string]string `json:"headersFrom,omitempty"`
}

type basicIn struct {
	UsernameFrom string `json:"usernameFrom"`
	PasswordFrom string `json:"passwordFrom"`
}

type apiKeyIn struct {
	Header  string `json:"header,omitempty"`
	KeyFrom string `json:"keyFrom"`
}

// reserved are the template values that the task sets.
var reserved = []string{"version", "window", "windowSeconds", "startTime", "endTime", "startUnix", "endUnix", "startSeconds", "endSeconds", "query"}

// Task is the decoded metrics task.
type Task struct {
	// Provider is the provider's name, the prefix of every metric.
	Provider string
	// AllowMissing lets the task succeed when metrics are unavailable; the
	// reasons are logged and recorded in the result.
	AllowMissing bool
	// Window is the time over which metrics are read; zero means since the
	// experiment started.
	Window time.Duration
	// Timeout bounds each request.
	Timeout time.Duration

	endpoint *url.URL // nil: every metric URL is absolute
	metrics  []*metric
	auth     *authIn
	// values per version, in Versions order, merged over the common ones.
	versions []string
	values   []map[string]any
	apiKey   string // header of auth.apiKey
}

// Metrics lists the names the task stores, <provider>/<metric>.
func (t *Task) Metrics() []string {
	out := make([]string, len(t.metrics))
	for i, m := range t.metrics {
		out[i] = t.Provider + "/" + m.name
	}
	return out
}

// Decode validates the task's `with` block and declares the metrics it
// produces for every version.
func Decode(d *experiment.Decoding) (experiment.Task, field.ErrorList) {
	var in inputs
	if errs := d.Into(&in); len(errs) > 0 {
		return nil, errs
	}
	t := &Task{Provider: in.Provider, AllowMissing: in.AllowMissing, auth: in.Auth, versions: d.Versions}
	prov, errs := decodeProvider(&in, d.Path)
	if prov != nil {
		errs = append(errs, t.useProvider(d, prov, &in)...)
	}
	var fe *field.Error
	if t.Window, fe = d.DurationAtMost(in.Window, 0, MaxWindow, d.Path.Child("window")); fe != nil {
		errs = append(errs, fe)
	}
	if t.Timeout, fe = d.PositiveDuration(in.Timeout, DefaultTimeout, d.Path.Child("timeout")); fe != nil {
		errs = append(errs, fe)
	}
	errs = append(errs, checkAuth(in.Auth, t.apiKey, d.Path.Child("auth"))...)
	t.values = versionValues(in.Values, in.VersionValues, d.Versions, d.Path, &errs)
	if len(errs) == 0 {
		errs = t.tryTemplates(len(in.VersionValues), d.Path)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	for _, v := range d.Versions {
		for _, name := range t.Metrics() {
			d.Metrics.Add(v, name)
		}
	}
	return t, nil
}

// decodeProvider compiles the provider that the task names, one of the
// spec's own or a built-in one; the spec's own are all checked, used or not.
func decodeProvider(in *inputs, path *field.Path) (*provider, field.ErrorList) {
	specs := builtins()
	own := map[string]bool{}
	var prov *provider
	var errs field.ErrorList
	for i := range in.Providers {
		ps := &in.Providers[i]
		p := path.Child("providers").Index(i)
		if _, dup := specs[ps.Name]; dup {
			if own[ps.Name] {
				errs = append(errs, field.Duplicate(p.Child("name"), ps.Name))
			} else {
				errs = append(errs, field.Invalid(p.Child("name"), ps.Name, "a built-in provider has this name; choose another"))
			}
			continue
		}
		specs[ps.Name], own[ps.Name] = ps, true
		compiled, perrs := compileProvider(ps, p)
		errs = append(errs, perrs...)
		if ps.Name == in.Provider {
			prov = compiled
		}
	}
	switch ps, ok := specs[in.Provider]; {
	case in.Provider == "":
		errs = append(errs, field.Required(path.Child("provider"), "a built-in provider ("+strings.Join(BuiltinProviders(), ", ")+") or one of providers"))
	case !ok:
		errs = append(errs, field.NotSupported(path.Child("provider"), in.Provider, slices.Sorted(maps.Keys(specs))))
	case !own[in.Provider]:
		var perrs field.ErrorList
		prov, perrs = compileProvider(ps, path.Child("provider"))
		errs = append(errs, perrs...)
	}
	return prov, errs
}

// useProvider takes the provider's metrics, the spec's queries and the
// endpoint (the spec's, else the provider's default).
func (t *Task) useProvider(d *experiment.Decoding, prov *provider, in *inputs) field.ErrorList {
	t.metrics = prov.metrics
	t.apiKey = prov.apiKeyHeader
	seen := map[string]bool{}
	for _, m := range prov.metrics {
		seen[m.name] = true
	}
	var errs field.ErrorList
	for i := range in.Queries {
		q := &in.Queries[i]
		qp := d.Path.Child("queries").Index(i)
		if q.Query == "" && q.Request == nil {
			errs = append(errs, field.Required(qp.Child("query"), "the query (a template) that the provider's request sends"))
		}
		if seen[q.Name] {
			errs = append(errs, field.Duplicate(qp.Child("name"), q.Name))
		}
		seen[q.Name] = true
		t.metrics = append(t.metrics, compileMetric(q, prov, qp, &errs))
	}
	if len(t.metrics) == 0 {
		errs = append(errs, field.Required(d.Path.Child("queries"),
			fmt.Sprintf("provider %s has no metrics of its own; give queries, each a name and a query", prov.name)))
	}
	if endpoint := cmp.Or(in.Endpoint, prov.endpoint); endpoint != "" {
		u, fe := d.URL(endpoint, d.Path.Child("endpoint"), "http://prometheus.monitoring:9090")
		if fe != nil {
			errs = append(errs, fe)
		}
		t.endpoint = u
	}
	return errs
}

// versionValues merges each version's values over the common ones and sets
// version; the values that the task sets itself are refused, in errs.
func versionValues(common map[string]any, own []map[string]any, versions []string, path *field.Path, errs *field.ErrorList) []map[string]any {
	checkReserved(common, path.Child("values"), errs)
	if len(own) > len(versions) {
		*errs = append(*errs, field.TooMany(path.Child("versionValues"), len(own), len(versions)))
	}
	out := make([]map[string]any, len(versions))
	for i, v := range versions {
		out[i] = map[string]any{}
		maps.Copy(out[i], common)
		if i < len(own) {
			checkReserved(own[i], path.Child("versionValues").Index(i), errs)
			maps.Copy(out[i], own[i])
		}
		out[i]["version"] = v
	}
	return out
}

func checkReserved(values map[string]any, p *field.Path, errs *field.ErrorList) {
	for _, k := range slices.Sorted(maps.Keys(values)) {
		if slices.Contains(reserved, k) {
			*errs = append(*errs, field.Invalid(p.Key(k), field.OmitValueType{}, "the task sets this value itself"))
		}
	}
}

// tryTemplates renders every template with each version's values, so that
// a value that a template needs but the spec lacks is found before anything
// runs; ownValues is how many versions have values of their own.
func (t *Task) tryTemplates(ownValues int, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	sample := sampleTimes(time.Unix(1700000000, 0).UTC(), time.Minute)
	for i, v := range t.versions {
		p := path.Child("values")
		if i < ownValues {
			p = path.Child("versionValues").Index(i)
		}
		for _, m := range t.metrics {
			if _, err := t.render(m, t.data(i, sample)); err != nil {
				errs = append(errs, field.Invalid(p, field.OmitValueType{},
					fmt.Sprintf("metric %s for version %q: %v", m.name, v, err)))
			}
		}
	}
	return errs
}

// checkHeaderName adds an error when name is not a header's name.
func checkHeaderName(name string, p *field.Path, errs *field.ErrorList) {
	if why := experiment.CheckHeader(name, ""); why != "" {
		*errs = append(*errs, field.Invalid(p, name, why))
	}
}

func checkAuth(a *authIn, defaultHeader string, p *field.Path) field.ErrorList {
	if a == nil {
		return nil
	}
	var errs field.ErrorList
	name := func(fp *field.Path, v string) {
		if fe := experiment.CheckSecretName(v, fp); fe != nil {
			errs = append(errs, fe)
		}
	}
	kinds := 0
	if a.BearerFrom != "" {
		kinds++
		name(p.Child("bearerFrom"), a.BearerFrom)
	}
	if a.Basic != nil {
		kinds++
		name(p.Child("basic", "usernameFrom"), a.Basic.UsernameFrom)
		name(p.Child("basic", "passwordFrom"), a.Basic.PasswordFrom)
	}
	if a.APIKey != nil {
		kinds++
		name(p.Child("apiKey", "keyFrom"), a.APIKey.KeyFrom)
		switch {
		case a.APIKey.Header == "" && defaultHeader == "":
			errs = append(errs, field.Required(p.Child("apiKey", "header"), "the header that carries the key, such as X-Api-Key"))
		case a.APIKey.Header != "":
			checkHeaderName(a.APIKey.Header, p.Child("apiKey", "header"), &errs)
		}
	}
	for _, h := range slices.Sorted(maps.Keys(a.HeadersFrom)) {
		checkHeaderName(h, p.Child("headersFrom").Key(h), &errs)
		name(p.Child("headersFrom").Key(h), a.HeadersFrom[h])
	}
	if kinds > 1 {
		errs = append(errs, field.Invalid(p, field.OmitValueType{}, "give one of bearerFrom, basic and apiKey"))
	}
	return errs
}
