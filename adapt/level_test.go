package adapt

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

var levelNames = []string{"none", "zstd-fast", "zstd", "zstd-high", "zstd-max"}

// codecModel is a simulated compressor on 4:1 data: speed of one worker
// (raw bytes/s) and ratio per level.
type codecModel struct {
	speed, ratio []float64
	// cores is how many workers' worth of CPU compression really gets
	// (other work shares the machine); 0 = all of them.
	cores float64
}

var logData = codecModel{
	speed: []float64{0, 400e6, 150e6, 60e6, 8e6},
	ratio: []float64{1, 3.2, 4.0, 4.3, 4.6},
}

type recorder struct {
	events []Event
}

func (r *recorder) RecordEvent(e Event) uint64 {
	e.Seq = uint64(len(r.events) + 1)
	r.events = append(r.events, e)
	return e.Seq
}

func (r *recorder) MeasureEvent(seq uint64, gain float64) {
	r.events[seq-1].MeasuredGain = &gain
}

// runLevels drives a chooser for d of simulated time: the pipeline
// compresses frames at the current level as fast as the slower of the
// workers and the link allow, samples a neighbour level every 16th frame,
// and the controller's estimates come every monitoring interval. It returns
// the level at the end.
func runLevels(t *testing.T, l *LevelChooser, clk *simClock, m func(time.Duration) codecModel, linkBps float64, d time.Duration, seed uint64) int {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	const frame = 2 << 20
	end := clk.t.Add(d)
	start := clk.t
	nextTick := clk.t.Add(2 * time.Second)
	n := 0
	for clk.t.Before(end) {
		cm := m(clk.t.Sub(start))
		lv := l.Level()
		noise := func() float64 { return 1 + 0.1*(rng.Float64()-0.5) }
		raw := float64(frame)
		var rate float64 // raw bytes/s delivered
		if lv == 0 {
			rate = linkBps / 8
		} else {
			cores := float64(l.workers)
			if cm.cores > 0 {
				cores = cm.cores
			}
			rate = min(cores*cm.speed[lv], linkBps/8*cm.ratio[lv])
			l.Observe(lv, frame, int64(raw/(cm.ratio[lv]*noise())), time.Duration(raw/(cm.speed[lv]*noise())*float64(time.Second)))
		}
		n++
		if n%16 == 0 {
			if s, ok := l.SampleLevel(); ok {
				l.Observe(s, frame, int64(raw/(cm.ratio[s]*noise())), time.Duration(raw/(cm.speed[s]*noise())*float64(time.Second)))
			}
		}
		clk.t = clk.t.Add(time.Duration(raw / rate * float64(time.Second)))
		for !clk.t.Before(nextTick) {
			wire := rate / max(1, cm.ratio[lv]) * 8
			if lv == 0 {
				wire = rate * 8
			}
			appLimited := wire < 0.95*linkBps
			// Four streams allowed; one request sends at up to 300 MB/s.
			perStream := min(linkBps/4, 2.4e9)
			l.Update(nextTick, Estimates{BottleneckBandwidthBps: wire, GoodputBps: wire, AppLimited: appLimited,
				PerStreamBps: perStream, InFlight: 1})
			nextTick = nextTick.Add(2 * time.Second)
		}
	}
	return l.Level()
}

func newTestChooser(cfg Config, initial int) (*LevelChooser, *simClock, *recorder) {
	clk := &simClock{t: time.Unix(1_700_000_000, 0)}
	l := NewLevelChooser(cfg, clk, levelNames, 2, initial, true)
	r := &recorder{}
	l.SetRecorder(r)
	l.SetConcurrencySource(func() int { return 4 })
	return l, clk, r
}

