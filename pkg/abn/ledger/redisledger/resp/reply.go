// Package resp is a small Redis client speaking RESP2: a bounded pool of
// TCP connections that authenticate and select their database when
// dialed, single commands, pipelines and MULTI/EXEC transactions, with
// optional retries for callers whose commands are safe to repeat.
//
// Replies are plain Go values: a simple or bulk string is a string, an
// integer an int64, an array a []any, a null bulk string or null array
// nil, and an error reply an Error (inside arrays too; Do, Pipeline and
// Tx also return the first one as their error).
package resp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Error is an error reply of the server, such as "NOSCRIPT No matching
// script". It leaves the connection usable.
type Error string

func (e Error) Error() string { return string(e) }

// HasErrorPrefix reports whether err is (or wraps) an Error that starts
// with prefix, such as "NOSCRIPT".
func HasErrorPrefix(err error, prefix string) bool {
	var e Error
	return errors.As(err, &e) && strings.HasPrefix(string(e), prefix)
}

// ProtocolError is a reply that does not follow RESP2; the connection it
// came from is closed.
type ProtocolError struct{ msg string }

func (e *ProtocolError) Error() string { return "redis protocol: " + e.msg }

func protocolErrorf(format string, args ...any) error {
	return &ProtocolError{fmt.Sprintf(format, args...)}
}

// Limits on what a reply may claim, so that a broken or hostile peer
// cannot make the reader allocate without bound or recurse without end.
const (
	maxLine    = 1 << 20   // a simple string, error or length line
	maxBulk    = 512 << 20 // Redis' own proto-max-bulk-len default
	maxNesting = 128       // arrays within arrays
	// Bulk strings up to smallBulk are read into one allocation; longer
	// ones grow as their bytes arrive, so a false length costs nothing.
	smallBulk = 64 << 10
	// Arrays preallocate at most this many elements, for the same reason.
	maxPrealloc = 1024
)

// ReadReply reads one reply from r. It returns io.EOF when r ends before
// the reply begins and io.ErrUnexpectedEOF when it ends inside.
func ReadReply(r *bufio.Reader) (any, error) { return readReply(r, 0) }

func readReply(r *bufio.Reader, depth int) (any, error) {
	line, err := readLine(r)
	if err != nil {
		return nil, err
	}
	if len(line) == 0 {
		return nil, protocolErrorf("empty line")
	}
	kind, rest := line[0], line[1:]
	switch kind {
	case '+':
		return string(rest), nil
	case '-':
		return Error(rest), nil
	case ':':
		return parseInt(rest)
	case '$':
		n, err := parseLength(rest, maxBulk)
		if err != nil || n < 0 {
			return nil, err
		}
		return readBulk(r, n)
	case '*':
		n, err := parseLength(rest, int64(^uint(0)>>1))
		if err != nil || n < 0 {
			return nil, err
		}
		if depth == maxNesting {
			return nil, protocolErrorf("arrays nested deeper than %d", maxNesting)
		}
		elems := make([]any, 0, min(n, maxPrealloc))
		for range n {
			v, err := readReply(r, depth+1)
			if err != nil {
				return nil, noEOF(err)
			}
			elems = append(elems, v)
		}
		return elems, nil
	}
	return nil, protocolErrorf("unknown reply type %q", kind)
}

// readLine reads up to CRLF and returns the line without it. The slice is
// valid until the next read.
func readLine(r *bufio.Reader) ([]byte, error) {
	line, err := r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		// Longer than the buffer: collect it, within maxLine.
		long := append([]byte(nil), line...)
		for errors.Is(err, bufio.ErrBufferFull) && len(long) <= maxLine {
			line, err = r.ReadSlice('\n')
			long = append(long, line...)
		}
		if len(long) > maxLine {
			return nil, protocolErrorf("line longer than %d bytes", maxLine)
		}
		line = long
	}
	if err == io.EOF && len(line) == 0 {
		return nil, io.EOF // between replies
	}
	if err != nil {
		return nil, noEOF(err)
	}
	if len(line) < 2 || line[len(line)-2] != '\r' {
		return nil, protocolErrorf("line not ended by CRLF")
	}
	return line[:len(line)-2], nil
}

// noEOF turns an EOF inside a reply into io.ErrUnexpectedEOF: the server
// went away after the request was sent.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

func parseInt(b []byte) (int64, error) {
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return 0, protocolErrorf("integer %q", b)
	}
	return n, nil
}

// parseLength reads a bulk or array length: -1 (null) up to limit.
func parseLength(b []byte, limit int64) (int64, error) {
	n, err := parseInt(b)
	if err != nil {
		return 0, err
	}
	if n < -1 || n > limit {
		return 0, protocolErrorf("length %d", n)
	}
	return n, nil
}

func readBulk(r *bufio.Reader, n int64) (any, error) {
	var data []byte
	if n+2 <= smallBulk {
		data = make([]byte, n+2)
		if _, err := io.ReadFull(r, data); err != nil {
			return nil, noEOF(err)
		}
	} else {
		var b bytes.Buffer
		if _, err := io.CopyN(&b, r, n+2); err != nil {
			return nil, noEOF(err)
		}
		data = b.Bytes()
	}
	if data[n] != '\r' || data[n+1] != '\n' {
		return nil, protocolErrorf("bulk string of %d bytes not ended by CRLF", n)
	}
	return string(data[:n]), nil
}

// writeCommand writes args as a RESP array of bulk strings, the form in
// which Redis takes commands. Write errors stick in w until Flush.
func writeCommand(w *bufio.Writer, args []string) {
	writeHeader(w, '*', len(args))
	for _, a := range args {
		writeHeader(w, '$', len(a))
		_, _ = w.WriteString(a)
		_, _ = w.WriteString("\r\n")
	}
}

func writeHeader(w *bufio.Writer, kind byte, n int) {
	b := append(w.AvailableBuffer(), kind)
	b = strconv.AppendInt(b, int64(n), 10)
	_, _ = w.Write(append(b, '\r', '\n'))
}

// String reads a string reply.
func String(v any) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", unexpected(v, "a string")
	}
	return s, nil
}

// Int reads an integer reply.
func Int(v any) (int64, error) {
	n, ok := v.(int64)
	if !ok {
		return 0, unexpected(v, "an integer")
	}
	return n, nil
}

// Strings reads an array of strings; a null array is empty.
func Strings(v any) ([]string, error) {
	if v == nil {
		return nil, nil
	}
	elems, ok := v.([]any)
	if !ok {
		return nil, unexpected(v, "an array")
	}
	ss := make([]string, len(elems))
	for i, e := range elems {
		s, ok := e.(string)
		if !ok {
			return nil, unexpected(e, "a string in an array")
		}
		ss[i] = s
	}
	return ss, nil
}

// StringMap reads an array of field, value, field, value... strings, as
// HGETALL and CONFIG GET answer in RESP2.
func StringMap(v any) (map[string]string, error) {
	ss, err := Strings(v)
	if err != nil {
		return nil, err
	}
	if len(ss)%2 != 0 {
		return nil, fmt.Errorf("redis reply: %d strings, want pairs", len(ss))
	}
	m := make(map[string]string, len(ss)/2)
	for i := 0; i < len(ss); i += 2 {
		m[ss[i]] = ss[i+1]
	}
	return m, nil
}

func unexpected(v any, want string) error {
	if e, ok := v.(Error); ok {
		return e
	}
	return fmt.Errorf("redis reply %T, want %s", v, want)
}
