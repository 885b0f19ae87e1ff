package wan

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Topology (N = Config.Name, B = a free /29 in 198.18.0.0/15):
//
//	root netns (client)          netns N-rt (router: the link)              netns N (server)
//	Nc0 B+1/30  <── veth ──>  Nc1 B+2/30 ─┬─ Ns1 B+5/30  <── veth ──>  Ns0 B+6/30
//
// The router namespace is the WAN. Its prerouting chain drops LossPct at
// random and queues every packet to the delay line of its direction
// (NFQUEUE 0 for packets from the client, 1 for packets from the server);
// after the delay the packet is forwarded to the egress of the other side,
// where HTB + bfifo form that direction's bottleneck.
//
// Why a router hop rather than qdiscs and queues on the two ends of one
// veth pair: a qdisc or an NFQUEUE on the sending host holds packets that
// still belong to the sending socket, so TCP Small Queues would keep each
// flow's share of the bottleneck queue to ~1 ms (no real queue build-up,
// no queue overflow) and would throttle any sender whose packets sit in a
// delay line, and local drops are reported to TCP synchronously rather
// than discovered as loss. Packets that enter another namespace through
// IP input are orphaned first, so in the router the queue, the loss and
// the delay behave as on a real path, for both directions.
const (
	rootSuffix     = "c0" // root end of the client-side veth
	routerCSuffix  = "c1" // router end facing the client
	routerSSuffix  = "s1" // router end facing the server
	serverSuffix   = "s0" // server end
	routerNSSuffix = "-rt"
	benchNet       = "198.18.0.0/15"
	blockBits      = 29
)

// Addrs are the addresses of a link.
type Addrs struct {
	Client  netip.Addr // root namespace end
	RouterC netip.Addr // router, client side
	RouterS netip.Addr // router, server side
	Server  netip.Addr // server namespace end
}

// Link is an emulated WAN link between the root network namespace (the
// client side, where adaptfs runs) and a network namespace (the server
// side). Create it with Up; remove it with Down. Its methods are safe for
// concurrent use.
type Link struct {
	mu  sync.Mutex
	cfg Config

	log   *slog.Logger
	addrs Addrs

	srvName, rtName string // netns names
	ifRoot, ifRC    string
	ifRS, ifSrv     string

	srvNS, rtNS netns.NsHandle
	rootIfIndex int
	rootNL      *netlink.Handle
	rtNL, srvNL *netlink.Handle
	rtSock      *nl.SocketHandle
	neck        [2]*bottleneck // per direction: router egress toward the receiver
	nft         *nftRules
	delay       *delayLine

	down     bool
	downOnce sync.Once
	downErr  error
}

// names derives the namespace and interface names from a link name.
func names(name string) (srvNS, rtNS, ifRoot, ifRC, ifRS, ifSrv string) {
	return name, name + routerNSSuffix, name + rootSuffix, name + routerCSuffix, name + routerSSuffix, name + serverSuffix
}

// Up creates the link described by cfg, first removing whatever a
// previous run with the same name left behind. ctx bounds the setup only.
// The delay line runs in the calling process until Down; if the process
// dies, the link stops passing traffic (remove it with Cleanup). Needs
// root; see Check.
func Up(ctx context.Context, cfg Config) (*Link, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("wan: Up needs root (network namespaces, veth, tc, nftables)")
	}
	// Links of other processes pick their addresses at the same time:
	// one setup at a time.
	unlock, err := lockSetup(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := Cleanup(cfg.Name); err != nil {
		return nil, fmt.Errorf("wan: remove leftovers of %s: %w", cfg.Name, err)
	}
	l := &Link{cfg: cfg, log: slog.Default().With("link", cfg.Name)}
	l.srvName, l.rtName, l.ifRoot, l.ifRC, l.ifRS, l.ifSrv = names(cfg.Name)
	l.srvNS, l.rtNS = netns.None(), netns.None()
	if err := l.build(ctx); err != nil {
		l.Down()
		return nil, fmt.Errorf("wan: up %s: %w", cfg.Name, err)
	}
	l.log.Info("wan: link up", "client", l.addrs.Client, "server", l.addrs.Server,
		"rate_mbit", cfg.RateMbit, "rtt_ms", cfg.RTTms, "loss_pct", cfg.LossPct,
		"jitter_ms", cfg.JitterMs, "queue_ms", cfg.QueueMs, "congctl", cfg.CongCtl)
	return l, nil
}

