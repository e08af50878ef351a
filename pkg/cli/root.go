package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	helmcli "helm.sh/helm/v3/pkg/cli"
	"k8s.io/cli-runtime/pkg/genericclioptions"

	"github.com/iter8-tools/iter8/pkg/action"
	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/report"
)

// Frontend is one of the two plugins.
type Frontend struct {
	// DisplayName is how usage names the command: "helm iter8".
	DisplayName string
	// addClusterFlags binds the flags that choose a cluster and namespace,
	// the way the host tool does.
	addClusterFlags func(fs *pflag.FlagSet)
	// cluster connects with those flags (read once parsed).
	cluster func() (*action.Cluster, error)
	// helm holds Helm's settings for charts from repositories and
	// registries, and its debug switch.
	helm *helmcli.EnvSettings
}

// Helm is `helm iter8`: cluster settings come from Helm's own environment
// (HELM_NAMESPACE, HELM_KUBECONTEXT, KUBECONFIG, ...) and flags.
func Helm() Frontend {
	settings := helmcli.New()
	return Frontend{
		DisplayName:     "helm iter8",
		addClusterFlags: settings.AddFlags,
		cluster: func() (*action.Cluster, error) {
			getter := settings.RESTClientGetter()
			if err := clusterConfigured(getter, settings.KubeAPIServer); err != nil {
				return nil, err
			}
			return action.NewCluster(getter, settings.Namespace(), os.Getenv("HELM_DRIVER"))
		},
		helm: settings,
	}
}

// Kubectl is `kubectl iter8`: cluster settings come from kubectl's flags
// (-n, --context, --kubeconfig, ...).
func Kubectl() Frontend {
	flags := genericclioptions.NewConfigFlags(true)
	return Frontend{
		DisplayName:     "kubectl iter8",
		addClusterFlags: flags.AddFlags,
		// Charts from repositories and registries are found as Helm finds
		// them, from Helm's environment.
		helm: helmcli.New(),
		cluster: func() (*action.Cluster, error) {
			server := ""
			if flags.APIServer != nil {
				server = *flags.APIServer
			}
			if err := clusterConfigured(flags, server); err != nil {
				return nil, err
			}
			ns, _, err := flags.ToRawKubeConfigLoader().Namespace()
			if err != nil {
				return nil, err
			}
			return action.NewCluster(flags, ns, os.Getenv("HELM_DRIVER"))
		},
	}
}

// clusterConfigured refuses a connection that names no cluster: no
// --server, no cluster in any kubeconfig, and not in a Pod. client-go would
// otherwise fall back to http://localhost:8080, and a command would wait
// for a cluster that was never there.
func clusterConfigured(getter genericclioptions.RESTClientGetter, server string) error {
	if server != "" || os.Getenv("KUBERNETES_SERVICE_HOST") != "" {
		return nil
	}
	raw, err := getter.ToRawKubeConfigLoader().RawConfig()
	if err != nil {
		return err // a kubeconfig that cannot be read: client-go says why
	}
	if len(raw.Clusters) == 0 {
		return errors.New("no cluster configured: set KUBECONFIG or --kubeconfig")
	}
	return nil
}

// IOStreams are where commands read and write.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
}

// StdStreams are the process's standard streams.
func StdStreams() IOStreams {
	return IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}
}

const rootDesc = `Iter8 runs experiments that load-test, validate and compare versions of
HTTP services: readiness checks, load with built-in latency and error
metrics, SLOs per version and rewards that pick a winner.

A local experiment runs here, with no cluster:

  %[1]s launch --local --set 'tasks={http,assess}' \
      --set http.url=http://127.0.0.1:8080/ \
      --set 'assess.slos[0].metric=http/latency-p99' --set 'assess.slos[0].upper=50'
  %[1]s report
  %[1]s assert -c completed -c nofailure -c slos

Exit codes: 0 success; 1 an assert condition is false (or, for run, SLOs
not met with failOnSLOs); 2 the command could not do its work (bad input,
a failed task, no result).`

// NewRootCmd builds the command tree of a front-end.
func NewRootCmd(fe Frontend, streams IOStreams) *cobra.Command {
	cfg := action.NewConfiguration()
	cfg.Log = streams.ErrOut
	cfg.Progress = streams.ErrOut
	cfg.Secret = os.LookupEnv
	// Connect once per command, on first use.
	cfg.Cluster = sync.OnceValues(fe.cluster)
	cfg.Helm = fe.helm

	root := &cobra.Command{
		Use:           "iter8",
		Short:         "Load-test, validate and compare versions of services",
		Long:          fmt.Sprintf(rootDesc, fe.DisplayName),
		SilenceErrors: true,
		SilenceUsage:  true,
		Annotations:   map[string]string{cobra.CommandDisplayNameAnnotation: fe.DisplayName},
	}
	root.PersistentPreRun = func(cmd *cobra.Command, _ []string) {
		if cmd.Name() != "version" {
			useFallbackRoots()
		}
	}
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	if fe.addClusterFlags != nil {
		fe.addClusterFlags(root.PersistentFlags())
	}
	e := &cmdEnv{cfg: cfg, streams: streams, name: fe.DisplayName}
	root.AddCommand(
		newLaunchCmd(e),
		newRunCmd(e),
		newReportCmd(e),
		newAssertCmd(e),
		newLogCmd(e),
		newListCmd(e),
		newDeleteCmd(e),
		newReleaseCmd(e),
		newABNCmd(e),
		newVersionCmd(e),
	)
	return root
}

// Execute runs a front-end with the process's arguments and streams, prints
// an error if there is one, and returns the exit code for main.
func Execute(ctx context.Context, fe Frontend) int {
	streams := StdStreams()
	root := NewRootCmd(fe, streams)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	// An error may quote a server or a file: nothing in it may act on the
	// terminal.
	fmt.Fprintf(streams.ErrOut, "Error: %s\n", report.PrintableLines(err.Error()))
	return ExitCode(err)
}

// ExitError carries a command's exit code.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// ExitCode decides the exit code of an error: an ExitError's code, and 2 (the
// command could not do its work) for any other error.
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	return 2
}

// cmdEnv is what every command is built with.
type cmdEnv struct {
	cfg     *action.Configuration
	streams IOStreams
	// name is how usage names the root command ("kubectl iter8").
	name string
}

// target returns the options that choose the experiment of command.
func (e *cmdEnv) target(command string) targetOptions {
	return targetOptions{command: command, cfg: e.cfg}
}

// runExit gives the error of a run its exit code: 1 for SLOs not met with
// failOnSLOs (a verdict), 2 for everything else.
func runExit(err error) error {
	if errors.Is(err, experiment.ErrSLOsNotMet) {
		return &ExitError{Code: 1, Err: err}
	}
	return err
}

// errConditionsFalse marks an assert whose conditions do not all hold.
var errConditionsFalse = errors.New("conditions do not hold")

// options are a command's options as kubectl's commands have them: Complete
// fills them in from the arguments and flags, Validate checks them before
// any I/O, and Run does the work.
type options interface {
	Complete(cmd *cobra.Command, args []string) error
	Validate() error
	Run(ctx context.Context) error
}

// runE runs a command's options, in that order.
func runE(o options) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if err := o.Complete(cmd, args); err != nil {
			return err
		}
		if err := o.Validate(); err != nil {
			return err
		}
		return o.Run(cmd.Context())
	}
}
