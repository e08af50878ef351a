package abn

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/iter8-tools/iter8/pkg/abn/ledger"
	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/redact"
	"github.com/iter8-tools/iter8/pkg/stats"
)

// maxSummary bounds the response: the totals the task asks for are a few
// hundred bytes per version and metric.
const maxSummary = 16 << 20

// Run reads the application's summary and stores every version's metrics;
// a summary that fails its checks stores nothing.
func (t *Task) Run(ctx context.Context, env *experiment.Env) error {
	sum, err := t.read(ctx)
	if err != nil {
		return err
	}
	for _, v := range t.versions {
		if err := t.check(v, sum.Versions[v]); err != nil {
			return fmt.Errorf("abn: %s: %w", t.where(), err)
		}
	}
	log := env.Logger()
	for _, v := range t.versions {
		vs := sum.Versions[v]
		if vs == nil {
			vs = &ledger.VersionSummary{}
		}
		t.store(env.Result, v, vs, sum)
		log.Info("abn summary read", "application", t.Application, "version", v, "users", vs.Users)
	}
	if others := unknown(sum, t.versions); len(others) > 0 {
		log.Warn("the service has versions the spec does not name; they are not read", "application", t.Application, "versions", strings.Join(others, ", "))
	}
	return nil
}

// where names the endpoint in errors: the summary's URL without the query.
func (t *Task) where() string {
	return "GET " + t.summaryURL.Scheme + "://" + t.summaryURL.Host + t.summaryURL.Path
}

// read fetches and decodes the summary.
func (t *Task) read(ctx context.Context) (ledger.Summary, error) {
	ctx, cancel := context.WithTimeout(ctx, t.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.summaryURL.String(), nil)
	if err != nil {
		return ledger.Summary{}, fmt.Errorf("abn: %s: %w", t.where(), err)
	}
	req.Header.Set("Accept", "application/json")
	client := redact.Client(t.Timeout)
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil {
		return ledger.Summary{}, fmt.Errorf("abn: %s: the A/B/n service is unreachable: %w", t.where(), redact.WithoutURL(err))
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxSummary+1))
	switch {
	case err != nil:
		return ledger.Summary{}, fmt.Errorf("abn: %s: read the response: %w", t.where(), err)
	case resp.StatusCode != http.StatusOK:
		return ledger.Summary{}, fmt.Errorf("abn: %s: status %d: %s", t.where(), resp.StatusCode, serviceError(raw))
	case len(raw) > maxSummary:
		return ledger.Summary{}, fmt.Errorf("abn: %s: the summary is larger than %d MiB", t.where(), maxSummary>>20)
	}
	var sum ledger.Summary
	if err := json.NewDecoder(bytes.NewReader(raw)).Decode(&sum); err != nil {
		return ledger.Summary{}, fmt.Errorf("abn: %s: the response is not a summary (%v): %s", t.where(), err, (&redact.Redactor{}).Excerpt(raw))
	}
	// Any JSON object decodes; the service names the application it
	// summarised, so another endpoint's answer is not read as "no data".
	if sum.App != t.Application {
		return ledger.Summary{}, fmt.Errorf("abn: %s: the response is not a summary of %s (its application is %q): %s", t.where(), t.Application, sum.App, (&redact.Redactor{}).Excerpt(raw))
	}
	return sum, nil
}

// serviceError is the service's own message ({"error": ...}), or the
// start of the body.
func serviceError(raw []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(raw, &e) == nil && e.Error != "" {
		return e.Error
	}
	return (&redact.Redactor{}).Excerpt(raw)
}

// check refuses a version's summary that the service would not write:
// counts below 0, more users with a metric than users exposed or than
// writes of it.
func (t *Task) check(v string, vs *ledger.VersionSummary) error {
	if vs == nil {
		return nil
	}
	if vs.Users < 0 {
		return fmt.Errorf("version %s: users %d: not a summary the service writes", v, vs.Users)
	}
	for _, m := range t.Metrics {
		ms := vs.Metrics[m]
		if ms == nil {
			continue
		}
		bad := ""
		switch u, n := ms.Users.Count, ms.Transactions.Count; {
		case n < 0:
			bad = fmt.Sprintf("transactions.count %d", n)
		case u < 0:
			bad = fmt.Sprintf("users.count %d", u)
		case u > vs.Users:
			bad = fmt.Sprintf("%d users with the metric but %d exposed", u, vs.Users)
		case u > n:
			bad = fmt.Sprintf("%d users with the metric but %d writes", u, n)
		}
		if bad != "" {
			return fmt.Errorf("version %s, metric %s: %s: not a summary the service writes", v, m, bad)
		}
	}
	return nil
}

// store sets version v's metrics from its checked summary vs.
func (t *Task) store(r *experiment.Result, v string, vs *ledger.VersionSummary, sum ledger.Summary) {
	r.SetMetric(v, UsersMetric, float64(vs.Users), "users")
	for _, m := range t.Metrics {
		ms := vs.Metrics[m]
		if ms == nil {
			ms = &ledger.MetricSummary{}
		}
		base := MetricsPrefix + m
		tx := ms.Transactions
		r.SetMetric(v, base+"-count", float64(tx.Count), "")
		r.SetMetric(v, base+"-sum", tx.Sum, "")
		r.SetMetric(v, base+usersSuffix, float64(ms.Users.Count), "users")
		for i, val := range []float64{tx.Mean(), tx.SD(), tx.Min, tx.Max} {
			name := base + transactionSuffixes[2+i]
			if tx.Count == 0 {
				r.SetUnavailable(v, name, "no writes of "+m+" yet")
				continue
			}
			r.SetMetric(v, name, val, "")
		}
		if vs.Users == 0 {
			reason := noUsers(v, sum)
			r.SetUnavailable(v, base+PerUserSuffix, reason)
			r.SetUnavailable(v, base+ConversionSuffix, reason)
			continue
		}
		conversion := stats.RateSample(ms.Users.Count, vs.Users)
		perUser := perUserSample(ms.Users, vs.Users)
		conversion.Cumulative, perUser.Cumulative = true, true
		r.SetMetric(v, base+ConversionSuffix, float64(ms.Users.Count)/float64(vs.Users), "")
		r.SetSample(v, base+ConversionSuffix, conversion)
		r.SetMetric(v, base+PerUserSuffix, perUser.Mean, "")
		r.SetSample(v, base+PerUserSuffix, perUser)
	}
}

// perUserSample is the sample of per-user sums over all exposed users,
// those without the metric counting 0: they add nothing to the sums, only
// to the count.
func perUserSample(withMetric ledger.Moments, exposed int64) stats.Sample {
	all := ledger.Moments{Count: exposed, Sum: withMetric.Sum, SumSquares: withMetric.SumSquares}
	return stats.MeanSample(exposed, all.Mean(), all.SD())
}

// noUsers says why a version has no per-user values.
func noUsers(v string, sum ledger.Summary) string {
	if _, ok := sum.Versions[v]; ok {
		return "no users exposed to version " + v + " yet"
	}
	known := slices.Sorted(maps.Keys(sum.Versions))
	if len(known) == 0 {
		return "no users exposed to version " + v + " yet: the service has no data of this application"
	}
	return fmt.Sprintf("no users exposed to version %s yet (the service has data of %s)", v, strings.Join(known, ", "))
}

// unknown lists the summary's versions that are not among versions.
func unknown(sum ledger.Summary, versions []string) []string {
	var out []string
	for _, v := range slices.Sorted(maps.Keys(sum.Versions)) {
		if !slices.Contains(versions, v) {
			out = append(out, v)
		}
	}
	return out
}
