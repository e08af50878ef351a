// Command abn measures the A/B/n service against its targets
// (docs/abn-figures.md): Lookup throughput over loopback gRPC with 64
// concurrent clients (p50, p99), Lookup latency at an open-loop 20,000/s
// next to two floors (a 64-byte round trip over loopback TCP: on one
// connection with the client polling, the machine's; through the open
// loop's own pacer and workers, the harness's), both with every Lookup a
// new user's (each records an exposure) and, through the SDK, a returning
// user's (none does), WriteMetric throughput through the SDK's batching on
// bbolt and on Redis (and one value per call), and the service's heap after
// 10^4, 10^5 and 10^6 new users (`-memory` measures only that). On Linux it
// also measures the service at the same open-loop rate from one thread that
// never waits in the kernel (polling_linux.go): the service process's echo,
// GET /healthz, and Lookup of returning users over HTTP/JSON and on the
// Lookups stream, spoken by hand (polling_grpc_linux.go), before the gRPC
// runs; Lookup of new users by both after them.
//
// It starts the service in this process on 127.0.0.1 (apps from a fixed
// table, so no cluster is needed) and Redis from Debian's redis-server
// (skipped with a note when it is missing). Run with `make bench-abn`.
// To measure the service apart from its client, run it with -serve pinned
// to one core and the Lookup runs with the flags it prints pinned to the
// other:
//
//	taskset -c 0 go run ./scripts/bench/abn -serve   # prints -target ADDR -echo ADDR -http ADDR
//	taskset -c 1 go run ./scripts/bench/abn -target ADDR -echo ADDR -http ADDR
//
// With those flags, `-only TEXT` takes only the polling rounds whose names
// hold TEXT ("returning users", "new users"), to repeat them alone, and
// `-new-share 0.05` makes one in 20 of the returning users' Lookups a new
// user's.
// `-serve -trace FILE` also writes a Go execution trace of the service
// (`go tool trace FILE`): it showed where Lookups waited for the core.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/trace"
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
	serveOnly := flag.Bool("serve", false, "only serve (print the -target, -echo and -http flags for a client in another process, run until interrupted)")
	target := flag.String("target", "", "only measure Lookup against a service at this gRPC address (one started with -serve)")
	echo := flag.String("echo", "", "with -target: measure the two floors against this echo address (the one -serve prints)")
	httpAddr := flag.String("http", "", "with -target: also measure from a polling client GET /healthz and Lookup over HTTP/JSON at this address (the one -serve prints), Lookup on the Lookups stream at -target, and the echo with -echo")
	clients := flag.Int("clients", 64, "concurrent clients of the Lookup throughput run")
	rate := flag.Int("rate", 20000, "requests a second of the open loops")
	traceFile := flag.String("trace", "", "with -serve: write a Go execution trace of the service to this file (`go tool trace`), to see where Lookups wait")
	memoryOnly := flag.Bool("memory", false, "only measure the service's heap after 10^4, 10^5 and 10^6 new users")
	only := flag.String("only", "", "with -target and -http: take only the polling rounds whose names hold this text (such as \"returning users\", \"new users\" or \"stream\"), and nothing else")
	newShare := flag.Float64("new-share", 0, "with -target and -http, on Linux: make this share of the polling rounds' returning users' Lookups (0, or 0.0001 to 0.5, rounded to one in a whole number) new users', as in a real mix")
	flag.Parse()
	var err error
	switch {
	case *duration < time.Second:
		fmt.Fprintf(os.Stderr, "bench abn: -duration %v: want at least 1s (the open loops run 3 rounds of a third each)\n", *duration)
		os.Exit(2)
	case *rate < 100 || *rate > 1_000_000:
		fmt.Fprintf(os.Stderr, "bench abn: -rate %d: want 100 to 1000000 requests a second\n", *rate)
		os.Exit(2)
	case *serveOnly && (*target != "" || *echo != "" || *httpAddr != ""):
		fmt.Fprintln(os.Stderr, "bench abn: -serve goes without -target, -echo and -http (it prints them for the client)")
		os.Exit(2)
	case *memoryOnly && (*serveOnly || *target != "" || *echo != "" || *traceFile != ""):
		fmt.Fprintln(os.Stderr, "bench abn: -memory goes alone (not with -serve, -target, -echo or -trace)")
		os.Exit(2)
	case *traceFile != "" && !*serveOnly:
		fmt.Fprintln(os.Stderr, "bench abn: -trace goes with -serve")
		os.Exit(2)
	case *only != "" && (*target == "" || *httpAddr == ""):
		fmt.Fprintln(os.Stderr, "bench abn: -only goes with -target and -http (it picks among the polling rounds)")
		os.Exit(2)
	case *only != "" && runtime.GOOS != "linux":
		fmt.Fprintln(os.Stderr, "bench abn: -only picks among the polling rounds, which need Linux (epoll)")
		os.Exit(2)
	case *newShare != 0 && !(*newShare >= 0.0001 && *newShare <= 0.5):
		fmt.Fprintf(os.Stderr, "bench abn: -new-share %v: want 0, or 0.0001 (one in 10,000) to 0.5 (the new users' own rounds have every Lookup a new user's)\n", *newShare)
		os.Exit(2)
	case *newShare > 0 && (*target == "" || *httpAddr == "" || runtime.GOOS != "linux"):
		fmt.Fprintln(os.Stderr, "bench abn: -new-share goes with -target and -http, on Linux (it mixes new users into the polling rounds of returning users)")
		os.Exit(2)
	case *serveOnly:
		var traceTo *os.File
		if *traceFile != "" {
			if traceTo, err = os.Create(*traceFile); err != nil {
				fmt.Fprintln(os.Stderr, "bench abn: -trace:", err)
				os.Exit(2)
			}
			defer traceTo.Close()
		}
		err = serveUntilInterrupted(traceTo)
	case (*echo != "" || *httpAddr != "") && *target == "":
		fmt.Fprintln(os.Stderr, "bench abn: -echo and -http go with -target")
		os.Exit(2)
	case *memoryOnly:
		err = memory()
	case *target != "":
		err = reachable(*target, *echo, *httpAddr)
		// The polling loops of returning users first, on a service that
		// stores nothing yet (but the new users of -new-share), and of new
		// users last: new users leave exposures to merge for a while after
		// their runs.
		var returning, fresh int
		if err == nil && *httpAddr != "" {
			returning, err = pollingLoops(*target, *httpAddr, *echo, *rate, *duration, false, *only, *newShare)
		}
		if err == nil && *only == "" {
			err = lookups(*target, *echo, *clients, *rate, *duration)
		}
		if err == nil && *httpAddr != "" {
			fresh, err = pollingLoops(*target, *httpAddr, *echo, *rate, *duration, true, *only, 0)
		}
		if err == nil && *only != "" && returning+fresh == 0 {
			fmt.Fprintf(os.Stderr, "bench abn: -only %q: no polling round has it in its name; the rounds are the service process's own echo (with -echo), GET /healthz, and Lookup over HTTP/JSON and on the Lookups stream, each with returning users and with new users\n", *only)
			os.Exit(2)
		}
	default:
		err = run(*duration, *rate)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench abn:", err)
		if errors.Is(err, errBadAddress) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// errBadAddress marks a -target, -echo or -http that does not answer: bad
// input, exit 2.
var errBadAddress = errors.New("does not answer")

// serveUntilInterrupted runs the service on bbolt in a temporary folder,
// so that it can be pinned to cores apart from the client (taskset).
func serveUntilInterrupted(traceTo *os.File) error {
	if traceTo != nil {
		if err := trace.Start(traceTo); err != nil {
			return fmt.Errorf("-trace: %w", err)
		}
		defer trace.Stop()
	}
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
	echo, err := serveEcho()
	if err != nil {
		return err
	}
	defer echo.Close()
	fmt.Printf("-target %s -echo %s -http %s\n", s.target, echo.Addr(), s.http)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	fmt.Printf("exposures not recorded (the queue to the ledger was full): %d\n", s.svc.DroppedExposures())
	return nil
}

var shop = apps.Static{"bench/shop": {Namespace: "bench", Name: "shop", Versions: []apps.Version{
	{Name: "v1", Weight: 50, Ready: true}, {Name: "v2", Weight: 30, Ready: true}, {Name: "v3", Weight: 20, Ready: true},
}}}

// server is the service on loopback over one ledger: gRPC at target,
// HTTP/JSON at http.
type server struct {
	svc          *service.Service
	target, http string
	stop         func()
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
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		_ = lis.Close()
		return nil, err
	}
	// The servers as `abn serve` makes them, with their options.
	gs := service.NewGRPCServer(svc)
	go func() { _ = gs.Serve(lis) }()
	hs := service.NewHTTPServer(svc)
	go func() { _ = hs.Serve(hl) }()
	return &server{svc: svc, target: lis.Addr().String(), http: hl.Addr().String(),
		stop: func() { gs.Stop(); _ = hs.Close(); cancel() }}, nil
}

