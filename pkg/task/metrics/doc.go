// Package metrics is the `metrics` task: it reads metrics of each version
// from a backend (Prometheus, Istio or Envoy Gateway telemetry in
// Prometheus, New Relic, Sysdig, Elasticsearch, Datadog, or a provider given
// inline in the spec) and stores them as <provider>/<metric>.
//
// A provider is a YAML file embedded from providers/: per metric an HTTP
// request whose URL, params, headers and body are Go templates, and a jq
// expression (gojq) that turns the JSON response into exactly one number.
// Query providers (prometheus, newrelic, sysdig, elastic, datadog) define
// the request once; the spec's `queries` give each metric's query, which the
// request sees as .query. Templates see the spec's values merged with the
// version's, and .version, .window (a Prometheus duration such as 37s),
// .windowSeconds, .startTime/.endTime (RFC3339), .startUnix/.endUnix and
// .startSeconds/.endSeconds (with milliseconds).
//
// Decoding parses every template, compiles every jq expression and renders
// every template with each version's values, so that mistakes are found
// before anything runs. Auth names secrets (looked up through
// experiment.Env.Secret at run time), never values; their values, escaped
// and base64 forms included, are redacted from every reason, log line and
// error. jq expressions cannot read the environment.
//
// A metric that cannot be read (backend unreachable, a status other than
// 2xx, malformed JSON, jq yielding no value, several, or one that is not a
// finite number) is recorded in the result as unavailable with its reason,
// and fails the task unless allowMissing is set.
package metrics
