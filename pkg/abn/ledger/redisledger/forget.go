package redisledger

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/iter8-tools/iter8/pkg/abn/ledger/redisledger/resp"
)

// touchedKey is a sorted set of applications scored by when a write or an
// exposure of theirs was last recorded (Unix ms), for Forget. It is set in
// the pipeline of each Record and Expose, beside the scripts (it spans
// applications, so it cannot be in one app's slot).
const touchedKey = root + sep + "touched"

// touch is the ZADD of apps' recording time, for a pipeline's calls.
func touch(apps map[string]bool) []string {
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	cmd := make([]string, 0, 2+2*len(apps))
	cmd = append(cmd, "ZADD", touchedKey)
	for app := range apps {
		cmd = append(cmd, now, app)
	}
	return cmd
}

// Forget removes every application whose last write or exposure was
// recorded before the time given: its keys, found through its index sets,
// deleted in one MULTI/EXEC. Write IDs stay until their dedupe window
// ends, so a late retry of a forgotten write counts nothing. A write that
// arrives while an application is being forgotten may be lost with it:
// applications are forgotten only after a retention of days.
func (l *Ledger) Forget(ctx context.Context, before time.Time) ([]string, error) {
	reply, err := l.client.Do(ctx, "ZRANGEBYSCORE", touchedKey, "-inf", "("+strconv.FormatInt(before.UnixMilli(), 10))
	var apps []string
	if err == nil {
		apps, err = resp.Strings(reply)
	}
	if err != nil {
		return nil, fmt.Errorf("forget in ledger redis://%s: %w", l.addr, err)
	}
	for _, app := range apps {
		if err := l.forget(ctx, app); err != nil {
			return nil, fmt.Errorf("forget %s in ledger redis://%s: %w", app, l.addr, err)
		}
	}
	return apps, nil
}

// forget deletes one application's keys.
func (l *Ledger) forget(ctx context.Context, app string) error {
	k := keysOf(app)
	versions, err := l.members(ctx, k.versions())
	if err != nil {
		return err
	}
	keys := []string{k.versions()}
	for _, v := range versions {
		metrics, err := l.members(ctx, k.metrics(v))
		if err != nil {
			return err
		}
		keys = append(keys, k.users(v), k.cohorts(v), k.metrics(v))
		for _, m := range metrics {
			keys = append(keys, k.agg(v, m), k.sums(v, m))
		}
	}
	_, err = l.client.Tx(ctx, append([]string{"DEL"}, keys...), []string{"ZREM", touchedKey, app})
	return err
}

// members reads a set.
func (l *Ledger) members(ctx context.Context, key string) ([]string, error) {
	v, err := l.client.Do(ctx, "SMEMBERS", key)
	if err != nil {
		return nil, err
	}
	return resp.Strings(v)
}