func run(d time.Duration, rate int) error {
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

	echo, err := serveEcho()
	if err != nil {
		return err
	}
	defer echo.Close()
	// The polling client shares this process and its cores with the
	// service here; -serve and -target measure them apart.
	if _, err := pollingLoops(s.target, s.http, echo.Addr().String(), rate, d, false, "", 0); err != nil {
		return err
	}
	if err := lookups(s.target, echo.Addr().String(), 64, rate, d); err != nil {
		return err
	}
	if _, err := pollingLoops(s.target, s.http, echo.Addr().String(), rate, d, true, "", 0); err != nil {
		return err
	}
	fmt.Printf("exposures not recorded (the queue to the ledger was full): %d\n", s.svc.DroppedExposures())
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

// openLoopWorkers is how many Lookups of an open loop can be outstanding.
const openLoopWorkers = 256

// openLoopRounds: the open loops take turns, this many rounds each, so
// that a burst of other work on the machine falls on every contender
// alike and not on one of them.
const openLoopRounds = 3

// returningUsers is how many users the returning users' runs draw from.
// The service queues a user's exposure only when the user is not in its
// set of recent exposures (65,536 users, emptied when full, as the new
// users' runs make it), so each of these runs follows a warm-up over its
// users (warmUp): then none of its Lookups queues an exposure, the least
// a Lookup can cost. A real mix of new and returning users lies between
// these runs and the new users' runs.
const returningUsers = 10000

// warmUp runs an uncounted open-loop round: long enough for connections
// and streams to open, and for returning users two passes over them. The
// first puts each back in the service's recent set; should the set be
// emptied meanwhile, the second adds at most returningUsers to it, too few
// to empty it again.
func warmUp(lookup lookupFunc, users string, returning int64, rate int) error {
	w := openLoopRun{lookup: lookup, users: users, returning: returning, all: newHist(), own: newHist()}
	if err := w.round(rate, max(time.Second/2, time.Duration(2*returning)*time.Second/time.Duration(rate))); err != nil {
		return err
	}
	if w.failed > 0 {
		return fmt.Errorf("%d Lookups of the warm-up failed", w.failed)
	}
	return nil
}

// lookups runs the closed-loop Lookup runs through the unary calls and
// through the SDK, then (when there is an echo address) the machine's
// floor, then the open loops in turns: the harness's floor, the unary
// calls and the SDK; the SDK's runs also with returning users.
func lookups(target, echo string, clients, rate int, d time.Duration) error {
	type contender struct {
		name      string
		dial      func(string) (lookupFunc, func(), error)
		addr      string
		returning bool
	}
	contenders := []contender{
		{"Lookup through unary calls", unaryClient, target, false},
		{"Lookup through the SDK (stream)", sdkClient, target, false},
		{"Lookup through the SDK (stream), returning users", sdkClient, target, true},
	}
	for i, c := range contenders {
		f, closeClient, err := c.dial(c.addr)
		if err != nil {
			return err
		}
		users := fmt.Sprintf("closed-%s-%d-", runID, i)
		if c.returning {
			err = warmUp(f, users, returningUsers, rate) // after the new users' runs
		}
		if err == nil {
			err = lookupThroughput(c.name, users, f, clients, d, c.returning)
		}
		closeClient()
		if err != nil {
			return err
		}
	}
	if echo != "" {
		if err := wireFloor(echo, rate, d/openLoopRounds); err != nil {
			return err
		}
		floor := contender{"The harness's floor: a 64-byte round trip over loopback TCP through this open loop", echoClient, echo, false}
		contenders = append([]contender{floor}, contenders...)
	}
	runs := make([]*openLoopRun, len(contenders))
	for i, c := range contenders {
		f, closeClient, err := c.dial(c.addr)
		if err != nil {
			return err
		}
		defer closeClient()
		run := &openLoopRun{name: c.name, lookup: f, users: fmt.Sprintf("open-%s-%d-", runID, i), all: newHist(), own: newHist()}
		if c.returning {
			run.returning = returningUsers
		} else if err := warmUp(f, "warm-"+run.users, 0, rate); err != nil {
			return err
		}
		runs[i] = run
	}
	for range openLoopRounds {
		for i := range runs {
			// The new users' rounds before may have emptied the recent set.
			if runs[i].returning != 0 {
				if err := warmUp(runs[i].lookup, runs[i].users, runs[i].returning, rate); err != nil {
					return err
				}
			}
			if err := runs[i].round(rate, d/openLoopRounds); err != nil {
				return err
			}
		}
	}
	for _, r := range runs {
		if r.all.TotalCount() == 0 {
			fmt.Printf("%s, open loop at %d/s: every call failed (%d)\n", r.name, rate, r.failed)
			continue
		}
		fmt.Printf("%s, open loop at %d/s, %d rounds of %v in turns: p50 %dµs, p99 %dµs (rounds: %s), p99.9 %dµs, %d failed (%d found no worker waiting); the schedule's own delay: p50 %dµs, p99 %dµs\n",
			r.name, rate, openLoopRounds, (d / openLoopRounds).Round(time.Millisecond), r.all.ValueAtQuantile(50), r.all.ValueAtQuantile(99), r.roundP99s,
			r.all.ValueAtQuantile(99.9), r.failed, r.late, r.own.ValueAtQuantile(50), r.own.ValueAtQuantile(99))
	}
	return nil
}

// reachable checks the addresses before any run, so that a wrong one is
// named at once instead of counted as failed Lookups.
func reachable(target, echo, httpAddr string) error {
	c, closeConn, err := conn(target)
	if err != nil {
		return fmt.Errorf("-target %s %w: %w", target, errBadAddress, err)
	}
	defer closeConn()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.Lookup(ctx, &pb.Application{Name: "bench/shop", User: "reachable"}); err != nil {
		return fmt.Errorf("-target %s %w (a service started with -serve is expected there): %w", target, errBadAddress, err)
	}
	if httpAddr != "" {
		hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil}}
		resp, err := hc.Get("http://" + httpAddr + "/healthz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("GET /healthz: %s", resp.Status)
			}
		}
		hc.CloseIdleConnections()
		if err != nil {
			return fmt.Errorf("-http %s %w (the HTTP address -serve prints is expected there): %w", httpAddr, errBadAddress, err)
		}
	}
	if echo == "" {
		return nil
	}
	e, err := net.DialTimeout("tcp", echo, 5*time.Second)
	if err == nil {
		defer e.Close()
		err = echoOnce(e, time.Now().Add(5*time.Second))
	}
	if err != nil {
		return fmt.Errorf("-echo %s %w (the echo address -serve prints is expected there): %w", echo, errBadAddress, err)
	}
	return nil
}

