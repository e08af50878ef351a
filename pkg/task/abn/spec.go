package abn

import (
	"net/url"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/iter8-tools/iter8/pkg/abn/ledger"
	"github.com/iter8-tools/iter8/pkg/experiment"
)

// Name is the task's name in a spec.
const Name = "abn"

// DefaultTimeout bounds the request to the service.
const DefaultTimeout = 10 * time.Second

// MetricsPrefix starts every metric the task stores.
const MetricsPrefix = "abn/"

// UsersMetric is the users exposed to a version.
const UsersMetric = MetricsPrefix + "users"

// The suffixes of each business metric's names, <prefix><metric><suffix>.
const (
	PerUserSuffix    = "-per-user"
	ConversionSuffix = "-conversion"
	usersSuffix      = "-users"
)

// transactionSuffixes are the suffixes of the values over writes.
var transactionSuffixes = []string{"-count", "-sum", "-mean", "-stddev", "-min", "-max"}

// inputs is the `with` block as written.
type inputs struct {
	// Endpoint is the service's HTTP address, such as
	// http://abn.iter8-system:8080.
	Endpoint string `json:"endpoint"`
	// Application is the app as NAMESPACE/NAME.
	Application string `json:"application"`
	// Metrics are the business metrics to read, as the frontend writes
	// them (purchase, click).
	Metrics []string `json:"metrics"`
	Timeout string   `json:"timeout,omitempty"`
}

// Task is the decoded abn task.
type Task struct {
	// Application is NAMESPACE/NAME.
	Application string
	// Metrics are the business metrics read, without the prefix.
	Metrics []string
	// Timeout bounds the request.
	Timeout time.Duration

	summaryURL *url.URL
	versions   []string
}

// Decode validates the task's `with` block and declares what it stores for
// every version.
func Decode(d *experiment.Decoding) (experiment.Task, field.ErrorList) {
	var in inputs
	if errs := d.Into(&in); len(errs) > 0 {
		return nil, errs
	}
	t := &Task{Application: in.Application, Metrics: in.Metrics, versions: d.Versions}
	var errs field.ErrorList
	for _, v := range d.Versions {
		if v == "" {
			errs = append(errs, field.Required(field.NewPath("spec", "versions"),
				"the abn task reads versions by name: name them as the application's release does, such as [v1, v2]"))
			break
		}
	}
	u, fe := d.URL(in.Endpoint, d.Path.Child("endpoint"), "http://abn.iter8-system:8080")
	if fe != nil {
		errs = append(errs, fe)
	} else if u.Path != "" && u.Path != "/" || u.RawQuery != "" {
		errs = append(errs, field.Invalid(d.Path.Child("endpoint"), u.Redacted(), "give the service's address only, such as http://abn.iter8-system:8080: the task adds /v1/summary"))
	} else {
		t.summaryURL = &url.URL{Scheme: u.Scheme, User: u.User, Host: u.Host, Path: "/v1/summary"}
		// The totals only: buckets grow with the test's length, and the
		// task reads none of them.
		t.summaryURL.RawQuery = url.Values{"application": {in.Application}, "buckets": {"false"}}.Encode()
	}
	if ns, name, ok := strings.Cut(in.Application, "/"); !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		errs = append(errs, field.Invalid(d.Path.Child("application"), in.Application, "want NAMESPACE/NAME, such as default/backend"))
	}
	if len(in.Metrics) == 0 {
		errs = append(errs, field.Required(d.Path.Child("metrics"), "the business metrics to read, as the frontend writes them, such as [purchase]"))
	}
	for i, m := range in.Metrics {
		p := d.Path.Child("metrics").Index(i)
		if err := ledger.CheckMetricName(m); err != nil {
			errs = append(errs, field.Invalid(p, m, strings.TrimPrefix(err.Error(), "metric: ")))
		} else if slices.Index(in.Metrics, m) < i {
			errs = append(errs, field.Duplicate(p, m))
		}
	}
	if t.Timeout, fe = d.PositiveDuration(in.Timeout, DefaultTimeout, d.Path.Child("timeout")); fe != nil {
		errs = append(errs, fe)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	for _, v := range d.Versions {
		d.Metrics.Add(v, UsersMetric)
		for _, m := range t.Metrics {
			base := MetricsPrefix + m
			d.Metrics.Add(v, base+PerUserSuffix)
			d.Metrics.AddEvidence(v, base+PerUserSuffix, experiment.EvidenceMean)
			d.Metrics.Add(v, base+ConversionSuffix)
			d.Metrics.AddEvidence(v, base+ConversionSuffix, experiment.EvidenceRate)
			d.Metrics.Add(v, base+usersSuffix)
			for _, s := range transactionSuffixes {
				d.Metrics.Add(v, base+s)
			}
		}
	}
	return t, nil
}
