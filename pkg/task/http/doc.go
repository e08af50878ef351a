// Package http is the `http` task: it sends HTTP load to one endpoint or to
// endpoints per version with fortio's periodic runner and fast client, and
// records Iter8's built-in metrics (http/request-count, http/error-rate,
// http/latency-p99, ...) from HDR histograms kept per load thread.
package http
