package h1client

import "bytes"

// Byte-slice parsing of the response head without allocations: the lines
// are slices of the read buffer, valid until the next read.

// parseStatusLine parses "HTTP/1.x NNN reason".
func parseStatusLine(line []byte) (minor, status int, ok bool) {
	line = trimEOL(line)
	if len(line) < 12 || string(line[:7]) != "HTTP/1." || line[8] != ' ' || len(line) > 12 && line[12] != ' ' {
		return 0, 0, false
	}
	m, minorOK := parseDecimal(line[7:8])
	s, statusOK := parseDecimal(line[9:12])
	if !minorOK || !statusOK || s < 100 {
		return 0, 0, false
	}
	return int(m), int(s), true
}

// parseDecimal parses a non-negative decimal number of at most 18 digits.
func parseDecimal(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, d := range b {
		if d < '0' || d > '9' {
			return 0, false
		}
		n = n*10 + int64(d-'0')
	}
	return n, true
}

// parseChunkSize parses a chunk's hexadecimal size, ignoring extensions.
func parseChunkSize(line []byte) (int64, bool) {
	if i := bytes.IndexByte(line, ';'); i >= 0 {
		line = line[:i]
	}
	line = trimSpace(line)
	if len(line) == 0 || len(line) > 15 {
		return 0, false
	}
	var n int64
	for _, d := range line {
		var v byte
		switch {
		case d >= '0' && d <= '9':
			v = d - '0'
		case d >= 'a' && d <= 'f':
			v = d - 'a' + 10
		case d >= 'A' && d <= 'F':
			v = d - 'A' + 10
		default:
			return 0, false
		}
		n = n<<4 | int64(v)
	}
	return n, true
}

func trimEOL(b []byte) []byte {
	b, _ = bytes.CutSuffix(b, []byte("\n"))
	b, _ = bytes.CutSuffix(b, []byte("\r"))
	return b
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// equalFold compares b with a lower-case ASCII name.
func equalFold(b []byte, name string) bool {
	if len(b) != len(name) {
		return false
	}
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != name[i] {
			return false
		}
	}
	return true
}

// containsTokenFold reports whether a comma-separated list holds token.
func containsTokenFold(b []byte, token string) bool {
	for {
		i := bytes.IndexByte(b, ',')
		if i < 0 {
			return equalFold(trimSpace(b), token)
		}
		if equalFold(trimSpace(b[:i]), token) {
			return true
		}
		b = b[i+1:]
	}
}

// truncate shortens what a broken server sent for an error message.
func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}
