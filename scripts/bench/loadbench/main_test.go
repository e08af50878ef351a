package main

import (
	"testing"
	"time"
)

func TestParseWrk(t *testing.T) {
	tests := []struct {
		name, out string
		want      measured
		wantErr   bool
	}{
		{
			name: "clean",
			out: `Running 5s test @ http://127.0.0.1:40000/
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   130.00us   50.00us   2.00ms   90.00%
  375475 requests in 5.00s, 27.93MB read
Requests/sec:  75095.00
Transfer/sec:      5.59MB
`,
			want: measured{requests: 375475, elapsed: 5 * time.Second},
		},
		{
			name: "errors",
			out: `  1000 requests in 5.10s, 1.00MB read
  Socket errors: connect 1, read 2, write 0, timeout 3
  Non-2xx or 3xx responses: 4
Requests/sec:    196.08
`,
			want: measured{requests: 1000, errors: 10, elapsed: 5100 * time.Millisecond},
		},
		{name: "no summary", out: "unable to connect to 127.0.0.1:1 Connection refused\n", wantErr: true},
	}
	for _, tc := range tests {
		got, err := parseWrk(tc.out)
		if (err != nil) != tc.wantErr {
			t.Errorf("%s: parseWrk error %v, want error %v", tc.name, err, tc.wantErr)
			continue
		}
		if tc.wantErr {
			continue
		}
		if got.requests != tc.want.requests || got.errors != tc.want.errors || got.elapsed != tc.want.elapsed {
			t.Errorf("%s: parseWrk = %d requests, %d errors in %v; want %d, %d in %v", tc.name,
				got.requests, got.errors, got.elapsed, tc.want.requests, tc.want.errors, tc.want.elapsed)
		}
	}
}

func TestRankValueAndMedian(t *testing.T) {
	sorted := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, tc := range []struct{ p, want float64 }{{0.5, 5}, {0.95, 10}, {0.99, 10}, {0.01, 1}, {0.14, 1}, {0.16, 2}} {
		if got := rankValue(sorted, tc.p); got != tc.want {
			t.Errorf("rankValue(1..10, %v) = %v, want %v", tc.p, got, tc.want)
		}
	}
	if got := median([]float64{3, 1, 2}); got != 2 {
		t.Errorf("median(3, 1, 2) = %v, want 2", got)
	}
	if got := median([]float64{4, 1, 2, 3}); got != 2.5 {
		t.Errorf("median(4, 1, 2, 3) = %v, want 2.5", got)
	}
}

func TestLoopbackURL(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"http://127.0.0.1:8080/", true},
		{"http://[::1]:8080/", true},
		{"http://example.com/", false},
		{"http://10.0.0.1:80/", false},
		{"https://127.0.0.1/", false},
	} {
		_, err := loopbackURL("url", tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("loopbackURL(%q) error %v, want ok=%v", tc.in, err, tc.ok)
		}
	}
}

func TestParseUniform(t *testing.T) {
	lo, hi, err := parseUniform("uniform:2ms-20ms")
	if err != nil || lo != 2*time.Millisecond || hi != 20*time.Millisecond {
		t.Errorf("parseUniform(uniform:2ms-20ms) = %v, %v, %v; want 2ms, 20ms, nil", lo, hi, err)
	}
	for _, bad := range []string{"fixed:5ms", "uniform:20ms-2ms", "uniform:2ms", "uniform:x-y"} {
		if _, _, err := parseUniform(bad); err == nil {
			t.Errorf("parseUniform(%q) succeeded, want an error", bad)
		}
	}
}
