package stats

import (
	"math"
	"testing"
)

// TestReplaceJudgesTheLatestCumulativeLook: a growing sample's look
// replaces the evidence (information is the latest look's, not a sum), the
// p-value is the smallest so far, the same data add nothing, and per-loop
// pooling judges a growing sample as pooled does.
func TestReplaceJudgesTheLatestCumulativeLook(t *testing.T) {
	look := func(est, v float64) Comparison { return Comparison{Estimate: est, Variance: v, DF: math.Inf(1)} }
	const conf, scale = 0.95, 0.1
	for _, pooling := range []Pooling{Pooled, PerLoop} {
		e := Evidence{Pooling: pooling}
		first, err := e.Replace(look(0.5, 0.01), conf, scale, "loop 1")
		if err != nil {
			t.Fatal(err)
		}
		second, err := first.Evidence.Replace(look(0, 0.005), conf, scale, "loop 2")
		if err != nil {
			t.Fatal(err)
		}
		ev := second.Evidence
		if ev.Looks != 2 || ev.Information != 200 || ev.Weighted != 0 || ev.Pooling != pooling || !near(ev.Mixture, scale*scale, 1e-12) {
			t.Errorf("%s: evidence after two looks %+v: want 2 looks, information 1/0.005 = 200 (the last look's), weighted 0, mixture %v", pooling, ev, scale*scale)
		}
		if ev.PValue != first.Evidence.PValue || !(ev.PValue < 0.05) {
			t.Errorf("%s: p-value %v after a null look, first look's %v: want the smallest kept (below 0.05)", pooling, ev.PValue, first.Evidence.PValue)
		}
		if second.Estimate != 0 || !(second.Low < 0 && second.High > 0) {
			t.Errorf("%s: estimate %v [%v, %v]: want the latest look's 0 inside its sequence", pooling, second.Estimate, second.Low, second.High)
		}
		again, err := ev.Replace(look(0.5, 0.001), conf, scale, "loop 2")
		if err != nil || again.Evidence.Looks != 2 || again.Evidence.Information != 200 {
			t.Errorf("%s: the same data again: %+v, %v; want nothing added", pooling, again.Evidence, err)
		}
	}
	// Add sums the information of looks, for contrast.
	added, _ := Evidence{Pooling: Pooled}.Add(look(0.3, 0.01), conf, scale, "1")
	added, _ = added.Evidence.Add(look(0, 0.005), conf, scale, "2")
	if added.Evidence.Information != 300 {
		t.Errorf("Add: information %v, want 100 + 200", added.Evidence.Information)
	}
	if _, err := (Evidence{Pooling: "fixed"}).Replace(look(0, 1), conf, scale, ""); err == nil {
		t.Error("Replace with pooling fixed: no error")
	}
}
