package adapt

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// The scenario tests run the controller against the simulated link of
// simlink_test.go on a simulated clock. Every run is deterministic (seeded).

// stepLink is the step scenario's path: 64 KiB windows (so concurrency
// matters: 26 Mbit/s per stream at 20 ms), 512 KiB of buffer.
func stepLink(rateMbit float64) simLink {
	return simLink{RateMbit: rateMbit, RTT: 20 * time.Millisecond, WindowBytes: 64 << 10, QueueBytes: 512 << 10}
}

func stepConfig() Config {
	cfg := DefaultConfig()
	cfg.Concurrency, cfg.MaxConcurrency = 4, 16
	return cfg
}

// Requirement 1: after a step from 200 to 20 Mbit/s the parameters settle
// within two adaptation intervals, and back after the step up. "Settled"
// means inside the band of configurations whose goodput is within
// bandwidth_change_threshold of the best fixed configuration on the new
// link without avoidable queueing, and staying there for the rest of the
// phase.
func TestStepSettles(t *testing.T) {
	const warmup, phase = 120 * time.Second, 120 * time.Second
	link := func(e time.Duration) simLink {
		if e >= warmup && e < warmup+phase {
			return stepLink(20)
		}
		return stepLink(200)
	}
	tests := []struct {
		name   string
		modify func(*Config)
		seed   uint64
	}{
		{"defaults", func(*Config) {}, 1},
		{"defaults seed 2", func(*Config) {}, 2},
		{"not conservative", func(c *Config) { c.ConservativeMode = false }, 3},
		{"aggressive", func(c *Config) { c.AggressiveAdaptation = true }, 4},
		{"from 1 stream", func(c *Config) { c.Concurrency = 1 }, 5},
	}
	var fixedRuns fixedCache // the bands' fixed runs, shared by the cases
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := stepConfig()
			tt.modify(&cfg)
			r := runController(cfg, link, warmup+2*phase, runOpts{seed: tt.seed})
			parts := []int64{5, 6, 8, 16}
			slow := newBand(&fixedRuns, stepLink(20), cfg, parts)
			fast := newBand(&fixedRuns, stepLink(200), cfg, parts)
			limit := 2 * cfg.AdaptationInterval
			down := r.settleTime(slow, warmup, warmup+phase)
			up := r.settleTime(fast, warmup+phase, warmup+2*phase)
			t.Logf("settle after 200→20 Mbit/s: %v (band: best %.1f Mbit/s at %+v), after 20→200: %v (best %.1f at %+v); params before %+v, in slow phase %+v, at end %+v%s",
				down, slow.best, slow.bestP, up, fast.best, fast.bestP,
				r.paramAt(warmup-time.Second), r.paramAt(warmup+phase-time.Second), r.paramAt(warmup+2*phase), eventsString(r.events))
			checkf(t, down >= 0 && down <= limit, "after the step down: settled after %v, want ≤ %v", down, limit)
			checkf(t, up >= 0 && up <= limit, "after the step up: settled after %v, want ≤ %v", up, limit)
		})
	}
}

// Requirement 2: on a stable link there is no oscillation: at most one
// reversal of a parameter per simulated 10 minutes.
func TestStableNoOscillation(t *testing.T) {
	const d = 30 * time.Minute
	tests := []struct {
		name string
		link simLink
		tcp  bool
		cfg  func(*Config)
	}{
		{"200 Mbit/s 20 ms small windows", stepLink(200), false, func(c *Config) { c.Concurrency, c.MaxConcurrency = 4, 16 }},
		{"50 Mbit/s 100 ms bufferbloat", simLink{RateMbit: 50, RTT: 100 * time.Millisecond, QueueBytes: 2 << 20}, false, func(*Config) {}},
		{"100 Mbit/s 40 ms 0.5% loss with TCP_INFO", simLink{RateMbit: 100, RTT: 40 * time.Millisecond, Loss: 0.005}, true, func(c *Config) { c.MaxConcurrency = 32 }},
		{"100 Mbit/s 60 ms 1% errors", simLink{RateMbit: 100, RTT: 60 * time.Millisecond, ErrRate: 0.01}, false, func(*Config) {}},
		{"20 Mbit/s 10 ms aggressive", stepLink(20), false, func(c *Config) { c.AggressiveAdaptation, c.ConservativeMode = true, false }},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.cfg(&cfg)
			r := runController(cfg, constLink(tt.link), d, runOpts{seed: uint64(10 + i), tcp: tt.tcp})
			rev := reversals(r.events)
			allowed := int(d / (10 * time.Minute))
			t.Logf("%d events, reversals %v in %v, goodput %.1f Mbit/s, final %+v%s",
				len(r.events), rev, d, r.sim.goodputMbit(), r.ctl.Params(), eventsString(r.events))
			for param, n := range rev {
				checkf(t, n <= allowed, "%s reversed %d times in %v, want ≤ %d", param, n, d, allowed)
			}
		})
	}
}

