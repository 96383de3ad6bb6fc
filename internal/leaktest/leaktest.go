// Package leaktest holds Rove's goleak settings, shared by every package's
// TestMain so all of them ignore the same, and only the same, goroutines.
package leaktest

import "go.uber.org/goleak"

// Options returns the goleak options for Rove's tests. The only goroutines
// ignored are those gnet's package-level worker pool (an ants pool) starts
// when gnet is imported; they belong to the process, not to any test.
func Options() []goleak.Option {
	return []goleak.Option{
		goleak.IgnoreTopFunction("github.com/panjf2000/ants/v2.(*poolCommon).purgeStaleWorkers"),
		goleak.IgnoreTopFunction("github.com/panjf2000/ants/v2.(*poolCommon).ticktock"),
	}
}
