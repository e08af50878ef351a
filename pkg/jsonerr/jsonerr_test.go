package jsonerr

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

type inner struct {
	Weight *int32 `json:"weight"`
}

// embedded makes encoding/json's own path read rules.Inner.weight.
type embedded struct {
	inner `json:",inline"`
	Name  string `json:"name"`
}

type doc struct {
	Spec struct {
		Rules  []struct{ Refs []embedded } `json:"rules"`
		Labels map[string]string           `json:"labels"`
		On     bool                        `json:"on"`
	} `json:"spec"`
}

func TestPathAt(t *testing.T) {
	tests := []struct {
		doc, path, want string
	}{
		{`{"spec":{"rules":[{"Refs":[{"name":"a"},{"name":"b","weight":"heavy"}]}]}}`, "spec.rules[0].Refs[1].weight", "a whole number"},
		{`{"spec":{"rules":[{},{"Refs":[{"weight":2.5}]}]}}`, "spec.rules[1].Refs[0].weight", "a whole number"},
		{`{"spec":{"rules":{"name":"weights"}}}`, "spec.rules", "a list"},
		{`{"spec":{"labels":{"a":"x","app.kubernetes.io/name":3}}}`, "spec.labels[app.kubernetes.io/name]", "a string"},
		{`{"spec":{"labels":[1]}}`, "spec.labels", "an object"},
		{`{"spec":{"on":"yes"}}`, "spec.on", "true or false"},
		{`{"spec":"x"}`, "spec", "an object"},
		{`[]`, "", "an object"},
	}
	for _, tt := range tests {
		var d doc
		err := json.Unmarshal([]byte(tt.doc), &d)
		var te *json.UnmarshalTypeError
		if !errors.As(err, &te) {
			t.Fatalf("%s: decode error %v, want a type error", tt.doc, err)
		}
		if got, ok := PathAt([]byte(tt.doc), te.Offset); got != tt.path || !ok {
			t.Errorf("PathAt(%s, %d) = %q, %v; want %q", tt.doc, te.Offset, got, ok, tt.path)
		}
		if got := Want(te.Type); got != tt.want {
			t.Errorf("%s: Want(%v) = %q, want %q", tt.doc, te.Type, got, tt.want)
		}
	}
}

func TestPathAtNothing(t *testing.T) {
	for _, tt := range []struct {
		doc    string
		offset int64
	}{{`{"a":`, 4}, {`{"a":1}`, 40}} {
		if got, ok := PathAt([]byte(tt.doc), tt.offset); ok {
			t.Errorf("PathAt(%s, %d) = %q, true; want false", tt.doc, tt.offset, got)
		}
	}
}

func TestWantOther(t *testing.T) {
	if got := Want(reflect.TypeFor[func()]()); got != "func()" {
		t.Errorf("Want(func()) = %q, want func()", got)
	}
}
