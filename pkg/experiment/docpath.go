package experiment

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

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

// valuePathAt finds the value of the JSON document data at a decoder's error
// offset and returns its path, such as tasks[0].with.qps. The offset of a
// mistyped literal is its end; that of a mistyped list or object is just
// past its opening bracket. It reports false when data does not parse.
func valuePathAt(data []byte, offset int64) (string, bool) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var open jsonStack
	best, found := "", false
	prevEnd := int64(0)
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return best, found
		}
		if err != nil {
			return "", false
		}
		end := dec.InputOffset()
		if n := len(open); n > 0 && open[n-1].wantKey && tok != json.Delim('}') {
			open[n-1].key, _ = tok.(string)
			open[n-1].wantKey = false
			prevEnd = end
			continue
		}
		at := prevEnd < offset && offset <= end
		prevEnd = end
		switch d, _ := tok.(json.Delim); d {
		case '[', '{':
			path := open.childPath()
			if at {
				best, found = path, true // mistyped as a whole
			}
			open = append(open, &jsonFrame{list: d == '[', wantKey: d == '{', path: path})
		case ']', '}':
			open = open[:len(open)-1]
			open.valueDone()
		default:
			if at {
				best, found = open.childPath(), true
			}
			open.valueDone()
		}
	}
}

// jsonFrame is a list or an object that valuePathAt is inside of.
type jsonFrame struct {
	list  bool
	index int
	key   string
	// wantKey is set in an object when the next token is a key.
	wantKey bool
	path    string
}

// jsonStack holds the open lists and objects, innermost last.
type jsonStack []*jsonFrame

// childPath is the path of the innermost container's next value.
func (s jsonStack) childPath() string {
	if len(s) == 0 {
		return ""
	}
	f := s[len(s)-1]
	if f.list {
		return f.path + "[" + strconv.Itoa(f.index) + "]"
	}
	if !identifier(f.key) {
		// A map's key, such as a header or metadata name, as
		// field.Path.Key writes it: struct fields are identifiers.
		return f.path + "[" + f.key + "]"
	}
	if f.path == "" {
		return f.key
	}
	return f.path + "." + f.key
}

// valueDone moves the innermost container past one value.
func (s jsonStack) valueDone() {
	if len(s) == 0 {
		return
	}
	if f := s[len(s)-1]; f.list {
		f.index++
	} else {
		f.wantKey = true
	}
}

// identifier reports whether key could be a struct field's JSON name.
func identifier(key string) bool {
	for i, r := range key {
		letter := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '_'
		if !letter && (i == 0 || r < '0' || r > '9') {
			return false
		}
	}
	return key != ""
}