// far is the high-RTT comparison link: 100 Mbit/s, large windows.
func farLink(rtt time.Duration, errRate float64) simLink {
	return simLink{RateMbit: 100, RTT: rtt, QueueBytes: 256 << 10, ErrRate: errRate}
}

// medianPart is the median part size over the last quarter of a run.
func medianPart(r *run) int64 {
	var ps []int64
	last := r.trace[len(r.trace)-1].at
	for _, tp := range r.trace {
		if tp.at >= last*3/4 {
			ps = append(ps, tp.p.PartSize)
		}
	}
	for i := range ps { // insertion sort: small
		for j := i; j > 0 && ps[j] < ps[j-1]; j-- {
			ps[j], ps[j-1] = ps[j-1], ps[j]
		}
	}
	return ps[len(ps)/2]
}

// Requirement 3: on a high-RTT link part size grows (vs 10 ms).
func TestPartSizeGrowsWithRTT(t *testing.T) {
	for _, seed := range []uint64{1, 2} {
		cfg := DefaultConfig()
		near := runController(cfg, constLink(farLink(10*time.Millisecond, 0)), 5*time.Minute, runOpts{seed: seed})
		far := runController(cfg, constLink(farLink(150*time.Millisecond, 0)), 5*time.Minute, runOpts{seed: seed})
		pn, pf := medianPart(near), medianPart(far)
		t.Logf("seed %d: part size %d MiB at 10 ms (overhead %.0f ms, %.1f Mbit/s per stream), %d MiB at 150 ms (overhead %.0f ms, %.1f Mbit/s per stream)",
			seed, pn/MiB, 1000*near.ctl.Snapshot().Estimates.RequestOverheadSeconds, near.ctl.Snapshot().Estimates.PerStreamBps/1e6,
			pf/MiB, 1000*far.ctl.Snapshot().Estimates.RequestOverheadSeconds, far.ctl.Snapshot().Estimates.PerStreamBps/1e6)
		checkf(t, pf >= 2*pn, "seed %d: part size %d MiB at 150 ms, want at least twice the %d MiB at 10 ms", seed, pf/MiB, pn/MiB)
	}
}

// Requirement 4: with 2 % request errors part size shrinks (vs 0 %).
func TestPartSizeShrinksWithErrors(t *testing.T) {
	for _, seed := range []uint64{1, 2} {
		cfg := DefaultConfig()
		clean := runController(cfg, constLink(farLink(150*time.Millisecond, 0)), 15*time.Minute, runOpts{seed: seed})
		lossy := runController(cfg, constLink(farLink(150*time.Millisecond, 0.02)), 15*time.Minute, runOpts{seed: seed})
		pc, pl := medianPart(clean), medianPart(lossy)
		t.Logf("seed %d: part size %d MiB at 0%% errors, %d MiB at 2%% (error rate seen %.3f, goodput %.1f vs %.1f Mbit/s)%s",
			seed, pc/MiB, pl/MiB, lossy.ctl.Snapshot().Estimates.ErrorRate, clean.sim.goodputMbit(), lossy.sim.goodputMbit(), eventsString(lossy.events))
		checkf(t, pl < pc, "seed %d: part size %d MiB with 2%% errors, want below the %d MiB without", seed, pl/MiB, pc/MiB)
	}
}

