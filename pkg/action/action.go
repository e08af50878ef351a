package action

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	helmcli "helm.sh/helm/v3/pkg/cli"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/kube"
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
	// Cluster connects to the cluster the front-end's flags choose; nil
	// when there is none.
	Cluster func() (*Cluster, error)
	// Helm holds Helm's settings for chart repositories, registries and
	// debug output; nil means none: charts only from folders and archives,
	// no registry client. pkg/cli fills it from Helm's environment, which
	// the core never reads.
	Helm *helmcli.EnvSettings
}

// Cluster is a connection to a cluster, made from the host tool's flags
// and environment.
type Cluster struct {
	// Client and Dynamic reach the API server.
	Client  kubernetes.Interface
	Dynamic dynamic.Interface
	// Getter is what the clients were made from, for Helm's actions.
	Getter genericclioptions.RESTClientGetter
	// Namespace is the namespace the flags choose.
	Namespace string
	// HelmDriver is where Helm keeps releases (HELM_DRIVER; "" is Secrets).
	HelmDriver string
}

// NewCluster connects through getter.
func NewCluster(getter genericclioptions.RESTClientGetter, namespace, helmDriver string) (*Cluster, error) {
	cfg, err := getter.ToRESTConfig()
	if err != nil {
		return nil, err
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &Cluster{Client: client, Dynamic: dyn, Getter: getter, Namespace: namespace, HelmDriver: helmDriver}, nil
}

// cluster connects, or says why it cannot.
func (c *Configuration) cluster() (*Cluster, error) {
	if c.Cluster == nil {
		return nil, ErrNeedsCluster
	}
	cl, err := c.Cluster()
	if err != nil {
		return nil, fmt.Errorf("connect to the cluster: %w", err)
	}
	return cl, nil
}

// kube is how tasks reach Kubernetes objects: a reader over the dynamic
// client and the default namespace of the cluster the flags choose.
func (c *Configuration) kube() (experiment.ObjectReader, string, error) {
	cl, err := c.cluster()
	if err != nil {
		return nil, "", err
	}
	return kube.Objects(cl.Dynamic), cl.Namespace, nil
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

// ErrNeedsCluster is returned by cluster forms of the commands when the
// front-end has no cluster connection.
var ErrNeedsCluster = errors.New("this needs a Kubernetes cluster connection")
