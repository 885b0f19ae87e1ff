package adapt

import (
	"math"
	"math/rand/v2"
	"time"
)

// This file is a simulated link and uploader for the controller tests: a
// fluid model stepped every few milliseconds on a simulated clock.
//
// The link is one bottleneck of rate R with a FIFO queue of Q bytes. Every
// request sending its body keeps a window of bytes in flight: the smallest
// of the socket window W, the server's per-connection rate cap × RTT, and
// the Mathis window 1.22·MSS/√p under random packet loss p. Up to the
// bandwidth-delay product the windows flow at window/RTT; beyond it the
// excess queues (queueing delay = queue/R, so RTT inflates with the bytes in
// flight) and the bottleneck is shared in proportion to the windows. A
// window sum beyond BDP + Q overflows the queue: congestive loss. After its
// last byte a part waits for the response (RTT with queueing plus server
// time); small requests (create, complete) take the same. Requests fail at
// random with a per-request probability at a uniform point of their body and
// are retried by the same slot after a short backoff. A server may degrade
// when too many requests are in flight.

// simClock is the simulated clock.
type simClock struct{ t time.Time }

func (c *simClock) Now() time.Time { return c.t }

// simLink describes the path at one moment.
type simLink struct {
	RateMbit      float64       // bottleneck rate
	RTT           time.Duration // propagation RTT
	QueueBytes    float64       // bottleneck buffer
	WindowBytes   float64       // per-connection window cap (socket buffer)
	StreamCapMbit float64       // server's per-connection rate cap, 0 = none
	Loss          float64       // random packet loss probability (Mathis cap)
	ErrRate       float64       // per-request failure probability
	ServerTime    time.Duration // server processing per request
	ServerKnee    int           // beyond this many requests in flight the server degrades (0 = never)
	ServerDecay   float64       // per-connection rate × ServerDecay^(inflight-ServerKnee)
}

// withDefaults fills in zero fields: 1 MiB of buffer, 4 MiB windows, 10 ms
// of server time.
func (l simLink) withDefaults() simLink {
	if l.QueueBytes == 0 {
		l.QueueBytes = 1 << 20
	}
	if l.WindowBytes == 0 {
		l.WindowBytes = 4 << 20
	}
	if l.ServerTime == 0 {
		l.ServerTime = 10 * time.Millisecond
	}
	return l
}

// uploader is what the simulated uploader talks to: the controller, or a
// baseline.
type uploader interface {
	Params() Params
	Observe(RequestSample)
	Progress(int64, time.Time)
	ObserveTCP(TCPSample)
	Tick(inFlight int)
}

// fixedUploader is a fixed configuration that measures nothing.
type fixedUploader struct{ Fixed }

func (fixedUploader) Observe(RequestSample)     {}
func (fixedUploader) Progress(int64, time.Time) {}
func (fixedUploader) ObserveTCP(TCPSample)      {}
func (fixedUploader) Tick(int)                  {}

const (
	simMSS     = 1460.0
	simBackoff = 200 * time.Millisecond
)

type simConfig struct {
	link     func(elapsed time.Duration) simLink // the path over time
	seed     uint64
	tcp      bool // feed TCP_INFO samples
	proxyTCP bool // TCP_INFO is of connections to a local proxy: RTT tens of µs, inflated by its buffers
	fileSize int64
	step     time.Duration
	monitor  time.Duration // Tick period
}

type reqPhase int

const (
	phaseBody reqPhase = iota
	phaseWait
	phaseBackoff
)

type simReq struct {
	bulk      bool
	file      *simFile
	complete  bool // a CompleteMultipartUpload (else create, when not bulk)
	size      float64
	sent      float64
	failAt    float64 // bytes at which the attempt fails, -1 for never
	failWait  bool    // fails at the response instead
	retry     bool
	phase     reqPhase
	start     time.Time
	bodyDone  time.Time
	until     time.Time // end of wait or backoff
	conn      *simConn
	rate      float64
	window    float64
	srttAtEnd float64
}

type simConn struct {
	id            uint64
	segs, retrans float64
	minRTT        float64 // seconds, the smallest RTT the connection saw
}

type simFile struct {
	size       int64
	cut        int64
	created    bool
	creating   bool
	partsOut   int
	completing bool
	done       bool
}

// sim runs an uploader over a simulated link.
type sim struct {
	cfg   simConfig
	clock *simClock
	start time.Time
	rng   *rand.Rand
	up    uploader

	reqs      []*simReq
	files     []*simFile
	idleConns []*simConn
	nextConn  uint64
	lastTick  time.Time
	lastTCP   time.Time
	rttEff    float64 // seconds, with queueing, from the last step
	queue     float64

	goodBytes   float64 // bodies of parts that completed
	sentBytes   float64 // all body bytes sent
	wastedBytes float64 // body bytes of failed attempts
	partsDone   int
	filesDone   int
}

