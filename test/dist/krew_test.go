package dist

// The rules a krew plugin manifest must follow, from krew's documentation
// (developer guide: "Writing Krew plugin manifests", "Plugin Naming Guide",
// "Submitting plugins to Krew") and what krew itself validates before it
// installs a plugin. checkManifest checks each; the number is in its error.
//
//  1. apiVersion is krew.googlecontainertools.github.com/v1alpha2, kind is Plugin.
//  2. metadata.name is the manifest's file name without .yaml; it matches
//     ^[\w-]+$ and is no Windows reserved name (CON, NUL, COM1, ...).
//  3. Naming guide: the name is lowercase kebab-case and does not start with
//     kube- or kubernetes-.
//  4. spec.version is a semantic version with the required "v" prefix
//     (vMAJOR.MINOR.PATCH[-pre][+build]); ours is also v<chart appVersion>.
//  5. spec.shortDescription is set, has no line break, and is "a few words"
//     to fit `kubectl krew search`: our bound is 50 characters.
//  6. spec.description is set (required); spec.homepage, if set, is an
//     https URL (ours must be the project's).
//  7. spec.platforms is not empty. Each platform has a selector that is set
//     and not empty, uses only the keys os and arch, and whose matchLabels or
//     matchExpressions, when present, are not empty; values are Go's
//     GOOS/GOARCH names.
//  8. Each platform has uri and sha256; sha256 matches ^[a-f0-9]{64}$; the
//     archive is a .zip or .tar.gz (krew also takes a bare binary; we do
//     not ship one). Ours: https, under the release's download URL, file
//     name kubectl-iter8_<version>_<os>_<arch>.<ext>.
//  9. Each platform has bin; on Windows only .exe entry points work.
//  10. files, if present, is not empty and each entry has from and to.
//  11. Ours: the selectors cover linux/amd64, linux/arm64, darwin/amd64,
//     darwin/arm64 and windows/amd64, each matched by exactly one platform
//     (krew takes the first match, so overlaps would hide an entry).
//  12. With the archives at hand: each archive's sha256 is the manifest's,
//     bin is in it (after `files`, if any) and executable, and so is the
//     LICENSE (submission checklist: the license ships in the archive and
//     is extracted on install).

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// manifest is krew's v1alpha2 Plugin, decoded strictly so that a misspelt
// field fails instead of vanishing.
type manifest struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		Version          string     `json:"version"`
		Homepage         string     `json:"homepage,omitempty"`
		ShortDescription string     `json:"shortDescription"`
		Description      string     `json:"description"`
		Caveats          string     `json:"caveats,omitempty"`
		Platforms        []platform `json:"platforms"`
	} `json:"spec"`
}

type platform struct {
	Selector *selector `json:"selector"`
	URI      string    `json:"uri"`
	SHA256   string    `json:"sha256"`
	Bin      string    `json:"bin"`
	Files    []fileOp  `json:"files,omitempty"`
	License  string    `json:"license,omitempty"`
}

type selector struct {
	MatchLabels      map[string]string `json:"matchLabels,omitempty"`
	MatchExpressions []requirement     `json:"matchExpressions,omitempty"`
}

type requirement struct {
	Key      string   `json:"key"`
	Operator string   `json:"operator"`
	Values   []string `json:"values,omitempty"`
}

type fileOp struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// target is an os/arch pair that the plugin is released for.
type target struct{ OS, Arch string }

func (t target) String() string { return t.OS + "/" + t.Arch }

var releaseTargets = []target{
	{"linux", "amd64"}, {"linux", "arm64"},
	{"darwin", "amd64"}, {"darwin", "arm64"},
	{"windows", "amd64"},
}

// matches reports whether s selects t, with the label selector semantics
// krew uses (all matchLabels equal, every expression holds).
func (s *selector) matches(t target) bool {
	labels := map[string]string{"os": t.OS, "arch": t.Arch}
	for k, v := range s.MatchLabels {
		if labels[k] != v {
			return false
		}
	}
	for _, r := range s.MatchExpressions {
		v, ok := labels[r.Key]
		in := false
		for _, want := range r.Values {
			in = in || v == want
		}
		switch r.Operator {
		case "In":
			if !ok || !in {
				return false
			}
		case "NotIn":
			if ok && in {
				return false
			}
		case "Exists":
			if !ok {
				return false
			}
		case "DoesNotExist":
			if ok {
				return false
			}
		default:
			return false
		}
	}
	return true
}

var (
	safeName        = regexp.MustCompile(`^[\w-]+$`)
	kebabName       = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)
	semverV         = regexp.MustCompile(`^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$`)
	sha256Hex       = regexp.MustCompile(`^[a-f0-9]{64}$`)
	windowsReserved = []string{"CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8", "COM9",
		"LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9"}
	// Go's GOOS and GOARCH names that krew releases exist for.
	krewOS   = map[string]bool{"linux": true, "darwin": true, "windows": true}
	krewArch = map[string]bool{"amd64": true, "arm64": true, "arm": true, "386": true, "ppc64le": true, "s390x": true, "loong64": true}
)

