package node

import "strings"

// PodNetNS is the name of the network namespace of the run Pod at address
// ip (10.78.N.2).
func PodNetNS(ip string) string {
	n := strings.TrimSuffix(strings.TrimPrefix(ip, podNetPrefix), ".2")
	return "iter8-pod-" + n
}

// FormatIndexes is the compressed form of sorted completion indexes.
var FormatIndexes = formatIndexes
