package report

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"io/fs"
	"log/slog"
	"strings"
	"testing"
	"testing/fstest"
)

// gzipped compresses s as make plotly does (best compression, no name or
// time).
func gzipped(t *testing.T, s string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zw.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestReadPlotly: an archive decompresses whole; no archive is no plotly.js
// and no error; every kind of damage is an error naming the file, never a
// panic or a part of the script.
func TestReadPlotly(t *testing.T) {
	js := strings.Repeat("/*! plotly.js */ var Plotly = {};\n", 1000)
	good := gzipped(t, js)
	with := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }

	got, err := readPlotly(fstest.MapFS{plotlyAsset: {Data: good}}, plotlyAsset)
	if err != nil || got != js {
		t.Fatalf("good archive: %d bytes, error %v; want %d bytes", len(got), err, len(js))
	}
	got, err = readPlotly(fstest.MapFS{"assets/README.md": {Data: []byte("x")}}, plotlyAsset)
	if err != nil || got != "" {
		t.Fatalf("no archive: %q, error %v; want none and no error", got, err)
	}
	// A wrong size in the trailer only misleads the preallocation; the
	// checksum still fails it.
	for name, data := range map[string][]byte{
		"empty":          {},
		"not gzip":       []byte(js),
		"header only":    good[:10],
		"truncated":      good[:len(good)/2],
		"no trailer":     good[:len(good)-8],
		"bad checksum":   with(func(b []byte) []byte { b[len(b)-8] ^= 1; return b }),
		"flipped data":   with(func(b []byte) []byte { b[len(b)/2] ^= 0x40; return b }),
		"huge size":      with(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[len(b)-4:], 0xffffffff); return b }),
		"trailing bytes": append(bytes.Clone(good), "garbage!"...),
		"nothing inside": gzipped(t, ""),
	} {
		got, err := readPlotly(fstest.MapFS{plotlyAsset: {Data: data}}, plotlyAsset)
		if err == nil || got != "" {
			t.Errorf("%s: %d bytes, error %v; want an error", name, len(got), err)
			continue
		}
		if !strings.Contains(err.Error(), plotlyAsset) {
			t.Errorf("%s: error %q does not name %s", name, err, plotlyAsset)
		}
	}
}

// TestLoadPlotlyCorruptLogs: a corrupt archive gives tables and a warning
// saying why.
func TestLoadPlotlyCorruptLogs(t *testing.T) {
	var logs bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&logs, nil)))
	defer slog.SetDefault(prev)

	if got := loadPlotly(fstest.MapFS{plotlyAsset: {Data: []byte("not gzip")}}); got != "" {
		t.Errorf("corrupt archive: %d bytes of plotly.js, want none", len(got))
	}
	if out := logs.String(); !strings.Contains(out, "tables instead of plots") || !strings.Contains(out, plotlyAsset) {
		t.Errorf("log %q does not say that and why the report has tables", out)
	}
	logs.Reset()
	if got := loadPlotly(fstest.MapFS{}); got != "" || logs.Len() != 0 {
		t.Errorf("no archive: %d bytes, log %q; want neither", len(got), logs.String())
	}
}

// TestEmbeddedAssets: the binary embeds plotly.js only compressed, never a
// plotly.min.js an older build left in the folder, and the archive, when
// there is one, decompresses to plotly.js.
func TestEmbeddedAssets(t *testing.T) {
	err := fs.WalkDir(assets, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && path != "assets/README.md" && path != plotlyAsset {
			t.Errorf("embedded %s: only README.md and %s belong in the binary", path, plotlyAsset)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Stat(assets, plotlyAsset); err != nil {
		t.Skipf("no %s in this build (make plotly): %v", plotlyAsset, err)
	}
	js, err := readPlotly(assets, plotlyAsset)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(js[:min(len(js), 1000)], "plotly.js") || !HasPlotly() {
		t.Errorf("embedded archive decompresses to %d bytes not starting as plotly.js: %.100q", len(js), js)
	}
}
