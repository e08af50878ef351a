package action

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/iter8-tools/iter8/pkg/abn/apps"
	"github.com/iter8-tools/iter8/pkg/abn/ledger"
	"github.com/iter8-tools/iter8/pkg/abn/ledger/boltledger"
	"github.com/iter8-tools/iter8/pkg/abn/ledger/redisledger"
	"github.com/iter8-tools/iter8/pkg/abn/service"
)

// ABNLedger says where the A/B/n service keeps metrics: a bbolt file (one
// replica) or a Redis server (several replicas).
type ABNLedger struct {
	// Bolt is the path of the bbolt file.
	Bolt string
	// Redis is the Redis server's host:port, with its database and
	// credentials (the password comes from the environment, never a flag).
	Redis                        string
	RedisDB                      int
	RedisUsername, RedisPassword string
}

// ABNServe runs the A/B/n service until its context ends.
type ABNServe struct {
	cfg *Configuration
	// GRPCAddress and HTTPAddress are where it listens.
	GRPCAddress, HTTPAddress string
	// Namespaces whose applications it serves; none means the cluster
	// connection's namespace, "" in the list means every namespace.
	Namespaces []string
	Ledger     ABNLedger
	// BucketWidth and DedupeWindow set the ledger (zero: defaults).
	BucketWidth, DedupeWindow time.Duration
	// Retention forgets an application idle that long (0: never).
	Retention time.Duration
	// DrainDelay is how long the service keeps serving, unready, after its
	// context ends and before the servers stop, so that the Service's
	// endpoints drop it before its port closes (0: stop at once).
	DrainDelay time.Duration
	// Listening, when set, is told the addresses once both listen (tests
	// listen on port 0).
	Listening func(grpcAddr, httpAddr net.Addr)
}

// NewABNServe returns the action.
func NewABNServe(cfg *Configuration) *ABNServe { return &ABNServe{cfg: cfg} }

// shutdownGrace bounds how long calls in progress may finish after the
// context ends: Kubernetes's default grace period is 30s.
const shutdownGrace = 20 * time.Second

// Run opens the ledger, watches applications, and serves gRPC and HTTP
// until ctx ends; then it stops taking calls, lets those in progress finish,
// flushes exposures and closes the ledger.
func (a *ABNServe) Run(ctx context.Context) error {
	log := slog.New(slog.NewTextHandler(a.cfg.Log, nil))
	l, err := a.openLedger(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = l.Close() }()
	cl, err := a.cfg.Cluster()
	if err != nil {
		return fmt.Errorf("abn serve: connect to the cluster: %w", err)
	}
	namespaces := a.Namespaces
	if len(namespaces) == 0 {
		namespaces = []string{cl.Namespace}
	}
	if len(namespaces) == 1 && namespaces[0] == "" {
		namespaces = nil // every namespace
	}
	w := apps.NewWatcher(cl.Client, cl.Dynamic, namespaces...)
	w.Logger = log
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	if err := w.Start(ctx); err != nil {
		return fmt.Errorf("abn serve: watch applications: %w", err)
	}
	svc, err := service.New(service.Options{Apps: w, Ledger: l, Namespace: cl.Namespace, Logger: log, Retention: a.Retention})
	if err != nil {
		return err
	}
	gl, err := net.Listen("tcp", a.GRPCAddress)
	if err != nil {
		return fmt.Errorf("abn serve: gRPC address %s: %w", a.GRPCAddress, err)
	}
	hl, err := net.Listen("tcp", a.HTTPAddress)
	if err != nil {
		_ = gl.Close()
		return fmt.Errorf("abn serve: HTTP address %s: %w", a.HTTPAddress, err)
	}
	gs := service.NewGRPCServer(svc)
	hs := service.NewHTTPServer(svc)
	served := make(chan error, 2)
	go func() { served <- gs.Serve(gl) }()
	go func() { served <- hs.Serve(hl) }()
	// Exposures outlive the servers: Lookups answered while draining
	// still queue theirs.
	exposeCtx, stopExposing := context.WithCancel(context.WithoutCancel(ctx))
	defer stopExposing()
	exposures := make(chan struct{})
	go func() { svc.Run(exposeCtx); close(exposures) }()
	log.Info("abn service listening", "grpc", gl.Addr().String(), "http", hl.Addr().String(), "namespaces", namespaces)
	if a.Listening != nil {
		a.Listening(gl.Addr(), hl.Addr())
	}
	select {
	case <-ctx.Done():
	case err = <-served:
		err = fmt.Errorf("abn serve: %w", err)
	}
	stop()
	svc.Drain()
	if a.DrainDelay > 0 && err == nil {
		log.Info("abn service draining", "for", a.DrainDelay)
		t := time.NewTimer(a.DrainDelay)
		<-t.C
	}
	a.shutdown(gs.GracefulStop, svc.EndStreams, gs.Stop, hs)
	stopExposing()
	<-exposures
	return err
}

// shutdown stops the servers, giving calls in progress shutdownGrace;
// endStreams ends the streams that clients keep open once the graceful
// stop has begun (its GOAWAY sends their next streams elsewhere).
func (a *ABNServe) shutdown(graceful, endStreams, hard func(), hs *http.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	done := make(chan struct{})
	go func() { graceful(); close(done) }()
	endStreams()
	_ = hs.Shutdown(ctx)
	select {
	case <-done:
	case <-ctx.Done():
		hard()
	}
}

func (a *ABNServe) openLedger(ctx context.Context) (ledger.Ledger, error) {
	opts := ledger.Options{BucketWidth: a.BucketWidth, DedupeWindow: a.DedupeWindow}
	switch {
	case a.Ledger.Bolt != "" && a.Ledger.Redis != "":
		return nil, errors.New("abn serve: ledger: both a bbolt file and Redis given: want one")
	case a.Ledger.Bolt != "":
		return boltledger.Open(a.Ledger.Bolt, opts)
	case a.Ledger.Redis != "":
		return redisledger.Open(ctx, redisledger.Options{Addr: a.Ledger.Redis, DB: a.Ledger.RedisDB,
			Username: a.Ledger.RedisUsername, Password: a.Ledger.RedisPassword, Ledger: opts})
	}
	return nil, errors.New("abn serve: ledger: none given: want a bbolt file or a Redis address")
}
