package wan

import (
	"errors"
	"fmt"
	"os"
	"os/exec"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Check tells whether a Link can be built here: it needs root, the `ip`
// command (for NSExec) and kernel support for network namespaces, veth,
// the htb and bfifo qdiscs, nftables (numgen, queue) and nfnetlink_queue.
// It probes each in a throw-away network namespace and names the first
// that is missing. Tests that need a link skip with this message.
func Check() error {
	if os.Geteuid() != 0 {
		return errors.New("wan: not root: an emulated WAN link needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) for network namespaces, veth, tc and nftables")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return fmt.Errorf("wan: the ip command (iproute2) is missing, needed to run commands in the namespace: %w", err)
	}
	var ns netns.NsHandle
	err := onLockedThread(func() error {
		var err error
		ns, err = netns.New() // moves this throw-away thread
		if err != nil {
			return fmt.Errorf("wan: kernel lacks network namespaces (unshare CLONE_NEWNET): %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	defer ns.Close() // the namespace dies with its last reference
	return probe(ns)
}

func probe(ns netns.NsHandle) error {
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("wan: rtnetlink in a new namespace: %w", err)
	}
	defer h.Close()
	if err := h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "chk0"}, PeerName: "chk1"}); err != nil {
		return fmt.Errorf("wan: kernel lacks veth (CONFIG_VETH): %w", err)
	}
	lk, err := h.LinkByName("chk0")
	if err != nil {
		return fmt.Errorf("wan: veth: %w", err)
	}
	q := netlink.NewHtb(netlink.QdiscAttrs{LinkIndex: lk.Attrs().Index, Handle: htbHandle, Parent: netlink.HANDLE_ROOT})
	if err := h.QdiscAdd(q); err != nil {
		return fmt.Errorf("wan: kernel lacks the htb qdisc (CONFIG_NET_SCH_HTB): %w", err)
	}
	cur, err := netns.GetFromPath("/proc/self/ns/net")
	if err != nil {
		return fmt.Errorf("wan: open own netns: %w", err)
	}
	sock, err := nl.GetNetlinkSocketAt(ns, cur, unix.NETLINK_ROUTE)
	cur.Close()
	if err != nil {
		return fmt.Errorf("wan: rtnetlink in a new namespace: %w", err)
	}
	defer sock.Close()
	b := &bottleneck{h: h, sock: &nl.SocketHandle{Socket: sock}, ifindex: lk.Attrs().Index, ifname: "chk0"}
	if err := h.ClassAdd(b.htbClass(1e6)); err != nil {
		return fmt.Errorf("wan: htb class: %w", err)
	}
	if err := b.bfifo(unix.NLM_F_CREATE|unix.NLM_F_EXCL, 10000); err != nil {
		return fmt.Errorf("wan: kernel lacks the bfifo qdisc (CONFIG_NET_SCH_FIFO): %w", err)
	}
	if err := b.setLimit(20000); err != nil {
		return fmt.Errorf("wan: bfifo change: %w", err)
	}

	c, err := nftables.New(nftables.WithNetNSFd(int(ns)))
	if err != nil {
		return fmt.Errorf("wan: nftables: %w", err)
	}
	t := c.AddTable(&nftables.Table{Name: "chk", Family: nftables.TableFamilyIPv4})
	ch := c.AddChain(&nftables.Chain{Name: "pre", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityRaw})
	if err := c.Flush(); err != nil {
		return fmt.Errorf("wan: kernel lacks nftables (CONFIG_NF_TABLES): %w", err)
	}
	c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: []expr.Any{
		&expr.Numgen{Register: 1, Modulus: ppmModulus, Type: unix.NFT_NG_RANDOM},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{0, 0, 0, 0}},
		&expr.Verdict{Kind: expr.VerdictDrop},
	}})
	if err := c.Flush(); err != nil {
		return fmt.Errorf("wan: kernel lacks nftables numgen (CONFIG_NFT_NUMGEN): %w", err)
	}
	c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: []expr.Any{queueExpr(0, false)}})
	if err := c.Flush(); err != nil {
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: []expr.Any{queueExpr(0, true)}})
		if err2 := c.Flush(); err2 != nil {
			return fmt.Errorf("wan: kernel lacks both the nftables queue expression (CONFIG_NFT_QUEUE: %w) and the xtables NFQUEUE target through nft_compat (CONFIG_NFT_COMPAT, CONFIG_NETFILTER_XT_TARGET_NFQUEUE: %w)", err, err2)
		}
	}

	nq, err := openNFQ(ns, 0, 16, 1<<20)
	if err != nil {
		return fmt.Errorf("wan: kernel lacks nfnetlink_queue (CONFIG_NETFILTER_NETLINK_QUEUE): %w", err)
	}
	nq.close()
	return nil
}
