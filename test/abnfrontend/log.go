package abnfrontend

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
)

// ReadLog parses a log written through Options.Log, one LogEntry per line,
// in the order written; blank lines are skipped.
func ReadLog(r io.Reader) ([]LogEntry, error) {
	var entries []LogEntry
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var e LogEntry
		if err := json.Unmarshal(line, &e); err != nil {
			return nil, fmt.Errorf("read frontend log: line %d: %w", n, err)
		}
		if e.User == "" {
			return nil, fmt.Errorf("read frontend log: line %d: no user", n)
		}
		entries = append(entries, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read frontend log: %w", err)
	}
	return entries, nil
}

// UserVersions returns, for each user, the versions of their entries in
// order (one per request, fallbacks and failures included: filter entries
// first to leave them out).
func UserVersions(entries []LogEntry) map[string][]string {
	m := map[string][]string{}
	for _, e := range entries {
		m[e.User] = append(m[e.User], e.Version)
	}
	return m
}

// ChangedUsers returns, sorted, the users who were served by more than one
// version.
func ChangedUsers(versions map[string][]string) []string {
	var users []string
	for u, vs := range versions {
		if len(vs) == 0 {
			continue
		}
		for _, v := range vs[1:] {
			if v != vs[0] {
				users = append(users, u)
				break
			}
		}
	}
	slices.Sort(users)
	return users
}
