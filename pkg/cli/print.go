package cli

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/iter8-tools/iter8/pkg/report"
)

// printData prints v as JSON or YAML (report's printer), or calls text
// for the default format.
func printData(w io.Writer, output string, v any, text func(io.Writer) error) error {
	switch f := report.Format(output); f {
	case report.JSON, report.YAML:
		return report.WriteData(w, v, f)
	}
	return text(w)
}

// checkOutput refuses an -o value that is not one of formats; "" is the
// default (text).
func checkOutput(verb, output string, formats ...string) error {
	if output == "" || slices.Contains(formats, output) {
		return nil
	}
	last := len(formats) - 1
	want := formats[last]
	if last > 0 {
		want = strings.Join(formats[:last], ", ") + " or " + want
	}
	return fmt.Errorf("%s: -o: unknown output format %q: want %s", verb, output, want)
}