const (
	maxShortDescription = 50
	homepage            = "https://github.com/iter8-tools/iter8"
	releaseDownloadURL  = "https://github.com/iter8-tools/iter8/releases/download"
)

// readManifest decodes the manifest at path strictly.
func readManifest(path string) (*manifest, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var m manifest
	if err := yaml.UnmarshalStrict(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &m, nil
}

// checkManifest checks m, read from file, against the rules above, with
// version the release version (v<chart appVersion>) and targets the
// platforms it must cover (rule 11: releaseTargets, unless the test built
// fewer). If archiveDir is not empty, the archives the manifest names are
// read from there (rule 12). It returns every broken rule.
func checkManifest(m *manifest, file, version, archiveDir string, targets []target) []error {
	var errs []error
	bad := func(rule int, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: rule %d: %s", file, rule, fmt.Sprintf(format, args...)))
	}

	// 1
	if m.APIVersion != "krew.googlecontainertools.github.com/v1alpha2" {
		bad(1, "apiVersion is %q, want krew.googlecontainertools.github.com/v1alpha2", m.APIVersion)
	}
	if m.Kind != "Plugin" {
		bad(1, "kind is %q, want Plugin", m.Kind)
	}
	// 2
	name := m.Metadata.Name
	if want := strings.TrimSuffix(filepath.Base(file), ".yaml"); name != want {
		bad(2, "metadata.name is %q, want %q (the file's name)", name, want)
	}
	if !safeName.MatchString(name) {
		bad(2, "metadata.name %q does not match %s", name, safeName)
	}
	for _, r := range windowsReserved {
		if strings.EqualFold(name, r) {
			bad(2, "metadata.name %q is reserved on Windows", name)
		}
	}
	// 3
	if !kebabName.MatchString(name) {
		bad(3, "metadata.name %q is not lowercase kebab-case", name)
	}
	if strings.HasPrefix(name, "kube-") || strings.HasPrefix(name, "kubernetes-") {
		bad(3, "metadata.name %q repeats kube[rnetes]", name)
	}
	// 4
	if !semverV.MatchString(m.Spec.Version) {
		bad(4, "spec.version %q is not a semantic version with a leading v", m.Spec.Version)
	}
	if m.Spec.Version != version {
		bad(4, "spec.version is %q, want %q (v + the chart's appVersion)", m.Spec.Version, version)
	}
	// 5
	sd := m.Spec.ShortDescription
	switch {
	case strings.TrimSpace(sd) == "":
		bad(5, "spec.shortDescription is empty")
	case strings.ContainsAny(sd, "\r\n"):
		bad(5, "spec.shortDescription %q has a line break", sd)
	case len(sd) > maxShortDescription:
		bad(5, "spec.shortDescription %q has %d characters, want at most %d", sd, len(sd), maxShortDescription)
	}
	// 6
	if strings.TrimSpace(m.Spec.Description) == "" {
		bad(6, "spec.description is empty")
	}
	if m.Spec.Homepage != homepage {
		bad(6, "spec.homepage is %q, want %q", m.Spec.Homepage, homepage)
	}
	// 7
	if len(m.Spec.Platforms) == 0 {
		bad(7, "spec.platforms is empty")
	}
	for i, p := range m.Spec.Platforms {
		at := fmt.Sprintf("spec.platforms[%d]", i)
		switch s := p.Selector; {
		case s == nil:
			bad(7, "%s.selector is missing", at)
		case s.MatchLabels == nil && len(s.MatchExpressions) == 0:
			bad(7, "%s.selector is empty", at)
		default:
			if s.MatchLabels != nil && len(s.MatchLabels) == 0 {
				bad(7, "%s.selector.matchLabels is present but empty", at)
			}
			for k, v := range s.MatchLabels {
				checkLabel(bad, at+".selector.matchLabels", k, []string{v})
			}
			for j, r := range s.MatchExpressions {
				checkLabel(bad, fmt.Sprintf("%s.selector.matchExpressions[%d]", at, j), r.Key, r.Values)
			}
		}
		// 8
		if p.SHA256 == "" {
			bad(8, "%s.sha256 is missing", at)
		} else if !sha256Hex.MatchString(p.SHA256) {
			bad(8, "%s.sha256 %q is not 64 lowercase hex digits", at, p.SHA256)
		}
		checkURI(bad, at, p, m.Spec.Version)
		// 9
		if p.Bin == "" {
			bad(9, "%s.bin is missing", at)
		}
		if p.Selector != nil {
			if os, ok := p.Selector.MatchLabels["os"]; ok && os == "windows" && !strings.HasSuffix(p.Bin, ".exe") {
				bad(9, "%s.bin %q is for windows but is not an .exe", at, p.Bin)
			}
		}
		// 10
		if p.Files != nil && len(p.Files) == 0 {
			bad(10, "%s.files is present but empty", at)
		}
		for j, f := range p.Files {
			if f.From == "" || f.To == "" {
				bad(10, "%s.files[%d] needs from and to, has %+v", at, j, f)
			}
		}
		// 12
		if archiveDir != "" && p.URI != "" {
			for _, err := range checkArchive(filepath.Join(archiveDir, path.Base(p.URI)), p) {
				bad(12, "%s: %v", at, err)
			}
		}
	}
	// 11
	for _, t := range targets {
		var hits []int
		for i, p := range m.Spec.Platforms {
			if p.Selector != nil && p.Selector.matches(t) {
				hits = append(hits, i)
			}
		}
		if len(hits) != 1 {
			bad(11, "%s is matched by spec.platforms%v, want exactly one", t, hits)
		}
	}
	if n := len(m.Spec.Platforms); n != len(targets) {
		bad(11, "%d platforms, want one for each of %v", n, targets)
	}
	return errs
}

func checkLabel(bad func(int, string, ...any), at, key string, values []string) {
	known := map[string]map[string]bool{"os": krewOS, "arch": krewArch}[key]
	if known == nil {
		bad(7, "%s: key %q is not supported (only os and arch)", at, key)
		return
	}
	for _, v := range values {
		if !known[v] {
			bad(7, "%s: %s %q is not a Go %s krew is released for", at, key, v, key)
		}
	}
}

func checkURI(bad func(int, string, ...any), at string, p platform, version string) {
	if p.URI == "" {
		bad(8, "%s.uri is missing", at)
		return
	}
	if !strings.HasPrefix(p.URI, "https://") {
		bad(8, "%s.uri %q is not https", at, p.URI)
	}
	// path.Dir would fold the "//" of the scheme.
	if dir, want := p.URI[:strings.LastIndex(p.URI, "/")], releaseDownloadURL+"/"+version; dir != want {
		bad(8, "%s.uri %q is not under %s", at, p.URI, want)
	}
	if p.Selector == nil {
		return
	}
	t := target{p.Selector.MatchLabels["os"], p.Selector.MatchLabels["arch"]}
	ext := ".tar.gz"
	if t.OS == "windows" {
		ext = ".zip"
	}
	if got, want := path.Base(p.URI), fmt.Sprintf("kubectl-iter8_%s_%s_%s%s", version, t.OS, t.Arch, ext); got != want {
		bad(8, "%s.uri names %q, want %q for %s", at, got, want, t)
	}
}

// archiveEntry is a regular file in an archive.
type archiveEntry struct {
	mode os.FileMode
	data []byte
}

// readArchive returns the regular files of a .tar.gz or .zip by name.
func readArchive(file string) (map[string]archiveEntry, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	out := map[string]archiveEntry{}
	switch {
	case strings.HasSuffix(file, ".zip"):
		zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		for _, f := range zr.File {
			if f.Mode().IsDir() {
				continue
			}
			rc, err := f.Open()
			if err != nil {
				return nil, fmt.Errorf("%s: %s: %w", file, f.Name, err)
			}
			data, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				return nil, fmt.Errorf("%s: %s: %w", file, f.Name, err)
			}
			out[f.Name] = archiveEntry{mode: f.Mode(), data: data}
		}
	case strings.HasSuffix(file, ".tar.gz"):
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		tr := tar.NewReader(zr)
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("%s: %w", file, err)
			}
			if h.Typeflag != tar.TypeReg {
				continue
			}
			data, err := io.ReadAll(tr)
			if err != nil {
				return nil, fmt.Errorf("%s: %s: %w", file, h.Name, err)
			}
			out[h.Name] = archiveEntry{mode: h.FileInfo().Mode(), data: data}
		}
	default:
		return nil, fmt.Errorf("%s: neither .zip nor .tar.gz", file)
	}
	return out, nil
}

