package abn

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"slices"
	"strings"

	"github.com/iter8-tools/iter8/pkg/abn/ledger"
	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/redact"
	"github.com/iter8-tools/iter8/pkg/stats"
)

// maxSummary bounds the response: a summary holds a bucket per metric and
// minute (the service's default width), about 150 bytes each, so a week of
// one metric of one version is some 1.5 MB.
const maxSummary = 64 << 20

// Run reads the application's summary and stores every version's metrics.
func (t *Task) Run(ctx context.Context, env *experiment.Env) error {
	sum, err := t.read(ctx)
	if err != nil {
		return err
	}
	log := env.Logger()
	r := env.Result
	for _, v := range t.versions {
		vs := sum.Versions[v]
		if vs == nil {
			vs = &ledger.VersionSummary{}
		}
		if err := t.store(r, v, vs, sum); err != nil {
			return fmt.Errorf("abn: %s: %w", t.where(), err)
		}
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

// store sets version v's metrics from its summary vs.
func (t *Task) store(r *experiment.Result, v string, vs *ledger.VersionSummary, sum ledger.Summary) error {
	if vs.Users < 0 {
		return fmt.Errorf("version %s: %d users: not a summary the service writes", v, vs.Users)
	}
	r.SetMetric(v, UsersMetric, float64(vs.Users), "users")
	for _, m := range t.Metrics {
		ms := vs.Metrics[m]
		if ms == nil {
			ms = &ledger.MetricSummary{}
		}
		if err := checkMetric(ms, vs.Users); err != nil {
			return fmt.Errorf("version %s, metric %s: %w", v, m, err)
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
	return nil
}

// checkMetric refuses a metric's summary that the service would not write:
// counts below 0, more users with the metric than users exposed.
func checkMetric(ms *ledger.MetricSummary, exposed int64) error {
	switch u := ms.Users.Count; {
	case ms.Transactions.Count < 0 || u < 0:
		return errors.New("negative counts: not a summary the service writes")
	case u > exposed:
		return fmt.Errorf("%d users with the metric but %d exposed: not a summary the service writes", u, exposed)
	case u > ms.Transactions.Count:
		return fmt.Errorf("%d users with the metric but %d writes: not a summary the service writes", u, ms.Transactions.Count)
	}
	return nil
}

// perUserSample is the sample of per-user sums over all exposed users,
// those without the metric counting 0: the moments of the users with it
// need no change, only the count.
func perUserSample(withMetric ledger.Moments, exposed int64) stats.Sample {
	n := float64(exposed)
	mean := withMetric.Sum / n
	sd := 0.0
	if exposed > 1 {
		sd = math.Sqrt(max(withMetric.SumSquares-withMetric.Sum*withMetric.Sum/n, 0) / (n - 1))
	}
	return stats.MeanSample(exposed, mean, sd)
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
