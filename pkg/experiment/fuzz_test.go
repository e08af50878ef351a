package experiment_test

import (
	"encoding/json"
	"errors"
	"io/fs"
	"testing"

	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/task"
)

// validFuzzSeeds is how many of fuzzSeeds, from the start, are valid.
const validFuzzSeeds = 3

// fuzzSeeds are valid specs and broken variants of them; the fuzzer mutates
// them into everything else.
var fuzzSeeds = []string{
	// Valid: the three tasks, one unnamed version.
	`apiVersion: iter8.tools/v1
kind: Experiment
metadata:
  name: perf
spec:
  tasks:
  - task: ready
    with: {url: "http://127.0.0.1:8080/healthz", timeout: 5s, interval: 100ms, status: [200, 204]}
  - task: http
    with:
      url: http://127.0.0.1:8080/
      method: post
      headers: {X-Test: "1"}
      payloadFile: payload.json
      contentType: application/json
      duration: 10s
      qps: 20.5
      connections: 4
      warmupNumRequests: 5
      errorRanges: [{lower: 500}]
      percentiles: [99.99, 10]
  - task: assess
    if: "slos && len(versions) == 1"
    with:
      slos:
      - {metric: http/latency-p99.99, upper: 50}
      - {metric: http/error-rate, upper: 0.01, lower: 0}
      rewards: {min: [http/latency-mean]}
`,
	// Valid: several versions with endpoints, JSON.
	`{"apiVersion":"iter8.tools/v1","kind":"Experiment","metadata":{"name":"ab","namespace":"test","labels":{"a":"b"}},
"spec":{"versions":["v1","v2"],"failOnSLOs":true,"tasks":[
{"task":"http","with":{"numRequests":100,"timeout":"2s","endpoints":[
 {"version":"v1","url":"http://127.0.0.1:8081/"},
 {"version":"v2","name":"get","url":"https://127.0.0.1:8082/get"},
 {"version":"v2","name":"post","url":"https://127.0.0.1:8082/post","method":"POST","payload":"{}","qps":5}]}},
{"task":"assess","if":"metrics['v1']['http/error-rate'] < 0.5","with":{
 "slos":[{"metric":"http-get/latency-p50","upper":10,"version":"v2"}],
 "rewards":{"max":["http/request-count"],"min":["http/error-rate"]}}}]}}`,
	// Valid: the smallest spec.
	"apiVersion: iter8.tools/v1\nkind: Experiment\nmetadata: {name: a}\nspec: {tasks: [{task: ready, with: {url: 'http://a/'}}]}\n",
	// Broken variants.
	"apiVersion: iter8.tools/v1\nkind: Experiment\nmetadata: {name: a}\nspec: {tasks: [{task: nope}]}\n",
	"apiVersion: iter8.tools/v1\nkind: Experiment\nmetadata: {name: a}\nspec: {tasks: []}\nextra: 1\n",
	"apiVersion: iter8.tools/v1\nkind: Experiment\nmetadata: {name: a}\nspec: {tasks: [{task: http, with: {url: 'http://a/', qps: -1, connections: 0, duration: 5 parsecs, numRequests: 3}}]}\n",
	"apiVersion: iter8.tools/v1\nkind: Experiment\nmetadata: {name: a}\nspec: {tasks: [{task: http, with: {url: 'ftp://a/', qps: fast, headers: {'a b': \"x\\ny\"}}}]}\n",
	"apiVersion: iter8.tools/v1\nkind: Experiment\nmetadata: {name: a}\nspec: {versions: [a, a, 'b c'], tasks: [{task: http, with: {endpoints: [{version: z, url: 'http://a/'}, {url: 'http://a/'}]}}]}\n",
	"apiVersion: iter8.tools/v1\nkind: Experiment\nmetadata: {name: a}\nspec: {tasks: [{task: http, if: 'metrics[[', with: {url: 'http://a/', payloadFile: missing.json}}, {task: assess, with: {slos: [{metric: http/error-rate}, {metric: grpc/x, upper: 1, lower: 2}], rewards: {max: [x/y]}}}]}\n",
	"apiVersion: iter8.tools/v1\nkind: Experiment\nmetadata: {name: a}\nspec: {tasks: [{task: http, with: {url: 'http://a/', errorRanges: [{}, {lower: 600, upper: 50}], percentiles: [0, 100, -1]}}]}\n",
	"apiVersion: iter8.tools/v1\nkind: Experiment\nmetadata: {name: a}\nspec: {tasks: [{task: http, with: {url: 'http://a/', qps: 1, qps: 2}}]}\n",
	"apiVersion: iter8.tools/v2\nkind: Job\nmetadata: {}\nspec: {tasks: [{task: ready, with: [1, 2]}]}\n",
	"apiVersion: iter8.tools/v1\nkind: Experiment\nmetadata: {name: a}\nspec: {tasks: [{task: ready, with: {url: 'http://a/'}}\n",
	"spec: 5\n",
	"a: &a [*a, *a]\n",
	"[]",
	"null",
	"",
}

