package main

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"text/template"
	"time"
)

// Archive is one release archive: kubectl's plugin (for krew) or helm's.
type Archive struct {
	Platform Platform
	// Helm marks the helm plugin's archive.
	Helm bool
	// Name is the file name, also the last element of its download URL.
	Name string
	// Bin is the plugin's file name inside the archive.
	Bin string
	// SHA256 is the archive's sha256, lowercase hex.
	SHA256 string
	// Prov is the name of its provenance file (helm's, when signed).
	Prov string
}

// SumsFile lists the sha256 of every archive, as sha256sum writes them
// (sha256sum -c checks them).
const SumsFile = "sha256sums.txt"

// ReleaseURL is where GitHub serves a release's files.
const ReleaseURL = "https://github.com/iter8-tools/iter8/releases/download"

// archiveName is the file name of the archive for p.
func archiveName(rel Release, p Platform) string {
	ext := ".tar.gz"
	if p.OS == "windows" {
		ext = ".zip"
	}
	return fmt.Sprintf("kubectl-iter8_%s_%s_%s%s", rel.Version, p.OS, p.Arch, ext)
}

// Archives builds the plugins for each platform, one after another (a cold
// cross-build takes all the cores there are), packs kubectl's with LICENSE
// and helm's with plugin.yaml, its install hook and LICENSE (signed when
// cfg says so), and writes SumsFile and the krew manifest.
func Archives(ctx context.Context, cfg Config) ([]Archive, error) {
	rel, err := readRelease(cfg.Root, cfg.Chart)
	if err != nil {
		return nil, err
	}
	if err := checkPluginVersion(cfg.Root, rel); err != nil {
		return nil, err
	}
	var signer *Signer
	if cfg.SignKeyring != "" || cfg.SignKey != "" {
		if cfg.SignKeyring == "" || cfg.SignKey == "" {
			return nil, errors.New("-sign-keyring and -sign-key go together")
		}
		if signer, err = NewSigner(cfg.SignKeyring, cfg.SignKey); err != nil {
			return nil, err
		}
	}
	pluginYAML, err := os.ReadFile(filepath.Join(cfg.Root, "plugin.yaml"))
	if err != nil {
		return nil, err
	}
	platforms, err := parsePlatforms(cfg.Platforms, ReleasePlatforms)
	if err != nil {
		return nil, err
	}
	license, err := os.ReadFile(filepath.Join(cfg.Root, "LICENSE"))
	if err != nil {
		return nil, fmt.Errorf("archives: the archives must hold the license: %w", err)
	}
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return nil, fmt.Errorf("archives: %w", err)
	}
	work, err := os.MkdirTemp("", "iter8-dist-")
	if err != nil {
		return nil, fmt.Errorf("archives: %w", err)
	}
	defer os.RemoveAll(work)

	var archives, krew []Archive
	for _, p := range platforms {
		bin := filepath.Join(work, p.OS+"_"+p.Arch, binaryName(p))
		if err := goBuild(ctx, cfg, rel, p, mainPackage, bin); err != nil {
			return nil, err
		}
		a := Archive{Platform: p, Name: archiveName(rel, p), Bin: binaryName(p)}
		a.SHA256, err = writeArchive(filepath.Join(cfg.Out, a.Name), p, bin, license, cfg.Time)
		if err != nil {
			return nil, fmt.Errorf("archive for %s: %w", p, err)
		}
		// The binary is large; the next build needs the space more.
		if err := os.Remove(bin); err != nil {
			return nil, fmt.Errorf("archive for %s: %w", p, err)
		}
		archives, krew = append(archives, a), append(krew, a)

		hbin := filepath.Join(work, p.OS+"_"+p.Arch, helmBinaryName(p))
		if err := goBuild(ctx, cfg, rel, p, helmMainPackage, hbin); err != nil {
			return nil, err
		}
		h := Archive{Platform: p, Helm: true, Name: helmArchiveName(rel, p), Bin: "bin/" + helmBinaryName(p)}
		path := filepath.Join(cfg.Out, h.Name)
		if h.SHA256, err = writeHelmArchive(path, cfg.Root, p, hbin, cfg.Time); err != nil {
			return nil, fmt.Errorf("helm plugin archive for %s: %w", p, err)
		}
		if err := os.Remove(hbin); err != nil {
			return nil, err
		}
		if signer == nil {
			// A signature of an earlier build would not match this archive.
			if err := os.Remove(path + ".prov"); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, err
			}
		} else {
			data, err := os.ReadFile(path)
			if err != nil {
				return nil, err
			}
			prov, err := signer.Sign(data, h.Name, pluginYAML)
			if err != nil {
				return nil, err
			}
			h.Prov = h.Name + ".prov"
			if err := writeFileAtomic(filepath.Join(cfg.Out, h.Prov), prov); err != nil {
				return nil, err
			}
		}
		archives = append(archives, h)
	}
	var sums bytes.Buffer
	for _, a := range archives {
		fmt.Fprintf(&sums, "%s  %s\n", a.SHA256, a.Name)
	}
	if err := writeFileAtomic(filepath.Join(cfg.Out, SumsFile), sums.Bytes()); err != nil {
		return nil, err
	}
	if cfg.Manifest != "" {
		if err := writeManifest(cfg.Manifest, rel, krew); err != nil {
			return nil, err
		}
	}
	return archives, nil
}

