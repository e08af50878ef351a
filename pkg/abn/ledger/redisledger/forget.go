package redisledger

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// touchedKey is a sorted set of applications scored by when a write or an
// exposure of theirs was last recorded (Unix ms), for Forget. It is set in
// the pipeline of each Record and Expose, beside the scripts (it spans
// applications, so it cannot be in one app's slot).
const touchedKey = root + sep + "touched"

// touch adds the ZADD of apps' recording time to a pipeline's calls.
func (l *Ledger) touch(ctx context.Context, p redis.Pipeliner, apps map[string]bool) {
	now := float64(time.Now().UnixMilli())
	for app := range apps {
		p.ZAdd(ctx, touchedKey, redis.Z{Score: now, Member: app})
	}
}

// Forget removes every application whose last write or exposure was
// recorded before the time given: its keys, found through its index sets,
// deleted in one MULTI/EXEC. Write IDs stay until their dedupe window
// ends, so a late retry of a forgotten write counts nothing. A write that
// arrives while an application is being forgotten may be lost with it:
// applications are forgotten only after a retention of days.
func (l *Ledger) Forget(ctx context.Context, before time.Time) ([]string, error) {
	apps, err := l.client.ZRangeByScore(ctx, touchedKey, &redis.ZRangeBy{
		Min: "-inf", Max: "(" + strconv.FormatInt(before.UnixMilli(), 10),
	}).Result()
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
	versions, err := l.client.SMembers(ctx, k.versions()).Result()
	if err != nil {
		return err
	}
	keys := []string{k.versions()}
	for _, v := range versions {
		metrics, err := l.client.SMembers(ctx, k.metrics(v)).Result()
		if err != nil {
			return err
		}
		keys = append(keys, k.users(v), k.cohorts(v), k.metrics(v))
		for _, m := range metrics {
			keys = append(keys, k.agg(v, m), k.sums(v, m))
		}
	}
	_, err = l.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, keys...)
		p.ZRem(ctx, touchedKey, app)
		return nil
	})
	return err
}
