package redisledger

import (
	"context"
	"fmt"
	"math"
	"strconv"

	"github.com/iter8-tools/iter8/pkg/abn/ledger"
	"github.com/iter8-tools/iter8/pkg/abn/ledger/redisledger/resp"
)

// MaxScriptWrites bounds the writes (or exposures) of one script call: a
// script blocks Redis while it runs, so long batches are split.
const MaxScriptWrites = 256

// call is one script call: its script, keys and arguments.
type call struct {
	script *script
	keys   []string
	args   []string
	// app the call stores for, marked touched in the same pipeline.
	app string
}

// Record counts writes; see the package doc for atomicity.
func (l *Ledger) Record(ctx context.Context, writes []ledger.Write) error {
	for i := range writes {
		if err := writes[i].Validate(); err != nil {
			return err
		}
	}
	var calls []call
	for _, part := range byApp(len(writes), func(i int) string { return writes[i].App }) {
		calls = append(calls, l.recordCall(writes, part))
		calls[len(calls)-1].app = writes[part[0]].App
	}
	if err := l.run(ctx, calls); err != nil {
		return fmt.Errorf("record in ledger redis://%s: %w", l.addr, err)
	}
	return nil
}

// recordCall makes the call for writes[part...], all of one app.
// KEYS[1] is the app's versions; then for each write, six keys: its ID,
// its version's users and cohorts and metrics, its metric's summary and
// user sums. ARGV[1] is the dedupe window in ms; then for each write, six
// arguments: version, user, metric, bucket, value, histogram field.
func (l *Ledger) recordCall(writes []ledger.Write, part []int) call {
	k := keysOf(writes[part[0]].App)
	c := call{script: recordScript, keys: make([]string, 1, 1+6*len(part)), args: make([]string, 1, 1+6*len(part))}
	c.keys[0] = k.versions()
	c.args[0] = strconv.FormatInt(max(l.opts.DedupeWindow.Milliseconds(), 1), 10)
	for _, i := range part {
		w := &writes[i]
		c.keys = append(c.keys, k.id(w.ID), k.users(w.Version), k.cohorts(w.Version), k.metrics(w.Version),
			k.agg(w.Version, w.Metric), k.sums(w.Version, w.Metric))
		c.args = append(c.args, w.Version, w.User, w.Metric, bucketField(l.opts.BucketOf(w.At)),
			strconv.FormatFloat(w.Value, 'g', -1, 64), histogramField(w.Value))
	}
	return c
}

// Expose records exposures; each app's exposures are one atomic call.
func (l *Ledger) Expose(ctx context.Context, exposures []ledger.Exposure) error {
	for i := range exposures {
		if err := exposures[i].Validate(); err != nil {
			return err
		}
	}
	var calls []call
	for _, part := range byApp(len(exposures), func(i int) string { return exposures[i].App }) {
		calls = append(calls, l.exposeCall(exposures, part))
		calls[len(calls)-1].app = exposures[part[0]].App
	}
	if err := l.run(ctx, calls); err != nil {
		return fmt.Errorf("expose in ledger redis://%s: %w", l.addr, err)
	}
	return nil
}

// exposeCall makes the call for exposures[part...], all of one app.
// KEYS[1] is the app's versions; then for each exposure its version's
// users and cohorts. ARGV holds, for each, version, user and bucket.
func (l *Ledger) exposeCall(exposures []ledger.Exposure, part []int) call {
	k := keysOf(exposures[part[0]].App)
	c := call{script: exposeScript, keys: make([]string, 1, 1+2*len(part))}
	c.keys[0] = k.versions()
	for _, i := range part {
		e := &exposures[i]
		c.keys = append(c.keys, k.users(e.Version), k.cohorts(e.Version))
		c.args = append(c.args, e.Version, e.User, bucketField(l.opts.BucketOf(e.At)))
	}
	return c
}

// byApp splits indexes 0..n-1 into parts of one app each, in order, of at
// most MaxScriptWrites.
func byApp(n int, app func(int) string) [][]int {
	var parts [][]int
	open := map[string]int{} // app → its last part, while not full
	for i := range n {
		a := app(i)
		p, ok := open[a]
		if !ok || len(parts[p]) == MaxScriptWrites {
			p = len(parts)
			parts = append(parts, nil)
			open[a] = p
		}
		parts[p] = append(parts[p], i)
	}
	return parts
}

// run sends the calls in one pipeline by EVALSHA. A server that lost its
// script cache (restarted) answers NOSCRIPT: the scripts are loaded and
// the pipeline sent again, which is safe because a call that did run
// counts nothing the second time (its IDs are stored) and exposures are
// idempotent.
func (l *Ledger) run(ctx context.Context, calls []call) error {
	if len(calls) == 0 {
		return nil
	}
	err := l.pipeline(ctx, calls)
	if !resp.HasErrorPrefix(err, "NOSCRIPT") {
		return err
	}
	if err := l.loadScripts(ctx); err != nil {
		return err
	}
	return l.pipeline(ctx, calls)
}

// pipeline returns the first error of the calls; the applications they
// store for are marked touched (for Forget) in the same round trip.
func (l *Ledger) pipeline(ctx context.Context, calls []call) error {
	cmds := make([][]string, 0, len(calls)+1)
	apps := map[string]bool{}
	for _, c := range calls {
		cmds = append(cmds, c.script.evalSha(c.keys, c.args))
		apps[c.app] = true
	}
	cmds = append(cmds, touch(apps))
	// Pipeline returns the first failed call's error.
	_, err := l.client.Pipeline(ctx, cmds...)
	return err
}

// histogramField names the histogram bucket of v in a metric's summary:
// the index comes from ledger.HistogramBucket, as ledger.Histogram.Add
// computes it.
func histogramField(v float64) string {
	switch a := math.Abs(v); {
	case a < ledger.HistogramZero:
		return "hz"
	case v > 0:
		return "hp" + strconv.Itoa(int(ledger.HistogramBucket(a)))
	default:
		return "hn" + strconv.Itoa(int(ledger.HistogramBucket(a)))
	}
}