// TestLevelFollowsLink: the same 4:1 data settles on a higher level over a
// 20 Mbit/s link than over 1 Gbit/s, from any starting level.
func TestLevelFollowsLink(t *testing.T) {
	fixed := func(time.Duration) codecModel { return logData }
	for _, start := range []int{1, 2, 3} {
		slow, clk, r := newTestChooser(DefaultConfig(), start)
		lSlow := runLevels(t, slow, clk, fixed, 20e6, 10*time.Minute, 1)
		fast, clk2, r2 := newTestChooser(DefaultConfig(), start)
		lFast := runLevels(t, fast, clk2, fixed, 1e9, 10*time.Minute, 1)
		t.Logf("start %s: 20 Mbit/s → %s (%d events), 1 Gbit/s → %s (%d events)",
			levelNames[start], levelNames[lSlow], len(r.events), levelNames[lFast], len(r2.events))
		if lSlow <= lFast {
			t.Fatalf("start %s: 20 Mbit/s settled on %s, 1 Gbit/s on %s: want the slow link higher",
				levelNames[start], levelNames[lSlow], levelNames[lFast])
		}
		if lFast > 1 {
			t.Fatalf("1 Gbit/s with 2 workers at 400 MB/s settled on %s, want zstd-fast or none", levelNames[lFast])
		}
		for _, e := range append(r.events, r2.events...) {
			if e.Param != ParamCompressionLevel || e.Reason == "" || e.Trigger["link_bps"] <= 0 {
				t.Fatalf("event without its measurements: %+v", e)
			}
		}
	}
}

// TestLevelStableWithoutOscillation: on a stable link the level changes a
// few times at most while it climbs, then holds.
func TestLevelStableWithoutOscillation(t *testing.T) {
	l, clk, r := newTestChooser(DefaultConfig(), 1)
	runLevels(t, l, clk, func(time.Duration) codecModel { return logData }, 20e6, 10*time.Minute, 2)
	reversals := 0
	for i := 1; i < len(r.events); i++ {
		a, b := r.events[i-1], r.events[i]
		if (a.New-a.Old)*(b.New-b.Old) < 0 {
			reversals++
		}
	}
	if reversals > 1 || len(r.events) > 4 {
		t.Fatalf("%d events, %d reversals in 10 minutes: %+v", len(r.events), reversals, r.events)
	}
	for i := 1; i < len(r.events); i++ {
		if gap := r.events[i].At.Sub(r.events[i-1].At); gap < DefaultConfig().MinAdaptationInterval {
			t.Fatalf("two level changes %s apart, under min_adaptation_interval", gap)
		}
	}
}

// TestLevelDropsWhenDataStopsCompressing: the data turns incompressible
// mid-session (ratio 1.02 at every level) and the level falls to none.
func TestLevelDropsWhenDataStopsCompressing(t *testing.T) {
	l, clk, _ := newTestChooser(DefaultConfig(), 2)
	flat := codecModel{speed: logData.speed, ratio: []float64{1, 1.02, 1.02, 1.02, 1.03}}
	got := runLevels(t, l, clk, func(el time.Duration) codecModel {
		if el < 3*time.Minute {
			return logData
		}
		return flat
	}, 20e6, 10*time.Minute, 3)
	if got > 1 {
		t.Fatalf("incompressible data on 20 Mbit/s ended at %s", levelNames[got])
	}
}

// TestLevelRollsBack: a change predicted from a curve that turns out wrong
// once the level is in use is undone and recorded as a rollback.
func TestLevelRollsBack(t *testing.T) {
	l, clk, r := newTestChooser(DefaultConfig(), 1)
	// Sampled frames made zstd look good; in bulk it is 10× slower.
	for range 5 {
		l.Observe(2, 2<<20, 400<<10, 5*time.Millisecond) // 400 MB/s, 5:1
		l.Observe(1, 2<<20, 700<<10, 5*time.Millisecond) // 400 MB/s, 3:1
	}
	est := Estimates{BottleneckBandwidthBps: 100e6}
	for i := range 20 {
		clk.t = clk.t.Add(2 * time.Second)
		l.Update(clk.t, est)
		if l.Level() == 2 && i < 19 {
			for range 10 {
				l.Observe(2, 2<<20, 2<<20, 500*time.Millisecond) // the truth: 4 MB/s, 1:1
			}
		}
	}
	if len(r.events) < 2 || !r.events[1].RolledBack || r.events[1].New != 1 {
		t.Fatalf("want a change to zstd then its rollback, got %+v", r.events)
	}
	if r.events[0].MeasuredGain == nil || *r.events[0].MeasuredGain >= 0 {
		t.Fatalf("the change's measured gain is %v, want negative", r.events[0].MeasuredGain)
	}
}

