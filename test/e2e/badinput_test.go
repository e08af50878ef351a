package e2e

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// specHead is the start of a spec whose first task waits for the test's
// target ({{URL}}); a case appends its own tasks after it.
const specHead = `apiVersion: iter8.tools/v1
kind: Experiment
metadata:
  name: bad
spec:
  tasks:
  - task: ready
    with:
      url: "{{URL}}"
      timeout: 2s
`

// loadHead is the start of a spec whose first task sends load to the test's
// target for a long time: if validation came after it, the test would see
// requests and run for seconds.
const loadHead = httpHead + "      duration: 20s\n"

// twoVersionHead is loadHead with two versions, each with an endpoint.
const twoVersionHead = `apiVersion: iter8.tools/v1
kind: Experiment
metadata:
  name: bad
spec:
  versions: [v1, v2]
  tasks:
  - task: http
    with:
      duration: 20s
      endpoints:
      - {version: v1, url: "{{URL}}"}
      - {version: v2, url: "{{URL}}"}
`

// badInput is one malformed spec (run -f spec.yaml) or value set (launch
// --local with args, and values.yaml when values is set).
type badInput struct {
	name string
	// spec is written to spec.yaml and run with `run -f spec.yaml`.
	spec string
	// launch are the arguments after `launch --local`.
	launch []string
	// values is written to values.yaml for `launch --local -f values.yaml`.
	values string
	// files are written beside the spec.
	files map[string]string
	// want are substrings that stderr must contain: the field path, and
	// where it helps, the offending value.
	want []string
}

