// Package readme runs the commands that README.md shows for local mode, and
// what `make demo` runs, as testscript scripts (testdata/*.txtar) against
// sample HTTP and gRPC servers on 127.0.0.1, and checks that the docs show
// no local command that a script does not run, so that a README edit that
// breaks a command fails a test.
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
// The check of the docs (TestDocsCommandsRunInScripts) reads the code blocks
// of README.md and docs/*.md (fenced and indented), joins continuation
// lines, and splits each command that runs iter8 into words as the shell
// would. Each is parsed with the real command tree (pkg/cli.NewRootCmd), so
// an unknown command or flag fails, and classified: a command that names a
// release, or is list or release, needs a cluster and is only parsed. Every
// other one, and every iter8 command of scripts/demo.sh (which the
// Makefile's demo recipe must run), must be a line of some script word for
// word, except that the docs' 127.0.0.1:PORT (or localhost:PORT) is
// $ADDR_PORT in the script; demo.sh's variables ($out, $v1, $v2) stay as
// written, and the demo's script sets them.
// TestCommandsTableFlags checks the flags named in README.md's table of
// commands against the same tree.
//
// The package has no non-test code besides this file.
package readme
