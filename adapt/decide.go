package adapt

import (
	"fmt"
	"math"
	"time"
)

// levelObs is the goodput last seen at one concurrency, settled.
type levelObs struct {
	g         float64
	congested bool
	at        time.Time
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
	improved  bool // the link got better by itself
	jump      bool // back to the best operating point
	errDriven bool // a smaller part for the failure rate
}

const relearn = 2

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

// rollbackThreshold is how much goodput a probe up may lose before it is
// undone. Under random loss (TCP_INFO retransmits without RTT inflation)
// aggregate goodput swings ±20 % per interval on its own, and the bandwidth
// threshold alone undid probes that were right (seen on the 0.5 % loss
// emulated link: 8 → 9 streams, "−15 %", rolled back, stuck at 8).
func (c *Controller) rollbackThreshold(s signals) float64 {
	if s.tcpLoss > c.thrLoss() && s.inflWin <= c.thrLat() {
		return noisyRollbackFactor * c.thrBw()
	}
	return c.thrBw()
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
	// The first seconds of a burst are not a goodput level: socket buffers
	// of every new stream fill at memory speed, and a reference taken then
	// makes the real rate look like a collapse.
	if s.gWin <= 0 {
		c.busySince = time.Time{}
	} else if c.busySince.IsZero() {
		c.busySince = now
	}
	if !c.busySince.IsZero() && now.Sub(c.busySince) >= 2*c.cfg.AdaptationInterval {
		c.gRef.add(now, s.gWin, c.thrBw())
	}

	if cp.dir == relearn {
		if c.cTrig.held(now, c.hold(false), c.hold(true)) {
			c.cls[c.primaryClass(now)].relearn(now)
			c.counters.MinRTTRelearned++
			c.cTrig = trigger{}
		}
	} else if cp.dir != 0 && c.ready(now, ParamConcurrency, &c.cTrig, cp.strong) {
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
	default:
		return
	}
	c.bestCeiling = 0
	if c.ceiling > 0 && now.Before(c.ceilingUntil) {
		c.bestCeiling = c.ceiling
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
		// A part size shows its effect only as parts turn over, which can
		// take long: concurrency does not wait for that, but a strong
		// concurrency signal only. A part size waits for a concurrency
		// change to be measured (min_adaptation_interval at most).
		settled := p.at.Add(c.cfg.AdaptationInterval + c.cfg.MonitoringInterval)
		urgent := param == ParamConcurrency && (strong || p.param == ParamPartSize)
		if !urgent || p.param == param || now.Before(settled) {
			return false
		}
		// Measure the earlier change on what was seen so far; it is not
		// rolled back on confounded data.
		p.confounded = true
		c.evaluate(now, c.lastSignals)
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
			strong:    s.errWin > 2*maxLoss,
			reason:    fmt.Sprintf("error rate %.1f%% above max_tolerable_loss %.1f%%", 100*s.errWin, 100*maxLoss),
			predicted: 0,
		}
	}
	// Goodput fell a lot by itself with every slot busy: the link lost
	// capacity. The response-wait samples that show the queue arrive only
	// as parts complete, which at the new rate can take long, so this
	// acts before they do; a wrong guess (random loss) is rolled back.
	degraded := c.gRef.ok && !s.appLimited && s.g < c.gRef.v*(1-strongFactor*thrBw)
	// A standing queue that TCP_INFO shows loses (almost) nothing costs us
	// no throughput: our own loss-based (cubic) streams fill any buffer, so
	// inflation alone is no reason to drop streams — fewer streams only
	// recover more slowly on a long, fat path (seen on the 100 ms emulated
	// link). Loss with inflation is a full queue (DESIGN); a latency target
	// or no TCP_INFO keep the delay-based rule.
	queueHurts := s.congested && (s.tcpLoss < 0 || s.tcpLoss > c.thrLoss() || s.overTarget)
	// Queueing: step to the concurrency that keeps the queue near empty.
	if queueHurts || degraded {
		if n <= lo {
			if !s.congested {
				return proposal{}
			}
			return proposal{dir: relearn}
		}
		if now.Before(c.noDownUntil) && !degraded {
			return proposal{}
		}
		ratio := math.Inf(1)
		var reason string
		if s.congested {
			// Vegas-style gradient: the share of the streams whose bytes
			// sit in the queue is not needed.
			ratio = (1 + thrLat/2) / (1 + max(s.inflWin, s.infl))
			reason = fmt.Sprintf("RTT inflated %.0f%% over propagation with goodput flat: congestive, keep the queue short",
				100*max(s.inflWin, s.infl))
			if s.overTarget {
				// Shrink the queueing part of the latency to fit the target.
				t := c.cfg.TargetLatencyMs / 1000
				ratio = min(ratio, (t-s.prop)/(s.lat-s.prop))
				reason = fmt.Sprintf("latency %.0f ms above target_latency_ms %.0f: shorten the queue",
					1000*s.lat, c.cfg.TargetLatencyMs)
			}
		}
		if degraded {
			// The streams that carried the old goodput, scaled to the new.
			if r := (1 + thrLat/2) * s.g / c.gRef.v; r < ratio {
				ratio = r
				reason = fmt.Sprintf("goodput fell %.0f%% by itself with every slot busy: the link lost capacity",
					100*(1-s.g/c.gRef.v))
			}
		}
		target := int(math.Round(float64(n) * ratio))
		// But not below a level that recently carried this goodput without
		// a queue (the gradient overshoots when each stream is rate-capped).
		for k := n - 1; k > target && k >= lo; k-- {
			if o, ok := c.levels[k]; ok && !o.congested && now.Sub(o.at) <= memoryMaxAge && math.Abs(o.g/s.gWin-1) <= thrBw {
				target = k
				reason += fmt.Sprintf("; %d streams carried this goodput without queueing", k)
				break
			}
		}
		if !degraded {
			// A standing queue alone costs us no throughput: back off
			// multiplicatively, not to the gradient's target at once. A
			// big cut on a long, fat path leaves too few streams, and a
			// single TCP stream recovers from a loss slowly there (seen on
			// the 100 ms emulated link: 8 → 1 stream cost 8 % of the run).
			target = max(target, int(math.Floor(float64(n)*congestiveDecrease)))
		}
		target = max(lo, (n+maxDecreaseDiv-1)/maxDecreaseDiv, min(n-1, target))
		return proposal{
			dir: -1, target: int64(target), strong: s.infl > strongFactor*thrLat || degraded,
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
	// Random loss (TCP retransmits, no queue) caps each stream at a rate
	// set by the loss (Mathis): goodput scales with the number of streams
	// until the link fills, so grow multiplicatively at once.
	randomLoss := s.tcpLoss > c.thrLoss() && s.inflWin <= c.thrLat() && !c.decreased
	switch {
	case c.cfg.AggressiveAdaptation:
		target = max(n+1, int(math.Ceil(float64(n)*probeGrowth)))
		reason = "probe ×1.5 (aggressive_adaptation)"
	case randomLoss:
		g := randomLossGrowth
		if _, changed := c.lastChange[ParamConcurrency]; !changed {
			g = randomLossFirstGrowth
		}
		target = max(n+1, int(math.Ceil(float64(n)*g)))
		reason = fmt.Sprintf("probe ×%g: TCP loss %.2f%% without RTT inflation is random loss, each stream is capped by it", g, 100*s.tcpLoss)
	case c.lastUpLinear:
		target = max(n+1, int(math.Ceil(float64(n)*probeGrowth)))
		reason = "probe ×1.5: the last step scaled linearly"
	}
	if !randomLoss && (s.tcpLoss > c.thrLoss() || s.errWin > c.thrLoss()) {
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
	// A return to a remembered operating point needs one interval only: it
	// was measured before, and its evaluation undoes it if the link did not
	// come back.
	// Random loss is measured, not guessed (retransmits with a flat RTT):
	// it needs no second interval of proof.
	strong := c.gRef.ok && (s.g > c.gRef.v*(1+strongFactor*thrBw) || improved && s.drained) || jump || randomLoss
	return proposal{dir: +1, target: int64(target), strong: strong,
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
	case (ratio <= 1/band || c.partWhy == partMemory && ratio < 1) && !now.Before(c.partNoDnUntil):
		// The memory budget is a bound, not a preference: no band.
		p.dir = -1
		switch c.partWhy {
		case partFailures:
			p.reason = fmt.Sprintf("%d failed parts in %s: keep the chance that a part fails at %.0f%%",
				s.bulkFails, hazardWindow, 100*maxPartFailProb)
			p.errDriven = true
		case partTime:
			p.reason = fmt.Sprintf("a part takes over %.0f s at %.1f Mbit/s per stream", maxPartSeconds, 8*s.perStream/1e6)
		case partMemory:
			p.reason = fmt.Sprintf("part size × %d streams within the memory budget", cur.Concurrency)
		default:
			p.reason = fmt.Sprintf("smaller parts suffice for overhead %.0f ms at %.1f Mbit/s per stream",
				1000*s.overhead, 8*s.perStream/1e6)
		}
	default:
		return proposal{}
	}
	if e0 := c.partEfficiency(float64(cur.PartSize), s); e0 > 0 {
		p.predicted = c.partEfficiency(float64(target), s)/e0 - 1
	}
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
	c.pending.jump = p.jump
	if param == ParamConcurrency && new < old {
		c.decreased = true
	}
	if p.improved {
		c.decreased = false
		c.ceiling, c.ceilingUntil, c.backoff = 0, time.Time{}, backoffStart
		if p.jump && c.bestCeiling > 0 {
			// Back where we were: what we learned there holds again.
			c.ceiling, c.ceilingUntil = c.bestCeiling, now.Add(c.backoff)
		}
	}
	if p.errDriven {
		// Failures are rare events: do not grow back while the window
		// that showed them has not passed.
		c.partNoUpUntil = now.Add(hazardWindow)
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
	// JSON has no NaN or infinity: an event must always encode.
	e.PredictedGain = finite(e.PredictedGain)
	for k, v := range e.Trigger {
		e.Trigger[k] = finite(v)
	}
	if len(c.events) >= MaxEvents {
		c.events = append(c.events[:0], c.events[1:]...)
	}
	c.events = append(c.events, e)
	return e.Seq
}

func finite(x float64) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return 0
	}
	return x
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
		g := finite(gain)
		e.MeasuredGain = &g
	}
	c.gRef = refLevel{v: gAfter, ok: gAfter > 0}
	if p.rollback || w.appLimited() {
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
		case p.confounded:
			// Not attributable, so not rolled back; but do not build on it.
			c.lastUpLinear = false
			if gain < -thrBw {
				c.ceiling, c.ceilingUntil = int(p.new), now.Add(c.backoff)
			}
		case gain < -c.rollbackThreshold(s) || s.inflWin > c.thrLat():
			// Goodput fell, or it stayed flat while the queue grew: undo,
			// and do not probe above the old value for a while.
			c.rollback(now, s, p, gain)
			c.bumpBackoff()
			if gain < -thrBw {
				c.noUpUntil = now.Add(c.backoff)
			}
			c.ceiling, c.ceilingUntil = int(p.old)+1, now.Add(c.backoff)
			c.lastUpLinear = false
		case p.new >= 3*p.old && !p.jump:
			// A big step that bought little: the streams were not the
			// limit for most of it (congestion that looks random on a
			// shallow buffer). Back to the geometric midpoint.
			mid := math.Round(math.Sqrt(p.old * p.new))
			c.rollbackTo(now, s, p, gain, mid, fmt.Sprintf("a ×%.0f step bought %+.0f%%: back to the midpoint", p.new/p.old, 100*gain))
			c.decreased = true // no more multiplicative steps: the limit is near
			c.bumpBackoff()
			c.ceiling, c.ceilingUntil = int(p.new), now.Add(c.backoff)
			c.lastUpLinear = false
		default: // plateau without a queue: hold here, probe again later
			c.bumpBackoff()
			c.ceiling, c.ceilingUntil = int(p.new)+1, now.Add(c.backoff)
			c.lastUpLinear = false
		}
	case p.param == ParamConcurrency:
		// Fewer streams lost goodput and the queue is gone: it was not
		// congestion. Still inflated: the decrease was right. A loss larger
		// than the share of the streams removed is the link changing, not
		// this change.
		ours := gain >= -(1-p.new/p.old)-thrBw
		if gain < -thrBw && ours && s.inflWin <= c.thrLat() && !p.confounded {
			c.rollback(now, s, p, gain)
			c.bumpBackoff()
			c.noDownUntil = now.Add(c.backoff)
			return
		}
		// Fewer streams carried the goodput: no need to probe above.
		c.ceiling, c.ceilingUntil = int(p.new)+1, now.Add(c.backoff)
		c.lastUpLinear = false
	case p.param == ParamPartSize:
		if gain < -thrBw && !p.confounded {
			c.rollback(now, s, p, gain)
			c.bumpBackoff()
			if p.new > p.old {
				c.partNoUpUntil = now.Add(c.backoff)
			} else {
				c.partNoDnUntil = now.Add(c.backoff)
			}
		}
	}
}

