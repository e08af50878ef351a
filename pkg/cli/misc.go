package cli

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/iter8-tools/iter8/pkg/action"
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
			a.SpecPath = o.SpecPath
			lines, err := a.Run(cmd.Context())
			if err != nil {
				return fmt.Errorf("log: %w", err)
			}
			for _, l := range lines {
				fmt.Fprintln(e.streams.Out, l)
			}
			return nil
		},
	}
	o.addFlags(cmd.Flags(), "f")
	return cmd
}

func newListCmd(e *cmdEnv) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the experiments in a cluster",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return fmt.Errorf("list: %w", action.ErrNeedsCluster)
		},
	}
}

func newDeleteCmd(e *cmdEnv) *cobra.Command {
	o := &targetOptions{}
	a := action.NewDelete(e.cfg)
	cmd := &cobra.Command{
		Use:   "delete [RELEASE]",
		Short: "Delete an experiment and its result",
		Long:  "Delete an experiment: locally its spec and result files (-f), in a cluster its release and everything its runs created.",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.complete(cmd, args)
			if err := o.validate("delete"); err != nil {
				return err
			}
			a.SpecPath = o.SpecPath
			removed, err := a.Run(cmd.Context())
			for _, p := range removed {
				fmt.Fprintf(e.streams.Out, "removed %s\n", p)
			}
			if err != nil {
				return fmt.Errorf("delete: %w", err)
			}
			return nil
		},
	}
	o.addFlags(cmd.Flags(), "f")
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
