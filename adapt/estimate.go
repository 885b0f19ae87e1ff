package adapt

import (
	"math"
	"time"
)

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

// signals are the inputs of a decision, computed every tick.
type signals struct {
	now        time.Time
	tickStart  time.Time
	g          float64 // goodput this tick, bytes/s
	gWin       float64 // goodput over the last adaptation interval
	infl       float64 // inflation this tick (window mean if none)
	inflWin    float64
	lat        float64 // smoothed latency of the primary class, seconds
	errWin     float64 // error rate since the last concurrency change (≤ errorWindow)
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
	overTarget bool    // latency above target_latency_ms
	prop       float64 // propagation estimate of the primary class, seconds
	hasRTT     bool
	drained    bool
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
	if t := c.cls[classTCP].last; !t.IsZero() && now.Sub(t) <= recent && c.cls[classTCP].heldOK && !c.tcpEndsEarly() {
		return classTCP
	}
	if c.cls[classResp].heldOK {
		return classResp
	}
	return classReq
}

// tcpEndsEarly reports whether our TCP connections end before the server,
// at a proxy on this host (HTTPS_PROXY to a local one, or the fault proxy
// of the tests): their RTT is then a loopback's, a fraction of the quickest
// request's, and says nothing about the path. A server in the same cloud
// zone has a TCP RTT of 0.1–1 ms and requests of 10–30 ms: that is the
// path, hence the loopback bound. Seen in the soak: TCP_INFO said 0.03 ms, requests took 20 ms, and
// the "inflation" over that cut concurrency to 1 on a 200 Mbit/s link.
func (c *Controller) tcpEndsEarly() bool {
	t, r := &c.cls[classTCP], &c.cls[classReq]
	return r.heldOK && t.held < proxyRTTLocal && t.held*proxyRTTFactor < r.held && r.held-t.held > proxyRTTGap
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
	bytes, secs  float64
	inFlightSecs float64
	limitSecs    float64
	inflSum      float64
	inflN        int
	ticks        int
	acc          sampleAcc
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

	// Errors since the last concurrency change (at most errorWindow): what
	// the current concurrency causes.
	from := now.Add(-errorWindow)
	if t, ok := c.lastChange[ParamConcurrency]; ok && t.After(from) {
		from = t
	}
	ew := c.window(from, now)
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
	s.overhead = c.overhead(now, rw)

	thr := c.thrLat()
	s.congested = s.hasRTT && s.infl > thr
	if cl := &c.cls[pc]; cl.heldOK {
		s.prop = cl.held
	}
	// Above the latency target, and the target is within reach: there is
	// queueing to remove and the path alone is faster than the target.
	if t := c.cfg.TargetLatencyMs / 1000; t > 0 && s.hasRTT && s.lat > t && s.prop < t && s.infl > 0 {
		s.overTarget = true
		s.congested = true
	}
	return s
}

// overhead is the per-request time not spent sending the body: the wait for
// the response after the last byte, plus two round trips (slow start) at the
// current RTT. Without TCP_INFO the RTT is taken as the response wait, which
// includes server time: an overestimate, erring towards larger parts. It is
// 0 (unknown) until minRespSamples parts completed in the window.
//
// When no part at all completed in the window although the session is older
// than it (parts too large for the rate), three small-request or TCP RTTs
// stand in, so that the part size can still come down.
func (c *Controller) overhead(now time.Time, rw winAgg) float64 {
	resp := rw.acc.lat[classResp]
	tcp, req := rw.acc.lat[classTCP], rw.acc.lat[classReq]
	switch {
	case resp.n >= minRespSamples:
		rtt := resp.mean()
		if tcp.n > 0 {
			rtt = tcp.mean()
		}
		return resp.mean() + 2*rtt
	case resp.n > 0 || now.Sub(c.start) < rateWindow || rw.bytes == 0:
		return 0
	case tcp.n > 0:
		return 3 * tcp.mean()
	case req.n > 0:
		return 3 * req.mean()
	}
	return 0
}

// Why a part size target is what it is.
const (
	partAmortize = iota // 20 × overhead × per-stream rate
	partTime            // at most maxPartSeconds of sending
	partFailures        // at most maxPartFailProb chance to fail
	partMemory          // within the memory budget
)

// targetPartSize is the part size the estimates call for (0 = not enough
// data) and which rule set it: large enough to amortize the overhead at the
// per-stream rate, small enough that a part rarely fails, within the bounds.
func (c *Controller) targetPartSize(s signals, conc int) (int64, int) {
	if s.perStream <= 0 || s.overhead <= 0 {
		return 0, partAmortize
	}
	p, why := amortization*s.overhead*s.perStream, partAmortize
	capAt := func(limit float64, w int) {
		if limit < p {
			p, why = limit, w
		}
	}
	// The controller learns at the pace parts complete, and a failure
	// costs a part's time again: no part should take longer than this.
	capAt(maxPartSeconds*s.perStream, partTime)
	if s.bulkFails >= minBulkFailures && s.hazard > 0 {
		capAt(maxPartFailProb/s.hazard, partFailures)
	}
	if b := c.opt.memBudget; b > 0 && conc > 0 {
		capAt(float64(b)/float64(conc), partMemory)
	}
	lo, hi := c.cfg.partBounds()
	p = min(max(p, float64(lo)), float64(hi))
	return roundMiB(int64(p)), why
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
		e.RTTSource = className(pc)
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
	e.TargetPartSizeBytes, c.partWhy = c.targetPartSize(s, c.Params().Concurrency)
	if !s.appLimited && s.gWin > 0 {
		c.busyEst, c.busy = *e, true
	}
	c.trend = c.computeTrend(now)
	c.health = c.computeHealth(s)
}

// trendPoint is one busy monitoring interval of the last trendWindow:
// x seconds before now (negative), goodput y, weight w.
type trendPoint struct{ x, y, w float64 }

func (c *Controller) trendPoints(now time.Time) []trendPoint {
	var pts []trendPoint
	for i := len(c.hist) - 1; i >= 0; i-- {
		r := &c.hist[i]
		age := now.Sub(r.at)
		if age > trendWindow {
			break
		}
		if r.bytes == 0 && r.inFlight == 0 {
			continue // idle
		}
		pts = append(pts, trendPoint{x: -age.Seconds(), y: r.bytes / r.dur, w: math.Exp2(-age.Seconds() / trendHalfLife.Seconds())})
	}
	return pts
}

// computeTrend fits goodput over the last minute (weights halving every
// 20 s) and classifies the slope and the scatter around it.
func (c *Controller) computeTrend(now time.Time) Trend {
	pts := c.trendPoints(now)
	var sw, sx, sy, sxx, sxy float64
	for _, p := range pts {
		sw += p.w
		sx += p.w * p.x
		sy += p.w * p.y
		sxx += p.w * p.x * p.x
		sxy += p.w * p.x * p.y
	}
	if len(pts) < 3 || sy <= 0 {
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
	for _, p := range pts {
		f := my + slope*(p.x-mx)
		res += p.w * (p.y - f) * (p.y - f)
		tot += p.w * (p.y - my) * (p.y - my)
	}
	cv := math.Sqrt(res/sw) / my
	r2 := 0.0
	if tot > 0 {
		r2 = max(0, 1-res/tot)
	}
	perMin := slope * 60 / my
	coverage := min(1, float64(len(pts))/(trendWindow.Seconds()/c.cfg.MonitoringInterval.Seconds()))
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