// echoOnce writes 64 bytes on c and reads them back, by deadline when it
// is set.
func echoOnce(c net.Conn, deadline time.Time) error {
	if err := c.SetDeadline(deadline); err != nil {
		return err
	}
	var buf [64]byte
	buf[0] = 1
	if _, err := c.Write(buf[:]); err != nil {
		return err
	}
	var got [64]byte
	if _, err := io.ReadFull(c, got[:]); err != nil {
		return err
	}
	if got != buf {
		return errors.New("answered other bytes than it was sent: not an echo")
	}
	return nil
}

func newHist() *hdrhistogram.Histogram {
	return hdrhistogram.New(1, int64(10*time.Second/time.Microsecond), 3)
}

// lookupThroughput: clients call Lookup back to back, each for new users
// named from users, or for returning users (the returningUsers of users).
func lookupThroughput(via, users string, lookup lookupFunc, clients int, d time.Duration, returning bool) error {
	hists := make([]*hdrhistogram.Histogram, clients)
	var failed atomic.Int64
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for i := range clients {
		hists[i] = newHist()
		wg.Go(func() {
			for n := 0; time.Now().Before(deadline); n++ {
				user := userID(users, uint64(i)<<32|uint64(n))
				if returning {
					user = userID(users, uint64((i*7919+n)%returningUsers))
				}
				t0 := time.Now()
				if err := lookup(user); err != nil {
					failed.Add(1)
					continue
				}
				_ = hists[i].RecordValue(time.Since(t0).Microseconds())
			}
		})
	}
	wg.Wait()
	all := merge(hists)
	fmt.Printf("%s, %d concurrent clients, %v: %.0f/s, p50 %dµs, p99 %dµs, %d failed\n",
		via, clients, d, float64(all.TotalCount())/d.Seconds(), all.ValueAtQuantile(50), all.ValueAtQuantile(99), failed.Load())
	return nil
}

