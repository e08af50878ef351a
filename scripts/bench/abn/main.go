// Command abn measures the A/B/n service against its targets (README's
// A/B/n section): Lookup throughput over loopback gRPC with 64 concurrent
// clients (p50, p99), Lookup latency at an open-loop 20,000/s, WriteMetric
// throughput through the SDK's batching on bbolt and on Redis (and one
// value per call), and the service's heap after 10^4 and 10^6 users.
//
// It starts the service in this process on 127.0.0.1 (apps from a fixed
// table, so no cluster is needed) and Redis from Debian's redis-server
// (skipped with a note when it is missing). Run with `make bench-abn`.
// To measure the service apart from its client, run it with -serve pinned
// to one core and the Lookup runs with -target pinned to the other:
//
//	taskset -c 0 go run ./scripts/bench/abn -serve        # prints the address
//	taskset -c 1 go run ./scripts/bench/abn -target ADDR
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/iter8-tools/iter8/abn/client"
	pb "github.com/iter8-tools/iter8/abn/grpc"
	"github.com/iter8-tools/iter8/pkg/abn/apps"
	"github.com/iter8-tools/iter8/pkg/abn/ledger"
	"github.com/iter8-tools/iter8/pkg/abn/ledger/boltledger"
	"github.com/iter8-tools/iter8/pkg/abn/ledger/redisledger"
	"github.com/iter8-tools/iter8/pkg/abn/service"
)

func main() {
	duration := flag.Duration("duration", 10*time.Second, "length of each throughput and latency run")
	serveOnly := flag.Bool("serve", false, "only serve (print the gRPC address, run until interrupted), for a client in another process")
	target := flag.String("target", "", "only measure Lookup against a service at this gRPC address (one started with -serve)")
	clients := flag.Int("clients", 64, "concurrent clients of the Lookup throughput run")
	flag.Parse()
	var err error
	switch {
	case *serveOnly:
		err = serveUntilInterrupted()
	case *target != "":
		err = lookups(*target, *clients, 20000, *duration)
	default:
		err = run(*duration)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench abn:", err)
		os.Exit(1)
	}
}

