package metrics

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"math/big"
	"net/http"
	"net/url"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/redact"
)

// maxBody bounds how much of a response is read.
const maxBody = 8 << 20

// times is the window that metrics are read over.
type times struct {
	start, end time.Time
	window     time.Duration
}

func sampleTimes(end time.Time, window time.Duration) times {
	return times{start: end.Add(-window), end: end, window: window}
}

// promDuration writes d as a Prometheus duration: whole hours, minutes or
// seconds (37s, 5m, 2h), at least 1s.
func promDuration(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d < time.Second:
		return "1s"
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	default:
		return fmt.Sprintf("%ds", d/time.Second)
	}
}

// data is what the templates of version i see.
func (t *Task) data(i int, tm times) map[string]any {
	d := maps.Clone(t.values[i])
	d["window"] = promDuration(tm.window)
	d["windowSeconds"] = max(int64(tm.window.Round(time.Second)/time.Second), 1)
	d["startTime"] = tm.start.UTC().Format(time.RFC3339)
	d["endTime"] = tm.end.UTC().Format(time.RFC3339)
	d["startUnix"] = tm.start.Unix()
	d["endUnix"] = tm.end.Unix()
	// Seconds with milliseconds, for APIs that take them (Prometheus): a
	// whole second would end the window before a scrape of the last second.
	d["startSeconds"] = fmt.Sprintf("%.3f", float64(tm.start.UnixMilli())/1000)
	d["endSeconds"] = fmt.Sprintf("%.3f", float64(tm.end.UnixMilli())/1000)
	return d
}

// rendered is a request ready to send.
type rendered struct {
	method  string
	url     *url.URL
	headers map[string]string
	body    string
}

func execute(t *template.Template, data any) (string, error) {
	var b strings.Builder
	if err := t.Execute(&b, data); err != nil {
		return "", err
	}
	return b.String(), nil
}

// render executes a metric's templates for one version.
func (t *Task) render(m *metric, data map[string]any) (*rendered, error) {
	if m.query != nil {
		q, err := execute(m.query, data)
		if err != nil {
			return nil, fmt.Errorf("query: %w", err)
		}
		data = maps.Clone(data)
		data["query"] = q
	}
	raw, err := execute(m.request.url, data)
	if err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return nil, fmt.Errorf("url %q: %w", raw, err)
	}
	if !u.IsAbs() {
		if t.endpoint == nil {
			return nil, fmt.Errorf("url %q is relative and there is no endpoint", raw)
		}
		rel := u
		u = t.endpoint.JoinPath(rel.Path)
		if !strings.HasPrefix(u.Path, "/") {
			u.Path = "/" + u.Path
		}
		u.RawQuery = rel.RawQuery
	}
	q := u.Query()
	for _, p := range m.request.params {
		v, err := execute(p.value, data)
		if err != nil {
			return nil, fmt.Errorf("param %s: %w", p.name, err)
		}
		q.Add(p.name, v)
	}
	if len(q) > 0 {
		u.RawQuery = q.Encode()
	}
	r := &rendered{method: m.request.method, url: u, headers: map[string]string{}}
	for _, h := range slices.Sorted(maps.Keys(m.request.headers)) {
		v, err := execute(m.request.headers[h], data)
		if err != nil {
			return nil, fmt.Errorf("header %s: %w", h, err)
		}
		r.headers[h] = v
	}
	if m.request.body != nil {
		if r.body, err = execute(m.request.body, data); err != nil {
			return nil, fmt.Errorf("body: %w", err)
		}
	}
	return r, nil
}

