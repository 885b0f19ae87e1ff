package adapt

import (
	"encoding/json"
	"math"
	"strings"
	"sync"
	"testing"
	"time"
)

// hand drives a controller tick by tick with hand-made samples.
type hand struct {
	t     *testing.T
	clock *simClock
	c     *Controller
}

func newHand(t *testing.T, cfg Config, opts ...Option) *hand {
	clock := &simClock{t: simEpoch}
	return &hand{t: t, clock: clock, c: NewController(cfg, clock, nil, opts...)}
}

// tick advances by the monitoring interval, feeding bytes of progress and
// the given samples (times relative to the tick's end), then Ticks.
func (h *hand) tick(bytes int64, inFlight int, samples ...RequestSample) {
	h.clock.t = h.clock.t.Add(h.c.cfg.MonitoringInterval)
	h.c.Progress(bytes, h.clock.t)
	for _, s := range samples {
		h.c.Observe(s)
	}
	h.c.Tick(inFlight)
}

// part is a completed part of n bytes sent in body, answered after wait,
// ending now.
func (h *hand) part(n int64, body, wait time.Duration) RequestSample {
	end := h.clock.t.Add(h.c.cfg.MonitoringInterval)
	return RequestSample{Bulk: true, Bytes: n, Start: end.Add(-body - wait), BodyDone: end.Add(-wait), FirstByte: end, End: end}
}

func (h *hand) small(lat time.Duration, failed, retry bool) RequestSample {
	end := h.clock.t.Add(h.c.cfg.MonitoringInterval)
	return RequestSample{Start: end.Add(-lat), FirstByte: end, End: end, Failed: failed, Retry: retry}
}

func notAdaptive() Config {
	cfg := DefaultConfig()
	cfg.Adaptive = false
	return cfg
}

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol*math.Max(1, math.Abs(b)) }

func TestEstimateBottleneckBandwidth(t *testing.T) {
	h := newHand(t, notAdaptive())
	for _, mb := range []int64{1, 3, 2} {
		h.tick(mb<<20, 4)
	}
	e := h.c.Snapshot().Estimates
	if want := 8 * 3.0 * MiB / 2; !near(e.BottleneckBandwidthBps, want, 1e-9) {
		t.Errorf("bottleneck %v, want %v (max of 1, 3, 2 MiB per 2 s)", e.BottleneckBandwidthBps, want)
	}
	// Goodput is over the adaptation interval (5 s: the last three ticks).
	if want := 8 * 6.0 * MiB / 6; !near(e.GoodputBps, want, 1e-9) {
		t.Errorf("goodput %v, want %v", e.GoodputBps, want)
	}
	for range 6 { // 12 s later the 3 MiB tick has left the 10 s window
		h.tick(1<<20, 4)
	}
	e = h.c.Snapshot().Estimates
	if want := 8 * 1.0 * MiB / 2; !near(e.BottleneckBandwidthBps, want, 1e-9) || !near(e.Utilization, 1, 1e-9) {
		t.Errorf("after 12 s at 1 MiB/tick: bottleneck %v, utilization %v; want %v, 1", e.BottleneckBandwidthBps, e.Utilization, want)
	}
}

func TestEstimateCompletedBytesWithoutProgress(t *testing.T) {
	h := newHand(t, notAdaptive())
	for range 3 {
		h.tick(0, 2, h.part(4<<20, time.Second, 30*time.Millisecond))
	}
	if e := h.c.Snapshot().Estimates; !near(e.GoodputBps, 8*2.0*MiB, 1e-9) {
		t.Errorf("goodput from completed parts %v, want %v", e.GoodputBps, 8*2.0*MiB)
	}
}

