package stats

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/stat/distuv"
)

// DefaultDraws is the number of Monte Carlo draws Best makes when
// BestOptions.Draws is 0. With 20000 draws the standard error of each
// probability is at most √(0.25/20000) ≈ 0.0035.
const DefaultDraws = 20000

// BestOptions tunes Best.
type BestOptions struct {
	// Draws is the number of Monte Carlo draws from the posteriors; 0 means
	// DefaultDraws. The standard error of each probability is at most
	// 0.5/√Draws.
	Draws int
	// Seed makes results reproducible: the same samples, options and seed
	// give the same result.
	Seed uint64
}

// BestResult holds, per sample in input order, the posterior probability that
// the version is the best and the expected loss of choosing it.
type BestResult struct {
	// Probability that the version has the best true value; sums to 1.
	Probability []float64
	// ExpectedLoss of choosing the version, in the metric's unit:
	// E[best θ − θ_v] when maximising, E[θ_v − best θ] when minimising;
	// never negative.
	ExpectedLoss []float64
}

// Best returns, for each sample, the posterior probability that its version
// has the best true value (the highest when maximize, else the lowest) and
// the expected loss of choosing it.
//
// Rate samples get the posterior Beta(1+successes, 1+trials−successes) of a
// uniform prior. Mean samples get the posterior N(mean, stdev/√count) of the
// mean under a flat prior with the variance taken as known; a stdev of 0 makes
// it a point mass. All samples must have the same kind, and there must be at
// least two.
//
// Both kinds use Monte Carlo rather than quadrature of ∫ f_v Π F_u: it handles
// point masses and their ties (a tied win is split equally) without special
// cases, gives the expected loss from the same draws, and with the default
// draws its error (≤ 0.0035) is well below what matters for a decision.
func Best(samples []Sample, maximize bool, opt BestOptions) (BestResult, error) {
	if opt.Draws < 0 {
		return BestResult{}, fmt.Errorf("best version: draws %d: want 0 (default) or more", opt.Draws)
	}
	draws := cmp.Or(opt.Draws, DefaultDraws)
	src := rand.NewPCG(opt.Seed, pcgStream)
	posteriors, err := posteriorsOf(samples, src)
	if err != nil {
		return BestResult{}, fmt.Errorf("best version: %w", err)
	}

	// Minimising θ is maximising −θ, and the loss max(−θ) − (−θ_v) is
	// θ_v − min θ, as documented.
	sign := 1.0
	if !maximize {
		sign = -1
	}
	k := len(posteriors)
	theta := make([]float64, k)
	wins := make([]float64, k)
	loss := make([]float64, k)
	for range draws {
		for v, p := range posteriors {
			theta[v] = sign * p.Rand()
		}
		best, ties := theta[0], 1
		for _, x := range theta[1:] {
			switch {
			case x > best:
				best, ties = x, 1
			case x == best:
				ties++
			}
		}
		share := 1 / float64(ties)
		for v, x := range theta {
			if x == best {
				wins[v] += share
			}
			loss[v] += best - x
		}
	}

	for v := range k {
		wins[v] /= float64(draws)
		loss[v] /= float64(draws)
		if math.IsNaN(loss[v]) || math.IsInf(loss[v], 0) {
			return BestResult{}, fmt.Errorf("best version: sample %d: expected loss overflows float64", v)
		}
	}
	return BestResult{Probability: wins, ExpectedLoss: loss}, nil
}

// posteriorsOf checks the samples and returns the posterior of each one's
// true value, sharing one random source so that draws are reproducible.
func posteriorsOf(samples []Sample, src rand.Source) ([]distuv.Rander, error) {
	if len(samples) < 2 {
		return nil, fmt.Errorf("%d samples: want at least 2", len(samples))
	}
	kind := samples[0].Kind
	posteriors := make([]distuv.Rander, len(samples))
	var errs []error
	for i, s := range samples {
		err := s.Validate()
		switch {
		case err != nil: // reported as it is
		case s.Kind != kind:
			err = fmt.Errorf("kind %s differs from sample 0's %s", s.Kind, kind)
		case s.Kind == KindMean:
			err = s.checkMoments()
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("sample %d: %w", i, err))
			continue
		}
		posteriors[i] = posterior(s, src)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return posteriors, nil
}

// pcgStream is the second PCG seed word; any fixed value keeps results
// reproducible for a given BestOptions.Seed.
const pcgStream = 0x6974657238 // "iter8"

// posterior returns the posterior of a valid sample's true rate or mean.
func posterior(s Sample, src rand.Source) distuv.Rander {
	if s.Kind == KindRate {
		return distuv.Beta{Alpha: 1 + float64(s.Successes), Beta: 1 + float64(s.Trials-s.Successes), Src: src}
	}
	sigma := s.Stdev / math.Sqrt(float64(s.Count))
	if sigma == 0 {
		return pointMass(s.Mean)
	}
	return distuv.Normal{Mu: s.Mean, Sigma: sigma, Src: src}
}

// pointMass is a distribution with all its mass at one value: the posterior
// of a mean whose values did not vary.
type pointMass float64

// Rand returns the value.
func (p pointMass) Rand() float64 { return float64(p) }
