package experiment

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/net/http/httpguts"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/iter8-tools/iter8/pkg/stats"
)

// Task is one step of an experiment, decoded and validated.
type Task interface {
	// Run does the task's work, writing what it measures into env.Result.
	// An error fails the experiment.
	Run(ctx context.Context, env *Env) error
}

// A Watcher is a task that keeps acting between its runs, such as a
// rollout that takes the traffic away from a version that turns unready:
// after the task succeeds in a loop that is not the last, the runner
// calls Watch and runs what it returns in a goroutine until the task is
// about to run again or the run ends (it cancels ctx and waits for the
// function to return, so the two never overlap). Watch reads what it needs
// from env at once: the function must not touch env.Result, which other
// tasks change meanwhile; it may log through env.Logger().
type Watcher interface {
	Watch(env *Env) func(ctx context.Context)
}

// A FailureHandler is a task that must act when a failure ends the run,
// such as a rollout that puts back the weights from before it: the runner
// calls RunFailed once, with the failure, after stopping the watches; not
// for an interrupt, which a resumed run goes on from.
type FailureHandler interface {
	RunFailed(ctx context.Context, env *Env, failure error)
}

// Env is what a running task may use.
type Env struct {
	// Result is the result so far; tasks add metrics and verdicts to it.
	Result *Result
	// Versions are the versions under test.
	Versions []string
	// Log receives progress lines meant for people; nil discards them.
	// Tasks log through Logger.
	Log *slog.Logger
	// Progress receives live progress output (a terminal bar or periodic
	// lines); it may be io.Discard.
	Progress io.Writer
	// Secret looks up a named secret (an environment variable locally); the
	// value must never reach the result, a log line or an error.
	Secret func(name string) (string, bool)
	// Now is the clock; nil is the wall clock. Tasks read it through Time.
	Now func() time.Time
	// Kube returns a reader of Kubernetes objects and the default
	// namespace, connecting on first use; nil when there is no cluster.
	Kube func() (ObjectReader, string, error)
	// Releases returns what reads and changes app releases' weights,
	// connecting on first use; nil when there is no cluster.
	Releases func() (Releases, error)
	// NextLoopAt is when the next loop of the run starts; zero in the
	// last loop and in a run without loops.
	NextLoopAt time.Time
	// Task is the index of the running task in the plan.
	Task int
	// Workers runs a load task's workers in other processes; nil runs
	// them in this one.
	Workers WorkerPool
	// Worker, when set, makes this process one worker of the load task
	// Task: it runs no other task.
	Worker *WorkerRole
}

// Logger returns Log, or one that discards when Log is nil (a task run
// outside a Runner).
func (e *Env) Logger() *slog.Logger { return cmp.Or(e.Log, slog.New(slog.DiscardHandler)) }

// Time returns Now(), or the wall clock's time when Now is nil.
func (e *Env) Time() time.Time {
	if e.Now == nil {
		return time.Now()
	}
	return e.Now()
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
	// Loops is how often the tasks run (spec.loops, at least 1), a loop
	// every Interval (spec.interval; 0 runs them back to back).
	Loops    int
	Interval time.Duration
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

// MaxDuration bounds every duration a spec gives (load durations, timeouts,
// intervals) unless a field states its own bound: an experiment is meant to
// finish within a day, and a typo such as 30000h should be refused rather
// than leave a Job running for years.
const MaxDuration = 24 * time.Hour

// Duration parses a duration field (such as "30s") of at most MaxDuration;
// empty gives def.
func (d *Decoding) Duration(s string, def time.Duration, path *field.Path) (time.Duration, *field.Error) {
	return d.DurationAtMost(s, def, MaxDuration, path)
}

// PositiveDuration is Duration for a field that a zero would make useless (a
// timeout, an interval): 0s is refused; empty still gives def, even 0.
func (d *Decoding) PositiveDuration(s string, def time.Duration, path *field.Path) (time.Duration, *field.Error) {
	v, fe := d.Duration(s, def, path)
	if fe == nil && v == 0 && s != "" {
		return 0, field.Invalid(path, s, "must be above 0")
	}
	return v, fe
}

// DurationAtMost parses a duration field of at most max; empty gives def.
func (d *Decoding) DurationAtMost(s string, def, max time.Duration, path *field.Path) (time.Duration, *field.Error) {
	if s == "" {
		return def, nil
	}
	v, err := time.ParseDuration(s)
	switch {
	case err != nil:
		return 0, field.Invalid(path, s, "want a duration such as 500ms, 30s or 2m")
	case v < 0:
		return 0, field.Invalid(path, s, "must not be negative")
	case v > max:
		return 0, field.Invalid(path, s, "must be at most "+FormatDuration(max))
	}
	return v, nil
}

// FormatDuration writes a duration as people write it: 24h rather than
// 24h0m0s.
func FormatDuration(v time.Duration) string {
	s := v.String()
	for _, zero := range []string{"m0s", "h0m"} {
		if strings.HasSuffix(s, zero) {
			s = s[:len(s)-2]
		}
	}
	return s
}

// URL parses an http:// or https:// URL field with a host and, if it names
// one, a port from 1 to 65535; what field to name is path.
func (d *Decoding) URL(raw string, path *field.Path, example string) (*url.URL, *field.Error) {
	if raw == "" {
		return nil, field.Required(path, "a URL such as "+example)
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		// url.Error repeats the whole URL, which may hold a secret.
		return nil, field.Invalid(path, field.OmitValueType{}, "not a URL: want one such as "+example)
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, field.Invalid(path, u.Redacted(), "want an http:// or https:// URL")
	case u.Hostname() == "":
		// http://:8080/ has a Host (":8080") but no host name: Go's
		// client would send it to localhost, which is never what a spec
		// means.
		return nil, field.Invalid(path, u.Redacted(), "the URL has no host: want one such as "+example)
	case strings.HasSuffix(u.Host, ":"):
		return nil, field.Invalid(path, u.Redacted(), "the port is empty: give a number from 1 to 65535, or no colon")
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return nil, field.Invalid(path, u.Redacted(), "the port must be a number from 1 to 65535")
		}
	}
	return u, nil
}

