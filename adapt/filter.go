package adapt

import (
	"math"
	"time"
)

// winFilter is a windowed minimum or maximum over timed values (a monotonic
// deque): Push and Get are O(1) amortized, and memory is bounded by the
// number of values within the window.
type winFilter struct {
	window time.Duration
	isMax  bool
	q      []timedValue
}

type timedValue struct {
	at time.Time
	v  float64
}

func newWinMax(window time.Duration) winFilter { return winFilter{window: window, isMax: true} }
func newWinMin(window time.Duration) winFilter { return winFilter{window: window} }

// better reports whether a dominates b (a new value that makes b useless).
func (f *winFilter) better(a, b float64) bool {
	if f.isMax {
		return a >= b
	}
	return a <= b
}

// Push adds v observed at t. Values must come in time order; an older value
// than the newest is treated as observed at the newest time.
func (f *winFilter) Push(t time.Time, v float64) {
	if math.IsNaN(v) {
		return
	}
	if n := len(f.q); n > 0 && t.Before(f.q[n-1].at) {
		t = f.q[n-1].at
	}
	for len(f.q) > 0 && f.better(v, f.q[len(f.q)-1].v) {
		f.q = f.q[:len(f.q)-1]
	}
	f.q = append(f.q, timedValue{t, v})
	f.expire(t)
}

func (f *winFilter) expire(now time.Time) {
	cut := now.Add(-f.window)
	i := 0
	for i < len(f.q) && f.q[i].at.Before(cut) {
		i++
	}
	if i > 0 {
		f.q = append(f.q[:0], f.q[i:]...)
	}
}

// Get returns the extremum of the values within the window ending at now,
// and false if there is none.
func (f *winFilter) Get(now time.Time) (float64, bool) {
	f.expire(now)
	if len(f.q) == 0 {
		return 0, false
	}
	return f.q[0].v, true
}

// Reset forgets every value.
func (f *winFilter) Reset() { f.q = f.q[:0] }

// ewma is an exponentially weighted moving average; the first value sets it.
type ewma struct {
	alpha float64
	v     float64
	ok    bool
}

func (e *ewma) Add(x float64) {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return
	}
	if !e.ok {
		e.v, e.ok = x, true
		return
	}
	e.v += e.alpha * (x - e.v)
}

// jitter is the RFC 3550 interarrival jitter applied to latencies: the
// smoothed absolute difference between consecutive samples (gain 1/16).
type jitter struct {
	last, j float64
	n       int
}

func (j *jitter) Add(x float64) {
	if j.n > 0 {
		j.j += (math.Abs(x-j.last) - j.j) / 16
	}
	j.last = x
	j.n++
}

// Value returns the jitter, 0 before two samples.
func (j *jitter) Value() float64 { return j.j }