// Requirement 5: bounds and rate limits always hold, over random links and
// configurations.
func TestBoundsAndRateLimits(t *testing.T) {
	rng := rand.New(rand.NewPCG(42, 1))
	for i := range 24 {
		cfg := DefaultConfig()
		cfg.MinChunkSizeMB = 5 + rng.IntN(20)
		cfg.MaxChunkSizeMB = cfg.MinChunkSizeMB + rng.IntN(120)
		cfg.PartSizeMB = cfg.MinChunkSizeMB + rng.IntN(cfg.MaxChunkSizeMB-cfg.MinChunkSizeMB+1)
		cfg.MinConcurrency = 1 + rng.IntN(4)
		cfg.MaxConcurrency = cfg.MinConcurrency + rng.IntN(30)
		cfg.Concurrency = cfg.MinConcurrency + rng.IntN(cfg.MaxConcurrency-cfg.MinConcurrency+1)
		cfg.AggressiveAdaptation = rng.IntN(2) == 0
		cfg.ConservativeMode = rng.IntN(2) == 0
		cfg.AdaptationSensitivity = []float64{0.5, 1, 2, 4}[rng.IntN(4)]
		cfg.MinAdaptationInterval = time.Duration(rng.IntN(30)) * time.Second
		cfg.MaxAdaptationsPerSession = rng.IntN(12)
		cfg.TargetLatencyMs = []float64{0, 0, 80}[rng.IntN(3)]
		cfg.TargetThroughputMbps = []float64{0, 0, 50}[rng.IntN(3)]
		if err := cfg.Validate(); err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		a := simLink{
			RateMbit: 10 + 490*rng.Float64(), RTT: time.Duration(5+rng.IntN(200)) * time.Millisecond,
			QueueBytes: float64(64<<10 + rng.IntN(4<<20)), WindowBytes: float64(32<<10 + rng.IntN(4<<20)),
			ErrRate: []float64{0, 0, 0.01, 0.05, 0.1}[rng.IntN(5)], Loss: []float64{0, 0, 0.001, 0.01}[rng.IntN(4)],
		}
		b := a
		b.RateMbit = 10 + 490*rng.Float64()
		b.RTT = time.Duration(5+rng.IntN(200)) * time.Millisecond
		link := func(e time.Duration) simLink {
			if (e/(90*time.Second))%2 == 1 {
				return b
			}
			return a
		}
		lo, hi := cfg.partBounds()
		var bad []string
		r := runController(cfg, link, 6*time.Minute, runOpts{seed: uint64(i), tcp: rng.IntN(2) == 0, fileSize: int64(1+rng.IntN(512)) << 20,
			each: func(r *run) {
				p := r.ctl.Params()
				if p.PartSize < lo || p.PartSize > hi || p.PartSize%MiB != 0 || p.Concurrency < cfg.MinConcurrency || p.Concurrency > cfg.MaxConcurrency {
					bad = append(bad, r.sim.elapsed().String())
				}
			}})
		if len(bad) > 0 {
			t.Errorf("case %d: parameters outside the bounds at %v", i, bad)
		}
		minGap := cfg.MinAdaptationInterval
		if cfg.AggressiveAdaptation {
			minGap /= 2
		}
		last := map[string]time.Time{}
		forward := 0
		changes := 0
		prev := cfg.clampParams(Params{PartSize: int64(cfg.PartSizeMB) * MiB, Concurrency: cfg.Concurrency})
		for _, tp := range r.trace {
			if tp.p != prev {
				changes++
				prev = tp.p
			}
		}
		for _, e := range r.events {
			if at, ok := last[e.Param]; ok && e.At.Sub(at) < minGap {
				t.Errorf("case %d: %s changed at %v and again %v later, want ≥ %v", i, e.Param, at.Sub(simEpoch), e.At.Sub(at), minGap)
			}
			last[e.Param] = e.At
			if !e.RolledBack {
				forward++
			}
		}
		if m := cfg.MaxAdaptationsPerSession; m > 0 && forward > m {
			t.Errorf("case %d: %d adaptations, want ≤ max_adaptations_per_session %d", i, forward, m)
		}
		if _, err := json.Marshal(r.ctl.Snapshot()); err != nil {
			t.Errorf("case %d: snapshot does not encode: %v", i, err)
		}
		if changes > len(r.events) {
			t.Errorf("case %d: %d parameter changes but %d events", i, changes, len(r.events))
		}
		t.Logf("case %d: %d events (%d adaptations, max %d), final %+v, goodput %.1f Mbit/s", i, len(r.events), forward, cfg.MaxAdaptationsPerSession, r.ctl.Params(), r.sim.goodputMbit())
	}
}

