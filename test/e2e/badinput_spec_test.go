package e2e

// badSpecInputs are malformed specs found by the bad-input hunt of issue 13:
// expressions, names and the spec file's shape.
var badSpecInputs = []badInput{}
