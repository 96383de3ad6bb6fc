// Package leaktest holds Rove's goleak settings, shared by every package's
// TestMain so all of them ignore the same, and only the same, goroutines.
package leaktest

import "go.uber.org/goleak"

// Options returns the goleak options for Rove's tests. The only goroutines
// ignored are those of gnet's package-level worker pool (a plain ants
// pool, started when gnet is imported): its two housekeepers, and its idle
// workers, which gnet's Enroll leaves behind for up to 10 s. They belong
// to the process, not to any test. Rove's own handler pools are
// PoolWithFuncGeneric, whose workers run another function
// ((*goWorkerWithFuncGeneric).run), so a leak of those is still caught.
func Options() []goleak.Option {
	return []goleak.Option{
		goleak.IgnoreTopFunction("github.com/panjf2000/ants/v2.(*poolCommon).purgeStaleWorkers"),
		goleak.IgnoreTopFunction("github.com/panjf2000/ants/v2.(*poolCommon).ticktock"),
		goleak.IgnoreTopFunction("github.com/panjf2000/ants/v2.(*goWorker).run.func1"),
	}
}
