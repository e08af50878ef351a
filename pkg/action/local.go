package action

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/iter8-tools/iter8/pkg/store"
)

// SpecHeader is the first line of every spec that launch --local writes,
// and rolloutSpecHeader of those release rollout writes. They mark the
// file as Iter8's own, so that Iter8 may replace it; a spec without such a
// line (written by hand, or by anything else) is replaced only with Force.
const (
	SpecHeader        = generatedPrefix + "launch --local, which replaces this file when run again; delete this line to keep it.\n"
	rolloutSpecHeader = generatedPrefix + "release rollout, which replaces this file when run again; delete this line to keep it.\n"
	generatedPrefix   = "# Written by iter8 "
)

// generatedByIter8 reports whether a spec file's content starts with one
// of the headers.
func generatedByIter8(data []byte) bool {
	return bytes.HasPrefix(data, []byte(generatedPrefix))
}

// checkReplace refuses, unless force, to replace a spec that Iter8 did not
// write (cmd names the command that would) or a file where its result
// goes that is not an Iter8 result; it never replaces a folder.
func checkReplace(f *store.File, force bool, cmd string) error {
	spec, err := store.StatLocal(f.SpecPath)
	if err != nil {
		return err
	}
	res, err := store.StatLocal(f.ResultPath())
	if err != nil {
		return err
	}
	switch {
	case spec.Dir:
		return fmt.Errorf("spec %s is a folder: want a file path", f.SpecPath)
	case res.Dir:
		return fmt.Errorf("%s, where the result of spec %s goes, is a folder", res.Path, f.SpecPath)
	case force:
		return nil
	case spec.Exists && !(spec.Regular && generatedByIter8(spec.Data)):
		return fmt.Errorf("spec %s exists and %s did not write it (it lacks the header line %s writes): nothing written; --force replaces it", f.SpecPath, cmd, cmd)
	case res.Exists && !(res.Regular && store.IsResult(res.Data)):
		return fmt.Errorf("%s, where the result of spec %s goes, exists and is not an Iter8 result: nothing written; --force replaces it", res.Path, f.SpecPath)
	}
	return nil
}

// writeSpecDroppingResult writes a new spec and removes the result of the
// old one, so that no command reads the old result as the new spec's. The
// old result is set aside first and put back if the spec cannot be written:
// either both change or neither does. It returns the removed result's path,
// or "" when there was none.
func writeSpecDroppingResult(f *store.File, spec []byte) (string, error) {
	resultPath := f.ResultPath()
	aside := filepath.Join(filepath.Dir(resultPath), "."+filepath.Base(resultPath)+".replaced")
	err := os.Rename(resultPath, aside)
	hadResult := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("set aside the old result %s: %w", resultPath, err)
	}
	if err := f.WriteSpec(spec); err != nil {
		if hadResult {
			if rerr := os.Rename(aside, resultPath); rerr != nil {
				return "", fmt.Errorf("%w; and put back the old result: %w (it is at %s)", err, rerr, aside)
			}
		}
		return "", err
	}
	if !hadResult {
		return "", nil
	}
	if err := os.Remove(aside); err != nil {
		return "", fmt.Errorf("remove the old result, set aside at %s: %w", aside, err)
	}
	return resultPath, nil
}
