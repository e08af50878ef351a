// Package progress shows how far a load has got: a bar redrawn in place when
// writing to a terminal, and a plain line now and then otherwise (CI logs).
package progress

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"
)

// Snapshot is the state of a load at one moment.
type Snapshot struct {
	Requests int64
	Errors   int64
}

// Options describe a load whose progress is shown.
type Options struct {
	// Label names the load, such as "http".
	Label string
	// Total is the number of requests expected; 0 when the load is timed.
	Total int64
	// Duration is the planned length of a timed load; 0 when counted.
	Duration time.Duration
	// Live forces the bar (true) or plain lines (false); nil decides by
	// whether the writer is a terminal.
	Live *bool
	// Every is how often a line or bar is drawn; zero means 200ms for the
	// bar and 5s for plain lines.
	Every time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Show draws the progress of read to w until ctx is done, then a last line.
// It returns when that line is written.
func Show(ctx context.Context, w io.Writer, read func() Snapshot, o Options) {
	if w == nil || w == io.Discard {
		<-ctx.Done()
		return
	}
	live := isTerminal(w)
	if o.Live != nil {
		live = *o.Live
	}
	every := o.Every
	if every <= 0 {
		every = 5 * time.Second
		if live {
			every = 200 * time.Millisecond
		}
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	start := now()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			line := Line(read(), now().Sub(start), o)
			if live {
				fmt.Fprintf(w, "\r%s\x1b[K\n", line)
			} else {
				fmt.Fprintln(w, line)
			}
			return
		case <-tick.C:
			line := Line(read(), now().Sub(start), o)
			if live {
				fmt.Fprintf(w, "\r%s\x1b[K", line)
			} else {
				fmt.Fprintln(w, line)
			}
		}
	}
}

// barWidth is the number of cells in the bar.
const barWidth = 24

// Line renders one progress line: a bar, requests, rate, errors and elapsed
// time.
func Line(s Snapshot, elapsed time.Duration, o Options) string {
	frac := -1.0
	switch {
	case o.Total > 0:
		frac = float64(s.Requests) / float64(o.Total)
	case o.Duration > 0:
		frac = float64(elapsed) / float64(o.Duration)
	}
	var b strings.Builder
	if o.Label != "" {
		b.WriteString(o.Label + " ")
	}
	if frac >= 0 {
		frac = min(frac, 1)
		filled := int(frac * barWidth)
		b.WriteString("[" + strings.Repeat("=", filled) + strings.Repeat(" ", barWidth-filled) + "] ")
		fmt.Fprintf(&b, "%3.0f%% ", frac*100)
	}
	if o.Total > 0 {
		fmt.Fprintf(&b, "%d/%d requests", s.Requests, o.Total)
	} else {
		fmt.Fprintf(&b, "%d requests", s.Requests)
	}
	rate := 0.0
	if elapsed > 0 {
		rate = float64(s.Requests) / elapsed.Seconds()
	}
	fmt.Fprintf(&b, ", %.1f/s, %d errors, %s", rate, s.Errors, elapsed.Round(100*time.Millisecond))
	if o.Duration > 0 {
		fmt.Fprintf(&b, " of %s", o.Duration)
	}
	return b.String()
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
