package route

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func TestPercentages(t *testing.T) {
	tests := []struct {
		weights []int
		want    []int
		err     string
	}{
		{weights: []int{100}, want: []int{100}},
		{weights: []int{1}, want: []int{100}},
		{weights: []int{90, 10}, want: []int{90, 10}},
		{weights: []int{0, 100}, want: []int{0, 100}},
		{weights: []int{1, 1, 1}, want: []int{34, 33, 33}},             // first heaviest on ties
		{weights: []int{1, 2, 2}, want: []int{20, 40, 40}},             // exact
		{weights: []int{1, 3, 3}, want: []int{14, 44, 42}},             // 14+42+42=98: +2 to the first heaviest
		{weights: []int{2, 1}, want: []int{67, 33}},                    // 66+33=99
		{weights: []int{50, 50, 50}, want: []int{34, 33, 33}},          // sum above 100
		{weights: []int{100, 100, 100, 1}, want: []int{34, 33, 33, 0}}, // 33*3+0=99
		{weights: []int{3, 0, 7}, want: []int{30, 0, 70}},
		{weights: []int{}, err: "no versions"},
		{weights: []int{0, 0}, err: "every weight is 0"},
		{weights: []int{-1, 5}, err: "versions[0].weight: -1 is not between 0 and 100"},
		{weights: []int{5, 101}, err: "versions[1].weight: 101 is not between 0 and 100"},
	}
	for _, tt := range tests {
		got, err := Percentages(tt.weights)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("Percentages(%v): error %v, want %q", tt.weights, err, tt.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("Percentages(%v) = %v, %v; want %v", tt.weights, got, err, tt.want)
		}
	}
}

func TestPercentagesRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		ws := make([]int, 1+rng.IntN(8))
		for i := range ws {
			ws[i] = rng.IntN(MaxWeight + 1)
			if rng.IntN(3) == 0 {
				ws[i] = 0
			}
		}
		if slices.Max(ws) == 0 {
			ws[rng.IntN(len(ws))] = 1 + rng.IntN(MaxWeight)
		}
		got, err := Percentages(ws)
		if err != nil {
			t.Fatalf("Percentages(%v): %v", ws, err)
		}
		sum := 0
		for i, p := range got {
			if p < 0 {
				t.Fatalf("Percentages(%v) = %v: share %d is negative", ws, got, i)
			}
			if ws[i] == 0 && p != 0 {
				t.Fatalf("Percentages(%v) = %v: version %d at weight 0 gets %d%%", ws, got, i, p)
			}
			sum += p
		}
		if sum != 100 {
			t.Fatalf("Percentages(%v) = %v: sum %d, want 100", ws, got, sum)
		}
	}
}

func TestCheckWeights(t *testing.T) {
	tests := []struct {
		strategy Strategy
		weights  []int
		err      string
	}{
		{BlueGreen, []int{100, 0}, ""},
		{BlueGreen, []int{50, 50}, "strategy blue-green sends all traffic to one version, but 2 versions"},
		{Mirror, []int{0, 100}, ""},
		{Mirror, []int{1, 1, 0}, "strategy mirror sends all traffic to one version"},
		{Canary, []int{90, 10}, ""},
		{Canary, []int{0, 0}, "every weight is 0"},
		{None, []int{30, 30, 40}, ""},
		{None, []int{30, 130}, "versions[1].weight: 130"},
		{"", []int{5}, ""},
		{"random", []int{5}, `unknown strategy "random"`},
	}
	for _, tt := range tests {
		err := CheckWeights(tt.strategy, tt.weights)
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("CheckWeights(%s, %v): %v", tt.strategy, tt.weights, err)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("CheckWeights(%s, %v): error %v, want %q", tt.strategy, tt.weights, err, tt.err)
		}
	}
}
