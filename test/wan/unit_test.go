package wan

import (
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// These tests need neither root nor a kernel feature.

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string // substring; "" = valid
	}{
		{"defaults", Config{RateMbit: 10}, ""},
		{"full", Config{Name: "x1", RateMbit: 200, RTTms: 100, LossPct: 1, JitterMs: 10, QueueMs: 20, CongCtl: "reno"}, ""},
		{"no rate", Config{}, "rate"},
		{"negative rtt", Config{RateMbit: 1, RTTms: -1}, "rtt_ms"},
		{"loss over 100", Config{RateMbit: 1, LossPct: 101}, "loss_pct"},
		{"jitter above rtt", Config{RateMbit: 1, RTTms: 10, JitterMs: 11}, "jitter"},
		{"name too long", Config{Name: "abcdefghijk", RateMbit: 1}, "name"},
		{"name with dash", Config{Name: "a-b", RateMbit: 1}, "name"},
		{"name upper case", Config{Name: "Wan", RateMbit: 1}, "name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.withDefaults().validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("validate: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("validate = %v, want error containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestConfigDerived(t *testing.T) {
	tests := []struct {
		name      string
		cfg       Config
		queue     uint32
		ppm       uint32
		oneWay    time.Duration
		oneJitter time.Duration
		delayed   bool
	}{
		{"50mbit 50ms", Config{RateMbit: 50, QueueMs: 50}, 312500, 0, 0, 0, false},
		{"tiny queue has a floor", Config{RateMbit: 1, QueueMs: 1}, minQueuePackets * wireMTU, 0, 0, 0, false},
		{"loss and delay", Config{RateMbit: 8, QueueMs: 100, LossPct: 1.5, RTTms: 40, JitterMs: 10}, 100000, 15000, 20 * time.Millisecond, 5 * time.Millisecond, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.cfg.withDefaults()
			if got := c.queueBytes(); got != tc.queue {
				t.Errorf("queueBytes = %d, want %d", got, tc.queue)
			}
			if got := c.lossPPM(); got != tc.ppm {
				t.Errorf("lossPPM = %d, want %d", got, tc.ppm)
			}
			if got := c.oneWay(); got != tc.oneWay {
				t.Errorf("oneWay = %v, want %v", got, tc.oneWay)
			}
			if got := c.oneWayJitter(); got != tc.oneJitter {
				t.Errorf("oneWayJitter = %v, want %v", got, tc.oneJitter)
			}
			if got := c.delayed(); got != tc.delayed {
				t.Errorf("delayed = %v, want %v", got, tc.delayed)
			}
		})
	}
}

// TestSchedulerNeverReorders checks the delay line's invariant: release
// times never decrease (so packets leave in arrival order), never precede
// the arrival, and, while the parameters hold still, stay within
// base ± jitter and vary smoothly between neighbours.
func TestSchedulerNeverReorders(t *testing.T) {
	ms := func(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }
	type phase struct {
		p      delayParams
		n      int           // packets
		gap    time.Duration // mean inter-arrival time
		bursty bool          // gaps alternate between 0 and 2·gap
	}
	tests := []struct {
		name   string
		phases []phase
	}{
		{"no jitter", []phase{{delayParams{ms(20), 0}, 5000, 60 * time.Microsecond, false}}},
		{"200mbit packet rate", []phase{{delayParams{ms(50), ms(5)}, 50000, 60 * time.Microsecond, false}}},
		{"ping rate", []phase{{delayParams{ms(20), ms(10)}, 2000, ms(40), false}}},
		{"bursts", []phase{{delayParams{ms(20), ms(10)}, 20000, ms(0.5), true}}},
		{"jitter larger than delay half", []phase{{delayParams{ms(5), ms(5)}, 20000, ms(0.1), false}}},
		{"delay drops mid-stream", []phase{
			{delayParams{ms(50), ms(10)}, 5000, ms(0.2), false},
			{delayParams{ms(5), ms(2)}, 5000, ms(0.2), false},
		}},
		{"jitter switched on and off", []phase{
			{delayParams{ms(20), 0}, 3000, ms(0.3), false},
			{delayParams{ms(20), ms(8)}, 3000, ms(0.3), false},
			{delayParams{ms(30), 0}, 3000, ms(0.3), false},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for seed := uint64(1); seed <= 5; seed++ {
				s := newScheduler(seed)
				var at, last int64
				first := true
				for pi, ph := range tc.phases {
					lo, hi := int64(1<<62), int64(-1<<62)
					var prevDelay int64
					for i := range ph.n {
						gap := int64(ph.gap)
						if ph.bursty {
							gap = int64(i%2) * 2 * gap
						}
						at += gap
						rel := s.release(at, ph.p)
						if !first && rel < last {
							t.Fatalf("seed %d phase %d packet %d: release %d before previous %d (reordered)", seed, pi, i, rel, last)
						}
						if rel < at {
							t.Fatalf("seed %d phase %d packet %d: released before arrival", seed, pi, i)
						}
						first = false
						last = rel
						d := rel - at
						if pi == 0 || i > ph.n/2 { // after a change the clamp may hold packets back for a while
							if d < int64(ph.p.base-ph.p.jitter)-1 || d > int64(ph.p.base+ph.p.jitter)+1 {
								t.Fatalf("seed %d phase %d packet %d: delay %v outside %v±%v", seed, pi, i, time.Duration(d), ph.p.base, ph.p.jitter)
							}
							lo, hi = min(lo, d), max(hi, d)
						}
						if i > 0 && pi == 0 && gap > 0 {
							// Smoothness: the delay changes by at most half the gap.
							if diff := d - prevDelay; diff > gap/2+1 || -diff > gap/2+1 {
								t.Fatalf("seed %d packet %d: delay jumped by %v over a gap of %v", seed, i, time.Duration(diff), time.Duration(gap))
							}
						}
						prevDelay = d
					}
					if ph.p.jitter > 0 && time.Duration(ph.n)*ph.gap > 20*ph.p.jitter {
						if spread := time.Duration(hi - lo); spread < ph.p.jitter {
							t.Errorf("seed %d phase %d: delay spread %v, want ≥ %v (jitter ±%v)", seed, pi, spread, ph.p.jitter, ph.p.jitter)
						}
					}
				}
			}
		})
	}
}

func TestFIFO(t *testing.T) {
	var f fifo
	next, want := uint32(0), uint32(0)
	// Interleave pushes and pops so the ring wraps and grows.
	for round := range 50 {
		for range round * 7 % 100 {
			f.push(due{id: next, rel: int64(next)})
			next++
		}
		for range round * 5 % 90 {
			if f.size == 0 {
				break
			}
			if got := f.pop(); got.id != want {
				t.Fatalf("pop = %d, want %d", got.id, want)
			}
			want++
		}
	}
	for f.size > 0 {
		if got := f.pop(); got.id != want {
			t.Fatalf("pop = %d, want %d", got.id, want)
		}
		want++
	}
	if want != next {
		t.Fatalf("popped %d, pushed %d", want, next)
	}
}

func TestParseNFQ(t *testing.T) {
	hdr := make([]byte, 7) // packet_id, hw_protocol, hook
	binary.BigEndian.PutUint32(hdr, 0xdeadbeef)
	ts := make([]byte, 16)
	binary.BigEndian.PutUint64(ts, 1700000000)
	binary.BigEndian.PutUint64(ts[8:], 123456)
	pktMsg := nfnlMsg(nfqnlMsgPacket, 0, 0, 1, nlAttr(nfqaPacketHdr, hdr), nlAttr(nfqaTimestamp, ts))
	noStamp := nfnlMsg(nfqnlMsgPacket, 0, 0, 1, nlAttr(nfqaPacketHdr, []byte{0, 0, 0, 7, 8, 0, 0}))
	errMsg := make([]byte, unix.NLMSG_HDRLEN+4)
	binary.NativeEndian.PutUint32(errMsg, uint32(len(errMsg)))
	binary.NativeEndian.PutUint16(errMsg[4:], unix.NLMSG_ERROR)
	binary.NativeEndian.PutUint32(errMsg[unix.NLMSG_HDRLEN:], uint32(0x100000000-int64(unix.ENOENT)))

	type pkt struct {
		id    uint32
		stamp int64
	}
	tests := []struct {
		name     string
		datagram []byte
		want     []pkt
		wantErrs int
	}{
		{"packet with stamp", pktMsg, []pkt{{0xdeadbeef, 1700000000*1e9 + 123456*1e3}}, 0},
		{"packet without stamp", noStamp, []pkt{{7, 0}}, 0},
		{"two messages", append(append([]byte{}, noStamp...), pktMsg...), []pkt{{7, 0}, {0xdeadbeef, 1700000000*1e9 + 123456*1e3}}, 0},
		{"verdict error", errMsg, nil, 1},
		{"truncated", pktMsg[:len(pktMsg)-5], nil, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []pkt
			errs := parseNFQ(tc.datagram, func(id uint32, stamp int64) { got = append(got, pkt{id, stamp}) })
			if errs != tc.wantErrs {
				t.Errorf("kernel errors = %d, want %d", errs, tc.wantErrs)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("packets = %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("packet %d = %+v, want %+v", i, got[i], tc.want[i])
				}
			}
		})
	}
}
