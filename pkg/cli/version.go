package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/iter8-tools/iter8/pkg/action"
)

func newVersionCmd(e *cmdEnv) *cobra.Command {
	var short bool
	var output string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version of iter8",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if err := checkOutput("version", output, "json"); err != nil {
				return err
			}
			v := action.GetVersion()
			return printData(e.streams.Out, output, v, func(w io.Writer) error {
				if short {
					_, err := fmt.Fprintln(w, v.Version)
					return err
				}
				_, err := fmt.Fprintf(w, "version: %s\ngit commit: %s\ngo: %s\n", v.Version, v.GitCommit, v.GoVersion)
				return err
			})
		},
	}
	cmd.Flags().BoolVar(&short, "short", false, "print the version number only")
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: json")
	return cmd
}