// openLoopRun gathers one contender's open-loop rounds.
type openLoopRun struct {
	name   string
	lookup lookupFunc
	// users names the run's users: unless returning is set, each Lookup
	// of every round, of every contender and of every process is of a new
	// user, so that each costs the service the same work (a user seen
	// recently records no exposure).
	users string
	// returning, when not 0, is how many users the run draws from in turn
	// (named as its warm-ups named them), instead of a new user each time.
	returning    int64
	sent         atomic.Int64
	all, own     *hdrhistogram.Histogram
	roundP99s    string
	failed, late int64
}

// userID names user n of a group as real user IDs look: in no order, so
// that the ledger stores them where random IDs land. Names in sequence
// would only append to its trees, which made new users look cheaper than
// they are. (splitmix64's finalizer: one name per n.)
func userID(group string, n uint64) string {
	z := n + 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	z ^= z >> 31
	return fmt.Sprintf("%016x-%s", z, group)
}

// runID tells this process's users from those of another run against
// the same -serve process.
var runID = strconv.FormatInt(time.Now().UnixNano(), 36)

// round sends Lookups at a fixed rate whatever the answers do, and
// measures each from when it was due (no coordinated omission).
func (r *openLoopRun) round(rate int, d time.Duration) error {
	// Unbuffered: a send goes through only to a worker that waits; one
	// that cannot found none waiting (all busy, or not yet back).
	due := make(chan time.Time)
	hists := make([]*hdrhistogram.Histogram, openLoopWorkers)
	var wg sync.WaitGroup
	var failed atomic.Int64
	for i := range openLoopWorkers {
		hists[i] = newHist()
		wg.Go(func() {
			for t := range due {
				n := r.sent.Add(1)
				if r.returning != 0 {
					n %= r.returning
				}
				if err := r.lookup(userID(r.users, uint64(n))); err != nil {
					failed.Add(1)
					continue
				}
				_ = hists[i].RecordValue(time.Since(t).Microseconds())
			}
		})
	}
	defer func() {
		close(due)
		wg.Wait()
		all := merge(hists)
		r.all.Merge(all)
		r.failed += failed.Load()
		if r.roundP99s != "" {
			r.roundP99s += ", "
		}
		r.roundP99s += strconv.FormatInt(all.ValueAtQuantile(99), 10)
	}()
	interval := time.Second / time.Duration(rate)
	total := int(d / interval)
	pace, err := newPacer(interval)
	if err != nil {
		return err
	}
	defer pace.close()
	for k := 0; k < total; {
		ticks, err := pace.wait()
		if err != nil {
			return err
		}
		for ; ticks > 0 && k < total; ticks-- {
			k++
			t := pace.start.Add(time.Duration(k) * interval)
			// The schedule's own delay, from when a Lookup was due to
			// when the pacer hands it out, is part of every latency.
			_ = r.own.RecordValue(time.Since(t).Microseconds())
			select {
			case due <- t:
			default:
				r.late++ // no worker waiting: the service may not keep up
				due <- t
			}
		}
	}
	return nil
}

