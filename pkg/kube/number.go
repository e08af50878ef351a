package kube

import (
	"encoding/json"
	"math"
)

// WholeNumber reads a whole number from a value decoded from JSON or YAML,
// such as Helm values or a field of an unstructured object: depending on
// the decoder it is an int, int32, int64, float64 or json.Number. A
// fraction, a number beyond int64, or anything else is not one.
func WholeNumber(v any) (int64, bool) {
	switch n := v.(type) {
	case int:
		return int64(n), true
	case int32:
		return int64(n), true
	case int64:
		return n, true
	case float64:
		// MaxInt64 rounds up to 2^63 as a float64, which does not fit.
		if n == math.Trunc(n) && n >= math.MinInt64 && n < math.MaxInt64 {
			return int64(n), true
		}
	case json.Number:
		if i, err := n.Int64(); err == nil {
			return i, true
		}
		if f, err := n.Float64(); err == nil {
			return WholeNumber(f) // 1e3 or 2.0
		}
	}
	return 0, false
}
