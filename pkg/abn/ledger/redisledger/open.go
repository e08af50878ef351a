package redisledger

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/iter8-tools/iter8/pkg/abn/ledger"
	"github.com/iter8-tools/iter8/pkg/abn/ledger/redisledger/resp"
)

// maxRetries is how often a call is sent again after a broken connection
// or a busy server, as go-redis did by default. Every call of the ledger
// is safe to repeat (see the package doc, Retries).
const maxRetries = 3

// Options say which Redis to use and how to summarize.
type Options struct {
	// Addr is the server's host:port.
	Addr string
	// Username and Password authenticate, when the server wants it; they
	// appear in no error or log.
	Username, Password string
	// DB is the logical database (SELECT).
	DB int
	// Ledger are the options all ledgers share.
	Ledger ledger.Options
}

// Ledger is a ledger.Ledger kept in Redis. It is safe for concurrent use,
// by any number of replicas.
type Ledger struct {
	client *resp.Client
	opts   ledger.Options
	addr   string
}

var _ ledger.Ledger = (*Ledger)(nil)

// Open connects to Redis and checks that it stores writes durably (see the
// package doc); ctx bounds the checks.
func Open(ctx context.Context, opts Options) (*Ledger, error) {
	client := resp.New(resp.Options{
		Addr:       opts.Addr,
		Username:   opts.Username,
		Password:   opts.Password,
		DB:         opts.DB,
		MaxRetries: maxRetries,
	})
	l := &Ledger{client: client, opts: opts.Ledger.WithDefaults(), addr: opts.Addr}
	if err := l.open(ctx); err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("open ledger redis://%s: %w", opts.Addr, err)
	}
	return l, nil
}

func (l *Ledger) open(ctx context.Context) error {
	if _, err := l.client.Do(ctx, "PING"); err != nil {
		return err
	}
	if err := checkDurable(ctx, l.client); err != nil {
		return err
	}
	// Loading the scripts now spares the first calls a NOSCRIPT round trip.
	return l.loadScripts(ctx)
}

// checkDurable wants appendonly yes and appendfsync always: only then does
// Redis fsync a write before acknowledging it.
func checkDurable(ctx context.Context, c *resp.Client) error {
	cfg, err := configGet(ctx, c, "append*")
	if err == nil {
		var policy map[string]string
		policy, err = configGet(ctx, c, "maxmemory-policy")
		maps.Copy(cfg, policy)
	}
	if err != nil {
		var reply resp.Error
		if errors.As(err, &reply) {
			return fmt.Errorf("CONFIG GET refused (%w): CONFIG is disabled or not permitted (as managed Redis services often do), "+
				"so the ledger cannot check that appendonly is yes and appendfsync is always, which it needs to acknowledge only durable writes", err)
		}
		return err
	}
	for _, want := range []struct{ name, value, why string }{
		{"appendonly", "yes", "without the append-only file, writes since the last snapshot are lost on a crash"},
		{"appendfsync", "always", "only then does Redis fsync a write before acknowledging it; with everysec up to a second of acknowledged writes is lost on a crash"},
		{"maxmemory-policy", "noeviction", "any other policy evicts keys when memory runs short: acknowledged summaries, or the write IDs that keep retries from counting twice"},
	} {
		if got, ok := cfg[want.name]; !ok || got != want.value {
			if !ok {
				got = "not reported"
			}
			return fmt.Errorf("%s is %s: the ledger needs %s %s (%s)", want.name, got, want.name, want.value, want.why)
		}
	}
	return nil
}

func configGet(ctx context.Context, c *resp.Client, pattern string) (map[string]string, error) {
	v, err := c.Do(ctx, "CONFIG", "GET", pattern)
	if err != nil {
		return nil, err
	}
	return resp.StringMap(v)
}

// Check pings Redis and writes a key that expires, so that it fails when
// Redis is unreachable or refuses writes (out of memory, a failed fsync,
// a read-only replica).
func (l *Ledger) Check(ctx context.Context) error {
	if _, err := l.client.Do(ctx, "PING"); err != nil {
		return fmt.Errorf("check ledger redis://%s: %w", l.addr, err)
	}
	if _, err := l.client.Do(ctx, "SET", checkKey, time.Now().UTC().Format(time.RFC3339Nano), "EX", "60"); err != nil {
		return fmt.Errorf("check ledger redis://%s: write: %w", l.addr, err)
	}
	return nil
}

// Close closes the connections.
func (l *Ledger) Close() error { return l.client.Close() }
