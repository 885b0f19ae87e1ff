package wan

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unsafe"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// A minimal NFQUEUE client (linux/netfilter/nfnetlink_queue.h), just what
// a delay line needs: bind a queue in copy-meta mode, read packet ids and
// kernel timestamps many messages per system call (recvmmsg), and accept
// packets with batch verdicts from a pre-built message. It is driven from
// one locked OS thread with blocking system calls and no allocation per
// packet, which keeps a 200 Mbit/s link cheap; general-purpose clients
// (go-nfqueue over mdlayher/netlink) cost two receive calls, a 4 KiB
// buffer and several goroutine hand-offs per packet.

const (
	nfqnlMsgPacket       = 0
	nfqnlMsgConfig       = 2
	nfqnlMsgVerdictBatch = 3

	nfqaPacketHdr  = 1
	nfqaVerdictHdr = 2
	nfqaTimestamp  = 4

	nfqaCfgCmd         = 1
	nfqaCfgParams      = 2
	nfqaCfgQueueMaxlen = 3

	nfqnlCfgCmdBind = 1
	nfqnlCopyMeta   = 1

	nfAccept = 1

	nlaTypeMask = 0x3fff // without NLA_F_NESTED / NLA_F_NET_BYTEORDER

	nfqRecvBatch = 64   // messages per recvmmsg
	nfqMsgBuf    = 1024 // bytes per message slot (copy-meta messages are ~100 bytes)
)

// mmsghdr is struct mmsghdr (Go pads it like C does).
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
}

// nfq is one bound NFQUEUE. Not safe for concurrent use.
type nfq struct {
	fd  int
	num uint16

	bufs    [nfqRecvBatch][nfqMsgBuf]byte
	iovs    [nfqRecvBatch]unix.Iovec
	msgs    [nfqRecvBatch]mmsghdr
	verdict [32]byte // pre-built batch verdict; the id is patched in
}

