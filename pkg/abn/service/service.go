// Package service is Iter8's A/B/n service: Lookup assigns a user of an
// application to one of its versions (sticky, by weighted rendezvous
// hashing over the versions that are ready with weight), WriteMetric
// records what the user did, credited to the version that served them,
// and the summaries are read back by experiments. The same calls are served
// over gRPC (wire-compatible with Iter8 v1) and HTTP/JSON.
package service

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/iter8-tools/iter8/pkg/abn/apps"
	"github.com/iter8-tools/iter8/pkg/abn/assign"
	"github.com/iter8-tools/iter8/pkg/abn/ledger"
)

// Options configure a Service.
type Options struct {
	// Apps says which applications and versions exist. Required.
	Apps apps.Source
	// Ledger stores metrics and exposures. Required.
	Ledger ledger.Ledger
	// Namespace is where an application named without one lives.
	// Required.
	Namespace string
	// Logger; default slog.Default().
	Logger *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Retention, when positive, forgets an application's metrics once
	// nothing was written or exposed for it that long; 0 keeps them.
	Retention time.Duration
	// MaxBatch bounds the values of one WriteMetrics call; default 256,
	// what the Redis ledger stores in one atomic call.
	MaxBatch int
}

// MaxAge is how old a value may be when it arrives: older values would
// open buckets long closed (a client sending milliseconds as nanoseconds
// lands in 1970), and a retry that late could count twice (the ledgers
// remember IDs for a day by default). Values may be up to MaxAhead in the
// future, for clocks that run a little ahead.
const (
	MaxAge   = 24 * time.Hour
	MaxAhead = 5 * time.Minute
)

// ErrUnavailable is what clients see when the ledger cannot store or read:
// the cause is logged, not sent (it may name files and addresses).
var ErrUnavailable = errors.New("metrics cannot be stored or read now: retry")

// Service answers Lookup and WriteMetric.
type Service struct {
	opts     Options
	exposed  *exposer
	draining atomic.Bool
	// streamsEnded is closed by EndStreams.
	streamsEnded chan struct{}
	endStreams   sync.Once
}

// DroppedExposures is how many exposures were not recorded because the
// queue to the ledger was full; each of those users' next Lookup queues
// theirs again.
func (s *Service) DroppedExposures() uint64 { return s.exposed.dropped.Load() }

// New makes a Service; Run must run for exposures to be recorded.
func New(opts Options) (*Service, error) {
	switch {
	case opts.Apps == nil:
		return nil, errors.New("abn service: no source of applications")
	case opts.Ledger == nil:
		return nil, errors.New("abn service: no ledger")
	case opts.Namespace == "":
		return nil, errors.New("abn service: no default namespace")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 256
	}
	return &Service{opts: opts, exposed: newExposer(opts.Ledger, opts.Logger), streamsEnded: make(chan struct{})}, nil
}

// Run records exposures until ctx is done, then flushes them; with a
// Retention, it also forgets applications idle that long.
func (s *Service) Run(ctx context.Context) {
	if s.opts.Retention > 0 {
		go s.forget(ctx)
	}
	s.exposed.run(ctx)
}

// forget sweeps applications idle for the retention, every tenth of it
// (at most hourly), until ctx is done.
func (s *Service) forget(ctx context.Context) {
	tick := time.NewTicker(min(s.opts.Retention/10, time.Hour))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			gone, err := s.opts.Ledger.Forget(ctx, s.opts.Now().Add(-s.opts.Retention))
			switch {
			case err != nil:
				s.opts.Logger.Warn("forget idle applications", "error", err)
			case len(gone) > 0:
				s.opts.Logger.Info("forgot idle applications", "applications", gone, "retention", s.opts.Retention)
			}
		}
	}
}

// Drain makes Ready fail from now on, so that load balancers stop sending
// calls before the servers stop.
func (s *Service) Drain() { s.draining.Store(true) }

// EndStreams ends the open Lookups streams (each after the batch it is
// answering) and refuses new ones with Unavailable, so that a graceful
// stop need not wait for streams that clients keep open: their clients
// open new ones elsewhere. Call it once the gRPC server's graceful stop
// has begun, so that those new streams go to other connections.
func (s *Service) EndStreams() { s.endStreams.Do(func() { close(s.streamsEnded) }) }

