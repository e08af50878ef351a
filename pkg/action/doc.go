// Package action has one type per command (Launch, Run, Report, Assert, Log,
// Delete, Version). Each returns data and never prints, reads the
// environment or exits; the command line in package cli does those.
package action
