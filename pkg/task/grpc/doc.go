// Package grpc is the `grpc` task: it sends gRPC load to one host or to
// endpoints per version with a load generator of its own over grpc-go, and
// records the same metrics as the http task under grpc/ (grpc/request-count,
// grpc/error-rate, grpc/latency-p99, ...), with latencies in the same HDR
// histograms.
//
// # Sending load
//
// Each endpoint gets Concurrency workers over Connections connections
// (worker w uses connection w mod Connections); each worker makes one call
// at a time. A schedule hands out call numbers atomically: at a constant
// rate from the load's start, or as fast as workers take them, up to total
// calls or until the duration has passed, so that a counted load makes
// exactly total calls. A cancel ends the wait for a turn at once and cuts
// calls in flight short; those are not measured.
//
// The task offers what it used to get from ghz's runner, which it no longer
// links (ghz brought in gRPC's xDS and Envoy's APIs, some 19 MB of the
// binary): unary, client-streaming, server-streaming and bidirectional
// methods; data as one message or a list used in turn; ghz's template
// actions ({{.RequestNumber}}, {{.WorkerID}}, {{.UUID}}, ... and sprig's
// functions with ghz's newUUID, randomString and randomInt) in data and
// metadata, expanded per call; metadata keys ending in -bin with base64
// values; TLS with the system's roots, given roots, no verification, or
// plaintext. sprig's env and expandenv are left out: in a cluster the task
// runs beside credentials. A template is expanded for a sample call when
// the spec is decoded, so that one that cannot work is refused with its
// field rather than failing every call.
//
// A unary or server-streaming call sends message n mod len(data); a
// client-streaming or bidirectional call sends every message of data in
// turn, then half-closes. A stream is one call: its latency lasts from its
// start to its end, and its error is its final status.
//
// Requests without templates are encoded once, and answers are never
// decoded: only their status counts. Messages may be of any size, as with
// ghz (grpc-go alone refuses answers above 4 MiB).
//
// Methods are described by a protoFile (compiled when the spec is decoded,
// with its imports read relative to the spec), a protoset, or else server
// reflection (v1, then v1alpha) when the load starts, bounded by the call
// timeout and sent with the endpoint's metadata (templates expanded as for
// a first call).
//
// # Latencies and memory
//
// Each call's latency is the time from just before the call to its end, as
// the worker sees it. Workers record calls into a few shared pkg/stats
// Recorders as they end: the same HDR histograms as the http task, with the
// highest trackable latency above the call timeout, merged when the load
// ends. Every call is counted and recorded; the memory of a load does not
// grow with its calls. Errors are counted by text, up to 100 distinct texts
// per endpoint; the rest are counted together.
//
// # Errors
//
// A call that ends with a gRPC status other than OK (DeadlineExceeded after
// the timeout, Unimplemented, ResourceExhausted, ...) is an error in the
// metrics, its latency recorded too, as the http task does. An endpoint
// where no call succeeded and every call failed with Unavailable (the code
// of connection failures: refused, unreachable, failed TLS handshake) fails
// the task with an error that names the endpoint and gives the most
// frequent error text. A method that reflection cannot find, or that is not
// in the protoFile or protoset, also fails the task, before any load; a
// method that is described but not served answers Unimplemented and is
// measured as errors.
//
// A cancelled load ends within moments: the schedule stops handing out
// calls, and the calls that the cancel cuts short are ignored rather than
// counted as errors. What was measured until then is recorded.
package grpc
