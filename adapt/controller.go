package adapt

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Windows and constants of the estimators and the controller (see doc.go
// for how they are used).
const (
	btlBwWindow     = 10 * time.Second // windowed max of goodput per monitoring interval
	minRTTWindow    = 30 * time.Second // windowed min of latency per monitoring interval
	minRTTMaxAge    = 10 * time.Minute // a propagation RTT not seen again for this long is re-learned
	profileRTTTrust = time.Minute      // a profile's RTT is kept this long unless seen again
	rateWindow      = 30 * time.Second // per-stream rate, overhead, TCP loss, RTT stddev
	errorWindow     = 60 * time.Second // error and retry rate
	hazardWindow    = 10 * time.Minute // bulk failures per byte, for the part size
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
	// Nor take longer than this to send at the per-stream rate.
	maxPartSeconds = 30.0
	// Error-driven decisions need at least this many failures.
	minBulkFailures     = 3
	minThrottleFailures = 5
	minRespSamples      = 3 // completed parts before the part size is sized

	throttleDecrease = 0.7 // concurrency × this when errors exceed max_tolerable_loss
	// congestiveDecrease is the deepest single cut for a standing queue alone.
	congestiveDecrease = 0.7
	// noisyRollbackFactor widens the rollback threshold under random loss.
	noisyRollbackFactor = 3
	probeGrowth         = 1.5 // concurrency step when aggressive or scaling linearly
	randomLossGrowth    = 2.0 // concurrency step under random loss before the first decrease
	// The first step under random loss: the streams a loss-capped link
	// needs are several times the start, and with min_adaptation_interval
	// between steps a transfer otherwise spends its first 20 s at a
	// quarter of them (the lossy benchmark). A step this large that buys
	// little is halved back (see evaluate).
	randomLossFirstGrowth = 4.0
	linearScaling         = 0.7 // a step "scaled linearly" if it gained this share of the added streams
	maxDecreaseDiv        = 16  // one decrease divides concurrency by at most this
	strongFactor          = 3.0 // a signal this many thresholds strong needs one interval even when conservative
	partBand              = 0.25
	// A TCP RTT below proxyRTTLocal (a peer on this host), this many times
	// below the quickest request's and by more than proxyRTTGap is to a
	// proxy, not the server (tcpEndsEarly).
	proxyRTTLocal  = 100e-6 // seconds
	proxyRTTFactor = 10
	proxyRTTGap    = 0.005 // seconds
	maxEvalWait    = time.Minute
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

	est     Estimates
	busyEst Estimates // the estimates of the last tick with the link in use
	busy    bool
	trend   Trend
	health  Health

	// Decision state.
	cTrig, pTrig  trigger
	lastChange    map[string]time.Time
	pending       *pendingChange
	adaptations   int
	confidence    float64
	ceiling       int
	ceilingUntil  time.Time
	backoff       time.Duration
	noUpUntil     time.Time
	noDownUntil   time.Time
	partNoUpUntil time.Time
	partNoDnUntil time.Time
	lastUpLinear  bool
	// decreased: concurrency was cut for a queue or a loss of capacity since
	// the link last improved; multiplicative probing under random loss stops
	// there, as TCP leaves slow start at its first loss.
	decreased   bool
	gRef        refLevel  // goodput level established after the last change, bytes/s
	busySince   time.Time // start of the current stretch of uploading (zero when idle)
	bestG       float64
	bestC       int
	bestAt      time.Time
	bestCeiling int              // the ceiling in force at the best operating point
	levels      map[int]levelObs // what each concurrency delivered lately
	partWhy     int              // the rule behind the part size target
	events      []Event
	seq         uint64
	lastSignals signals
}

type tcpConn struct {
	segs, retrans uint64
	at            time.Time
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
	for i := range c.cls {
		if className(i) == w.RTTSource && w.PropagationRTTSeconds > 0 {
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
// It is one atomic add: the rate is taken between Ticks, so at only
// documents the caller's view.
func (c *Controller) Progress(n int64, at time.Time) {
	if n > 0 {
		c.progress.Add(n)
	}
}

// Observe records one HTTP attempt.
func (c *Controller) Observe(s RequestSample) {
	if s.End.IsZero() || s.Start.IsZero() || s.End.Before(s.Start) {
		c.mu.Lock()
		c.counters.DroppedSamples++
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
	if m := s.MinRTT.Seconds(); m > 0 && (c.acc.tcpMinRTT == 0 || m < c.acc.tcpMinRTT) {
		c.acc.tcpMinRTT = m
	}
}

// RecordEvent adds an event from outside the controller (a LevelPolicy's
// level change) to the audit trail. Seq is assigned here.
func (c *Controller) RecordEvent(e Event) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.appendEvent(e)
}

// MeasureEvent fills in the measured gain of event seq (recorded with
// RecordEvent), if it is still kept.
func (c *Controller) MeasureEvent(seq uint64, gain float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.event(seq); e != nil {
		g := finite(gain)
		e.MeasuredGain = &g
	}
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
	var prevLat [nClass]float64
	for i := range c.cls {
		prevLat[i] = c.cls[i].smooth.v
	}
	for i := range c.cls {
		if c.cls[i].tick(now, acc.lat[i], thrLat) {
			c.counters.MinRTTRelearned++
		}
	}
	// The kernel's own minimum is a propagation sample of the TCP class
	// (it keeps a window of its own, so a repeated value confirms it).
	if m, cl := acc.tcpMinRTT, &c.cls[classTCP]; m > 0 && cl.heldOK && m <= cl.held*(1+thrLat/2) {
		cl.held, cl.heldSeen = min(cl.held, m), now
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
	// The queue drained by itself: latency fell far below its recent level.
	if cl := &c.cls[pc]; !math.IsNaN(cl.cur) && prevLat[pc] > 0 {
		s.drained = cl.cur*(1+strongFactor*thrLat) < prevLat[pc]
	}
	c.lastSignals = s
	c.updateEstimates(now, s, pc)
	// An idle tick measured nothing: deciding on the window's old samples
	// shrank concurrency every few seconds while a mount sat idle.
	if c.cfg.Adaptive && (bytes > 0 || inFlight > 0 || acc.attempts > 0) {
		c.decide(now, s)
	}
	return true
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
	// An idle end of session says nothing about the link: keep what was
	// measured while uploads ran.
	e := c.est
	if c.busy {
		e = c.busyEst
	}
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
	if c.bestG > 0 && c.bestC == p.Concurrency {
		pr.GoodputBps = max(pr.GoodputBps, 8*c.bestG)
	}
	return pr
}