// Ready says whether the service can answer: not draining, applications
// read and the ledger able to store writes.
func (s *Service) Ready(ctx context.Context) error {
	if s.draining.Load() {
		return errors.New("shutting down")
	}
	if !s.opts.Apps.Synced() {
		return errors.New("applications not read yet")
	}
	if err := s.opts.Ledger.Check(ctx); err != nil {
		return fmt.Errorf("%w: %w", errLedgerUnusable, err)
	}
	return nil
}

// errLedgerUnusable is all that the readiness probe's answer says of a
// ledger that cannot store: it is answered on the API's port, and the
// cause may name files and addresses (as ErrUnavailable's, it is logged).
var errLedgerUnusable = errors.New("ledger: cannot store or read now (the cause is in the service's log)")

// InputError is a request the service refuses: Field names what is wrong.
type InputError struct {
	Field, Reason string
}

func (e *InputError) Error() string { return e.Field + ": " + e.Reason }

// app finds an application named namespace/name or name.
func (s *Service) app(field, name string) (apps.App, string, error) {
	if name == "" {
		return apps.App{}, "", &InputError{field, "is empty: want namespace/name or name"}
	}
	ns, n, found := strings.Cut(name, "/")
	if !found {
		ns, n = s.opts.Namespace, name
	}
	if ns == "" || n == "" || strings.Contains(n, "/") {
		return apps.App{}, "", &InputError{field, fmt.Sprintf("%q: want namespace/name or name", truncate(name))}
	}
	a, ok := s.opts.Apps.App(ns, n)
	if !ok {
		return apps.App{}, "", &InputError{field, fmt.Sprintf("no application %s in namespace %s (no route labelled iter8.tools/app=%s)", n, ns, n)}
	}
	return a, ns + "/" + n, nil
}

// Assignment is Lookup's answer.
type Assignment struct {
	// Number is the version's position in the application's versions; -1
	// when the application has no versions.
	Number              int
	Version             string
	Header, HeaderValue string
	Fallback            bool
}

// Lookup assigns user to a version of the application. When no version is
// ready with weight, the answer is the baseline with Fallback set: the
// frontend keeps working.
func (s *Service) Lookup(appName, user string) (Assignment, error) {
	a, key, err := s.app("application", appName)
	if err != nil {
		return Assignment{}, err
	}
	if err := checkUser(user); err != nil {
		return Assignment{}, err
	}
	if len(a.Versions) == 0 {
		return Assignment{Number: -1, Fallback: true}, nil
	}
	name, ok := assign.Pick(key, user, a.Candidates())
	i := a.Index(name)
	if !ok || i < 0 {
		i = 0
	}
	v := a.Versions[i]
	out := Assignment{Number: i, Version: v.Name, Fallback: !ok}
	if a.Header != "" && v.HeaderValue != "" {
		out.Header, out.HeaderValue = a.Header, v.HeaderValue
	}
	if ok {
		s.exposed.add(ledger.Exposure{App: key, Version: v.Name, User: user, At: s.opts.Now()})
	}
	return out, nil
}

func checkUser(user string) error {
	e := ledger.Exposure{App: "a", Version: "v", User: user, At: time.Unix(1, 0)}
	if err := e.Validate(); err != nil {
		var fe *ledger.FieldError
		if errors.As(err, &fe) {
			return &InputError{fe.Field, fe.Reason}
		}
		return err
	}
	return nil
}

// Value is one metric value as a client sends it.
type Value struct {
	Application, User, Metric string
	// Value in decimal, as Iter8 v1 sends it.
	Value string
	// Version that served the user; "" means the user's current
	// assignment.
	Version string
	// ID makes a retry count once; "" makes a fresh one.
	ID string
	// At is when it was measured; zero means now.
	At time.Time
}

