package notify

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/iter8-tools/iter8/pkg/experiment"
)

// tmpl is a parsed template field.
type tmpl struct {
	// path is the field's path; name is its string, the template's name.
	path *field.Path
	name string
	t    *template.Template
	// secrets are the names passed to {{ secret "NAME" }}.
	secrets []string
}

// funcs are the functions of every template. secret is replaced at run time
// by one that returns the secret's value.
var funcs = template.FuncMap{
	"secret": func(string) (string, error) { return "", errors.New("secrets are looked up at run time") },
	// toJson encodes v for payloads built from templates:
	// {"name": {{ toJson .Experiment }}}.
	"toJson": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
}

// parseTemplate parses a template field with missingkey=error and collects
// the secrets it names; every problem is added to errs, under p. It returns
// nil when the template does not parse.
func parseTemplate(text string, p *field.Path, errs *field.ErrorList) *tmpl {
	name := p.String()
	t, err := template.New(name).Option("missingkey=error").Funcs(funcs).Parse(text)
	if err != nil {
		*errs = append(*errs, field.Invalid(p, field.OmitValueType{}, templateDetail(name, err)))
		return nil
	}
	out := &tmpl{path: p, name: name, t: t}
	for _, tt := range t.Templates() {
		if tt.Tree == nil {
			continue
		}
		names, bad := secretCalls(tt.Root)
		for _, b := range bad {
			*errs = append(*errs, field.Invalid(p, field.OmitValueType{}, b))
		}
		for _, n := range names {
			if fe := experiment.CheckSecretName(n, p); fe != nil {
				*errs = append(*errs, fe)
			} else {
				out.secrets = append(out.secrets, n)
			}
		}
	}
	return out
}

// secretCalls walks a template's tree and returns the names passed to secret.
// A name must be a quoted string, so that decoding knows every secret the
// task needs; other uses are returned as problems.
func secretCalls(root parse.Node) (names, problems []string) {
	var walk func(parse.Node)
	walkBranch := func(b *parse.BranchNode) {
		walk(b.Pipe)
		walk(b.List)
		walk(b.ElseList)
	}
	walk = func(n parse.Node) {
		switch n := n.(type) {
		case *parse.ListNode:
			if n == nil {
				return
			}
			for _, c := range n.Nodes {
				walk(c)
			}
		case *parse.ActionNode:
			walk(n.Pipe)
		case *parse.PipeNode:
			if n == nil {
				return
			}
			for _, c := range n.Cmds {
				walk(c)
			}
		case *parse.CommandNode:
			for i, a := range n.Args {
				id, ok := a.(*parse.IdentifierNode)
				if !ok || id.Ident != "secret" {
					walk(a)
					continue
				}
				var s *parse.StringNode
				if i == 0 && len(n.Args) == 2 {
					s, _ = n.Args[1].(*parse.StringNode)
				}
				if s == nil {
					problems = append(problems, fmt.Sprintf(`write {{ secret "NAME" }} with the name in quotes, not %s`, n))
					return
				}
				names = append(names, s.Text)
				return
			}
		case *parse.ChainNode:
			walk(n.Node)
		case *parse.IfNode:
			walkBranch(&n.BranchNode)
		case *parse.RangeNode:
			walkBranch(&n.BranchNode)
		case *parse.WithNode:
			walkBranch(&n.BranchNode)
		case *parse.TemplateNode:
			walk(n.Pipe)
		}
	}
	walk(root)
	return names, problems
}

// dryRun tries the template on each sample and reports the first problem
// that would fail every run taking that branch: an unknown field or a
// version without metrics. Other execution errors (index out of range, a nil
// FailedTask) depend on the data, so they are left to run time.
func (t *tmpl) dryRun(samples []*Summary) *field.Error {
	for _, s := range samples {
		_, err := t.execute(s, func(string) (string, error) { return "sample-secret", nil })
		if err == nil {
			continue
		}
		msg := err.Error()
		switch {
		case strings.Contains(msg, "can't evaluate field"):
			return field.Invalid(t.path, field.OmitValueType{}, templateDetail(t.name, err))
		case strings.Contains(msg, "map has no entry for key"):
			// .Metrics is the Summary's one map.
			have := slices.Sorted(maps.Keys(s.Metrics))
			for i, v := range have {
				have[i] = strconv.Quote(v)
			}
			known := "no earlier task produces metrics"
			if len(have) > 0 {
				known = "earlier tasks produce metrics for " + strings.Join(have, ", ")
			}
			return field.Invalid(t.path, field.OmitValueType{}, templateDetail(t.name, err)+"; "+known)
		}
	}
	return nil
}

// execute runs the template on s; secret returns a secret's value.
func (t *tmpl) execute(s *Summary, secret func(string) (string, error)) (string, error) {
	c, err := t.t.Clone()
	if err != nil {
		return "", err
	}
	c.Funcs(template.FuncMap{"secret": secret})
	var b strings.Builder
	if err := c.Execute(&b, s); err != nil {
		return "", err
	}
	return b.String(), nil
}

// render runs the template at run time; the error names the field.
func (t *tmpl) render(s *Summary, secret func(string) (string, error)) (string, error) {
	out, err := t.execute(s, secret)
	if err != nil {
		return "", fmt.Errorf("%s: %s", t.name, templateDetail(t.name, err))
	}
	return out, nil
}

// templateDetail words a template error without repeating the template's
// name (which is the field path): "line 1: unexpected ..." or
// "line 1:10: <.Foo>: can't evaluate field Foo in type *notify.Summary".
func templateDetail(name string, err error) string {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "template: "+name+":")
	msg = strings.Replace(msg, fmt.Sprintf("executing %q at ", name), "", 1)
	return "line " + msg
}
