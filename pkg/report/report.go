package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/iter8-tools/iter8/pkg/experiment"
)

// Format is an output format.
type Format string

// The formats.
const (
	Text Format = "text"
	JSON Format = "json"
	YAML Format = "yaml"
)

// Formats lists the supported formats.
var Formats = []Format{Text, HTML, JSON, YAML}

// ParseFormat checks a format name.
func ParseFormat(s string) (Format, error) {
	f := Format(strings.ToLower(s))
	if slices.Contains(Formats, f) {
		return f, nil
	}
	names := make([]string, len(Formats))
	for i, f := range Formats {
		names[i] = string(f)
	}
	return "", fmt.Errorf("unknown output format %q: want one of %s", s, strings.Join(names, ", "))
}

// Write writes r in format f.
func Write(w io.Writer, r *experiment.Result, f Format) error {
	switch f {
	case Text:
		return writeText(w, r)
	case HTML:
		return writeHTML(w, r, plotlyJS())
	default:
		return WriteData(w, r, f)
	}
}

// WriteData writes v as indented JSON or as YAML: the one printer of
// structured output, for results and for what other commands print.
func WriteData(w io.Writer, v any, f Format) error {
	switch f {
	case JSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case YAML:
		data, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		_, err = w.Write(data)
		return err
	default:
		return fmt.Errorf("unknown output format %q", f)
	}
}

// writeText writes the text report. Every name and text from the result
// goes through Printable or oneLine, and everything written passes an
// escapeWriter as well, so that a result file cannot drive the terminal.
func writeText(out io.Writer, r *experiment.Result) error {
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 4, 2, ' ', 0)
	w := escapeWriter{tw}
	writeSummary(w, r)
	writeTasks(w, r)
	versions := make([]string, len(r.Versions))
	for i, v := range r.Versions {
		versions[i] = textVersion(v.Name)
	}
	if len(r.SLOs) > 0 {
		fmt.Fprintf(w, "\nSLOs\t%s\n", strings.Join(versions, "\t"))
		for _, row := range sloRows(r) {
			cells := make([]string, len(row.verdicts))
			for j, v := range row.verdicts {
				cells[j] = "-"
				if v != nil {
					cells[j] = mark(v.Satisfied)
				}
			}
			fmt.Fprintf(w, "  %s\t%s\n", Printable(row.label), strings.Join(cells, "\t"))
		}
	}
	writeMetrics(w, r, versions)
	writeUsers(w, r)
	writeWorkers(w, r)
	writeNotes(w, r)
	writeComparisons(w, r)
	writeRewards(w, r)
	writeTrend(w, r)
	if err := tw.Flush(); err != nil {
		return err
	}
	// Empty last columns leave padding behind; drop it.
	lines := strings.Split(buf.String(), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	_, err := io.WriteString(out, strings.Join(lines, "\n"))
	return err
}

// writeSummary writes the lines above the tables: experiment, state, start,
// SLOs and winner.
func writeSummary(w io.Writer, r *experiment.Result) {
	fmt.Fprintf(w, "Experiment:\t%s (revision %d)\n", Printable(r.Experiment), r.Revision)
	fmt.Fprintf(w, "State:\t%s\n", stateLine(r))
	took := "running"
	if r.EndTime != nil {
		took = "took " + r.EndTime.Sub(r.StartTime).Round(time.Millisecond).String()
	}
	fmt.Fprintf(w, "Started:\t%s, %s\n", r.StartTime.Format(time.RFC3339), took)
	if len(r.SLOs) > 0 {
		fmt.Fprintf(w, "SLOs:\t%s\n", sloLine(r))
	}
	if len(r.Rewards) > 0 {
		rw := r.Rewards[0]
		if r.Winner != "" {
			fmt.Fprintf(w, "Winner:\t%s (by %s, %s)\n", textVersion(r.Winner), Printable(rw.Metric), Printable(string(rw.Direction)))
		} else {
			fmt.Fprintf(w, "Winner:\tnone: no version meets its SLOs with a value of %s\n", Printable(rw.Metric))
		}
	}
	if r.Stopped != "" {
		fmt.Fprintf(w, "Stopped:\t%s\n", Printable(r.Stopped))
	}
	if b := r.Bandit; b != nil {
		var parts []string
		for _, v := range r.Versions {
			part := fmt.Sprintf("%s %d", textVersion(v.Name), b.Weights[v.Name])
			if p, ok := b.ProbabilityBest[v.Name]; ok {
				part += fmt.Sprintf(" (P(best) %.3f)", p)
			}
			parts = append(parts, part)
		}
		fmt.Fprintf(w, "Bandit:\t%s at revision %d: %s\n", Printable(b.Release), b.Revision, strings.Join(parts, ", "))
		if b.Reason != "" {
			fmt.Fprintf(w, "\t%s\n", Printable(b.Reason))
		}
		if b.Promoted != "" {
			fmt.Fprintf(w, "Promoted:\t%s\n", textVersion(b.Promoted))
		}
	}
	if ro := r.Rollout; ro != nil {
		fmt.Fprintf(w, "Rollout:\t%s at revision %d: %s\n", Printable(ro.Release), ro.Revision, RolloutStep(ro))
		if ro.Reason != "" {
			fmt.Fprintf(w, "\t%s\n", Printable(ro.Reason))
		}
	}
}

