package http

import (
	"bytes"
	"context"
	nethttp "net/http"
	"strings"
	"testing"
)

func TestRunShowsProgress(t *testing.T) {
	srv := newServer(t, func(w nethttp.ResponseWriter, _ *nethttp.Request, n int64) {
		if n%4 == 0 {
			w.WriteHeader(nethttp.StatusInternalServerError)
		}
	})
	f := mustDecode(t, `{"url": "`+srv.URL+`", "numRequests": 40, "connections": 1}`, nil)
	env := f.newEnv()
	var out bytes.Buffer // not a terminal: plain lines
	env.Progress = &out
	if err := f.task.Run(context.Background(), env); err != nil {
		t.Fatalf("Run: %v", err)
	}
	last := strings.TrimSpace(out.String())
	if i := strings.LastIndex(last, "\n"); i >= 0 {
		last = last[i+1:]
	}
	if !strings.Contains(last, "40/40 requests") || !strings.Contains(last, " 10 errors") {
		t.Errorf("last progress line = %q; want 40/40 requests with 10 errors", last)
	}
}
