// Package jsonerr lets a JSON type error name what the user wrote: the path
// of the mistyped value with its list indexes (spec.rules[2].weight, where
// encoding/json says spec.rules.BackendRef.weight, with an embedded Go
// struct and no index), and the kind of value wanted, in words rather than
// Go types.
package jsonerr

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
)

// PathAt returns the path of the value in the JSON document data at a
// decoder's error offset. The offset of a mistyped literal is its end, that
// of a mistyped list or object just past its opening bracket. A key that
// could not be a struct field's JSON name (a label, a header) is written in
// brackets, as field.Path.Key writes it: metadata.labels[app.kubernetes.io/name].
// It reports false when data does not parse or holds no value there.
func PathAt(data []byte, offset int64) (string, bool) {
	type frame struct {
		path string // the container's own
		list bool
		// index is the current element's, in a list; key the current
		// member's, in an object, unless wantKey says a key comes next.
		index   int
		key     string
		wantKey bool
	}
	var stack []*frame
	child := func() string {
		if len(stack) == 0 {
			return ""
		}
		f := stack[len(stack)-1]
		switch {
		case f.list:
			return f.path + "[" + strconv.Itoa(f.index) + "]"
		case !identifier(f.key):
			return f.path + "[" + f.key + "]"
		case f.path == "":
			return f.key
		}
		return f.path + "." + f.key
	}
	// done moves the enclosing container past one value.
	done := func() {
		if len(stack) == 0 {
			return
		}
		if f := stack[len(stack)-1]; f.list {
			f.index++
		} else {
			f.wantKey = true
		}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	prev := int64(0)
	for {
		tok, err := dec.Token()
		if err != nil {
			return "", false
		}
		end := dec.InputOffset()
		d, _ := tok.(json.Delim)
		if n := len(stack); n > 0 && stack[n-1].wantKey && d != '}' {
			stack[n-1].key, _ = tok.(string)
			stack[n-1].wantKey = false
			prev = end
			continue
		}
		switch d {
		case ']', '}':
			stack = stack[:len(stack)-1]
			done()
		default:
			path := child()
			if prev < offset && offset <= end {
				return path, true
			}
			if d == '[' || d == '{' {
				stack = append(stack, &frame{path: path, list: d == '[', wantKey: d == '{'})
			} else {
				done()
			}
		}
		prev = end
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

// Want names the JSON values that decode into t: "a whole number", "a
// list", and so on; Go's name of t for anything else.
func Want(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return t.String()
}
