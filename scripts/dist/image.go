package main

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// What the image holds and how it runs. The chart's Job runs
// `command: [iter8, run, ...]`, so iter8 must be found through PATH; its pod
// runs as non-root, so the image names a non-root user of its own.
const (
	// BinaryPath is the plugin binary's path in the image.
	BinaryPath = "/usr/local/bin/iter8"
	// NonRootID is the uid and gid of the image's user `nonroot`.
	NonRootID = 65532
	// PathEnv is the image's PATH.
	PathEnv = "PATH=/usr/local/bin:/usr/bin:/bin"
	// SourceURL is the image's org.opencontainers.image.source label.
	SourceURL = "https://github.com/iter8-tools/iter8"
	// RefNameAnnotation names the image in the layout's index.json.
	RefNameAnnotation = "org.opencontainers.image.ref.name"
)

const (
	etcPasswd = "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
	etcGroup  = "root:x:0:\nnonroot:x:65532:\n"
)

// ImageResult names the image that Image wrote.
type ImageResult struct {
	// Ref is <repository>:<appVersion>.
	Ref string
	// Digest is the image index's digest.
	Digest v1.Hash
}

// Image builds the plugin for each image platform and writes one OCI image
// index of single-layer images to cfg.Out as an OCI image layout.
func Image(ctx context.Context, cfg Config) (ImageResult, error) {
	rel, err := readRelease(cfg.Root, cfg.Chart)
	if err != nil {
		return ImageResult{}, err
	}
	platforms, err := parsePlatforms(cfg.Platforms, ImagePlatforms)
	if err != nil {
		return ImageResult{}, err
	}
	for _, p := range platforms {
		if p.OS != "linux" {
			return ImageResult{}, fmt.Errorf("image: platform %s: want linux/<arch>", p)
		}
	}
	// Refuse a wrong -out before the slow part.
	if err := checkLayoutDir(cfg.Out); err != nil {
		return ImageResult{}, err
	}
	work, err := os.MkdirTemp("", "iter8-image-")
	if err != nil {
		return ImageResult{}, fmt.Errorf("image: %w", err)
	}
	defer os.RemoveAll(work)

	labels := map[string]string{
		"org.opencontainers.image.source":   SourceURL,
		"org.opencontainers.image.version":  rel.Version,
		"org.opencontainers.image.licenses": "Apache-2.0",
		"org.opencontainers.image.title":    "iter8",
	}
	if cfg.Commit != "" {
		labels["org.opencontainers.image.revision"] = cfg.Commit
	}

	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, p := range platforms {
		dir := filepath.Join(work, p.OS+"_"+p.Arch)
		bin := filepath.Join(dir, "iter8")
		if err := goBuild(ctx, cfg, rel, p, mainPackage, bin); err != nil {
			return ImageResult{}, err
		}
		layerFile := filepath.Join(dir, "layer.tar.gz")
		if err := writeLayer(layerFile, bin, cfg.Time); err != nil {
			return ImageResult{}, fmt.Errorf("image layer for %s: %w", p, err)
		}
		img, err := platformImage(layerFile, p, labels, cfg.Time)
		if err != nil {
			return ImageResult{}, fmt.Errorf("image for %s: %w", p, err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: p.OS, Architecture: p.Arch}},
		})
	}
	idx, ok := mutate.Annotations(idx, labels).(v1.ImageIndex)
	if !ok {
		return ImageResult{}, fmt.Errorf("image: annotating the index did not give an index")
	}
	digest, err := idx.Digest()
	if err != nil {
		return ImageResult{}, fmt.Errorf("image index: %w", err)
	}

	// The layout is written beside cfg.Out and then put in its place, so a
	// failed run leaves the earlier layout whole (and no blobs of it behind).
	ref := cfg.Repository + ":" + rel.AppVersion
	parent := filepath.Dir(filepath.Clean(cfg.Out))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return ImageResult{}, fmt.Errorf("image: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, ".tmp-image-")
	if err != nil {
		return ImageResult{}, fmt.Errorf("image: %w", err)
	}
	defer os.RemoveAll(tmp) // after the rename, a no-op
	lp, err := layout.Write(tmp, empty.Index)
	if err != nil {
		return ImageResult{}, fmt.Errorf("image: write layout %s: %w", tmp, err)
	}
	if err := lp.AppendIndex(idx, layout.WithAnnotations(map[string]string{RefNameAnnotation: ref})); err != nil {
		return ImageResult{}, fmt.Errorf("image: write layout %s: %w", tmp, err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return ImageResult{}, fmt.Errorf("image: %w", err)
	}
	if err := checkLayoutDir(cfg.Out); err != nil {
		return ImageResult{}, err
	}
	if err := os.RemoveAll(cfg.Out); err != nil {
		return ImageResult{}, fmt.Errorf("image: remove the earlier layout: %w", err)
	}
	if err := os.Rename(tmp, cfg.Out); err != nil {
		return ImageResult{}, fmt.Errorf("image: %w", err)
	}
	return ImageResult{Ref: ref, Digest: digest}, nil
}

// checkLayoutDir reports whether dir may be replaced by a new layout: it may
// be missing, empty or an earlier OCI layout, but nothing else, so that a
// mistyped -out never removes a directory of sources.
func checkLayoutDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("image: %w", err)
	}
	if len(entries) == 0 {
		return nil
	}
	if _, err := os.Stat(filepath.Join(dir, "oci-layout")); err != nil {
		return fmt.Errorf("image: %s is neither empty nor an OCI image layout: will not replace it", dir)
	}
	return nil
}

