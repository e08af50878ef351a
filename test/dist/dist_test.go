package dist

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"sigs.k8s.io/yaml"

	"github.com/iter8-tools/iter8/test/testbed"
)

// What the tests give the program, to see it reach the artefacts.
const (
	testEpoch  = 1700000000 // SOURCE_DATE_EPOCH
	testCommit = "0123456789abcdef"
)

// The image's contract with the chart (charts/iter8/templates: the Job runs
// `command: [iter8, run, ...]` as a non-root user).
const (
	imageBinary = "/usr/local/bin/iter8"
	nonRoot     = "65532"
)

// built is what one run of scripts/dist wrote; the tests share it because a
// build of all platforms is the slow part.
type built struct {
	archives string   // -out of archives
	manifest string   // -manifest of archives
	image    string   // -out of image
	targets  []target // the platforms of the archives
	all      bool     // built for every release platform, as make does
	log      string   // the commands and the program's output
	err      error
}

var (
	workDir   string // removed by TestMain
	toolOnce  sync.Once
	toolPath  string
	toolErr   error
	buildOnce sync.Once
	artefacts built
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "iter8-dist-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	workDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	if artefacts.log != "" && testing.Verbose() {
		fmt.Print(artefacts.log)
	}
	os.Exit(code)
}

// tool builds scripts/dist, the program behind `make dist` and `make image`.
func tool(t *testing.T) string {
	t.Helper()
	root := repoRoot(t)
	toolOnce.Do(func() {
		toolPath = filepath.Join(workDir, "dist")
		cmd := exec.Command("go", "build", "-o", toolPath, "./scripts/dist")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			toolErr = fmt.Errorf("go build ./scripts/dist: %w\n%s", err, out)
		}
	})
	if toolErr != nil {
		t.Fatal(toolErr)
	}
	return toolPath
}

// build runs the program with the arguments `make dist` and `make image`
// give it, but for the output paths, once per test binary.
func build(t *testing.T) built {
	t.Helper()
	root := repoRoot(t)
	dist := tool(t)
	buildOnce.Do(func() {
		// Stop the build in time to report it, rather than be killed by
		// go test's -timeout with nothing said (ITER8_DIST_ALL=1 from cold
		// needs -timeout 60m).
		ctx := context.Background()
		if d, ok := t.Deadline(); ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, d.Add(-30*time.Second))
			defer cancel()
		}
		var log bytes.Buffer
		a := built{
			archives: filepath.Join(workDir, "archives"),
			manifest: filepath.Join(workDir, "krew", "iter8.yaml"),
			image:    filepath.Join(workDir, "image"),
		}
		// A cold cross-build of the plugin takes 5 to 9 minutes on 2 cores,
		// so by default the test builds this machine's linux platform only,
		// through the same commands; ITER8_DIST_ALL=1 builds every platform,
		// with the arguments of `make dist` and `make image`.
		a.targets, a.all = releaseTargets, os.Getenv("ITER8_DIST_ALL") == "1"
		var only []string
		if !a.all {
			a.targets = []target{{"linux", runtime.GOARCH}}
			only = []string{"-platforms", "linux/" + runtime.GOARCH}
		}
		start := time.Now()
		for _, args := range [][]string{
			append(slices.Clone(only), "-commit", testCommit, "-out", a.archives, "-manifest", a.manifest, "archives"),
			append(slices.Clone(only), "-commit", testCommit, "-out", a.image, "image"),
		} {
			cmd := exec.CommandContext(ctx, dist, args...)
			cmd.Dir = root
			cmd.Env = append(os.Environ(), fmt.Sprintf("SOURCE_DATE_EPOCH=%d", testEpoch))
			cmd.Stdout, cmd.Stderr = &log, &log
			fmt.Fprintf(&log, "$ dist %s\n", strings.Join(args, " "))
			if err := cmd.Run(); err != nil {
				a.err = fmt.Errorf("dist %s: %w", strings.Join(args, " "), err)
				break
			}
		}
		fmt.Fprintf(&log, "scripts/dist built the archives and the image in %s\n", time.Since(start).Round(time.Second))
		a.log = log.String()
		artefacts = a
	})
	if artefacts.err != nil {
		t.Fatalf("scripts/dist: %v\n%s", artefacts.err, artefacts.log)
	}
	return artefacts
}