var badInputs = []badInput{
	// Specs, run with `run -f`.
	{
		name: "spec/metrics unknown provider",
		spec: loadHead + `  - task: metrics
    with: {provider: prometheos, endpoint: "{{URL}}", queries: [{name: up, query: up}]}
`,
		want: []string{`spec.tasks[1].with.provider`, `"prometheos"`},
	},
	{
		name: "spec/metrics template does not parse",
		spec: loadHead + `  - task: metrics
    with: {provider: prometheus, endpoint: "{{URL}}", queries: [{name: up, query: 'up{app="{{ .app "}'}]}
`,
		want: []string{`spec.tasks[1].with.queries[0].query`},
	},
	{
		name: "spec/metrics template does not render",
		spec: loadHead + `  - task: metrics
    with: {provider: istio, endpoint: "{{URL}}", values: {namespace: ns}}
`,
		want: []string{`spec.tasks[1].with.values`, `workload`},
	},
	{
		name: "spec/metrics jq does not compile",
		spec: loadHead + `  - task: metrics
    with: {provider: prometheus, endpoint: "{{URL}}", queries: [{name: up, query: up, jq: '.data | ]'}]}
`,
		want: []string{`spec.tasks[1].with.queries[0].jq`},
	},
	{
		name: "spec/unknown task",
		spec: specHead + `  - task: nope
`,
		want: []string{`spec.tasks[1].task`, `"nope"`},
	},
	{
		name: "spec/empty task name",
		spec: specHead + `  - with: {url: "{{URL}}"}
`,
		want: []string{`spec.tasks[1].task`},
	},
	{
		name: "spec/unknown top-level field",
		spec: specHead + `colour: red
`,
		want: []string{`colour`, `unknown field`},
	},
	{
		name: "spec/unknown field in spec",
		spec: specHead + `  retries: 3
`,
		want: []string{`spec.retries`, `unknown field`},
	},
	{
		name: "spec/unknown field in with",
		spec: specHead + `  - task: http
    with:
      url: "{{URL}}"
      colour: red
`,
		want: []string{`spec.tasks[1].with.colour`, `unknown field`},
	},
	{
		name: "spec/unknown field in first task's with",
		spec: `apiVersion: iter8.tools/v1
kind: Experiment
metadata:
  name: bad
spec:
  tasks:
  - task: ready
    with:
      url: "{{URL}}"
      retries: 3
`,
		want: []string{`spec.tasks[0].with.retries`, `unknown field`},
	},
	{
		name: "spec/negative qps",
		spec: specHead + `  - task: http
    with:
      url: "{{URL}}"
      qps: -1
`,
		want: []string{`spec.tasks[1].with.qps`, `-1`},
	},
	{
		name: "spec/bad duration",
		spec: specHead + `  - task: http
    with:
      url: "{{URL}}"
      duration: 5 parsecs
`,
		want: []string{`spec.tasks[1].with.duration`, `5 parsecs`},
	},
	{
		name: "spec/url without scheme",
		spec: specHead + `  - task: http
    with:
      url: "example.com/hello"
`,
		want: []string{`spec.tasks[1].with.url`, `example.com/hello`},
	},
	{
		name: "spec/url host:port without scheme",
		spec: specHead + `  - task: http
    with:
      url: "{{HOSTPORT}}/"
`,
		want: []string{`spec.tasks[1].with.url`},
	},
	{
		name: "spec/ftp url",
		spec: specHead + `  - task: http
    with:
      url: "ftp://{{HOSTPORT}}/"
`,
		want: []string{`spec.tasks[1].with.url`, `ftp://`},
	},
	{
		name: "spec/slo on a metric no task produces",
		spec: loadHead + `  - task: assess
    with:
      slos:
      - metric: grpc/latency-p99
        upper: 100
`,
		want: []string{`spec.tasks[1].with.slos[0].metric`, `grpc/latency-p99`},
	},
	{
		name: "spec/slo on a metric only a later task produces",
		spec: specHead + `  - task: assess
    with:
      slos:
      - metric: http/error-rate
        upper: 0
  - task: http
    with:
      url: "{{URL}}"
`,
		want: []string{`spec.tasks[1].with.slos[0].metric`, `http/error-rate`},
	},
	{
		name: "spec/empty task list",
		spec: `apiVersion: iter8.tools/v1
kind: Experiment
metadata:
  name: bad
spec:
  tasks: []
`,
		want: []string{`spec.tasks`, `at least one task`},
	},
	{
		name: "spec/duplicate versions",
		spec: `apiVersion: iter8.tools/v1
kind: Experiment
metadata:
  name: bad
spec:
  versions: [v1, v1]
  tasks:
  - task: ready
    with: {url: "{{URL}}"}
`,
		want: []string{`spec.versions[1]`, `Duplicate`},
	},
	{
		name: "spec/endpoint names an unknown version",
		spec: strings.Replace(twoVersionHead, "{version: v2,", "{version: v3,", 1),
		want: []string{`spec.tasks[0].with.endpoints[1].version`, `"v3"`},
	},
	{
		name: "spec/url without version among several versions",
		spec: `apiVersion: iter8.tools/v1
kind: Experiment
metadata:
  name: bad
spec:
  versions: [v1, v2]
  tasks:
  - task: ready
    with: {url: "{{URL}}"}
  - task: http
    with: {url: "{{URL}}"}
`,
		want: []string{`spec.tasks[1].with.version`},
	},
	{
		name: "spec/missing payload file",
		spec: specHead + `  - task: http
    with:
      url: "{{URL}}"
      payloadFile: missing.json
`,
		want: []string{`spec.tasks[1].with.payloadFile`, `missing.json`},
	},
	{
		name: "spec/payload and payloadFile",
		spec: specHead + `  - task: http
    with:
      url: "{{URL}}"
      payload: "{}"
      payloadFile: body.json
`,
		files: map[string]string{"body.json": "{}"},
		want:  []string{`spec.tasks[1].with.payloadFile`},
	},
	{
		name: "spec/bad if expression",
		spec: specHead + `  - task: http
    if: "metrics[[ > 1"
    with:
      url: "{{URL}}"
`,
		want: []string{`spec.tasks[1].if`},
	},
	{
		name: "spec/if expression that is not true or false",
		spec: loadHead + `  - task: assess
    if: "versions"
    with:
      slos:
      - {metric: http/error-rate, upper: 0}
`,
		want: []string{`spec.tasks[1].if`},
	},
	{
		name: "spec/wrong apiVersion",
		spec: strings.Replace(specHead, "iter8.tools/v1", "iter8.tools/v2", 1),
		want: []string{`apiVersion`, `iter8.tools/v2`},
	},
	{
		name: "spec/wrong kind",
		spec: strings.Replace(specHead, "kind: Experiment", "kind: Job", 1),
		want: []string{`kind`, `"Job"`},
	},
	{
		name: "spec/missing metadata.name",
		spec: strings.Replace(specHead, "  name: bad\n", "  namespace: default\n", 1),
		want: []string{`metadata.name`},
	},
	{
		name: "spec/metadata.name not a DNS label",
		spec: strings.Replace(specHead, "  name: bad\n", "  name: Bad_Name\n", 1),
		want: []string{`metadata.name`, `Bad_Name`},
	},
	{
		name: "spec/numRequests with duration",
		spec: specHead + `  - task: http
    with:
      url: "{{URL}}"
      numRequests: 10
      duration: 10s
`,
		want: []string{`spec.tasks[1].with.duration`, `not both`},
	},
	{
		name: "spec/string for a number (qps)",
		spec: specHead + `  - task: http
    with:
      url: "{{URL}}"
      qps: fast
`,
		want: []string{`spec.tasks[1].with.qps`, `string`},
	},
	{
		name: "spec/string for a whole number (numRequests)",
		spec: specHead + `  - task: http
    with:
      url: "{{URL}}"
      numRequests: ten
`,
		want: []string{`spec.tasks[1].with.numRequests`, `string`},
	},
	{
		name: "spec/fraction for a whole number (connections)",
		spec: specHead + `  - task: http
    with:
      url: "{{URL}}"
      connections: 1.5
`,
		want: []string{`spec.tasks[1].with.connections`},
	},
	{
		name: "spec/yaml syntax error",
		spec: specHead + `  - task: http
    with: {url: "{{URL}}", qps: [1, 2}
`,
		want: []string{`not valid YAML`, `line `},
	},
	{
		name: "spec/duplicate yaml key",
		spec: specHead + `  - task: http
    with:
      url: "{{URL}}"
      qps: 1
      qps: 2
`,
		want: []string{`"qps"`, `line 15`},
	},
	{
		name: "spec/slo with neither upper nor lower",
		spec: loadHead + `  - task: assess
    with:
      slos:
      - metric: http/error-rate
`,
		want: []string{`spec.tasks[1].with.slos[0]`, `upper, lower or both`},
	},
	{
		name: "spec/slo lower above upper",
		spec: loadHead + `  - task: assess
    with:
      slos:
      - {metric: http/latency-p99, lower: 20, upper: 10}
`,
		want: []string{`spec.tasks[1].with.slos[0].lower`},
	},
	{
		name: "spec/slo for an unknown version",
		spec: loadHead + `  - task: assess
    with:
      slos:
      - {metric: http/latency-p99, upper: 10, version: canary}
`,
		want: []string{`spec.tasks[1].with.slos[0].version`, `"canary"`},
	},
	{
		name: "spec/reward on an unknown metric",
		spec: loadHead + `  - task: assess
    with:
      rewards:
        max: [http/throughput]
`,
		want: []string{`spec.tasks[1].with.rewards.max[0]`, `http/throughput`},
	},
	{
		name: "spec/comparison with an unknown candidate",
		spec: twoVersionHead + `  - task: assess
    with:
      comparisons:
      - {metric: http/latency, candidate: v3}
`,
		want: []string{`spec.tasks[1].with.comparisons[0].candidate`, `"v3"`},
	},
	{
		name: "spec/comparison against an unknown baseline",
		spec: twoVersionHead + `  - task: assess
    with:
      baseline: stable
      comparisons:
      - {metric: http/latency}
`,
		want: []string{`spec.tasks[1].with.baseline`, `"stable"`},
	},
	{
		name: "spec/comparison on a metric without samples",
		spec: twoVersionHead + `  - task: assess
    with:
      comparisons:
      - {metric: http/latency-max}
`,
		want: []string{`spec.tasks[1].with.comparisons[0].metric`, `is a single value`},
	},
	{
		name: "spec/comparison on a metric no task produces",
		spec: twoVersionHead + `  - task: assess
    with:
      comparisons:
      - {metric: grpc/latency}
`,
		want: []string{`spec.tasks[1].with.comparisons[0].metric`, `no earlier task produces it`},
	},
	{
		name: "spec/sequential mode unknown",
		spec: twoVersionHead + `  - task: assess
    with:
      sequential: always
      comparisons:
      - {metric: http/latency}
`,
		want: []string{`spec.tasks[1].with.sequential`, `"pooled", "per-loop", "fixed"`},
	},
	{
		name: "spec/percentile comparison with a share of 1 or more",
		spec: twoVersionHead + `  - task: assess
    with:
      comparisons:
      - {metric: http/latency-p99, minEffect: 1.5}
`,
		want: []string{`spec.tasks[1].with.comparisons[0].minEffect`, `below 1 for a rate or a percentile's share`},
	},
	{
		name: "spec/confidence outside (0,1)",
		spec: twoVersionHead + `  - task: assess
    with:
      confidence: 95
      comparisons:
      - {metric: http/latency}
`,
		want: []string{`spec.tasks[1].with.confidence`, `between 0 and 1`},
	},
	{
		name: "spec/negative loops",
		spec: strings.Replace(loadHead, "spec:\n", "spec:\n  loops: -2\n  interval: 5 minutes\n", 1),
		want: []string{`spec.loops`, `spec.interval`},
	},
	{
		name:   "values/confidence outside (0,1)",
		launch: []string{"--set", "versions={v1,v2}", "--set", "tasks={http,assess}", "--set", "http.endpoints[0].url={{URL}}", "--set", "http.endpoints[0].version=v1", "--set", "http.endpoints[1].url={{URL}}", "--set", "http.endpoints[1].version=v2", "--set", "assess.comparisons[0].metric=http/latency", "--set", "assess.confidence=1.5"},
		want:   []string{`assess.confidence`, `between 0 and 1`},
	},
	{
		name:   "values/zero loops",
		launch: []string{"--set", "tasks={ready}", "--set", "ready.url={{URL}}", "--set", "loops=0"},
		want:   []string{`/loops`, `minimum`},
	},
	{
		name: "spec/every problem is listed",
		spec: specHead + `  - task: http
    with:
      url: "{{URL}}"
      qps: -1
      connections: 0
  - task: nope
  - task: assess
    if: "metrics[["
    with:
      slos:
      - {metric: http/error-rate}
`,
		want: []string{`spec.tasks[1].with.qps`, `spec.tasks[1].with.connections`, `spec.tasks[2].task`,
			`spec.tasks[3].if`, `spec.tasks[3].with.slos[0]`},
	},

	// Values, launched with `launch --local`.
	{
		name:   "values/unknown key",
		launch: []string{"--set", "tasks={ready}", "--set", "ready.url={{URL}}", "--set", "colour=red"},
		want:   []string{`colour`, `not allowed`},
	},
	{
		name:   "values/unknown key in a task's block",
		launch: []string{"--set", "tasks={ready,http}", "--set", "ready.url={{URL}}", "--set", "http.url={{URL}}", "--set", "http.qpz=5"},
		want:   []string{`/http`, `qpz`},
	},
	{
		name:   "values/wrong type",
		launch: []string{"--set", "tasks={ready,http}", "--set", "ready.url={{URL}}", "--set", "http.url={{URL}}", "--set", "http.qps=fast"},
		want:   []string{`/http/qps`, `want number`},
	},
	{
		name:   "values/tasks names an unknown task",
		launch: []string{"--set", "tasks={ready,nope}", "--set", "ready.url={{URL}}"},
		want:   []string{`/tasks/1`},
	},
	{
		name:   "values/no tasks",
		launch: []string{"--set", "ready.url={{URL}}"},
		want:   []string{`/tasks`},
	},
	{
		name:   "values/negative qps",
		launch: []string{"--set", "tasks={ready,http}", "--set", "ready.url={{URL}}", "--set", "http.url={{URL}}", "--set", "http.qps=-1"},
		want:   []string{`/http/qps`},
	},
	{
		name:   "values/bad duration",
		launch: []string{"--set", "tasks={ready,http}", "--set", "ready.url={{URL}}", "--set", "http.url={{URL}}", "--set-string", "http.duration=5 parsecs"},
		want:   []string{`/http/duration`, `5 parsecs`},
	},
	{
		name:   "values/ftp url",
		launch: []string{"--set", "tasks={ready,http}", "--set", "ready.url={{URL}}", "--set", "http.url=ftp://{{HOSTPORT}}/"},
		want:   []string{`/http/url`},
	},
	{
		name:   "values/duplicate versions",
		launch: []string{"--set", "tasks={ready}", "--set", "ready.url={{URL}}", "--set", "versions={v1,v1}"},
		want:   []string{`/versions`},
	},
	{
		name:   "values/numRequests with duration",
		launch: []string{"--set", "tasks={ready,http}", "--set", "ready.url={{URL}}", "--set", "http.url={{URL}}", "--set", "http.numRequests=10", "--set", "http.duration=10s"},
		want:   []string{`spec.tasks[1].with.duration`, `not both`},
	},
	{
		name:   "values/missing payload file",
		launch: []string{"--set", "tasks={ready,http}", "--set", "ready.url={{URL}}", "--set", "http.url={{URL}}", "--set", "http.payloadFile=missing.json"},
		want:   []string{`spec.tasks[1].with.payloadFile`, `missing.json`},
	},
	{
		name:   "values/bad if expression",
		launch: []string{"--set", "tasks={ready,http}", "--set", "ready.url={{URL}}", "--set", "http.url={{URL}}", "--set", "http.if=metrics[["},
		want:   []string{`spec.tasks[1].if`},
	},
	{
		name: "values/endpoint names an unknown version",
		values: `tasks: [http]
versions: [v1, v2]
http:
  duration: 20s
  endpoints:
  - {version: v1, url: "{{URL}}"}
  - {version: v3, url: "{{URL}}"}
`,
		want: []string{`spec.tasks[0].with.endpoints[1].version`, `"v3"`},
	},
	{
		name: "values/slo on a metric no task produces",
		values: `tasks: [http, assess]
http: {url: "{{URL}}", duration: 20s}
assess:
  slos:
  - {metric: grpc/latency-p99, upper: 100}
`,
		want: []string{`spec.tasks[1].with.slos[0].metric`, `grpc/latency-p99`},
	},
	{
		name: "values/slo with neither upper nor lower",
		values: `tasks: [http, assess]
http: {url: "{{URL}}", duration: 20s}
assess:
  slos:
  - {metric: http/error-rate}
`,
		want: []string{`/assess/slos/0`},
	},
	{
		name: "values/slo lower above upper",
		values: `tasks: [http, assess]
http: {url: "{{URL}}", duration: 20s}
assess:
  slos:
  - {metric: http/latency-p99, lower: 20, upper: 10}
`,
		want: []string{`spec.tasks[1].with.slos[0].lower`},
	},
	{
		name: "values/reward on an unknown metric",
		values: `tasks: [http, assess]
http: {url: "{{URL}}", duration: 20s}
assess:
  rewards: {min: [http/throughput]}
`,
		want: []string{`spec.tasks[1].with.rewards.min[0]`, `http/throughput`},
	},
	{
		name: "values/yaml syntax error",
		values: `tasks: [ready
ready: {url: "{{URL}}"}
`,
		want: []string{`values.yaml`, `line`},
	},
	{
		name: "values/wrong type in file",
		values: `tasks: [ready, http]
ready: {url: "{{URL}}"}
http: {url: "{{URL}}", connections: many}
`,
		want: []string{`/http/connections`},
	},
}

