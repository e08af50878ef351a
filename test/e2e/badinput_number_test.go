package e2e

// badNumberInputs are out-of-range numbers, durations and addresses found by
// the bad-input hunt of issue 13.
var badNumberInputs = []badInput{}
