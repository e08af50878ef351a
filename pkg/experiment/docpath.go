package experiment

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// oneDocument returns the one YAML document of data. A file of several
// documents is refused: decoding would otherwise run the first and quietly
// drop the others. Empty documents (a leading "---", comments only) do not
// count.
func oneDocument(data []byte) ([]byte, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return data, nil // the YAML decoder says what is wrong, with a line
		}
		if j, err := yaml.YAMLToJSON(doc); err == nil && bytes.Equal(bytes.TrimSpace(j), []byte("null")) {
			continue
		}
		docs = append(docs, doc)
	}
	switch {
	case len(docs) > 1:
		return nil, fmt.Errorf("experiment spec holds %d YAML documents; one experiment per file", len(docs))
	case len(docs) == 1 && len(bytes.TrimSpace(docs[0])) < len(bytes.TrimSpace(data)):
		// Keep the whole file (and its line numbers) unless empty documents
		// came first: the YAML decoder reads only the first.
		if j, err := yaml.YAMLToJSON(data); err == nil && bytes.Equal(bytes.TrimSpace(j), []byte("null")) {
			return docs[0], nil
		}
	}
	return data, nil
}
