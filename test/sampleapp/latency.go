package sampleapp

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// Latency is a distribution of added response latency.
type Latency interface {
	// Sample draws one latency from r; it is never negative.
	Sample(r *rand.Rand) time.Duration
	// String returns the form accepted by ParseLatency.
	String() string
}

// The accepted forms, quoted in error messages so a user can fix the input.
const (
	formFixed     = "fixed:DURATION (e.g. fixed:5ms)"
	formUniform   = "uniform:MIN-MAX (e.g. uniform:2ms-20ms)"
	formLognormal = "lognormal:MEDIAN,SIGMA (e.g. lognormal:10ms,0.5)"
)

// ParseLatency parses a latency specification:
//
//	"" or "0"            no added latency
//	fixed:5ms            always 5ms
//	uniform:2ms-20ms     uniform in [2ms, 20ms)
//	lognormal:10ms,0.5   log-normal with median 10ms and sigma 0.5 of the
//	                     underlying normal distribution
//
// Durations use time.ParseDuration syntax and must not be negative.
func ParseLatency(s string) (Latency, error) {
	if s == "" || s == "0" {
		return none{}, nil
	}
	kind, arg, ok := strings.Cut(s, ":")
	if !ok {
		return nil, fmt.Errorf("latency %q: want \"\", \"0\", %s, %s or %s", s, formFixed, formUniform, formLognormal)
	}
	switch kind {
	case "fixed":
		d, err := parseDuration(arg)
		if err != nil {
			return nil, fmt.Errorf("latency %q: %v; want %s", s, err, formFixed)
		}
		return fixed{d}, nil
	case "uniform":
		// Durations cannot be negative here, so the first '-' separates them.
		a, b, ok := strings.Cut(arg, "-")
		if !ok {
			return nil, fmt.Errorf("latency %q: missing '-'; want %s", s, formUniform)
		}
		lo, err := parseDuration(a)
		if err != nil {
			return nil, fmt.Errorf("latency %q: MIN: %v; want %s", s, err, formUniform)
		}
		hi, err := parseDuration(b)
		if err != nil {
			return nil, fmt.Errorf("latency %q: MAX: %v; want %s", s, err, formUniform)
		}
		if lo > hi {
			return nil, fmt.Errorf("latency %q: want uniform:MIN-MAX with MIN <= MAX", s)
		}
		return uniform{lo, hi}, nil
	case "lognormal":
		m, sg, ok := strings.Cut(arg, ",")
		if !ok {
			return nil, fmt.Errorf("latency %q: missing ','; want %s", s, formLognormal)
		}
		median, err := parseDuration(m)
		if err != nil {
			return nil, fmt.Errorf("latency %q: MEDIAN: %v; want %s", s, err, formLognormal)
		}
		if median == 0 {
			return nil, fmt.Errorf("latency %q: MEDIAN must be positive; want %s", s, formLognormal)
		}
		sigma, err := strconv.ParseFloat(sg, 64)
		if err != nil || sigma < 0 || math.IsInf(sigma, 0) || math.IsNaN(sigma) {
			return nil, fmt.Errorf("latency %q: SIGMA %q is not a finite number >= 0; want %s", s, sg, formLognormal)
		}
		return lognormal{median, sigma}, nil
	default:
		return nil, fmt.Errorf("latency %q: unknown kind %q; want %s, %s or %s", s, kind, formFixed, formUniform, formLognormal)
	}
}

// parseDuration is time.ParseDuration restricted to non-negative values.
func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("bad duration %q", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("negative duration %q", s)
	}
	return d, nil
}

// none adds no latency.
type none struct{}

func (none) Sample(*rand.Rand) time.Duration { return 0 }
func (none) String() string                  { return "0" }

// fixed always adds d.
type fixed struct{ d time.Duration }

func (f fixed) Sample(*rand.Rand) time.Duration { return f.d }
func (f fixed) String() string                  { return "fixed:" + f.d.String() }

// uniform adds a latency uniformly distributed in [lo, hi), or exactly lo
// when lo == hi.
type uniform struct{ lo, hi time.Duration }

func (u uniform) Sample(r *rand.Rand) time.Duration {
	if u.hi == u.lo {
		return u.lo
	}
	return u.lo + time.Duration(r.Int64N(int64(u.hi-u.lo)))
}

func (u uniform) String() string { return "uniform:" + u.lo.String() + "-" + u.hi.String() }

// lognormal adds median*exp(sigma*Z) with Z standard normal, so that the
// median is exactly median and sigma controls the length of the tail.
type lognormal struct {
	median time.Duration
	sigma  float64
}

func (l lognormal) Sample(r *rand.Rand) time.Duration {
	v := float64(l.median) * math.Exp(l.sigma*r.NormFloat64())
	// Clamp so that an extreme draw cannot overflow into a negative duration.
	if v >= math.MaxInt64 {
		return math.MaxInt64
	}
	return time.Duration(v)
}

func (l lognormal) String() string {
	return "lognormal:" + l.median.String() + "," + strconv.FormatFloat(l.sigma, 'g', -1, 64)
}