// Run reads every metric for every version. A metric that cannot be read is
// recorded as unavailable with its reason; unless AllowMissing, the task
// then fails, naming the provider, metric, version and reason. Secrets are
// redacted from every reason, log line and error.
func (t *Task) Run(ctx context.Context, env *experiment.Env) error {
	log := env.Logger()
	red := &redact.Redactor{}
	auth, err := t.lookupSecrets(env.Secret, red)
	if err != nil {
		return fmt.Errorf("provider %s: %w", t.Provider, err)
	}
	end := env.Time()
	window := t.Window
	if window == 0 {
		if env.Result == nil || env.Result.StartTime.IsZero() {
			return fmt.Errorf("provider %s: no window and no experiment start time to take it from", t.Provider)
		}
		window = end.Sub(env.Result.StartTime)
	}
	tm := sampleTimes(end, window)
	client := redact.Client(t.Timeout)
	defer client.CloseIdleConnections()

	var failures []string
	total := 0
	for i, v := range t.versions {
		data := t.data(i, tm)
		for _, m := range t.metrics {
			total++
			name := t.Provider + "/" + m.name
			val, err := t.read(ctx, client, red, m, data, auth)
			if err != nil {
				reason := red.String(err.Error())
				if env.Result != nil {
					env.Result.SetUnavailable(v, name, reason)
				}
				log.Warn("metric unavailable", "metric", name, "version", v, "reason", reason)
				failures = append(failures, fmt.Sprintf("%s for version %q: %s", m.name, v, reason))
				continue
			}
			if env.Result != nil {
				env.Result.SetMetric(v, name, val, m.units)
			}
			log.Info("metric read", "metric", name, "version", v, "value", val)
		}
	}
	if len(failures) == 0 {
		return nil
	}
	msg := fmt.Sprintf("provider %s: %d of %d metrics unavailable: %s", t.Provider, len(failures), total, strings.Join(failures, "; "))
	if ctx.Err() != nil || !t.AllowMissing {
		return errors.New(msg)
	}
	log.Warn("metrics unavailable; the task succeeds because allowMissing is set", "provider", t.Provider, "count", len(failures))
	return nil
}

// lookupSecrets looks up the secrets that auth names, registers each value
// with red, and returns the auth headers of every request.
func (t *Task) lookupSecrets(lookup func(string) (string, bool), red *redact.Redactor) (map[string]string, error) {
	headers := map[string]string{}
	a := t.auth
	if a == nil {
		return headers, nil
	}
	missing := map[string]error{}
	get := func(name string) string {
		v, err := experiment.LookupSecret(lookup, name)
		if err != nil {
			missing[name] = err
		}
		red.Add(v)
		return v
	}
	if a.BearerFrom != "" {
		headers["Authorization"] = "Bearer " + get(a.BearerFrom)
	}
	if a.Basic != nil {
		user, pass := get(a.Basic.UsernameFrom), get(a.Basic.PasswordFrom)
		req := &http.Request{Header: http.Header{}}
		req.SetBasicAuth(user, pass)
		headers["Authorization"] = req.Header.Get("Authorization")
		red.Add(user + ":" + pass)
	}
	if a.APIKey != nil {
		headers[cmp.Or(a.APIKey.Header, t.apiKey)] = get(a.APIKey.KeyFrom)
	}
	for _, h := range slices.Sorted(maps.Keys(a.HeadersFrom)) {
		headers[h] = get(a.HeadersFrom[h])
	}
	if len(missing) > 0 {
		var msgs []string
		for _, n := range slices.Sorted(maps.Keys(missing)) {
			msgs = append(msgs, missing[n].Error())
		}
		return nil, errors.New(strings.Join(msgs, "; "))
	}
	return headers, nil
}

