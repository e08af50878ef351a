package action

import (
	"errors"
	"io"
	"log/slog"
	"time"

	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/task"
)

// Configuration is what every action shares.
type Configuration struct {
	// Registry holds the tasks a spec may use.
	Registry *experiment.Registry
	// Log receives a run's log lines (stderr on the command line).
	Log io.Writer
	// Progress receives live load progress.
	Progress io.Writer
	// Secret looks up a named secret for tasks.
	Secret func(name string) (string, bool)
	// Now is the clock.
	Now func() time.Time
}

// NewConfiguration returns a configuration with every task, a discarded log
// and the real clock.
func NewConfiguration() *Configuration {
	return &Configuration{
		Registry: task.Registry(),
		Log:      io.Discard,
		Progress: io.Discard,
		Secret:   func(string) (string, bool) { return "", false },
		Now:      time.Now,
	}
}

func (c *Configuration) logger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				a.Value = slog.StringValue(a.Value.Time().Format("15:04:05.000"))
			}
			return a
		},
	}))
}

// ErrInvalidSpec is wrapped by errors about an experiment spec or values that
// fail validation; nothing has run when it is returned.
var ErrInvalidSpec = errors.New("invalid experiment")

// ErrNeedsCluster is returned by the cluster forms of the commands, which this
// version cannot run yet.
var ErrNeedsCluster = errors.New("this needs a Kubernetes cluster, and this version of iter8 cannot use one yet; use a local experiment (launch --local, or -f SPEC)")
