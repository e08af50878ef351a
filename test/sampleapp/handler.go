package sampleapp

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"runtime"
	"strconv"
	"sync/atomic"
	"time"
)

// DefaultErrorCode is the status of injected errors when Options.ErrorCode is 0.
const DefaultErrorCode = http.StatusServiceUnavailable

// HealthPath answers 200 "ok" at once, without latency, errors or counting.
const HealthPath = "/healthz"

// spinWindow is how long before the deadline the wait stops sleeping on a
// timer and starts spinning. Timers may fire tens to hundreds of
// microseconds late; spinning the last stretch makes the injected latency
// accurate to a few microseconds at the cost of about this much CPU time per
// request.
const spinWindow = time.Millisecond

// Options configures a Handler.
type Options struct {
	// Version is reported in the X-Version header and the JSON body.
	Version string
	// Latency is added before every answer; nil means none.
	Latency Latency
	// ErrorRate is the fraction, in [0, 1], of requests answered with ErrorCode.
	ErrorRate float64
	// ErrorCode is the status of injected errors, 400-599; 0 means 503.
	ErrorCode int
	// Seed makes the latencies and errors reproducible: with the same
	// non-zero seed the n-th request always gets the same latency and
	// outcome, whatever the concurrency. 0 picks a random seed.
	Seed uint64
	// Conversion is the share, in [0, 1], of users who buy: a successful
	// answer to a request with ?user=U carries the header X-Purchase: <amount>
	// when [Purchase](Version, U, Conversion) says U converts. It is per
	// user and deterministic (every request of a converting user carries
	// the header), independent of Seed; 0, the default, means nobody buys.
	Conversion float64
}

// Validate reports whether o is usable by NewHandler.
func (o Options) Validate() error {
	if math.IsNaN(o.ErrorRate) || o.ErrorRate < 0 || o.ErrorRate > 1 {
		return fmt.Errorf("error rate %v: want a fraction in [0, 1]", o.ErrorRate)
	}
	if o.ErrorCode != 0 && (o.ErrorCode < 400 || o.ErrorCode > 599) {
		return fmt.Errorf("error code %d: want 0 (meaning %d) or 400-599", o.ErrorCode, DefaultErrorCode)
	}
	return validConversion(o.Conversion)
}

// Handler is the sample application's http.Handler.
type Handler struct {
	latency    Latency
	errorRate  float64
	errorCode  int
	seed       uint64
	conversion float64
	version    []string // the X-Version header value, shared read-only
	okBody     []byte
	errBody    []byte

	requests atomic.Int64 // also the sequence number seeding each request's draws
	metrics  *metrics
}

// NewHandler returns a Handler configured by o. It panics if o.Validate
// fails, as options are fixed by the programmer or checked by the caller.
func NewHandler(o Options) *Handler {
	if err := o.Validate(); err != nil {
		panic("sampleapp: " + err.Error())
	}
	h := &Handler{
		latency:    o.Latency,
		errorRate:  o.ErrorRate,
		errorCode:  o.ErrorCode,
		seed:       o.Seed,
		conversion: o.Conversion,
		version:    []string{o.Version},
	}
	if h.latency == nil {
		h.latency = none{}
	}
	if h.errorCode == 0 {
		h.errorCode = DefaultErrorCode
	}
	if h.seed == 0 {
		h.seed = rand.Uint64()
	}
	h.metrics = newMetrics(o.Version, h.errorCode)
	h.okBody = mustJSON(map[string]string{"version": o.Version})
	h.errBody = mustJSON(map[string]string{"version": o.Version, "error": "injected error"})
	return h
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // cannot happen for a map of strings
	}
	return b
}

// Requests returns how many requests the handler has received, not counting
// HealthPath or MetricsPath. A request is counted as soon as it arrives.
func (h *Handler) Requests() int64 { return h.requests.Load() }

// ServeHTTP waits the sampled latency, then answers with the version JSON or
// an injected error. A successful answer to a converting user (see
// Options.Conversion) carries X-Purchase, whatever the path. If the request context ends during the wait, it returns
// without writing, as nobody is listening any more.
func (h *Handler) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	start := time.Now()
	w.Header()["X-Version"] = h.version
	if req.URL.Path == HealthPath {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok")
		return
	}
	if req.URL.Path == MetricsPath {
		h.metrics.handler.ServeHTTP(w, req)
		return
	}
	d, fail := h.draw(uint64(h.requests.Add(1)))
	if d > 0 {
		if err := waitUntil(req.Context(), start.Add(d)); err != nil {
			return
		}
	}
	status, body := http.StatusOK, h.okBody
	if fail {
		status, body = h.errorCode, h.errBody
	} else if p := h.purchaseHeader(req); p != nil {
		w.Header()[PurchaseHeader] = p
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	// Recorded before answering, so a client that has its answer finds it
	// counted on MetricsPath.
	h.metrics.observe(fail, time.Since(start))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// draw returns the latency and whether to fail for the request with
// sequence number n. A generator per request, seeded by n, needs no lock and
// makes the n-th request's draws independent of scheduling.
func (h *Handler) draw(n uint64) (time.Duration, bool) {
	r := rand.New(rand.NewPCG(h.seed, mix(n)))
	return h.latency.Sample(r), r.Float64() < h.errorRate
}

// mix is the SplitMix64 finaliser. It spreads consecutive sequence numbers
// over the whole 64-bit space, so neighbouring requests get unrelated PCG
// states.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// waitUntil blocks until deadline or until ctx is done, whichever is first,
// and returns ctx.Err() in the latter case. It sleeps on a timer until
// spinWindow before the deadline and then spins, yielding the processor, so
// that it returns within a few microseconds of the deadline.
func waitUntil(ctx context.Context, deadline time.Time) error {
	done := ctx.Done()
	if coarse := time.Until(deadline) - spinWindow; coarse > 0 {
		t := time.NewTimer(coarse)
		defer t.Stop()
		select {
		case <-t.C:
		case <-done:
			return ctx.Err()
		}
	}
	for {
		// Check the context before the clock so that a request cancelled
		// before its deadline is not answered, however late this
		// goroutine gets to run.
		select {
		case <-done:
			return ctx.Err()
		default:
		}
		if !time.Now().Before(deadline) {
			return nil
		}
		runtime.Gosched()
	}
}
