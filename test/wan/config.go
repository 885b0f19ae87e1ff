package wan

import (
	"fmt"
	"math"
	"regexp"
	"time"
)

// Defaults applied by Config.withDefaults.
const (
	DefaultName    = "adaptwan0"
	DefaultQueueMs = 50
	DefaultCongCtl = "cubic"

	// MaxNameLen keeps the derived interface names (Name+"c0" …) within
	// the kernel's 15 characters.
	MaxNameLen = 10

	// wireMTU is the largest frame the bottleneck queues see (1500 bytes
	// of IP plus the 14-byte Ethernet header the qdisc counts).
	wireMTU = 1514
	// minQueuePackets is the smallest bottleneck queue, in full frames.
	minQueuePackets = 5
)

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9]*$`)

// Config describes the emulated link. Every field but Name can be changed
// at run time with (*Link).Set.
//
// The link is symmetric: each direction gets RateMbit, its own bottleneck
// queue of QueueMs, half of RTTms as one-way delay and LossPct of random
// loss.
type Config struct {
	// Name names the link's network namespaces and interfaces: the server
	// namespace is Name (so `ip netns exec Name …` works), the router
	// namespace Name+"-rt". Lower-case letters and digits, at most
	// MaxNameLen characters. Default DefaultName.
	Name string `json:"name" toml:"name"`
	// RateMbit is the bottleneck rate of each direction in Mbit/s
	// (10^6 bit/s, counting IP packets plus their 14-byte Ethernet
	// header). Must be > 0.
	RateMbit float64 `json:"rate_mbit" toml:"rate_mbit"`
	// RTTms is the base round-trip time in milliseconds; each direction
	// delays every packet (the handshake included) by RTTms/2.
	RTTms float64 `json:"rtt_ms" toml:"rtt_ms"`
	// LossPct is the random loss in percent, applied to each direction
	// independently (so a round trip loses about twice as often).
	LossPct float64 `json:"loss_pct" toml:"loss_pct"`
	// JitterMs is the delay variation of a round trip: each direction's
	// one-way delay wanders within ±JitterMs/2 around RTTms/2, so a round
	// trip varies within RTTms±JitterMs. Jitter never reorders packets.
	// At most RTTms.
	JitterMs float64 `json:"jitter_ms" toml:"jitter_ms"`
	// QueueMs is the size of each bottleneck queue (a byte FIFO) as the
	// time it takes to drain at RateMbit; at least minQueuePackets full
	// frames. Default DefaultQueueMs.
	QueueMs float64 `json:"queue_ms" toml:"queue_ms"`
	// CongCtl is the TCP congestion control set on the routes of both
	// ends (the machine default may be bbr). Default DefaultCongCtl.
	CongCtl string `json:"congctl" toml:"congctl"`
}

// withDefaults returns c with the zero fields that have defaults filled in.
func (c Config) withDefaults() Config {
	if c.Name == "" {
		c.Name = DefaultName
	}
	if c.QueueMs == 0 {
		c.QueueMs = DefaultQueueMs
	}
	if c.CongCtl == "" {
		c.CongCtl = DefaultCongCtl
	}
	return c
}

// validate checks a Config that went through withDefaults.
func (c Config) validate() error {
	finite := func(name string, v, lo, hi float64) error {
		if math.IsNaN(v) || v < lo || v > hi {
			return fmt.Errorf("wan: %s = %v out of range [%v, %v]", name, v, lo, hi)
		}
		return nil
	}
	if len(c.Name) > MaxNameLen || !nameRE.MatchString(c.Name) {
		return fmt.Errorf("wan: name %q: want 1-%d lower-case letters and digits, starting with a letter", c.Name, MaxNameLen)
	}
	if c.RateMbit <= 0 {
		return fmt.Errorf("wan: rate %v Mbit/s: must be > 0", c.RateMbit)
	}
	for _, e := range []error{
		finite("rate_mbit", c.RateMbit, 0.01, 10000),
		finite("rtt_ms", c.RTTms, 0, 10000),
		finite("loss_pct", c.LossPct, 0, 100),
		finite("jitter_ms", c.JitterMs, 0, 10000),
		finite("queue_ms", c.QueueMs, 0.001, 100000),
	} {
		if e != nil {
			return e
		}
	}
	if c.JitterMs > c.RTTms {
		return fmt.Errorf("wan: jitter %v ms larger than the RTT %v ms (the one-way delay would go negative)", c.JitterMs, c.RTTms)
	}
	if c.CongCtl == "" || len(c.CongCtl) > 15 {
		return fmt.Errorf("wan: congctl %q: want a TCP congestion control name", c.CongCtl)
	}
	return nil
}

// rateBytes is the bottleneck rate in bytes per second.
func (c Config) rateBytes() uint64 {
	return uint64(c.RateMbit * 1e6 / 8)
}

// queueBytes is the byte limit of each bottleneck FIFO.
func (c Config) queueBytes() uint32 {
	b := c.RateMbit * 1e6 / 8 * c.QueueMs / 1000
	lim := math.Max(b, minQueuePackets*wireMTU)
	return uint32(math.Min(lim, math.MaxUint32/2))
}

// lossPPM is the loss probability in parts per million.
func (c Config) lossPPM() uint32 {
	return uint32(math.Round(c.LossPct * 1e4))
}

// oneWay is the base one-way delay of each direction.
func (c Config) oneWay() time.Duration {
	return time.Duration(c.RTTms / 2 * float64(time.Millisecond))
}

// oneWayJitter is the amplitude of each direction's delay variation.
func (c Config) oneWayJitter() time.Duration {
	return time.Duration(c.JitterMs / 2 * float64(time.Millisecond))
}

// delayed reports whether packets go through the user-space delay line.
func (c Config) delayed() bool {
	return c.oneWay() > 0 || c.oneWayJitter() > 0
}
