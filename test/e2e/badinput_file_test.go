package e2e

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// overMaxFile is one byte above the 16 MiB bound on files that a spec names.
var overMaxFile = strings.Repeat("x", 16<<20+1)

// badFileInputs are special and oversized files named by a spec, found by
// the bad-input hunt of issue 13.
var badFileInputs = []badInput{
	{
		name:  "file/payloadFile above 16 MiB",
		spec:  httpHead + "      payloadFile: big.json\n",
		files: map[string]string{"big.json": overMaxFile},
		want:  []string{`spec.tasks[0].with.payloadFile`, `big.json`, `16 MiB`},
	},
	{
		name: "file/payloadFile is /dev/zero",
		spec: httpHead + "      payloadFile: /dev/zero\n",
		want: []string{`spec.tasks[0].with.payloadFile`, `/dev/zero is a character device, not a regular file`},
	},
	{
		name: "file/payloadFile is a directory",
		spec: httpHead + "      payloadFile: .\n",
		want: []string{`spec.tasks[0].with.payloadFile`},
	},
	{
		name:  "file/grpc rootCert above 16 MiB",
		spec:  strings.Replace(grpcHead, "      insecure: true\n", "", 1) + "      rootCert: ca.pem\n",
		files: map[string]string{"ca.pem": overMaxFile},
		want:  []string{`spec.tasks[0].with.rootCert`, `16 MiB`},
	},
}

// TestBadInputFIFO names a named pipe with no writer as a payload file:
// opening it for reading used to block for ever (deaf to Ctrl-C and
// SIGTERM). It must be refused at once, as not a regular file, with no
// request sent. iter8 fails the test if the command runs past its timeout.
func TestBadInputFIFO(t *testing.T) {
	tg := newTarget(t)
	dir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, "body.json"), 0o600); err != nil {
		t.Fatalf("mkfifo: %v", err)
	}
	writeFile(t, dir, "spec.yaml", strings.ReplaceAll(httpHead, "{{URL}}", tg.url())+"      payloadFile: body.json\n")

	out := iter8(t, dir, "run", "-f", "spec.yaml")

	if out.code != 2 {
		t.Errorf("exit code %d, want 2\n%s", out.code, out)
	}
	for _, w := range []string{`spec.tasks[0].with.payloadFile`, `named pipe`} {
		if !strings.Contains(out.stderr, w) {
			t.Errorf("stderr does not name %q\n%s", w, out)
		}
	}
	if n := tg.requests.Load(); n != 0 {
		t.Errorf("the target got %d requests, want 0\n%s", n, out)
	}
	if files := resultFiles(t, dir); len(files) > 0 {
		t.Errorf("result files were written: %v\n%s", files, out)
	}
	checkNoCrash(t, out)
}

// TestSpecMustBeARegularFile: `run -f` on a named pipe or a device ends at
// once with exit 2 instead of hanging or reading forever.
func TestSpecMustBeARegularFile(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, "pipe.yaml"), 0o600); err != nil {
		t.Fatalf("mkfifo: %v", err)
	}
	for spec, want := range map[string]string{"pipe.yaml": "named pipe", "/dev/zero": "character device"} {
		out := iter8(t, dir, "run", "-f", spec)
		if out.code != 2 || !strings.Contains(out.stderr, want) {
			t.Errorf("run -f %s: want exit 2 naming a %s\n%s", spec, want, out)
		}
		checkNoCrash(t, out)
	}
}
