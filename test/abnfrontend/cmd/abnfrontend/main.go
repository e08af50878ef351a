// Command abnfrontend serves the sample A/B/n frontend (package
// abnfrontend): abnfrontend -listen 127.0.0.1:8090 -abn 127.0.0.1:50051
// -app default/shop -baseline v1 -backend v1=http://127.0.0.1:9001
// -backend v2=http://127.0.0.1:9002 (or -gateway URL)
// [-purchase-header X-Purchase] [-log FILE].
//
// With -purchase-header, the backend says who buys (the sample app's
// --conversion sets X-Purchase); without it every answered request is a
// purchase of ?amount=. With -log, one JSON line per request (user,
// version, fallback, status, purchased, revenue) is appended to FILE ("-": stdout);
// abnfrontend.ReadLog parses it.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/iter8-tools/iter8/abn/client"
	"github.com/iter8-tools/iter8/test/abnfrontend"
)

type backends map[string]string

func (b backends) String() string { return fmt.Sprint(map[string]string(b)) }
func (b backends) Set(s string) error {
	name, url, ok := strings.Cut(s, "=")
	if !ok || name == "" || url == "" {
		return fmt.Errorf("%q: want VERSION=URL", s)
	}
	b[name] = url
	return nil
}

func main() {
	listen := flag.String("listen", "127.0.0.1:8090", "address to serve on")
	abn := flag.String("abn", "127.0.0.1:50051", "the A/B/n service's gRPC address")
	app := flag.String("app", "", "the backend application, namespace/name")
	baseline := flag.String("baseline", "", "the version to use when the service cannot answer")
	gateway := flag.String("gateway", "", "the Gateway's base URL (routes by the Lookup's header)")
	bs := backends{}
	flag.Var(bs, "backend", "VERSION=URL of a version, for direct routing (repeat)")
	purchaseHeader := flag.String("purchase-header", "", "record a purchase only when the backend's answer carries this header (such as X-Purchase), of its value; default: every answer, of ?amount=")
	logFile := flag.String("log", "", "append one JSON line per request to this `file` (\"-\": stdout)")
	flag.Parse()
	opts := abnfrontend.Options{Backends: bs, Gateway: *gateway, PurchaseHeader: *purchaseHeader}
	switch *logFile {
	case "":
	case "-":
		opts.Log = os.Stdout
	default:
		f, err := os.OpenFile(*logFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			fmt.Fprintln(os.Stderr, "abnfrontend: -log:", err)
			os.Exit(2)
		}
		// Unbuffered: every line is in the file once written, and the
		// process's exit closes it.
		opts.Log = f
	}
	c, err := client.New(client.Options{Target: *abn, Application: *app, Baseline: *baseline})
	if err != nil {
		fmt.Fprintln(os.Stderr, "abnfrontend:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts.ABN = c
	srv := &http.Server{Addr: *listen, Handler: abnfrontend.Handler(opts),
		ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Shutdown(context.Background())
	}()
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, "abnfrontend:", err)
		os.Exit(1)
	}
	flush, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Close(flush); err != nil {
		fmt.Fprintln(os.Stderr, "abnfrontend: flush metrics:", err)
		os.Exit(1)
	}
}