func TestCommittedManifest(t *testing.T) {
	_, version := release(t)
	file := filepath.Join(repoRoot(t), "krew", "iter8.yaml")
	m, err := readManifest(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range checkManifest(m, file, version, "", releaseTargets) {
		t.Error(err)
	}
}

// TestManifestRules breaks one rule at a time in the committed manifest and
// expects checkManifest to name that rule: a check that cannot fail checks
// nothing.
func TestManifestRules(t *testing.T) {
	_, version := release(t)
	file := filepath.Join(repoRoot(t), "krew", "iter8.yaml")
	tests := []struct {
		rule   int
		name   string
		mutate func(m *manifest)
	}{
		{1, "apiVersion", func(m *manifest) { m.APIVersion = "krew.googlecontainertools.github.com/v1alpha1" }},
		{1, "kind", func(m *manifest) { m.Kind = "Plugins" }},
		{2, "name is not the file's", func(m *manifest) { m.Metadata.Name = "iter9" }},
		{3, "name in camel case", func(m *manifest) { m.Metadata.Name = "Iter8" }},
		{4, "version without v", func(m *manifest) { m.Spec.Version = strings.TrimPrefix(version, "v") }},
		{4, "version is not the chart's", func(m *manifest) { m.Spec.Version = "v9.9.9" }},
		{5, "empty shortDescription", func(m *manifest) { m.Spec.ShortDescription = "" }},
		{5, "shortDescription with line break", func(m *manifest) { m.Spec.ShortDescription = "Run\nexperiments" }},
		{5, "long shortDescription", func(m *manifest) { m.Spec.ShortDescription = strings.Repeat("word ", 11) }},
		{6, "no description", func(m *manifest) { m.Spec.Description = " \n" }},
		{6, "homepage", func(m *manifest) { m.Spec.Homepage = "http://github.com/iter8-tools/iter8" }},
		{7, "no selector", func(m *manifest) { m.Spec.Platforms[0].Selector = nil }},
		{7, "unsupported key", func(m *manifest) { m.Spec.Platforms[0].Selector.MatchLabels["variant"] = "v8" }},
		{7, "unknown arch", func(m *manifest) { m.Spec.Platforms[0].Selector.MatchLabels["arch"] = "x86_64" }},
		{8, "uppercase sha256", func(m *manifest) { m.Spec.Platforms[1].SHA256 = strings.ToUpper(m.Spec.Platforms[1].SHA256) }},
		{8, "short sha256", func(m *manifest) { m.Spec.Platforms[1].SHA256 = m.Spec.Platforms[1].SHA256[:63] }},
		{8, "http uri", func(m *manifest) {
			m.Spec.Platforms[2].URI = "http" + strings.TrimPrefix(m.Spec.Platforms[2].URI, "https")
		}},
		{8, "uri of another version", func(m *manifest) {
			m.Spec.Platforms[2].URI = strings.Replace(m.Spec.Platforms[2].URI, "/"+version+"/", "/v0.0.1/", 1)
		}},
		{8, "archive of another platform", func(m *manifest) { m.Spec.Platforms[0].URI = m.Spec.Platforms[1].URI }},
		{9, "no bin", func(m *manifest) { m.Spec.Platforms[3].Bin = "" }},
		{9, "windows bin without .exe", func(m *manifest) { m.Spec.Platforms[4].Bin = "kubectl-iter8" }},
		{10, "empty files", func(m *manifest) { m.Spec.Platforms[0].Files = []fileOp{} }},
		{10, "files without to", func(m *manifest) { m.Spec.Platforms[0].Files = []fileOp{{From: "*"}} }},
		{11, "a platform missing", func(m *manifest) { m.Spec.Platforms = m.Spec.Platforms[:4] }},
		{11, "overlapping selectors", func(m *manifest) { delete(m.Spec.Platforms[0].Selector.MatchLabels, "arch") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := readManifest(file)
			if err != nil {
				t.Fatal(err)
			}
			if len(m.Spec.Platforms) != len(releaseTargets) {
				t.Fatalf("%s has %d platforms, want %d", file, len(m.Spec.Platforms), len(releaseTargets))
			}
			tt.mutate(m)
			errs := checkManifest(m, file, version, "", releaseTargets)
			want := fmt.Sprintf("rule %d:", tt.rule)
			for _, err := range errs {
				if strings.Contains(err.Error(), want) {
					return
				}
			}
			t.Errorf("checkManifest found no %q error; got %v", want, errs)
		})
	}
}

func TestManifestIsStrict(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "iter8.yaml")
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "krew", "iter8.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	b = bytes.Replace(b, []byte("  homepage:"), []byte("  homepageURL: x\n  homepage:"), 1)
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readManifest(file); err == nil || !strings.Contains(err.Error(), "homepageURL") {
		t.Errorf("readManifest with a misspelt field: got error %v, want one naming homepageURL", err)
	}
}

