package report

import (
	"fmt"
	"io"
	"maps"
	"math"
	"strings"

	"github.com/iter8-tools/iter8/pkg/experiment"
)

// This file shows the assess task's statistics: comparisons of candidates
// with the baseline, and each version's probability of having the best
// reward. Text and html share these helpers so that both show the same
// numbers.

// FormatEffect shows a comparison's effect with its confidence interval:
// "+20.0% [+12.1%, +28.3%]" for a relative change, "-0.0021 [-0.0035,
// -0.0007]" for a difference, and "-" when the comparison has no estimate.
func FormatEffect(c experiment.Comparison) string {
	if c.Effect == nil {
		return "-"
	}
	f := func(v float64) string {
		if c.Relative {
			return fmt.Sprintf("%+.1f%%", v*100)
		}
		s := formatStat(v)
		if v >= 0 {
			s = "+" + s
		}
		return s
	}
	s := f(*c.Effect)
	if c.Low != nil && c.High != nil {
		s += fmt.Sprintf(" [%s, %s]", f(*c.Low), f(*c.High))
	}
	return s
}

// formatPValue shows a p-value to two significant digits, and the tiny ones
// as "<0.0001": more digits than that say nothing.
func formatPValue(p *float64) string {
	switch {
	case p == nil:
		return "-"
	case *p < 0.0001:
		return "<0.0001"
	default:
		return FormatValue(roundSignificant(*p, 2))
	}
}

// comparisonPValue is the p-value a comparison's verdict rests on: Holm's
// adjusted one when the experiment made several comparisons.
func comparisonPValue(c experiment.Comparison) *float64 {
	if c.AdjustedPValue != nil {
		return c.AdjustedPValue
	}
	return c.PValue
}

// comparisonsMethod says, in one line, how the comparisons were judged
// beyond the confidence: Holm's correction and sequential mode; empty for
// one fixed-sample comparison.
func comparisonsMethod(cs []experiment.Comparison) string {
	var parts []string
	if n, ok := inCommon(cs, func(c experiment.Comparison) int { return c.Family }); ok && n > 1 {
		parts = append(parts, fmt.Sprintf("p-values adjusted together with Holm's method (%d comparisons)", n))
	}
	looks := 0
	var pooling string
	for _, c := range cs {
		if c.Sequential != nil && c.Sequential.Looks > looks {
			looks, pooling = c.Sequential.Looks, string(c.Sequential.Pooling)
		}
	}
	if looks > 0 {
		parts = append(parts, fmt.Sprintf("sequential (%s) after %d loops: p-values stay valid whenever you look, intervals are confidence sequences", pooling, looks))
	}
	return strings.Join(parts, "; ")
}

// formatCounts shows the sample sizes compared, baseline first.
func formatCounts(c experiment.Comparison) string {
	if c.BaselineCount == 0 && c.CandidateCount == 0 {
		return "-"
	}
	return fmt.Sprintf("%d/%d", c.BaselineCount, c.CandidateCount)
}

// formatConfidence shows a confidence level as a percentage, such as 95%.
func formatConfidence(c float64) string {
	return FormatValue(math.Round(c*1e4)/1e2) + "%"
}

// formatProbability shows a probability as a percentage with one decimal,
// without rounding a near certainty up to 100% or a slim chance down to 0%.
func formatProbability(p float64) string {
	switch {
	case p > 0.999 && p < 1:
		return ">99.9%"
	case p > 0 && p < 0.001:
		return "<0.1%"
	default:
		return fmt.Sprintf("%.1f%%", p*100)
	}
}

// formatStat shows a derived statistic (an expected loss, a difference) to
// three significant digits.
func formatStat(v float64) string {
	return FormatValue(roundSignificant(v, 3))
}

// roundSignificant rounds v to n significant digits.
func roundSignificant(v float64, n int) float64 {
	if v == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return v
	}
	d := n - 1 - int(math.Floor(math.Log10(math.Abs(v))))
	if d >= 0 {
		p := math.Pow(10, float64(d))
		return math.Round(v*p) / p
	}
	p := math.Pow(10, float64(-d))
	return math.Round(v/p) * p
}

// comparisonVersions shows "candidate vs baseline".
func comparisonVersions(c experiment.Comparison) string {
	return experiment.VersionName(c.Candidate) + " vs " + experiment.VersionName(c.Baseline)
}

// comparisonNote is what a reader should know about a comparison beyond its
// verdict: why it is inconclusive or could not be made; empty when nothing.
func comparisonNote(c experiment.Comparison) string {
	var notes []string
	switch {
	case c.Reason != "":
		notes = append(notes, oneLine(c.Reason))
	case c.Verdict == experiment.VerdictInconclusive && c.Needed > 0 && c.Sequential == nil:
		notes = append(notes, fmt.Sprintf("a change of the minimum effect needs about %d per version to detect", c.Needed))
	}
	if c.Threshold > 0 {
		notes = append(notes, fmt.Sprintf("share of requests at or above %s ms, the baseline's percentile", FormatValue(roundSignificant(c.Threshold, 3))))
	}
	// Small design effects are noise; from 1.5 on they change the verdict.
	if c.DesignEffect >= 1.5 {
		notes = append(notes, fmt.Sprintf("requests correlated in time or on a connection: variance %sx that of independent ones", FormatValue(roundSignificant(c.DesignEffect, 2))))
	}
	return strings.Join(notes, "; ")
}