func TestEstimateRTTInflation(t *testing.T) {
	h := newHand(t, notAdaptive())
	for range 5 {
		h.tick(1<<20, 2, h.part(1<<20, time.Second, 40*time.Millisecond), h.part(1<<20, time.Second, 40*time.Millisecond))
	}
	e := h.c.Snapshot().Estimates
	if e.RTTSource != "response" || !near(e.PropagationRTTSeconds, 0.040, 1e-9) || e.RTTInflation != 0 {
		t.Fatalf("unloaded: source %q, propagation %v, inflation %v", e.RTTSource, e.PropagationRTTSeconds, e.RTTInflation)
	}
	// The window of the last adaptation interval holds three ticks: 60, 80
	// and 100 ms, inflations 0.5, 1, 1.5.
	for _, ms := range []time.Duration{60, 80, 100} {
		h.tick(1<<20, 2, h.part(1<<20, time.Second, ms*time.Millisecond))
	}
	e = h.c.Snapshot().Estimates
	if !near(e.RTTInflation, 1.0, 1e-9) || e.Congestion != 1 || !near(e.PropagationRTTSeconds, 0.040, 1e-9) {
		t.Errorf("inflation %v, congestion %v, propagation %v; want 1, 1, 0.040", e.RTTInflation, e.Congestion, e.PropagationRTTSeconds)
	}
	if e.JitterSeconds <= 0 || e.RTTStddevSeconds <= 0 {
		t.Errorf("jitter %v, stddev %v, want > 0", e.JitterSeconds, e.RTTStddevSeconds)
	}
	// The propagation estimate is sticky: 30 s of inflated samples do not
	// move it...
	for range 20 {
		h.tick(1<<20, 2, h.part(1<<20, time.Second, 100*time.Millisecond))
	}
	if e = h.c.Snapshot().Estimates; !near(e.PropagationRTTSeconds, 0.040, 1e-9) {
		t.Errorf("propagation %v after 40 s of 100 ms, want still 0.040", e.PropagationRTTSeconds)
	}
	// ...but ten minutes without seeing it again do (the path changed).
	for range int(minRTTMaxAge / (2 * time.Second)) {
		h.tick(1<<20, 2, h.part(1<<20, time.Second, 100*time.Millisecond))
	}
	if e = h.c.Snapshot().Estimates; !near(e.PropagationRTTSeconds, 0.100, 1e-9) || e.RTTInflation != 0 {
		t.Errorf("after 10 min at 100 ms: propagation %v, inflation %v; want 0.100, 0", e.PropagationRTTSeconds, e.RTTInflation)
	}
}

func TestEstimateTCPPreferred(t *testing.T) {
	h := newHand(t, notAdaptive())
	for i := range 4 {
		h.clock.t = h.clock.t.Add(2 * time.Second)
		for conn := range uint64(2) {
			h.c.ObserveTCP(TCPSample{Conn: conn, At: h.clock.t, SRTT: 20 * time.Millisecond, RTTVar: 2 * time.Millisecond,
				SegsOut: uint64(1000 * (i + 1)), TotalRetrans: uint64(5 * (i + 1))})
		}
		h.c.Observe(h.part(1<<20, time.Second, 50*time.Millisecond))
		h.c.Tick(2)
	}
	e := h.c.Snapshot().Estimates
	if e.RTTSource != "tcp" || !near(e.PropagationRTTSeconds, 0.020, 1e-9) || !near(e.JitterSeconds, 0.002, 1e-9) {
		t.Errorf("source %q, propagation %v, jitter %v; want tcp, 0.020, 0.002", e.RTTSource, e.PropagationRTTSeconds, e.JitterSeconds)
	}
	// Deltas per connection: 3 × 2 × (1000 segments, 5 retransmitted).
	if !near(e.TCPLossRate, 0.005, 1e-9) || e.LossKind != "random" {
		t.Errorf("TCP loss %v (%s), want 0.005 random", e.TCPLossRate, e.LossKind)
	}
}

func TestEstimateErrorRate(t *testing.T) {
	h := newHand(t, notAdaptive())
	// 10 attempts: 2 failed, 1 retried.
	h.tick(1<<20, 1,
		h.small(30*time.Millisecond, false, false), h.small(30*time.Millisecond, true, false),
		h.small(30*time.Millisecond, false, true), h.small(30*time.Millisecond, true, false),
		h.part(1<<20, time.Second, 30*time.Millisecond), h.part(1<<20, time.Second, 30*time.Millisecond),
		h.part(1<<20, time.Second, 30*time.Millisecond), h.part(1<<20, time.Second, 30*time.Millisecond),
		h.part(1<<20, time.Second, 30*time.Millisecond), h.part(1<<20, time.Second, 30*time.Millisecond))
	e := h.c.Snapshot().Estimates
	if !near(e.ErrorRate, 0.2, 1e-9) || !near(e.RetryRate, 0.1, 1e-9) || e.LossKind != "random" {
		t.Errorf("error rate %v, retry rate %v, loss kind %s; want 0.2, 0.1, random", e.ErrorRate, e.RetryRate, e.LossKind)
	}
	if !near(e.PerStreamBps, 8*MiB, 1e-9) {
		t.Errorf("per-stream %v, want %v (1 MiB in 1 s)", e.PerStreamBps, 8*MiB)
	}
	if h.c.Snapshot().Health != HealthCritical {
		t.Errorf("health %v at 20%% errors, want Critical", h.c.Snapshot().Health)
	}
	// The window is 60 s: 31 clean ticks later the errors are gone.
	for range 31 {
		h.tick(1<<20, 1, h.part(1<<20, time.Second, 30*time.Millisecond))
	}
	if e = h.c.Snapshot().Estimates; e.ErrorRate != 0 || e.LossKind != "none" {
		t.Errorf("error rate %v (%s) a minute later, want 0 none", e.ErrorRate, e.LossKind)
	}
}

