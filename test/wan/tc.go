package wan

import (
	"encoding/binary"
	"fmt"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// The bottleneck of one direction is the egress of the router's interface
// toward the receiver:
//
//	htb 1: (default 1:1) ─ class 1:1 rate R ceil R ─ bfifo 10: limit L bytes
//
// One class means all flows share one rate and one FIFO. Both the class
// rate and the FIFO limit are changed in place (RTM_NEWTCLASS /
// RTM_NEWQDISC without NLM_F_CREATE), which keeps the queued packets.
var (
	htbHandle   = netlink.MakeHandle(1, 0)
	classHandle = netlink.MakeHandle(1, 1)
	fifoHandle  = netlink.MakeHandle(10, 0)
)

// htbQuantum is the class quantum in bytes. With a single class it has no
// effect on scheduling; setting it keeps the kernel from warning about the
// large quantum r2q would derive at high rates.
const htbQuantum = 60000

// bottleneck drives the qdiscs of one interface.
type bottleneck struct {
	h       *netlink.Handle
	sock    *nl.SocketHandle // raw rtnetlink socket for bfifo (which netlink.Handle lacks)
	ifindex int
	ifname  string
}

func (b *bottleneck) htbClass(rateBytes uint64) *netlink.HtbClass {
	bits := rateBytes * 8
	return netlink.NewHtbClass(
		netlink.ClassAttrs{LinkIndex: b.ifindex, Parent: htbHandle, Handle: classHandle},
		netlink.HtbClassAttrs{Rate: bits, Ceil: bits, Quantum: htbQuantum},
	)
}

// setup installs htb, its class and the bfifo leaf.
func (b *bottleneck) setup(rateBytes uint64, limit uint32) error {
	q := netlink.NewHtb(netlink.QdiscAttrs{LinkIndex: b.ifindex, Handle: htbHandle, Parent: netlink.HANDLE_ROOT})
	q.Defcls = 1
	if err := b.h.QdiscAdd(q); err != nil {
		return fmt.Errorf("tc qdisc add dev %s root htb: %w", b.ifname, err)
	}
	if err := b.h.ClassAdd(b.htbClass(rateBytes)); err != nil {
		return fmt.Errorf("tc class add dev %s htb rate %d B/s: %w", b.ifname, rateBytes, err)
	}
	if err := b.bfifo(unix.NLM_F_CREATE|unix.NLM_F_EXCL, limit); err != nil {
		return fmt.Errorf("tc qdisc add dev %s bfifo limit %d: %w", b.ifname, limit, err)
	}
	return nil
}

// setRate changes the class rate in place.
func (b *bottleneck) setRate(rateBytes uint64) error {
	if err := b.h.ClassChange(b.htbClass(rateBytes)); err != nil {
		return fmt.Errorf("tc class change dev %s htb rate %d B/s: %w", b.ifname, rateBytes, err)
	}
	return nil
}

// setLimit changes the FIFO's byte limit in place.
func (b *bottleneck) setLimit(limit uint32) error {
	if err := b.bfifo(0, limit); err != nil {
		return fmt.Errorf("tc qdisc change dev %s bfifo limit %d: %w", b.ifname, limit, err)
	}
	return nil
}

// bfifo sends RTM_NEWQDISC for the bfifo leaf with the given extra flags
// (create, or none for a change).
func (b *bottleneck) bfifo(flags int, limit uint32) error {
	req := nl.NewNetlinkRequest(unix.RTM_NEWQDISC, flags|unix.NLM_F_ACK)
	req.Sockets = map[int]*nl.SocketHandle{unix.NETLINK_ROUTE: b.sock}
	req.AddData(&nl.TcMsg{
		Family:  nl.FAMILY_ALL,
		Ifindex: int32(b.ifindex),
		Handle:  fifoHandle,
		Parent:  classHandle,
	})
	req.AddData(nl.NewRtAttr(nl.TCA_KIND, nl.ZeroTerminated("bfifo")))
	opt := make([]byte, 4) // struct tc_fifo_qopt { __u32 limit; }
	binary.NativeEndian.PutUint32(opt, limit)
	req.AddData(nl.NewRtAttr(nl.TCA_OPTIONS, opt))
	_, err := req.Execute(unix.NETLINK_ROUTE, 0)
	return err
}

// queueStats returns the bfifo's drop count and current backlog (bytes).
func (b *bottleneck) queueStats() (drops uint64, backlog uint64, err error) {
	link, err := b.h.LinkByIndex(b.ifindex)
	if err != nil {
		return 0, 0, fmt.Errorf("link %s: %w", b.ifname, err)
	}
	qs, err := b.h.QdiscList(link)
	if err != nil {
		return 0, 0, fmt.Errorf("tc qdisc show dev %s: %w", b.ifname, err)
	}
	for _, q := range qs {
		a := q.Attrs()
		if a.Handle == fifoHandle && a.Statistics != nil && a.Statistics.Queue != nil {
			return uint64(a.Statistics.Queue.Drops), uint64(a.Statistics.Queue.Backlog), nil
		}
	}
	return 0, 0, fmt.Errorf("tc qdisc show dev %s: bfifo %x not found", b.ifname, fifoHandle)
}
