// Command abnfrontend serves the sample A/B/n frontend (package
// abnfrontend): abnfrontend -listen 127.0.0.1:8090 -abn 127.0.0.1:50051
// -app default/shop -baseline v1 -backend v1=http://127.0.0.1:9001
// -backend v2=http://127.0.0.1:9002 (or -gateway URL).
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
	flag.Parse()
	c, err := client.New(client.Options{Target: *abn, Application: *app, Baseline: *baseline})
	if err != nil {
		fmt.Fprintln(os.Stderr, "abnfrontend:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv := &http.Server{Addr: *listen, Handler: abnfrontend.Handler(abnfrontend.Options{ABN: c, Backends: bs, Gateway: *gateway}),
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
