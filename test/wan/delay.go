package wan

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Delay line tuning.
const (
	// nfQueueMaxLen bounds the packets one direction may hold. At
	// 200 Mbit/s a 50 ms one-way delay holds ~850 full-size packets; this
	// leaves room for far longer delays and bursts.
	nfQueueMaxLen = 32768
	// nfRcvBuf is the netlink receive buffer of a delay line. Each queued
	// packet costs the kernel one small message (~1 KB of buffer with its
	// overhead); the buffer must absorb the arrivals of a scheduling or GC
	// hiccup of the reader, or the kernel drops packets.
	nfRcvBuf = 64 << 20
	// releaseSlack lets one wake-up release packets due a little later,
	// which batches verdicts at high packet rates (error ≤ releaseSlack).
	releaseSlack = 20 * time.Microsecond
	// maxWait bounds one wait: ppoll adds 0.1 % of the timeout as slack.
	maxWait = 10 * time.Millisecond
	// maxOversleep caps the wake-up latency the releaser compensates.
	maxOversleep = 200 * time.Microsecond
	// maxStampLag is the largest believable age of a kernel timestamp.
	maxStampLag = time.Second
	// rtPriority is the SCHED_FIFO priority of the delay line's thread.
	rtPriority = 10
	// minJitterSegment is the shortest segment of the jitter process.
	minJitterSegment = 2 * time.Millisecond
)

// delayParams are the delay settings of one direction.
type delayParams struct {
	base   time.Duration // one-way delay
	jitter time.Duration // amplitude: the delay stays within base±jitter
}

// scheduler turns arrival times into release times for one direction.
//
// The delay is base plus a jitter offset j(t) that follows a random,
// piecewise-linear path: every segment goes from the previous target to a
// new one drawn uniformly from [-jitter, +jitter] over 4·jitter (at least
// minJitterSegment), so |dj/dt| ≤ 1/2. Release times t+base+j(t) are
// therefore increasing in t, and on top of that each release is clamped
// to be no earlier than the previous one (which matters only when the
// parameters change): packets are never reordered, and back-to-back
// packets see nearly the same delay, as on a real path, while packets a
// few segments apart see independent ones.
//
// Times are nanoseconds on a monotonic clock. Arrival times must not
// decrease. Not safe for concurrent use.
type scheduler struct {
	rng  *rand.Rand
	last int64 // previous release time

	// current jitter segment: offset from at segStart to offset to at segEnd
	segStart, segEnd int64
	from, to         float64
	amp              time.Duration
}

