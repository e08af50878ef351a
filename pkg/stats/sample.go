package stats

import (
	"fmt"
	"math"
)

// SampleKind tells what a Sample summarises.
type SampleKind string

// The kinds of sample.
const (
	// KindRate is a count of successes (or errors) in a number of trials.
	KindRate SampleKind = "rate"
	// KindMean is the count, mean and standard deviation of values.
	KindMean SampleKind = "mean"
)

// Sample is the evidence behind one metric of one version: enough to compare
// versions and to say how likely each is to be the best, without keeping
// every value.
type Sample struct {
	Kind SampleKind `json:"kind"`
	// Successes of Trials, for KindRate.
	Successes int64 `json:"successes,omitempty"`
	Trials    int64 `json:"trials,omitempty"`
	// Count values with Mean and Stdev, for KindMean.
	Count int64   `json:"count,omitempty"`
	Mean  float64 `json:"mean,omitempty"`
	Stdev float64 `json:"stdev,omitempty"`
	// Cumulative marks a sample of everything measured so far (A/B/n
	// summaries grow over an experiment's loops) rather than of one loop:
	// a sequential verdict takes each look's comparison in place of the
	// earlier ones (Evidence.Replace) instead of adding it to them.
	Cumulative bool `json:"cumulative,omitempty"`
}

// RateSample returns the sample of successes in trials.
func RateSample(successes, trials int64) Sample {
	return Sample{Kind: KindRate, Successes: successes, Trials: trials}
}

// MeanSample returns the sample of count values with mean and stdev.
func MeanSample(count int64, mean, stdev float64) Sample {
	return Sample{Kind: KindMean, Count: count, Mean: mean, Stdev: stdev}
}

// N is the sample size: trials or count.
func (s Sample) N() int64 {
	if s.Kind == KindRate {
		return s.Trials
	}
	return s.Count
}

// Validate checks that the sample is consistent (it may come from a file).
func (s Sample) Validate() error {
	switch s.Kind {
	case KindRate:
		if s.Trials < 0 || s.Successes < 0 || s.Successes > s.Trials {
			return fmt.Errorf("rate sample: %d successes of %d trials", s.Successes, s.Trials)
		}
	case KindMean:
		if s.Count < 0 || s.Stdev < 0 {
			return fmt.Errorf("mean sample: count %d, stdev %v", s.Count, s.Stdev)
		}
	default:
		return fmt.Errorf("sample kind %q: want %s or %s", s.Kind, KindRate, KindMean)
	}
	return nil
}

// checkMoments checks what a mean sample needs, beyond Validate, to be
// compared or to have a posterior: two values, a finite mean and a finite
// deviation.
func (s Sample) checkMoments() error {
	switch {
	case s.Count < 2:
		return fmt.Errorf("count %d: want at least 2", s.Count)
	case math.IsNaN(s.Mean) || math.IsInf(s.Mean, 0):
		return fmt.Errorf("mean %v is not finite", s.Mean)
	case math.IsNaN(s.Stdev) || math.IsInf(s.Stdev, 0):
		return fmt.Errorf("stdev %v is not finite", s.Stdev)
	}
	return nil
}
