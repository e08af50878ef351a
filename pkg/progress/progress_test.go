package progress

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

func TestLine(t *testing.T) {
	tests := []struct {
		name    string
		s       Snapshot
		elapsed time.Duration
		o       Options
		want    string
	}{
		{"counted", Snapshot{Requests: 50, Errors: 2}, 2 * time.Second, Options{Label: "http", Total: 100},
			"http [============            ]  50% 50/100 requests, 25.0/s, 2 errors, 2s"},
		{"timed", Snapshot{Requests: 300}, 3 * time.Second, Options{Duration: 12 * time.Second},
			"[======                  ]  25% 300 requests, 100.0/s, 0 errors, 3s of 12s"},
		{"overrun is capped", Snapshot{Requests: 10}, 20 * time.Second, Options{Duration: 10 * time.Second},
			"[========================] 100% 10 requests, 0.5/s, 0 errors, 20s of 10s"},
		{"no elapsed time", Snapshot{}, 0, Options{Total: 5},
			"[                        ]   0% 0/5 requests, 0.0/s, 0 errors, 0s"},
	}
	for _, tc := range tests {
		if got := Line(tc.s, tc.elapsed, tc.o); got != tc.want {
			t.Errorf("%s: Line = %q\nwant          %q", tc.name, got, tc.want)
		}
	}
}

// syncBuffer is a bytes.Buffer that Show may write while the test reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestShowPlainLines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var out syncBuffer
		var n atomic.Int64
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		live := false
		go func() {
			Show(ctx, &out, func() Snapshot { return Snapshot{Requests: n.Load()} }, Options{Total: 100, Live: &live})
			close(done)
		}()
		for i := 0; i < 12; i++ { // 12 s of load, 8 requests a second
			time.Sleep(time.Second)
			n.Add(8)
		}
		cancel()
		<-done
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		// One line every 5s (at 5s and 10s), and a last one.
		if len(lines) != 3 {
			t.Fatalf("got %d lines, want 3:\n%s", len(lines), out.String())
		}
		if !strings.Contains(lines[2], "96/100 requests, 8.0/s") {
			t.Errorf("last line = %q, want 96/100 requests at 8.0/s", lines[2])
		}
		if strings.Contains(out.String(), "\r") {
			t.Errorf("plain output has carriage returns: %q", out.String())
		}
	})
}

func TestShowLiveBar(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var out syncBuffer
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		live := true
		go func() {
			Show(ctx, &out, func() Snapshot { return Snapshot{Requests: 1} }, Options{Duration: time.Second, Live: &live})
			close(done)
		}()
		time.Sleep(time.Second)
		cancel()
		<-done
		got := out.String()
		if strings.Count(got, "\r") < 5 || !strings.HasSuffix(got, "\x1b[K\n") {
			t.Errorf("live output should redraw in place about every 200ms and end with a newline: %q", got)
		}
	})
}