// wireFloor measures the machine's floor: 64-byte round trips on one
// loopback connection, at most rate a second (back to back when a round
// trip takes longer than 1/rate), each timed from its write: a closed
// loop, which no Lookup can beat. Its one goroutine never waits in the
// kernel: it spins until a round trip is due, and polls the socket for
// the answer (busyRoundTrip), so that the client's core never idles. Only
// the echo's side waits, as a service between requests does.
func wireFloor(addr string, rate int, d time.Duration) error {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return fmt.Errorf("echo server %s: %w", addr, err)
	}
	defer conn.Close()
	c := conn.(*net.TCPConn)
	h := newHist()
	interval := time.Second / time.Duration(rate)
	total := int(d / interval)
	late := 0 // round trips that were due before the last one ended
	start := time.Now()
	for k := 1; k <= total; k++ {
		due := start.Add(time.Duration(k) * interval)
		if !time.Now().Before(due) {
			late++
		}
		for time.Now().Before(due) { // spin: see above
		}
		t0 := time.Now()
		if err := busyRoundTrip(c); err != nil {
			return fmt.Errorf("echo server %s: %w", addr, err)
		}
		_ = h.RecordValue(time.Since(t0).Microseconds())
	}
	elapsed := time.Since(start)
	fmt.Printf("The machine's floor: a 64-byte round trip over loopback TCP on one connection, the client polling (a closed loop, timed from each write), %v: %.0f/s (at most %d/s; %d%% started late, back to back), p50 %dµs, p99 %dµs, p99.9 %dµs\n",
		elapsed.Round(time.Millisecond), float64(total)/elapsed.Seconds(), rate, 100*late/max(total, 1), h.ValueAtQuantile(50), h.ValueAtQuantile(99), h.ValueAtQuantile(99.9))
	return nil
}

