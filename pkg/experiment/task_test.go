package experiment

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// TestReadRegularFile checks that special files are refused before a byte is
// read: a named pipe without a writer (which would block open(2) for ever),
// /dev/zero (which never ends), a directory; and that a file above the
// limit is refused.
func TestReadRegularFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatalf("mkfifo: %v", err)
	}
	good := filepath.Join(dir, "good.json")
	if err := os.WriteFile(good, []byte(`{"a":1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.bin")
	if err := os.WriteFile(big, make([]byte, 1025), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		want string // in the error; "" for none
	}{
		{good, ""},
		{fifo, "a named pipe, not a regular file"},
		{"/dev/zero", "a character device, not a regular file"},
		{dir, "a directory, not a regular file"},
		{big, "larger than 1024 bytes"},
		{filepath.Join(dir, "nothere"), "no such file"},
	}
	for _, tt := range tests {
		done := make(chan struct{})
		var data []byte
		var err error
		go func() {
			defer close(done)
			data, err = ReadRegularFile(tt.name, 1024)
		}()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Fatalf("ReadRegularFile(%s) still blocked after 15s", tt.name)
		}
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("ReadRegularFile(%s) = %v, want no error", tt.name, err)
		case tt.want == "" && string(data) != `{"a":1}`:
			t.Errorf("ReadRegularFile(%s) = %q, want its content", tt.name, data)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("ReadRegularFile(%s) error = %v, want one containing %q", tt.name, err, tt.want)
		}
	}
}

func TestDecodingDurationBounds(t *testing.T) {
	d := &Decoding{}
	p := field.NewPath("with", "timeout")
	for s, ok := range map[string]bool{"": true, "24h": true, "1440m": true, "24h0m1s": false, "25h": false, "100000h": false, "-1s": false} {
		_, fe := d.Duration(s, time.Second, p)
		if (fe == nil) != ok {
			t.Errorf("Duration(%q) error = %v, want ok %v", s, fe, ok)
		}
		if fe != nil && !ok && s == "25h" && !strings.Contains(fe.Error(), "at most 24h") {
			t.Errorf("Duration(%q) error = %v, want it to say at most 24h", s, fe)
		}
	}
}

func TestDecodingPositiveDuration(t *testing.T) {
	d := &Decoding{}
	p := field.NewPath("with", "timeout")
	for _, tt := range []struct {
		s    string
		def  time.Duration
		want time.Duration
		err  string
	}{
		{"", time.Second, time.Second, ""},
		{"", 0, 0, ""}, // an unset optional duration
		{"2s", 0, 2 * time.Second, ""},
		{"0s", time.Second, 0, `with.timeout: Invalid value: "0s": must be above 0`},
		{"0", time.Second, 0, `with.timeout: Invalid value: "0": must be above 0`},
		{"x", time.Second, 0, "want a duration"},
	} {
		got, fe := d.PositiveDuration(tt.s, tt.def, p)
		switch {
		case tt.err == "" && (fe != nil || got != tt.want):
			t.Errorf("PositiveDuration(%q, %v) = %v, %v; want %v", tt.s, tt.def, got, fe, tt.want)
		case tt.err != "" && (fe == nil || !strings.Contains(fe.Error(), tt.err)):
			t.Errorf("PositiveDuration(%q, %v) error = %v, want one containing %q", tt.s, tt.def, fe, tt.err)
		}
	}
}

func TestDecodingURL(t *testing.T) {
	d := &Decoding{}
	p := field.NewPath("with", "url")
	for raw, want := range map[string]string{
		"http://127.0.0.1:8080/":           "",
		"https://example.com/x":            "",
		"http://[::1]:65535/":              "",
		"http://:18080/":                   "no host",
		"http://127.0.0.1:99999/":          "from 1 to 65535",
		"http://127.0.0.1:0/":              "from 1 to 65535",
		"http://127.0.0.1:/":               "port is empty",
		"http://u:hunter2@:1/":             "no host",
		"http://127.0.0.1:99999999999999/": "from 1 to 65535",
	} {
		_, fe := d.URL(raw, p, "http://127.0.0.1:8080/")
		switch {
		case want == "" && fe != nil:
			t.Errorf("URL(%q) = %v, want no error", raw, fe)
		case want != "" && (fe == nil || !strings.Contains(fe.Error(), want)):
			t.Errorf("URL(%q) error = %v, want one containing %q", raw, fe, want)
		case fe != nil && strings.Contains(fe.Error(), "hunter2"):
			t.Errorf("URL(%q) error %v shows the password", raw, fe)
		}
	}
}

func TestCheckHeader(t *testing.T) {
	for _, tt := range []struct{ name, value, want string }{
		{"X-A", "plain value\twith tab", ""},
		{"X-A", "a\x00b", "control characters"},
		{"X-A", "a\r\nX-B: 1", "control characters"},
		{"X-A", "a\x7f", "control characters"},
		{"Bad Header", "x", "token"},
		{"", "x", "token"},
	} {
		if got := CheckHeader(tt.name, tt.value); !strings.Contains(got, tt.want) || (tt.want == "") != (got == "") {
			t.Errorf("CheckHeader(%q, %q) = %q, want %q", tt.name, tt.value, got, tt.want)
		}
	}
}

func TestEnvLogger(t *testing.T) {
	if (&Env{}).Logger() == nil {
		t.Error("Env{}.Logger() = nil, want a logger that discards")
	}
	log := slog.New(slog.DiscardHandler)
	if got := (&Env{Log: log}).Logger(); got != log {
		t.Errorf("Env{Log: l}.Logger() = %p, want l %p", got, log)
	}
}

func TestEnvTime(t *testing.T) {
	at := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	if got := (&Env{Now: func() time.Time { return at }}).Time(); !got.Equal(at) {
		t.Errorf("Env{Now: fixed}.Time() = %v, want %v", got, at)
	}
	if got := (&Env{}).Time(); time.Since(got) > time.Minute || got.IsZero() {
		t.Errorf("Env{}.Time() = %v, want the wall clock's time", got)
	}
}