func (l *Link) build(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var err error
	if l.rootNL, err = netlink.NewHandle(); err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	block, err := l.freeBlock()
	if err != nil {
		return err
	}
	l.addrs = Addrs{Client: addrAt(block, 1), RouterC: addrAt(block, 2), RouterS: addrAt(block, 5), Server: addrAt(block, 6)}

	if l.rtNS, err = newNamedNS(l.rtName); err != nil {
		return err
	}
	if l.srvNS, err = newNamedNS(l.srvName); err != nil {
		return err
	}
	if l.rtNL, err = netlink.NewHandleAt(l.rtNS); err != nil {
		return fmt.Errorf("netlink in %s: %w", l.rtName, err)
	}
	if l.srvNL, err = netlink.NewHandleAt(l.srvNS); err != nil {
		return fmt.Errorf("netlink in %s: %w", l.srvName, err)
	}
	rootNS, err := netns.GetFromPath("/proc/self/ns/net")
	if err != nil {
		return fmt.Errorf("open root netns: %w", err)
	}
	sock, err := nl.GetNetlinkSocketAt(l.rtNS, rootNS, unix.NETLINK_ROUTE)
	rootNS.Close()
	if err != nil {
		return fmt.Errorf("rtnetlink socket in %s: %w", l.rtName, err)
	}
	l.rtSock = &nl.SocketHandle{Socket: sock}

	// veth pairs, created with their far ends already in place.
	if err := l.rootNL.LinkAdd(&netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: l.ifRoot, TxQLen: 1000},
		PeerName:      l.ifRC,
		PeerNamespace: netlink.NsFd(l.rtNS),
	}); err != nil {
		return fmt.Errorf("ip link add %s type veth peer %s netns %s: %w", l.ifRoot, l.ifRC, l.rtName, err)
	}
	root, err := l.rootNL.LinkByName(l.ifRoot)
	if err != nil {
		return fmt.Errorf("link %s: %w", l.ifRoot, err)
	}
	l.rootIfIndex = root.Attrs().Index
	if err := l.rtNL.LinkAdd(&netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: l.ifRS, TxQLen: 1000},
		PeerName:      l.ifSrv,
		PeerNamespace: netlink.NsFd(l.srvNS),
	}); err != nil {
		return fmt.Errorf("ip -n %s link add %s type veth peer %s netns %s: %w", l.rtName, l.ifRS, l.ifSrv, l.srvName, err)
	}

	type end struct {
		h      *netlink.Handle
		ns     netns.NsHandle // None for the root namespace
		ifname string
		addr   netip.Addr
	}
	ends := []end{
		{l.rootNL, netns.None(), l.ifRoot, l.addrs.Client},
		{l.rtNL, l.rtNS, l.ifRC, l.addrs.RouterC},
		{l.rtNL, l.rtNS, l.ifRS, l.addrs.RouterS},
		{l.srvNL, l.srvNS, l.ifSrv, l.addrs.Server},
	}
	for _, e := range ends {
		if err := l.configureEnd(e.h, e.ns, e.ifname, e.addr); err != nil {
			return err
		}
	}
	for _, x := range []struct {
		h  *netlink.Handle
		ns string
	}{{l.rtNL, l.rtName}, {l.srvNL, l.srvName}} {
		lo, err := x.h.LinkByName("lo")
		if err != nil {
			return fmt.Errorf("ip -n %s link show lo: %w", x.ns, err)
		}
		if err := x.h.LinkSetUp(lo); err != nil {
			return fmt.Errorf("ip -n %s link set lo up: %w", x.ns, err)
		}
	}
	if err := inNS(l.rtNS, func() error {
		return writeSysctl("/proc/sys/net/ipv4/ip_forward", "1")
	}); err != nil {
		return fmt.Errorf("%s: enable forwarding: %w", l.rtName, err)
	}
	if err := l.setRoutes(l.cfg.CongCtl, true); err != nil {
		return err
	}

	// Bottlenecks on the router's two egresses.
	rc, err := l.rtNL.LinkByName(l.ifRC)
	if err != nil {
		return fmt.Errorf("link %s: %w", l.ifRC, err)
	}
	rs, err := l.rtNL.LinkByName(l.ifRS)
	if err != nil {
		return fmt.Errorf("link %s: %w", l.ifRS, err)
	}
	l.neck[dirUp] = &bottleneck{h: l.rtNL, sock: l.rtSock, ifindex: rs.Attrs().Index, ifname: l.ifRS}
	l.neck[dirDown] = &bottleneck{h: l.rtNL, sock: l.rtSock, ifindex: rc.Attrs().Index, ifname: l.ifRC}
	for _, b := range l.neck {
		if err := b.setup(l.cfg.rateBytes(), l.cfg.queueBytes()); err != nil {
			return err
		}
	}

	// The delay line first, then the rules that feed it.
	p := delayParams{base: l.cfg.oneWay(), jitter: l.cfg.oneWayJitter()}
	if l.delay, err = startDelayLine(l.rtNS, p, uint64(time.Now().UnixNano()), l.log); err != nil {
		return err
	}
	if l.nft, err = newNFTRules(l.rtNS, rc.Attrs().Index, rs.Attrs().Index); err != nil {
		return err
	}
	return l.nft.apply(l.cfg.lossPPM(), l.cfg.delayed())
}

