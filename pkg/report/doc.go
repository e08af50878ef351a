// Package report writes an experiment result for people (text, and a
// self-contained html page) and for programs (json, yaml).
//
// Besides tasks, SLOs and metrics, the text and html reports show the
// assess task's comparisons of candidates with the baseline (compare.go),
// each version's probability of having the best reward, and for an
// experiment with loops the trend of the key metrics loop by loop
// (trend.go), and for an A/B/n experiment each version's users beside its
// weight and the bandit's state (users.go). Sections whose fields a result lacks are left out, so older
// results read as before.
package report
