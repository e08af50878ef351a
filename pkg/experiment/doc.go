// Package experiment holds the experiment spec, its strict decoding and
// validation, the result, and the loop that runs tasks in order.
//
// Decoding checks the whole spec, every task included, before anything runs:
// a task is registered with a Decoder that turns its `with` block into a
// ready-to-run Task and reports each bad field with its path. The run loop
// writes the result after every task, so a crash loses nothing that finished.
//
// This package does no cluster I/O; where results live is the caller's choice
// (see package store).
package experiment