// writeArchive packs bin and LICENSE into path (a zip on windows, a
// gzipped tar elsewhere) with fixed times and owners, and returns its sha256.
// It writes beside path and renames, so a failed run leaves no half archive.
func writeArchive(path string, p Platform, bin string, license []byte, mtime time.Time) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-")
	if err != nil {
		return "", err
	}
	defer os.Remove(f.Name()) // after the rename, a no-op
	defer f.Close()

	h := sha256.New()
	w := io.MultiWriter(f, h)
	if p.OS == "windows" {
		err = writeZip(w, bin, license, mtime)
	} else {
		err = writeTarGz(w, bin, license, mtime)
	}
	if err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Chmod(0o644); err != nil {
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func writeTarGz(w io.Writer, bin string, license []byte, mtime time.Time) error {
	// A zero gzip header: no name, time 0, so the bytes depend only on the content.
	zw := gzip.NewWriter(w)
	tw := tar.NewWriter(zw)
	if err := tarFile(tw, filepath.Base(bin), bin, 0o755, mtime); err != nil {
		return err
	}
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: "LICENSE", Mode: 0o644, Size: int64(len(license)), ModTime: mtime, Format: tar.FormatUSTAR}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if _, err := tw.Write(license); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}

// tarFile adds the file at src as name, owned by root.
func tarFile(tw *tar.Writer, name, src string, mode int64, mtime time.Time) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: st.Size(), ModTime: mtime, Format: tar.FormatUSTAR}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if _, err := io.Copy(tw, f); err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	return nil
}

// zipEpoch is the earliest time a zip (MS-DOS) timestamp can hold.
var zipEpoch = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)

func writeZip(w io.Writer, bin string, license []byte, mtime time.Time) error {
	if mtime.Before(zipEpoch) {
		mtime = zipEpoch
	}
	zw := zip.NewWriter(w)
	add := func(name string, mode os.FileMode, r io.Reader) error {
		hdr := &zip.FileHeader{Name: name, Method: zip.Deflate, Modified: mtime}
		hdr.SetMode(mode)
		fw, err := zw.CreateHeader(hdr)
		if err != nil {
			return err
		}
		_, err = io.Copy(fw, r)
		return err
	}
	f, err := os.Open(bin)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := add(filepath.Base(bin), 0o755, f); err != nil {
		return fmt.Errorf("%s: %w", bin, err)
	}
	if err := add("LICENSE", 0o644, bytes.NewReader(license)); err != nil {
		return err
	}
	return zw.Close()
}

// manifestTemplate is krew's v1alpha2 Plugin manifest. The archives hold
// only the binary and LICENSE at their top, so the default `files` (all of
// it, to the plugin's directory) is what krew should do, and is left out.
var manifestTemplate = template.Must(template.New("krew").Option("missingkey=error").Parse(
	`# Generated by ` + "`make dist`" + ` (go run ./scripts/dist archives): do not edit by hand.
# krew's plugin manifest for kubectl-iter8; submit it to krew-index when releasing {{.Version}}.
apiVersion: krew.googlecontainertools.github.com/v1alpha2
kind: Plugin
metadata:
  name: iter8
spec:
  version: {{.Version}}
  homepage: https://github.com/iter8-tools/iter8
  shortDescription: Load-test and validate versions of apps with SLOs
  description: |
    Iter8 runs experiments on Kubernetes apps: it waits until the versions
    under test are ready, sends HTTP or gRPC load with latency and error
    metrics, and checks SLOs per version and rewards that pick a winner.
    Run an experiment locally or as a Helm release in the cluster, then
    read its report (text, HTML, JSON, YAML) and assert on it in CI.
  platforms:
{{- range .Archives}}
  - selector:
      matchLabels:
        os: {{.Platform.OS}}
        arch: {{.Platform.Arch}}
    uri: "{{$.URL}}/{{.Name}}"
    sha256: "{{.SHA256}}"
    bin: {{.Bin}}
{{- end}}
`))

// writeManifest writes the krew manifest for archives to path.
func writeManifest(path string, rel Release, archives []Archive) error {
	var buf bytes.Buffer
	err := manifestTemplate.Execute(&buf, map[string]any{
		"Version":  rel.Version,
		"URL":      ReleaseURL + "/" + rel.Version,
		"Archives": archives,
	})
	if err != nil {
		return fmt.Errorf("krew manifest: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("krew manifest: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("krew manifest: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("krew manifest: %w", err)
	}
	return nil
}