// fuzzReadFile stands in for the spec's folder: payload.json exists, nothing
// else does.
func fuzzReadFile(name string) ([]byte, error) {
	if name == "payload.json" {
		return []byte(`{"hello":"world"}`), nil
	}
	return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
}

// FuzzDecode feeds arbitrary bytes to Decode with every task registered. It
// must never panic; it returns a plan or an error, never both or neither; a
// plan has a decoded task for every spec task; and a plan's experiment,
// written out as JSON, decodes again to the same number of tasks.
func FuzzDecode(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	opts := experiment.DecodeOptions{Registry: task.Registry(), ReadFile: fuzzReadFile}
	f.Fuzz(func(t *testing.T, data []byte) {
		plan, err := experiment.Decode(data, opts)
		switch {
		case err != nil && plan != nil:
			t.Fatalf("Decode returned a plan and an error: %v", err)
		case err != nil:
			if err.Error() == "" {
				t.Fatalf("Decode returned an empty error")
			}
			var ve *experiment.ValidationError
			if errors.As(err, &ve) && len(ve.Errs) == 0 {
				t.Fatalf("Decode returned a ValidationError listing no problems")
			}
			return
		case plan == nil:
			t.Fatalf("Decode returned neither a plan nor an error")
		}

		exp := plan.Experiment
		if exp.APIVersion != experiment.APIVersion || exp.Kind != experiment.Kind || exp.Metadata.Name == "" {
			t.Fatalf("Decode accepted apiVersion %q, kind %q, name %q", exp.APIVersion, exp.Kind, exp.Metadata.Name)
		}
		if len(exp.Spec.Tasks) == 0 || len(plan.Tasks) != len(exp.Spec.Tasks) {
			t.Fatalf("plan has %d tasks for %d in the spec", len(plan.Tasks), len(exp.Spec.Tasks))
		}
		for i, pt := range plan.Tasks {
			if pt.Task == nil {
				t.Fatalf("plan task %d (%s) has no decoded task", i, pt.Spec.Task)
			}
		}

		again, err := json.Marshal(exp)
		if err != nil {
			t.Fatalf("encode the accepted experiment: %v", err)
		}
		plan2, err := experiment.Decode(again, opts)
		if err != nil {
			t.Fatalf("the accepted experiment, written as JSON, does not decode: %v\ninput: %q\nJSON: %s", err, data, again)
		}
		if len(plan2.Tasks) != len(plan.Tasks) {
			t.Fatalf("the accepted experiment, written as JSON, has %d tasks, want %d", len(plan2.Tasks), len(plan.Tasks))
		}
	})
}

// TestFuzzSeedsDecode keeps the valid seeds valid, so that the fuzzer starts
// from specs that reach every task's decoder and the round trip.
func TestFuzzSeedsDecode(t *testing.T) {
	opts := experiment.DecodeOptions{Registry: task.Registry(), ReadFile: fuzzReadFile}
	for i, s := range fuzzSeeds[:validFuzzSeeds] {
		if _, err := experiment.Decode([]byte(s), opts); err != nil {
			t.Errorf("seed %d does not decode: %v", i, err)
		}
	}
	for i, s := range fuzzSeeds[validFuzzSeeds:] {
		if _, err := experiment.Decode([]byte(s), opts); err == nil {
			t.Errorf("broken seed %d decodes", validFuzzSeeds+i)
		}
	}
}
