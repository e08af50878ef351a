package store

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"

	"sigs.k8s.io/yaml"

	"github.com/iter8-tools/iter8/pkg/experiment"
)

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

// IsResult reports whether data is an Iter8 result file: a JSON object
// with the fields that every result has (the result has no kind of its own)
// that decodes as one.
func IsResult(data []byte) bool {
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

// LocalFile is what is at a path: nothing, a folder, a regular file (with
// its content) or something else (a device, a socket).
type LocalFile struct {
	Path    string
	Exists  bool
	Regular bool
	Dir     bool
	Data    []byte
}

// StatLocal looks at path; a regular file's content is read when it is no
// larger than any spec or result can be.
func StatLocal(path string) (LocalFile, error) {
	lf := LocalFile{Path: path}
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return lf, nil
	case err != nil:
		return lf, err
	}
	lf.Exists, lf.Dir, lf.Regular = true, fi.IsDir(), fi.Mode().IsRegular()
	if lf.Regular && fi.Size() <= experiment.MaxFileSize {
		if lf.Data, err = os.ReadFile(path); err != nil {
			return lf, err
		}
	}
	return lf, nil
}
