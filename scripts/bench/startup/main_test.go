package main

import (
	"reflect"
	"testing"
)

func TestSplitCommand(t *testing.T) {
	for _, tc := range []struct {
		line string
		want []string
	}{
		{"bin/kubectl-iter8 version", []string{"bin/kubectl-iter8", "version"}},
		{"  kubectl   version\t--client ", []string{"kubectl", "version", "--client"}},
		{"'/a dir/helm' version", []string{"/a dir/helm", "version"}},
		{`"/a dir/helm" version`, []string{"/a dir/helm", "version"}},
		{`/a\ dir/helm version`, []string{"/a dir/helm", "version"}},
		{`'it'\''s' x`, []string{"it's", "x"}},
		{`'' x`, []string{"", "x"}},
		{"", nil},
	} {
		got, err := splitCommand(tc.line)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("splitCommand(%q) = %q, %v; want %q", tc.line, got, err, tc.want)
		}
	}
	for _, bad := range []string{"'open", `"open`, `trailing\`} {
		if _, err := splitCommand(bad); err == nil {
			t.Errorf("splitCommand(%q): no error", bad)
		}
	}
	if got, _ := splitCommand(quote("/it's here/helm") + " version"); !reflect.DeepEqual(got, []string{"/it's here/helm", "version"}) {
		t.Errorf("quote does not round-trip: %q", got)
	}
}

func TestQuantile(t *testing.T) {
	x := []float64{5, 1, 4, 2, 3}
	for _, tc := range []struct{ q, want float64 }{{0, 1}, {0.5, 3}, {1, 5}, {0.1, 1.4}, {0.9, 4.6}} {
		if got := quantile(x, tc.q); got < tc.want-1e-9 || got > tc.want+1e-9 {
			t.Errorf("quantile(%v) = %v, want %v", tc.q, got, tc.want)
		}
	}
	if got := quantile([]float64{1, 2, 3, 4}, 0.5); got != 2.5 {
		t.Errorf("median of 1..4 = %v, want 2.5", got)
	}
}
