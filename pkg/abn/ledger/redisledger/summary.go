package redisledger

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/iter8-tools/iter8/pkg/abn/ledger"
	"github.com/iter8-tools/iter8/pkg/abn/ledger/redisledger/resp"
)

// Summary reads an application in three round trips: its versions, then
// each version's users, cohorts and metrics, then each metric's summary.
// The rounds are not one snapshot: writes that land between them may show
// in later rounds only.
func (l *Ledger) Summary(ctx context.Context, app string) (ledger.Summary, error) {
	s, err := l.summary(ctx, app)
	if err != nil {
		return ledger.Summary{}, fmt.Errorf("summary of %s in ledger redis://%s: %w", app, l.addr, err)
	}
	return s, nil
}

func (l *Ledger) summary(ctx context.Context, app string) (ledger.Summary, error) {
	s := ledger.Summary{App: app, BucketWidth: l.opts.BucketWidth, Versions: map[string]*ledger.VersionSummary{}}
	k := keysOf(app)
	versions, err := l.members(ctx, k.versions())
	if err != nil || len(versions) == 0 {
		return s, err
	}

	// Per version: HLEN users, HGETALL cohorts, SMEMBERS metrics.
	cmds := make([][]string, 0, 3*len(versions))
	for _, v := range versions {
		cmds = append(cmds, []string{"HLEN", k.users(v)}, []string{"HGETALL", k.cohorts(v)}, []string{"SMEMBERS", k.metrics(v)})
	}
	replies, err := l.client.Pipeline(ctx, cmds...)
	if err != nil {
		return s, err
	}

	type metricOf struct {
		version, name string
		vs            *ledger.VersionSummary
	}
	var ms []metricOf
	for i, v := range versions {
		users, err := resp.Int(replies[3*i])
		if err != nil {
			return s, fmt.Errorf("version %s: users: %w", v, err)
		}
		cohorts, err := resp.StringMap(replies[3*i+1])
		if err != nil {
			return s, fmt.Errorf("version %s: cohorts: %w", v, err)
		}
		metrics, err := resp.Strings(replies[3*i+2])
		if err != nil {
			return s, fmt.Errorf("version %s: metrics: %w", v, err)
		}
		vs := &ledger.VersionSummary{Users: users}
		for f, n := range cohorts {
			c, err := parseCohort(f, n)
			if err != nil {
				return s, fmt.Errorf("version %s: %w", v, err)
			}
			vs.Cohorts = append(vs.Cohorts, c)
		}
		slices.SortFunc(vs.Cohorts, func(a, b ledger.Cohort) int { return a.Start.Compare(b.Start) })
		for _, m := range metrics {
			ms = append(ms, metricOf{version: v, name: m, vs: vs})
		}
		s.Versions[v] = vs
	}
	if len(ms) == 0 {
		return s, nil
	}
	cmds = cmds[:0]
	for _, m := range ms {
		cmds = append(cmds, []string{"HGETALL", k.agg(m.version, m.name)})
	}
	if replies, err = l.client.Pipeline(ctx, cmds...); err != nil {
		return s, err
	}
	for i, m := range ms {
		h, err := resp.StringMap(replies[i])
		if err != nil {
			return s, fmt.Errorf("metric %s: %w", m.name, err)
		}
		summary, err := parseMetric(h)
		if err != nil {
			return s, fmt.Errorf("metric %s: %w", m.name, err)
		}
		if m.vs.Metrics == nil {
			m.vs.Metrics = map[string]*ledger.MetricSummary{}
		}
		m.vs.Metrics[m.name] = summary
	}
	return s, nil
}

// parseCohort reads a field "c" sep bucket of a version's cohorts.
func parseCohort(field, n string) (ledger.Cohort, error) {
	start, err := bucketStart(strings.TrimPrefix(field, "c"+sep))
	if err != nil {
		return ledger.Cohort{}, fmt.Errorf("cohort field %q: %w", field, err)
	}
	users, err := strconv.ParseInt(n, 10, 64)
	if err != nil {
		return ledger.Cohort{}, fmt.Errorf("cohort field %q: %w", field, err)
	}
	return ledger.Cohort{Start: start, Users: users}, nil
}

// parseMetric reads a metric's summary hash (see recordScript): tc, ts,
// tq, tmin, tmax for transactions; uc, us, uq for users; hz, hp<i>, hn<i>
// for the histogram; "b" sep bucket sep (tc|ts|tq|uc|us|uq) for buckets.
func parseMetric(h map[string]string) (*ledger.MetricSummary, error) {
	ms := &ledger.MetricSummary{}
	buckets := map[string]*ledger.MetricBucket{}
	for f, raw := range h {
		x, err := strconv.ParseFloat(raw, 64)
		if err != nil {
			return nil, fmt.Errorf("field %q: %w", f, err)
		}
		if rest, ok := strings.CutPrefix(f, "b"+sep); ok {
			start, what, ok := strings.Cut(rest, sep)
			if !ok {
				return nil, fmt.Errorf("field %q: no moment named", f)
			}
			b := buckets[start]
			if b == nil {
				t, err := bucketStart(start)
				if err != nil {
					return nil, fmt.Errorf("field %q: %w", f, err)
				}
				b = &ledger.MetricBucket{Start: t}
				buckets[start] = b
			}
			m := &b.Transactions
			if strings.HasPrefix(what, "u") {
				m = &b.Users
			}
			if len(what) != 2 || what[0] != 't' && what[0] != 'u' || !setMoment(m, what[1], x) {
				return nil, fmt.Errorf("field %q: unknown", f)
			}
			continue
		}
		if !setField(ms, f, x) {
			return nil, fmt.Errorf("field %q: unknown", f)
		}
	}
	for _, b := range buckets {
		ms.Buckets = append(ms.Buckets, *b)
	}
	slices.SortFunc(ms.Buckets, func(a, b ledger.MetricBucket) int { return cmp.Compare(a.Start.UnixNano(), b.Start.UnixNano()) })
	return ms, nil
}

// setField sets the field f of a metric's summary other than buckets.
func setField(ms *ledger.MetricSummary, f string, x float64) bool {
	switch f {
	case "tmin":
		ms.Transactions.Min = x
	case "tmax":
		ms.Transactions.Max = x
	case "hz":
		ms.Histogram.Zero = int64(x)
	default:
		if len(f) == 2 && f[0] == 't' {
			return setMoment(&ms.Transactions.Moments, f[1], x)
		}
		if len(f) == 2 && f[0] == 'u' {
			return setMoment(&ms.Users, f[1], x)
		}
		i, err := strconv.ParseInt(f[min(2, len(f)):], 10, 32)
		switch {
		case err != nil:
			return false
		case strings.HasPrefix(f, "hp"):
			ms.Histogram.Positive = put(ms.Histogram.Positive, int32(i), int64(x))
		case strings.HasPrefix(f, "hn"):
			ms.Histogram.Negative = put(ms.Histogram.Negative, int32(i), int64(x))
		default:
			return false
		}
	}
	return true
}

// setMoment sets the count (c), sum (s) or sum of squares (q) of m.
func setMoment(m *ledger.Moments, what byte, x float64) bool {
	switch {
	case what == 'c':
		m.Count = int64(x)
	case what == 's':
		m.Sum = x
	case what == 'q':
		m.SumSquares = x
	default:
		return false
	}
	return true
}

// put sets m[i] = n, making m when nil (the model leaves a histogram's
// maps nil until a value of their sign arrives).
func put(m map[int32]int64, i int32, n int64) map[int32]int64 {
	if m == nil {
		m = map[int32]int64{}
	}
	m[i] = n
	return m
}