func newSim(cfg simConfig, clock *simClock, up uploader) *sim {
	if cfg.fileSize == 0 {
		cfg.fileSize = 256 << 20
	}
	if cfg.step == 0 {
		cfg.step = 5 * time.Millisecond
	}
	if cfg.monitor == 0 {
		cfg.monitor = 2 * time.Second
	}
	return &sim{cfg: cfg, clock: clock, start: clock.t, rng: rand.New(rand.NewPCG(cfg.seed, 0x5eed)), up: up, lastTick: clock.t, lastTCP: clock.t}
}

func (s *sim) elapsed() time.Duration { return s.clock.t.Sub(s.start) }

// run advances the simulation by d, calling tick (if not nil) after every
// Tick of the uploader.
func (s *sim) run(d time.Duration, tick func()) {
	end := s.clock.t.Add(d)
	for s.clock.t.Before(end) {
		s.stepOnce()
		if s.clock.t.Sub(s.lastTick) >= s.cfg.monitor {
			s.lastTick = s.clock.t
			s.up.Tick(len(s.reqs))
			if tick != nil {
				tick()
			}
		}
	}
}

func (s *sim) conn() *simConn {
	if n := len(s.idleConns); n > 0 {
		c := s.idleConns[n-1]
		s.idleConns = s.idleConns[:n-1]
		return c
	}
	s.nextConn++
	return &simConn{id: s.nextConn, minRTT: s.rttEff} // the handshake's RTT
}

// startWork fills free slots up to the concurrency in force.
func (s *sim) startWork(l simLink) {
	p := s.up.Params()
	for len(s.reqs) < p.Concurrency {
		r := s.nextRequest(p)
		if r == nil {
			return
		}
		r.conn = s.conn()
		s.begin(r, l)
		s.reqs = append(s.reqs, r)
	}
}

func (s *sim) nextRequest(p Params) *simReq {
	// Completes first: they finish files.
	for _, f := range s.files {
		if f.created && !f.completing && !f.done && f.cut == f.size && f.partsOut == 0 {
			f.completing = true
			return &simReq{file: f, complete: true}
		}
	}
	var cur *simFile
	for _, f := range s.files {
		if f.cut < f.size {
			cur = f
			break
		}
	}
	if cur == nil {
		open := 0
		for _, f := range s.files {
			if !f.done {
				open++
			}
		}
		if open > p.Concurrency { // enough files to keep every slot busy
			return nil
		}
		cur = &simFile{size: s.cfg.fileSize}
		s.files = append(s.files, cur)
	}
	if !cur.created {
		if cur.creating {
			return nil
		}
		cur.creating = true
		return &simReq{file: cur}
	}
	size := min(p.PartSize, cur.size-cur.cut)
	cur.cut += size
	cur.partsOut++
	return &simReq{bulk: true, file: cur, size: float64(size)}
}

func (s *sim) begin(r *simReq, l simLink) {
	r.start = s.clock.t
	r.sent = 0
	r.failAt, r.failWait = -1, false
	if s.rng.Float64() < l.ErrRate {
		if r.bulk && s.rng.Float64() < 0.8 {
			r.failAt = s.rng.Float64() * r.size
		} else {
			r.failWait = true
		}
	}
	if r.bulk {
		r.phase = phaseBody
	} else {
		r.phase = phaseWait
		r.until = s.clock.t.Add(s.waitTime(l))
	}
}

func (s *sim) serverFactor(l simLink) float64 {
	if l.ServerKnee > 0 && len(s.reqs) > l.ServerKnee {
		return math.Pow(l.ServerDecay, float64(len(s.reqs)-l.ServerKnee))
	}
	return 1
}

// waitTime is the response wait: the RTT with queueing plus server time.
func (s *sim) waitTime(l simLink) time.Duration {
	rtt := max(s.rttEff, l.RTT.Seconds())
	srv := l.ServerTime.Seconds() / s.serverFactor(l)
	j := 1 + 0.1*(s.rng.Float64()-0.5)
	return time.Duration((rtt + srv) * j * float64(time.Second))
}