// TestBadInput runs malformed specs and values and checks that each fails
// before any task acts: exit 2, an error naming the field, no request to the
// target, no result file and no crash.
func TestBadInput(t *testing.T) {
	all := slices.Concat(badInputs, badSpecInputs, badNumberInputs, badFileInputs)
	if len(all) < 24 {
		t.Fatalf("only %d cases", len(all))
	}
	for _, tc := range all {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tg := newTarget(t)
			dir := t.TempDir()
			fill := strings.NewReplacer("{{URL}}", tg.url(), "{{HOSTPORT}}", tg.Listener.Addr().String()).Replace
			for name, content := range tc.files {
				writeFile(t, dir, name, content)
			}
			var args []string
			switch {
			case tc.spec != "":
				writeFile(t, dir, "spec.yaml", fill(tc.spec))
				args = []string{"run", "-f", "spec.yaml"}
			default:
				args = []string{"launch", "--local"}
				if tc.values != "" {
					writeFile(t, dir, "values.yaml", fill(tc.values))
					args = append(args, "-f", "values.yaml")
				}
				for _, a := range tc.launch {
					args = append(args, fill(a))
				}
			}

			out := iter8(t, dir, args...)

			if out.code != 2 {
				t.Errorf("exit code %d, want 2\n%s", out.code, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out.stderr, w) {
					t.Errorf("stderr does not name %q\n%s", w, out)
				}
			}
			if n := tg.requests.Load(); n != 0 {
				t.Errorf("the target got %d requests, want 0: a task ran before validation failed\n%s", n, out)
			}
			if files := resultFiles(t, dir); len(files) > 0 {
				t.Errorf("result files were written: %v\n%s", files, out)
			}
			if tc.spec == "" && fileExists(filepath.Join(dir, "experiment.yaml")) {
				t.Errorf("launch wrote experiment.yaml for invalid values\n%s", out)
			}
			checkNoCrash(t, out)
		})
	}
}
