// Package grpc is the `grpc` task: it sends gRPC load to one host or to
// endpoints per version with ghz's runner, used as a library, and records
// the same metrics as the http task under grpc/ (grpc/request-count,
// grpc/error-rate, grpc/latency-p99, ...), with latencies in the same HDR
// histograms.
//
// # Running ghz
//
// ghz's runner.Run is not used: it installs a process-wide interrupt
// handler, sets GOMAXPROCS and takes no context. The task builds a
// RunConfig (runner.NewConfig), a Requester (runner.NewRequester) and runs
// it, with its own pacer and worker ticker, which let a context cancel end
// the load and let Requester.Stop abort calls in flight without racing
// Requester.Run (see control).
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
// Each call's latency is what ghz measures: gRPC's stats handler sees the
// call begin and end. ghz sends each result to its reporter over a channel
// and keeps the details (latency, status, error text; about 64 bytes and
// the error's text) of the first 10^6 calls of a load in memory, with no way
// to turn that off or to see results as they come (the stats handler and the
// channel are unexported). So the task reads the report's details after the
// load and records them into a pkg/stats Recorder: the same HDR histograms
// as the http task, with a highest trackable value above the call timeout.
// Call counts and error counts come from ghz's counters, which cover every
// call.
//
// The memory of a load is therefore ghz's: up to about 64 MB of details per
// endpoint (reserved up front for a counted load, grown as calls come for a
// timed one), plus a sorted copy of the successful latencies (8 bytes each)
// that ghz makes when the load ends. Measured (scripts/bench/grpc), a process
// peaks at about 40 MB resident after 2x10^4 calls and 70 MB after 2x10^5,
// some 160 bytes per call with the garbage collector's headroom; all of it
// is garbage once the task has recorded its histograms. A load of more than 10^6 calls per
// endpoint still counts every call, but its latency metrics cover the first
// 10^6; the task logs a warning when that happens. The stored histograms
// stay small whatever the number of calls.
//
// # Errors
//
// A call that ends with a gRPC status other than OK (DeadlineExceeded after
// the timeout, Unimplemented, ResourceExhausted, ...) is an error in the
// metrics; its latency is recorded too, as the http task does. An endpoint
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
