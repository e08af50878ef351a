// Package action has one type, in a file of its own, per command: Launch
// (local) and Install (cluster), Run, Report, Assert, Log, List, Delete,
// Version, and ReleaseStatus, ReleasePromote and ReleaseRollback. Each
// checks its fields in Validate (Run calls it) and returns data; it never
// prints, reads the environment or exits: package cli does those.
package action
