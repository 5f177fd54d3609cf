//go:build race

package logkv

const raceEnabled = true
