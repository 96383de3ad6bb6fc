//go:build race

// Package race reports whether the race detector is on, so allocation tests
// can skip themselves: the race runtime allocates on its own.
package race

// Enabled is true when built with -race.
const Enabled = true
