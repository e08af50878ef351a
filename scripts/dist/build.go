package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// DefaultRepository is where the chart's Job pulls its image from
// (charts/iter8/values.yaml image.repository).
const DefaultRepository = "ghcr.io/iter8-tools/iter8"

// mainPackage is the plugin that ships in the archives and the image; the
// helm plugin is built from source by `helm plugin install`.
const mainPackage = "./cmd/kubectl-iter8"

// versionPackage holds the variables that -ldflags -X sets (as the
// Makefile's build target does).
const versionPackage = "github.com/iter8-tools/iter8/pkg/action"

// Config is what both commands need.
type Config struct {
	// Root is the module's root directory.
	Root string
	// Chart is the experiment chart's Chart.yaml, relative to Root; its
	// appVersion is the release version.
	Chart string
	// Out is the output directory.
	Out string
	// Manifest is where Archives writes the krew manifest; empty: nowhere.
	Manifest string
	// Commit is the git commit embedded in the binaries; optional.
	Commit string
	// Platforms is a comma-separated os/arch list; empty: the command's default.
	Platforms string
	// Repository is the image's repository (without tag).
	Repository string
	// SignKeyring and SignKey: the OpenPGP secret keyring and the user id
	// of the key that signs the helm plugin's archives (.prov); empty: not
	// signed.
	SignKeyring, SignKey string
	// Time is the timestamp of every file and of the image's config.
	Time time.Time
	// Log receives progress lines and the go command's diagnostics.
	Log io.Writer
}

// Platform is a Go build target.
type Platform struct {
	OS, Arch string
}

func (p Platform) String() string { return p.OS + "/" + p.Arch }

// ReleasePlatforms are the targets of the release archives and the krew manifest.
var ReleasePlatforms = []Platform{
	{"linux", "amd64"}, {"linux", "arm64"},
	{"darwin", "amd64"}, {"darwin", "arm64"},
	{"windows", "amd64"},
}

// ImagePlatforms are the platforms of the image index.
var ImagePlatforms = []Platform{{"linux", "amd64"}, {"linux", "arm64"}}

func parsePlatforms(s string, def []Platform) ([]Platform, error) {
	if s == "" {
		return def, nil
	}
	var out []Platform
	seen := map[Platform]bool{}
	for _, f := range strings.Split(s, ",") {
		goos, goarch, ok := strings.Cut(strings.TrimSpace(f), "/")
		if !ok || goos == "" || goarch == "" {
			return nil, fmt.Errorf("-platforms: %q is not os/arch", f)
		}
		p := Platform{goos, goarch}
		if seen[p] {
			return nil, fmt.Errorf("-platforms: %s twice", p)
		}
		seen[p] = true
		out = append(out, p)
	}
	return out, nil
}

// semverCore matches what the chart's appVersion may be: X.Y.Z with an
// optional pre-release, no "v" (Helm's convention; the image tag is this).
var semverCore = regexp.MustCompile(`^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?$`)

// Release is the version of one release, read from the chart.
type Release struct {
	// AppVersion is the chart's appVersion and the image tag ("0.1.0").
	AppVersion string
	// Version is the binaries', the git tag's and krew's version ("v0.1.0").
	Version string
}

func readRelease(root, chart string) (Release, error) {
	path := filepath.Join(root, chart)
	b, err := os.ReadFile(path)
	if err != nil {
		return Release{}, fmt.Errorf("read release version: %w", err)
	}
	var c struct {
		AppVersion string `json:"appVersion"`
	}
	if err := yaml.Unmarshal(b, &c); err != nil {
		return Release{}, fmt.Errorf("read release version: %s: %w", path, err)
	}
	if !semverCore.MatchString(c.AppVersion) {
		return Release{}, fmt.Errorf("read release version: %s: appVersion %q is not a semantic version X.Y.Z (without v)", path, c.AppVersion)
	}
	return Release{AppVersion: c.AppVersion, Version: "v" + c.AppVersion}, nil
}

// sourceDateEpoch parses SOURCE_DATE_EPOCH (seconds since 1970); empty is 0.
func sourceDateEpoch(s string) (time.Time, error) {
	if s == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q: want a non-negative number of seconds since 1970", s)
	}
	return time.Unix(n, 0).UTC(), nil
}

// goBuild builds the plugin for p into out, statically and without local
// paths, with the version and commit set as the Makefile's build target does.
func goBuild(ctx context.Context, cfg Config, rel Release, p Platform, pkg, out string) error {
	ldflags := "-s -w -X " + versionPackage + ".version=" + rel.Version
	if cfg.Commit != "" {
		ldflags += " -X " + versionPackage + ".gitCommit=" + cfg.Commit
	}
	goCmd := os.Getenv("GO")
	if goCmd == "" {
		goCmd = "go"
	}
	cmd := exec.CommandContext(ctx, goCmd, "build", "-trimpath", "-buildvcs=false", "-ldflags", ldflags, "-o", out, pkg)
	cmd.Dir = cfg.Root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.OS, "GOARCH="+p.Arch)
	cmd.Stdout = cfg.Log
	cmd.Stderr = cfg.Log
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("build %s for %s: %w", pkg, p, err)
	}
	fmt.Fprintf(cfg.Log, "built %s for %s in %s\n", pkg, p, time.Since(start).Round(100*time.Millisecond))
	return nil
}

// binaryName is the plugin's file name on p: kubectl finds plugins by it.
func binaryName(p Platform) string {
	if p.OS == "windows" {
		return "kubectl-iter8.exe"
	}
	return "kubectl-iter8"
}
