package experiment

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm"
)

// conditionEnv is what a task's `if` expression can see of the result so far.
type conditionEnv struct {
	// Metrics maps version → metric → value.
	Metrics map[string]map[string]float64 `expr:"metrics"`
	// SLOs is true when every SLO verdict so far is satisfied.
	SLOs bool `expr:"slos"`
	// Versions lists the versions under test.
	Versions []string `expr:"versions"`
	// Loop is the loop in progress, from 1, of Loops.
	Loop  int `expr:"loop"`
	Loops int `expr:"loops"`

	// unavailable maps version → metric → why a task could not read it, so
	// that a missing value's error can say why.
	unavailable map[string]map[string]string
}

// metricFunc replaces every metrics[version][metric] of an expression, so
// that a value that is not there is an error rather than 0: a typo or a
// backend without data must not turn into a quiet false (or true).
const metricFunc = "_metric"

type condition struct {
	program *vm.Program
}

// compileCondition compiles an `if` expression and checks every version and
// metric it names by constant against versions and the metrics that earlier
// tasks produce (skipped when catalog is incomplete, as then absence proves
// nothing). Problems are returned as one error.
func compileCondition(src string, versions []string, catalog *Catalog) (*condition, error) {
	plain, err := expr.Compile(src, expr.Env(conditionEnv{}), expr.AsBool())
	if err != nil {
		return nil, fmt.Errorf("not a true/false expression over metrics, slos, versions, loop and loops: %v", err)
	}
	root, names := plain.Node(), &nameChecker{versions: versions, catalog: catalog}
	ast.Walk(&root, names)
	if len(names.problems) > 0 {
		return nil, errors.New(strings.Join(names.problems, "; "))
	}
	p, err := expr.Compile(src, expr.Env(conditionEnv{}), expr.AsBool(),
		expr.Patch(metricPatcher{}),
		expr.Function(metricFunc, lookupMetric, new(func(conditionEnv, string, string) float64)))
	if err != nil {
		return nil, fmt.Errorf("not a true/false expression over metrics, slos, versions, loop and loops: %v", err)
	}
	return &condition{program: p}, nil
}

// metricAccess matches metrics[version][metric] (or metrics.version[metric])
// and returns the version and metric nodes.
func metricAccess(n ast.Node) (version, metric ast.Node, ok bool) {
	outer, ok := n.(*ast.MemberNode)
	if !ok || outer.Optional {
		return nil, nil, false
	}
	inner, ok := outer.Node.(*ast.MemberNode)
	if !ok || inner.Optional || !isMetrics(inner.Node) {
		return nil, nil, false
	}
	return inner.Property, outer.Property, true
}

// versionAccess matches metrics[version] and returns the version node.
func versionAccess(n ast.Node) (ast.Node, bool) {
	m, ok := n.(*ast.MemberNode)
	if !ok || !isMetrics(m.Node) {
		return nil, false
	}
	return m.Property, true
}

func isMetrics(n ast.Node) bool {
	id, ok := n.(*ast.IdentifierNode)
	return ok && id.Value == "metrics"
}

func constString(n ast.Node) (string, bool) {
	if s, ok := n.(*ast.StringNode); ok {
		return s.Value, true
	}
	return "", false
}

// nameChecker collects the versions and metrics an expression names by
// constant that the spec does not have.
type nameChecker struct {
	versions []string
	catalog  *Catalog
	problems []string
}

func (c *nameChecker) add(p string) {
	if !slices.Contains(c.problems, p) {
		c.problems = append(c.problems, p)
	}
}

func (c *nameChecker) version(n ast.Node) (string, bool) {
	v, ok := constString(n)
	if !ok {
		return "", false
	}
	if !slices.Contains(c.versions, v) {
		quoted := make([]string, len(c.versions))
		for i, name := range c.versions {
			quoted[i] = strconv.Quote(name)
		}
		c.add(fmt.Sprintf("names version %q, which is not under test (%s)", v, strings.Join(quoted, ", ")))
		return "", false
	}
	return v, true
}