func TestArchives(t *testing.T) {
	a := build(t)
	_, version := release(t)
	m, err := readManifest(a.manifest)
	if err != nil {
		t.Fatal(err)
	}
	// The written manifest follows the rules, and its sha256 values are the
	// archives' (rule 12).
	for _, err := range checkManifest(m, a.manifest, version, a.archives, a.targets) {
		t.Error(err)
	}
	// Nothing else is in the output directory.
	entries, err := os.ReadDir(a.archives)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	appVersion, _ := release(t)
	want := []string{"sha256sums.txt"}
	for _, p := range m.Spec.Platforms {
		want = append(want, path.Base(p.URI))
	}
	for _, tgt := range a.targets {
		want = append(want, fmt.Sprintf("helm-iter8-%s-%s-%s.tar.gz", appVersion, tgt.OS, tgt.Arch))
	}
	if fmt.Sprint(sortedCopy(got)) != fmt.Sprint(sortedCopy(want)) {
		t.Errorf("%s holds %v, want %v", a.archives, got, want)
	}
	checkSums(t, a.archives, want[1:])
	checkHelmArchives(t, a, appVersion, version)

	license, err := os.ReadFile(filepath.Join(repoRoot(t), "LICENSE"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(license, []byte("Apache License")) || !bytes.Contains(license, []byte("Version 2.0, January 2004")) {
		t.Errorf("LICENSE is not the Apache License 2.0")
	}
	for _, p := range m.Spec.Platforms {
		file := filepath.Join(a.archives, path.Base(p.URI))
		tgt := target{p.Selector.MatchLabels["os"], p.Selector.MatchLabels["arch"]}
		files, err := readArchive(file)
		if err != nil {
			t.Error(err)
			continue
		}
		if len(files) != 2 {
			t.Errorf("%s holds %v, want only %s and LICENSE", file, names(files), p.Bin)
		}
		if !bytes.Equal(files["LICENSE"].data, license) {
			t.Errorf("%s: LICENSE differs from the repository's", file)
		}
		bin := files[p.Bin]
		checkExecutable(t, file+":"+p.Bin, bin.data, tgt)
		if tgt.OS == runtime.GOOS && tgt.Arch == runtime.GOARCH {
			exe := filepath.Join(t.TempDir(), p.Bin)
			if err := os.WriteFile(exe, bin.data, 0o755); err != nil {
				t.Fatal(err)
			}
			if out := runVersion(t, exe, "version", "--short"); out != version+"\n" {
				t.Errorf("%s from %s: version --short printed %q, want %q", p.Bin, file, out, version+"\n")
			}
			if out := runVersion(t, exe, "version"); !strings.Contains(out, "git commit: "+testCommit) {
				t.Errorf("%s from %s: version printed %q, want the commit %s", p.Bin, file, out, testCommit)
			}
		}
	}
	checkArchiveTimes(t, a.archives, m)
}

// TestCommittedManifestIsGenerated: the committed manifest is what the
// program writes, but for the sha256 values (they change with every commit
// that changes the binary; `make dist` at the release rewrites them). When
// the test built fewer platforms, each of their entries must be in it.
func TestCommittedManifestIsGenerated(t *testing.T) {
	a := build(t)
	committed, err := os.ReadFile(filepath.Join(repoRoot(t), "krew", "iter8.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	generated, err := os.ReadFile(a.manifest)
	if err != nil {
		t.Fatal(err)
	}
	c, g := withoutSHA256(committed), withoutSHA256(generated)
	if a.all {
		if c != g {
			t.Errorf("krew/iter8.yaml differs from what `make dist` writes (sha256 aside); run make dist.\ncommitted:\n%s\ngenerated:\n%s", c, g)
		}
		return
	}
	const list = "  platforms:\n"
	ch, _, _ := strings.Cut(c, list)
	gh, gp, ok := strings.Cut(g, list)
	if !ok || ch != gh {
		t.Errorf("krew/iter8.yaml differs from what `make dist` writes before its platforms; run make dist.\ncommitted:\n%s\ngenerated:\n%s", c, g)
	}
	const item = "  - selector:\n"
	for _, entry := range strings.Split(gp, item)[1:] {
		if !strings.Contains(c, item+entry) {
			t.Errorf("krew/iter8.yaml has no platform entry\n%s%s\nas make dist writes it; run make dist", item, entry)
		}
	}
}

func withoutSHA256(b []byte) string {
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "sha256:") {
			l = "    sha256: ..."
		}
		lines = append(lines, l)
	}
	return strings.Join(lines, "\n")
}

// checkArchiveTimes: every entry carries SOURCE_DATE_EPOCH, so that the
// archives are reproducible.
// checkSums: sha256sums.txt in dir lists exactly the files names with
// their sha256, as sha256sum writes them.
func checkSums(t *testing.T, dir string, names []string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "sha256sums.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, name := range names {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, fmt.Sprintf("%x  %s\n", sha256.Sum256(data), name))
	}
	var got []string
	for _, line := range strings.SplitAfter(string(b), "\n") {
		if line != "" {
			got = append(got, line)
		}
	}
	if strings.Join(sortedCopy(got), "") != strings.Join(sortedCopy(want), "") {
		t.Errorf("sha256sums.txt:\n%s\nwant (in any order):\n%s", b, strings.Join(want, ""))
	}
}

// checkHelmArchives: each helm plugin archive holds plugin.yaml and the
// install hook as in the checkout, LICENSE, and bin/helm-iter8 built for
// its platform (this machine's prints the release's version), all at
// SOURCE_DATE_EPOCH.
func checkHelmArchives(t *testing.T, a built, appVersion, version string) {
	t.Helper()
	root := repoRoot(t)
	for _, tgt := range a.targets {
		file := filepath.Join(a.archives, fmt.Sprintf("helm-iter8-%s-%s-%s.tar.gz", appVersion, tgt.OS, tgt.Arch))
		files, err := readArchive(file)
		if err != nil {
			t.Error(err)
			continue
		}
		bin := "bin/helm-iter8"
		if tgt.OS == "windows" {
			bin += ".exe"
		}
		wantNames := sortedCopy([]string{"LICENSE", "plugin.yaml", "scripts/helm-plugin-install.sh", bin})
		if got := names(files); fmt.Sprint(got) != fmt.Sprint(wantNames) {
			t.Errorf("%s holds %v, want %v", file, got, wantNames)
			continue
		}
		for _, name := range []string{"LICENSE", "plugin.yaml", "scripts/helm-plugin-install.sh"} {
			checkout, err := os.ReadFile(filepath.Join(root, name))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(files[name].data, checkout) {
				t.Errorf("%s: %s differs from the checkout's", file, name)
			}
		}
		if files[bin].mode.Perm() != 0o755 || files["scripts/helm-plugin-install.sh"].mode.Perm() != 0o755 {
			t.Errorf("%s: %s and the hook must be executable: %v, %v", file, bin, files[bin].mode, files["scripts/helm-plugin-install.sh"].mode)
		}
		checkExecutable(t, file+":"+bin, files[bin].data, tgt)
		if tgt.OS == runtime.GOOS && tgt.Arch == runtime.GOARCH {
			exe := filepath.Join(t.TempDir(), "helm-iter8")
			if err := os.WriteFile(exe, files[bin].data, 0o755); err != nil {
				t.Fatal(err)
			}
			if out := runVersion(t, exe, "version", "--short"); out != version+"\n" {
				t.Errorf("%s from %s: version --short printed %q, want %q", bin, file, out, version+"\n")
			}
		}
		times, err := entryTimes(file)
		if err != nil {
			t.Fatal(err)
		}
		for name, got := range times {
			if !got.Equal(time.Unix(testEpoch, 0)) {
				t.Errorf("%s: %s has time %s, want SOURCE_DATE_EPOCH", file, name, got.UTC())
			}
		}
	}
}

func checkArchiveTimes(t *testing.T, dir string, m *manifest) {
	t.Helper()
	want := time.Unix(testEpoch, 0)
	for _, p := range m.Spec.Platforms {
		file := filepath.Join(dir, path.Base(p.URI))
		times, err := entryTimes(file)
		if err != nil {
			t.Error(err)
			continue
		}
		for name, got := range times {
			if !got.Equal(want) {
				t.Errorf("%s: %s has time %s, want SOURCE_DATE_EPOCH %s", file, name, got.UTC(), want.UTC())
			}
		}
	}
}

func entryTimes(file string) (map[string]time.Time, error) {
	out := map[string]time.Time{}
	if strings.HasSuffix(file, ".zip") {
		zr, err := zip.OpenReader(file)
		if err != nil {
			return nil, err
		}
		defer zr.Close()
		for _, f := range zr.File {
			out[f.Name] = f.Modified
		}
		return out, nil
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if !zr.ModTime.IsZero() || zr.Name != "" {
		return nil, fmt.Errorf("%s: gzip header has name %q and time %s, want neither", file, zr.Name, zr.ModTime)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		out[h.Name] = h.ModTime
	}
}

func TestImage(t *testing.T) {
	a := build(t)
	appVersion, version := release(t)

	// The chart pulls <image.repository>:<image.tag or appVersion>.
	var values struct {
		Image struct {
			Repository string `json:"repository"`
			Tag        string `json:"tag"`
		} `json:"image"`
	}
	vb, err := os.ReadFile(filepath.Join(repoRoot(t), "charts", "iter8", "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(vb, &values); err != nil {
		t.Fatalf("charts/iter8/values.yaml: %v", err)
	}
	tag := values.Image.Tag
	if tag == "" {
		tag = appVersion
	}
	wantRef := values.Image.Repository + ":" + tag

	lp, err := layout.FromPath(a.image)
	if err != nil {
		t.Fatal(err)
	}
	top, err := lp.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	topm, err := top.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(topm.Manifests) != 1 {
		t.Fatalf("%s/index.json has %d manifests, want 1 (the multi-platform index)", a.image, len(topm.Manifests))
	}
	d := topm.Manifests[0]
	if d.MediaType != types.OCIImageIndex {
		t.Errorf("%s/index.json: manifest has media type %s, want %s", a.image, d.MediaType, types.OCIImageIndex)
	}
	if got := d.Annotations["org.opencontainers.image.ref.name"]; got != wantRef {
		t.Errorf("%s/index.json: ref.name is %q, want %q (what the chart pulls)", a.image, got, wantRef)
	}
	idx, err := top.ImageIndex(d.Digest)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var platforms []string
	for _, m := range im.Manifests {
		if m.Platform == nil {
			t.Errorf("image index: manifest %s has no platform", m.Digest)
			continue
		}
		platforms = append(platforms, m.Platform.OS+"/"+m.Platform.Architecture)
	}
	wantPlatforms := "[linux/amd64 linux/arm64]"
	if !a.all {
		wantPlatforms = "[linux/" + runtime.GOARCH + "]"
	}
	if got, want := fmt.Sprint(platforms), wantPlatforms; got != want {
		t.Errorf("image index platforms are %s, want %s", got, want)
	}

	ran := false
	for _, m := range im.Manifests {
		if m.Platform == nil {
			continue
		}
		tgt := target{m.Platform.OS, m.Platform.Architecture}
		t.Run(tgt.OS+"-"+tgt.Arch, func(t *testing.T) {
			img, err := idx.Image(m.Digest)
			if err != nil {
				t.Fatal(err)
			}
			root := checkImage(t, img, tgt, version)
			if tgt.OS == runtime.GOOS && tgt.Arch == runtime.GOARCH && root != "" {
				ran = true
				// The chart's Job runs `iter8 run ...`: iter8 must be found
				// through the image's PATH, here mapped into the extracted root.
				cf, err := img.ConfigFile()
				if err != nil {
					t.Fatal(err)
				}
				exe := lookPathIn(t, root, cf.Config.Env, "iter8")
				if out := runVersion(t, exe, "version", "--short"); out != version+"\n" {
					t.Errorf("%s in the %s image: version --short printed %q, want %q", imageBinary, tgt, out, version+"\n")
				}
			}
		})
	}
	if !ran && (runtime.GOOS == "linux") && (runtime.GOARCH == "amd64" || runtime.GOARCH == "arm64") {
		t.Errorf("the image's binary for linux/%s was not run", runtime.GOARCH)
	}
}

// checkImage checks one platform's image and returns the directory its layer
// was extracted to.
func checkImage(t *testing.T, img v1.Image, tgt target, version string) string {
	t.Helper()
	mt, err := img.MediaType()
	if err != nil {
		t.Fatal(err)
	}
	if mt != types.OCIManifestSchema1 {
		t.Errorf("%s image: media type %s, want %s", tgt, mt, types.OCIManifestSchema1)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != tgt.OS || cf.Architecture != tgt.Arch {
		t.Errorf("%s image: config says %s/%s", tgt, cf.OS, cf.Architecture)
	}
	c := cf.Config
	if got := fmt.Sprint(c.Entrypoint); got != "["+imageBinary+"]" {
		t.Errorf("%s image: Entrypoint %s, want [%s]", tgt, got, imageBinary)
	}
	if c.User != nonRoot+":"+nonRoot {
		t.Errorf("%s image: User %q, want %s:%s (non-root)", tgt, c.User, nonRoot, nonRoot)
	}
	if u, _, _ := strings.Cut(c.User, ":"); u == "" || u == "0" || u == "root" {
		t.Errorf("%s image: User %q is root", tgt, c.User)
	}
	if c.WorkingDir != "/" {
		t.Errorf("%s image: WorkingDir %q, want /", tgt, c.WorkingDir)
	}
	if !pathHas(c.Env, path.Dir(imageBinary)) {
		t.Errorf("%s image: Env %v has no PATH with %s", tgt, c.Env, path.Dir(imageBinary))
	}
	for k, want := range map[string]string{
		"org.opencontainers.image.source":   "https://github.com/iter8-tools/iter8",
		"org.opencontainers.image.version":  version,
		"org.opencontainers.image.revision": testCommit,
	} {
		if got := c.Labels[k]; got != want {
			t.Errorf("%s image: label %s is %q, want %q", tgt, k, got, want)
		}
	}
	epoch := time.Unix(testEpoch, 0)
	if !cf.Created.Equal(epoch) {
		t.Errorf("%s image: created %s, want SOURCE_DATE_EPOCH %s", tgt, cf.Created.UTC(), epoch.UTC())
	}

	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 1 {
		t.Fatalf("%s image: %d layers, want 1 on an empty base", tgt, len(layers))
	}
	if lmt, err := layers[0].MediaType(); err != nil || lmt != types.OCILayer {
		t.Errorf("%s image: layer media type %s (%v), want %s", tgt, lmt, err, types.OCILayer)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	root := t.TempDir()
	hdrs, err := extract(rc, root)
	if err != nil {
		t.Fatalf("%s image layer: %v", tgt, err)
	}
	for name, h := range hdrs {
		if !h.ModTime.Equal(epoch) {
			t.Errorf("%s image layer: %s has time %s, want SOURCE_DATE_EPOCH %s", tgt, name, h.ModTime.UTC(), epoch.UTC())
		}
	}
	bin, ok := hdrs[strings.TrimPrefix(imageBinary, "/")]
	switch {
	case !ok:
		t.Fatalf("%s image layer has no %s; has %v", tgt, imageBinary, keys(hdrs))
	case bin.Typeflag != tar.TypeReg || bin.Mode&0o7777 != 0o755 || bin.Uid != 0 || bin.Gid != 0:
		t.Errorf("%s image: %s is type %c mode %o owner %d:%d, want a regular file, 0755, 0:0", tgt, imageBinary, bin.Typeflag, bin.Mode, bin.Uid, bin.Gid)
	}
	data, err := os.ReadFile(filepath.Join(root, imageBinary))
	if err != nil {
		t.Fatal(err)
	}
	checkExecutable(t, tgt.String()+" image:"+imageBinary, data, tgt)

	passwd, _ := os.ReadFile(filepath.Join(root, "etc", "passwd"))
	if !bytes.Contains(passwd, []byte("\nnonroot:x:65532:65532:")) {
		t.Errorf("%s image: /etc/passwd has no user nonroot 65532:65532:\n%s", tgt, passwd)
	}
	group, _ := os.ReadFile(filepath.Join(root, "etc", "group"))
	if !bytes.Contains(group, []byte("\nnonroot:x:65532:")) {
		t.Errorf("%s image: /etc/group has no group nonroot 65532:\n%s", tgt, group)
	}
	return root
}

// checkExecutable checks that data is a static executable for tgt.
func checkExecutable(t *testing.T, what string, data []byte, tgt target) {
	t.Helper()
	if len(data) == 0 {
		t.Errorf("%s: empty", what)
		return
	}
	switch tgt.OS {
	case "linux":
		f, err := elf.NewFile(bytes.NewReader(data))
		if err != nil {
			t.Errorf("%s: not an ELF file: %v", what, err)
			return
		}
		want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[tgt.Arch]
		if f.Machine != want {
			t.Errorf("%s: ELF machine %s, want %s", what, f.Machine, want)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Errorf("%s: has an ELF interpreter: not static (CGO_ENABLED=0)", what)
			}
		}
	case "darwin":
		// Mach-O 64-bit magic, little-endian.
		if !bytes.HasPrefix(data, []byte{0xcf, 0xfa, 0xed, 0xfe}) {
			t.Errorf("%s: not a 64-bit Mach-O file", what)
		}
	case "windows":
		if !bytes.HasPrefix(data, []byte("MZ")) {
			t.Errorf("%s: not a PE file", what)
		}
	}
}

// extract writes the layer's files under root and returns their headers.
func extract(r io.Reader, root string) (map[string]*tar.Header, error) {
	hdrs := map[string]*tar.Header{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return hdrs, nil
		}
		if err != nil {
			return nil, err
		}
		name := path.Clean(h.Name)
		if !filepath.IsLocal(name) {
			return nil, fmt.Errorf("entry %q escapes the root", h.Name)
		}
		hdrs[name] = h
		dst := filepath.Join(root, filepath.FromSlash(name))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(dst, 0o755); err != nil {
				return nil, err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return nil, err
			}
			f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode&0o777))
			if err != nil {
				return nil, err
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("entry %q has type %c, want only files and directories", h.Name, h.Typeflag)
		}
	}
}

// pathHas reports whether env's PATH lists dir.
func pathHas(env []string, dir string) bool {
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			for _, d := range strings.Split(v, ":") {
				if d == dir {
					return true
				}
			}
		}
	}
	return false
}