// configureEnd disables offloads and IPv6 on one veth end, gives it its
// address and brings it up.
func (l *Link) configureEnd(h *netlink.Handle, ns netns.NsHandle, ifname string, addr netip.Addr) error {
	configure := func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("socket: %w", err)
		}
		defer unix.Close(fd)
		if err := disableOffloads(fd, ifname); err != nil {
			return err
		}
		// No IPv6 (router solicitations, MLD) on the link: only our traffic.
		_ = writeSysctl(filepath.Join("/proc/sys/net/ipv6/conf", ifname, "disable_ipv6"), "1")
		return nil
	}
	var err error
	if ns.IsOpen() {
		err = inNS(ns, configure)
	} else {
		err = configure()
	}
	if err != nil {
		return err
	}
	link, err := h.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("link %s: %w", ifname, err)
	}
	prefix := netip.PrefixFrom(addr, 30)
	if err := h.AddrAdd(link, &netlink.Addr{IPNet: prefixToIPNet(prefix)}); err != nil {
		return fmt.Errorf("ip addr add %s dev %s: %w", prefix, ifname, err)
	}
	if err := h.LinkSetUp(link); err != nil {
		return fmt.Errorf("ip link set %s up: %w", ifname, err)
	}
	return nil
}

// setRoutes installs (or, with create false, replaces) the routes of the
// two ends with the given congestion control: root → server /30 via the
// router, and the server's default route via the router.
func (l *Link) setRoutes(congctl string, create bool) error {
	root, err := l.rootNL.LinkByIndex(l.rootIfIndex)
	if err != nil {
		return fmt.Errorf("link %s: %w", l.ifRoot, err)
	}
	srv, err := l.srvNL.LinkByName(l.ifSrv)
	if err != nil {
		return fmt.Errorf("link %s: %w", l.ifSrv, err)
	}
	srvNet := netip.PrefixFrom(l.addrs.Server, 30).Masked()
	routes := []struct {
		h *netlink.Handle
		r *netlink.Route
	}{
		{l.rootNL, &netlink.Route{LinkIndex: root.Attrs().Index, Dst: prefixToIPNet(srvNet), Gw: net.IP(l.addrs.RouterC.AsSlice()), Congctl: congctl}},
		{l.srvNL, &netlink.Route{LinkIndex: srv.Attrs().Index, Dst: nil, Gw: net.IP(l.addrs.RouterS.AsSlice()), Congctl: congctl}},
	}
	for _, x := range routes {
		f := x.h.RouteReplace
		if create {
			f = x.h.RouteAdd
		}
		if err := f(x.r); err != nil {
			return fmt.Errorf("ip route add %v via %s congctl %s: %w", x.r.Dst, x.r.Gw, congctl, err)
		}
	}
	return nil
}