// openNFQ opens a netlink socket in namespace ns and binds queue num in
// copy-meta mode with the given maximum length and receive buffer.
func openNFQ(ns netns.NsHandle, num uint16, maxLen uint32, rcvBuf int) (*nfq, error) {
	fd := -1
	err := inNS(ns, func() error {
		var err error
		fd, err = unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
		if err != nil {
			return fmt.Errorf("socket(NETLINK_NETFILTER): %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("nfqueue %d: %w", num, err)
	}
	q := &nfq{fd: fd, num: num}
	if err := q.init(maxLen, rcvBuf); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("nfqueue %d: %w", num, err)
	}
	return q, nil
}

func (q *nfq) init(maxLen uint32, rcvBuf int) error {
	if err := unix.Bind(q.fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("bind: %w", err)
	}
	if err := unix.SetsockoptInt(q.fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvBuf); err != nil {
		return fmt.Errorf("setsockopt SO_RCVBUFFORCE %d: %w", rcvBuf, err)
	}
	// One config message: bind, copy mode, queue length (the kernel
	// applies them in this order).
	cmd := []byte{nfqnlCfgCmdBind, 0, 0, 0}
	binary.BigEndian.PutUint16(cmd[2:], unix.AF_INET)
	params := make([]byte, 5) // struct nfqnl_msg_config_params (packed)
	binary.BigEndian.PutUint32(params, 0xffff)
	params[4] = nfqnlCopyMeta
	ml := make([]byte, 4)
	binary.BigEndian.PutUint32(ml, maxLen)
	msg := nfnlMsg(nfqnlMsgConfig, unix.NLM_F_REQUEST|unix.NLM_F_ACK, 1, q.num,
		nlAttr(nfqaCfgCmd, cmd), nlAttr(nfqaCfgParams, params), nlAttr(nfqaCfgQueueMaxlen, ml))
	if _, err := unix.Write(q.fd, msg); err != nil {
		return fmt.Errorf("send config: %w", err)
	}
	buf := make([]byte, 4096)
	for {
		n, err := unix.Read(q.fd, buf)
		if err != nil {
			return fmt.Errorf("read config ack: %w", err)
		}
		for m := buf[:n]; len(m) >= unix.NLMSG_HDRLEN; {
			l := int(binary.NativeEndian.Uint32(m))
			if l < unix.NLMSG_HDRLEN || l > len(m) {
				return errors.New("read config ack: malformed message")
			}
			if binary.NativeEndian.Uint16(m[4:]) == unix.NLMSG_ERROR && l >= unix.NLMSG_HDRLEN+4 {
				if e := int32(binary.NativeEndian.Uint32(m[unix.NLMSG_HDRLEN:])); e != 0 {
					return fmt.Errorf("bind (config): %w", unix.Errno(-e))
				}
				q.buildVerdict()
				q.initRecv()
				return nil
			}
			m = m[nlAlign(l):]
		}
	}
}

func (q *nfq) buildVerdict() {
	v := make([]byte, 8) // struct nfqnl_msg_verdict_hdr { __be32 verdict; __be32 id; }
	binary.BigEndian.PutUint32(v, nfAccept)
	msg := nfnlMsg(nfqnlMsgVerdictBatch, unix.NLM_F_REQUEST, 0, q.num, nlAttr(nfqaVerdictHdr, v))
	copy(q.verdict[:], msg)
}

func (q *nfq) initRecv() {
	for i := range q.msgs {
		q.iovs[i].Base = &q.bufs[i][0]
		q.iovs[i].SetLen(nfqMsgBuf)
		q.msgs[i].hdr.Iov = &q.iovs[i]
		q.msgs[i].hdr.SetIovlen(1)
	}
}

// acceptUpTo accepts every queued packet whose id is ≤ id.
func (q *nfq) acceptUpTo(id uint32) error {
	// verdict layout: nlmsghdr(16) nfgenmsg(4) nlattr(4) verdict(4) id(4)
	binary.BigEndian.PutUint32(q.verdict[28:], id)
	_, err := unix.Write(q.fd, q.verdict[:])
	return err
}

// packetFunc receives a queued packet's id and, when the kernel stamped
// it, its receive time (wall clock, ns since the epoch; 0 otherwise).
type packetFunc func(id uint32, stampNs int64)

// recv reads every message waiting without blocking, calling pkt for each
// queued packet. It returns the number of errors the kernel reported
// (failed verdicts), and an error from the socket: ENOBUFS means the
// kernel dropped packets it could not hand over.
func (q *nfq) recv(pkt packetFunc) (kernelErrs int, err error) {
	for {
		for i := range q.msgs {
			q.msgs[i].hdr.Flags = 0
			q.msgs[i].n = 0
		}
		r, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(q.fd), uintptr(unsafe.Pointer(&q.msgs[0])),
			nfqRecvBatch, unix.MSG_DONTWAIT, 0, 0)
		if errno != 0 {
			if errno == unix.EAGAIN || errno == unix.EINTR {
				return kernelErrs, nil
			}
			return kernelErrs, errno
		}
		for i := range int(r) {
			kernelErrs += parseNFQ(q.bufs[i][:min(int(q.msgs[i].n), nfqMsgBuf)], pkt)
		}
		if int(r) < nfqRecvBatch {
			return kernelErrs, nil
		}
	}
}

// parseNFQ walks the netlink messages of one datagram.
func parseNFQ(b []byte, pkt packetFunc) (kernelErrs int) {
	for len(b) >= unix.NLMSG_HDRLEN {
		l := int(binary.NativeEndian.Uint32(b))
		if l < unix.NLMSG_HDRLEN || l > len(b) {
			return kernelErrs
		}
		typ := binary.NativeEndian.Uint16(b[4:])
		switch {
		case typ == unix.NLMSG_ERROR:
			if l >= unix.NLMSG_HDRLEN+4 && binary.NativeEndian.Uint32(b[unix.NLMSG_HDRLEN:]) != 0 {
				kernelErrs++
			}
		case typ == unix.NFNL_SUBSYS_QUEUE<<8|nfqnlMsgPacket && l >= unix.NLMSG_HDRLEN+4:
			var id uint32
			var stamp int64
			ok := false
			for a := b[unix.NLMSG_HDRLEN+4 : l]; len(a) >= 4; {
				al := int(binary.NativeEndian.Uint16(a))
				if al < 4 || al > len(a) {
					break
				}
				d := a[4:al]
				switch binary.NativeEndian.Uint16(a[2:]) & nlaTypeMask {
				case nfqaPacketHdr:
					if len(d) >= 4 {
						id, ok = binary.BigEndian.Uint32(d), true
					}
				case nfqaTimestamp:
					if len(d) >= 16 {
						sec := int64(binary.BigEndian.Uint64(d))
						usec := int64(binary.BigEndian.Uint64(d[8:]))
						stamp = sec*1e9 + usec*1e3
					}
				}
				a = a[min(nlAlign(al), len(a)):]
			}
			if ok {
				pkt(id, stamp)
			}
		}
		b = b[min(nlAlign(l), len(b)):]
	}
	return kernelErrs
}

func (q *nfq) close() error {
	if q.fd < 0 {
		return nil
	}
	err := unix.Close(q.fd) // the kernel unbinds the queue, dropping what it holds
	q.fd = -1
	return err
}

func nlAlign(n int) int { return (n + unix.NLA_ALIGNTO - 1) &^ (unix.NLA_ALIGNTO - 1) }

// nlAttr encodes one netlink attribute, padded.
func nlAttr(typ uint16, data []byte) []byte {
	b := make([]byte, nlAlign(4+len(data)))
	binary.NativeEndian.PutUint16(b, uint16(4+len(data)))
	binary.NativeEndian.PutUint16(b[2:], typ)
	copy(b[4:], data)
	return b
}

// nfnlMsg encodes an nfnetlink message of the queue subsystem.
func nfnlMsg(msgType uint16, flags uint16, seq uint32, resID uint16, attrs ...[]byte) []byte {
	b := make([]byte, unix.NLMSG_HDRLEN+4)
	binary.NativeEndian.PutUint16(b[4:], unix.NFNL_SUBSYS_QUEUE<<8|msgType)
	binary.NativeEndian.PutUint16(b[6:], flags)
	binary.NativeEndian.PutUint32(b[8:], seq)
	b[unix.NLMSG_HDRLEN] = unix.AF_UNSPEC
	b[unix.NLMSG_HDRLEN+1] = unix.NFNETLINK_V0
	binary.BigEndian.PutUint16(b[unix.NLMSG_HDRLEN+2:], resID)
	for _, a := range attrs {
		b = append(b, a...)
	}
	binary.NativeEndian.PutUint32(b, uint32(len(b)))
	return b
}
