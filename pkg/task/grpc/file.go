package grpc

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"syscall"
)

// withContentAsFile calls fn with the name of a file that holds content,
// for libraries that read only from files (ghz's root certificates). The
// file exists while fn runs.
//
// On Linux it is the read end of a pipe, named through /proc/self/fd, so
// that nothing is written to disk: in a cluster the task runs with a
// read-only root filesystem. Elsewhere it is a temporary file, readable by
// its owner only.
func withContentAsFile(content []byte, fn func(name string) error) error {
	if runtime.GOOS == "linux" {
		return withPipe(content, fn)
	}
	return withTempFile(content, fn)
}

// withPipe serves content through a pipe: a reader that opens
// /proc/self/fd/N gets its own descriptor of the pipe and reads content,
// then end of file once the writer is done. The writer runs beside fn, as
// content may be larger than the pipe's buffer.
func withPipe(content []byte, fn func(name string) error) error {
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("pipe: %w", err)
	}
	written := make(chan error, 1)
	go func() {
		_, err := w.Write(content)
		written <- errors.Join(err, w.Close())
	}()
	err = fn(fmt.Sprintf("/proc/self/fd/%d", r.Fd()))
	// Closing the read end unblocks a writer that nobody reads.
	r.Close()
	if werr := <-written; err == nil && werr != nil && !errors.Is(werr, syscall.EPIPE) {
		err = fmt.Errorf("write pipe: %w", werr)
	}
	return err
}

// withTempFile serves content from a temporary file, removed afterwards.
func withTempFile(content []byte, fn func(name string) error) error {
	f, err := os.CreateTemp("", "iter8-grpc-*")
	if err != nil {
		return fmt.Errorf("temporary file: %w", err)
	}
	defer os.Remove(f.Name())
	_, err = f.Write(content)
	if err = errors.Join(err, f.Close()); err != nil {
		return fmt.Errorf("temporary file: %w", err)
	}
	return fn(f.Name())
}
