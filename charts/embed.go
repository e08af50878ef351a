// Package charts embeds the project's Helm charts, so that the binaries can
// render and install them without a chart repository.
package charts

import "embed"

// FS holds the charts, each in a folder of its own name.
//
//go:embed all:iter8
var FS embed.FS