// read fetches one metric for one version. The timeout bounds the whole
// read, the jq step included: the client's own timeout ends when the body
// is read, and a runaway jq program would otherwise run unbounded.
func (t *Task) read(ctx context.Context, client *http.Client, red *redact.Redactor, m *metric, data map[string]any, auth map[string]string) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, t.Timeout)
	defer cancel()
	r, err := t.render(m, data)
	if err != nil {
		return 0, fmt.Errorf("template: %w", err)
	}
	// An empty body is sent as none (http.NoBody).
	req, err := http.NewRequestWithContext(ctx, r.method, r.url.String(), strings.NewReader(r.body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", "application/json")
	if r.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for h, v := range r.headers {
		req.Header.Set(h, v)
	}
	for h, v := range auth {
		req.Header.Set(h, v)
	}
	// The query string is left out of messages: it is long, and says
	// nothing that the metric's name does not.
	where := r.method + " " + r.url.Scheme + "://" + r.url.Host + r.url.Path
	resp, err := client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", where, redact.WithoutURL(err))
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return 0, fmt.Errorf("%s: read the response: %w", where, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return 0, fmt.Errorf("%s: status %d: %s", where, resp.StatusCode, red.Excerpt(raw))
	}
	if len(raw) > maxBody {
		return 0, fmt.Errorf("%s: the response is larger than %d bytes", where, maxBody)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return 0, fmt.Errorf("%s: the response is not JSON (%v): %s", where, err, red.Excerpt(raw))
	}
	val, err := evaluate(ctx, m, v, red)
	if errors.Is(err, context.DeadlineExceeded) {
		return 0, fmt.Errorf("%s: not read within the timeout (%s): %w", where, t.Timeout, err)
	}
	return val, err
}

// maxJQHeap bounds how much the heap may grow while one jq program runs.
// A response is at most maxBody bytes, and a program that selects a number
// from it needs a few times that; one that builds a huge value inside a
// single expression ([range(1e9)]) is stopped here rather than by the
// kernel's OOM killer.
const maxJQHeap = 256 << 20

// errJQMemory is the cause of a jq run stopped by the heap bound.
var errJQMemory = fmt.Errorf("jq: stopped: its values took more than %d MiB of memory", maxJQHeap>>20)

// evaluate applies a metric's jq to a response; it must yield exactly one
// finite number. ctx bounds the run: gojq checks it at every step, so a
// loop such as last(range(1e12)) ends with ctx. At most two values are
// taken (a second one is an error), and the heap is watched so that a
// single huge value cannot exhaust memory. A value that is not a number is
// shown through red.
func evaluate(ctx context.Context, m *metric, v any, red *redact.Redactor) (float64, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stopWatch := watchHeap(maxJQHeap, func() { cancel(errJQMemory) })
	defer stopWatch()
	iter := m.jq.RunWithContext(ctx, v)
	var out []any
	for len(out) < 2 {
		x, ok := iter.Next()
		if !ok {
			break
		}
		if err, isErr := x.(error); isErr {
			switch cause := context.Cause(ctx); {
			case errors.Is(cause, errJQMemory):
				return 0, cause
			case cause != nil:
				err = cause // the context's own error does not say why it ended
			}
			return 0, fmt.Errorf("jq: %w", err)
		}
		out = append(out, x)
	}
	switch len(out) {
	case 0:
		return 0, errors.New("jq yielded no value (no data for the query?)")
	case 2:
		return 0, errors.New("jq yielded more than one value (does the query select several series?)")
	}
	var f float64
	switch x := out[0].(type) {
	case json.Number:
		var err error
		if f, err = strconv.ParseFloat(string(x), 64); err != nil {
			return 0, fmt.Errorf("jq yielded %s, not a number", x)
		}
	case float64:
		f = x
	case int:
		f = float64(x)
	case *big.Int:
		f, _ = new(big.Float).SetInt(x).Float64()
	case nil:
		return 0, errors.New("jq yielded null, not a number")
	default:
		b, _ := json.Marshal(x)
		return 0, fmt.Errorf("jq yielded %s, not a number", red.Excerpt(b))
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("jq yielded %v, not a finite number", f)
	}
	return f, nil
}

// heapObjects is the runtime metric of the bytes of heap objects, live or
// not yet swept; reading it does not stop the world.
const heapObjects = "/memory/classes/heap/objects:bytes"

// watchHeap calls exceeded once if the heap grows by more than limit
// beyond twice its size at the start (the garbage collector lets the heap
// double before it collects, so anything less would stop honest programs
// in a process with a large heap). It polls every few milliseconds until
// the returned stop is called, so the bound may be overshot by what a
// program allocates in that time.
func watchHeap(limit uint64, exceeded func()) (stop func()) {
	sample := []metrics.Sample{{Name: heapObjects}}
	read := func() uint64 {
		metrics.Read(sample)
		if sample[0].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return sample[0].Value.Uint64()
	}
	bound := 2*read() + limit
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				if read() > bound {
					exceeded()
					return
				}
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}
