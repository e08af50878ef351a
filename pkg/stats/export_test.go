package stats

import "runtime/debug"

// raceEnabled reports whether the test binary was built with -race, under
// which the simulations and calibrations run fewer repetitions.
func raceEnabled() bool {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range info.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// RaceEnabled lets the simulations of package stats_test share the check.
var RaceEnabled = raceEnabled