// sharedConfidence returns the confidence level of all comparisons when
// they share one, so that a table can say it once.
func sharedConfidence(cs []experiment.Comparison) (float64, bool) {
	return inCommon(cs, func(c experiment.Comparison) float64 { return c.Confidence })
}

// inCommon returns what every comparison has in common by key, if anything.
func inCommon[T comparable](cs []experiment.Comparison, key func(experiment.Comparison) T) (T, bool) {
	var none T
	if len(cs) == 0 {
		return none, false
	}
	for _, c := range cs[1:] {
		if key(c) != key(cs[0]) {
			return none, false
		}
	}
	return key(cs[0]), true
}

// writeComparisons writes the comparisons table, and below it why the
// inconclusive ones are.
func writeComparisons(w io.Writer, r *experiment.Result) {
	if len(r.Comparisons) == 0 {
		return
	}
	conf, shared := sharedConfidence(r.Comparisons)
	// One pair of versions is named in the title rather than on every row,
	// so that the table fits 80 columns.
	pair, onePair := inCommon(r.Comparisons, comparisonVersions)
	title := "Comparisons"
	if shared && conf > 0 {
		title += " (" + formatConfidence(conf) + " confidence)"
	}
	if onePair {
		title += ": " + Printable(pair)
	}
	fmt.Fprintf(w, "\n%s\n", title)
	if m := comparisonsMethod(r.Comparisons); m != "" {
		for _, l := range wrap("  ", m) {
			fmt.Fprintln(w, l)
		}
	}
	// row writes a row of the table, with the versions and the confidence
	// only when they vary.
	row := func(metric, versions, confidence string, rest ...string) {
		cells := []string{metric}
		if !onePair {
			cells = append(cells, versions)
		}
		if !shared {
			cells = append(cells, confidence)
		}
		fmt.Fprintf(w, "  %s\n", strings.Join(append(cells, rest...), "\t"))
	}
	row("METRIC", "VERSIONS", "CONFIDENCE", "EFFECT", "P-VALUE", "N (B/C)", "VERDICT")
	var notes []string
	for _, c := range r.Comparisons {
		// "[a,b]" without a space: the table then fits 80 columns with a
		// difference's interval and an inconclusive verdict on one row.
		effect := strings.Replace(FormatEffect(c), ", ", ",", 1)
		row(Printable(c.Metric), Printable(comparisonVersions(c)), formatConfidence(c.Confidence),
			effect, formatPValue(comparisonPValue(c)), formatCounts(c), Printable(string(c.Verdict)))
		if note := comparisonNote(c); note != "" {
			label := c.Metric
			if !onePair {
				label += ", " + comparisonVersions(c)
			}
			notes = append(notes, wrap("  "+Printable(label)+": ", note)...)
		}
	}
	for _, n := range notes {
		fmt.Fprintln(w, n)
	}
}

// hasRewardStats reports whether any reward has probabilities of being best
// or says why not; results from before these existed have neither.
func hasRewardStats(r *experiment.Result) bool {
	for _, rw := range r.Rewards {
		if len(rw.ProbabilityBest) > 0 || len(rw.ExpectedLoss) > 0 || rw.Reason != "" {
			return true
		}
	}
	return false
}

type rewardRow struct {
	Version, PBest, Loss string
	Best                 bool
}

// rewardRows has one row per version (those of the result, then any others
// the reward names) with its probability of being best and expected loss,
// or none when the reward has no probabilities.
func rewardRows(r *experiment.Result, rw experiment.RewardResult) []rewardRow {
	if len(rw.ProbabilityBest) == 0 && len(rw.ExpectedLoss) == 0 {
		return nil
	}
	var rows []rewardRow
	for _, v := range versionsAnd(r, maps.Keys(rw.ProbabilityBest), maps.Keys(rw.ExpectedLoss)) {
		row := rewardRow{Version: experiment.VersionName(v), PBest: "-", Loss: "-", Best: rw.Best != "" && v == rw.Best}
		if p, ok := rw.ProbabilityBest[v]; ok {
			row.PBest = formatProbability(p)
		}
		if l, ok := rw.ExpectedLoss[v]; ok {
			row.Loss = formatStat(l)
		}
		rows = append(rows, row)
	}
	return rows
}

// writeRewards writes, per reward, each version's probability of being
// best and expected loss, or why there are none.
func writeRewards(w io.Writer, r *experiment.Result) {
	if !hasRewardStats(r) {
		return
	}
	fmt.Fprintf(w, "\nRewards\tVERSION\tP(BEST)\tEXPECTED LOSS\n")
	var notes []string
	for _, rw := range r.Rewards {
		label := Printable(fmt.Sprintf("%s (%s)", rw.Metric, rw.Direction))
		rows := rewardRows(r, rw)
		if len(rows) == 0 {
			best := "-"
			if rw.Best != "" {
				best = textVersion(rw.Best) + " (best)"
			}
			fmt.Fprintf(w, "  %s\t%s\t-\t-\n", label, best)
		}
		for i, row := range rows {
			v := Printable(row.Version)
			if row.Best {
				v += " (best)"
			}
			if i > 0 {
				label = ""
			}
			fmt.Fprintf(w, "  %s\t%s\t%s\t%s\n", label, v, row.PBest, row.Loss)
		}
		if rw.Reason != "" {
			notes = append(notes, wrap("  "+Printable(rw.Metric)+": ", rw.Reason)...)
		}
	}
	for _, n := range notes {
		fmt.Fprintln(w, n)
	}
}
