package redistest

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"
)

// TestKillRestart: a write acknowledged with appendfsync always survives
// SIGKILL and is there after Restart, on the same address.
func TestKillRestart(t *testing.T) {
	srv := Start(t)
	ctx := context.Background()
	c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer c.Close()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	addr := srv.Addr()
	srv.Kill()
	if ping(ctx, addr) == nil {
		t.Fatal("PING answered after Kill")
	}
	srv.Restart()
	if srv.Addr() != addr {
		t.Fatalf("address after Restart = %s, want %s", srv.Addr(), addr)
	}
	if got, err := c.Get(ctx, "k").Result(); err != nil || got != "v" {
		t.Fatalf("GET k after kill and restart = %q, %v; want v", got, err)
	}
}

// TestSettings: the durable settings are on by default and extra
// arguments override them.
func TestSettings(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		extra []string
		want  string
	}{
		{nil, "always"},
		{[]string{"--appendfsync", "everysec"}, "everysec"},
	} {
		srv := Start(t, tc.extra...)
		c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
		cfg, err := c.ConfigGet(ctx, "append*").Result()
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
		if cfg["appendonly"] != "yes" || cfg["appendfsync"] != tc.want {
			t.Errorf("Start(%q): appendonly %q, appendfsync %q; want yes, %s", tc.extra, cfg["appendonly"], cfg["appendfsync"], tc.want)
		}
	}
}
