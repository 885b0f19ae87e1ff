package adapt

import (
	"fmt"
	"math"
	"sync"
	"testing"
	"time"
)

// Helpers shared by the controller tests: running a controller or a fixed
// configuration over the simulated link, and reading the result.

var simEpoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// tracePoint is the state after one Tick.
type tracePoint struct {
	at  time.Duration // since the start
	p   Params
	est Estimates
}

// run is one controller over one simulated link.
type run struct {
	ctl    *Controller
	sim    *sim
	trace  []tracePoint
	cfg    Config
	events []Event
}

type runOpts struct {
	seed     uint64
	tcp      bool
	proxyTCP bool
	warm     *Profile
	fileSize int64
	each     func(r *run) // after every Tick
}

func runController(cfg Config, link func(time.Duration) simLink, d time.Duration, o runOpts) *run {
	clock := &simClock{t: simEpoch}
	ctl := NewController(cfg, clock, o.warm)
	r := &run{ctl: ctl, cfg: cfg}
	r.sim = newSim(simConfig{link: link, seed: o.seed, tcp: o.tcp, proxyTCP: o.proxyTCP, fileSize: o.fileSize, monitor: cfg.MonitoringInterval}, clock, ctl)
	r.sim.run(d, func() {
		r.trace = append(r.trace, tracePoint{at: r.sim.elapsed(), p: ctl.Params(), est: ctl.Snapshot().Estimates})
		if o.each != nil {
			o.each(r)
		}
	})
	r.events = ctl.Snapshot().Events
	return r
}

// paramAt returns the parameters in force at elapsed time at.
func (r *run) paramAt(at time.Duration) Params {
	p := r.ctl.cfg.clampParams(Params{PartSize: int64(r.cfg.PartSizeMB) * MiB, Concurrency: r.cfg.Concurrency})
	for _, tp := range r.trace {
		if tp.at > at {
			break
		}
		p = tp.p
	}
	return p
}

// reversals counts, per parameter, the changes whose direction differs from
// the previous change of the same parameter (rollbacks included).
func reversals(events []Event) map[string]int {
	last := map[string]float64{}
	out := map[string]int{}
	for _, e := range events {
		d := math.Copysign(1, e.New-e.Old)
		if prev, ok := last[e.Param]; ok && prev != d {
			out[e.Param]++
		}
		last[e.Param] = d
	}
	return out
}

func eventsString(events []Event) string {
	s := ""
	for _, e := range events {
		mg := "-"
		if e.MeasuredGain != nil {
			mg = fmt.Sprintf("%+.2f", *e.MeasuredGain)
		}
		v := func(x float64) string {
			if e.Param == ParamPartSize {
				return fmt.Sprintf("%.0fMiB", x/MiB)
			}
			return fmt.Sprintf("%.0f", x)
		}
		s += fmt.Sprintf("\n  %6.0fs %-15s %5s -> %-6s predicted %+.2f measured %s rolled_back=%v: %s",
			e.At.Sub(simEpoch).Seconds(), e.Param, v(e.Old), v(e.New), e.PredictedGain, mg, e.RolledBack, e.Reason)
	}
	return s
}

// fixedResult is a fixed configuration's steady state on a link.
type fixedResult struct {
	goodputMbit  float64
	queueSeconds float64 // mean queueing delay
}

// fixedCache memoizes fixed runs (the model is deterministic).
type fixedCache struct {
	mu sync.Mutex
	m  map[string]fixedResult
}

func (fc *fixedCache) get(l simLink, p Params, d time.Duration) fixedResult {
	key := fmt.Sprintf("%+v|%+v|%v", l, p, d)
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if r, ok := fc.m[key]; ok {
		return r
	}
	r := runFixed(l, p, d, 7)
	if fc.m == nil {
		fc.m = make(map[string]fixedResult)
	}
	fc.m[key] = r
	return r
}

// runFixed measures p on l after a warm-up of a fifth of d.
func runFixed(l simLink, p Params, d time.Duration, seed uint64) fixedResult {
	clock := &simClock{t: simEpoch}
	s := newSim(simConfig{link: constLink(l), seed: seed}, clock, fixedUploader{Fixed{P: p}})
	warm := d / 5
	s.run(warm, nil)
	g0 := s.sentBytes - s.wastedBytes
	var qsum float64
	var n int
	s.cfg.monitor = 100 * time.Millisecond
	s.run(d-warm, func() {
		qsum += s.queue / (l.RateMbit * 1e6 / 8)
		n++
	})
	return fixedResult{
		goodputMbit:  (s.sentBytes - s.wastedBytes - g0) * 8 / 1e6 / (d - warm).Seconds(),
		queueSeconds: qsum / float64(max(n, 1)),
	}
}

// band is the set of parameters a controller should settle in on a link:
// goodput within bandwidth_change_threshold of the best fixed
// configuration (the controller cannot tell finer differences), without
// queueing beyond latency_change_threshold × RTT more than the least any
// such configuration needs.
type band struct {
	link             simLink
	best             float64
	maxQueue         float64
	fc               *fixedCache
	thrBw            float64
	cMin, cMax       int
	partsMiB         []int64
	bestP            Params
	minQueueAtTarget float64
}

func newBand(fc *fixedCache, l simLink, cfg Config, partsMiB []int64) *band {
	l = l.withDefaults()
	b := &band{link: l, fc: fc, thrBw: cfg.BandwidthChangeThreshold, cMin: cfg.MinConcurrency, cMax: cfg.MaxConcurrency, partsMiB: partsMiB}
	for _, mib := range partsMiB {
		for c := cfg.MinConcurrency; c <= cfg.MaxConcurrency; c++ {
			p := Params{PartSize: mib * MiB, Concurrency: c}
			if r := b.result(p); r.goodputMbit > b.best {
				b.best, b.bestP = r.goodputMbit, p
			}
		}
	}
	b.minQueueAtTarget = math.Inf(1)
	for _, mib := range partsMiB {
		for c := cfg.MinConcurrency; c <= cfg.MaxConcurrency; c++ {
			r := b.result(Params{PartSize: mib * MiB, Concurrency: c})
			if r.goodputMbit >= (1-b.thrBw)*b.best {
				b.minQueueAtTarget = min(b.minQueueAtTarget, r.queueSeconds)
			}
		}
	}
	b.maxQueue = b.minQueueAtTarget + cfg.LatencyChangeThreshold*l.RTT.Seconds()
	return b
}

func (b *band) result(p Params) fixedResult { return b.fc.get(b.link, p, 60*time.Second) }

func (b *band) contains(p Params) bool {
	r := b.result(p)
	return r.goodputMbit >= (1-b.thrBw)*b.best && r.queueSeconds <= b.maxQueue+1e-9
}

// settleTime is how long after from the parameters entered b for good
// (until to); -1 if they never did.
func (r *run) settleTime(b *band, from, to time.Duration) time.Duration {
	settled := time.Duration(-1)
	if b.contains(r.paramAt(from)) {
		settled = 0
	}
	for _, tp := range r.trace {
		if tp.at <= from || tp.at > to {
			continue
		}
		switch in := b.contains(tp.p); {
		case !in:
			settled = -1
		case settled < 0:
			settled = tp.at - from
		}
	}
	return settled
}

func checkf(t *testing.T, ok bool, format string, args ...any) {
	t.Helper()
	if !ok {
		t.Errorf(format, args...)
	}
}