// serveUntilInterrupted runs the service on bbolt in a temporary folder,
// so that it can be pinned to cores apart from the client (taskset).
func serveUntilInterrupted() error {
	dir, err := os.MkdirTemp("", "iter8-bench-abn-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	l, err := boltledger.Open(filepath.Join(dir, "abn.db"), ledger.Options{})
	if err != nil {
		return err
	}
	defer l.Close()
	s, err := serve(l)
	if err != nil {
		return err
	}
	defer s.stop()
	fmt.Println(s.target)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	return nil
}

var shop = apps.Static{"bench/shop": {Namespace: "bench", Name: "shop", Versions: []apps.Version{
	{Name: "v1", Weight: 50, Ready: true}, {Name: "v2", Weight: 30, Ready: true}, {Name: "v3", Weight: 20, Ready: true},
}}}

// server is the service on loopback over one ledger.
type server struct {
	svc    *service.Service
	target string
	stop   func()
}

func serve(l ledger.Ledger) (*server, error) {
	svc, err := service.New(service.Options{Apps: shop, Ledger: l, Namespace: "bench",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	go svc.Run(ctx)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		return nil, err
	}
	// The server as `abn serve` makes it, with its options.
	gs := service.NewGRPCServer(svc)
	go func() { _ = gs.Serve(lis) }()
	return &server{svc: svc, target: lis.Addr().String(), stop: func() { gs.Stop(); cancel() }}, nil
}

func run(d time.Duration) error {
	dir, err := os.MkdirTemp("", "iter8-bench-abn-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bolt, err := boltledger.Open(filepath.Join(dir, "abn.db"), ledger.Options{})
	if err != nil {
		return err
	}
	defer bolt.Close()
	s, err := serve(bolt)
	if err != nil {
		return err
	}
	defer s.stop()
	fmt.Printf("A/B/n service on %d cores (GOMAXPROCS %d)\n", runtime.NumCPU(), runtime.GOMAXPROCS(0))

	if err := lookups(s.target, 64, 20000, d); err != nil {
		return err
	}
	if err := writes("bbolt", s.target, d); err != nil {
		return err
	}
	if err := withRedis(dir, d); err != nil {
		return err
	}
	return memory()
}

func conn(target string) (pb.ABNClient, func(), error) {
	cc, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, nil, err
	}
	return pb.NewABNClient(cc), func() { _ = cc.Close() }, nil
}

// lookupFunc looks one user up; clients are how the benchmark's callers
// reach the service.
type lookupFunc func(user string) error

// unaryClient: each Lookup is one unary call, over 4 connections (as an
// Iter8 v1 client, or one in another language without the stream, would
// call).
func unaryClient(target string) (lookupFunc, func(), error) {
	const conns = 4
	var cs []pb.ABNClient
	var closers []func()
	for range conns {
		c, closeConn, err := conn(target)
		if err != nil {
			return nil, nil, err
		}
		cs = append(cs, c)
		closers = append(closers, closeConn)
	}
	var next atomic.Uint64
	return func(user string) error {
			_, err := cs[next.Add(1)%conns].Lookup(context.Background(), &pb.Application{Name: "bench/shop", User: user})
			return err
		}, func() {
			for _, c := range closers {
				c()
			}
		}, nil
}

// sdkClient: the Go SDK's Lookup, which sends the Lookups that wait
// together on one stream.
func sdkClient(target string) (lookupFunc, func(), error) {
	c, err := client.New(client.Options{Target: target, Application: "bench/shop", Baseline: "v1", LookupTimeout: 10 * time.Second})
	if err != nil {
		return nil, nil, err
	}
	return func(user string) error {
			if a := c.Lookup(context.Background(), user); a.Err != nil || a.Fallback {
				return fmt.Errorf("lookup %s: %+v", user, a)
			}
			return nil
		}, func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = c.Close(ctx)
		}, nil
}

// lookups runs the closed-loop and the open-loop Lookup runs through the
// unary calls and through the SDK.
func lookups(target string, clients, rate int, d time.Duration) error {
	for _, via := range []struct {
		name string
		dial func(string) (lookupFunc, func(), error)
	}{{"unary calls", unaryClient}, {"the SDK (stream)", sdkClient}} {
		for _, run := range []func(string, lookupFunc) error{
			func(name string, f lookupFunc) error { return lookupThroughput(name, f, clients, d) },
			func(name string, f lookupFunc) error { return lookupOpenLoop(name, f, rate, d) },
		} {
			f, closeClient, err := via.dial(target)
			if err != nil {
				return err
			}
			err = run(via.name, f)
			closeClient()
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// lookupThroughput: clients call Lookup back to back.
func lookupThroughput(via string, lookup lookupFunc, clients int, d time.Duration) error {
	hists := make([]*hdrhistogram.Histogram, clients)
	var failed atomic.Int64
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for i := range clients {
		hists[i] = hdrhistogram.New(1, int64(10*time.Second/time.Microsecond), 3)
		wg.Go(func() {
			for n := 0; time.Now().Before(deadline); n++ {
				t0 := time.Now()
				if err := lookup("user-" + strconv.Itoa(i*1_000_000+n)); err != nil {
					failed.Add(1)
					continue
				}
				_ = hists[i].RecordValue(time.Since(t0).Microseconds())
			}
		})
	}
	wg.Wait()
	all := merge(hists)
	fmt.Printf("Lookup through %s, %d concurrent clients, %v: %.0f/s, p50 %dµs, p99 %dµs, %d failed\n",
		via, clients, d, float64(all.TotalCount())/d.Seconds(), all.ValueAtQuantile(50), all.ValueAtQuantile(99), failed.Load())
	return nil
}

// lookupOpenLoop sends Lookups at a fixed rate whatever the answers do,
// and measures each from when it was due (no coordinated omission).
func lookupOpenLoop(via string, lookup lookupFunc, rate int, d time.Duration) error {
	const workers = 256
	due := make(chan time.Time, workers)
	hists := make([]*hdrhistogram.Histogram, workers)
	var wg sync.WaitGroup
	var n, failed atomic.Int64
	for i := range workers {
		hists[i] = hdrhistogram.New(1, int64(10*time.Second/time.Microsecond), 3)
		wg.Go(func() {
			for t := range due {
				if err := lookup("open-" + strconv.FormatInt(n.Add(1), 10)); err != nil {
					failed.Add(1)
					continue
				}
				_ = hists[i].RecordValue(time.Since(t).Microseconds())
			}
		})
	}
	interval := time.Second / time.Duration(rate)
	start := time.Now()
	late := 0
	for k := 0; ; k++ {
		t := start.Add(time.Duration(k) * interval)
		if t.Sub(start) >= d {
			break
		}
		if w := time.Until(t); w > 0 {
			time.Sleep(w) // pacing the schedule, not synchronisation
		}
		select {
		case due <- t:
		default:
			late++ // every worker busy: the service is not keeping up
			due <- t
		}
	}
	close(due)
	wg.Wait()
	all := merge(hists)
	fmt.Printf("Lookup through %s, open loop at %d/s, %v: p50 %dµs, p99 %dµs, p99.9 %dµs, %d failed (%d sent while every worker was busy)\n",
		via, rate, d, all.ValueAtQuantile(50), all.ValueAtQuantile(99), all.ValueAtQuantile(99.9), failed.Load(), late)
	return nil
}

// writes measures WriteMetric through the SDK (batching) and one value
// per call.
func writes(name, target string, d time.Duration) error {
	sdk, err := client.New(client.Options{Target: target, Application: "bench/shop", Baseline: "v1", Buffer: 100000})
	if err != nil {
		return err
	}
	start := time.Now()
	n := 0
	for ; time.Since(start) < d; n++ {
		if err := sdk.WriteMetric("user-"+strconv.Itoa(n%100000), "v"+strconv.Itoa(1+n%3), "revenue", float64(n%50)); err != nil {
			return err
		}
		if n%1000 == 999 { // keep within the buffer: wait for the sender to catch up
			for st := sdk.Stats(); int(st.Sent+st.Dropped) < n-50000; st = sdk.Stats() {
				time.Sleep(time.Millisecond) // polling interval
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := sdk.Close(ctx); err != nil {
		return err
	}
	elapsed := time.Since(start)
	st := sdk.Stats()
	fmt.Printf("WriteMetric on %s through the SDK (batches of 100), %v: %.0f values/s acknowledged, %d dropped\n",
		name, d, float64(st.Sent)/elapsed.Seconds(), st.Dropped)

	c, closeConn, err := conn(target)
	if err != nil {
		return err
	}
	defer closeConn()
	h := hdrhistogram.New(1, int64(10*time.Second/time.Microsecond), 3)
	start = time.Now()
	for k := 0; time.Since(start) < d/5; k++ {
		t0 := time.Now()
		if _, err := c.WriteMetric(context.Background(), &pb.MetricValue{Application: "bench/shop", User: "one-" + strconv.Itoa(k),
			Name: "revenue", Value: "1", Version: "v1", Id: fmt.Sprintf("one-%d-%d", start.UnixNano(), k)}); err != nil {
			return fmt.Errorf("write metric: %w", err)
		}
		_ = h.RecordValue(time.Since(t0).Microseconds())
	}
	fmt.Printf("WriteMetric on %s, one value per call, one client: p50 %dµs, p99 %dµs\n", name, h.ValueAtQuantile(50), h.ValueAtQuantile(99))
	return nil
}

// withRedis repeats the write benchmark on Redis (appendfsync always).
func withRedis(dir string, d time.Duration) error {
	const redisServer = "/usr/bin/redis-server"
	if _, err := os.Stat(redisServer); err != nil {
		fmt.Println("WriteMetric on Redis: skipped (no /usr/bin/redis-server; make test-deps installs it)")
		return nil
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	port := lis.Addr().(*net.TCPAddr).Port
	_ = lis.Close()
	cmd := exec.Command(redisServer, "--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--dir", dir,
		"--appendonly", "yes", "--appendfsync", "always", "--save", "")
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	addr := "127.0.0.1:" + strconv.Itoa(port)
	var l *redisledger.Ledger
	deadline := time.Now().Add(30 * time.Second)
	for {
		l, err = redisledger.Open(context.Background(), redisledger.Options{Addr: addr})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redis on %s: %w", addr, err)
		}
		time.Sleep(50 * time.Millisecond) // polling interval
	}
	defer l.Close()
	s, err := serve(l)
	if err != nil {
		return err
	}
	defer s.stop()
	return writes("Redis", s.target, d)
}

// memory looks up 10^4 and then 10^6 distinct users in process and
// reports the live heap after each: the service keeps no per-user state
// beyond a bounded set of recent exposures.
func memory() error {
	dir, err := os.MkdirTemp("", "iter8-bench-abn-mem-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	l, err := boltledger.Open(filepath.Join(dir, "abn.db"), ledger.Options{})
	if err != nil {
		return err
	}
	defer l.Close()
	s, err := serve(l)
	if err != nil {
		return err
	}
	defer s.stop()
	users := 0
	for _, n := range []int{10_000, 1_000_000} {
		for ; users < n; users++ {
			if _, err := s.svc.Lookup("bench/shop", "mem-"+strconv.Itoa(users)); err != nil {
				return errors.New("lookup: " + err.Error())
			}
		}
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		fmt.Printf("heap after Lookups of %d users: %.1f MB in use\n", n, float64(ms.HeapInuse)/1e6)
	}
	return nil
}

func merge(hs []*hdrhistogram.Histogram) *hdrhistogram.Histogram {
	all := hdrhistogram.New(1, int64(10*time.Second/time.Microsecond), 3)
	for _, h := range hs {
		all.Merge(h)
	}
	return all
}
