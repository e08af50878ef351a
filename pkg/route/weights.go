package route

import (
	"fmt"
	"strings"
)

// Strategy is how a release's versions share traffic (the chart's
// strategy value).
type Strategy string

// The chart's strategies.
const (
	BlueGreen Strategy = "blue-green"
	Canary    Strategy = "canary"
	Mirror    Strategy = "mirror"
	None      Strategy = "none"
)

// Strategies are the strategies the chart knows, in the order its values
// document them.
var Strategies = []Strategy{BlueGreen, Canary, Mirror, None}

// MaxWeight is the largest weight the chart accepts for a version.
const MaxWeight = 100

// CheckWeights reports whether weights (one per version, in the order of
// the chart's versions) are valid for strategy, as the chart's values
// schema and validation would: each 0..MaxWeight, at least one above 0 (a
// route whose weights sum to zero sends traffic nowhere), and for
// blue-green and mirror exactly one above 0. An empty strategy checks only
// the weights. The error names the offending version by index.
func CheckWeights(strategy Strategy, weights []int) error {
	if len(weights) == 0 {
		return fmt.Errorf("versions: no versions, so the route would send traffic nowhere")
	}
	weighted := 0
	for i, w := range weights {
		if w < 0 || w > MaxWeight {
			return fmt.Errorf("versions[%d].weight: %d is not between 0 and %d", i, w, MaxWeight)
		}
		if w > 0 {
			weighted++
		}
	}
	if weighted == 0 {
		return fmt.Errorf("versions: every weight is 0, so the route would send traffic nowhere")
	}
	switch strategy {
	case "", Canary, None:
	case BlueGreen, Mirror:
		if weighted != 1 {
			return fmt.Errorf("versions: strategy %s sends all traffic to one version, but %d versions have a weight above 0", strategy, weighted)
		}
	default:
		names := make([]string, len(Strategies))
		for i, s := range Strategies {
			names[i] = string(s)
		}
		return fmt.Errorf("strategy: unknown strategy %q: want one of %s", strategy, strings.Join(names, ", "))
	}
	return nil
}

// Percentages scales weights to whole percentages that sum to 100, as the
// chart does for Istio's VirtualService: each share is rounded down and the
// remainder goes to the heaviest version (the first of them on ties). The
// weights must pass CheckWeights with no strategy.
func Percentages(weights []int) ([]int, error) {
	if err := CheckWeights("", weights); err != nil {
		return nil, err
	}
	total, heaviest := 0, 0
	for i, w := range weights {
		total += w
		if w > weights[heaviest] {
			heaviest = i
		}
	}
	out := make([]int, len(weights))
	sum := 0
	for i, w := range weights {
		out[i] = w * 100 / total
		sum += out[i]
	}
	out[heaviest] += 100 - sum
	return out, nil
}