// RolloutStep says where a rollout is: "v2 at step 2 of 4 (25%), rolled
// back", the outcome once it ended.
func RolloutStep(ro *experiment.Rollout) string {
	s := fmt.Sprintf("%s at step %d of %d (%d%%)", textVersion(ro.Candidate), ro.Step+1, len(ro.Steps), ro.Weights[ro.Candidate])
	if ro.Step < 0 {
		s = fmt.Sprintf("%s before its first step (%d%%)", textVersion(ro.Candidate), ro.Weights[ro.Candidate])
	}
	switch {
	case ro.Outcome != "":
		s += ", " + Printable(ro.Outcome)
	case ro.PausedSince != nil:
		s += ", paused"
	}
	return s
}

// writeTasks writes the tasks table. Errors and reasons go below it,
// wrapped: a backend's error is often longer than a line.
func writeTasks(w io.Writer, r *experiment.Result) {
	fmt.Fprintf(w, "\nTasks\n  #\tTASK\tSTATE\tDURATION\n")
	var details []string
	for i, t := range r.Tasks {
		fmt.Fprintf(w, "  %d\t%s\t%s\t%s\n", i, Printable(t.Task), Printable(string(t.State)), taskDuration(t))
		for _, text := range []string{t.Error, t.Reason} {
			if text != "" {
				details = append(details, wrap(fmt.Sprintf("  %d %s: ", i, Printable(t.Task)), text)...)
			}
		}
	}
	for _, l := range details {
		fmt.Fprintln(w, l)
	}
}

// taskDuration shows how long a task that ran took, and nothing for one
// that is pending, running or skipped.
func taskDuration(t experiment.TaskResult) string {
	if t.State != experiment.TaskSucceeded && t.State != experiment.TaskFailed {
		return ""
	}
	return t.Duration.Round(time.Millisecond).String()
}

// writeMetrics writes the metrics table: a column per version, and the
// best version when there are several.
func writeMetrics(w io.Writer, r *experiment.Result, versions []string) {
	names := r.MetricNames()
	if len(names) == 0 {
		return
	}
	header := "\nMetrics\t" + strings.Join(versions, "\t")
	multi := len(r.Versions) > 1
	if multi {
		header += "\tBEST"
	}
	fmt.Fprintln(w, header)
	for _, name := range names {
		label, cells := Printable(name), make([]string, len(r.Versions))
		for i, v := range r.Versions {
			m, ok := v.Metrics[name]
			if !ok {
				cells[i] = "-"
				if _, unavailable := v.Unavailable[name]; unavailable {
					cells[i] = "n/a" // the reason is in the notes
				}
				continue
			}
			cells[i] = compact(m.Value)
			if m.Unit != "" {
				label = Printable(name + " (" + m.Unit + ")")
			}
		}
		line := "  " + label + "\t" + strings.Join(cells, "\t")
		if multi {
			line += "\t" + Printable(Best(r, name))
		}
		fmt.Fprintln(w, line)
	}
}

// writeWorkers sums up, per load spread over workers and version, what the
// workers sent: how many, the least and most requests of one, the errors,
// and the workers that failed. The JSON and YAML reports list each worker.
func writeWorkers(w io.Writer, r *experiment.Result) {
	var lines []string
	for _, v := range r.Versions {
		for _, load := range slices.Sorted(maps.Keys(v.Workers)) {
			counts := v.Workers[load]
			if len(counts) == 0 {
				continue
			}
			lo, hi := counts[0].Requests, counts[0].Requests
			var errs int64
			var failed []string
			for _, c := range counts {
				lo, hi, errs = min(lo, c.Requests), max(hi, c.Requests), errs+c.Errors
				if c.Error != "" {
					failed = append(failed, fmt.Sprintf("worker %d: %s", c.Worker, c.Error))
				}
			}
			text := fmt.Sprintf("%d workers, %d to %d requests each, %d errors", len(counts), lo, hi, errs)
			if len(failed) > 0 {
				text += "; failed: " + strings.Join(failed, "; ")
			}
			lines = append(lines, wrap(fmt.Sprintf("  %s for %s: ", Printable(load), textVersion(v.Name)), text)...)
		}
	}
	if len(lines) > 0 {
		fmt.Fprintf(w, "\nWorkers\n%s\n", strings.Join(lines, "\n"))
	}
}

// writeNotes writes why SLOs have no verdict, metrics no value and requests
// no response.
func writeNotes(w io.Writer, r *experiment.Result) {
	var reasons []string
	for _, v := range r.SLOs {
		if v.Reason != "" {
			reasons = append(reasons, wrap(fmt.Sprintf("  %s for %s: ", Printable(v.Metric), textVersion(v.Version)), v.Reason)...)
		}
	}
	for _, v := range r.Versions {
		for _, name := range slices.Sorted(maps.Keys(v.Unavailable)) {
			reasons = append(reasons, wrap(fmt.Sprintf("  %s for %s: unavailable: ", Printable(name), textVersion(v.Name)), v.Unavailable[name])...)
		}
	}
	for _, f := range failedRequests(r) {
		reasons = append(reasons, wrap(fmt.Sprintf("  %s for %s: ", Printable(f.Load), Printable(f.Version)), f.Text)...)
	}
	if len(reasons) > 0 {
		fmt.Fprintf(w, "\nNotes\n%s\n", strings.Join(reasons, "\n"))
	}
}