// CheckHeader says what is wrong with a header (or metadata) field, or ""
// when there is nothing: the name must be a token and the value may hold no
// control characters (a NUL or a line break would be sent on the wire, or
// split the header). The value is never quoted, as it may be a secret.
func CheckHeader(name, value string) string {
	switch {
	case !httpguts.ValidHeaderFieldName(name):
		return "a header name is a token: letters, digits and !#$%&'*+-.^_`|~"
	case !httpguts.ValidHeaderFieldValue(value):
		return "a header value may not hold control characters (such as NUL or a line break)"
	}
	return ""
}

// ValidMethod reports whether m can be an HTTP method: a token, as a
// header's name is (RFC 9110).
func ValidMethod(m string) bool { return httpguts.ValidHeaderFieldName(m) }

// MaxFileSize bounds a file that a spec names (an http payload, a gRPC
// proto file, protoset or root certificate): far above any real one, and
// small enough that a wrong name (a disk image, a log) fails at once
// rather than filling memory.
const MaxFileSize = 16 << 20

// File reads a file that the spec names in the field at path, of at most
// MaxFileSize bytes, through ReadFile.
func (d *Decoding) File(name string, path *field.Path) ([]byte, *field.Error) {
	if d.ReadFile == nil {
		return nil, field.Invalid(path, name, "files cannot be read here")
	}
	data, err := d.ReadFile(name)
	switch {
	case err != nil:
		return nil, field.Invalid(path, name, fmt.Sprintf("cannot read it: %v", err))
	case len(data) > MaxFileSize:
		return nil, field.Invalid(path, name, fmt.Sprintf("larger than %d MiB: want a regular file of at most that size", MaxFileSize>>20))
	}
	return data, nil
}

// ReadRegularFile reads name, which must be a regular file of at most limit
// bytes. It is what a Decoding's ReadFile should use. Opening a named pipe
// blocks until a writer comes (and a process blocked in open(2) ignores
// Go's signal handling), and /dev/zero never ends; so the file is opened
// with O_NONBLOCK, which returns at once for a pipe, and checked with fstat
// before a byte is read. The size is checked again while reading, as a
// file may grow.
func ReadRegularFile(name string, limit int64) ([]byte, error) {
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is %s, not a regular file", name, fileKind(st.Mode()))
	}
	if st.Size() > limit {
		return nil, fmt.Errorf("%s is larger than %s", name, byteSize(limit))
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is larger than %s", name, byteSize(limit))
	}
	return data, nil
}

// byteSize writes a limit in MiB when it is a whole number of them.
func byteSize(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

// fileKind names the type of a file that is not a regular one.
func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return "a special file"
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

// Catalog records which metrics earlier tasks produce for which versions, so
// that a task reading metrics (assess) can be checked before anything runs.
type Catalog struct {
	versions []string
	metrics  map[string]map[string]bool // version → metric
	// evidence maps version → metric → what stands behind its value, for
	// comparisons.
	evidence map[string]map[string]EvidenceKind
	// incomplete is set once a task fails to decode: the metrics it would
	// produce are unknown, so absence proves nothing.
	incomplete bool
}

func newCatalog(versions []string) *Catalog {
	c := &Catalog{versions: versions, metrics: map[string]map[string]bool{}, evidence: map[string]map[string]EvidenceKind{}}
	for _, v := range versions {
		c.metrics[v] = map[string]bool{}
		c.evidence[v] = map[string]EvidenceKind{}
	}
	return c
}

// Add records that metric will be produced for version.
func (c *Catalog) Add(version, metric string) {
	if m, ok := c.metrics[version]; ok {
		m[metric] = true
	}
}

// EvidenceKind is what stands behind a metric's value: a histogram, or a
// sample of one of the stats.SampleKinds.
type EvidenceKind string

// The kinds of evidence.
const (
	// EvidenceHistogram is a latency histogram (http/latency).
	EvidenceHistogram EvidenceKind = "histogram"
	// EvidenceRate is a stats.KindRate sample (http/error-rate).
	EvidenceRate = EvidenceKind(stats.KindRate)
	// EvidenceMean is a stats.KindMean sample (http/latency-mean).
	EvidenceMean = EvidenceKind(stats.KindMean)
	// EvidencePercentile is a percentile of a latency histogram
	// (http/latency-p90), compared through the histogram's tail.
	EvidencePercentile EvidenceKind = "percentile"
)

// AddEvidence records that metric will have evidence of a kind for version.
func (c *Catalog) AddEvidence(version, metric string, kind EvidenceKind) {
	if m, ok := c.evidence[version]; ok {
		m[metric] = kind
	}
}

// Evidence returns the kind of evidence behind metric for version.
func (c *Catalog) Evidence(version, metric string) (EvidenceKind, bool) {
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
	var all []string
	for _, m := range byVersion {
		all = slices.AppendSeq(all, maps.Keys(m))
	}
	slices.Sort(all)
	return slices.Compact(all)
}

// Percentile formats a percentile for a metric name: 99.9 → "p99.9".
func Percentile(p float64) string {
	return "p" + strings.TrimSuffix(strconv.FormatFloat(p, 'f', -1, 64), ".0")
}