// metric checks a metric named for version (any version when dynamic).
func (c *nameChecker) metric(n ast.Node, version string, dynamic bool) {
	m, ok := constString(n)
	if !ok || c.catalog == nil || c.catalog.Incomplete() {
		return
	}
	switch {
	case dynamic && len(c.catalog.Producers(m)) > 0, !dynamic && c.catalog.Has(version, m):
		return
	case len(c.catalog.Producers(m)) > 0:
		c.add(fmt.Sprintf("names metric %q of version %q, but no earlier task produces it for that version", m, version))
	default:
		known := c.catalog.Known()
		hint := "no earlier task produces any metric"
		if len(known) > 0 {
			hint = "earlier tasks produce " + strings.Join(known, ", ")
		}
		c.add(fmt.Sprintf("names metric %q, which no earlier task produces (%s)", m, hint))
	}
}

// Visit checks every metrics[v][m], metrics[v], "m" in metrics[v] and
// "v" in versions.
func (c *nameChecker) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.MemberNode:
		if vn, mn, ok := metricAccess(n); ok {
			c.versionMetric(vn, mn)
			return
		}
		if vn, ok := versionAccess(n); ok {
			c.version(vn)
		}
	case *ast.BinaryNode:
		if n.Operator != "in" {
			return
		}
		if id, ok := n.Right.(*ast.IdentifierNode); ok && id.Value == "versions" {
			c.version(n.Left)
			return
		}
		if vn, ok := versionAccess(n.Right); ok {
			c.versionMetric(vn, n.Left)
		}
	}
}

// versionMetric checks metric m of version v unless v is a constant naming no version.
func (c *nameChecker) versionMetric(v, m ast.Node) {
	name, known := c.version(v)
	if _, constant := constString(v); known || !constant {
		c.metric(m, name, !constant)
	}
}

// metricPatcher turns metrics[version][metric] into a call of metricFunc
// with the environment, the version and the metric.
type metricPatcher struct{}

func (metricPatcher) Visit(node *ast.Node) {
	vn, mn, ok := metricAccess(*node)
	if !ok {
		return
	}
	ast.Patch(node, &ast.CallNode{
		Callee:    &ast.IdentifierNode{Value: metricFunc},
		Arguments: []ast.Node{&ast.IdentifierNode{Value: "$env"}, vn, mn},
	})
}

// MissingValueError is the error of an `if` that reads a metric that has no
// value (yet) for a version.
type MissingValueError struct {
	Version, Metric string
	// Reason is why a task could not read it, if one said.
	Reason string
}

func (e *MissingValueError) Error() string {
	s := fmt.Sprintf("metrics[%q][%q] has no value", e.Version, e.Metric)
	if e.Reason != "" {
		s += " (unavailable: " + e.Reason + ")"
	}
	return s + `; guard a metric that may be absent with "` + e.Metric + `" in metrics[` + fmt.Sprintf("%q", e.Version) + `] && ...`
}

func lookupMetric(params ...any) (any, error) {
	env, _ := params[0].(conditionEnv)
	version, _ := params[1].(string)
	metric, _ := params[2].(string)
	if v, ok := env.Metrics[version][metric]; ok {
		return v, nil
	}
	return nil, &MissingValueError{Version: version, Metric: metric, Reason: env.unavailable[version][metric]}
}

func (c *condition) eval(r *Result) (bool, error) {
	env := conditionEnv{
		Metrics:     map[string]map[string]float64{},
		SLOs:        r.SLOsSatisfied(),
		Loop:        r.Loop,
		Loops:       r.Loops,
		unavailable: map[string]map[string]string{},
	}
	for _, v := range r.Versions {
		env.Versions = append(env.Versions, v.Name)
		m := map[string]float64{}
		for name, val := range v.Metrics {
			m[name] = val.Value
		}
		env.Metrics[v.Name] = m
		env.unavailable[v.Name] = v.Unavailable
	}
	out, err := expr.Run(c.program, env)
	if err != nil {
		// expr's error carries a source excerpt over several lines; the
		// missing value says all there is to say.
		if mv := (*MissingValueError)(nil); errors.As(err, &mv) {
			return false, mv
		}
		return false, err
	}
	b, _ := out.(bool)
	return b, nil
}
