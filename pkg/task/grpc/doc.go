// Package grpc is the `grpc` task: it sends gRPC load to one host or to
// endpoints per version with ghz's runner, used as a library, and records
// the same metrics as the http task under grpc/ (grpc/request-count,
// grpc/error-rate, grpc/latency-p99, ...), with latencies in the same HDR
// histograms.
//
// # Running ghz
//
// ghz's runner.Run is not used: it installs a process-wide interrupt
// handler, sets GOMAXPROCS and takes no context. The task runs a
// runner.Requester itself with its own pacer and worker ticker, so that a
// cancel ends the load and Requester.Stop aborts calls in flight without
// racing Requester.Run (see control).
//
// ghz builds a Go template, with sprig's functions, for every call, and
// runs even absent metadata through one; the task turns templates off when
// neither data nor metadata holds an action such as {{.RequestNumber}}, and
// passes no metadata when there is none. That more than halves the processor
// time per call (scripts/bench/grpc).
//
// Methods are described by a protoFile (compiled when the spec is decoded,
// with its imports read relative to the spec), a protoset, or else server
// reflection when the load starts. protoFile and protoset reach ghz as a
// serialized FileDescriptorSet, so that the load reads no files.
//
// # Latencies and memory
//
// Each call's latency is what ghz measures between the call's begin and
// end in gRPC's stats handler. ghz keeps the details (latency, status,
// error text) of the first 10^6 calls of a load in memory, with no way to
// turn that off or to see results as they come, so the task records them
// into a pkg/stats Recorder after the load: the same HDR histograms as the
// http task, trackable above the call timeout. Call and error counts come
// from ghz's counters, which cover every call; past 10^6 calls the latency
// metrics cover the first 10^6 only, and the task logs a warning.
//
// The memory of a load is therefore ghz's: about 64 bytes and the error's
// text per call, up to about 64 MB per endpoint (reserved up front for a
// counted load, grown as calls come for a timed one), plus a sorted copy of
// the successful latencies that ghz makes when the load ends. Measured
// (scripts/bench/grpc), a process peaks at about 40 MB resident after 2x10^4
// calls and 70 MB after 2x10^5, some 160 bytes per call with the garbage
// collector's headroom; all of it is garbage once the histograms, which stay
// small, are recorded.
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
// A cancelled load ends within moments: the pacer stops handing out calls
// and Requester.Stop closes the connections, and the calls it cuts short are
// ignored rather than counted as errors. What was measured until then is
// recorded.
package grpc