// WriteMetrics records values, all or nothing, and returns once they are
// durable. A bad value is an *InputError naming it (values[i].field).
func (s *Service) WriteMetrics(ctx context.Context, values []Value) error {
	if len(values) == 0 {
		return &InputError{"values", "is empty"}
	}
	if len(values) > s.opts.MaxBatch {
		return &InputError{"values", fmt.Sprintf("holds %d values, more than %d", len(values), s.opts.MaxBatch)}
	}
	writes := make([]ledger.Write, len(values))
	for i, v := range values {
		if i > 0 && v.Application != values[0].Application {
			// One application per batch: each ledger stores one
			// application's batch in one atomic step.
			return &InputError{fmt.Sprintf("values[%d].application", i), fmt.Sprintf("%q differs from values[0]'s %q: a batch holds one application's values", truncate(v.Application), truncate(values[0].Application))}
		}
		w, err := s.write(v)
		if err != nil {
			var ie *InputError
			if len(values) > 1 && errors.As(err, &ie) {
				return &InputError{fmt.Sprintf("values[%d].%s", i, ie.Field), ie.Reason}
			}
			return err
		}
		writes[i] = w
	}
	if err := s.opts.Ledger.Record(ctx, writes); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.opts.Logger.Warn("record metrics", "application", writes[0].App, "count", len(writes), "error", err)
		return ErrUnavailable
	}
	return nil
}

// write turns a value into a ledger write, checking every field.
func (s *Service) write(v Value) (ledger.Write, error) {
	a, key, err := s.app("application", v.Application)
	if err != nil {
		return ledger.Write{}, err
	}
	if err := checkUser(v.User); err != nil {
		return ledger.Write{}, err
	}
	x, err := strconv.ParseFloat(strings.TrimSpace(v.Value), 64)
	if err != nil {
		return ledger.Write{}, &InputError{"value", fmt.Sprintf("%q is not a number", truncate(v.Value))}
	}
	version := v.Version
	if version != "" && a.Index(version) < 0 {
		return ledger.Write{}, &InputError{"version", fmt.Sprintf("%q is not a version of %s (its versions: %s)", truncate(version), key, versionNames(a))}
	}
	if version == "" {
		name, ok := assign.Pick(key, v.User, a.Candidates())
		if !ok {
			return ledger.Write{}, &InputError{"version", fmt.Sprintf("is empty and application %s has no version ready with weight to credit", key)}
		}
		version = name
	}
	w := ledger.Write{ID: v.ID, App: key, Version: version, User: v.User, Metric: v.Metric, Value: x, At: v.At}
	if w.ID == "" {
		w.ID = newID()
	}
	now := s.opts.Now()
	switch {
	case w.At.IsZero():
		w.At = now
	case w.At.Before(now.Add(-MaxAge)) || w.At.After(now.Add(MaxAhead)):
		return ledger.Write{}, &InputError{"at", fmt.Sprintf("%s is not within %v before and %v after the service's clock (%s): want nanoseconds since the Unix epoch",
			w.At.UTC().Format(time.RFC3339), MaxAge, MaxAhead, now.UTC().Format(time.RFC3339))}
	}
	if err := w.Validate(); err != nil {
		var fe *ledger.FieldError
		if errors.As(err, &fe) {
			return ledger.Write{}, &InputError{fe.Field, fe.Reason}
		}
		return ledger.Write{}, err
	}
	return w, nil
}

// Summary reads an application's summaries.
func (s *Service) Summary(ctx context.Context, appName string) (ledger.Summary, error) {
	_, key, err := s.app("application", appName)
	if err != nil {
		return ledger.Summary{}, err
	}
	sum, err := s.opts.Ledger.Summary(ctx, key)
	if err != nil {
		if ctx.Err() != nil {
			return ledger.Summary{}, ctx.Err()
		}
		s.opts.Logger.Warn("read summary", "application", key, "error", err)
		return ledger.Summary{}, ErrUnavailable
	}
	return sum, nil
}

// versionNames lists an application's versions for an error.
func versionNames(a apps.App) string {
	names := make([]string, len(a.Versions))
	for i, v := range a.Versions {
		names[i] = v.Name
	}
	return strings.Join(names, ", ")
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// truncate keeps an echoed input short in an error.
func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