// freeBlock picks the lowest /29 of 198.18.0.0/15 that no root-namespace
// address or route inside 198.18.0.0/15 overlaps (wider routes, such as a
// default route, do not count).
func (l *Link) freeBlock() (netip.Prefix, error) {
	bench := netip.MustParsePrefix(benchNet)
	var used []netip.Prefix
	routes, err := l.rootNL.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("ip route show: %w", err)
	}
	for _, r := range routes {
		if r.Dst != nil {
			if p, ok := ipNetToPrefix(r.Dst); ok && p.Bits() >= bench.Bits() && bench.Contains(p.Addr()) {
				used = append(used, p)
			}
		}
	}
	addrs, err := l.rootNL.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("ip addr show: %w", err)
	}
	for _, a := range addrs {
		if p, ok := ipNetToPrefix(a.IPNet); ok && p.Bits() >= bench.Bits() && bench.Contains(p.Addr()) {
			used = append(used, p)
		}
	}
	base := bench.Addr().As4()
	n := uint32(1) << (blockBits - bench.Bits())
	for i := uint32(0); i < n; i++ {
		v := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
		v += i << (32 - blockBits)
		cand := netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), blockBits)
		free := true
		for _, u := range used {
			if u.Overlaps(cand) {
				free = false
				break
			}
		}
		if free {
			return cand, nil
		}
	}
	return netip.Prefix{}, fmt.Errorf("no free /%d left in %s", blockBits, benchNet)
}

// setupLock serializes link setups across processes (see lockSetup).
const setupLock = "/run/adaptfs-wan.lock"