// Requirement 6: a bad change is rolled back. The server degrades beyond 4
// requests in flight (every connection slows to 60 % per extra request),
// without queueing on the path: adding a stream lowers goodput.
func TestBadChangeRolledBack(t *testing.T) {
	link := simLink{RateMbit: 200, RTT: 20 * time.Millisecond, WindowBytes: 64 << 10, ServerKnee: 4, ServerDecay: 0.6}
	cfg := stepConfig()
	r := runController(cfg, constLink(link), 10*time.Minute, runOpts{seed: 3})
	var probe, back *Event
	for i := range r.events {
		e := &r.events[i]
		if e.Param == ParamConcurrency && e.RolledBack && back == nil {
			back = e
			for j := range r.events[:i] {
				if r.events[j].Seq == e.Reverts {
					probe = &r.events[j]
				}
			}
		}
	}
	t.Logf("goodput %.1f Mbit/s, final %+v, confidence %.2f%s", r.sim.goodputMbit(), r.ctl.Params(), r.ctl.Snapshot().Decision.Confidence, eventsString(r.events))
	if back == nil || probe == nil {
		t.Fatalf("no rollback of a concurrency change")
	}
	checkf(t, probe.New > probe.Old && probe.MeasuredGain != nil && *probe.MeasuredGain < -cfg.BandwidthChangeThreshold,
		"rolled back change %+v: want an increase with a measured loss", *probe)
	checkf(t, back.Old == probe.New && back.New == probe.Old, "rollback %v→%v does not undo %v→%v", back.Old, back.New, probe.Old, probe.New)
	checkf(t, r.ctl.Params().Concurrency <= 4, "final concurrency %d, want ≤ 4 (the server's knee)", r.ctl.Params().Concurrency)
	checkf(t, r.ctl.Snapshot().Decision.Confidence < 1, "confidence not lowered after a rollback")
	ups := 0
	for _, e := range r.events {
		if e.Param == ParamConcurrency && e.New > e.Old && !e.RolledBack {
			ups++
		}
	}
	checkf(t, ups <= 2, "%d increases in 10 minutes after learning that more streams hurt, want ≤ 2", ups)
}

