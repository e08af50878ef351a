// Package cli is the command line of both plugins, `helm iter8` and
// `kubectl iter8`. It is the only package that imports cobra or reads the
// environment; each command binds flags onto an action from package action
// and prints what the action returns.
package cli
