package experiment

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/iter8-tools/iter8/pkg/jsonerr"
)

// APIVersion and Kind identify an experiment spec.
const (
	APIVersion = "iter8.tools/v1"
	Kind       = "Experiment"
)

// Experiment is the spec of an experiment as written by a user or rendered
// from the chart.
type Experiment struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Metadata   Metadata `json:"metadata"`
	Spec       Spec     `json:"spec"`
}

// Metadata names the experiment.
type Metadata struct {
	Name      string            `json:"name"`
	Namespace string            `json:"namespace,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
}

// Spec lists the versions under test and the tasks to run.
type Spec struct {
	// Versions names the versions under test; when empty there is one
	// unnamed version.
	Versions []string `json:"versions,omitempty"`
	// FailOnSLOs makes an unmet SLO fail the run (its exit status), as release
	// gates need; otherwise an unmet SLO is a verdict in the result.
	FailOnSLOs bool `json:"failOnSLOs,omitempty"`
	// Loops repeats the tasks this many times in one run (1 when unset);
	// Interval is the time from the start of one loop to the start of the
	// next, such as 30s (none when unset).
	Loops    int    `json:"loops,omitempty"`
	Interval string `json:"interval,omitempty"`
	// FailedLoops is what a loop with a failed task does to the run:
	// FailedLoopsStop (the default) ends it; FailedLoopsContinue runs the
	// next loop, for long-running experiments whose backends may be down
	// for a loop (the run then fails only if its last loop failed).
	FailedLoops string `json:"failedLoops,omitempty"`
	// Tasks run in order.
	Tasks []TaskSpec `json:"tasks"`
}

// TaskSpec is one entry of spec.tasks.
type TaskSpec struct {
	// Task is the registered name of the task, such as http or assess.
	Task string `json:"task"`
	// If is an optional expression over the result so far; the task is
	// skipped when it is false.
	If string `json:"if,omitempty"`
	// With holds the task's inputs, decoded strictly by the task.
	With json.RawMessage `json:"with,omitempty"`
}

// VersionNames returns the versions under test: spec.versions, or one
// unnamed version.
func (s *Spec) VersionNames() []string {
	if len(s.Versions) == 0 {
		return []string{""}
	}
	return s.Versions
}

// The values of spec.failedLoops.
const (
	FailedLoopsStop     = "stop"
	FailedLoopsContinue = "continue"
)

// MaxLoops bounds spec.loops: a run is one process, and a loop is worth at
// least seconds of load, so this is days of looping.
const MaxLoops = 100000

// Plan is a decoded and fully validated experiment, ready to run.
type Plan struct {
	Experiment Experiment
	Tasks      []PlannedTask
	// Loops (1 to MaxLoops) and Interval (not negative) come from the spec;
	// a caller may override them (run --loops, --interval).
	Loops    int
	Interval time.Duration
}

// PlannedTask is a task with its decoded inputs and compiled condition.
type PlannedTask struct {
	Spec      TaskSpec
	Task      Task
	condition *condition
}

// DecodeOptions are what decoding needs beyond the spec itself.
type DecodeOptions struct {
	// Registry maps task names to their decoders.
	Registry *Registry
	// ReadFile reads files that a spec names (such as a payload file),
	// relative to the spec's folder. Nil means files cannot be read.
	ReadFile func(name string) ([]byte, error)
	// Loops and Interval, when set, replace the spec's (run --loops and
	// --interval), before the tasks check them.
	Loops    *int
	Interval *time.Duration
}

// Decode parses a YAML or JSON spec strictly and validates all of it. The
// error lists every problem with its field path.
func Decode(data []byte, opts DecodeOptions) (*Plan, error) {
	data, err := oneDocument(data)
	if err != nil {
		return nil, err
	}
	jsonData, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, fmt.Errorf("experiment spec is not valid YAML or JSON: %w", err)
	}
	switch trimmed := bytes.TrimSpace(jsonData); {
	case bytes.Equal(trimmed, []byte("null")):
		return nil, errors.New("experiment spec is empty")
	case len(trimmed) == 0 || trimmed[0] != '{':
		return nil, errors.New("experiment spec must be an object with apiVersion, kind, metadata and spec")
	}
	var exp Experiment
	errs := DecodeStrict(jsonData, &exp, nil)
	// Anything but an unknown or duplicate field means the spec's shape is
	// wrong, and what was decoded cannot be trusted.
	if slices.ContainsFunc(errs, func(e *field.Error) bool {
		return e.Type != field.ErrorTypeNotSupported && e.Type != field.ErrorTypeDuplicate
	}) {
		return nil, &ValidationError{Errs: errs}
	}
	plan, compileErrs := compile(exp, opts)
	errs = append(errs, compileErrs...)
	if len(errs) > 0 {
		return nil, &ValidationError{Errs: errs}
	}
	return plan, nil
}

// ValidationError lists every problem found in a spec, each with its path.
type ValidationError struct {
	Errs field.ErrorList
}

func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Errs))
	for i, fe := range e.Errs {
		lines[i] = fe.Error()
		// Without a value to show, the type's name ("Invalid value") says
		// nothing the detail does not.
		if fe.BadValue == (field.OmitValueType{}) && fe.Detail != "" &&
			(fe.Type == field.ErrorTypeInvalid || fe.Type == field.ErrorTypeTypeInvalid || fe.Type == field.ErrorTypeNotSupported) {
			lines[i] = fe.Field + ": " + fe.Detail
		}
	}
	if len(lines) == 1 {
		return lines[0]
	}
	return fmt.Sprintf("%d problems:\n  - %s", len(lines), strings.Join(lines, "\n  - "))
}

// releaseName is Helm's rule for a release's name (chartutil's
// ValidateReleaseName, which this package cannot import: it pulls in
// client-go); an experiment's name is its release's. pkg/action's tests pin
// the two together.
var releaseName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)

// NameRule says what an experiment's (its release's) name may be.
const NameRule = "must be at most 53 lowercase letters, digits, '-' and '.', starting and ending with a letter or digit"

// ValidName reports whether name may name an experiment and its release.
func ValidName(name string) bool {
	return len(name) <= 53 && releaseName.MatchString(name)
}

func compile(exp Experiment, opts DecodeOptions) (*Plan, field.ErrorList) {
	var errs field.ErrorList
	if exp.APIVersion != APIVersion {
		errs = append(errs, field.NotSupported(field.NewPath("apiVersion"), exp.APIVersion, []string{APIVersion}))
	}
	if exp.Kind != Kind {
		errs = append(errs, field.NotSupported(field.NewPath("kind"), exp.Kind, []string{Kind}))
	}
	namePath := field.NewPath("metadata", "name")
	switch {
	case exp.Metadata.Name == "":
		errs = append(errs, field.Required(namePath, "an experiment needs a name"))
	case !ValidName(exp.Metadata.Name):
		errs = append(errs, field.Invalid(namePath, exp.Metadata.Name, NameRule))
	}

	specPath := field.NewPath("spec")
	seen := map[string]bool{}
	for i, v := range exp.Spec.Versions {
		p := specPath.Child("versions").Index(i)
		switch {
		case v == "":
			errs = append(errs, field.Required(p, "a listed version needs a name"))
		case seen[v]:
			errs = append(errs, field.Duplicate(p, v))
		case !ValidVersionName(v):
			errs = append(errs, field.Invalid(p, v, VersionNameRule))
		}
		seen[v] = true
	}

	plan := &Plan{Experiment: exp, Loops: cmp.Or(exp.Spec.Loops, 1)}
	if exp.Spec.Interval != "" {
		d, err := time.ParseDuration(exp.Spec.Interval)
		if err != nil {
			errs = append(errs, field.Invalid(specPath.Child("interval"), exp.Spec.Interval, "a duration such as 30s or 5m"))
		}
		plan.Interval = d
	}
	if opts.Loops != nil {
		plan.Loops = *opts.Loops
	}
	if opts.Interval != nil {
		plan.Interval = *opts.Interval
	}
	if plan.Loops < 1 || plan.Loops > MaxLoops {
		errs = append(errs, field.Invalid(specPath.Child("loops"), plan.Loops, fmt.Sprintf("must be from 1 to %d", MaxLoops)))
	}
	if plan.Interval < 0 {
		errs = append(errs, field.Invalid(specPath.Child("interval"), plan.Interval.String(), "must not be negative"))
	}
	if f := exp.Spec.FailedLoops; f != "" && f != FailedLoopsStop && f != FailedLoopsContinue {
		errs = append(errs, field.NotSupported(specPath.Child("failedLoops"), f, []string{FailedLoopsStop, FailedLoopsContinue}))
	}
	return plan, append(errs, plan.compileTasks(opts, specPath.Child("tasks"))...)
}

// compileTasks decodes the spec's tasks in order, so that each one's decoder
// and condition see the metrics that the tasks before it produce.
func (plan *Plan) compileTasks(opts DecodeOptions, path *field.Path) field.ErrorList {
	spec := plan.Experiment.Spec
	var errs field.ErrorList
	if len(spec.Tasks) == 0 {
		errs = append(errs, field.Required(path, "an experiment needs at least one task"))
	}
	registry := cmp.Or(opts.Registry, NewRegistry())
	catalog := newCatalog(spec.VersionNames())
	for i, ts := range spec.Tasks {
		p := path.Index(i)
		pt := PlannedTask{Spec: ts}
		if ts.If != "" {
			cond, err := compileCondition(ts.If, spec.VersionNames(), catalog)
			if err != nil {
				errs = append(errs, field.Invalid(p.Child("if"), ts.If, err.Error()))
			}
			pt.condition = cond
		}
		decode, ok := registry.decoders[ts.Task]
		if !ok {
			if ts.Task == "" {
				errs = append(errs, field.Required(p.Child("task"), "name the task: one of "+strings.Join(registry.Names(), ", ")))
			} else {
				errs = append(errs, field.NotSupported(p.Child("task"), ts.Task, registry.Names()))
			}
			continue
		}
		task, taskErrs := decode(&Decoding{
			With:     ts.With,
			Path:     p.Child("with"),
			Versions: spec.VersionNames(),
			Loops:    max(plan.Loops, 1),
			Interval: plan.Interval,
			Metrics:  catalog,
			ReadFile: opts.ReadFile,
		})
		errs = append(errs, taskErrs...)
		if len(taskErrs) > 0 {
			catalog.incomplete = true
		}
		pt.Task = task
		plan.Tasks = append(plan.Tasks, pt)
	}
	return errs
}

// DecodeStrict decodes JSON into v and reports unknown, duplicate and
// mistyped fields under path (nil for the document root).
func DecodeStrict(data []byte, v any, path *field.Path) field.ErrorList {
	if len(bytes.TrimSpace(data)) == 0 {
		data = []byte("{}")
	}
	strictErrs, err := sigsjson.UnmarshalStrict(data, v)
	var errs field.ErrorList
	if err != nil {
		errs = append(errs, typeError(err, data, reflect.TypeOf(v), path))
	}
	for _, se := range strictErrs {
		msg := se.Error()
		fe, _ := se.(sigsjson.FieldError)
		switch {
		case fe != nil && strings.Contains(msg, "unknown field"):
			errs = append(errs, &field.Error{Type: field.ErrorTypeNotSupported, Field: join(path, fe.FieldPath()),
				BadValue: field.OmitValueType{}, Detail: "unknown field"})
		case fe != nil && strings.Contains(msg, "duplicate field"):
			errs = append(errs, &field.Error{Type: field.ErrorTypeDuplicate, Field: join(path, fe.FieldPath()), BadValue: field.OmitValueType{}})
		default:
			errs = append(errs, field.Invalid(path, nil, msg))
		}
	}
	return errs
}

// typeError turns a JSON decoding error into a field error that names the
// field and the expected type, without Go type names where possible. The
// field is found in data by the error's offset, so that it has its list
// indexes (spec.tasks[2].with, not spec.tasks.with); the decoder's dotted
// path of Go fields is the fallback.
func typeError(err error, data []byte, target reflect.Type, path *field.Path) *field.Error {
	rv := reflect.ValueOf(err)
	if rv.Kind() == reflect.Pointer && rv.Elem().Kind() == reflect.Struct {
		e := rv.Elem()
		f, val, typ := e.FieldByName("Field"), e.FieldByName("Value"), e.FieldByName("Type")
		if f.IsValid() && val.IsValid() && typ.IsValid() && f.Kind() == reflect.String {
			want := "a value of another type"
			if t, ok := typ.Interface().(reflect.Type); ok && t != nil {
				want = jsonerr.Want(t)
			}
			at := jsonPath(target, f.String())
			if off := e.FieldByName("Offset"); off.IsValid() && off.CanInt() {
				if p, ok := jsonerr.PathAt(data, off.Int()); ok {
					at = p
				}
			}
			return &field.Error{Type: field.ErrorTypeTypeInvalid, Field: join(path, at),
				BadValue: field.OmitValueType{}, Detail: fmt.Sprintf("got %s, want %s", val.String(), want)}
		}
	}
	if ok, off := sigsjson.SyntaxErrorOffset(err); ok {
		return field.Invalid(path, nil, fmt.Sprintf("malformed JSON at byte %d: %v", off, err))
	}
	return field.Invalid(path, nil, err.Error())
}

// jsonPath rewrites a decoder's dotted field path in JSON names, leaving out
// embedded structs, which have no name of their own in JSON.
func jsonPath(t reflect.Type, dotted string) string {
	var out []string
	for _, seg := range strings.Split(dotted, ".") {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array || t.Kind() == reflect.Map {
			t = t.Elem()
		}
		if t.Kind() == reflect.Struct {
			if f, ok := jsonField(t, seg); ok {
				t = f.Type
			} else if f, ok := t.FieldByName(seg); ok && f.Anonymous {
				t = f.Type // an embedded struct: its fields are promoted
				continue
			}
		}
		out = append(out, seg)
	}
	return strings.Join(out, ".")
}

// jsonField finds the field that decodes the JSON key name, promoted ones
// included.
func jsonField(t reflect.Type, name string) (reflect.StructField, bool) {
	for _, f := range reflect.VisibleFields(t) {
		tag := strings.Split(f.Tag.Get("json"), ",")[0]
		if tag == name || (tag == "" && f.Name == name && !f.Anonymous) {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func join(path *field.Path, sub string) string {
	if path == nil {
		return sub
	}
	if sub == "" {
		return path.String()
	}
	return path.String() + "." + sub
}
