package adapt

import (
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Windows and constants of the estimators and the controller. They are
// documented in docs/ARCHITECTURE.md ("Adaptation").
const (
	btlBwWindow     = 10 * time.Second // windowed max of goodput per monitoring interval
	minRTTWindow    = 30 * time.Second // windowed min of latency per monitoring interval
	minRTTMaxAge    = 10 * time.Minute // a propagation RTT not seen again for this long is re-learned
	profileRTTTrust = time.Minute      // a profile's RTT is kept this long unless seen again
	rateWindow      = 30 * time.Second // per-stream rate, overhead, TCP loss, RTT stddev
	errorWindow     = 60 * time.Second // error and retry rate
	hazardWindow    = 5 * time.Minute  // bulk failures per byte, for the part size
	historyKeep     = 10 * time.Minute
	trendWindow     = 60 * time.Second
	trendHalfLife   = 20 * time.Second
	memoryMaxAge    = 10 * time.Minute // the best operating point is trusted this long
	backoffStart    = 10 * time.Minute // first hold-off after a probe that did not pay
	backoffMax      = 40 * time.Minute

	// A part should take at least amortization times the per-request
	// overhead to send (≈95 % of the stream's time is spent sending).
	amortization = 20.0
	// A part may fail with at most this probability at the measured
	// failures per byte (a failed part is sent again whole).
	maxPartFailProb = 0.01
	// Error-driven decisions need at least this many failures.
	minBulkFailures     = 3
	minThrottleFailures = 5

	throttleDecrease = 0.7 // concurrency × this when errors exceed max_tolerable_loss
	probeGrowth      = 1.5 // concurrency step when aggressive or scaling linearly
	linearScaling    = 0.7 // a step "scaled linearly" if it gained this share of the added streams
	maxDecreaseDiv   = 8   // one decrease divides concurrency by at most this
	strongFactor     = 3.0 // a signal this many thresholds strong needs one interval even when conservative
	partBand         = 0.25
	maxEvalWait      = time.Minute
)

// LevelPolicy is the extension point for the compression level: the
// compression work implements it and owns the level (its curves, its
// hysteresis, where the uploader reads it). The controller hands it the link
// estimates after every Tick, outside the controller's lock; a policy that
// changes the level may report it with Controller.RecordEvent.
type LevelPolicy interface {
	Update(now time.Time, e Estimates)
}

// Option configures a Controller beyond Config.
type Option func(*options)

type options struct {
	level     LevelPolicy
	memBudget int64
}

// WithLevelPolicy installs the compression level policy (nil = none).
func WithLevelPolicy(p LevelPolicy) Option { return func(o *options) { o.level = p } }

// WithMemoryBudget caps part size × concurrency at bytes (the memory for
// parts in flight); 0 = no cap. The part size never goes below the minimum.
func WithMemoryBudget(bytes int64) Option { return func(o *options) { o.memBudget = bytes } }

// Controller turns request samples into link estimates and upload
// parameters. Observe, Progress and ObserveTCP are called on the request
// path; Tick by the owner every monitoring interval; Params by the uploader.
type Controller struct {
	cfg   Config
	clock Clock
	opt   options

	params   atomic.Pointer[Params]
	progress atomic.Int64 // body bytes handed to the kernel, total

	mu           sync.Mutex
	start        time.Time
	lastTick     time.Time
	lastProgress int64
	acc          sampleAcc // samples since the last Tick
	counters     Counters
	tcpConns     map[uint64]tcpConn
	cls          [nClass]rttClass
	btl          winFilter // goodput per tick, bytes/s
	hist         []tickRec
	sawSamples   bool
	warm         *Profile

	est    Estimates
	trend  Trend
	health Health

	// Decision state.
	cTrig, pTrig   trigger
	lastChange     map[string]time.Time
	pending        *pendingChange
	adaptations    int
	confidence     float64
	ceiling        int
	ceilingUntil   time.Time
	backoff        time.Duration
	noUpUntil      time.Time
	noDownUntil    time.Time
	partNoUpUntil  time.Time
	partNoDnUntil  time.Time
	lastUpLinear   bool
	gRef           refLevel // goodput level established after the last change, bytes/s
	bestG          float64
	bestC          int
	bestAt         time.Time
	levels         map[int]levelObs // what each concurrency delivered lately
	events         []Event
	seq            uint64
	lastSignals    signals
	congestedSince time.Time
}

// levelObs is the goodput last seen at one concurrency, settled.
type levelObs struct {
	g         float64
	congested bool
	at        time.Time
}

type tcpConn struct {
	segs, retrans uint64
	at            time.Time
}

// rttClass tracks one kind of latency: its sticky propagation estimate
// (min of per-tick means) and its smoothed value.
type rttClass struct {
	fresh    winFilter
	held     float64
	heldOK   bool
	heldSeen time.Time // last tick whose mean came close to held
	cur      float64   // this tick's mean, NaN if none
	last     time.Time // last tick with samples
	smooth   ewma
	jit      jitter
}

// tickRec is one monitoring interval.
type tickRec struct {
	at       time.Time
	dur      float64 // seconds
	bytes    float64
	inFlight int
	limit    int
	infl     float64 // RTT inflation measured in this tick, NaN if none
	acc      sampleAcc
}

// trigger tracks how long a proposed direction has held.
type trigger struct {
	dir         int
	since       time.Time
	strongSince time.Time // zero unless the signal is strong
}

func (t *trigger) observe(dir int, strong bool, start time.Time) {
	if dir != t.dir {
		*t = trigger{dir: dir, since: start}
	}
	switch {
	case !strong:
		t.strongSince = time.Time{}
	case t.strongSince.IsZero():
		t.strongSince = start
	}
}

func (t *trigger) held(now time.Time, hold, strongHold time.Duration) bool {
	if t.dir == 0 {
		return false
	}
	if now.Sub(t.since) >= hold {
		return true
	}
	return !t.strongSince.IsZero() && now.Sub(t.strongSince) >= strongHold
}

// pendingChange is a change whose effect is still being measured.
type pendingChange struct {
	seq        uint64
	param      string
	old, new   float64
	at, evalAt time.Time
	gBefore    float64
	rollback   bool
	confounded bool
	throttle   bool
	jump       bool
}

// refLevel is the goodput level the controller compares against to see the
// link change by itself. It follows small drifts; a shift beyond the
// threshold is kept as a signal until a change is measured, or for
// refAccept.
type refLevel struct {
	v       float64
	ok      bool
	outside time.Time
}

const refAccept = time.Minute

func (r *refLevel) add(now time.Time, g, thr float64) {
	switch {
	case !r.ok:
		*r = refLevel{v: g, ok: g > 0}
	case math.Abs(g/r.v-1) <= thr:
		r.v += 0.1 * (g - r.v)
		r.outside = time.Time{}
	case r.outside.IsZero():
		r.outside = now
	case now.Sub(r.outside) >= refAccept:
		*r = refLevel{v: g, ok: g > 0}
	}
}

// proposal is what the controller would do to one parameter now.
type proposal struct {
	dir       int // +1 up, -1 down, 0 none; relearn for the RTT re-learn
	target    int64
	strong    bool
	reason    string
	predicted float64
	throttle  bool
	improved  bool // the link got better by itself
	jump      bool // back to the best operating point
}

const relearn = 2

// signals are the inputs of a decision, computed every tick.
type signals struct {
	now        time.Time
	tickStart  time.Time
	g          float64 // goodput this tick, bytes/s
	gWin       float64 // goodput over the last adaptation interval
	infl       float64 // inflation this tick (window mean if none)
	inflWin    float64
	lat        float64 // smoothed latency of the primary class, seconds
	errWin     float64 // error rate over two adaptation intervals
	failWin    int
	errRate    float64 // over errorWindow
	hazard     float64 // bulk failures per byte on the wire
	bulkFails  int
	tcpLoss    float64 // -1 without TCP samples
	inFlight   float64
	appLimited bool
	perStream  float64 // bytes/s
	overhead   float64 // seconds
	congested  bool
	hasRTT     bool
}

// NewController returns a controller starting from warm's parameters
// (clamped to cfg's bounds) and estimates, or from cfg when warm is nil or
// cfg.Adaptive is false. cfg must be valid.
func NewController(cfg Config, clock Clock, warm *Profile, opts ...Option) *Controller {
	now := clock.Now()
	c := &Controller{
		cfg:        cfg,
		clock:      clock,
		start:      now,
		lastTick:   now,
		tcpConns:   make(map[uint64]tcpConn),
		btl:        newWinMax(btlBwWindow),
		lastChange: make(map[string]time.Time),
		levels:     make(map[int]levelObs),
		confidence: 1,
		backoff:    backoffStart,
		health:     HealthUnknown,
		trend:      Trend{Direction: TrendUnknown},
	}
	for _, o := range opts {
		o(&c.opt)
	}
	for i := range c.cls {
		c.cls[i] = rttClass{fresh: newWinMin(minRTTWindow), cur: math.NaN(), smooth: ewma{alpha: 0.3}}
	}
	p := c.cfg.clampParams(Params{PartSize: int64(cfg.PartSizeMB) * MiB, Concurrency: cfg.Concurrency})
	if warm != nil {
		w := *warm
		c.warm = &w
		if cfg.Adaptive {
			if w.PartSizeBytes > 0 {
				p.PartSize = w.PartSizeBytes
			}
			if w.Concurrency > 0 {
				p.Concurrency = w.Concurrency
			}
			p = c.cfg.clampParams(p)
		}
		c.seed(now, w)
	}
	c.params.Store(&p)
	c.est.TCPLossRate = -1
	c.est.LossKind = "none"
	if warm != nil {
		c.seedEstimates(*warm)
	}
	return c
}

// seed takes the profile's operating point and RTT as priors.
func (c *Controller) seed(now time.Time, w Profile) {
	if w.GoodputBps > 0 && w.Concurrency > 0 {
		c.bestG, c.bestC, c.bestAt = w.GoodputBps/8, w.Concurrency, now
	}
	for i, name := range classNames {
		if name == w.RTTSource && w.PropagationRTTSeconds > 0 {
			// Trusted for profileRTTTrust unless a tick confirms it.
			c.cls[i].held, c.cls[i].heldOK = w.PropagationRTTSeconds, true
			c.cls[i].heldSeen = now.Add(profileRTTTrust - minRTTMaxAge)
		}
	}
}

func (c *Controller) seedEstimates(w Profile) {
	c.est.GoodputBps = w.GoodputBps
	c.est.BottleneckBandwidthBps = w.BottleneckBandwidthBps
	c.est.PropagationRTTSeconds = w.PropagationRTTSeconds
	c.est.SmoothedRTTSeconds = w.PropagationRTTSeconds
	c.est.RTTSource = w.RTTSource
	c.est.PerStreamBps = w.PerStreamBps
	c.est.RequestOverheadSeconds = w.RequestOverheadSeconds
	c.est.ErrorRate = w.ErrorRate
}

// Params returns the parameters in force. It never blocks.
func (c *Controller) Params() Params { return *c.params.Load() }

// Progress records n request body bytes handed to the kernel at time at.
func (c *Controller) Progress(n int64, at time.Time) {
	if n > 0 {
		c.progress.Add(n)
	}
}

// Observe records one HTTP attempt.
func (c *Controller) Observe(s RequestSample) {
	if s.End.IsZero() || s.Start.IsZero() || s.End.Before(s.Start) {
		c.mu.Lock()
		c.counters.DroppedOldSamples++
		c.mu.Unlock()
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	a := &c.acc
	c.counters.Requests++
	a.attempts++
	if s.Retry {
		a.retries++
		c.counters.RetriedRequests++
	}
	if s.Failed {
		a.failed++
		c.counters.FailedRequests++
	}
	if s.Bulk {
		c.counters.BulkRequests++
		a.bulk++
		a.bulkWireBytes += max(s.Bytes, 0)
		if s.Failed {
			a.bulkFailed++
		}
	}
	if s.Failed {
		return // a failed attempt's timing says little about the path
	}
	if s.Bulk {
		a.okBytes += s.Bytes
		c.counters.CompletedBytes += uint64(max(s.Bytes, 0))
		if !s.BodyDone.IsZero() && s.BodyDone.After(s.Start) {
			a.bodyBytes += s.Bytes
			a.bodySeconds += s.BodyDone.Sub(s.Start).Seconds()
		}
		if !s.BodyDone.IsZero() && !s.FirstByte.IsZero() && s.FirstByte.After(s.BodyDone) {
			c.putLatency(classResp, s.FirstByte.Sub(s.BodyDone).Seconds())
		}
		return
	}
	end := s.End
	if !s.FirstByte.IsZero() && s.FirstByte.After(s.Start) {
		end = s.FirstByte
	}
	c.putLatency(classReq, end.Sub(s.Start).Seconds())
}

func (c *Controller) putLatency(class int, x float64) {
	c.acc.lat[class].put(x)
	c.cls[class].jit.Add(x)
}

// ObserveTCP records the kernel's view of one connection.
func (c *Controller) ObserveTCP(s TCPSample) {
	if s.SRTT <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.counters.TCPSamples++
	prev, ok := c.tcpConns[s.Conn]
	if ok && s.SegsOut >= prev.segs && s.TotalRetrans >= prev.retrans {
		c.acc.tcpSegs += s.SegsOut - prev.segs
		c.acc.tcpRetrans += s.TotalRetrans - prev.retrans
	}
	c.tcpConns[s.Conn] = tcpConn{segs: s.SegsOut, retrans: s.TotalRetrans, at: s.At}
	c.acc.lat[classTCP].put(s.SRTT.Seconds())
	c.acc.tcpRTTVar += s.RTTVar.Seconds()
}

// RecordEvent adds an event from outside the controller (a LevelPolicy's
// level change) to the audit trail. Seq is assigned here.
func (c *Controller) RecordEvent(e Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.appendEvent(e)
}

// Tick refreshes the estimates and, when adaptive, considers a decision. The
// owner calls it every monitoring interval with the requests in flight.
func (c *Controller) Tick(inFlight int) {
	now := c.clock.Now()
	c.mu.Lock()
	ok := c.tickLocked(now, inFlight)
	est := c.est
	c.mu.Unlock()
	if ok && c.opt.level != nil {
		c.opt.level.Update(now, est)
	}
}

func (c *Controller) tickLocked(now time.Time, inFlight int) bool {
	dt := now.Sub(c.lastTick).Seconds()
	if dt <= 0 {
		return false
	}
	tickStart := c.lastTick
	c.lastTick = now
	c.counters.Ticks++
	total := c.progress.Load()
	c.counters.ProgressBytes = uint64(total)
	bytes := float64(total - c.lastProgress)
	c.lastProgress = total
	acc := c.acc
	c.acc = sampleAcc{}
	if total == 0 {
		bytes = float64(acc.okBytes) // no Progress source: completed bodies
	}
	if bytes > 0 || acc.attempts > 0 {
		c.sawSamples = true
	}
	cur := c.Params()
	rec := tickRec{at: now, dur: dt, bytes: bytes, inFlight: inFlight, limit: cur.Concurrency, infl: math.NaN(), acc: acc}

	thrLat := c.thrLat()
	for i := range c.cls {
		if c.cls[i].tick(now, acc.lat[i], thrLat) {
			c.counters.MinRTTRelearned++
		}
	}
	pc := c.primaryClass(now)
	if cl := &c.cls[pc]; !math.IsNaN(cl.cur) && cl.heldOK && cl.held > 0 {
		rec.infl = max(0, cl.cur/cl.held-1)
	}
	c.hist = append(c.hist, rec)
	c.prune(now)
	if bytes > 0 || inFlight > 0 {
		c.btl.Push(now, bytes/dt)
	}
	for id, t := range c.tcpConns {
		if now.Sub(t.at) > 2*time.Minute {
			delete(c.tcpConns, id)
		}
	}

	s := c.signals(now, tickStart, rec, pc)
	c.lastSignals = s
	c.updateEstimates(now, s, pc)
	if c.cfg.Adaptive {
		c.decide(now, s)
	}
	return true
}

// tick folds one interval's latencies in; it reports a re-learned
// propagation estimate.
func (cl *rttClass) tick(now time.Time, la latAcc, thrLat float64) bool {
	cl.cur = math.NaN()
	if la.n == 0 {
		return false
	}
	m := la.mean()
	cl.cur, cl.last = m, now
	cl.smooth.Add(m)
	cl.fresh.Push(now, m)
	fm, _ := cl.fresh.Get(now)
	if !cl.heldOK || fm < cl.held {
		cl.held, cl.heldOK, cl.heldSeen = fm, true, now
	}
	if m <= cl.held*(1+thrLat/2) {
		cl.heldSeen = now
	}
	if now.Sub(cl.heldSeen) > minRTTMaxAge {
		cl.relearn(now)
		return true
	}
	return false
}

// relearn replaces the sticky propagation estimate by the recent minimum:
// the path changed, or the queue cannot be drained by us.
func (cl *rttClass) relearn(now time.Time) {
	if fm, ok := cl.fresh.Get(now); ok {
		cl.held, cl.heldSeen = fm, now
	}
}

// primaryClass is the latency source the inflation is measured on: TCP when
// it reports, else the response wait of parts, else small requests.
func (c *Controller) primaryClass(now time.Time) int {
	recent := 3 * c.cfg.MonitoringInterval
	if t := c.cls[classTCP].last; !t.IsZero() && now.Sub(t) <= recent && c.cls[classTCP].heldOK {
		return classTCP
	}
	if c.cls[classResp].heldOK {
		return classResp
	}
	return classReq
}

func (c *Controller) prune(now time.Time) {
	i := 0
	for i < len(c.hist)-1 && now.Sub(c.hist[i].at) > historyKeep {
		i++
	}
	if i > 0 {
		c.hist = append(c.hist[:0], c.hist[i:]...)
	}
}

// winAgg sums the ticks of a window.
type winAgg struct {
	bytes, secs   float64
	inFlightSecs  float64
	limitSecs     float64
	inflSum       float64
	inflN         int
	ticks         int
	acc           sampleAcc
	firstTickFrom time.Time
}

// window sums the ticks ending in (from, to].
func (c *Controller) window(from, to time.Time) winAgg {
	var w winAgg
	for i := len(c.hist) - 1; i >= 0; i-- {
		r := &c.hist[i]
		if !r.at.After(from) {
			break
		}
		if r.at.After(to) {
			continue
		}
		w.ticks++
		w.bytes += r.bytes
		w.secs += r.dur
		w.inFlightSecs += float64(r.inFlight) * r.dur
		w.limitSecs += float64(r.limit) * r.dur
		if !math.IsNaN(r.infl) {
			w.inflSum += r.infl
			w.inflN++
		}
		w.acc.add(&r.acc)
	}
	return w
}

func (w winAgg) goodput() float64 {
	if w.secs <= 0 {
		return 0
	}
	return w.bytes / w.secs
}

func (w winAgg) infl() (float64, bool) {
	if w.inflN == 0 {
		return 0, false
	}
	return w.inflSum / float64(w.inflN), true
}

func (w winAgg) appLimited() bool {
	if w.secs <= 0 {
		return true
	}
	in, lim := w.inFlightSecs/w.secs, w.limitSecs/w.secs
	return in < lim-0.5-0.1*lim
}

func (c *Controller) sens() float64 { return c.cfg.AdaptationSensitivity }
func (c *Controller) thrBw() float64 {
	return c.cfg.BandwidthChangeThreshold / c.sens()
}
func (c *Controller) thrLat() float64 { return c.cfg.LatencyChangeThreshold / c.sens() }
func (c *Controller) thrLoss() float64 {
	return c.cfg.LossChangeThreshold / c.sens()
}

// hold is how long a trigger must hold: one adaptation interval, two in
// conservative mode unless the signal is strong.
func (c *Controller) hold(strong bool) time.Duration {
	if c.cfg.ConservativeMode && !strong {
		return 2 * c.cfg.AdaptationInterval
	}
	return c.cfg.AdaptationInterval
}

// minInterval is the least time between two changes of one parameter.
func (c *Controller) minInterval() time.Duration {
	if c.cfg.AggressiveAdaptation {
		return c.cfg.MinAdaptationInterval / 2
	}
	return c.cfg.MinAdaptationInterval
}

func (c *Controller) signals(now, tickStart time.Time, rec tickRec, pc int) signals {
	ai := c.cfg.AdaptationInterval
	s := signals{now: now, tickStart: tickStart, g: rec.bytes / rec.dur, tcpLoss: -1}
	win := c.window(now.Add(-ai), now)
	s.gWin = win.goodput()
	s.inFlight = win.inFlightSecs / max(win.secs, 1e-9)
	s.appLimited = win.appLimited()
	inflWin, okWin := win.infl()
	s.inflWin = inflWin
	s.infl = rec.infl
	if math.IsNaN(s.infl) {
		s.infl = inflWin
	}
	s.hasRTT = okWin || !math.IsNaN(rec.infl)
	if cl := &c.cls[pc]; cl.smooth.ok {
		s.lat = cl.smooth.v
	}

	ew := c.window(now.Add(-2*ai), now)
	if ew.acc.attempts > 0 {
		s.errWin = float64(ew.acc.failed) / float64(ew.acc.attempts)
	}
	s.failWin = ew.acc.failed
	er := c.window(now.Add(-errorWindow), now)
	if er.acc.attempts > 0 {
		s.errRate = float64(er.acc.failed) / float64(er.acc.attempts)
	}
	hz := c.window(now.Add(-hazardWindow), now)
	s.bulkFails = hz.acc.bulkFailed
	if hz.acc.bulkWireBytes > 0 {
		s.hazard = float64(hz.acc.bulkFailed) / float64(hz.acc.bulkWireBytes)
	}
	rw := c.window(now.Add(-rateWindow), now)
	if rw.acc.tcpSegs > 0 {
		s.tcpLoss = float64(rw.acc.tcpRetrans) / float64(rw.acc.tcpSegs)
	}
	switch {
	case rw.acc.bodySeconds > 0 && rw.acc.bodyBytes > 0:
		s.perStream = float64(rw.acc.bodyBytes) / rw.acc.bodySeconds
	case s.inFlight > 0:
		s.perStream = s.gWin / s.inFlight
	}
	s.overhead = c.overhead(rw)

	thr := c.thrLat()
	s.congested = s.hasRTT && s.infl > thr
	if t := c.cfg.TargetLatencyMs; t > 0 && s.lat > t/1000 {
		s.congested = true
	}
	return s
}

// overhead is the per-request time not spent sending the body: the wait for
// the response after the last byte, plus two RTTs of slow start.
func (c *Controller) overhead(rw winAgg) float64 {
	prop := math.Inf(1)
	for i := range c.cls {
		if c.cls[i].heldOK && c.cls[i].held > 0 {
			prop = min(prop, c.cls[i].held)
		}
	}
	if math.IsInf(prop, 1) {
		return 0
	}
	if l := rw.acc.lat[classResp]; l.n > 0 {
		return l.mean() + 2*prop
	}
	return 3 * prop
}

// targetPartSize is the part size the estimates call for (0 = not enough
// data): large enough to amortize the overhead at the per-stream rate,
// small enough that a part rarely fails, within the bounds.
func (c *Controller) targetPartSize(s signals, conc int) int64 {
	if s.perStream <= 0 || s.overhead <= 0 {
		return 0
	}
	p := amortization * s.overhead * s.perStream
	if s.bulkFails >= minBulkFailures && s.hazard > 0 {
		p = min(p, maxPartFailProb/s.hazard)
	}
	if b := c.opt.memBudget; b > 0 && conc > 0 {
		p = min(p, float64(b)/float64(conc))
	}
	lo, hi := c.cfg.partBounds()
	p = min(max(p, float64(lo)), float64(hi))
	return roundMiB(int64(p))
}

func (c *Controller) updateEstimates(now time.Time, s signals, pc int) {
	if !c.sawSamples && c.warm != nil {
		return // keep the profile's estimates until something is measured
	}
	e := &c.est
	e.GoodputBps = 8 * s.gWin
	if b, ok := c.btl.Get(now); ok {
		e.BottleneckBandwidthBps = 8 * b
	}
	e.Utilization = 0
	if e.BottleneckBandwidthBps > 0 {
		e.Utilization = min(1, e.GoodputBps/e.BottleneckBandwidthBps)
	}
	cl := &c.cls[pc]
	if cl.heldOK {
		e.RTTSource = classNames[pc]
		e.PropagationRTTSeconds = cl.held
		e.SmoothedRTTSeconds = cl.smooth.v
		e.JitterSeconds = cl.jit.Value()
	}
	rw := c.window(now.Add(-rateWindow), now)
	e.RTTStddevSeconds = rw.acc.lat[pc].stddev()
	if pc == classTCP && rw.acc.lat[classTCP].n > 0 {
		e.JitterSeconds = rw.acc.tcpRTTVar / float64(rw.acc.lat[classTCP].n)
	}
	e.RTTInflation = s.inflWin
	e.Congestion = min(1, max(0, s.inflWin))
	e.ErrorRate = s.errRate
	er := c.window(now.Add(-errorWindow), now)
	e.RetryRate = 0
	if er.acc.attempts > 0 {
		e.RetryRate = float64(er.acc.retries) / float64(er.acc.attempts)
	}
	e.TCPLossRate = s.tcpLoss
	lossy := s.errRate > c.thrLoss() || s.tcpLoss > c.thrLoss()
	switch {
	case !lossy:
		e.LossKind = "none"
	case s.inflWin > c.thrLat():
		e.LossKind = "congestive"
	default:
		e.LossKind = "random"
	}
	e.PerStreamBps = 8 * s.perStream
	e.RequestOverheadSeconds = s.overhead
	e.InFlight = s.inFlight
	e.AppLimited = s.appLimited
	e.TargetPartSizeBytes = c.targetPartSize(s, c.Params().Concurrency)
	c.trend = c.computeTrend(now)
	c.health = c.computeHealth(s)
}

// computeTrend fits goodput over the last minute (weights halving every
// 20 s) and classifies the slope and the scatter around it.
func (c *Controller) computeTrend(now time.Time) Trend {
	var sw, sx, sy, sxx, sxy float64
	var pts int
	for i := len(c.hist) - 1; i >= 0; i-- {
		r := &c.hist[i]
		age := now.Sub(r.at)
		if age > trendWindow {
			break
		}
		if r.bytes == 0 && r.inFlight == 0 {
			continue // idle
		}
		x := -age.Seconds()
		y := r.bytes / r.dur
		w := math.Exp2(-age.Seconds() / trendHalfLife.Seconds())
		sw += w
		sx += w * x
		sy += w * y
		sxx += w * x * x
		sxy += w * x * y
		pts++
	}
	if pts < 3 || sy <= 0 {
		return Trend{Direction: TrendUnknown}
	}
	mx, my := sx/sw, sy/sw
	vx := sxx/sw - mx*mx
	slope := 0.0
	if vx > 0 {
		slope = (sxy/sw - mx*my) / vx
	}
	// Residual scatter around the fitted line.
	var res, tot float64
	for i := len(c.hist) - 1; i >= 0; i-- {
		r := &c.hist[i]
		age := now.Sub(r.at)
		if age > trendWindow {
			break
		}
		if r.bytes == 0 && r.inFlight == 0 {
			continue
		}
		x := -age.Seconds()
		y := r.bytes / r.dur
		w := math.Exp2(-age.Seconds() / trendHalfLife.Seconds())
		f := my + slope*(x-mx)
		res += w * (y - f) * (y - f)
		tot += w * (y - my) * (y - my)
	}
	cv := math.Sqrt(res/sw) / my
	r2 := 0.0
	if tot > 0 {
		r2 = max(0, 1-res/tot)
	}
	perMin := slope * 60 / my
	coverage := min(1, float64(pts)/(trendWindow.Seconds()/c.cfg.MonitoringInterval.Seconds()))
	thr := c.thrBw()
	t := Trend{ChangePerMinute: perMin, Variation: cv}
	switch {
	case math.Abs(perMin) > thr && r2 >= 0.5:
		t.Direction = TrendImproving
		if perMin < 0 {
			t.Direction = TrendDegrading
		}
		t.Confidence = r2 * coverage
	case cv > thr:
		t.Direction = TrendVolatile
		t.Confidence = min(1, cv/(2*thr)) * coverage
	default:
		t.Direction = TrendStable
		t.Confidence = (1 - cv/thr) * coverage
	}
	return t
}

// computeHealth grades the link: errors first, then queueing, then
// stability and the configured targets.
func (c *Controller) computeHealth(s signals) Health {
	if !c.sawSamples {
		return HealthUnknown
	}
	maxLoss, thrLoss, thrLat := c.cfg.MaxTolerableLoss, c.thrLoss(), c.thrLat()
	loss := max(s.errRate, s.tcpLoss)
	h := HealthExcellent
	worse := func(l Health) { h = max(h, l) }
	switch {
	case s.errRate >= maxLoss:
		worse(HealthCritical)
	case loss >= maxLoss/2:
		worse(HealthPoor)
	case loss >= 10*thrLoss:
		worse(HealthFair)
	case loss > thrLoss:
		worse(HealthGood)
	}
	switch {
	case s.inflWin >= 4*thrLat:
		worse(HealthPoor)
	case s.inflWin >= 2*thrLat:
		worse(HealthFair)
	case s.inflWin > thrLat:
		worse(HealthGood)
	}
	switch c.trend.Direction {
	case TrendVolatile:
		worse(HealthFair)
	case TrendDegrading:
		worse(HealthGood)
	}
	if t := c.cfg.TargetThroughputMbps; t > 0 && !s.appLimited {
		switch g := s.gWin * 8 / 1e6; {
		case g < 0.5*t:
			worse(HealthFair)
		case g < 0.9*t:
			worse(HealthGood)
		}
	}
	if t := c.cfg.TargetLatencyMs; t > 0 && s.lat*1000 > t {
		worse(HealthFair)
	}
	return h
}

// decide evaluates the change under test, then considers one new change.
func (c *Controller) decide(now time.Time, s signals) {
	if p := c.pending; p != nil && !now.Before(p.evalAt) {
		c.evaluate(now, s)
	}
	cur := c.Params()
	if c.pending == nil && !s.appLimited {
		c.levels[cur.Concurrency] = levelObs{g: s.gWin, congested: s.congested, at: now}
		if !s.congested {
			c.remember(now, s, cur.Concurrency)
		}
	}
	cp := c.proposeConcurrency(now, s, cur)
	c.cTrig.observe(cp.dir, cp.strong, s.tickStart)
	pp := c.proposePartSize(now, s, cur)
	c.pTrig.observe(pp.dir, pp.strong, s.tickStart)
	c.gRef.add(now, s.gWin, c.thrBw())

	if cp.dir == relearn {
		if c.cTrig.held(now, c.hold(false), c.hold(true)) {
			c.cls[c.primaryClass(now)].relearn(now)
			c.counters.MinRTTRelearned++
			c.cTrig = trigger{}
		}
		return
	}
	if cp.dir != 0 && c.ready(now, ParamConcurrency, &c.cTrig, cp.strong) {
		c.apply(now, s, ParamConcurrency, float64(cur.Concurrency), float64(cp.target), cp)
		return
	}
	if pp.dir != 0 && c.ready(now, ParamPartSize, &c.pTrig, pp.strong) {
		c.apply(now, s, ParamPartSize, float64(cur.PartSize), float64(pp.target), pp)
	}
}

// remember keeps the best operating point of the last memoryMaxAge, the
// target of a jump when the link recovers.
func (c *Controller) remember(now time.Time, s signals, conc int) {
	switch {
	case s.gWin > c.bestG || now.Sub(c.bestAt) > memoryMaxAge:
		c.bestG, c.bestC, c.bestAt = s.gWin, conc, now
	case conc == c.bestC && s.gWin >= (1-c.thrBw())*c.bestG:
		c.bestAt = now
	}
}

func (c *Controller) limitReached() bool {
	m := c.cfg.MaxAdaptationsPerSession
	return m > 0 && c.adaptations >= m
}

// ready reports whether a proposal may become a change now: its trigger
// held long enough, the parameter's rate limit allows it, no other change
// is being measured (a strong signal may cut that measurement short), and
// the session budget is not spent.
func (c *Controller) ready(now time.Time, param string, t *trigger, strong bool) bool {
	if c.limitReached() || !t.held(now, c.hold(false), c.hold(true)) {
		return false
	}
	if last, ok := c.lastChange[param]; ok && now.Sub(last) < c.minInterval() {
		return false
	}
	if p := c.pending; p != nil {
		settled := p.at.Add(c.cfg.AdaptationInterval + c.cfg.MonitoringInterval)
		if !strong || p.param == param || now.Before(settled) {
			return false
		}
		p.confounded = true
	}
	return true
}

func (c *Controller) proposeConcurrency(now time.Time, s signals, cur Params) proposal {
	n := cur.Concurrency
	lo, hi := c.cfg.MinConcurrency, c.cfg.MaxConcurrency
	thrBw, thrLat, maxLoss := c.thrBw(), c.thrLat(), c.cfg.MaxTolerableLoss

	// Errors beyond what is tolerable: the server or path sheds load.
	if s.errWin > maxLoss && s.failWin >= minThrottleFailures {
		if n <= lo || now.Before(c.noDownUntil) {
			return proposal{}
		}
		return proposal{
			dir: -1, target: int64(max(lo, min(n-1, int(math.Floor(float64(n)*throttleDecrease))))),
			strong: s.errWin > 2*maxLoss, throttle: true,
			reason:    fmt.Sprintf("error rate %.1f%% above max_tolerable_loss %.1f%%", 100*s.errWin, 100*maxLoss),
			predicted: 0,
		}
	}
	// Queueing: step to the concurrency that keeps the queue near empty.
	if s.congested {
		if n <= lo {
			return proposal{dir: relearn}
		}
		// Goodput fell a lot by itself: the link changed, and a decrease
		// blocked after an earlier rollback is due again.
		degraded := c.gRef.ok && s.g < c.gRef.v*(1-strongFactor*thrBw)
		if now.Before(c.noDownUntil) && !degraded {
			return proposal{}
		}
		// Vegas-style gradient: the share of the streams whose bytes sit in
		// the queue is not needed.
		ratio := (1 + thrLat/2) / (1 + max(s.inflWin, s.infl))
		if t := c.cfg.TargetLatencyMs; t > 0 && s.lat > t/1000 {
			ratio = min(ratio, t/1000/s.lat)
		}
		target := int(math.Ceil(float64(n) * ratio))
		reason := fmt.Sprintf("RTT inflated %.0f%% over propagation with goodput flat: congestive, keep the queue short",
			100*max(s.inflWin, s.infl))
		// But not below a level that recently carried this goodput without
		// a queue (the gradient overshoots when each stream is rate-capped).
		for k := n - 1; k > target && k >= lo; k-- {
			if o, ok := c.levels[k]; ok && !o.congested && now.Sub(o.at) <= memoryMaxAge && math.Abs(o.g/s.gWin-1) <= thrBw {
				target = k
				reason += fmt.Sprintf("; %d streams carried this goodput without queueing", k)
				break
			}
		}
		target = max(lo, (n+maxDecreaseDiv-1)/maxDecreaseDiv, min(n-1, target))
		return proposal{
			dir: -1, target: int64(target), strong: s.infl > strongFactor*thrLat,
			reason: reason, predicted: 0,
		}
	}
	// Probe upward.
	if s.appLimited || s.errWin > maxLoss || now.Before(c.noUpUntil) || s.gWin <= 0 {
		return proposal{}
	}
	if t := c.cfg.TargetThroughputMbps; t > 0 && s.gWin*8/1e6 >= t {
		return proposal{}
	}
	// Goodput rose by itself: the link changed, so what was learned about
	// the ceiling no longer holds.
	improved := c.gRef.ok && s.g > c.gRef.v*(1+thrBw)
	ceil := hi
	if c.ceiling > 0 && now.Before(c.ceilingUntil) && !improved {
		ceil = min(ceil, c.ceiling-1)
	}
	// Nor above a level that recently delivered no more than now.
	for k := n + 1; k <= ceil; k++ {
		if o, ok := c.levels[k]; ok && now.Sub(o.at) <= memoryMaxAge && o.g <= (1+thrBw)*s.gWin && !improved {
			ceil = k - 1
			break
		}
	}
	if n >= ceil {
		return proposal{}
	}
	target := n + 1
	reason := "probe: goodput may rise with one more stream"
	if c.cfg.AggressiveAdaptation || c.lastUpLinear {
		target = max(n+1, int(math.Ceil(float64(n)*probeGrowth)))
		reason = "probe ×1.5: the last step scaled linearly"
		if c.cfg.AggressiveAdaptation {
			reason = "probe ×1.5 (aggressive_adaptation)"
		}
	}
	if s.tcpLoss > c.thrLoss() || s.errWin > c.thrLoss() {
		reason += "; loss without RTT inflation is random loss, more streams help"
	}
	predicted := float64(target-n) / float64(n)
	jump := false
	if improved && c.bestC > n && c.bestG > s.gWin*(1+thrBw) && now.Sub(c.bestAt) <= memoryMaxAge {
		target, jump = max(target, c.bestC), true
		reason = fmt.Sprintf("link improved (goodput +%.0f%% by itself): return to the best operating point seen (%d streams)",
			100*(s.g/c.gRef.v-1), c.bestC)
		predicted = c.bestG/s.gWin - 1
	} else if e := c.est.BottleneckBandwidthBps / 8; e > 0 && s.gWin >= (1-thrBw)*e {
		predicted = min(predicted, thrBw) // at the known bottleneck: looking for unseen capacity
	}
	target = min(target, ceil)
	return proposal{dir: +1, target: int64(target), strong: c.gRef.ok && s.g > c.gRef.v*(1+strongFactor*thrBw),
		reason: reason, predicted: predicted, improved: improved, jump: jump}
}

func (c *Controller) proposePartSize(now time.Time, s signals, cur Params) proposal {
	target := c.est.TargetPartSizeBytes
	if target <= 0 || target == cur.PartSize {
		return proposal{}
	}
	band := 1 + max(partBand, 2*c.thrBw())
	ratio := float64(target) / float64(cur.PartSize)
	p := proposal{target: target, strong: ratio >= 2 || ratio <= 0.5}
	switch {
	case ratio >= band && !now.Before(c.partNoUpUntil):
		p.dir = +1
		p.reason = fmt.Sprintf("per-request overhead %.0f ms at %.1f Mbit/s per stream: larger parts amortize it",
			1000*s.overhead, 8*s.perStream/1e6)
	case ratio <= 1/band && !now.Before(c.partNoDnUntil):
		p.dir = -1
		p.reason = fmt.Sprintf("smaller parts suffice for overhead %.0f ms at %.1f Mbit/s per stream",
			1000*s.overhead, 8*s.perStream/1e6)
		if s.bulkFails >= minBulkFailures && maxPartFailProb/s.hazard < amortization*s.overhead*s.perStream {
			p.reason = fmt.Sprintf("%d failed parts in %s: smaller parts are cheaper to send again", s.bulkFails, hazardWindow)
		}
	default:
		return proposal{}
	}
	p.predicted = c.partEfficiency(float64(target), s)/c.partEfficiency(float64(cur.PartSize), s) - 1
	return p
}

// partEfficiency is the share of a stream's time spent sending useful
// bytes with parts of size p: overhead per part, and resends.
func (c *Controller) partEfficiency(p float64, s signals) float64 {
	send := p / s.perStream
	eff := send / (send + s.overhead)
	if s.bulkFails >= minBulkFailures {
		eff *= max(0, 1-s.hazard*p/2)
	}
	return eff
}

// apply makes a change, records it and starts measuring it.
func (c *Controller) apply(now time.Time, s signals, param string, old, new float64, p proposal) {
	t := &c.cTrig
	if param == ParamPartSize {
		t = &c.pTrig
	}
	gBefore := c.goodputSince(t.since, now)
	c.set(param, new)
	c.lastChange[param] = now
	c.adaptations++
	c.counters.Adaptations++
	seq := c.appendEvent(Event{
		At: now, Param: param, Old: old, New: new, Reason: p.reason,
		Trigger: c.triggerMap(s), PredictedGain: p.predicted,
	})
	c.startMeasuring(now, s, seq, param, old, new, gBefore, false)
	c.pending.throttle = p.throttle
	c.pending.jump = p.jump
	if p.improved {
		c.ceiling, c.ceilingUntil, c.backoff = 0, time.Time{}, backoffStart
	}
	c.cTrig, c.pTrig = trigger{}, trigger{}
}

// goodputSince is the goodput over the trigger's hold period, leaving out
// its first tick (which may straddle the change in conditions).
func (c *Controller) goodputSince(since, now time.Time) float64 {
	w := c.window(since, now)
	if w.ticks >= 2 {
		w2 := c.window(since.Add(c.cfg.MonitoringInterval), now)
		if w2.secs > 0 {
			return w2.goodput()
		}
	}
	if w.secs > 0 {
		return w.goodput()
	}
	return c.lastSignals.gWin
}

func (c *Controller) startMeasuring(now time.Time, s signals, seq uint64, param string, old, new, gBefore float64, rollback bool) {
	wait := max(c.minInterval(), c.cfg.AdaptationInterval+c.cfg.MonitoringInterval)
	if param == ParamPartSize && s.perStream > 0 {
		// The new size shows only as new parts are cut.
		wait = max(wait, min(maxEvalWait, time.Duration(1.5*max(old, new)/s.perStream*float64(time.Second))))
	}
	c.pending = &pendingChange{seq: seq, param: param, old: old, new: new, at: now, evalAt: now.Add(wait),
		gBefore: gBefore, rollback: rollback}
}

func (c *Controller) set(param string, v float64) {
	p := c.Params()
	switch param {
	case ParamConcurrency:
		p.Concurrency = int(v)
	case ParamPartSize:
		p.PartSize = int64(v)
	}
	p = c.cfg.clampParams(p)
	c.params.Store(&p)
}

func (c *Controller) triggerMap(s signals) map[string]float64 {
	m := map[string]float64{
		"goodput_bps":              8 * s.gWin,
		"goodput_tick_bps":         8 * s.g,
		"rtt_inflation":            s.inflWin,
		"smoothed_rtt_seconds":     s.lat,
		"error_rate":               s.errWin,
		"per_stream_bps":           8 * s.perStream,
		"request_overhead_seconds": s.overhead,
		"in_flight":                s.inFlight,
		"bottleneck_bandwidth_bps": c.est.BottleneckBandwidthBps,
		"target_part_size_bytes":   float64(c.est.TargetPartSizeBytes),
	}
	if s.tcpLoss >= 0 {
		m["tcp_loss_rate"] = s.tcpLoss
	}
	if c.cls[c.primaryClass(s.now)].heldOK {
		m["propagation_rtt_seconds"] = c.cls[c.primaryClass(s.now)].held
	}
	return m
}

func (c *Controller) appendEvent(e Event) uint64 {
	c.seq++
	e.Seq = c.seq
	if len(c.events) >= MaxEvents {
		c.events = append(c.events[:0], c.events[1:]...)
	}
	c.events = append(c.events, e)
	return e.Seq
}

func (c *Controller) event(seq uint64) *Event {
	for i := len(c.events) - 1; i >= 0; i-- {
		if c.events[i].Seq == seq {
			return &c.events[i]
		}
	}
	return nil
}

// evaluate measures the pending change against the goodput before it and
// rolls it back when goodput fell by more than the threshold.
func (c *Controller) evaluate(now time.Time, s signals) {
	p := c.pending
	c.pending = nil
	from := p.at.Add(c.cfg.MonitoringInterval)
	if f := now.Add(-c.cfg.AdaptationInterval); f.After(from) {
		from = f
	}
	w := c.window(from, now)
	if w.secs <= 0 || p.gBefore <= 0 {
		return
	}
	gAfter := w.goodput()
	gain := gAfter/p.gBefore - 1
	if e := c.event(p.seq); e != nil {
		e.MeasuredGain = &gain
	}
	c.gRef = refLevel{v: gAfter, ok: gAfter > 0}
	if p.rollback || p.confounded || w.appLimited() {
		return
	}
	thrBw := c.thrBw()
	switch {
	case p.param == ParamConcurrency && p.new > p.old:
		switch {
		case gain > thrBw:
			c.confidence = min(1, c.confidence+0.1)
			// A jump back to a known operating point says nothing about
			// what lies beyond it.
			c.lastUpLinear = !p.jump && gain >= linearScaling*(p.new-p.old)/p.old
		case gain < -thrBw || s.inflWin > c.thrLat():
			// Goodput fell, or it stayed flat while the queue grew: undo,
			// and do not probe above the old value for a while.
			c.rollback(now, s, p, gain)
			if gain < -thrBw {
				c.noUpUntil = now.Add(c.backoff)
			}
			c.ceiling, c.ceilingUntil = int(p.old)+1, now.Add(c.backoff)
			c.bumpBackoff()
			c.lastUpLinear = false
		default: // plateau without a queue: hold here, probe again later
			c.ceiling, c.ceilingUntil = int(p.new)+1, now.Add(c.backoff)
			c.bumpBackoff()
			c.lastUpLinear = false
		}
	case p.param == ParamConcurrency:
		// Fewer streams lost goodput and the queue is gone: it was not
		// congestion. Still inflated: the decrease was right.
		if gain < -thrBw && s.inflWin <= c.thrLat() && !p.throttle {
			c.rollback(now, s, p, gain)
			c.noDownUntil = now.Add(c.backoff)
			c.bumpBackoff()
			return
		}
		// Fewer streams carried the goodput: no need to probe above.
		c.ceiling, c.ceilingUntil = int(p.new)+1, now.Add(c.backoff)
		c.lastUpLinear = false
	case p.param == ParamPartSize:
		if gain < -thrBw {
			c.rollback(now, s, p, gain)
			if p.new > p.old {
				c.partNoUpUntil = now.Add(c.backoff)
			} else {
				c.partNoDnUntil = now.Add(c.backoff)
			}
			c.bumpBackoff()
		}
	}
}

func (c *Controller) bumpBackoff() { c.backoff = min(backoffMax, 2*c.backoff) }

func (c *Controller) rollback(now time.Time, s signals, p *pendingChange, gain float64) {
	c.set(p.param, p.old)
	c.lastChange[p.param] = now
	c.counters.Rollbacks++
	c.confidence *= 0.5
	seq := c.appendEvent(Event{
		At: now, Param: p.param, Old: p.new, New: p.old,
		Reason:        fmt.Sprintf("rollback: goodput %+.0f%% after the change (threshold %.0f%%)", 100*gain, 100*c.thrBw()),
		Trigger:       c.triggerMap(s),
		PredictedGain: -gain / (1 + gain),
		RolledBack:    true, Reverts: p.seq,
	})
	c.startMeasuring(now, s, seq, p.param, p.new, p.old, s.gWin, true)
	c.cTrig, c.pTrig = trigger{}, trigger{}
}

// Snapshot returns a copy of everything the controller knows.
func (c *Controller) Snapshot() Snapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.Params()
	lo, hi := c.cfg.partBounds()
	s := Snapshot{
		At:        c.clock.Now(),
		Adaptive:  c.cfg.Adaptive,
		Warm:      !c.sawSamples && c.warm != nil,
		Health:    c.health,
		Estimates: c.est,
		Trend:     c.trend,
		Params:    ParamView{PartSizeBytes: p.PartSize, Concurrency: p.Concurrency},
		Bounds: Bounds{MinPartSizeBytes: lo, MaxPartSizeBytes: hi,
			MinConcurrency: c.cfg.MinConcurrency, MaxConcurrency: c.cfg.MaxConcurrency},
		Decision: DecisionState{
			Confidence:      c.confidence,
			NoIncreaseUntil: c.noUpUntil,
			NoDecreaseUntil: c.noDownUntil,
			LimitReached:    c.limitReached(),
		},
		Counters: c.counters,
		Events:   make([]Event, len(c.events)),
	}
	s.Counters.ProgressBytes = uint64(c.progress.Load())
	if c.pending != nil {
		s.Decision.Pending = c.pending.param
	}
	if c.ceiling > 0 && s.At.Before(c.ceilingUntil) {
		s.Decision.ConcurrencyCeiling, s.Decision.CeilingUntil = c.ceiling, c.ceilingUntil
	}
	for i, e := range c.events {
		s.Events[i] = e
		s.Events[i].Trigger = make(map[string]float64, len(e.Trigger))
		for k, v := range e.Trigger {
			s.Events[i].Trigger[k] = v
		}
		if e.MeasuredGain != nil {
			g := *e.MeasuredGain
			s.Events[i].MeasuredGain = &g
		}
	}
	return s
}

// Profile returns what to persist for this endpoint. Before any sample it
// returns the warm profile it started from (with the current parameters).
func (c *Controller) Profile() Profile {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.Params()
	now := c.clock.Now()
	if !c.sawSamples && c.warm != nil {
		w := *c.warm
		w.PartSizeBytes, w.Concurrency = p.PartSize, p.Concurrency
		return w
	}
	e := c.est
	pr := Profile{
		Version: ProfileVersion, UpdatedAt: now,
		PartSizeBytes: p.PartSize, Concurrency: p.Concurrency,
		GoodputBps:             e.GoodputBps,
		BottleneckBandwidthBps: e.BottleneckBandwidthBps,
		PropagationRTTSeconds:  e.PropagationRTTSeconds,
		RTTSource:              e.RTTSource,
		PerStreamBps:           e.PerStreamBps,
		RequestOverheadSeconds: e.RequestOverheadSeconds,
		ErrorRate:              e.ErrorRate,
	}
	if c.bestG > 0 && now.Sub(c.bestAt) <= memoryMaxAge && c.bestC == p.Concurrency {
		pr.GoodputBps = max(pr.GoodputBps, 8*c.bestG)
	}
	return pr
}