func (s *sim) stepOnce() {
	l := s.cfg.link(s.elapsed()).withDefaults()
	s.startWork(l)
	dt := s.cfg.step.Seconds()
	R := l.RateMbit * 1e6 / 8
	rtt := l.RTT.Seconds()
	if s.rttEff < rtt {
		s.rttEff = rtt
	}
	factor := s.serverFactor(l)

	// Windows of the requests sending their bodies.
	var F float64
	for _, r := range s.reqs {
		if r.phase != phaseBody {
			continue
		}
		w := l.WindowBytes
		if l.StreamCapMbit > 0 {
			w = min(w, l.StreamCapMbit*1e6/8*s.rttEff)
		}
		if l.Loss > 0 {
			w = min(w, 1.22*simMSS/math.Sqrt(l.Loss))
		}
		r.window = w
		F += w
	}
	bdp := R * rtt
	overflow := 0.0
	if F <= bdp {
		s.queue = 0
	} else {
		s.queue = min(F-bdp, l.QueueBytes)
		overflow = max(0, F-bdp-l.QueueBytes)
	}
	s.rttEff = rtt + s.queue/R
	var progress float64
	for _, r := range s.reqs {
		if r.phase != phaseBody {
			continue
		}
		if F <= bdp {
			r.rate = r.window / rtt
		} else {
			r.rate = R * r.window / F
		}
		r.rate *= factor
		n := r.rate * dt
		if r.failAt >= 0 && r.sent+n >= r.failAt {
			n = max(0, r.failAt-r.sent)
		}
		n = min(n, r.size-r.sent)
		r.sent += n
		progress += n
		segs := n / simMSS
		r.conn.segs += segs
		loss := l.Loss
		if overflow > 0 {
			loss += 0.02 * overflow / F
		}
		r.conn.retrans += segs * loss
	}
	s.sentBytes += progress
	s.clock.t = s.clock.t.Add(s.cfg.step)
	now := s.clock.t
	if progress > 0 {
		s.up.Progress(int64(progress), now)
	}

	if s.cfg.tcp && now.Sub(s.lastTCP) >= 500*time.Millisecond {
		s.lastTCP = now
		for _, r := range s.reqs {
			r.conn.minRTT = min(r.conn.minRTT, s.rttEff)
			minRTT, srtt := r.conn.minRTT, s.rttEff
			if s.cfg.proxyTCP {
				minRTT, srtt = 30e-6, 30e-6*(1+200*s.rng.Float64())
			}
			s.up.ObserveTCP(TCPSample{
				MinRTT: time.Duration(minRTT * float64(time.Second)),
				Conn:   r.conn.id, At: now,
				SRTT:    time.Duration(srtt * float64(time.Second)),
				RTTVar:  time.Duration(0.05 * srtt * float64(time.Second)),
				SegsOut: uint64(r.conn.segs), TotalRetrans: uint64(r.conn.retrans),
				DeliveryRateBps: 8 * r.rate, Cwnd: uint32(r.window / simMSS),
			})
		}
	}

	keep := s.reqs[:0]
	for _, r := range s.reqs {
		if s.advance(r, l, now) {
			keep = append(keep, r)
		} else {
			s.idleConns = append(s.idleConns, r.conn)
		}
	}
	s.reqs = keep
}

// advance moves r through its phases; it returns false when r is done.
func (s *sim) advance(r *simReq, l simLink, now time.Time) bool {
	switch r.phase {
	case phaseBody:
		if r.failAt >= 0 && r.sent >= r.failAt {
			s.wastedBytes += r.sent
			s.up.Observe(RequestSample{Bulk: true, Bytes: int64(r.sent), Start: r.start, End: now, Failed: true, Retry: r.retry})
			r.phase, r.until = phaseBackoff, now.Add(simBackoff)
			return true
		}
		if r.sent >= r.size {
			r.bodyDone = now
			r.phase = phaseWait
			r.until = now.Add(s.waitTime(l))
		}
		return true
	case phaseWait:
		if now.Before(r.until) {
			return true
		}
		sample := RequestSample{Bulk: r.bulk, Bytes: int64(r.sent), Start: r.start, BodyDone: r.bodyDone,
			FirstByte: now, End: now, Retry: r.retry}
		if !r.bulk {
			sample.BodyDone = r.start
		}
		if r.failWait {
			s.wastedBytes += r.sent
			sample.Failed = true
			s.up.Observe(sample)
			r.phase, r.until = phaseBackoff, now.Add(simBackoff)
			return true
		}
		s.up.Observe(sample)
		s.finish(r)
		return false
	case phaseBackoff:
		if now.Before(r.until) {
			return true
		}
		r.retry = true
		s.begin(r, l)
		return true
	}
	return false
}

func (s *sim) finish(r *simReq) {
	f := r.file
	switch {
	case r.bulk:
		f.partsOut--
		s.goodBytes += r.size
		s.partsDone++
	case r.complete:
		f.done = true
		s.filesDone++
		keep := s.files[:0]
		for _, g := range s.files {
			if !g.done {
				keep = append(keep, g)
			}
		}
		s.files = keep
	default:
		f.created, f.creating = true, false
	}
}

// goodputMbit is the completed part bytes per second since start, in Mbit/s.
func (s *sim) goodputMbit() float64 {
	return s.goodBytes * 8 / 1e6 / s.elapsed().Seconds()
}

// constLink returns a link that never changes.
func constLink(l simLink) func(time.Duration) simLink {
	return func(time.Duration) simLink { return l }
}
