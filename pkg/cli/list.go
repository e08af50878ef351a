package cli

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/iter8-tools/iter8/pkg/action"
	"github.com/iter8-tools/iter8/pkg/store"
)

type listOptions struct {
	output string
	list   *action.List
	out    io.Writer
}

func newListCmd(e *cmdEnv) *cobra.Command {
	o := &listOptions{list: action.NewList(e.cfg), out: e.streams.Out}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the experiments in a cluster",
		Long:  "List the experiments in the namespace (-n, or the context's), or in all namespaces (-A), with their newest revision, state and SLO verdict.",
		Args:  cobra.NoArgs,
		RunE:  runE(o),
	}
	cmd.Flags().BoolVarP(&o.list.AllNamespaces, "all-namespaces", "A", false, "list experiments in all namespaces")
	cmd.Flags().StringVarP(&o.output, "output", "o", "", "output format: json or yaml (default: a table)")
	return cmd
}

// Complete has nothing to read: list takes no arguments.
func (o *listOptions) Complete(*cobra.Command, []string) error { return nil }

// Validate checks the output format.
func (o *listOptions) Validate() error {
	if err := checkOutput("list", o.output, "json", "yaml"); err != nil {
		return fmt.Errorf("%w (default: a table)", err)
	}
	return nil
}

// Run lists the experiments and prints them.
func (o *listOptions) Run(ctx context.Context) error {
	list, err := o.list.Run(ctx)
	if err != nil {
		return fmt.Errorf("list: %w", err)
	}
	items := listItems(list)
	return printData(o.out, o.output, items, func(w io.Writer) error {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAMESPACE\tEXPERIMENT\tREVISION\tSTATE\tSLOS")
		for _, it := range items {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", it.Namespace, it.Experiment, it.Revision, it.State, it.SLOs)
		}
		return tw.Flush()
	})
}

// listItem is what list prints of an experiment.
type listItem struct {
	Namespace  string `json:"namespace"`
	Experiment string `json:"experiment"`
	Revision   int    `json:"revision"`
	State      string `json:"state"`
	SLOs       string `json:"slos"`
}

func listItems(list []store.Summary) []listItem {
	items := make([]listItem, 0, len(list))
	for _, s := range list {
		it := listItem{Namespace: s.Namespace, Experiment: s.Release, Revision: s.Revision, State: "not run", SLOs: "-"}
		switch {
		case s.Error != "":
			it.State = "unreadable: " + s.Error
		case s.Result != nil:
			it.State = string(s.Result.State())
			if len(s.Result.SLOs) > 0 {
				it.SLOs = "not satisfied"
				if s.Result.SLOsSatisfied() {
					it.SLOs = "satisfied"
				}
			}
		}
		items = append(items, it)
	}
	return items
}
