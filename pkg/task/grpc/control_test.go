package grpc

import (
	"bytes"
	"errors"
	"os"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

func TestPacerLimits(t *testing.T) {
	tests := []struct {
		name    string
		p       pacer
		elapsed time.Duration
		hits    uint64
		stop    bool
	}{
		{"no limits", pacer{}, time.Hour, 1 << 40, false},
		{"below the total", pacer{max: 5}, 0, 4, false},
		{"the total", pacer{max: 5}, 0, 5, true},
		{"before the end", pacer{duration: time.Second}, 999 * time.Millisecond, 7, false},
		{"the end", pacer{duration: time.Second}, time.Second, 7, true},
		{"the end before any call", pacer{duration: time.Second}, 2 * time.Second, 0, false},
		{"a rate whose next turn is after the end", pacer{duration: 1500 * time.Millisecond, rate: 1}, time.Second, 2, true},
		{"a rate behind schedule", pacer{rate: 10}, time.Second, 3, false},
	}
	for _, tt := range tests {
		p := tt.p
		p.ctl = newControl()
		wait, stop := p.Pace(tt.elapsed, tt.hits)
		if stop != tt.stop || wait != 0 {
			t.Errorf("%s: Pace(%v, %d) = %v, %v; want 0, %v", tt.name, tt.elapsed, tt.hits, wait, stop, tt.stop)
		}
	}
}

func TestPacerWaitsForTheNextTurn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &pacer{ctl: newControl(), rate: 4}
		start := time.Now()
		for hits := range uint64(5) {
			if _, stop := p.Pace(time.Since(start), hits); stop {
				t.Fatalf("Pace stopped at hit %d", hits)
			}
			if want := time.Duration(hits) * 250 * time.Millisecond; time.Since(start) != want {
				t.Errorf("hit %d handed out at %v, want %v", hits, time.Since(start), want)
			}
		}
	})
}

func TestPacerCancelEndsTheWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctl := newControl()
		p := &pacer{ctl: ctl, rate: 0.001} // one call every 1000s
		var stopped atomic.Bool
		go func() {
			p.Pace(0, 0)
			_, stop := p.Pace(0, 1)
			stopped.Store(stop)
		}()
		time.Sleep(time.Second)
		ctl.cancel()
		synctest.Wait()
		if !stopped.Load() {
			t.Error("Pace did not stop at the cancel")
		}
	})
}

func TestControlStopsOnceAndOnlyWhenSafe(t *testing.T) {
	tests := []struct {
		name  string
		steps string // d: a call handed off, c: cancel, f: finish
		stops int
	}{
		{"cancel before any call", "c", 0},
		{"cancel, then a call", "cd", 1},
		{"a call, then cancel", "dc", 1},
		{"cancelled twice", "dcc", 1},
		{"finished, then cancel", "dfc", 0},
		{"cancel before a call, then finished", "cf", 0},
	}
	for _, tt := range tests {
		var stops int
		ctl := newControl()
		ctl.stop = func() { stops++ }
		for _, s := range tt.steps {
			switch s {
			case 'd':
				ctl.markDelivered()
			case 'c':
				ctl.cancel()
			case 'f':
				ctl.finish()
			}
		}
		if stops != tt.stops {
			t.Errorf("%s: Stop called %d times, want %d", tt.name, stops, tt.stops)
		}
	}
}

func TestTickerFinishWaitsForRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctl := newControl()
		tk := newTicker(ctl, 3)
		finished := make(chan struct{})
		go func() {
			tk.Finish()
			close(finished)
		}()
		synctest.Wait()
		select {
		case <-finished:
			t.Fatal("Finish returned before Run handed over the workers")
		default:
		}
		go tk.Run()
		tv := <-tk.Ticker()
		if tv.Delta != 3 || !tv.Done {
			t.Errorf("ticker sent %+v, want 3 workers and done", tv)
		}
		<-finished
		if _, open := <-tk.Ticker(); open {
			t.Error("the ticker's channel is open after Finish")
		}
		ctl.mu.Lock()
		defer ctl.mu.Unlock()
		if !ctl.finished {
			t.Error("Finish did not mark the load finished")
		}
	})
}

func TestWithContentAsFile(t *testing.T) {
	small := []byte("-----BEGIN CERTIFICATE-----\nabc\n-----END CERTIFICATE-----\n")
	large := bytes.Repeat([]byte("0123456789abcdef"), 20000) // beyond a pipe's buffer
	for name, with := range map[string]func([]byte, func(string) error) error{
		"pipe": withPipe, "temp": withTempFile, "default": withContentAsFile,
	} {
		for _, content := range [][]byte{small, large, {}} {
			var got []byte
			err := with(content, func(path string) error {
				var err error
				got, err = os.ReadFile(path)
				return err
			})
			if err != nil || !bytes.Equal(got, content) {
				t.Errorf("%s: read %d bytes (%v), want the %d written", name, len(got), err, len(content))
			}
		}
		// A reader that never reads must not block the writer, and fn's
		// error comes back.
		boom := errors.New("boom")
		if err := with(large, func(string) error { return boom }); !errors.Is(err, boom) {
			t.Errorf("%s: error %v, want fn's", name, err)
		}
	}
}

func TestPacerRateTooSlowToTell(t *testing.T) {
	p := &pacer{ctl: newControl(), rate: 1e-300, duration: time.Hour}
	if _, stop := p.Pace(time.Second, 5); !stop {
		t.Error("a turn beyond any duration did not stop the load")
	}
}
