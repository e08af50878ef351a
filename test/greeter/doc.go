// Package greeter is a gRPC greeter server for tests, benchmarks and demos of
// the grpc task: the helloworld.Greeter service of the gRPC examples, with
// server reflection, plaintext or TLS, and per-server latency and errors, so
// that one server per version can play a release under test.
//
// The service is described by greeter.proto, which ships beside this file
// (the task's protoFile path in tests) and is embedded in the package: the
// server compiles it at start and answers with dynamic messages, so no
// generated code and no protoc are needed. SayHello answers
// "Hello <name> from <version>" after an injected [sampleapp.Latency], or
// fails a fraction of calls with an injected status code. SayGoodbye is
// declared in the proto but not served: calls get Unimplemented.
//
// Reflection describes the service from the server's own registry of file
// descriptors, not the process-wide one, so several servers (and the
// process's own generated code) never conflict.
//
// [NewSelfSignedCertificate] makes a certificate for TLS tests, and the
// command in cmd/greeter serves a greeter on a loopback address for
// benchmarks.
package greeter