func newScheduler(seed uint64) *scheduler {
	return &scheduler{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// release returns the release time of a packet that arrived at arrival.
func (s *scheduler) release(arrival int64, p delayParams) int64 {
	r := arrival + int64(p.base) + s.offset(arrival, p.jitter)
	if r < arrival {
		r = arrival
	}
	if r < s.last {
		r = s.last
	}
	s.last = r
	return r
}

func (s *scheduler) draw(amp time.Duration) float64 {
	return (s.rng.Float64()*2 - 1) * float64(amp)
}

// offset returns the jitter offset j(t) in nanoseconds.
func (s *scheduler) offset(t int64, amp time.Duration) int64 {
	if amp <= 0 {
		s.amp, s.segEnd = 0, 0
		return 0
	}
	seg := max(4*amp, minJitterSegment)
	switch {
	case amp != s.amp || s.segEnd == 0 || t >= s.segEnd+int64(seg):
		// New amplitude, first packet, or idle for a while: start afresh
		// from a random point.
		s.amp = amp
		s.from, s.to = s.draw(amp), s.draw(amp)
		s.segStart, s.segEnd = t, t+int64(seg)
	case t >= s.segEnd:
		s.from, s.to = s.to, s.draw(amp)
		s.segStart, s.segEnd = s.segEnd, s.segEnd+int64(seg)
	}
	frac := float64(t-s.segStart) / float64(s.segEnd-s.segStart)
	return int64(s.from + (s.to-s.from)*frac)
}

// monoClock reads Go's monotonic clock in nanoseconds since its start.
type monoClock struct{ t0 time.Time }

func newMonoClock() monoClock { return monoClock{t0: time.Now()} }

func (c monoClock) now() int64 { return int64(time.Since(c.t0)) }

// due is a scheduled packet.
type due struct {
	id  uint32
	rel int64
}

// fifo is a growable ring buffer of scheduled packets.
type fifo struct {
	buf        []due
	head, size int
}

func (f *fifo) push(d due) {
	if f.size == len(f.buf) {
		nb := make([]due, max(64, 2*len(f.buf)))
		for i := range f.size {
			nb[i] = f.buf[(f.head+i)%len(f.buf)]
		}
		f.buf, f.head = nb, 0
	}
	f.buf[(f.head+f.size)%len(f.buf)] = d
	f.size++
}

func (f *fifo) front() due { return f.buf[f.head] }

func (f *fifo) pop() due {
	d := f.buf[f.head]
	f.head = (f.head + 1) % len(f.buf)
	f.size--
	return d
}

// delayStats are the counters of one direction of the delay line.
type delayStats struct {
	Released   uint64        // packets accepted after their delay
	KernelErrs uint64        // verdicts the kernel refused
	RecvErrs   uint64        // receive errors (ENOBUFS: the kernel dropped packets)
	MaxLate    time.Duration // largest release lateness
	Late1ms    uint64        // packets released more than 1 ms late
	MeanErr    time.Duration // mean of (release − due time)
	MeanAbsErr time.Duration // mean of |release − due time|
}

// lane is one direction of the delay line: an NFQUEUE, its scheduler and
// the packets it holds. Only the engine thread touches q, sched and held.
type lane struct {
	dir    direction
	q      *nfq
	sched  *scheduler
	held   fifo
	params atomic.Pointer[delayParams]

	released, kernelErrs, recvErrs atomic.Uint64
	maxLate, sumErr, sumAbsErr     atomic.Int64
	late1ms                        atomic.Uint64
}

func (ln *lane) stats() delayStats {
	st := delayStats{
		Released:   ln.released.Load(),
		KernelErrs: ln.kernelErrs.Load(),
		RecvErrs:   ln.recvErrs.Load(),
		MaxLate:    time.Duration(ln.maxLate.Load()),
		Late1ms:    ln.late1ms.Load(),
	}
	if st.Released > 0 {
		st.MeanErr = time.Duration(ln.sumErr.Load() / int64(st.Released))
		st.MeanAbsErr = time.Duration(ln.sumAbsErr.Load() / int64(st.Released))
	}
	return st
}

// delayLine delays the packets of both directions. Each direction's
// packets are queued by nftables to their own NFQUEUE; one goroutine, on
// its own OS thread with 1 ns timer slack, waits in ppoll for new packets
// or for the next packet to come due, stamps arrivals (with the kernel's
// receive time), and accepts due packets with one batch verdict per
// queue and wake-up. It does not spin and sleeps while the link is idle.
type delayLine struct {
	lanes  [2]*lane
	clock  monoClock
	log    *slog.Logger
	wakeFD int // eventfd: stop request
	// stampFD is a socket with SO_TIMESTAMPNS on: while one exists the
	// kernel stamps every received packet (a global switch, as with
	// tcpdump), which gives NFQUEUE messages their arrival time.
	stampFD int

	stopOnce sync.Once
	done     chan struct{}
}

// startDelayLine binds NFQUEUE 0 (up) and 1 (down) in namespace ns and
// starts the engine. Stop it with stop.
func startDelayLine(ns netns.NsHandle, p delayParams, seed uint64, log *slog.Logger) (_ *delayLine, err error) {
	d := &delayLine{clock: newMonoClock(), log: log, wakeFD: -1, stampFD: -1, done: make(chan struct{})}
	defer func() {
		if err != nil {
			d.closeFDs()
		}
	}()
	for _, dir := range []direction{dirUp, dirDown} {
		q, err := openNFQ(ns, dir.nfQueueNum(), nfQueueMaxLen, nfRcvBuf)
		if err != nil {
			return nil, err
		}
		ln := &lane{dir: dir, q: q, sched: newScheduler(seed + uint64(dir))}
		ln.params.Store(&p)
		d.lanes[dir] = ln
	}
	if d.wakeFD, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		return nil, fmt.Errorf("delay line: eventfd: %w", err)
	}
	if d.stampFD, err = enableRxTimestamps(); err != nil {
		return nil, fmt.Errorf("delay line: %w", err)
	}
	go d.run()
	return d, nil
}

// enableRxTimestamps returns a socket whose SO_TIMESTAMPNS option makes
// the kernel timestamp received packets until it is closed.
func enableRxTimestamps() (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("socket: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("setsockopt SO_TIMESTAMPNS: %w", err)
	}
	return fd, nil
}

func (d *delayLine) setParams(p delayParams) {
	for _, ln := range d.lanes {
		ln.params.Store(&p)
	}
}

func (d *delayLine) stats(dir direction) delayStats { return d.lanes[dir].stats() }

// stop ends the engine and closes the queues (the kernel drops the
// packets they still hold). Idempotent.
func (d *delayLine) stop() {
	d.stopOnce.Do(func() {
		var one [8]byte
		binary.NativeEndian.PutUint64(one[:], 1)
		if _, err := unix.Write(d.wakeFD, one[:]); err != nil {
			d.log.Error("wan: delay line: wake for stop", "err", err)
		}
		<-d.done
		d.closeFDs()
	})
}

func (d *delayLine) closeFDs() {
	for _, ln := range d.lanes {
		if ln != nil {
			ln.q.close()
		}
	}
	for _, fd := range []*int{&d.wakeFD, &d.stampFD} {
		if *fd >= 0 {
			unix.Close(*fd)
			*fd = -1
		}
	}
}

// run is the engine loop.
func (d *delayLine) run() {
	defer close(d.done)
	// This thread gets a 1 ns timer slack; it is never unlocked, so the
	// runtime discards it when the goroutine ends.
	runtime.LockOSThread()
	if err := unix.Prctl(unix.PR_SET_TIMERSLACK, 1, 0, 0, 0); err != nil {
		d.log.Warn("wan: delay line: prctl(PR_SET_TIMERSLACK)", "err", err)
	}
	// Real-time priority, as the kernel's own netem would have (it runs
	// in softirq context): on a busy machine a normal thread can wait
	// milliseconds for a CPU. The thread never spins, and the kernel's
	// real-time throttling bounds it anyway.
	if err := unix.SchedSetAttr(0, &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_FIFO, Priority: rtPriority}, 0); err != nil {
		d.log.Debug("wan: delay line: no real-time priority, release times may be late under load", "err", err)
	}
	fds := []unix.PollFd{
		{Fd: int32(d.lanes[dirUp].q.fd), Events: unix.POLLIN},
		{Fd: int32(d.lanes[dirDown].q.fd), Events: unix.POLLIN},
		{Fd: int32(d.wakeFD), Events: unix.POLLIN},
	}
	// oversleep tracks how late ppoll returns after its timeout (an EWMA,
	// ns): waking up that much early makes releases on time on average.
	var oversleep int64
	var now int64
	var cur *lane
	onPacket := func(id uint32, stampNs int64) {
		at := now
		if stampNs != 0 {
			// Kernel receive time: the reader's wake-up latency is not
			// added to the delay. Ignored if the wall clock stepped.
			if lag := time.Now().UnixNano() - stampNs; lag >= 0 && lag < int64(maxStampLag) {
				at = now - lag
			}
		}
		cur.held.push(due{id: id, rel: cur.sched.release(at, *cur.params.Load())})
	}
	for {
		now = d.clock.now()
		lead := int64(releaseSlack) + oversleep
		next := int64(-1)
		for _, ln := range d.lanes {
			d.release(ln, now, lead)
			if ln.held.size > 0 {
				if t := ln.held.front().rel - lead; next < 0 || t < next {
					next = t
				}
			}
		}
		var timeout *unix.Timespec
		target := int64(-1)
		if next >= 0 {
			target = min(next, now+int64(maxWait))
			ts := unix.NsecToTimespec(max(target-now, 0))
			timeout = &ts
		}
		for i := range fds {
			fds[i].Revents = 0
		}
		n, err := unix.Ppoll(fds, timeout, nil)
		if err != nil && !errors.Is(err, unix.EINTR) {
			d.log.Error("wan: delay line: ppoll", "err", err)
			return
		}
		now = d.clock.now()
		if n == 0 && target >= 0 {
			oversleep += (min(now-target, int64(maxOversleep)) - oversleep) / 8
		}
		if fds[2].Revents != 0 {
			return
		}
		for i, ln := range d.lanes {
			if fds[i].Revents == 0 {
				continue
			}
			cur = ln
			kerrs, err := ln.q.recv(onPacket)
			if kerrs > 0 {
				ln.kernelErrs.Add(uint64(kerrs))
			}
			if err != nil {
				if c := ln.recvErrs.Add(1); c <= 10 || c%1000 == 0 {
					d.log.Warn("wan: delay line: receive error (the kernel dropped packets)", "dir", ln.dir.String(), "err", err, "count", c)
				}
			}
		}
	}
}

// release accepts the packets of ln due by now+lead.
func (d *delayLine) release(ln *lane, now, lead int64) {
	var last uint32
	n := 0
	var sum, sumAbs int64
	for ln.held.size > 0 && ln.held.front().rel <= now+lead {
		p := ln.held.pop()
		e := now - p.rel
		if e > 1e6 {
			ln.late1ms.Add(1)
		}
		if e > ln.maxLate.Load() {
			ln.maxLate.Store(e)
		}
		sum += e
		sumAbs += max(e, -e)
		last = p.id
		n++
	}
	if n == 0 {
		return
	}
	if err := ln.q.acceptUpTo(last); err != nil {
		if c := ln.kernelErrs.Add(1); c <= 10 || c%1000 == 0 {
			d.log.Warn("wan: delay line: verdict", "dir", ln.dir.String(), "err", err, "count", c)
		}
	}
	ln.sumErr.Add(sum)
	ln.sumAbsErr.Add(sumAbs)
	ln.released.Add(uint64(n))
}
