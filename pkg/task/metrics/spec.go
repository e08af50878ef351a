package metrics

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
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
	var errs field.ErrorList
	t := &Task{Provider: in.Provider, AllowMissing: in.AllowMissing, auth: in.Auth, versions: d.Versions}

	// Providers: the built-in ones and the spec's own.
	specs := builtins()
	inline := map[string]int{}
	for i := range in.Providers {
		ps := &in.Providers[i]
		p := d.Path.Child("providers").Index(i)
		if _, dup := specs[ps.Name]; dup {
			if _, inl := inline[ps.Name]; inl {
				errs = append(errs, field.Duplicate(p.Child("name"), ps.Name))
			} else {
				errs = append(errs, field.Invalid(p.Child("name"), ps.Name, "a built-in provider has this name; choose another"))
			}
			continue
		}
		inline[ps.Name] = i
		specs[ps.Name] = ps
	}
	var prov *provider
	provPath := d.Path.Child("provider")
	switch ps, ok := specs[in.Provider]; {
	case in.Provider == "":
		errs = append(errs, field.Required(provPath, "a built-in provider ("+joinNames(BuiltinProviders())+") or one of providers"))
	case !ok:
		errs = append(errs, field.NotSupported(provPath, in.Provider, slices.Sorted(maps.Keys(specs))))
	default:
		p := provPath
		if i, ok := inline[in.Provider]; ok {
			p = d.Path.Child("providers").Index(i)
		}
		var perrs field.ErrorList
		prov, perrs = compileProvider(ps, p)
		errs = append(errs, perrs...)
	}
	// Inline providers that are not used are still checked.
	for name, i := range inline {
		if name != in.Provider {
			_, perrs := compileProvider(&in.Providers[i], d.Path.Child("providers").Index(i))
			errs = append(errs, perrs...)
		}
	}

	if prov != nil {
		t.metrics = prov.metrics
		t.apiKey = prov.apiKeyHeader
		seen := map[string]bool{}
		for _, m := range prov.metrics {
			seen[m.name] = true
		}
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
			m, merrs := compileMetric(q, prov, qp)
			errs = append(errs, merrs...)
			t.metrics = append(t.metrics, m)
		}
		if len(t.metrics) == 0 {
			errs = append(errs, field.Required(d.Path.Child("queries"),
				fmt.Sprintf("provider %s has no metrics of its own; give queries, each a name and a query", prov.name)))
		}
		endpoint := in.Endpoint
		if endpoint == "" {
			endpoint = prov.endpoint
		}
		if endpoint != "" {
			u, fe := d.URL(endpoint, d.Path.Child("endpoint"), "http://prometheus.monitoring:9090")
			if fe != nil {
				errs = append(errs, fe)
			}
			t.endpoint = u
		}
	}

	var fe *field.Error
	if t.Window, fe = d.DurationAtMost(in.Window, 0, MaxWindow, d.Path.Child("window")); fe != nil {
		errs = append(errs, fe)
	}
	if t.Timeout, fe = d.Duration(in.Timeout, DefaultTimeout, d.Path.Child("timeout")); fe != nil {
		errs = append(errs, fe)
	}
	if t.Timeout == 0 {
		t.Timeout = DefaultTimeout
	}
	errs = append(errs, checkAuth(in.Auth, t.apiKey, d.Path.Child("auth"))...)

	// Values.
	for _, k := range slices.Sorted(maps.Keys(in.Values)) {
		if slices.Contains(reserved, k) {
			errs = append(errs, field.Invalid(d.Path.Child("values").Key(k), field.OmitValueType{}, "the task sets this value itself"))
		}
	}
	if len(in.VersionValues) > len(d.Versions) {
		errs = append(errs, field.TooMany(d.Path.Child("versionValues"), len(in.VersionValues), len(d.Versions)))
	}
	for i, v := range d.Versions {
		merged := maps.Clone(in.Values)
		if merged == nil {
			merged = map[string]any{}
		}
		if i < len(in.VersionValues) {
			for _, k := range slices.Sorted(maps.Keys(in.VersionValues[i])) {
				if slices.Contains(reserved, k) {
					errs = append(errs, field.Invalid(d.Path.Child("versionValues").Index(i).Key(k), field.OmitValueType{}, "the task sets this value itself"))
				}
				merged[k] = in.VersionValues[i][k]
			}
		}
		merged["version"] = v
		t.values = append(t.values, merged)
	}

	if len(errs) > 0 {
		return nil, errs
	}
	// Every template is tried with each version's values, so that a value a
	// template needs but the spec lacks is found before anything runs.
	for i, v := range d.Versions {
		p := d.Path.Child("values")
		if i < len(in.VersionValues) {
			p = d.Path.Child("versionValues").Index(i)
		}
		sample := sampleTimes(time.Unix(1700000000, 0).UTC(), time.Minute)
		for _, m := range t.metrics {
			if _, err := t.render(m, t.data(i, sample)); err != nil {
				errs = append(errs, field.Invalid(p, field.OmitValueType{},
					fmt.Sprintf("metric %s for version %q: %v", m.name, v, err)))
			}
		}
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
		if a.APIKey.Header == "" && defaultHeader == "" {
			errs = append(errs, field.Required(p.Child("apiKey", "header"), "the header that carries the key, such as X-Api-Key"))
		}
	}
	for _, h := range slices.Sorted(maps.Keys(a.HeadersFrom)) {
		name(p.Child("headersFrom").Key(h), a.HeadersFrom[h])
	}
	if kinds > 1 {
		errs = append(errs, field.Invalid(p, field.OmitValueType{}, "give one of bearerFrom, basic and apiKey"))
	}
	return errs
}

func joinNames(names []string) string {
	out := ""
	for i, n := range names {
		if i > 0 {
			out += ", "
		}
		out += n
	}
	return out
}
