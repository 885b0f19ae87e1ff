package adapt

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestDefaultConfigValid(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	c := DefaultConfig()
	if !c.Adaptive || !c.ConservativeMode || c.AggressiveAdaptation || c.MonitoringInterval != 2*time.Second ||
		c.AdaptationInterval != 5*time.Second || c.MinAdaptationInterval != 10*time.Second ||
		c.BandwidthChangeThreshold != 0.1 || c.LatencyChangeThreshold != 0.2 || c.LossChangeThreshold != 0.001 ||
		c.AdaptationSensitivity != 1 || c.MaxTolerableLoss != 0.05 || c.MaxAdaptationsPerSession != 0 {
		t.Errorf("defaults differ from the design: %+v", c)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Config)
		want   string // key named in the error; "" = valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"min chunk", func(c *Config) { c.MinChunkSizeMB = 4 }, "min_chunk_size_mb"},
		{"max chunk", func(c *Config) { c.MaxChunkSizeMB = 6000 }, "max_chunk_size_mb"},
		{"part size", func(c *Config) { c.PartSizeMB = 200 }, "part_size_mb"},
		{"min concurrency", func(c *Config) { c.MinConcurrency = 0 }, "min_concurrency"},
		{"concurrency", func(c *Config) { c.Concurrency = c.MaxConcurrency + 1 }, "concurrency"},
		{"monitoring", func(c *Config) { c.MonitoringInterval = 50 * time.Millisecond }, "monitoring_interval"},
		{"adaptation below monitoring", func(c *Config) { c.AdaptationInterval = time.Second }, "adaptation_interval"},
		{"bandwidth zero", func(c *Config) { c.BandwidthChangeThreshold = 0 }, "bandwidth_change_threshold"},
		{"bandwidth NaN", func(c *Config) { c.BandwidthChangeThreshold = math.NaN() }, "bandwidth_change_threshold"},
		{"latency", func(c *Config) { c.LatencyChangeThreshold = -1 }, "latency_change_threshold"},
		{"loss", func(c *Config) { c.LossChangeThreshold = 1 }, "loss_change_threshold"},
		{"sensitivity", func(c *Config) { c.AdaptationSensitivity = 0 }, "adaptation_sensitivity"},
		{"target throughput", func(c *Config) { c.TargetThroughputMbps = -5 }, "target_throughput_mbps"},
		{"target latency", func(c *Config) { c.TargetLatencyMs = math.Inf(1) }, "target_latency_ms"},
		{"max tolerable loss", func(c *Config) { c.MaxTolerableLoss = 0 }, "max_tolerable_loss"},
		{"min adaptation interval", func(c *Config) { c.MinAdaptationInterval = -time.Second }, "min_adaptation_interval"},
		{"max adaptations", func(c *Config) { c.MaxAdaptationsPerSession = -1 }, "max_adaptations_per_session"},
		{"targets set", func(c *Config) { c.TargetThroughputMbps, c.TargetLatencyMs = 100, 50 }, ""},
		{"no rate limit", func(c *Config) { c.MinAdaptationInterval = 0 }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.modify(&c)
			err := c.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("unexpected error %v", err)
			case tt.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.want+":")):
				t.Errorf("got %v, want an error naming %s", err, tt.want)
			}
		})
	}
}

