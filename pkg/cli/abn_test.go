package cli

import (
	"strings"
	"testing"

	"github.com/iter8-tools/iter8/pkg/action"
)

// TestABNServeRefusesBadFlags: each bad flag exits 2 naming it, before
// anything is opened or connected.
func TestABNServeRefusesBadFlags(t *testing.T) {
	for _, tt := range []struct {
		name   string
		args   []string
		stderr string
	}{
		{"no ledger", nil, `--ledger "": not set`},
		{"unknown ledger", []string{"--ledger", "postgres://db"}, "neither a bbolt path nor a redis URL"},
		{"unknown ledger with a password", []string{"--ledger", "postgres://u:secret@db"}, `"postgres://xxxxx@db": neither`},
		{"redis password that breaks parsing", []string{"--ledger", "redis://u:se#cret@cache:6379"}, `"redis://xxxxx@cache:6379"`},
		{"bolt without a path", []string{"--ledger", "bolt:"}, "no path"},
		{"redis without a port", []string{"--ledger", "redis://cache"}, "no HOST:PORT"},
		{"redis password in the URL", []string{"--ledger", "redis://u:secret@cache:6379"}, "set it in ITER8_ABN_REDIS_PASSWORD"},
		{"redis database not a number", []string{"--ledger", "redis://cache:6379/x"}, `database "x" is not a number`},
		{"grpc address without a port", []string{"--ledger", "bolt:/tmp/x.db", "--grpc-address", "localhost"}, `--grpc-address "localhost"`},
		{"http address without a port", []string{"--ledger", "bolt:/tmp/x.db", "--http-address", "nope"}, `--http-address "nope"`},
		{"both namespace flags", []string{"--ledger", "bolt:/tmp/x.db", "--all-namespaces", "--watch-namespace", "a"}, "want one of them"},
		{"short buckets", []string{"--ledger", "bolt:/tmp/x.db", "--bucket-width", "10ms"}, "--bucket-width 10ms: want 1s or more"},
		{"short retention", []string{"--ledger", "bolt:/tmp/x.db", "--retention", "10s"}, "--retention 10s: want 0 (keep) or 1m or more"},
		{"negative drain delay", []string{"--ledger", "bolt:/tmp/x.db", "--drain-delay", "-1s"}, "--drain-delay -1s"},
		{"no dedupe window", []string{"--ledger", "bolt:/tmp/x.db", "--dedupe-window", "0s"}, "--dedupe-window 0s"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, code := execute(t, append([]string{"abn", "serve"}, tt.args...)...)
			if code != 2 || !strings.Contains(stderr, tt.stderr) {
				t.Errorf("abn serve %v: exit %d, stderr %q; want 2 and %q", tt.args, code, stderr, tt.stderr)
			}
			if strings.Contains(stderr, "cret") {
				t.Errorf("stderr shows the password: %q", stderr)
			}
		})
	}
}

func TestParseLedger(t *testing.T) {
	for in, want := range map[string]action.ABNLedger{
		"bolt:/data/abn.db":           {Bolt: "/data/abn.db"},
		"redis://cache:6379":          {Redis: "cache:6379"},
		"redis://app@10.0.0.1:6380/3": {Redis: "10.0.0.1:6380", RedisDB: 3, RedisUsername: "app"},
	} {
		got, err := parseLedger(in)
		if err != nil || got != want {
			t.Errorf("parseLedger(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
}
