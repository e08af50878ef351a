package experiment

import (
	"fmt"

	"github.com/expr-lang/expr"
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
}

type condition struct {
	program *vm.Program
}

func compileCondition(src string) (*condition, error) {
	p, err := expr.Compile(src, expr.Env(conditionEnv{}), expr.AsBool())
	if err != nil {
		return nil, fmt.Errorf("not a true/false expression over metrics, slos, versions, loop and loops: %v", err)
	}
	return &condition{program: p}, nil
}

func (c *condition) eval(r *Result) (bool, error) {
	env := conditionEnv{
		Metrics: map[string]map[string]float64{},
		SLOs:    r.SLOsSatisfied(),
		Loop:    r.Loop,
		Loops:   r.Loops,
	}
	for _, v := range r.Versions {
		env.Versions = append(env.Versions, v.Name)
		m := map[string]float64{}
		for name, val := range v.Metrics {
			m[name] = val.Value
		}
		env.Metrics[v.Name] = m
	}
	out, err := expr.Run(c.program, env)
	if err != nil {
		return false, err
	}
	b, _ := out.(bool)
	return b, nil
}