func TestClampParams(t *testing.T) {
	c := DefaultConfig()
	c.MaxChunkSizeMB = 5120
	tests := []struct{ in, want Params }{
		{Params{16 * MiB, 4}, Params{16 * MiB, 4}},
		{Params{0, 0}, Params{5 * MiB, 1}},
		{Params{6 << 40, 100}, Params{5120 * MiB, int(c.MaxConcurrency)}},
		{Params{10*MiB + MiB/2, 2}, Params{11 * MiB, 2}},
		{Params{10*MiB + MiB/2 - 1, 2}, Params{10 * MiB, 2}},
	}
	for _, tt := range tests {
		if got := c.clampParams(tt.in); got != tt.want {
			t.Errorf("clampParams(%+v) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
	if got := NewFixed(c).Params(); got != (Params{8 * MiB, 8}) {
		t.Errorf("NewFixed = %+v", got)
	}
}

// The optional knobs steer the same controller over the simulated link.
func TestKnobs(t *testing.T) {
	tests := []struct {
		name  string
		cfg   func(*Config)
		opts  []Option
		tcp   bool
		link  simLink
		check func(t *testing.T, r *run)
	}{
		{
			name: "memory budget caps part size × concurrency",
			cfg:  func(*Config) {},
			opts: []Option{WithMemoryBudget(64 * MiB)},
			link: farLink(150*time.Millisecond, 0),
			check: func(t *testing.T, r *run) {
				if p := r.ctl.Params(); p.PartSize*int64(p.Concurrency) > 64*MiB {
					t.Errorf("final %+v exceeds the 64 MiB budget", p)
				}
			},
		},
		{
			name: "target throughput stops probing",
			cfg:  func(c *Config) { c.Concurrency, c.MaxConcurrency, c.TargetThroughputMbps = 1, 16, 50 },
			link: stepLink(200),
			check: func(t *testing.T, r *run) {
				if c := r.ctl.Params().Concurrency; c > 3 {
					t.Errorf("concurrency %d for a 50 Mbit/s target at 26 Mbit/s per stream, want ≤ 3", c)
				}
				if g := r.sim.goodputMbit(); g < 45 {
					t.Errorf("goodput %.1f Mbit/s, want about the 50 Mbit/s target", g)
				}
			},
		},
		{
			// Queueing alone (latency_change_threshold out of the way);
			// TCP_INFO's min RTT shows the unloaded path.
			name: "target latency shortens the queue",
			cfg:  func(c *Config) { c.TargetLatencyMs, c.LatencyChangeThreshold = 60, 10 },
			tcp:  true,
			link: simLink{RateMbit: 100, RTT: 20 * time.Millisecond, WindowBytes: 256 << 10, QueueBytes: 1 << 20},
			check: func(t *testing.T, r *run) {
				if lat := r.ctl.Snapshot().Estimates.SmoothedRTTSeconds; lat > 0.060 {
					t.Errorf("latency %.0f ms, want ≤ the 60 ms target", lat*1000)
				}
			},
		},
		{
			// Random errors: the cut loses goodput and is undone.
			name: "errors beyond max_tolerable_loss cut concurrency",
			cfg:  func(*Config) {},
			link: simLink{RateMbit: 200, RTT: 20 * time.Millisecond, WindowBytes: 64 << 10, QueueBytes: 512 << 10, ErrRate: 0.15},
			check: func(t *testing.T, r *run) {
				cut, undone := false, false
				for _, e := range r.events {
					cut = cut || e.Param == ParamConcurrency && strings.Contains(e.Reason, "max_tolerable_loss")
					undone = undone || cut && e.RolledBack
				}
				if !cut || !undone || r.ctl.Snapshot().Health != HealthCritical {
					t.Errorf("15%% random errors: cut %v, undone %v, health %v; want true, true, Critical", cut, undone, r.ctl.Snapshot().Health)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.cfg(&cfg)
			clock := &simClock{t: simEpoch}
			ctl := NewController(cfg, clock, nil, tt.opts...)
			r := &run{ctl: ctl, cfg: cfg}
			r.sim = newSim(simConfig{link: constLink(tt.link), seed: 5, tcp: tt.tcp}, clock, ctl)
			r.sim.run(5*time.Minute, nil)
			r.events = ctl.Snapshot().Events
			t.Logf("final %+v, goodput %.1f Mbit/s%s", ctl.Params(), r.sim.goodputMbit(), eventsString(r.events))
			tt.check(t, r)
		})
	}
}