// Requirement 7: warm start uses the saved profile.
func TestWarmStart(t *testing.T) {
	cfg := DefaultConfig() // 5..100 MiB, 1..8 streams
	tests := []struct {
		name string
		warm *Profile
		cfg  func(*Config)
		want Params
	}{
		{"nil", nil, func(*Config) {}, Params{8 * MiB, 8}},
		{"within bounds", &Profile{PartSizeBytes: 24 * MiB, Concurrency: 5}, func(*Config) {}, Params{24 * MiB, 5}},
		{"clamped high", &Profile{PartSizeBytes: 400 * MiB, Concurrency: 40}, func(c *Config) { c.MaxConcurrency = 8 }, Params{100 * MiB, 8}},
		{"clamped low", &Profile{PartSizeBytes: 1 * MiB, Concurrency: 1}, func(c *Config) { c.MinConcurrency, c.Concurrency = 2, 4 }, Params{5 * MiB, 2}},
		{"rounded to MiB", &Profile{PartSizeBytes: 20*MiB + 300<<10, Concurrency: 3}, func(*Config) {}, Params{20 * MiB, 3}},
		{"unknown fields keep config", &Profile{GoodputBps: 1e8}, func(*Config) {}, Params{8 * MiB, 8}},
		{"not adaptive keeps config", &Profile{PartSizeBytes: 24 * MiB, Concurrency: 5}, func(c *Config) { c.Adaptive = false }, Params{8 * MiB, 8}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := cfg
			tt.cfg(&c)
			ctl := NewController(c, &simClock{t: simEpoch}, tt.warm)
			if got := ctl.Params(); got != tt.want {
				t.Errorf("first Params() = %+v, want %+v", got, tt.want)
			}
			if tt.warm == nil {
				return
			}
			snap := ctl.Snapshot()
			checkf(t, snap.Warm, "Snapshot().Warm = false before any sample")
			checkf(t, snap.Estimates.GoodputBps == tt.warm.GoodputBps, "warm estimates not shown: %+v", snap.Estimates)
			p := ctl.Profile()
			checkf(t, p.GoodputBps == tt.warm.GoodputBps && p.PartSizeBytes == tt.want.PartSize,
				"Profile() before samples = %+v, want the warm profile with the current parameters", p)
		})
	}

	// Saved after a session, loaded by the next: the next starts where the
	// last one ended, and does not need the cold start's probing.
	cold := runController(stepConfig(), constLink(stepLink(200)), 3*time.Minute, runOpts{seed: 1})
	saved := cold.ctl.Profile()
	b, err := json.Marshal(saved)
	if err != nil {
		t.Fatal(err)
	}
	var loaded Profile
	if err := json.Unmarshal(b, &loaded); err != nil {
		t.Fatal(err)
	}
	if loaded != saved {
		t.Fatalf("profile JSON round trip:\n got %+v\nwant %+v", loaded, saved)
	}
	warmRun := runController(stepConfig(), constLink(stepLink(200)), 3*time.Minute, runOpts{seed: 2, warm: &loaded})
	first := warmRun.trace[0].p
	t.Logf("profile %s; cold start: %d events, warm start: first %+v, %d events", b, len(cold.events), first, len(warmRun.events))
	checkf(t, first == cold.ctl.Params(), "warm start began with %+v, want the saved %+v", first, cold.ctl.Params())
	checkf(t, len(warmRun.events) < len(cold.events), "warm start made %d changes, cold start %d: want fewer", len(warmRun.events), len(cold.events))
}

// congestionOnly is the baseline that treats every loss as congestion (the
// original design's rule): ×0.7 on retransmissions, +1 otherwise, every
// adaptation interval.
type congestionOnly struct {
	clock      *simClock
	p          Params
	last       time.Time
	segs, retr map[uint64][2]uint64
	dSegs      uint64
	dRetr      uint64
	lo, hi     int
}

func (b *congestionOnly) Params() Params            { return b.p }
func (b *congestionOnly) Observe(RequestSample)     {}
func (b *congestionOnly) Progress(int64, time.Time) {}
func (b *congestionOnly) ObserveTCP(s TCPSample) {
	prev, ok := b.segs[s.Conn]
	if ok {
		b.dSegs += s.SegsOut - prev[0]
		b.dRetr += s.TotalRetrans - prev[1]
	}
	b.segs[s.Conn] = [2]uint64{s.SegsOut, s.TotalRetrans}
}

func (b *congestionOnly) Tick(int) {
	if b.clock.t.Sub(b.last) < 5*time.Second {
		return
	}
	b.last = b.clock.t
	if b.dSegs > 0 && float64(b.dRetr)/float64(b.dSegs) > 0.001 {
		b.p.Concurrency = max(b.lo, int(float64(b.p.Concurrency)*0.7))
	} else {
		b.p.Concurrency = min(b.hi, b.p.Concurrency+1)
	}
	b.dSegs, b.dRetr = 0, 0
}

