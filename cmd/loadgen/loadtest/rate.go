package loadtest

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// rateSpec is an open-loop schedule: a constant rate, or a linear ramp
// from..to over a duration. The zero value means closed loop.
type rateSpec struct {
	from, to float64 // calls per second
	over     time.Duration
}

func (r rateSpec) open() bool { return r.from > 0 }
func (r rateSpec) ramp() bool { return r.over > 0 }

func (r rateSpec) String() string {
	if r.ramp() {
		return fmt.Sprintf("%s->%s calls/s over %s", fmtRate(r.from), fmtRate(r.to), r.over)
	}
	return fmtRate(r.from) + " calls/s"
}

// parseRate reads "50000", "50k", "1.5m" or "10k:200k:10s".
func parseRate(s string) (rateSpec, error) {
	parts := strings.Split(s, ":")
	switch len(parts) {
	case 1:
		r, err := parseCount(parts[0])
		return rateSpec{from: r, to: r}, err
	case 3:
		from, err := parseCount(parts[0])
		if err != nil {
			return rateSpec{}, err
		}
		to, err := parseCount(parts[1])
		if err != nil {
			return rateSpec{}, err
		}
		over, err := time.ParseDuration(parts[2])
		if err != nil || over <= 0 {
			return rateSpec{}, fmt.Errorf("ramp length %q is not a positive duration", parts[2])
		}
		return rateSpec{from: from, to: to, over: over}, nil
	}
	return rateSpec{}, fmt.Errorf("%q: want RATE or FROM:TO:OVER", s)
}

func parseCount(s string) (float64, error) {
	mult := 1.0
	switch {
	case strings.HasSuffix(s, "k"), strings.HasSuffix(s, "K"):
		mult, s = 1e3, s[:len(s)-1]
	case strings.HasSuffix(s, "m"), strings.HasSuffix(s, "M"):
		mult, s = 1e6, s[:len(s)-1]
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v*mult <= 0 || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%q is not a positive rate", s)
	}
	return v * mult, nil
}

// schedule gives the intended send time of each call of an open-loop run:
// call i is due when the integral of the rate reaches i. For a constant
// rate that is i/rate; for a linear ramp r(t) = from + k t it solves
// from t + k t^2 / 2 = i.
type schedule struct {
	spec rateSpec
	k    float64 // ramp slope, calls/s^2
}

func newSchedule(spec rateSpec) schedule {
	s := schedule{spec: spec}
	if spec.ramp() {
		s.k = (spec.to - spec.from) / spec.over.Seconds()
	}
	return s
}

// due returns how many calls were due in the first d of the schedule.
func (s schedule) due(d time.Duration) int64 {
	lo, hi := int64(0), int64(1)
	for s.at(hi) <= d { // grow until past d
		hi *= 2
	}
	for lo < hi { // the first call due after d
		mid := lo + (hi-lo)/2
		if s.at(mid) <= d {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

// at returns the offset from the start at which call i (0-based) is due.
func (s schedule) at(i int64) time.Duration {
	n := float64(i)
	var t float64
	if s.k == 0 {
		t = n / s.spec.from
	} else {
		// k/2 t^2 + from t - n = 0, the positive root, in a form that
		// stays accurate when k is tiny.
		t = 2 * n / (s.spec.from + math.Sqrt(s.spec.from*s.spec.from+2*s.k*n))
	}
	return time.Duration(t * float64(time.Second))
}

// rateAt returns the offered rate at offset d.
func (s schedule) rateAt(d time.Duration) float64 {
	return s.spec.from + s.k*d.Seconds()
}

func fmtRate(r float64) string {
	switch {
	case r >= 1e6:
		return strconv.FormatFloat(r/1e6, 'f', -1, 64) + "M"
	case r >= 1e3:
		return strconv.FormatFloat(r/1e3, 'f', -1, 64) + "k"
	}
	return strconv.FormatFloat(r, 'f', -1, 64)
}
