// Package dist tests the release artefacts: it runs scripts/dist, the
// program behind `make dist` and `make image`, into a temporary directory,
// checks the archives and the OCI image it writes, and checks the krew
// manifest (the committed one and the one the program writes) against
// krew's documented rules.
package dist