// serveEcho answers every connection by echoing what it reads.
func serveEcho() (net.Listener, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return lis, nil
}

// echoClient: each call writes 64 bytes on an idle connection of a pool
// opened beforehand (one per open-loop worker, so that no call times a
// connect) and reads them back, as a Lookup would with no gRPC framing
// and no work in the service.
func echoClient(addr string) (lookupFunc, func(), error) {
	idle := make(chan net.Conn, openLoopWorkers)
	closeAll := func() {
		for {
			select {
			case c := <-idle:
				_ = c.Close()
			default:
				return
			}
		}
	}
	for range openLoopWorkers {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("-echo %s: %w", addr, err)
		}
		idle <- c
	}
	return func(string) error {
		c := <-idle
		err := echoOnce(c, time.Time{})
		if err != nil { // a broken connection is replaced, not reused
			_ = c.Close()
			if fresh, dialErr := net.Dial("tcp", addr); dialErr == nil {
				c = fresh
			}
		}
		idle <- c
		return err
	}, closeAll, nil
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
	h := newHist()
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

// memory looks up 10^4, 10^5 and then 10^6 distinct users in process and
// reports the heap after each, and the largest of the samples taken every
// 10^4 users: live objects (HeapAlloc after a GC) and the spans that hold
// them (HeapInuse, what the process keeps). The service keeps no per-user
// state beyond its exposer's queue and set of recent users and the
// ledger's journal, all bounded. Every exposure is stored before a sample:
// Lookups faster than the ledger stores exposures would have most of them
// dropped, and the ledger would hold fewer users.
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
	const every = 10_000
	deadline := time.Now().Add(10 * time.Minute)
	users, peakLive, peakInUse := 0, uint64(0), uint64(0)
	for _, n := range []int{10_000, 100_000, 1_000_000} {
		var ms runtime.MemStats
		for users < n {
			for end := users + every; users < end; users += 1000 {
				// A user whose exposure was dropped queues it again on
				// the next Lookup.
				for dropped := s.svc.DroppedExposures(); ; dropped = s.svc.DroppedExposures() {
					for u := users; u < users+1000; u++ {
						if _, err := s.svc.Lookup("bench/shop", userID("mem-", uint64(u))); err != nil {
							return errors.New("lookup: " + err.Error())
						}
					}
					if s.svc.DroppedExposures() == dropped {
						break
					}
					if time.Now().After(deadline) {
						return errors.New("memory: exposures still dropped after 10 minutes")
					}
					time.Sleep(time.Millisecond) // let the queue drain
				}
			}
			if err := stored(l, users, deadline); err != nil {
				return err
			}
			runtime.GC()
			runtime.ReadMemStats(&ms)
			peakLive, peakInUse = max(peakLive, ms.HeapAlloc), max(peakInUse, ms.HeapInuse)
		}
		fmt.Printf("heap after Lookups of %d users: %.1f MB live, %.1f MB in use (largest sampled up to then: %.1f and %.1f MB)\n",
			n, float64(ms.HeapAlloc)/1e6, float64(ms.HeapInuse)/1e6, float64(peakLive)/1e6, float64(peakInUse)/1e6)
	}
	return nil
}

// stored waits until the ledger counts n users exposed to bench/shop: an
// exposure the ledger refused is not counted as dropped, and its user is
// not looked up again.
func stored(l ledger.Ledger, n int, deadline time.Time) error {
	for {
		sum, err := l.Summary(context.Background(), "bench/shop")
		if err != nil {
			return fmt.Errorf("memory: summary: %w", err)
		}
		var exposed int64
		for _, v := range sum.Versions {
			exposed += v.Users
		}
		if exposed == int64(n) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("memory: the ledger holds %d users after %d Lookups of new users, want all", exposed, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func merge(hs []*hdrhistogram.Histogram) *hdrhistogram.Histogram {
	all := newHist()
	for _, h := range hs {
		all.Merge(h)
	}
	return all
}