// checkArchive checks rule 12 for the archive of platform p.
func checkArchive(file string, p platform) []error {
	b, err := os.ReadFile(file)
	if err != nil {
		return []error{err}
	}
	var errs []error
	sum := sha256.Sum256(b)
	if got := hex.EncodeToString(sum[:]); got != p.SHA256 {
		errs = append(errs, fmt.Errorf("%s has sha256 %s, the manifest says %s", file, got, p.SHA256))
	}
	entries, err := readArchive(file)
	if err != nil {
		return append(errs, err)
	}
	// What krew installs: every file, or what `files` copies.
	installed := entries
	if p.Files != nil {
		installed = map[string]archiveEntry{}
		for _, op := range p.Files {
			for name, e := range entries {
				if ok, _ := path.Match(op.From, name); ok {
					to := path.Join(op.To, path.Base(name))
					if !strings.HasSuffix(op.To, "/") && op.To != "." {
						to = op.To
					}
					installed[to] = e
				}
			}
		}
	}
	bin, ok := installed[path.Clean(p.Bin)]
	switch {
	case !ok:
		errs = append(errs, fmt.Errorf("%s: bin %q is not in it (has %v)", file, p.Bin, names(installed)))
	case bin.mode&0o111 == 0:
		errs = append(errs, fmt.Errorf("%s: bin %q has mode %v, want executable", file, p.Bin, bin.mode))
	}
	if _, ok := installed["LICENSE"]; !ok {
		errs = append(errs, fmt.Errorf("%s: no LICENSE is installed from it (has %v)", file, names(installed)))
	}
	return errs
}

func names(m map[string]archiveEntry) []string {
	var out []string
	for n := range m {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
