package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"
)

// printData prints v as JSON or YAML, or calls text for the default
// format; it is the one printer of structured output besides report's.
func printData(w io.Writer, output string, v any, text func(io.Writer) error) error {
	switch output {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case "yaml":
		data, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		_, err = w.Write(data)
		return err
	}
	return text(w)
}

// checkOutput refuses an -o value that is not one of formats; "" is the
// default (text).
func checkOutput(verb, output string, formats ...string) error {
	if output == "" || slices.Contains(formats, output) {
		return nil
	}
	return fmt.Errorf("%s: -o: unknown output format %q: want %s", verb, output, strings.Join(formats, " or "))
}
