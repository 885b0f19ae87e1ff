package s3backend

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// TCPInfo is the kernel's view of one connection to the endpoint
// (TCP_INFO): the honest source of RTT, its variance and retransmissions.
type TCPInfo struct {
	Conn            uint64 // stable id of the connection
	At              time.Time
	SRTT, RTTVar    time.Duration
	MinRTT          time.Duration // the kernel's windowed minimum RTT
	SegsOut         uint64        // cumulative
	TotalRetrans    uint64        // cumulative
	DeliveryRateBps float64
	Cwnd            uint32 // segments
}

// notSentLowat bounds the unsent bytes queued in a connection's socket.
const notSentLowat = 256 << 10

// connSet tracks the open TCP connections of the HTTP transport.
type connSet struct {
	mu    sync.Mutex
	conns map[*trackedConn]struct{}
	next  atomic.Uint64
}

func newConnSet() *connSet { return &connSet{conns: map[*trackedConn]struct{}{}} }

type trackedConn struct {
	net.Conn
	id   uint64
	set  *connSet
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.set.mu.Lock()
		delete(c.set.conns, c)
		c.set.mu.Unlock()
	})
	return c.Conn.Close()
}

// wrapDial registers every connection the dialer makes.
func (s *connSet) wrapDial(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		tcp, ok := c.(*net.TCPConn)
		if !ok {
			return c, nil
		}
		// Keep little unsent data queued in the socket: otherwise a part's
		// "body written" moment comes while megabytes still wait in the
		// send buffer, and their drain time counts as response wait,
		// inflating the per-request overhead the part size is sized from.
		if raw, err := tcp.SyscallConn(); err == nil {
			raw.Control(func(fd uintptr) {
				_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT, notSentLowat)
			})
		}
		tc := &trackedConn{Conn: c, id: s.next.Add(1), set: s}
		s.mu.Lock()
		s.conns[tc] = struct{}{}
		s.mu.Unlock()
		return tc, nil
	}
}

// info reads TCP_INFO of every open connection.
func (s *connSet) info() []TCPInfo {
	s.mu.Lock()
	conns := make([]*trackedConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	now := time.Now()
	out := make([]TCPInfo, 0, len(conns))
	for _, c := range conns {
		raw, err := c.Conn.(*net.TCPConn).SyscallConn()
		if err != nil {
			continue
		}
		var ti *unix.TCPInfo
		raw.Control(func(fd uintptr) {
			ti, _ = unix.GetsockoptTCPInfo(int(fd), unix.SOL_TCP, unix.TCP_INFO)
		})
		if ti == nil {
			continue
		}
		out = append(out, TCPInfo{
			Conn: c.id, At: now,
			SRTT:            time.Duration(ti.Rtt) * time.Microsecond,
			RTTVar:          time.Duration(ti.Rttvar) * time.Microsecond,
			MinRTT:          time.Duration(ti.Min_rtt) * time.Microsecond,
			SegsOut:         uint64(ti.Segs_out),
			TotalRetrans:    uint64(ti.Total_retrans),
			DeliveryRateBps: float64(ti.Delivery_rate) * 8,
			Cwnd:            ti.Snd_cwnd,
		})
	}
	return out
}

// TCPInfo returns the kernel's view of every open connection to the
// endpoint.
func (c *Client) TCPInfo() []TCPInfo { return c.conns.info() }
