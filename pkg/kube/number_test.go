package kube

import (
	"encoding/json"
	"math"
	"testing"
)

func TestWholeNumber(t *testing.T) {
	tests := []struct {
		in   any
		want int64
		ok   bool
	}{
		{3, 3, true},
		{int32(-4), -4, true},
		{int64(math.MaxInt64), math.MaxInt64, true},
		{float64(100), 100, true},
		{-2.0, -2, true},
		{2.5, 0, false},
		{math.Pow(2, 63), 0, false},
		{math.Inf(1), 0, false},
		{math.NaN(), 0, false},
		{json.Number("42"), 42, true},
		{json.Number("1e3"), 1000, true},
		{json.Number("0.5"), 0, false},
		{"7", 0, false},
		{nil, 0, false},
	}
	for _, tt := range tests {
		got, ok := WholeNumber(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("WholeNumber(%#v) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}
