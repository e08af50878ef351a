package cli

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/iter8-tools/iter8/pkg/abn/ledger"
	"github.com/iter8-tools/iter8/pkg/action"
)

// redisPasswordEnv holds the Redis password of the A/B/n service's ledger:
// never a flag, so that it shows in no process list or Pod spec (the chart
// sets it from a Secret).
const redisPasswordEnv = "ITER8_ABN_REDIS_PASSWORD"

const abnDesc = `The A/B/n service assigns each user of an application to one of its
versions (sticky across replicas and restarts, by weighted rendezvous
hashing over the versions that are ready with weight in the app's route)
and records business metrics credited to the version that served the user.
Frontends call it through the Go SDK (module github.com/iter8-tools/iter8/abn)
or any gRPC or HTTP/JSON client; experiments read its summaries.`

func newABNCmd(e *cmdEnv) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "abn",
		Short: "Run the A/B/n service",
		Long:  abnDesc,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
	}
	cmd.AddCommand(newABNServeCmd(e))
	return cmd
}

const abnServeDesc = `Serve the A/B/n API over gRPC (wire-compatible with Iter8 v1's Lookup and
WriteMetric) and HTTP/JSON until interrupted:

  POST /v1/lookup, POST /v1/metrics, GET /v1/summary?application=NS/NAME,
  GET /healthz, GET /readyz

Applications are the routes that charts/release renders (labelled
iter8.tools/app) in the watched namespaces. The ledger is a bbolt file for
one replica (--ledger bolt:/data/abn.db) or Redis for several
(--ledger redis://HOST:PORT/DB, with appendonly yes and appendfsync
always; the password, if any, in the environment variable ` + redisPasswordEnv + `).
The service's chart (charts/abn) runs it in a cluster.`

type abnServeOptions struct {
	serve *action.ABNServe
	// raw flags, parsed by Complete
	ledger        string
	namespaces    []string
	allNamespaces bool
}

func newABNServeCmd(e *cmdEnv) *cobra.Command {
	o := &abnServeOptions{serve: action.NewABNServe(e.cfg)}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the A/B/n API",
		Long:  abnServeDesc,
		Args:  cobra.NoArgs,
		RunE:  runE(o),
	}
	f := cmd.Flags()
	f.StringVar(&o.serve.GRPCAddress, "grpc-address", ":50051", "address of the gRPC API")
	f.StringVar(&o.serve.HTTPAddress, "http-address", ":8080", "address of the HTTP/JSON API and the probes")
	f.StringVar(&o.ledger, "ledger", "", "where metrics are kept: bolt:PATH or redis://[USER@]HOST:PORT[/DB] (required)")
	f.StringSliceVar(&o.namespaces, "watch-namespace", nil, "namespaces whose applications are served (default: the connection's namespace)")
	f.BoolVar(&o.allNamespaces, "all-namespaces", false, "serve the applications of every namespace (needs a ClusterRole)")
	f.DurationVar(&o.serve.BucketWidth, "bucket-width", ledger.DefaultBucketWidth, "width of the time buckets of summaries")
	f.DurationVar(&o.serve.DedupeWindow, "dedupe-window", ledger.DefaultDedupeWindow, "how long a write's ID is remembered against retries")
	f.DurationVar(&o.serve.Retention, "retention", 0, "forget an application's metrics once nothing was written or exposed for it this long (0: keep them)")
	f.DurationVar(&o.serve.DrainDelay, "drain-delay", 0, "on SIGTERM, keep serving (unready) this long before stopping, so endpoints drop the Pod first")
	return cmd
}

// Complete parses the ledger flag and reads the Redis password.
func (o *abnServeOptions) Complete(*cobra.Command, []string) error {
	l, err := parseLedger(o.ledger)
	if err != nil {
		return err
	}
	if l.Redis != "" {
		l.RedisPassword = os.Getenv(redisPasswordEnv)
	}
	o.serve.Ledger = l
	o.serve.Namespaces = o.namespaces
	if o.allNamespaces {
		o.serve.Namespaces = []string{""}
	}
	return nil
}

// Validate checks addresses, namespaces and durations before anything
// opens.
func (o *abnServeOptions) Validate() error {
	for flag, addr := range map[string]string{"--grpc-address": o.serve.GRPCAddress, "--http-address": o.serve.HTTPAddress} {
		if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
			return fmt.Errorf("%s %q: want [HOST]:PORT", flag, addr)
		}
	}
	if o.allNamespaces && len(o.namespaces) > 0 {
		return fmt.Errorf("--all-namespaces and --watch-namespace: want one of them")
	}
	for _, ns := range o.namespaces {
		if ns == "" {
			return fmt.Errorf("--watch-namespace: an empty name: use --all-namespaces for every namespace")
		}
	}
	if o.serve.BucketWidth < time.Second {
		return fmt.Errorf("--bucket-width %v: want 1s or more", o.serve.BucketWidth)
	}
	if o.serve.Retention != 0 && o.serve.Retention < time.Minute {
		return fmt.Errorf("--retention %v: want 0 (keep) or 1m or more", o.serve.Retention)
	}
	if o.serve.DrainDelay < 0 {
		return fmt.Errorf("--drain-delay %v: want 0 or more", o.serve.DrainDelay)
	}
	if o.serve.DedupeWindow <= 0 {
		return fmt.Errorf("--dedupe-window %v: want a positive duration", o.serve.DedupeWindow)
	}
	return nil
}

// Run serves until the command's context ends (SIGINT, SIGTERM).
func (o *abnServeOptions) Run(ctx context.Context) error { return o.serve.Run(ctx) }

// parseLedger reads --ledger: bolt:PATH or redis://[USER@]HOST:PORT[/DB].
func parseLedger(s string) (action.ABNLedger, error) {
	shown := redactUserinfo(s) // never echo a password
	bad := func(why string) (action.ABNLedger, error) {
		return action.ABNLedger{}, fmt.Errorf("--ledger %q: %s: want bolt:PATH or redis://[USER@]HOST:PORT[/DB]", shown, why)
	}
	if s == "" {
		return bad("not set")
	}
	if path, ok := strings.CutPrefix(s, "bolt:"); ok {
		if path == "" {
			return bad("no path")
		}
		return action.ABNLedger{Bolt: path}, nil
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "redis" {
		return bad("neither a bbolt path nor a redis URL")
	}
	if _, ok := u.User.Password(); ok {
		return action.ABNLedger{}, fmt.Errorf("--ledger: a password in the URL: set it in %s instead", redisPasswordEnv)
	}
	if _, port, err := net.SplitHostPort(u.Host); err != nil || port == "" {
		return bad("no HOST:PORT")
	}
	l := action.ABNLedger{Redis: u.Host, RedisUsername: u.User.Username()}
	if db := strings.TrimPrefix(u.Path, "/"); db != "" {
		n, err := strconv.Atoi(db)
		if err != nil || n < 0 {
			return bad(fmt.Sprintf("database %q is not a number", db))
		}
		l.RedisDB = n
	}
	return l, nil
}

// redactUserinfo masks what stands between "://" and the last "@" of a URL,
// whether or not it parses (a password with '#' or '/' breaks parsing).
func redactUserinfo(s string) string {
	scheme, rest, ok := strings.Cut(s, "://")
	at := strings.LastIndex(rest, "@")
	if !ok || at < 0 {
		return s
	}
	return scheme + "://xxxxx" + rest[at:]
}
