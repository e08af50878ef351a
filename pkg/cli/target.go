package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/iter8-tools/iter8/pkg/action"
	"github.com/iter8-tools/iter8/pkg/store"
)

// targetOptions choose the experiment a command acts on: a release in the
// cluster (the positional argument) or a local spec (-f). Commands embed
// them, and with them Complete and Validate.
type targetOptions struct {
	// command names the command in errors; cfg connects to the cluster.
	command  string
	cfg      *action.Configuration
	Release  string
	SpecPath string
	// Revision picks a release's result by revision; 0 is the newest.
	Revision int
	// specSet records that -f was given, so that a default spec that does
	// not exist can be told apart from a named one.
	specSet bool
}

func (o *targetOptions) addFlags(fs *pflag.FlagSet, short string) {
	fs.StringVarP(&o.SpecPath, "file", short, store.DefaultSpecFile,
		"local experiment spec; its result is the file beside it with the extension .result.json")
}

// addRevisionFlag adds --revision, for commands that read one result.
func (o *targetOptions) addRevisionFlag(fs *pflag.FlagSet) {
	fs.IntVar(&o.Revision, "revision", 0, "with a release: the result of this revision (default: the newest)")
}

// Complete reads the positional release and whether -f was given.
func (o *targetOptions) Complete(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		o.Release = args[0]
	}
	o.specSet = cmd.Flags().Changed("file")
	return nil
}

// Validate refuses a release together with -f, and explains what a command
// given neither expected.
func (o *targetOptions) Validate() error {
	verb := o.command
	switch {
	case o.Revision < 0:
		return fmt.Errorf("%s: --revision must be at least 1, got %d", verb, o.Revision)
	case o.Revision > 0 && o.Release == "":
		return fmt.Errorf("%s: --revision needs a release name; a local experiment keeps one result", verb)
	case looksLikeFile(o.Release):
		return fmt.Errorf("%s: %s looks like a file: use -f %s (a name without -f is a release in the cluster)", verb, o.Release, o.Release)
	case o.Release != "" && o.specSet:
		return fmt.Errorf("%s: give a release name or -f SPEC, not both", verb)
	case o.Release != "":
		return nil
	case !o.specSet && !exists(o.SpecPath) && !exists(store.ResultPath(o.SpecPath)):
		return fmt.Errorf("%s: expected a release name, or -f SPEC for a local experiment; there is no %s here (launch one with `launch --local`)", verb, o.SpecPath)
	}
	return nil
}

// experiment is where the chosen experiment lives; this is the one place
// that decides between a local file and a release in the cluster. revision
// is the revision a run writes (0 for commands that only read).
func (o *targetOptions) experiment(revision int) (store.Experiment, error) {
	if o.Release == "" {
		return &store.File{SpecPath: o.SpecPath}, nil
	}
	exp, err := o.cfg.ClusterExperiment(o.Release, revision)
	return exp, o.wrap(err)
}

// wrap names the command and, for a release, the release in an error
// ("report perf: ...").
func (o *targetOptions) wrap(err error) error {
	switch {
	case err == nil:
		return nil
	case o.Release == "":
		return fmt.Errorf("%s: %w", o.command, err)
	}
	return fmt.Errorf("%s %s: %w", o.command, o.Release, err)
}

// looksLikeFile reports whether a command's release argument is a file
// instead: a name ending in .yaml, .yml or .json, or holding a path
// separator, neither of which a release name can. (Whether a file of that
// name exists is no test: a folder often holds a binary named like the app.)
func looksLikeFile(arg string) bool {
	switch strings.ToLower(filepath.Ext(arg)) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return strings.ContainsRune(arg, '/') || strings.ContainsRune(arg, filepath.Separator)
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return !errors.Is(err, fs.ErrNotExist)
}