// failedRequest says how many requests of a load of a version (named by
// experiment.VersionName) failed in one way.
type failedRequest struct {
	Version, Load, Text string
}

// failedRequests lists, for every version and load (http, http-<endpoint>),
// the requests that got no complete response, by kind, with the first
// one's reason.
func failedRequests(r *experiment.Result) []failedRequest {
	var out []failedRequest
	for _, v := range r.Versions {
		for _, load := range slices.Sorted(maps.Keys(v.Failures)) {
			for _, f := range v.Failures[load] {
				out = append(out, failedRequest{Version: experiment.VersionName(v.Name), Load: load,
					Text: fmt.Sprintf("%d requests failed: %s (%s)", f.Count, f.Kind, f.Example)})
			}
		}
	}
	return out
}

// textVersion is a version's name for the text report.
func textVersion(v string) string { return Printable(experiment.VersionName(v)) }

func stateLine(r *experiment.Result) string {
	loop := ""
	if hasLoops(r) {
		loop = loopPhrase(r) + ", "
	}
	done, failed := 0, -1
	for i, t := range r.Tasks {
		if t.State == experiment.TaskSucceeded || t.State == experiment.TaskSkipped {
			done++
		}
		if t.State == experiment.TaskFailed && failed < 0 {
			failed = i
		}
	}
	switch {
	case r.Interrupted:
		return fmt.Sprintf("interrupted: %s%d of %d tasks done (a retried Job resumes it)", loop, done, len(r.Tasks))
	case failed >= 0:
		return fmt.Sprintf("failed: %stask %d (%s) failed", loop, failed, Printable(r.Tasks[failed].Task))
	case !r.Completed():
		return fmt.Sprintf("running: %s%d of %d tasks done", loop, done, len(r.Tasks))
	default:
		return fmt.Sprintf("completed: %s%d of %d tasks done, none failed", loop, done, len(r.Tasks))
	}
}

func sloLine(r *experiment.Result) string {
	n := 0
	for _, v := range r.SLOs {
		if !v.Satisfied {
			n++
		}
	}
	if n == 0 {
		return fmt.Sprintf("all %d satisfied", len(r.SLOs))
	}
	return fmt.Sprintf("%d of %d not satisfied", n, len(r.SLOs))
}

// sloRow is one objective with its verdict for each version; nil where it
// does not apply.
type sloRow struct {
	label    string
	verdicts []*experiment.SLOVerdict
}

// sloRows lays the verdicts out as one row per objective and one column per
// version, for the text and the html table alike.
func sloRows(r *experiment.Result) []sloRow {
	var rows []sloRow
	index := map[string]int{}
	for k, v := range r.SLOs {
		label := SLOLabel(v)
		i, ok := index[label]
		if !ok {
			i = len(rows)
			index[label] = i
			rows = append(rows, sloRow{label: label, verdicts: make([]*experiment.SLOVerdict, len(r.Versions))})
		}
		for j, ver := range r.Versions {
			if ver.Name == v.Version {
				rows[i].verdicts[j] = &r.SLOs[k]
			}
		}
	}
	return rows
}

// SLOLabel shows an objective, such as "0.5 <= http/latency-p99 <= 100".
func SLOLabel(v experiment.SLOVerdict) string {
	label := v.Metric
	if v.Lower != nil {
		label = FormatValue(*v.Lower) + " <= " + label
	}
	if v.Upper != nil {
		label += " <= " + FormatValue(*v.Upper)
	}
	return label
}

func mark(ok bool) string {
	if ok {
		return "✔"
	}
	return "✗"
}

// FormatValue shows a metric value in the shortest form that reads back
// exactly.
func FormatValue(v float64) string {
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// Best returns the version with the best value of a metric: the reward's
// direction when the metric is a reward, lower for latencies and errors, and
// none for metrics without a direction (such as request counts) or a single
// version.
func Best(r *experiment.Result, metric string) string {
	for _, rw := range r.Rewards {
		if rw.Metric == metric {
			return rw.Best
		}
	}
	base := metric[strings.LastIndex(metric, "/")+1:]
	lowerIsBetter := strings.HasPrefix(base, "latency-") && base != "latency-stddev" ||
		base == "error-count" || base == "error-rate"
	if !lowerIsBetter || len(r.Versions) < 2 {
		return ""
	}
	best, found, tie := "", false, false
	var bv float64
	for _, v := range r.Versions {
		m, ok := v.Metrics[metric]
		if !ok {
			continue
		}
		switch {
		case !found || m.Value < bv:
			best, bv, found, tie = v.Name, m.Value, true, false
		case m.Value == bv:
			tie = true
		}
	}
	if tie {
		return ""
	}
	return best
}
