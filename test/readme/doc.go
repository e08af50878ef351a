// Package readme runs the commands that README.md shows for local mode, and
// what `make demo` runs, as testscript scripts (testdata/*.txtar) against
// sample HTTP and gRPC servers on 127.0.0.1.
//
// The scripts write the commands as the docs do: `kubectl iter8 ...`, `helm
// iter8 ...` and `kubectl-iter8 ...` run the test binary itself as the
// plugin (testscript.Main, with pkg/cli's front-ends), so no binary is built
// and no real kubectl or helm is needed. Their other commands:
//
//	sampleapp NAME [--version V] [--latency SPEC] [--error-rate F] [--seed N]
//	greeter NAME [same flags]
//	exits CODE PROGRAM [ARGS...]
//
// sampleapp and greeter serve test/sampleapp and test/greeter on a free
// 127.0.0.1 port until the script ends and set $NAME to its host:port;
// exits runs kubectl, helm or kubectl-iter8 and wants that exit code.
//
// The package has no non-test code besides this file.
package readme