// Requirement 8: random loss (100 Mbit/s, 40 ms, 0.5 %): concurrency climbs
// well above a congestion-only controller's choice, and goodput is at least
// 1.5× that of 5 MiB × 4.
func TestRandomLoss(t *testing.T) {
	link := simLink{RateMbit: 100, RTT: 40 * time.Millisecond, Loss: 0.005}
	const d = 5 * time.Minute
	cfg := DefaultConfig()
	cfg.Concurrency, cfg.MaxConcurrency = 4, 32
	for _, tcp := range []bool{true, false} {
		r := runController(cfg, constLink(link), d, runOpts{seed: 8, tcp: tcp})

		clock := &simClock{t: simEpoch}
		base := &congestionOnly{clock: clock, p: Params{16 * MiB, 4}, last: simEpoch, segs: map[uint64][2]uint64{}, lo: 1, hi: 32}
		bs := newSim(simConfig{link: constLink(link), seed: 8, tcp: true}, clock, base)
		bs.run(d, nil)

		clock2 := &simClock{t: simEpoch}
		fs := newSim(simConfig{link: constLink(link), seed: 8}, clock2, fixedUploader{Fixed{P: Params{5 * MiB, 4}}})
		fs.run(d, nil)

		got := r.ctl.Params().Concurrency
		snap := r.ctl.Snapshot()
		t.Logf("TCP_INFO %v: adaptive %d streams, %.1f Mbit/s (loss kind %q, tcp loss %.4f); congestion-only %d streams, %.1f Mbit/s; 5 MiB × 4: %.1f Mbit/s; ratio %.2f",
			tcp, got, r.sim.goodputMbit(), snap.Estimates.LossKind, snap.Estimates.TCPLossRate, base.p.Concurrency, bs.goodputMbit(), fs.goodputMbit(), r.sim.goodputMbit()/fs.goodputMbit())
		checkf(t, got >= 2*base.p.Concurrency && got >= 12, "concurrency %d, want well above the congestion-only controller's %d", got, base.p.Concurrency)
		checkf(t, r.sim.goodputMbit() >= 1.5*fs.goodputMbit(), "goodput %.1f Mbit/s, want ≥ 1.5 × %.1f (5 MiB × 4)", r.sim.goodputMbit(), fs.goodputMbit())
		if tcp {
			checkf(t, snap.Estimates.LossKind == "random", "loss kind %q, want random", snap.Estimates.LossKind)
		}
	}
}

// Requirement 9: adaptive=false never changes Params, but the snapshot
// still has estimates.
func TestNotAdaptive(t *testing.T) {
	cfg := stepConfig()
	cfg.Adaptive = false
	link := func(e time.Duration) simLink {
		if e > time.Minute {
			return stepLink(20)
		}
		return stepLink(200)
	}
	want := NewFixed(cfg).Params()
	r := runController(cfg, link, 3*time.Minute, runOpts{seed: 1, tcp: true})
	for _, tp := range r.trace {
		if tp.p != want {
			t.Fatalf("Params changed to %+v at %v", tp.p, tp.at)
		}
	}
	s := r.ctl.Snapshot()
	checkf(t, len(s.Events) == 0, "events with adaptive=false: %v", eventsString(s.Events))
	e := s.Estimates
	checkf(t, !s.Adaptive && s.Health != HealthUnknown, "adaptive %v, health %v", s.Adaptive, s.Health)
	checkf(t, e.GoodputBps > 0 && e.BottleneckBandwidthBps > 0 && e.PropagationRTTSeconds > 0 && e.PerStreamBps > 0 && e.RTTInflation > 0,
		"estimates missing: %+v", e)
	checkf(t, math.Abs(e.GoodputBps-20e6) < 2e6, "goodput %.1f Mbit/s after the drop to 20", e.GoodputBps/1e6)
	t.Logf("estimates: %+v, health %v, trend %+v", e, s.Health, s.Trend)
}

// TestIdleHoldsParams: ticks with nothing in flight measure nothing, so
// they change nothing, however congested the last busy window looked. A
// daemon waiting on its write-back delay shrank its concurrency from 8 to
// 2 in 20 s on the old samples.
func TestIdleHoldsParams(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Concurrency = 8
	clock := &simClock{t: simEpoch}
	c := NewController(cfg, clock, nil)
	const part = 8 << 20
	// 20 s busy: responses first quick, then a hundredfold slower.
	for i := range 200 {
		lat := 10 * time.Millisecond
		if i >= 100 {
			lat = time.Second
		}
		end := clock.t
		c.Observe(RequestSample{Bulk: true, Bytes: part, Start: end.Add(-lat - 100*time.Millisecond),
			BodyDone: end.Add(-lat), FirstByte: end, End: end})
		c.Progress(part/10, end)
		clock.t = clock.t.Add(100 * time.Millisecond)
		if i%20 == 19 {
			c.Tick(8)
		}
	}
	busy := c.Snapshot()
	before, params := len(busy.Events), c.Params()
	for range 60 { // two idle minutes
		clock.t = clock.t.Add(2 * time.Second)
		c.Tick(0)
	}
	after := c.Snapshot()
	if len(after.Events) != before || c.Params() != params {
		t.Fatalf("idle ticks changed %+v to %+v: %s", params, c.Params(), eventsString(after.Events[before:]))
	}
	t.Logf("busy phase: %d events, params %+v", before, params)
}