func (c *Controller) bumpBackoff() { c.backoff = min(backoffMax, 2*c.backoff) }

// recovery is the gain expected from undoing a change that measured gain.
func recovery(gain float64) float64 {
	if gain <= -1 {
		return 0 // nothing left to compare with
	}
	return -gain / (1 + gain)
}

func (c *Controller) rollback(now time.Time, s signals, p *pendingChange, gain float64) {
	reason := fmt.Sprintf("rollback: goodput %+.0f%% after the change (threshold %.0f%%)", 100*gain, 100*c.thrBw())
	if gain >= -c.thrBw() {
		reason = fmt.Sprintf("rollback: goodput %+.0f%% while RTT inflated %.0f%%: only queue, no gain", 100*gain, 100*s.inflWin)
	}
	c.rollbackTo(now, s, p, gain, p.old, reason)
}

// rollbackTo undoes the pending change p (wholly, or part way to to).
func (c *Controller) rollbackTo(now time.Time, s signals, p *pendingChange, gain, to float64, reason string) {
	c.set(p.param, to)
	c.lastChange[p.param] = now
	c.counters.Rollbacks++
	c.confidence *= 0.5
	seq := c.appendEvent(Event{
		At: now, Param: p.param, Old: p.new, New: to,
		Reason:        reason,
		Trigger:       c.triggerMap(s),
		PredictedGain: recovery(gain),
		RolledBack:    true, Reverts: p.seq,
	})
	c.startMeasuring(now, s, seq, p.param, p.new, to, s.gWin, true)
	c.cTrig, c.pTrig = trigger{}, trigger{}
}
