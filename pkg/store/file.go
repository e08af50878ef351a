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
	"time"

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

// String is the spec's path.
func (f *File) String() string { return f.SpecPath }

// SpecDir is the spec's folder: files a spec names are beside it.
func (f *File) SpecDir() string { return filepath.Dir(f.SpecPath) }

// ReadSpec reads the spec file: a regular file of at most
// experiment.MaxFileSize, so that a named pipe or a device given as the
// spec cannot hang or fill memory.
func (f *File) ReadSpec(context.Context) ([]byte, error) {
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

// ReadRevision reads the result when it is of revision (0: any): a local
// experiment keeps one result.
func (f *File) ReadRevision(ctx context.Context, revision int) (*experiment.Result, error) {
	r, err := f.ReadResult(ctx)
	if err != nil {
		return nil, err
	}
	if revision != 0 && r.Revision != revision {
		return nil, fmt.Errorf("%s keeps one result, of revision %d, not of revision %d: %w", f.ResultPath(), r.Revision, revision, ErrNoResult)
	}
	return r, nil
}

// Update reads the result (a zero Result when there is none), lets change
// modify it and writes it. One process runs a local experiment, so there is
// no concurrent writer to lose a change to.
func (f *File) Update(ctx context.Context, change func(*experiment.Result) error) error {
	r, err := f.ReadResult(ctx)
	switch {
	case errors.Is(err, ErrNoResult):
		r = &experiment.Result{}
	case err != nil:
		return err
	}
	if err := change(r); err != nil {
		return err
	}
	return f.WriteResult(ctx, r)
}

// filePollInterval is how often Watch looks at a local result.
const filePollInterval = 100 * time.Millisecond

// Watch signals when the result file's size or modification time changes,
// looking ten times a second, until ctx ends.
func (f *File) Watch(ctx context.Context) (<-chan struct{}, error) {
	changes := make(chan struct{}, 1)
	// Every write renames a new file into place: a change of file is a new
	// result even when its size and time (to the file system's precision)
	// are the old one's.
	same := func(a, b os.FileInfo) bool {
		return a == nil && b == nil || a != nil && b != nil && os.SameFile(a, b) && a.ModTime().Equal(b.ModTime()) && a.Size() == b.Size()
	}
	stat := func() os.FileInfo {
		fi, _ := os.Stat(f.ResultPath())
		return fi
	}
	last := stat()
	go func() {
		defer close(changes)
		tick := time.NewTicker(filePollInterval)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				if now := stat(); !same(last, now) {
					last = now
					signal(changes)
				}
			}
		}
	}()
	return changes, nil
}

// ReadLog reads the log lines kept with the result.
func (f *File) ReadLog(ctx context.Context, revision int) ([]string, error) {
	r, err := f.ReadRevision(ctx, revision)
	if err != nil {
		return nil, err
	}
	return r.Log, nil
}

// Delete removes the spec and its result, after checking that each is what
// it should be (an Iter8 spec, an Iter8 result); otherwise it removes
// nothing. Files that do not exist are not an error, unless neither does.
// It reports what it removed.
func (f *File) Delete(context.Context) ([]string, error) {
	spec, err := StatLocal(f.SpecPath)
	if err != nil {
		return nil, err
	}
	res, err := StatLocal(f.ResultPath())
	if err != nil {
		return nil, err
	}
	const kept = "nothing removed"
	switch {
	case spec.Dir:
		return nil, fmt.Errorf("%s is a folder, not an experiment spec: %s", f.SpecPath, kept)
	case spec.Exists && (!spec.Regular || !IsSpec(spec.Data)):
		return nil, fmt.Errorf("%s is not an Iter8 experiment spec (apiVersion %s, kind %s): %s", f.SpecPath, experiment.APIVersion, experiment.Kind, kept)
	case res.Exists && (!res.Regular || !IsResult(res.Data)):
		return nil, fmt.Errorf("%s, where the result of %s goes, is not an Iter8 result: %s", res.Path, f.SpecPath, kept)
	case !spec.Exists && !res.Exists:
		return nil, fmt.Errorf("no experiment at %s: neither it nor its result %s exists", f.SpecPath, res.Path)
	}
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
