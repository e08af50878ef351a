//go:build race

package bandit

// raceEnabled: the race detector makes the simulations about 20 times
// slower, so they run a few repetitions and only log.
const raceEnabled = true