// lookPathIn finds name the way the container runtime would, through the
// image's PATH, with each directory taken inside root.
func lookPathIn(t *testing.T, root string, env []string, name string) string {
	t.Helper()
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			for _, d := range strings.Split(v, ":") {
				p := filepath.Join(root, filepath.FromSlash(d), name)
				if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
					return p
				}
			}
		}
	}
	t.Fatalf("%s is not found through the image's PATH (Env %v)", name, env)
	return ""
}

func runVersion(t *testing.T, exe string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Env = []string{"HOME=" + t.TempDir()}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Errorf("%s %s: %v\n%s", exe, strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

func TestUsageErrors(t *testing.T) {
	dist := tool(t)
	notLayout := t.TempDir()
	if err := os.WriteFile(filepath.Join(notLayout, "main.go"), []byte("package main\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	secret, public := testbed.TestKeyrings(t, "iter8 usage test")
	tests := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"no command", nil, nil, "want one command"},
		{"push to a place that is not OCI", nil, []string{"-push", "https://charts.example.invalid/iter8", "charts"}, `-push "https://charts.example.invalid/iter8": want an OCI registry`},
		{"plain HTTP without a push", nil, []string{"-plain-http", "charts"}, "-plain-http is for -push"},
		{"push with archives", nil, []string{"-push", "oci://127.0.0.1:1/charts", "archives"}, "-push is for charts, not archives"},
		{"signing the image", nil, []string{"-sign-key", "iter8", "image"}, "-sign-key is for archives, not image"},
		{"sign key without keyring", nil, []string{"-sign-key", "iter8", "archives"}, "-sign-keyring and -sign-key go together"},
		{"no keyring", nil, []string{"-sign-keyring", "/nonexistent/secring.gpg", "-sign-key", "iter8", "archives"}, "-sign-keyring: open /nonexistent/secring.gpg"},
		{"not a keyring", nil, []string{"-sign-keyring", filepath.Join(notLayout, "main.go"), "-sign-key", "iter8", "archives"}, "not an OpenPGP keyring"},
		{"no such key", nil, []string{"-sign-keyring", secret, "-sign-key", "someone else", "archives"}, `-sign-key "someone else": no key`},
		{"public key only", nil, []string{"-sign-keyring", public, "-sign-key", "iter8 usage test", "archives"}, "holds its public key only"},
		{"unknown command", nil, []string{"release"}, `unknown command "release"`},
		{"bad SOURCE_DATE_EPOCH", []string{"SOURCE_DATE_EPOCH=yesterday"}, []string{"image"}, `SOURCE_DATE_EPOCH="yesterday"`},
		{"bad platform", nil, []string{"-platforms", "linux", "archives"}, `"linux" is not os/arch`},
		{"image for windows", nil, []string{"-platforms", "windows/amd64", "image"}, "platform windows/amd64: want linux/<arch>"},
		{"out is not a layout", nil, []string{"-out", notLayout, "image"}, "neither empty nor an OCI image layout"},
		{"no chart", nil, []string{"-chart", "charts/none/Chart.yaml", "archives"}, "charts/none/Chart.yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(dist, tt.args...)
			cmd.Dir = repoRoot(t)
			cmd.Env = append(os.Environ(), tt.env...)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 1 {
				t.Fatalf("dist %v: exit %v, want 1\n%s", tt.args, err, out)
			}
			if !strings.Contains(string(out), tt.want) {
				t.Errorf("dist %v printed %q, want it to say %q", tt.args, out, tt.want)
			}
		})
	}
	// The directory that was not a layout is untouched.
	if _, err := os.Stat(filepath.Join(notLayout, "main.go")); err != nil {
		t.Errorf("image -out over a non-layout directory: %v", err)
	}
}

func sortedCopy(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

func keys(m map[string]*tar.Header) []string {
	return slices.Sorted(maps.Keys(m))
}

// repoRoot is the module's root, where `make` runs the program.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := testbed.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// release is the chart's appVersion (the image tag) and the release version.
func release(t *testing.T) (appVersion, version string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "charts", "iter8", "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		AppVersion string `json:"appVersion"`
	}
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("charts/iter8/Chart.yaml: %v", err)
	}
	if c.AppVersion == "" {
		t.Fatal("charts/iter8/Chart.yaml: no appVersion")
	}
	return c.AppVersion, "v" + c.AppVersion
}

