package experiment

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Task is one step of an experiment, decoded and validated.
type Task interface {
	// Run does the task's work, writing what it measures into env.Result.
	// An error fails the experiment.
	Run(ctx context.Context, env *Env) error
}

// Env is what a running task may use.
type Env struct {
	// Result is the result so far; tasks add metrics and verdicts to it.
	Result *Result
	// Versions are the versions under test.
	Versions []string
	// Log receives progress lines meant for people.
	Log *slog.Logger
	// Progress receives live progress output (a terminal bar or periodic
	// lines); it may be io.Discard.
	Progress io.Writer
	// Secret looks up a named secret (an environment variable locally); the
	// value must never reach the result, a log line or an error.
	Secret func(name string) (string, bool)
	// Now is the clock.
	Now func() time.Time
	// Kube returns a reader of Kubernetes objects and the default
	// namespace, connecting on first use; nil when there is no cluster.
	Kube func() (ObjectReader, string, error)
}

// ObjectReader reads Kubernetes objects for tasks. The core imports no
// client-go: pkg/kube adapts a dynamic client to it. Get reads one object by
// name; List reads the objects of a resource in a namespace whose labels
// match labelSelector (in the API server's syntax, such as
// "kubernetes.io/service-name=app"; empty matches all). Errors are the API
// server's (k8s.io/apimachinery/pkg/api/errors tells them apart).
type ObjectReader interface {
	Get(ctx context.Context, gvr schema.GroupVersionResource, namespace, name string) (*unstructured.Unstructured, error)
	List(ctx context.Context, gvr schema.GroupVersionResource, namespace, labelSelector string) (*unstructured.UnstructuredList, error)
}

// Decoder turns a task's `with` block into a Task, reporting every problem
// with its path.
type Decoder func(d *Decoding) (Task, field.ErrorList)

// Decoding is what a Decoder is given.
type Decoding struct {
	// With is the raw `with` block (JSON); it may be empty.
	With json.RawMessage
	// Path is the path of the `with` block, for error messages.
	Path *field.Path
	// Versions are the versions under test.
	Versions []string
	// Metrics lists the metrics that earlier tasks produce; a task that
	// produces metrics adds them, a task that reads metrics checks them.
	Metrics *Catalog
	// ReadFile reads a file named in the spec, relative to the spec's folder.
	ReadFile func(name string) ([]byte, error)
}

// Into decodes the `with` block strictly into v.
func (d *Decoding) Into(v any) field.ErrorList {
	return DecodeStrict(d.With, v, d.Path)
}

// Duration parses a duration field (such as "30s"); empty gives def.
func (d *Decoding) Duration(s string, def time.Duration, path *field.Path) (time.Duration, *field.Error) {
	if s == "" {
		return def, nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, field.Invalid(path, s, "want a duration such as 500ms, 30s or 2m")
	}
	if v < 0 {
		return 0, field.Invalid(path, s, "must not be negative")
	}
	return v, nil
}

// URL parses an http:// or https:// URL field; what field to name is path.
func (d *Decoding) URL(raw string, path *field.Path, example string) (*url.URL, *field.Error) {
	u, err := url.Parse(raw)
	switch {
	case raw == "":
		return nil, field.Required(path, "a URL such as "+example)
	case err != nil:
		return nil, field.Invalid(path, raw, "not a URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, field.Invalid(path, u.Redacted(), "want an http:// or https:// URL")
	case u.Host == "":
		return nil, field.Invalid(path, u.Redacted(), "the URL has no host")
	}
	return u, nil
}

// Registry maps task names to decoders.
type Registry struct {
	decoders map[string]Decoder
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{decoders: map[string]Decoder{}}
}

// Register adds a task; it panics on a duplicate name, a programming error
// found at start-up.
func (r *Registry) Register(name string, d Decoder) {
	if _, dup := r.decoders[name]; dup {
		panic(fmt.Sprintf("task %q registered twice", name))
	}
	r.decoders[name] = d
}

// Names lists the registered tasks in order.
func (r *Registry) Names() []string {
	return slices.Sorted(maps.Keys(r.decoders))
}

func (r *Registry) lookup(name string) (Decoder, bool) {
	d, ok := r.decoders[name]
	return d, ok
}

// Catalog records which metrics earlier tasks produce for which versions, so
// that a task reading metrics (assess) can be checked before anything runs.
type Catalog struct {
	versions []string
	metrics  map[string]map[string]bool // version → metric
	// evidence maps version → metric → what stands behind its value
	// (EvidenceHistogram, or a stats.SampleKind), for comparisons.
	evidence map[string]map[string]string
	// incomplete is set once a task fails to decode: the metrics it would
	// produce are unknown, so absence proves nothing.
	incomplete bool
}

func newCatalog(versions []string) *Catalog {
	c := &Catalog{versions: versions, metrics: map[string]map[string]bool{}, evidence: map[string]map[string]string{}}
	for _, v := range versions {
		c.metrics[v] = map[string]bool{}
		c.evidence[v] = map[string]string{}
	}
	return c
}

// Add records that metric will be produced for version.
func (c *Catalog) Add(version, metric string) {
	if m, ok := c.metrics[version]; ok {
		m[metric] = true
	}
}

// EvidenceHistogram is the evidence of a histogram metric (http/latency).
const EvidenceHistogram = "histogram"

// AddEvidence records that metric will have evidence of a kind for version:
// a histogram (EvidenceHistogram) or a sample (a stats.SampleKind).
func (c *Catalog) AddEvidence(version, metric, kind string) {
	if m, ok := c.evidence[version]; ok {
		m[metric] = kind
	}
}

// Evidence returns the kind of evidence behind metric for version.
func (c *Catalog) Evidence(version, metric string) (string, bool) {
	k, ok := c.evidence[version][metric]
	return k, ok
}

// KnownEvidence lists every metric with evidence, sorted.
func (c *Catalog) KnownEvidence() []string { return names(c.evidence) }

// Has reports whether metric is produced for version.
func (c *Catalog) Has(version, metric string) bool {
	return c.metrics[version][metric]
}

// Incomplete reports whether an earlier task failed to decode, so that a
// metric's absence proves nothing (and is not worth an error of its own).
func (c *Catalog) Incomplete() bool { return c.incomplete }

// Producers lists the versions for which metric is produced.
func (c *Catalog) Producers(metric string) []string {
	var out []string
	for _, v := range c.versions {
		if c.metrics[v][metric] {
			out = append(out, v)
		}
	}
	return out
}

// Known lists every produced metric name, sorted.
func (c *Catalog) Known() []string { return names(c.metrics) }

// names lists the metric names of a version → metric map, sorted.
func names[V any](byVersion map[string]map[string]V) []string {
	set := map[string]bool{}
	for _, m := range byVersion {
		for name := range m {
			set[name] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// Percentile formats a percentile for a metric name: 99.9 → "p99.9".
func Percentile(p float64) string {
	return "p" + strings.TrimSuffix(strconv.FormatFloat(p, 'f', -1, 64), ".0")
}
