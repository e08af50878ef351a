package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/iter8-tools/iter8/pkg/experiment"
)

// DefaultSpecFile is the spec that local commands use when given none.
const DefaultSpecFile = "experiment.yaml"

// ErrNoResult is wrapped by errors for a result that does not exist (yet).
var ErrNoResult = errors.New("no result")

// File keeps a local experiment: its spec, and its result beside it.
type File struct {
	// SpecPath is the spec file; the result is ResultPath(SpecPath).
	SpecPath string
}

// ResultPath is where the result of the spec at specPath is kept:
// experiment.yaml → experiment.result.json.
func ResultPath(specPath string) string {
	ext := filepath.Ext(specPath)
	return strings.TrimSuffix(specPath, ext) + ".result.json"
}

// ResultPath is the result file of this experiment.
func (f *File) ResultPath() string { return ResultPath(f.SpecPath) }

// ReadSpec reads the spec file: a regular file of at most
// experiment.MaxFileSize, so that a named pipe or a device given as the
// spec cannot hang or fill memory.
func (f *File) ReadSpec() ([]byte, error) {
	data, err := experiment.ReadRegularFile(f.SpecPath, experiment.MaxFileSize)
	if err != nil {
		return nil, fmt.Errorf("read experiment spec: %w", err)
	}
	return data, nil
}

// WriteSpec writes the spec file atomically.
func (f *File) WriteSpec(data []byte) error {
	if err := writeAtomic(f.SpecPath, data); err != nil {
		return fmt.Errorf("write experiment spec: %w", err)
	}
	return nil
}

// WriteResult writes the result atomically: a reader sees the previous
// result or this one, never a torn file.
func (f *File) WriteResult(_ context.Context, r *experiment.Result) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode result: %w", err)
	}
	return writeAtomic(f.ResultPath(), append(data, '\n'))
}

// ReadResult reads the result; the error wraps ErrNoResult when there is none.
func (f *File) ReadResult(_ context.Context) (*experiment.Result, error) {
	path := f.ResultPath()
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w at %s", ErrNoResult, path)
	}
	if err != nil {
		return nil, fmt.Errorf("read result: %w", err)
	}
	// json.Unmarshal takes null (and an empty object) for an empty result;
	// a report of nothing would pass for an experiment that ran.
	if t := bytes.TrimSpace(data); len(t) == 0 || t[0] != '{' {
		return nil, fmt.Errorf("read result %s: not a valid result file: want a JSON object", path)
	}
	var r experiment.Result
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("read result %s: not a valid result file: %w", path, err)
	}
	if r.Experiment == "" {
		return nil, fmt.Errorf("read result %s: not a valid result file: it names no experiment", path)
	}
	return &r, nil
}

// Delete removes the spec and its result; files that do not exist are not an
// error. It reports what it removed.
func (f *File) Delete() ([]string, error) {
	var removed []string
	for _, p := range []string{f.ResultPath(), f.SpecPath} {
		err := os.Remove(p)
		switch {
		case err == nil:
			removed = append(removed, p)
		case errors.Is(err, fs.ErrNotExist):
		default:
			return removed, fmt.Errorf("delete %s: %w", p, err)
		}
	}
	return removed, nil
}

func writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
