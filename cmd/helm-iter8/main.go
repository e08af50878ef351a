// Command helm-iter8 is the `helm iter8` plugin.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	fortiolog "fortio.org/log"

	"github.com/iter8-tools/iter8/pkg/cli"
)

func main() {
	// fortio logs every run at Info level on its own; only its errors matter here.
	fortiolog.SetLogLevelQuiet(fortiolog.Error)
	// SIGHUP (a closed terminal or ssh session) ends a run as SIGINT does:
	// the result keeps the load measured so far and says how it ended.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	code := cli.Execute(ctx, cli.Helm())
	stop()
	os.Exit(code)
}