func TestTrendAndHealth(t *testing.T) {
	tests := []struct {
		name   string
		rate   func(i int) int64 // bytes per tick
		dir    TrendDirection
		health Health
	}{
		{"stable", func(int) int64 { return 10 << 20 }, TrendStable, HealthExcellent},
		{"improving", func(i int) int64 { return int64(10+i) << 20 }, TrendImproving, HealthExcellent},
		{"degrading", func(i int) int64 { return int64(60-i) << 20 }, TrendDegrading, HealthGood},
		{"volatile", func(i int) int64 { return int64(10+20*(i%2)) << 20 }, TrendVolatile, HealthFair},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHand(t, notAdaptive())
			for i := range 40 {
				h.tick(tt.rate(i), 4, h.part(1<<20, time.Second, 30*time.Millisecond))
			}
			s := h.c.Snapshot()
			if s.Trend.Direction != tt.dir || s.Health != tt.health || s.Trend.Confidence <= 0 || s.Trend.Confidence > 1 {
				t.Errorf("trend %+v, health %v; want %s, %v", s.Trend, s.Health, tt.dir, tt.health)
			}
		})
	}
}

func TestSnapshotJSON(t *testing.T) {
	h := newHand(t, DefaultConfig())
	for range 3 {
		h.tick(1<<20, 8, h.part(1<<20, time.Second, 30*time.Millisecond))
	}
	h.c.RecordEvent(Event{At: h.clock.t, Param: "compression_level", Old: 1, New: 2, Reason: "test"})
	s := h.c.Snapshot()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"health":"Excellent"`, `"goodput_bps":`, `"bottleneck_bandwidth_bps":`, `"propagation_rtt_seconds":`,
		`"part_size_bytes":8388608`, `"min_part_size_bytes":5242880`, `"measured_gain":null`, `"param":"compression_level"`, `"seq":1`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("snapshot JSON lacks %s:\n%s", want, b)
		}
	}
	var back Snapshot
	if err := json.Unmarshal(b, &back); err != nil || back.Health != s.Health {
		t.Errorf("unmarshal: %v, health %v", err, back.Health)
	}
	// The copy is the caller's.
	s.Events[0].Trigger = map[string]float64{"x": 1}
	s.Events[0].Reason = "changed"
	if h.c.Snapshot().Events[0].Reason != "test" {
		t.Error("Snapshot shares its events with the controller")
	}
}

type recordingPolicy struct {
	mu    sync.Mutex
	calls []Estimates
}

func (p *recordingPolicy) Update(_ time.Time, e Estimates) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, e)
}

func TestLevelPolicyHook(t *testing.T) {
	p := &recordingPolicy{}
	h := newHand(t, DefaultConfig(), WithLevelPolicy(p))
	for range 3 {
		h.tick(4<<20, 8)
	}
	if len(p.calls) != 3 || p.calls[2].GoodputBps <= 0 {
		t.Errorf("policy saw %d updates (%+v), want 3 with goodput", len(p.calls), p.calls)
	}
}

// Params is read on the request path while samples arrive and the owner
// Ticks: no data race (go test -race), no blocking.
func TestConcurrentUse(t *testing.T) {
	clock := &lockedClock{t: simEpoch}
	c := NewController(DefaultConfig(), clock, nil)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 2000 {
				now := clock.Now()
				c.Progress(32<<10, now)
				if i%50 == 0 {
					c.Observe(RequestSample{Bulk: g%2 == 0, Bytes: 1 << 20, Start: now.Add(-time.Second), BodyDone: now.Add(-20 * time.Millisecond), FirstByte: now, End: now})
					c.ObserveTCP(TCPSample{Conn: uint64(g), At: now, SRTT: 20 * time.Millisecond, SegsOut: uint64(i), TotalRetrans: 0})
				}
				if p := c.Params(); p.Concurrency < 1 || p.PartSize < 5*MiB {
					t.Errorf("bad params %+v", p)
					return
				}
			}
		})
	}
	for range 200 {
		clock.advance(100 * time.Millisecond)
		c.Tick(4)
		_ = c.Snapshot()
		_ = c.Profile()
	}
	wg.Wait()
}

type lockedClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *lockedClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *lockedClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}
