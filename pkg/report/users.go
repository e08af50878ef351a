package report

import (
	"fmt"
	"io"
	"maps"
	"strings"

	"github.com/iter8-tools/iter8/pkg/experiment"
)

// This file shows an A/B/n experiment's users per version beside the
// weight the bandit gave each version, and the bandit's state.

// abnUsers is the abn task's count of users exposed to a version (the
// report imports no task).
const abnUsers = "abn/users"

// userRow is one version's users, share of all users and weight, shown
// ("-" where unknown) for the text and the html table alike.
type userRow struct {
	Version, Users, Share, Weight string
}

// userRows lists every version's users, its share of all users and its
// weight, and whether any version has a weight. The weight is the bandit's
// after the last loop, or else the bandit/weight metric. It returns nil
// when no version has abn/users: the experiment is not an A/B/n one.
func userRows(r *experiment.Result) ([]userRow, bool) {
	total, found := 0.0, false
	for _, v := range r.Versions {
		if m, ok := v.Metrics[abnUsers]; ok {
			total += m.Value
			found = true
		}
	}
	if !found {
		return nil, false
	}
	var rows []userRow
	weights := false
	for _, v := range r.Versions {
		row := userRow{Version: experiment.VersionName(v.Name), Users: "-", Share: "-", Weight: "-"}
		if m, ok := v.Metrics[abnUsers]; ok {
			row.Users = FormatValue(m.Value)
			if total > 0 {
				row.Share = fmt.Sprintf("%.1f%%", 100*m.Value/total)
			}
		}
		if w, ok := versionWeight(r, v); ok {
			row.Weight = FormatValue(w) + "%"
			weights = true
		}
		rows = append(rows, row)
	}
	return rows, weights
}

// versionWeight is a version's weight in percent: the bandit's state is
// the weight in force, the metric only what the last bandit task stored.
func versionWeight(r *experiment.Result, v experiment.VersionResult) (float64, bool) {
	if r.Bandit != nil {
		if w, ok := r.Bandit.Weights[v.Name]; ok {
			return float64(w), true
		}
	}
	m, ok := v.Metrics[banditWeight]
	return m.Value, ok
}

// usersNote says why shares and weights differ even at a steady weight.
const usersNote = "users since the start of the experiment; weight after the last loop"

// writeUsers writes the users table of an A/B/n experiment.
func writeUsers(w io.Writer, r *experiment.Result) {
	rows, weights := userRows(r)
	if rows == nil {
		return
	}
	header := []string{"VERSION", "USERS", "SHARE"}
	if weights {
		header = append(header, "WEIGHT")
	}
	fmt.Fprintf(w, "\nUsers\n  %s\n", strings.Join(header, "\t"))
	for _, row := range rows {
		cells := []string{Printable(row.Version), row.Users, row.Share}
		if weights {
			cells = append(cells, row.Weight)
		}
		fmt.Fprintf(w, "  %s\n", strings.Join(cells, "\t"))
	}
	if weights {
		fmt.Fprintf(w, "  %s\n", usersNote)
	}
}

// htmlBandit is the bandit's state for the html report.
type htmlBandit struct {
	Release  string
	Revision int
	Reason   string
	Promoted string
	Rows     []htmlBanditRow
}

type htmlBanditRow struct {
	Version, Weight, PBest string
	Promoted               bool
}

// newHTMLBandit lists the bandit's weight and P(best) of the result's
// versions, then of any other version the bandit names.
func newHTMLBandit(r *experiment.Result) *htmlBandit {
	b := r.Bandit
	if b == nil {
		return nil
	}
	hb := &htmlBandit{Release: b.Release, Revision: b.Revision, Reason: b.Reason}
	if b.Promoted != "" {
		hb.Promoted = experiment.VersionName(b.Promoted)
	}
	for _, v := range versionsAnd(r, maps.Keys(b.Weights), maps.Keys(b.ProbabilityBest)) {
		row := htmlBanditRow{Version: experiment.VersionName(v), Weight: "-", PBest: "-", Promoted: b.Promoted != "" && v == b.Promoted}
		if w, ok := b.Weights[v]; ok {
			row.Weight = fmt.Sprintf("%d%%", w)
		}
		if p, ok := b.ProbabilityBest[v]; ok {
			row.PBest = fmt.Sprintf("%.3f", p)
		}
		hb.Rows = append(hb.Rows, row)
	}
	return hb
}
