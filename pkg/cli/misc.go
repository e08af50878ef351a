package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/spf13/cobra"

	"github.com/iter8-tools/iter8/pkg/action"
	"github.com/iter8-tools/iter8/pkg/report"
	"github.com/iter8-tools/iter8/pkg/store"
)

func newLogCmd(e *cmdEnv) *cobra.Command {
	o := &targetOptions{}
	a := action.NewLog(e.cfg)
	cmd := &cobra.Command{
		Use:   "log [RELEASE]",
		Short: "Show the log of an experiment's run",
		Long:  "Show the log lines kept with an experiment's result (the last " + fmt.Sprint(action.LogTailLines) + " lines of the run).",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.complete(cmd, args)
			if err := o.validate("log"); err != nil {
				return err
			}
			a.SpecPath, a.Release, a.Revision = o.SpecPath, o.Release, o.Revision
			lines, err := a.Run(cmd.Context())
			if err != nil {
				return fmt.Errorf("log%s: %w", releaseSuffix(o.Release), err)
			}
			for _, l := range lines {
				fmt.Fprintln(e.streams.Out, report.Printable(l))
			}
			return nil
		},
	}
	o.addFlags(cmd.Flags(), "f")
	o.addRevisionFlag(cmd.Flags())
	return cmd
}

func newListCmd(e *cmdEnv) *cobra.Command {
	a := action.NewList(e.cfg)
	var output string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the experiments in a cluster",
		Long:  "List the experiments in the namespace (-n, or the context's), or in all namespaces (-A), with their newest revision, state and SLO verdict.",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "" && output != "json" && output != "yaml" {
				return fmt.Errorf("list: -o: unknown output format %q: want json or yaml (default: a table)", output)
			}
			list, err := a.Run(cmd.Context())
			if err != nil {
				return fmt.Errorf("list: %w", err)
			}
			return printList(e.streams.Out, list, output)
		},
	}
	cmd.Flags().BoolVarP(&a.AllNamespaces, "all-namespaces", "A", false, "list experiments in all namespaces")
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: json or yaml (default: a table)")
	return cmd
}

// listItem is what list prints of an experiment.
type listItem struct {
	Namespace  string `json:"namespace"`
	Experiment string `json:"experiment"`
	Revision   int    `json:"revision"`
	State      string `json:"state"`
	SLOs       string `json:"slos"`
}

func printList(w io.Writer, list []store.Summary, output string) error {
	items := make([]listItem, 0, len(list))
	for _, s := range list {
		it := listItem{Namespace: s.Namespace, Experiment: s.Release, Revision: s.Revision, State: "not run", SLOs: "-"}
		switch {
		case s.Error != "":
			it.State = "unreadable: " + s.Error
		case s.Result != nil:
			it.State = report.State(s.Result)
			if len(s.Result.SLOs) > 0 {
				it.SLOs = "not satisfied"
				if s.Result.SLOsSatisfied() {
					it.SLOs = "satisfied"
				}
			}
		}
		items = append(items, it)
	}
	switch output {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(items)
	case "yaml":
		data, err := yaml.Marshal(items)
		if err != nil {
			return err
		}
		_, err = w.Write(data)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAMESPACE\tEXPERIMENT\tREVISION\tSTATE\tSLOS")
	for _, it := range items {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", it.Namespace, it.Experiment, it.Revision, it.State, it.SLOs)
	}
	return tw.Flush()
}

// releaseSuffix names a release in an error's verb ("report perf").
func releaseSuffix(release string) string {
	if release == "" {
		return ""
	}
	return " " + release
}

func newDeleteCmd(e *cmdEnv) *cobra.Command {
	o := &targetOptions{}
	a := action.NewDelete(e.cfg)
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "delete [RELEASE]",
		Short: "Delete an experiment and its result",
		Long: `Delete an experiment: locally its spec and result files (-f); in a cluster
its release (as helm uninstall) and the Jobs and Pods its runs left (a failed
run's Job stays for its log until then).`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.complete(cmd, args)
			if err := o.validate("delete"); err != nil {
				return err
			}
			if timeout < 0 {
				return fmt.Errorf("delete: --timeout must not be negative")
			}
			a.SpecPath, a.Release, a.Timeout = o.SpecPath, o.Release, timeout
			removed, err := a.Run(cmd.Context())
			for _, p := range removed {
				fmt.Fprintf(e.streams.Out, "removed %s\n", p)
			}
			if err != nil {
				return fmt.Errorf("delete%s: %w", releaseSuffix(o.Release), err)
			}
			return nil
		},
	}
	o.addFlags(cmd.Flags(), "f")
	cmd.Flags().DurationVar(&timeout, "timeout", action.DefaultTimeout, "with a release: how long the uninstall may take")
	return cmd
}

func newVersionCmd(e *cmdEnv) *cobra.Command {
	var short bool
	var output string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version of iter8",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			v := action.GetVersion()
			switch {
			case output == "json":
				enc := json.NewEncoder(e.streams.Out)
				enc.SetIndent("", "  ")
				return enc.Encode(v)
			case output != "":
				return fmt.Errorf("version: -o: unknown output format %q: want json", output)
			case short:
				fmt.Fprintln(e.streams.Out, v.Version)
			default:
				fmt.Fprintf(e.streams.Out, "version: %s\ngit commit: %s\ngo: %s\n", v.Version, v.GitCommit, v.GoVersion)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&short, "short", false, "print the version number only")
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: json")
	return cmd
}
