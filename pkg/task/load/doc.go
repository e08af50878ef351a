// Package load holds what the load tasks (http, grpc) share, so that they
// decode endpoints and report metrics the same way. Decoding: the fields
// every load task has (duration, timeout, percentiles, version), endpoints
// and the task-level values they inherit, with each error reported once, at
// the field the user wrote. Metrics: how a load's counts and latencies
// become metrics per version and per named endpoint. A task keeps only what
// is its own: the fields of a request and how to send it. It is a library
// for tasks, not a task.
package load