// TestTCPToAProxy: when our connections end at a local proxy, TCP_INFO's
// RTT (tens of µs, inflated by the proxy's buffers) is not the path's, and
// the controller must not take it for a standing queue. It reaches the same
// goodput as with TCP_INFO of the real path, and reports the path's RTT.
func TestTCPToAProxy(t *testing.T) {
	link := func(time.Duration) simLink {
		return simLink{RateMbit: 200, RTT: 40 * time.Millisecond, WindowBytes: 256 << 10}
	}
	cfg := stepConfig()
	direct := runController(cfg, link, 5*time.Minute, runOpts{seed: 3, tcp: true})
	proxied := runController(cfg, link, 5*time.Minute, runOpts{seed: 3, tcp: true, proxyTCP: true})
	gd, gp := direct.ctl.Snapshot().Estimates.GoodputBps, proxied.ctl.Snapshot().Estimates.GoodputBps
	rtt := proxied.ctl.Snapshot().Estimates.PropagationRTTSeconds
	t.Logf("goodput direct %.1f, via proxy %.1f Mbit/s; propagation RTT via proxy %.1f ms; params %+v vs %+v",
		gd/1e6, gp/1e6, 1000*rtt, direct.ctl.Params(), proxied.ctl.Params())
	checkf(t, gp >= 0.9*gd, "goodput via the proxy %.1f Mbit/s < 90%% of %.1f direct: %s", gp/1e6, gd/1e6, eventsString(proxied.events))
	checkf(t, rtt >= 0.035, "propagation RTT %.2f ms via the proxy, the path's is 40", 1000*rtt)
}

// TestRandomLossFirstStep: under measured random loss the first step is
// ×4, so a short transfer on a loss-capped link reaches the streams it
// needs within seconds (the lossy benchmark's 192 MiB take ~30 s); where
// the loss is a shallow buffer's congestion and the big step buys nothing,
// it is halved back and the link stays full.
func TestRandomLossFirstStep(t *testing.T) {
	for _, tt := range []struct {
		name    string
		link    simLink
		d       time.Duration
		minMbit float64
	}{
		// ×2 steps: 35.8 Mbit/s over the first 30 s.
		{"100 Mbit/s 40 ms 0.5% loss, 30 s", simLink{RateMbit: 100, RTT: 40 * time.Millisecond, Loss: 0.005}, 30 * time.Second, 60},
		{"100 Mbit/s 40 ms 0.5% loss, 60 s", simLink{RateMbit: 100, RTT: 40 * time.Millisecond, Loss: 0.005}, time.Minute, 85},
		// A 16 KiB buffer: congestion shows as retransmits without a queue.
		{"100 Mbit/s 40 ms shallow buffer, 60 s", simLink{RateMbit: 100, RTT: 40 * time.Millisecond, QueueBytes: 16 << 10}, time.Minute, 95},
		{"200 Mbit/s 10 ms shallow buffer, 60 s", simLink{RateMbit: 200, RTT: 10 * time.Millisecond, QueueBytes: 24 << 10}, time.Minute, 188},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var sum float64
			for seed := uint64(1); seed <= 3; seed++ {
				r := runController(DefaultConfig(), constLink(tt.link), tt.d, runOpts{seed: seed, tcp: true})
				sum += r.sim.goodputMbit()
				if seed == 1 {
					t.Logf("%.1f Mbit/s\n%s", r.sim.goodputMbit(), eventsString(r.ctl.Snapshot().Events))
				}
			}
			checkf(t, sum/3 >= tt.minMbit, "mean goodput %.1f Mbit/s over %v, want ≥ %.0f", sum/3, tt.d, tt.minMbit)
		})
	}
}
