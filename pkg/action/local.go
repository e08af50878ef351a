package action

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"sigs.k8s.io/yaml"

	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/store"
)

// SpecHeader is the first line of every spec that launch --local writes. It
// marks the file as launch's own, so that launch may replace it; a spec
// without it (written by hand, or by anything else) is replaced only with
// Force.
const SpecHeader = "# Written by iter8 launch --local, which replaces this file when run again; delete this line to keep it.\n"

// generatedByLaunch reports whether a spec file's content starts with
// SpecHeader.
func generatedByLaunch(data []byte) bool {
	return bytes.HasPrefix(data, []byte(SpecHeader))
}

// IsSpec reports whether data is an Iter8 experiment spec: YAML or JSON
// with apiVersion iter8.tools/v1 and kind Experiment. It says nothing of
// whether the spec is valid.
func IsSpec(data []byte) bool {
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := yaml.Unmarshal(data, &head); err != nil {
		return false
	}
	return head.APIVersion == experiment.APIVersion && head.Kind == experiment.Kind
}

// isResult reports whether data is an Iter8 result file: a JSON object
// with the fields that every result has (the result has no kind of its own)
// that decodes as one.
func isResult(data []byte) bool {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		return false
	}
	for _, k := range []string{"experiment", "revision", "startTime", "tasks"} {
		if _, ok := fields[k]; !ok {
			return false
		}
	}
	var r experiment.Result
	return json.Unmarshal(data, &r) == nil
}

// localFile is what is at a path: nothing, a folder, a regular file (with
// its content) or something else (a device, a socket).
type localFile struct {
	path    string
	exists  bool
	regular bool
	dir     bool
	data    []byte
}

func statLocal(path string) (localFile, error) {
	lf := localFile{path: path}
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return lf, nil
	case err != nil:
		return lf, err
	}
	lf.exists, lf.dir, lf.regular = true, fi.IsDir(), fi.Mode().IsRegular()
	// A file larger than any spec or result is neither: no need to read it.
	if lf.regular && fi.Size() <= experiment.MaxFileSize {
		if lf.data, err = os.ReadFile(path); err != nil {
			return lf, err
		}
	}
	return lf, nil
}

// deleteLocal removes an experiment's spec and result, after checking that
// each is what it should be; otherwise it removes nothing.
func deleteLocal(specPath string) ([]string, error) {
	f := &store.File{SpecPath: specPath}
	spec, err := statLocal(specPath)
	if err != nil {
		return nil, err
	}
	res, err := statLocal(f.ResultPath())
	if err != nil {
		return nil, err
	}
	const kept = "nothing removed"
	switch {
	case spec.dir:
		return nil, fmt.Errorf("%s is a folder, not an experiment spec: %s", specPath, kept)
	case spec.exists && (!spec.regular || !IsSpec(spec.data)):
		return nil, fmt.Errorf("%s is not an Iter8 experiment spec (apiVersion %s, kind %s): %s", specPath, experiment.APIVersion, experiment.Kind, kept)
	case res.exists && (!res.regular || !isResult(res.data)):
		return nil, fmt.Errorf("%s, where the result of %s goes, is not an Iter8 result: %s", res.path, specPath, kept)
	case !spec.exists && !res.exists:
		return nil, fmt.Errorf("no experiment at %s: neither it nor its result %s exists", specPath, res.path)
	}
	return f.Delete()
}

// checkReplace refuses, unless force, to replace a spec that launch did not
// write or a file where its result goes that is not an Iter8 result; it
// never replaces a folder.
func checkReplace(f *store.File, force bool) error {
	spec, err := statLocal(f.SpecPath)
	if err != nil {
		return err
	}
	res, err := statLocal(f.ResultPath())
	if err != nil {
		return err
	}
	switch {
	case spec.dir:
		return fmt.Errorf("spec %s is a folder: want a file path", f.SpecPath)
	case res.dir:
		return fmt.Errorf("%s, where the result of spec %s goes, is a folder", res.path, f.SpecPath)
	case force:
		return nil
	case spec.exists && !(spec.regular && generatedByLaunch(spec.data)):
		return fmt.Errorf("spec %s exists and launch did not write it (it lacks launch's header line): nothing written; --force replaces it", f.SpecPath)
	case res.exists && !(res.regular && isResult(res.data)):
		return fmt.Errorf("%s, where the result of spec %s goes, exists and is not an Iter8 result: nothing written; --force replaces it", res.path, f.SpecPath)
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
