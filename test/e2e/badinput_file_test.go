package e2e

// badFileInputs are special and oversized files named by a spec, found by
// the bad-input hunt of issue 13.
var badFileInputs = []badInput{}