// writeLayer writes the image's only layer, a gzipped tar: the directories,
// /etc/passwd and /etc/group with the non-root user, and the binary, all
// owned by root (but the user's home) and stamped with mtime.
func writeLayer(path, bin string, mtime time.Time) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	zw := gzip.NewWriter(f)
	tw := tar.NewWriter(zw)
	dir := func(name string, mode int64, id int) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode, Uid: id, Gid: id, ModTime: mtime, Format: tar.FormatUSTAR})
	}
	file := func(name, content string) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(content)), ModTime: mtime, Format: tar.FormatUSTAR}); err != nil {
			return err
		}
		_, err := tw.Write([]byte(content))
		return err
	}
	steps := []func() error{
		func() error { return dir("etc/", 0o755, 0) },
		func() error { return file("etc/group", etcGroup) },
		func() error { return file("etc/passwd", etcPasswd) },
		func() error { return dir("home/", 0o755, 0) },
		func() error { return dir("home/nonroot/", 0o700, NonRootID) },
		func() error { return dir("tmp/", 0o1777, 0) },
		func() error { return dir("usr/", 0o755, 0) },
		func() error { return dir("usr/local/", 0o755, 0) },
		func() error { return dir("usr/local/bin/", 0o755, 0) },
		func() error { return tarFile(tw, BinaryPath[1:], bin, 0o755, mtime) },
		tw.Close,
		zw.Close,
		f.Close,
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	return nil
}

// platformImage is an OCI image for p on an empty base with the one layer.
func platformImage(layerFile string, p Platform, labels map[string]string, created time.Time) (v1.Image, error) {
	// The file is gzipped already, so the layer is used as it is, not recompressed.
	layer, err := tarball.LayerFromFile(layerFile, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{
		Layer:     layer,
		MediaType: types.OCILayer,
		History: v1.History{
			Created:   v1.Time{Time: created},
			CreatedBy: "go run ./scripts/dist image",
			Comment:   "iter8 " + labels["org.opencontainers.image.version"] + " for " + p.String(),
		},
	})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS = p.OS
	cf.Architecture = p.Arch
	cf.Created = v1.Time{Time: created}
	cf.Config = v1.Config{
		User:       fmt.Sprintf("%d:%d", NonRootID, NonRootID),
		Entrypoint: []string{BinaryPath},
		Env:        []string{PathEnv},
		WorkingDir: "/",
		Labels:     labels,
	}
	return mutate.ConfigFile(img, cf)
}
