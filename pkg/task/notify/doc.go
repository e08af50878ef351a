// Package notify is the `notify` task: it tells other systems how an
// experiment went. Each target is one of
//
//   - webhook: any HTTP endpoint, with a method, headers, query and a payload
//     from a Go template over the Summary (default: the Summary as JSON);
//   - slack: a Slack incoming webhook ({"text": ...});
//   - github: a repository_dispatch, a workflow_dispatch, a commit status
//     (the verdict as success, failure or error) or a pull request that
//     commits one file (such as promoted values) through GitHub's REST API;
//   - cloudevent: a CloudEvent in binary mode (ce-* headers, the Summary as
//     the JSON body) through the CloudEvents SDK's HTTP binding.
//
// Secrets (a Slack webhook URL, a GitHub token, a header value) are named in
// the spec (urlFrom, tokenFrom, headersFrom, {{ secret "NAME" }}) and looked
// up only at run time through experiment.Env.Secret. Their values never
// reach an error, a log line or the result: every message goes through one
// redact.Redactor, which replaces each secret value (and its escaped forms, and for
// URLs their path and query) with REDACTED and strips the URL that
// *url.Error carries.
//
// Templates are text/template with missingkey=error. They are parsed, their
// secret names checked, and they are tried on a sample Summary when the spec
// is decoded, so that syntax errors and unknown fields are reported before
// anything runs.
package notify
