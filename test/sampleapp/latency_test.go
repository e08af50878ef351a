package sampleapp

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseLatency(t *testing.T) {
	tests := []struct {
		in       string
		want     string        // String() of the result
		min, max time.Duration // every sample must lie in [min, max]
	}{
		{"", "0", 0, 0},
		{"0", "0", 0, 0},
		{"fixed:5ms", "fixed:5ms", 5 * time.Millisecond, 5 * time.Millisecond},
		{"fixed:0s", "fixed:0s", 0, 0},
		{"fixed:1.5ms", "fixed:1.5ms", 1500 * time.Microsecond, 1500 * time.Microsecond},
		{"uniform:2ms-20ms", "uniform:2ms-20ms", 2 * time.Millisecond, 20*time.Millisecond - 1},
		{"uniform:3ms-3ms", "uniform:3ms-3ms", 3 * time.Millisecond, 3 * time.Millisecond},
		{"uniform:500us-1s", "uniform:500µs-1s", 500 * time.Microsecond, time.Second - 1},
		{"lognormal:10ms,0.5", "lognormal:10ms,0.5", 0, time.Duration(1<<63 - 1)},
		{"lognormal:10ms,0", "lognormal:10ms,0", 10 * time.Millisecond, 10 * time.Millisecond},
	}
	for _, tt := range tests {
		l, err := ParseLatency(tt.in)
		if err != nil {
			t.Errorf("ParseLatency(%q): got error %v, want nil", tt.in, err)
			continue
		}
		if got := l.String(); got != tt.want {
			t.Errorf("ParseLatency(%q).String(): got %q, want %q", tt.in, got, tt.want)
		}
		// String must round-trip so that flags and logs can be replayed.
		if l2, err := ParseLatency(l.String()); err != nil || l2.String() != l.String() {
			t.Errorf("ParseLatency(%q) round trip via %q: got %v, %v", tt.in, l.String(), l2, err)
		}
		r := rand.New(rand.NewPCG(1, 2))
		for range 1000 {
			if d := l.Sample(r); d < tt.min || d > tt.max {
				t.Errorf("ParseLatency(%q).Sample: got %v, want in [%v, %v]", tt.in, d, tt.min, tt.max)
				break
			}
		}
	}
}

func TestParseLatencyErrors(t *testing.T) {
	tests := []struct {
		in   string
		want string // substring of the error after the quoted input
	}{
		{"5ms", `want "", "0", fixed:DURATION`},
		{"1", `want "", "0", fixed:DURATION`},
		{"gauss:5ms", `unknown kind "gauss"`},
		{"fixed:", `bad duration ""; want fixed:DURATION`},
		{"fixed:5", `bad duration "5"; want fixed:DURATION`},
		{"fixed:-5ms", `negative duration "-5ms"; want fixed:DURATION`},
		{"uniform:2ms", `missing '-'; want uniform:MIN-MAX`},
		{"uniform:20ms-2ms", `want uniform:MIN-MAX with MIN <= MAX`},
		{"uniform:-2ms-20ms", `MIN: bad duration ""; want uniform:MIN-MAX`},
		{"uniform:2ms-x", `MAX: bad duration "x"; want uniform:MIN-MAX`},
		{"lognormal:10ms", `missing ','; want lognormal:MEDIAN,SIGMA`},
		{"lognormal:0s,0.5", `MEDIAN must be positive`},
		{"lognormal:ten,0.5", `MEDIAN: bad duration "ten"`},
		{"lognormal:10ms,-1", `SIGMA "-1" is not a finite number >= 0`},
		{"lognormal:10ms,NaN", `SIGMA "NaN" is not a finite number >= 0`},
		{"lognormal:10ms,inf", `SIGMA "inf" is not a finite number >= 0`},
	}
	for _, tt := range tests {
		l, err := ParseLatency(tt.in)
		if err == nil {
			t.Errorf("ParseLatency(%q): got %v, want error containing %q", tt.in, l, tt.want)
			continue
		}
		prefix := "latency \"" + tt.in + "\": "
		if got := err.Error(); !strings.HasPrefix(got, prefix) || !strings.Contains(got, tt.want) {
			t.Errorf("ParseLatency(%q): got error %q, want prefix %q and %q", tt.in, got, prefix, tt.want)
		}
	}
}

func TestParseLatencyUniformMessage(t *testing.T) {
	_, err := ParseLatency("uniform:20ms-2ms")
	want := `latency "uniform:20ms-2ms": want uniform:MIN-MAX with MIN <= MAX`
	if err == nil || err.Error() != want {
		t.Errorf("ParseLatency(%q): got error %v, want %q", "uniform:20ms-2ms", err, want)
	}
}

func TestLognormalQuantiles(t *testing.T) {
	l, err := ParseLatency("lognormal:10ms,0.5")
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(3, 4))
	s := make([]time.Duration, 20000)
	for i := range s {
		s[i] = l.Sample(r)
	}
	slices.Sort(s)
	// For sigma 0.5 the 84.1st percentile is median*e^0.5 ~ 16.49ms.
	tests := []struct {
		name   string
		got    time.Duration
		lo, hi time.Duration
	}{
		{"median", s[len(s)/2], 9500 * time.Microsecond, 10500 * time.Microsecond},
		{"p84.1", s[int(0.841*float64(len(s)))], 15700 * time.Microsecond, 17300 * time.Microsecond},
	}
	for _, tt := range tests {
		if tt.got < tt.lo || tt.got > tt.hi {
			t.Errorf("lognormal:10ms,0.5 %s: got %v, want in [%v, %v]", tt.name, tt.got, tt.lo, tt.hi)
		}
	}
}
