package adapt

import (
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// ParamCompressionLevel names compression level changes in events (Old and
// New are level numbers: 0 = stored as-is, higher = more effort).
const ParamCompressionLevel = "compression_level"

// Level curve constants.
const (
	levelAlpha      = 0.1             // EWMA weight of one observed frame
	levelMinFrames  = 3               // frames before a level's curve is trusted
	levelMaxAge     = 2 * time.Minute // a curve not refreshed for this long is not trusted
	appLimitedProbe = 2.0             // link capacity assumed over the goodput when app-limited
	// minDeliveredShare: a level's delivered rate caps its value only when
	// it is at least this share of workers × speed (see value).
	minDeliveredShare = 0.25
)

// LevelCurve is what one compression level does to the data flowing now.
type LevelCurve struct {
	Level int    `json:"level"`
	Name  string `json:"name"`
	// Ratio is raw over compressed bytes (1 for level 0).
	Ratio float64 `json:"ratio"`
	// RawBytesPerSecond is the compression speed of one worker; 0 for
	// level 0, which costs nothing.
	RawBytesPerSecond float64 `json:"raw_bytes_per_second"`
	Frames            int     `json:"frames"`
	AgeSeconds        float64 `json:"age_seconds"`
	// PredictedRawBps is the raw bytes per second this level would
	// deliver: min(workers × speed, link × ratio), in bits per second.
	PredictedRawBps float64 `json:"predicted_raw_bps"`
}

// LevelState is the chooser's view for the stats files.
type LevelState struct {
	Level   int          `json:"level"`
	Name    string       `json:"name"`
	Workers int          `json:"workers"`
	Curves  []LevelCurve `json:"curves"`
}

// EventRecorder keeps the audit trail (the Controller implements it).
type EventRecorder interface {
	RecordEvent(Event) uint64
	MeasureEvent(seq uint64, gain float64)
}

type levelStat struct {
	ratio, speed float64 // EWMA
	frames       int
	last         time.Time
	// delivered is the raw bytes/s this level achieved while the uploads
	// were app-limited (compression, not the link, set the pace): the
	// machine's real capacity at this level, other work on its cores
	// included, which workers × speed overestimates.
	delivered   float64
	deliveredAt time.Time
}

type levelEval struct {
	seq      uint64
	old, new int
	at       time.Time
	rollback bool
}

// LevelChooser picks the compression level that maximizes raw bytes
// delivered per second, min(workers × speed(level), link × ratio(level)),
// from curves measured on the data actually flowing. It is the
// Controller's LevelPolicy: the same thresholds, hold times, rate limits,
// events and rollback as the other parameters. Safe for concurrent use.
type LevelChooser struct {
	cfg      Config
	clock    Clock
	names    []string // by level; names[0] is "none"
	workers  int
	adaptive bool
	cur      atomic.Int32

	mu          sync.Mutex
	rec         EventRecorder
	concurrency func() int // the concurrency in force, if known
	stats       []levelStat
	cand        int // level the trigger holds for, -1 none
	candSince   time.Time
	lastChange  time.Time
	changes     int
	pending     *levelEval
	lastNet     float64 // link bytes/s used by the last Update
	sampleTurn  int
}

// NewLevelChooser starts at level initial. names[i] is level i's name,
// names[0] the level that stores data as-is; workers is how many frames
// are compressed at once. Not adaptive, it only measures.
func NewLevelChooser(cfg Config, clock Clock, names []string, workers, initial int, adaptive bool) *LevelChooser {
	l := &LevelChooser{
		cfg: cfg, clock: clock, names: names, workers: max(1, workers), adaptive: adaptive,
		stats: make([]levelStat, len(names)), cand: -1,
	}
	l.cur.Store(int32(min(max(initial, 0), len(names)-1)))
	return l
}

// SetConcurrencySource tells the chooser the concurrency in force (the
// controller's), used to estimate what the link could carry when the
// uploads do not fill it. Call before the first Update.
func (l *LevelChooser) SetConcurrencySource(f func() int) {
	l.mu.Lock()
	l.concurrency = f
	l.mu.Unlock()
}

// SetRecorder installs where events go; call before the first Update.
func (l *LevelChooser) SetRecorder(r EventRecorder) {
	l.mu.Lock()
	l.rec = r
	l.mu.Unlock()
}

// Level is the level to compress the next frame at.
func (l *LevelChooser) Level() int { return int(l.cur.Load()) }

// Observe records one frame compressed at level: raw bytes in, compressed
// bytes out, and the time the encoder took.
func (l *LevelChooser) Observe(level int, raw, comp int64, took time.Duration) {
	if level <= 0 || level >= len(l.names) || raw <= 0 || comp <= 0 || took <= 0 {
		return
	}
	ratio, speed := float64(raw)/float64(comp), float64(raw)/took.Seconds()
	now := l.clock.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	s := &l.stats[level]
	if s.frames == 0 || now.Sub(s.last) > levelMaxAge {
		s.ratio, s.speed, s.frames = ratio, speed, 0
	} else {
		s.ratio += levelAlpha * (ratio - s.ratio)
		s.speed += levelAlpha * (speed - s.speed)
	}
	s.frames++
	s.last = now
}

// ObserveRatio records the ratio of a sample compressed at level without a
// trustworthy time (a small sample taken on the write path): it keeps the
// level's ratio current and its curve fresh, and leaves its speed alone.
func (l *LevelChooser) ObserveRatio(level int, raw, comp int64) {
	if level <= 0 || level >= len(l.names) || raw <= 0 || comp <= 0 {
		return
	}
	now := l.clock.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	s := &l.stats[level]
	if s.frames == 0 || s.speed <= 0 {
		return // no speed yet: the first real frames set both
	}
	s.ratio += levelAlpha * (float64(raw)/float64(comp) - s.ratio)
	s.last = now
}

// SampleLevel says which other level the next sampled frame should also be
// compressed at, to keep its curve fresh: the neighbours of the current
// level in turn. ok is false when neither needs it (fresh enough); callers
// sample about one frame in sixteen.
func (l *LevelChooser) SampleLevel() (level int, ok bool) {
	cur := l.Level()
	now := l.clock.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sampleTurn++
	for i := range 2 {
		n := cur - 1
		if (l.sampleTurn+i)%2 == 0 {
			n = cur + 1
		}
		if n < 1 || n >= len(l.names) {
			continue
		}
		s := l.stats[n]
		if s.frames < levelMinFrames || now.Sub(s.last) > levelMaxAge/4 {
			return n, true
		}
	}
	return 0, false
}

// value is the raw bytes per second level l would deliver over a link of
// net bytes/s; ok is false without a trusted curve.
func (l *LevelChooser) value(level int, net float64, now time.Time) (float64, bool) {
	if level == 0 {
		return net, net > 0
	}
	s := l.stats[level]
	if s.frames < levelMinFrames || now.Sub(s.last) > levelMaxAge || net <= 0 {
		return 0, false
	}
	cpu := float64(l.workers) * s.speed
	v := math.Min(cpu, net*s.ratio)
	// Far below what the workers manage, the uploads waited for the writer
	// (a tree of small files, a pause), not for compression: that rate
	// says nothing of the level (it took zstd-fast for 147 Mbit/s on the
	// loopback and stored 1 GiB of zeros as-is).
	if s.delivered > 0 && now.Sub(s.deliveredAt) < memoryMaxAge && s.delivered >= minDeliveredShare*cpu {
		v = math.Min(v, s.delivered*(1+l.cfg.BandwidthChangeThreshold/l.sens()))
	}
	return v, true
}

// Update is the LevelPolicy hook: called after every controller tick.
func (l *LevelChooser) Update(now time.Time, e Estimates) {
	l.mu.Lock()
	defer l.mu.Unlock()
	net := e.BottleneckBandwidthBps / 8
	if e.AppLimited {
		// The link took all we gave it: its capacity is above the
		// goodput, which our own compression may be what limits. What
		// one request achieves while it sends, times the requests the
		// concurrency allows, estimates it too (on a fast link a
		// compressed part goes out at hundreds of MB/s, and with
		// uncompressed data every slot would be busy).
		conc := 1.0
		if l.concurrency != nil {
			conc = float64(max(1, l.concurrency()))
		}
		net = max(net*appLimitedProbe, e.PerStreamBps/8*max(conc, e.InFlight))
	}
	l.lastNet = net
	cur := l.Level()
	if st := &l.stats[cur]; cur > 0 && st.frames > 0 {
		if e.AppLimited && e.GoodputBps > 0 {
			st.delivered, st.deliveredAt = e.GoodputBps/8*st.ratio, now
		} else if !e.AppLimited {
			st.delivered = 0 // the link sets the pace again
		}
	}
	if net <= 0 || !l.adaptive {
		return
	}
	if p := l.pending; p != nil && !now.Before(p.at.Add(l.cfg.AdaptationInterval+l.cfg.MonitoringInterval)) {
		l.evaluate(now, net)
		cur = l.Level()
	}
	vCur, ok := l.value(cur, net, now)
	if !ok {
		return
	}
	vals := make([]float64, len(l.names))
	top := vCur
	for lv := range l.names {
		if v, ok := l.value(lv, net, now); ok {
			vals[lv] = v
			top = max(top, v)
		}
	}
	// The cheapest level within half a threshold of the best: CPU spent
	// for a gain under that is taken from the rest of the machine. Going
	// up needs a whole threshold of gain, going down may lose half of
	// one, so the two rules cannot alternate.
	thr := l.cfg.BandwidthChangeThreshold / l.sens()
	best := cur
	for lv := range l.names {
		if vals[lv] > 0 && vals[lv] >= top*(1-thr/2) {
			best = lv
			break
		}
	}
	vBest := vals[best]
	gain := vBest/vCur - 1
	if best == cur || (best > cur && gain <= thr) || (best < cur && gain < -thr/2) {
		l.cand = -1
		return
	}
	if best != l.cand {
		l.cand, l.candSince = best, now
	}
	hold := l.cfg.AdaptationInterval
	if l.cfg.ConservativeMode && gain < strongFactor*thr {
		hold *= 2
	}
	minGap := l.cfg.MinAdaptationInterval
	if l.cfg.AggressiveAdaptation {
		minGap /= 2
	}
	switch {
	case now.Sub(l.candSince) < hold, l.pending != nil:
		return
	case !l.lastChange.IsZero() && now.Sub(l.lastChange) < minGap:
		return
	case l.cfg.MaxAdaptationsPerSession > 0 && l.changes >= l.cfg.MaxAdaptationsPerSession:
		return
	}
	reason := fmt.Sprintf("%s delivers %.1f Mbit/s of raw data against %.1f at %s (link %.1f Mbit/s)",
		l.names[best], 8*vBest/1e6, 8*vCur/1e6, l.names[cur], 8*net/1e6)
	l.change(now, cur, best, gain, reason, false, net)
}

func (l *LevelChooser) sens() float64 {
	if l.cfg.AdaptationSensitivity > 0 {
		return l.cfg.AdaptationSensitivity
	}
	return 1
}

func (l *LevelChooser) change(now time.Time, old, new int, gain float64, reason string, rollback bool, net float64) {
	l.cur.Store(int32(new))
	l.lastChange, l.cand = now, -1
	if !rollback {
		l.changes++
	}
	trig := map[string]float64{"link_bps": 8 * net, "workers": float64(l.workers)}
	for _, lv := range []int{old, new} {
		if s := l.stats[lv]; lv > 0 && s.frames > 0 {
			trig[l.names[lv]+"_ratio"] = s.ratio
			trig[l.names[lv]+"_raw_bytes_per_second"] = s.speed
		}
	}
	var seq uint64
	if l.rec != nil {
		seq = l.rec.RecordEvent(Event{
			At: now, Param: ParamCompressionLevel, Old: float64(old), New: float64(new),
			Reason: reason, Trigger: trig, PredictedGain: gain, RolledBack: rollback,
		})
	}
	l.pending = &levelEval{seq: seq, old: old, new: new, at: now, rollback: rollback}
}

// evaluate measures a change on the curves seen since: the new level
// against the old one. A change that lost more than the threshold is
// rolled back.
func (l *LevelChooser) evaluate(now time.Time, net float64) {
	p := l.pending
	l.pending = nil
	vNew, okN := l.value(p.new, net, now)
	vOld, okO := l.value(p.old, net, now)
	if !okN || !okO || vOld <= 0 {
		return
	}
	gain := vNew/vOld - 1
	if l.rec != nil && p.seq != 0 {
		l.rec.MeasureEvent(p.seq, gain)
	}
	thr := l.cfg.BandwidthChangeThreshold / l.sens()
	if !p.rollback && gain < -thr {
		l.change(now, p.new, p.old, -gain,
			fmt.Sprintf("rollback: %s delivered %.0f%% less than %s", l.names[p.new], -100*gain, l.names[p.old]), true, net)
	}
}

// State returns the curves and the current level.
func (l *LevelChooser) State() LevelState {
	now := l.clock.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	cur := l.Level()
	st := LevelState{Level: cur, Name: l.names[cur], Workers: l.workers}
	for lv, s := range l.stats {
		c := LevelCurve{Level: lv, Name: l.names[lv], Ratio: 1}
		if lv > 0 {
			if s.frames == 0 {
				continue
			}
			c.Ratio, c.RawBytesPerSecond, c.Frames = s.ratio, s.speed, s.frames
			c.AgeSeconds = now.Sub(s.last).Seconds()
		}
		if v, ok := l.value(lv, l.lastNet, now); ok {
			c.PredictedRawBps = 8 * v
		}
		st.Curves = append(st.Curves, c)
	}
	return st
}
