package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/iter8-tools/iter8/pkg/action"
)

type versionOptions struct {
	short  bool
	output string
	out    io.Writer
}

func newVersionCmd(e *cmdEnv) *cobra.Command {
	o := &versionOptions{out: e.streams.Out}
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version of iter8",
		Args:  cobra.NoArgs,
		RunE:  runE(o),
	}
	cmd.Flags().BoolVar(&o.short, "short", false, "print the version number only")
	cmd.Flags().StringVarP(&o.output, "output", "o", "", "output format: json")
	return cmd
}

// Complete has nothing to read: version takes no arguments.
func (o *versionOptions) Complete(*cobra.Command, []string) error { return nil }

// Validate checks the output format.
func (o *versionOptions) Validate() error { return checkOutput("version", o.output, "json") }

// Run prints the version.
func (o *versionOptions) Run(context.Context) error {
	v := action.GetVersion()
	return printData(o.out, o.output, v, func(w io.Writer) error {
		if o.short {
			_, err := fmt.Fprintln(w, v.Version)
			return err
		}
		_, err := fmt.Fprintf(w, "version: %s\ngit commit: %s\ngo: %s\n", v.Version, v.GitCommit, v.GoVersion)
		return err
	})
}
