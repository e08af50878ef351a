package client

import (
	"fmt"
	"math"
	"unicode/utf8"
)

// The service's limits (pkg/abn/ledger in Iter8's main module), repeated
// here because this module does not depend on it: a value the service would
// refuse is refused at WriteMetric, never sent in a batch with others.
const (
	maxUserLength    = 512
	maxVersionLength = 63
	maxMetricLength  = 128
	// MaxValue is the largest magnitude of a value the service stores.
	MaxValue = 1e9
)

// checkValue applies the service's rules to one value.
func checkValue(user, version, metric string, value float64) error {
	if err := checkName("user", user, maxUserLength, true); err != nil {
		return err
	}
	if err := checkName("version", version, maxVersionLength, false); err != nil {
		return err
	}
	if err := checkName("metric", metric, maxMetricLength, true); err != nil {
		return err
	}
	for i, r := range metric {
		letter := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
		if i == 0 && !letter {
			return fmt.Errorf("metric %q: does not start with a letter", metric)
		}
		if !letter && !(r >= '0' && r <= '9') && r != '_' && r != '-' && r != '.' {
			return fmt.Errorf("metric %q: holds %q: want letters, digits, '_', '-' or '.'", metric, r)
		}
	}
	if math.IsNaN(value) || math.IsInf(value, 0) {
		return fmt.Errorf("value %v: not a finite number", value)
	}
	if math.Abs(value) > MaxValue {
		return fmt.Errorf("value %g: larger in magnitude than %g", value, float64(MaxValue))
	}
	return nil
}

func checkName(field, s string, limit int, required bool) error {
	switch {
	case s == "" && required:
		return fmt.Errorf("%s: is empty", field)
	case len(s) > limit:
		return fmt.Errorf("%s: is %d bytes long, more than %d", field, len(s), limit)
	case !utf8.ValidString(s):
		// protobuf refuses to send it, failing the whole batch.
		return fmt.Errorf("%s: is not valid UTF-8", field)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%s: holds the control character %U", field, r)
		}
	}
	return nil
}
