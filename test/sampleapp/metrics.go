package sampleapp

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// MetricsPath serves the handler's Prometheus metrics in the text exposition
// format. Like HealthPath it answers at once and is not counted, so scrapes
// do not disturb the statistics they report.
const MetricsPath = "/metrics"

// Names and labels of the exported series. Every series carries
// LabelVersion (Options.Version), LabelCode (the status, such as "200" or
// "503") and LabelError ("true" for injected errors, else "false").
const (
	// MetricRequests is a counter of the requests answered.
	MetricRequests = "sampleapp_requests_total"
	// MetricDuration is a histogram, in seconds, of the time from a
	// request's arrival to its answer, with buckets DurationBuckets.
	MetricDuration = "sampleapp_request_duration_seconds"

	LabelVersion = "version"
	LabelCode    = "code"
	LabelError   = "error"
)

// DurationBuckets are the upper bounds, in seconds, of MetricDuration's
// buckets: 1, 2, 5, 10, 20, 50, 100, 200, 500 and 1000 ms. They are fixed so
// that tests can place a latency between two bounds and an SLO threshold
// two buckets away from it.
var DurationBuckets = []float64{0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1}

// metrics holds one handler's series in a registry of its own, so that two
// versions in one process (as in tests) do not collide in the global one.
type metrics struct {
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	handler  http.Handler
	// Each outcome's children, looked up once: the handler answers either
	// 200 or its one error code.
	okReqs, errReqs prometheus.Counter
	okDur, errDur   prometheus.Observer
}

func newMetrics(version string, errorCode int) *metrics {
	constLabels := prometheus.Labels{LabelVersion: version}
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name:        MetricRequests,
			Help:        "Requests answered by the sample app, by status.",
			ConstLabels: constLabels,
		}, []string{LabelCode, LabelError}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:        MetricDuration,
			Help:        "Time from a request's arrival to its answer, in seconds, by status.",
			ConstLabels: constLabels,
			Buckets:     DurationBuckets,
		}, []string{LabelCode, LabelError}),
	}
	m.registry.MustRegister(m.requests, m.duration)
	ok, bad := strconv.Itoa(http.StatusOK), strconv.Itoa(errorCode)
	// Creating both children up front exports them at 0, so an error rate
	// reads 0 rather than "no data" before the first error.
	m.okReqs = m.requests.WithLabelValues(ok, "false")
	m.errReqs = m.requests.WithLabelValues(bad, "true")
	m.okDur = m.duration.WithLabelValues(ok, "false")
	m.errDur = m.duration.WithLabelValues(bad, "true")
	m.handler = promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
	return m
}

// observe records one answered request.
func (m *metrics) observe(fail bool, d time.Duration) {
	if fail {
		m.errReqs.Inc()
		m.errDur.Observe(d.Seconds())
		return
	}
	m.okReqs.Inc()
	m.okDur.Observe(d.Seconds())
}

// Gatherer returns the registry holding the handler's metrics, for tests
// that read them without going through MetricsPath.
func (h *Handler) Gatherer() prometheus.Gatherer { return h.metrics.registry }
