package e2e

// httpHead is the start of a spec whose first task sends load to the test's
// target; a case appends the field under test to its `with` block.
const httpHead = `apiVersion: iter8.tools/v1
kind: Experiment
metadata:
  name: bad
spec:
  tasks:
  - task: http
    with:
      url: "{{URL}}"
`

// grpcHead is httpHead for the grpc task (the target speaks HTTP, so no call
// would succeed, but none may even be tried).
const grpcHead = `apiVersion: iter8.tools/v1
kind: Experiment
metadata:
  name: bad
spec:
  tasks:
  - task: grpc
    with:
      host: "{{HOSTPORT}}"
      call: helloworld.Greeter/SayHello
      insecure: true
`

// badNumberInputs are out-of-range numbers, durations and addresses found by
// the bad-input hunt of issue 13.
var badNumberInputs = []badInput{
	// Specs, run with `run -f`.
	{
		name: "number/spec/qps 1e308 (fortio stopped after 2 requests)",
		spec: httpHead + "      qps: 1e308\n",
		want: []string{`spec.tasks[0].with.qps`, `from 0.1 to 1000000`},
	},
	{
		name: "number/spec/qps 0.01 (never finished)",
		spec: httpHead + "      qps: 0.01\n",
		want: []string{`spec.tasks[0].with.qps`, `must be 0 (as fast as possible)`},
	},
	{
		name: "number/spec/numRequests at qps longer than a day",
		spec: httpHead + "      qps: 0.5\n      numRequests: 100000\n",
		want: []string{`spec.tasks[0].with.qps`, `more than 24h`, `set a duration`},
	},
	{
		name: "number/spec/numRequests above 1e9",
		spec: httpHead + "      numRequests: 5000000000\n",
		want: []string{`spec.tasks[0].with.numRequests`, `from 0 to 1000000000`},
	},
	{
		name: "number/spec/duration above a day",
		spec: httpHead + "      duration: 25h\n",
		want: []string{`spec.tasks[0].with.duration`, `at most 24h`},
	},
	{
		name: "number/spec/timeout above a day",
		spec: httpHead + "      timeout: 2000h\n",
		want: []string{`spec.tasks[0].with.timeout`, `at most 24h`},
	},
	{
		name: "number/spec/url with a port and no host",
		spec: loadHead + "  - task: http\n    with: {url: \"http://:18080/\"}\n",
		want: []string{`spec.tasks[1].with.url`, `no host`},
	},
	{
		name: "number/spec/url with port 99999",
		spec: loadHead + "  - task: http\n    with: {url: \"http://127.0.0.1:99999/\"}\n",
		want: []string{`spec.tasks[1].with.url`, `from 1 to 65535`},
	},
	{
		name: "number/spec/header value with a NUL",
		spec: httpHead + "      headers: {X-A: \"a\\0b\"}\n",
		want: []string{`spec.tasks[0].with.headers[X-A]`, `control characters`},
	},
	{
		name: "number/spec/grpc rps 1e308",
		spec: grpcHead + "      rps: 1e308\n",
		want: []string{`spec.tasks[0].with.rps`, `from 0.1 to 1000000`},
	},
	{
		name: "number/spec/grpc total at rps longer than a day",
		spec: grpcHead + "      rps: 0.5\n      total: 100000\n",
		want: []string{`spec.tasks[0].with.rps`, `more than 24h`},
	},
	{
		name: "number/spec/SLO upper 1e999",
		spec: loadHead + "  - task: assess\n    with: {slos: [{metric: http/error-rate, upper: 1e999}]}\n",
		want: []string{`upper`, `got string, want a number`},
	},
	{
		name: "number/spec/metrics window of years",
		spec: loadHead + "  - task: metrics\n    with: {provider: prometheus, endpoint: \"{{URL}}\", window: 100000h, queries: [{name: up, query: up}]}\n",
		want: []string{`spec.tasks[1].with.window`, `at most`},
	},
	// Values, run with `launch --local`: the chart must refuse what
	// --set turns into something else (1e999 became 0: full speed, or an
	// SLO of 0).
	{
		name:   "number/launch/qps 1e999",
		launch: []string{"--set", "tasks={http}", "--set", "http.url={{URL}}", "--set", "http.qps=1e999"},
		want:   []string{`http.qps`, `beyond the range of a number`},
	},
	{
		name:   "number/launch/qps 1e-999",
		launch: []string{"--set", "tasks={http}", "--set", "http.url={{URL}}", "--set", "http.qps=1e-999"},
		want:   []string{`http.qps`, `beyond the range of a number`},
	},
	{
		name:   "number/launch/qps 0.01",
		launch: []string{"--set", "tasks={http}", "--set", "http.url={{URL}}", "--set", "http.qps=0.01"},
		want:   []string{`http.qps`, `from 0.1 to 1000000`},
	},
	{
		name:   "number/launch/SLO upper 1e999",
		launch: []string{"--set", "tasks={http,assess}", "--set", "http.url={{URL}}", "--set", "assess.slos[0].metric=http/error-rate", "--set", "assess.slos[0].upper=1e999"},
		want:   []string{`assess.slos[0].upper`, `beyond the range of a number`},
	},
	{
		name:   "number/launch/grpc rps 1e999",
		launch: []string{"--set", "tasks={grpc}", "--set", "grpc.host={{HOSTPORT}}", "--set", "grpc.call=helloworld.Greeter/SayHello", "--set", "grpc.insecure=true", "--set", "grpc.rps=1e999"},
		want:   []string{`grpc.rps`, `beyond the range of a number`},
	},
	{
		name:   "number/launch/numRequests above 1e9",
		launch: []string{"--set", "tasks={http}", "--set", "http.url={{URL}}", "--set", "http.numRequests=5000000000"},
		want:   []string{`numRequests`, `maximum`},
	},
	{
		name:   "number/launch/url with a port and no host",
		launch: []string{"--set", "tasks={http}", "--set", "http.url=http://:18080/"},
		want:   []string{`spec.tasks[0].with.url`, `no host`},
	},
	{
		name: "number/values/qps 1e999 in a values file",
		values: `tasks: [http]
http:
  url: "{{URL}}"
  qps: 1e999
`,
		want: []string{`http.qps`, `beyond the range of a number`},
	},
}