// lockSetup takes the machine-wide setup lock, giving up when ctx ends.
func lockSetup(ctx context.Context) (unlock func(), err error) {
	f, err := os.OpenFile(setupLock, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("wan: setup lock: %w", err)
	}
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil // closing releases the lock
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("wan: setup lock %s: %w", setupLock, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("wan: waiting for setup lock %s: %w", setupLock, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func addrAt(block netip.Prefix, off int) netip.Addr {
	a := block.Addr()
	for range off {
		a = a.Next()
	}
	return a
}

func prefixToIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func ipNetToPrefix(n *net.IPNet) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones).Masked(), true
}

func writeSysctl(path, v string) error {
	if err := os.WriteFile(path, []byte(v), 0o644); err != nil {
		return fmt.Errorf("sysctl %s=%s: %w", strings.TrimPrefix(path, "/proc/sys/"), v, err)
	}
	return nil
}

// Config returns the link's current settings.
func (l *Link) Config() Config {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cfg
}

// Name returns the link's name (also the server namespace's name).
func (l *Link) Name() string { return l.srvName }

// Addrs returns all four addresses of the link.
func (l *Link) Addrs() Addrs { return l.addrs }

// ServerAddr is the address of the server namespace's end.
func (l *Link) ServerAddr() netip.Addr { return l.addrs.Server }

// ClientAddr is the address of the root namespace's end.
func (l *Link) ClientAddr() netip.Addr { return l.addrs.Client }

// NSName is the server namespace's name, for `ip netns exec`.
func (l *Link) NSName() string { return l.srvName }

// Set changes the link's settings in place (Name must be empty or the
// link's name). Queued packets are kept; a new rate and queue limit act
// at once, a new delay or jitter from the next packet on (packets are
// never reordered, so a shorter delay takes over as the queued packets
// drain), a new loss rate and congestion control at once (the latter for
// new connections).
func (l *Link) Set(cfg Config) error {
	if cfg.Name == "" {
		cfg.Name = l.srvName
	}
	cfg = cfg.withDefaults()
	if cfg.Name != l.srvName {
		return fmt.Errorf("wan: set: name %q differs from the link's %q", cfg.Name, l.srvName)
	}
	if err := cfg.validate(); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.down {
		return fmt.Errorf("wan: set %s: link is down", l.srvName)
	}
	old := l.cfg
	if cfg.rateBytes() != old.rateBytes() {
		for _, b := range l.neck {
			if err := b.setRate(cfg.rateBytes()); err != nil {
				return fmt.Errorf("wan: set %s: %w", l.srvName, err)
			}
		}
	}
	if cfg.queueBytes() != old.queueBytes() {
		for _, b := range l.neck {
			if err := b.setLimit(cfg.queueBytes()); err != nil {
				return fmt.Errorf("wan: set %s: %w", l.srvName, err)
			}
		}
	}
	p := delayParams{base: cfg.oneWay(), jitter: cfg.oneWayJitter()}
	l.delay.setParams(p)
	if cfg.lossPPM() != old.lossPPM() || cfg.delayed() != old.delayed() {
		if err := l.nft.apply(cfg.lossPPM(), cfg.delayed()); err != nil {
			return fmt.Errorf("wan: set %s: %w", l.srvName, err)
		}
	}
	if cfg.CongCtl != old.CongCtl {
		if err := l.setRoutes(cfg.CongCtl, false); err != nil {
			return fmt.Errorf("wan: set %s: %w", l.srvName, err)
		}
	}
	l.cfg = cfg
	l.log.Debug("wan: link set", "rate_mbit", cfg.RateMbit, "rtt_ms", cfg.RTTms, "loss_pct", cfg.LossPct,
		"jitter_ms", cfg.JitterMs, "queue_ms", cfg.QueueMs, "congctl", cfg.CongCtl)
	return nil
}

// NSExec returns a command that runs name with args inside the server
// namespace (through `ip netns exec`).
func (l *Link) NSExec(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", l.srvName, name}, args...)...)
}

// InServerNS runs fn on an OS thread inside the server namespace. Sockets
// fn opens (e.g. a net.Listener) stay in that namespace and can be used
// from any goroutine afterwards.
func (l *Link) InServerNS(fn func() error) error {
	l.mu.Lock()
	ns, down := l.srvNS, l.down
	l.mu.Unlock()
	if down {
		return fmt.Errorf("wan: %s is down", l.srvName)
	}
	return inNS(ns, fn)
}

// DirCounters are the counters of one direction.
type DirCounters struct {
	// Bytes and Packets left the bottleneck toward the receiver (the
	// router's egress veth statistics; bytes include the 14-byte
	// Ethernet header).
	Bytes, Packets uint64
	// Offered counts the packets the sender put on the link (the router's
	// ingress statistics).
	OfferedBytes, OfferedPackets uint64
	// QueueDrops are packets the full bottleneck FIFO dropped.
	QueueDrops uint64
	// LossDrops are packets the random-loss rule dropped.
	LossDrops uint64
	// Backlog is the bytes in the bottleneck FIFO now.
	Backlog uint64
	// Delayed is the number of packets the delay line has released.
	Delayed uint64
	// DelayErrors counts delay-line receive/verdict errors (each may
	// have cost packets: the kernel drops what it could not queue).
	DelayErrors uint64
	// MaxLate is the largest lateness of a release seen in the delay line.
	MaxLate time.Duration
	// MeanDelayErr is the mean of (actual − scheduled) release time.
	MeanDelayErr time.Duration
	// Late1ms counts the packets the delay line released more than 1 ms
	// late (on a CPU-saturated machine the kernel may run it late).
	Late1ms uint64
}

// Counters are the link's cumulative counters since Up.
type Counters struct {
	At   time.Time
	Up   DirCounters // client → server
	Down DirCounters // server → client
}

// Counters reads the link's counters.
func (l *Link) Counters() (Counters, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.down {
		return Counters{}, fmt.Errorf("wan: counters of %s: link is down", l.srvName)
	}
	c := Counters{At: time.Now()}
	for _, d := range []direction{dirUp, dirDown} {
		dc := &c.Up
		if d == dirDown {
			dc = &c.Down
		}
		egress := l.neck[d]
		ingress := l.neck[1-d]
		el, err := l.rtNL.LinkByIndex(egress.ifindex)
		if err != nil {
			return Counters{}, fmt.Errorf("wan: counters: link %s: %w", egress.ifname, err)
		}
		il, err := l.rtNL.LinkByIndex(ingress.ifindex)
		if err != nil {
			return Counters{}, fmt.Errorf("wan: counters: link %s: %w", ingress.ifname, err)
		}
		if s := el.Attrs().Statistics; s != nil {
			dc.Bytes, dc.Packets = s.TxBytes, s.TxPackets
		}
		if s := il.Attrs().Statistics; s != nil {
			dc.OfferedBytes, dc.OfferedPackets = s.RxBytes, s.RxPackets
		}
		if dc.QueueDrops, dc.Backlog, err = egress.queueStats(); err != nil {
			return Counters{}, fmt.Errorf("wan: counters: %w", err)
		}
		if dc.LossDrops, err = l.nft.lossDrops(d); err != nil {
			return Counters{}, fmt.Errorf("wan: counters: %w", err)
		}
		st := l.delay.stats(d)
		dc.Delayed, dc.DelayErrors, dc.MaxLate = st.Released, st.RecvErrs+st.KernelErrs, st.MaxLate
		dc.MeanDelayErr = st.MeanErr
		dc.Late1ms = st.Late1ms
	}
	return c, nil
}

// Down removes the link: delay line, interfaces, qdiscs, nftables table
// and namespaces. It only removes what this Link created (a newer link of
// the same name is left alone). Idempotent; errors are logged (Close
// returns them).
func (l *Link) Down() {
	if err := l.Close(); err != nil {
		l.log.Error("wan: link down", "err", err)
	}
}

// Close is Down returning its error.
func (l *Link) Close() error {
	l.downOnce.Do(func() {
		l.mu.Lock()
		l.down = true
		l.mu.Unlock()
		l.downErr = l.teardown()
		if l.downErr == nil {
			l.log.Info("wan: link down")
		}
	})
	return l.downErr
}

func (l *Link) teardown() error {
	var errs []error
	if l.delay != nil {
		l.delay.stop()
		for _, d := range []direction{dirUp, dirDown} {
			st := l.delay.stats(d)
			l.log.Debug("wan: delay line stats", "dir", d.String(), "released", st.Released,
				"recv_errs", st.RecvErrs, "kernel_errs", st.KernelErrs, "max_late", st.MaxLate,
				"mean_err", st.MeanErr, "mean_abs_err", st.MeanAbsErr)
		}
	}
	// Removing the root end removes its peer in the router; removing the
	// router's server-side end removes its peer in the server namespace.
	if l.rootNL != nil && l.rootIfIndex != 0 {
		if lk, err := l.rootNL.LinkByIndex(l.rootIfIndex); err == nil && lk.Attrs().Name == l.ifRoot {
			if err := l.rootNL.LinkDel(lk); err != nil {
				errs = append(errs, fmt.Errorf("ip link del %s: %w", l.ifRoot, err))
			}
		}
	}
	if l.rtNL != nil {
		if lk, err := l.rtNL.LinkByName(l.ifRS); err == nil {
			if err := l.rtNL.LinkDel(lk); err != nil {
				errs = append(errs, fmt.Errorf("ip -n %s link del %s: %w", l.rtName, l.ifRS, err))
			}
		}
	}
	for _, x := range []struct {
		name string
		h    netns.NsHandle
	}{{l.rtName, l.rtNS}, {l.srvName, l.srvNS}} {
		if !x.h.IsOpen() {
			continue
		}
		// Only unmount the name if it still is our namespace.
		own, err := nsIDOfHandle(x.h)
		if err != nil {
			errs = append(errs, err)
		} else if named, err := nsIDOfName(x.name); err == nil && named == own {
			if err := deleteNamedNS(x.name); err != nil {
				errs = append(errs, err)
			}
		}
		x.h.Close()
	}
	if l.rtSock != nil && l.rtSock.Socket != nil {
		l.rtSock.Socket.Close()
	}
	for _, h := range []*netlink.Handle{l.rtNL, l.srvNL, l.rootNL} {
		if h != nil {
			h.Close()
		}
	}
	return errors.Join(errs...)
}

// Cleanup removes what a link named name may have left behind (after a
// crash, say): its namespaces and interfaces. It does not check who owns
// them: use it only when no live process runs that link. Nothing to remove
// is not an error.
func Cleanup(name string) error {
	if name == "" {
		name = DefaultName
	}
	if len(name) > MaxNameLen || !nameRE.MatchString(name) {
		return fmt.Errorf("wan: cleanup: bad name %q", name)
	}
	srvNS, rtNS, ifRoot, _, ifRS, _ := names(name)
	var errs []error
	if lk, err := netlink.LinkByName(ifRoot); err == nil {
		if err := netlink.LinkDel(lk); err != nil {
			errs = append(errs, fmt.Errorf("ip link del %s: %w", ifRoot, err))
		}
	}
	if h, err := openNamedNS(rtNS); err == nil {
		if nh, err := netlink.NewHandleAt(h); err == nil {
			if lk, err := nh.LinkByName(ifRS); err == nil {
				if err := nh.LinkDel(lk); err != nil {
					errs = append(errs, fmt.Errorf("ip -n %s link del %s: %w", rtNS, ifRS, err))
				}
			}
			nh.Close()
		}
		h.Close()
	}
	for _, n := range []string{rtNS, srvNS} {
		if err := deleteNamedNS(n); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