// TestPluginVersion: the helm plugin's version is the release's (plugin.yaml
// wants it without the v).
func TestPluginVersion(t *testing.T) {
	appVersion, _ := release(t)
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "plugin.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		Version string `json:"version"`
	}
	if err := yaml.Unmarshal(b, &p); err != nil {
		t.Fatalf("plugin.yaml: %v", err)
	}
	if p.Version != appVersion {
		t.Errorf("plugin.yaml version %q, want the chart's appVersion %q", p.Version, appVersion)
	}
}

// TestImageReproducible runs `image` again (this machine's platform only)
// and expects the same bytes: the same index digest as the first run's.
func TestImageReproducible(t *testing.T) {
	a := build(t)
	first, err := indexDigest(a.image)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "image")
	args := []string{"-platforms", "linux/" + runtime.GOARCH, "-commit", testCommit, "-out", out, "image"}
	if a.all {
		args = args[2:]
	}
	cmd := exec.Command(tool(t), args...)
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(), fmt.Sprintf("SOURCE_DATE_EPOCH=%d", testEpoch))
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("dist %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	second, err := indexDigest(out)
	if err != nil {
		t.Fatal(err)
	}
	if first != second {
		t.Errorf("two builds of the image from the same source gave %s and %s", first, second)
	}
}

func indexDigest(dir string) (v1.Hash, error) {
	lp, err := layout.FromPath(dir)
	if err != nil {
		return v1.Hash{}, err
	}
	idx, err := lp.ImageIndex()
	if err != nil {
		return v1.Hash{}, err
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return v1.Hash{}, err
	}
	if len(m.Manifests) != 1 {
		return v1.Hash{}, fmt.Errorf("%s/index.json has %d manifests, want 1", dir, len(m.Manifests))
	}
	return m.Manifests[0].Digest, nil
}