// TestLevelLimits: not adaptive means no change; the session budget and
// the hold time bound changes.
func TestLevelLimits(t *testing.T) {
	fixed := func(time.Duration) codecModel { return logData }
	t.Run("not adaptive", func(t *testing.T) {
		clk := &simClock{t: time.Unix(1_700_000_000, 0)}
		l := NewLevelChooser(DefaultConfig(), clk, levelNames, 2, 1, false)
		r := &recorder{}
		l.SetRecorder(r)
		if got := runLevels(t, l, clk, fixed, 20e6, 5*time.Minute, 4); got != 1 || len(r.events) != 0 {
			t.Fatalf("level %d, %d events", got, len(r.events))
		}
		if st := l.State(); len(st.Curves) < 2 || st.Curves[1].Ratio < 3 {
			t.Fatalf("curves not measured: %+v", st)
		}
	})
	t.Run("session budget", func(t *testing.T) {
		cfg := DefaultConfig()
		cfg.MaxAdaptationsPerSession = 1
		l, clk, r := newTestChooser(cfg, 1)
		runLevels(t, l, clk, fixed, 20e6, 10*time.Minute, 5)
		changes := 0
		for _, e := range r.events {
			if !e.RolledBack {
				changes++
			}
		}
		if changes != 1 {
			t.Fatalf("%d changes with max_adaptations_per_session = 1", changes)
		}
	})
	t.Run("hold", func(t *testing.T) {
		l, clk, r := newTestChooser(DefaultConfig(), 1)
		start := clk.t
		runLevels(t, l, clk, fixed, 20e6, time.Minute, 6)
		if len(r.events) == 0 {
			t.Fatal("no change in a minute on a 20 Mbit/s link with 4:1 data")
		}
		if first := r.events[0].At.Sub(start); first < DefaultConfig().AdaptationInterval {
			t.Fatalf("first change after %s, before the trigger could hold", first)
		}
	})
}

// TestLevelNoneWhenCPUBound: on a link faster than the machine can
// compress (10 Gbit/s, 2 workers at 100 MB/s), compressing makes the copy
// CPU-bound and the uploads app-limited; the level falls to none.
func TestLevelNoneWhenCPUBound(t *testing.T) {
	slowCPU := codecModel{speed: []float64{0, 100e6, 40e6, 15e6, 3e6}, ratio: logData.ratio}
	l, clk, r := newTestChooser(DefaultConfig(), 1)
	got := runLevels(t, l, clk, func(time.Duration) codecModel { return slowCPU }, 10e9, 5*time.Minute, 8)
	if got != 0 {
		t.Fatalf("CPU-bound on 10 Gbit/s: level %s, want none (events %+v)", levelNames[got], r.events)
	}
}

// TestLevelLearnsItsRealCPU: two workers' speed says zstd-fast would
// deliver 200 MB/s, but the machine's other work leaves compression one
// core (100 MB/s), less than the 125 MB/s the link takes uncompressed. The
// chooser measures what fast really delivered while app-limited, settles on
// none, and does not flip back and forth.
func TestLevelLearnsItsRealCPU(t *testing.T) {
	busy := codecModel{speed: []float64{0, 100e6, 40e6, 15e6, 3e6}, ratio: logData.ratio, cores: 1}
	l, clk, r := newTestChooser(DefaultConfig(), 1)
	got := runLevels(t, l, clk, func(time.Duration) codecModel { return busy }, 1e9, 10*time.Minute, 9)
	if got != 0 || len(r.events) > 2 {
		t.Fatalf("level %s after %d events (%+v), want none after at most two", levelNames[got], len(r.events), r.events)
	}
}

// TestLevelValueIgnoresAStarvedRate: a delivered rate far below what the
// workers manage came from uploads waiting for the writer, not for
// compression, and does not cap the level's value; one within reach of
// the workers does (TestLevelLearnsItsRealCPU).
func TestLevelValueIgnoresAStarvedRate(t *testing.T) {
	now := simEpoch
	for _, tt := range []struct {
		name      string
		delivered float64
		want      float64
	}{
		{"starved by the writer", 18e6, 200e6},
		{"the machine's real share", 100e6, 110e6}, // × (1 + bandwidth threshold)
		{"none measured", 0, 200e6},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := NewLevelChooser(DefaultConfig(), &simClock{t: now}, levelNames, 2, 1, true)
			l.stats[1] = levelStat{ratio: 4, speed: 100e6, frames: levelMinFrames, last: now, delivered: tt.delivered, deliveredAt: now}
			v, ok := l.value(1, 1e9, now)
			if !ok || math.Abs(v-tt.want) > 1 {
				t.Fatalf("value %.0f (%v), want %.0f", v, ok, tt.want)
			}
		})
	}
}
