package wan

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/xt"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// nftTableName is the nftables table (family ip) in the router namespace.
const nftTableName = "adaptwan"

// ppmModulus is the range of the random number the loss rules draw.
const ppmModulus = 1_000_000

// direction is one way through the link.
type direction int

const (
	dirUp   direction = iota // client (root namespace) → server namespace
	dirDown                  // server namespace → client
)

func (d direction) String() string {
	if d == dirUp {
		return "up"
	}
	return "down"
}

// nfQueueNum is the NFQUEUE number of a direction's delay line (queue
// numbers are per network namespace).
func (d direction) nfQueueNum() uint16 { return uint16(d) }

// lossCounterName names the nftables counter object of a direction's
// random drops; named counters survive the rule replacement of Set.
func (d direction) lossCounterName() string { return "loss_" + d.String() }

// nftRules owns the router namespace's table: one prerouting chain that,
// for packets arriving on each side, first drops LossPct of them at random
// and then hands the rest to that direction's delay line.
type nftRules struct {
	conn  *nftables.Conn
	table *nftables.Table
	chain *nftables.Chain
	// iif is the ingress interface index of each direction in the router.
	iif [2]uint32
	// compatQueue: queue through the xtables NFQUEUE target (nft_compat),
	// for kernels built without the native nft queue expression.
	compatQueue bool
}

// queueExpr hands the packet to NFQUEUE num: natively (nft_queue) or,
// with compat, through the xtables NFQUEUE target (revision 1:
// struct xt_NFQ_info_v1 { __u16 queuenum; __u16 queues_total; }).
func queueExpr(num uint16, compat bool) expr.Any {
	if !compat {
		return &expr.Queue{Num: num}
	}
	info := xt.Unknown(make([]byte, 4))
	binary.NativeEndian.PutUint16(info[0:], num)
	binary.NativeEndian.PutUint16(info[2:], 1)
	return &expr.Target{Name: "NFQUEUE", Rev: 1, Info: &info}
}

func newNFTRules(ns netns.NsHandle, iifUp, iifDown int) (*nftRules, error) {
	c, err := nftables.New(nftables.WithNetNSFd(int(ns)))
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	r := &nftRules{conn: c, iif: [2]uint32{uint32(iifUp), uint32(iifDown)}}
	r.table = &nftables.Table{Name: nftTableName, Family: nftables.TableFamilyIPv4}
	r.chain = &nftables.Chain{
		Name:     "pre",
		Table:    r.table,
		Type:     nftables.ChainTypeFilter,
		Hooknum:  nftables.ChainHookPrerouting,
		Priority: nftables.ChainPriorityRaw,
	}
	c.AddTable(r.table)
	c.AddChain(r.chain)
	for _, d := range []direction{dirUp, dirDown} {
		c.AddObj(&nftables.CounterObj{Table: r.table, Name: d.lossCounterName()})
	}
	if err := c.Flush(); err != nil {
		return nil, fmt.Errorf("nftables: create table %s: %w", nftTableName, err)
	}
	return r, nil
}

// apply replaces the chain's rules in one atomic transaction.
func (r *nftRules) apply(lossPPM uint32, delayed bool) error {
	err := r.applyOnce(lossPPM, delayed)
	if err != nil && delayed && !r.compatQueue && errors.Is(err, unix.ENOENT) {
		// No nft_queue in this kernel: fall back to the xtables target.
		r.compatQueue = true
		err = r.applyOnce(lossPPM, delayed)
	}
	return err
}

func (r *nftRules) applyOnce(lossPPM uint32, delayed bool) error {
	r.conn.FlushChain(r.chain)
	for _, d := range []direction{dirUp, dirDown} {
		matchIIF := []expr.Any{
			&expr.Meta{Key: expr.MetaKeyIIF, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(r.iif[d])},
		}
		if lossPPM > 0 {
			// numgen random mod 1000000 < ppm counter name loss_dir drop
			// (numgen yields host order; nft compares bytes, hence hton).
			ex := append([]expr.Any{}, matchIIF...)
			ex = append(ex,
				&expr.Numgen{Register: 1, Modulus: ppmModulus, Type: unix.NFT_NG_RANDOM},
				&expr.Byteorder{SourceRegister: 1, DestRegister: 1, Op: expr.ByteorderHton, Len: 4, Size: 4},
				&expr.Cmp{Op: expr.CmpOpLt, Register: 1, Data: binaryutil.BigEndian.PutUint32(lossPPM)},
				&expr.Objref{Type: int(nftables.ObjTypeCounter), Name: d.lossCounterName()},
				&expr.Verdict{Kind: expr.VerdictDrop},
			)
			r.conn.AddRule(&nftables.Rule{Table: r.table, Chain: r.chain, Exprs: ex})
		}
		if delayed {
			ex := append([]expr.Any{}, matchIIF...)
			ex = append(ex, queueExpr(d.nfQueueNum(), r.compatQueue))
			r.conn.AddRule(&nftables.Rule{Table: r.table, Chain: r.chain, Exprs: ex})
		}
	}
	if err := r.conn.Flush(); err != nil {
		return fmt.Errorf("nftables: replace rules (loss %d ppm, delay %v): %w", lossPPM, delayed, err)
	}
	return nil
}

// lossDrops returns the packets the loss rule of d has dropped so far.
func (r *nftRules) lossDrops(d direction) (uint64, error) {
	o, err := r.conn.GetObject(&nftables.CounterObj{Table: r.table, Name: d.lossCounterName()})
	if err != nil {
		return 0, fmt.Errorf("nftables: read counter %s: %w", d.lossCounterName(), err)
	}
	c, ok := o.(*nftables.CounterObj)
	if !ok {
		return 0, fmt.Errorf("nftables: counter %s: unexpected object %T", d.lossCounterName(), o)
	}
	return c.Packets, nil
}
