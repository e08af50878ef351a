package e2e

import "strings"

// badSpecInputs are malformed specs found by the bad-input hunt of issue 13:
// expressions, names and the spec file's shape.
var badSpecInputs = []badInput{
	{
		// The case: with the typo, assess was skipped and the run
		// passed with failOnSLOs set.
		name: "spec/if names a metric no task produces (typo)",
		spec: strings.Replace(twoVersionHead, "spec:\n", "spec:\n  failOnSLOs: true\n", 1) + `  - task: assess
    if: metrics["v2"]["http/requests-count"] > 0
    with:
      slos: [{metric: http/error-rate, upper: 0}]
`,
		want: []string{`spec.tasks[1].if`, `"http/requests-count"`, `http/request-count`},
	},
	{
		name: "spec/if names an unknown version",
		spec: twoVersionHead + `  - task: assess
    if: metrics["v3"]["http/request-count"] > 0
    with:
      slos: [{metric: http/error-rate, upper: 0}]
`,
		want: []string{`spec.tasks[1].if`, `version "v3"`},
	},
	{
		name: "spec/if names a metric only a later task produces",
		spec: specHead + `  - task: http
    if: metrics[""]["http/request-count"] == 0
    with: {url: "{{URL}}"}
`,
		want: []string{`spec.tasks[1].if`, `"http/request-count"`, `no earlier task`},
	},
	{
		name: "spec/if guards with an unknown metric",
		spec: twoVersionHead + `  - task: assess
    if: '"http/requests-count" in metrics["v2"]'
    with:
      slos: [{metric: http/error-rate, upper: 0}]
`,
		want: []string{`spec.tasks[1].if`, `"http/requests-count"`},
	},
	{
		name: "spec/if asks for an unknown version in versions",
		spec: twoVersionHead + `  - task: assess
    if: '"canary" in versions'
    with:
      slos: [{metric: http/error-rate, upper: 0}]
`,
		want: []string{`spec.tasks[1].if`, `version "canary"`},
	},
	{
		name: "spec/version name with terminal escapes",
		spec: strings.Replace(loadHead, "spec:\n", "spec:\n  versions: [\"v1\\e]0;pwned\\a\"]\n", 1),
		want: []string{`spec.versions[0]`, `\x1b]0;pwned\a`, `letters, digits`},
	},
	{
		name: "spec/version name starting with '-'",
		spec: strings.Replace(loadHead, "spec:\n", "spec:\n  versions: [-v1]\n", 1),
		want: []string{`spec.versions[0]`, `"-v1"`},
	},
	{
		name: "spec/two YAML documents",
		spec: loadHead + "---\n" + specHead,
		want: []string{`spec.yaml`, `2 YAML documents; one experiment per file`},
	},
	{
		name: "spec/number for a task names its index",
		spec: loadHead + "  - 3\n",
		want: []string{`spec.tasks[1]: got number, want an object`},
	},
	{
		name: "spec/number for a version names its index",
		spec: strings.Replace(loadHead, "spec:\n", "spec:\n  versions: [v1, 2]\n", 1),
		want: []string{`spec.versions[1]: got number, want a string`},
	},
	{
		name: "spec/wrong type inside a with list names its index",
		spec: strings.Replace(twoVersionHead, `      - {version: v2, url: "{{URL}}"}`, `      - {version: v2, url: [a]}`, 1),
		want: []string{`spec.tasks[0].with.endpoints[1].url: got array, want a string`},
	},
	{
		name: "values/if names a metric no task produces",
		values: `tasks: [http, assess]
http: {url: "{{URL}}", duration: 20s}
assess:
  if: 'metrics[""]["http/requests-count"] > 0'
  slos: [{metric: http/error-rate, upper: 0}]
`,
		want: []string{`spec.tasks[1].if`, `"http/requests-count"`},
	},
	{
		name:   "values/version name starting with a dash",
		launch: []string{"--set", "versions={v1,-v2}", "--set", "tasks={http}", "--set", "http.url={{URL}}"},
		want:   []string{`versions`, `-v2`},
	},
}
