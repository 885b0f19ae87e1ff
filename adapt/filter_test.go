package adapt

import (
	"math"
	"testing"
	"time"
)

func at(s float64) time.Time { return simEpoch.Add(time.Duration(s * float64(time.Second))) }

func TestWinFilter(t *testing.T) {
	type push struct {
		t, v float64
	}
	tests := []struct {
		name   string
		isMax  bool
		window time.Duration
		pushes []push
		getAt  float64
		want   float64
		ok     bool
	}{
		{"empty", true, 10 * time.Second, nil, 0, 0, false},
		{"max of window", true, 10 * time.Second, []push{{0, 5}, {1, 9}, {2, 3}, {3, 4}}, 3, 9, true},
		{"max expires", true, 10 * time.Second, []push{{0, 5}, {1, 9}, {2, 3}, {3, 4}}, 11.5, 4, true},
		{"max all expired", true, 10 * time.Second, []push{{0, 5}, {1, 9}}, 30, 0, false},
		{"max keeps later equal", true, 10 * time.Second, []push{{0, 7}, {5, 7}}, 12, 7, true},
		{"min of window", false, 30 * time.Second, []push{{0, 0.05}, {10, 0.03}, {20, 0.08}}, 25, 0.03, true},
		{"min expires to later", false, 30 * time.Second, []push{{0, 0.05}, {10, 0.03}, {20, 0.08}}, 41, 0.08, true},
		{"min rising sequence", false, 30 * time.Second, []push{{0, 1}, {1, 2}, {2, 3}}, 30.5, 2, true},
		{"out of order treated as newest", false, 10 * time.Second, []push{{5, 4}, {3, 2}}, 14, 2, true},
		{"NaN ignored", true, 10 * time.Second, []push{{0, 1}, {1, math.NaN()}}, 2, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newWinMin(tt.window)
			if tt.isMax {
				f = newWinMax(tt.window)
			}
			for _, p := range tt.pushes {
				f.Push(at(p.t), p.v)
			}
			got, ok := f.Get(at(tt.getAt))
			if ok != tt.ok || got != tt.want {
				t.Errorf("Get = %v, %v; want %v, %v", got, ok, tt.want, tt.ok)
			}
			if len(f.q) > len(tt.pushes) {
				t.Errorf("deque holds %d values for %d pushes", len(f.q), len(tt.pushes))
			}
		})
	}
}

func TestEWMAAndJitter(t *testing.T) {
	e := ewma{alpha: 0.5}
	for _, x := range []float64{10, 20, math.NaN(), math.Inf(1), 20} {
		e.Add(x)
	}
	if e.v != 17.5 {
		t.Errorf("ewma = %v, want 17.5", e.v)
	}
	var j jitter
	for _, x := range []float64{0.10, 0.10, 0.26, 0.10} {
		j.Add(x)
	}
	// |0|, |0.16|, |0.16| with gain 1/16: 0 → 0.01 → 0.019375
	if got := j.Value(); math.Abs(got-0.019375) > 1e-12 {
		t.Errorf("jitter = %v, want 0.019375", got)
	}
}

func TestTriggerHold(t *testing.T) {
	const hold, strongHold = 10 * time.Second, 5 * time.Second
	type obs struct {
		t      float64
		dir    int
		strong bool
	}
	tests := []struct {
		name string
		obs  []obs
		now  float64
		want bool
	}{
		{"not long enough", []obs{{0, 1, false}, {2, 1, false}, {4, 1, false}}, 6, false},
		{"held", []obs{{0, 1, false}, {2, 1, false}, {8, 1, false}}, 10, true},
		{"direction changed restarts", []obs{{0, 1, false}, {4, -1, false}, {8, -1, false}}, 12, false},
		{"strong holds for less", []obs{{0, 1, true}, {2, 1, true}, {4, 1, true}}, 5, true},
		{"strong interrupted", []obs{{0, 1, true}, {2, 1, false}, {4, 1, true}}, 6, false},
		{"no direction never holds", []obs{{0, 0, true}}, 60, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tr trigger
			for _, o := range tt.obs {
				tr.observe(o.dir, o.strong, at(o.t))
			}
			if got := tr.held(at(tt.now), hold, strongHold); got != tt.want {
				t.Errorf("held = %v, want %v (%+v)", got, tt.want, tr)
			}
		})
	}
}

func TestRefLevel(t *testing.T) {
	var r refLevel
	r.add(at(0), 100, 0.1)
	r.add(at(2), 105, 0.1) // within the band: followed slowly
	if math.Abs(r.v-100.5) > 1e-9 {
		t.Fatalf("ref = %v, want 100.5", r.v)
	}
	r.add(at(4), 200, 0.1) // a shift is kept as a signal...
	if r.v != 100.5 {
		t.Fatalf("ref moved to %v on a shift", r.v)
	}
	r.add(at(4+refAccept.Seconds()), 200, 0.1) // ...until it lasted refAccept
	if r.v != 200 {
		t.Fatalf("ref = %v after the shift lasted, want 200", r.v)
	}
}
