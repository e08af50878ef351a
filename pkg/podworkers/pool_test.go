package podworkers

import (
	"fmt"
	"testing"
)

func TestParseIndexes(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int
		want string
		err  bool
	}{
		{in: "", n: 4, want: "[]"},
		{in: "2", n: 4, want: "[2]"},
		{in: "0-2,4,6-7", n: 8, want: "[0 1 2 4 6 7]"},
		{in: "0-8", n: 8, err: true},
		{in: "3-1", n: 8, err: true},
		{in: "x", n: 8, err: true},
		{in: "-1", n: 8, err: true},
	} {
		got, err := ParseIndexes(c.in, c.n)
		if (err != nil) != c.err || (err == nil && fmt.Sprint(got) != c.want) {
			t.Errorf("ParseIndexes(%q, %d) = %v, %v; want %s (error %v)", c.in, c.n, got, err, c.want, c.err)
		}
	}
}

func TestParseStart(t *testing.T) {
	if _, err := ParseStart("2026-12-03T07:00:00.5Z"); err != nil {
		t.Error(err)
	}
	if _, err := ParseStart("7am"); err == nil {
		t.Error("ParseStart(7am): want an error")
	}
}
