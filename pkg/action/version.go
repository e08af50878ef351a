package action

import (
	"runtime"
	"runtime/debug"
)

// These are set at build time with -ldflags "-X ...".
var (
	version   = "v0.1.0-dev"
	gitCommit = ""
)

// BuildInfo describes the binary.
type BuildInfo struct {
	Version   string `json:"version"`
	GitCommit string `json:"gitCommit,omitempty"`
	GoVersion string `json:"goVersion"`
}

// GetVersion returns the binary's build information.
func GetVersion() BuildInfo {
	info := BuildInfo{Version: version, GitCommit: gitCommit, GoVersion: runtime.Version()}
	if info.GitCommit == "" {
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" {
					info.GitCommit = s.Value
				}
			}
		}
	}
	return info
}
