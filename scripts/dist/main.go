// Command dist builds Iter8's release artefacts without Docker: the release
// archives of the kubectl plugin with their krew manifest (`make dist`), a
// multi-platform OCI image of the static binary (`make image`), and the
// charts, packaged and pushed to an OCI registry (`make charts`).
//
//	go run ./scripts/dist [flags] archives   # dist/*.tar.gz, dist/*.zip, dist/sha256sums.txt, krew/iter8.yaml
//	go run ./scripts/dist [flags] image      # dist/image, an OCI image layout
//	go run ./scripts/dist [flags] charts     # dist/charts/*.tgz, pushed with -push
//
// The version comes from one place, the experiment chart's appVersion: the
// chart's Job pulls <repository>:<appVersion> by default, so the image must
// carry that tag, and the binaries report v<appVersion>. Every timestamp is
// SOURCE_DATE_EPOCH (or 1970-01-01), so the same source and Go toolchain
// give byte-identical archives and image (the chart archives carry helm
// package's own times).
//
// Run it from the module's root; the tests in test/dist run it the same way.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
)

const usage = `usage: go run ./scripts/dist [flags] archives|image|charts

archives: build kubectl-iter8 for every -platforms target into
          <out>/kubectl-iter8_<version>_<os>_<arch>.tar.gz (.zip on windows),
          each holding the binary and LICENSE, and write the krew manifest
          with their sha256 to -manifest; build the helm plugin into
          <out>/helm-iter8-<appVersion>-<os>-<arch>.tar.gz (plugin.yaml,
          bin/helm-iter8, its install hook, LICENSE), signed into .prov
          files with -sign-keyring and -sign-key; list every archive's
          sha256 in <out>/sha256sums.txt.
image:    build kubectl-iter8 for linux/amd64 and linux/arm64 and write one
          multi-platform OCI image layout to <out> (default dist/image),
          named <repository>:<appVersion>.
charts:   package charts/iter8, charts/release and charts/abn, each at the
          version of its Chart.yaml, into <out> (default dist/charts) as
          helm package does, and with -push oci://HOST/PATH push each to
          HOST/PATH/<name>:<version> as helm push does (logins from helm
          registry login; -plain-http for a registry without TLS).

flags:
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "dist:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("dist", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	var cfg Config
	fs.StringVar(&cfg.Root, "root", ".", "the module's root directory")
	fs.StringVar(&cfg.Chart, "chart", "charts/iter8/Chart.yaml", "the chart whose appVersion is the release version (relative to -root)")
	fs.StringVar(&cfg.Out, "out", "", "output directory (default dist for archives, dist/image for image, dist/charts for charts; relative to the working directory)")
	fs.StringVar(&cfg.Manifest, "manifest", "krew/iter8.yaml", "where archives writes the krew manifest (relative to the working directory); empty: do not write one")
	fs.StringVar(&cfg.Commit, "commit", "", "git commit to embed in the binary and the image's labels (optional)")
	fs.StringVar(&cfg.Platforms, "platforms", "", "comma-separated os/arch list (default: the five release targets for archives, linux/amd64,linux/arm64 for image)")
	fs.StringVar(&cfg.Repository, "repository", DefaultRepository, "image repository; the image is named <repository>:<appVersion>")
	fs.StringVar(&cfg.SignKeyring, "sign-keyring", "", "archives: the OpenPGP secret keyring (binary or armoured, not encrypted) whose key signs the helm plugin's archives")
	fs.StringVar(&cfg.SignKey, "sign-key", "", "archives: the user id (or a part of it) of the key in -sign-keyring that signs")
	var cc ChartsConfig
	fs.StringVar(&cc.Push, "push", "", "charts: the OCI registry and path to push the charts to (oci://HOST[:PORT]/PATH)")
	fs.BoolVar(&cc.PlainHTTP, "plain-http", false, "charts: push over HTTP, for a registry without TLS")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return fmt.Errorf("want one command, archives, image or charts; got %q", fs.Args())
	}
	cfg.Log = stderr
	epoch, err := sourceDateEpoch(os.Getenv("SOURCE_DATE_EPOCH"))
	if err != nil {
		return err
	}
	cfg.Time = epoch

	cmd := fs.Arg(0)
	// Flags that only one command reads: refused with the others, rather
	// than ignored.
	owners := map[string]string{"push": "charts", "plain-http": "charts", "sign-keyring": "archives", "sign-key": "archives", "manifest": "archives", "repository": "image"}
	var misplaced error
	fs.Visit(func(f *flag.Flag) {
		if owner, ok := owners[f.Name]; ok && owner != cmd && misplaced == nil && (cmd == "archives" || cmd == "image" || cmd == "charts") {
			misplaced = fmt.Errorf("-%s is for %s, not %s", f.Name, owner, cmd)
		}
	})
	if misplaced != nil {
		return misplaced
	}
	switch cmd {
	case "archives":
		if cfg.Out == "" {
			cfg.Out = "dist"
		}
		res, err := Archives(ctx, cfg)
		if err != nil {
			return err
		}
		for _, a := range res {
			fmt.Fprintf(stdout, "%s  %s\n", a.SHA256, filepath.Join(cfg.Out, a.Name))
			if a.Prov != "" {
				fmt.Fprintf(stdout, "signed %s\n", filepath.Join(cfg.Out, a.Prov))
			}
		}
		fmt.Fprintf(stdout, "wrote %s\n", filepath.Join(cfg.Out, SumsFile))
		if cfg.Manifest != "" {
			fmt.Fprintf(stdout, "wrote %s\n", cfg.Manifest)
		}
		return nil
	case "image":
		if cfg.Out == "" {
			cfg.Out = filepath.Join("dist", "image")
		}
		res, err := Image(ctx, cfg)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s@%s in %s\n", res.Ref, res.Digest, cfg.Out)
		return nil
	case "charts":
		if cfg.Out == "" {
			cfg.Out = filepath.Join("dist", "charts")
		}
		res, err := Charts(cfg, cc)
		if err != nil {
			return err
		}
		for _, c := range res {
			fmt.Fprintf(stdout, "%s  %s\n", c.SHA256, c.Path)
			if c.Ref != "" {
				fmt.Fprintf(stdout, "pushed oci://%s\n", c.Ref)
			}
		}
		return nil
	default:
		fs.Usage()
		return fmt.Errorf("unknown command %q: want archives, image or charts", cmd)
	}
}
