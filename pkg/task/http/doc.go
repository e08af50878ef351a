// Package http is the `http` task: it sends HTTP load to one endpoint or to
// endpoints per version, paced by fortio's periodic runner and sent by
// h1client, which reads every response whole, and records Iter8's built-in
// metrics (http/request-count, http/error-rate, http/latency-p99, ...) from
// HDR histograms kept per load thread.
package http
