// Package e2e holds the binary-level tests of the kubectl-iter8 plugin: they
// build the binary once, run it as a user would (in a temporary working
// directory, against loopback HTTP servers that the tests start) and check
// its exit codes, its output and the files it leaves behind.
//
// The package has no non-test code besides this file; the tests need no
// cluster and talk only to 127.0.0.1.
package e2e
