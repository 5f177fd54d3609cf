//go:build race

package ring

// raceEnabled: built with the race detector.
const raceEnabled = true
