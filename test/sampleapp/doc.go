// Package sampleapp is a small HTTP application for tests, benchmarks and
// demos of the load-testing tool.
//
// A [Handler] answers every request with the JSON body {"version":"<v>"} and
// the header X-Version: <v>, after waiting an injected [Latency], and answers
// a configurable fraction of requests with an error status instead. The wait
// is precise to a few microseconds so that benchmarks can compare latency
// percentiles measured by the load tester with the injected distribution.
//
// With [Options.Conversion] P, a share P of users buy: a successful answer to
// a request with ?user=U (any path) carries the header X-Purchase: <amount>
// when U is one of them. Conversion is per user and deterministic, a hash of
// the version and the user (see [Purchase]), so a converting user's every
// request carries the same amount, in every process.
//
// The path /healthz always answers 200 "ok" at once and is not counted, so
// readiness probes neither slow down nor disturb the statistics.
//
// The path [MetricsPath] (/metrics) exports Prometheus metrics from a registry
// of the handler's own: [MetricRequests], a counter, and [MetricDuration], a
// histogram in seconds with the fixed [DurationBuckets], both labelled with
// the version, the status code and whether the answer is an injected error.
// Scrapes are not counted either.
//
// The command in cmd/sampleapp serves a Handler on a loopback address.
package sampleapp
