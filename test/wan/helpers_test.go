package wan

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// testLinkName is unique per test process (tests run one after the
// other, each removing its link).
func testLinkName() string { return fmt.Sprintf("awt%d", os.Getpid()%1000000) }

// upLink brings a link up for the test and removes it when the test ends.
func upLink(t *testing.T, cfg Config) *Link {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = testLinkName()
	}
	return UpForTest(t, cfg)
}

// listenTCP opens a TCP listener in the server namespace on an
// ephemeral port of the server address.
func listenTCP(t *testing.T, l *Link) *net.TCPListener {
	t.Helper()
	var ln *net.TCPListener
	err := l.InServerNS(func() error {
		var err error
		ln, err = net.ListenTCP("tcp4", net.TCPAddrFromAddrPort(netip.AddrPortFrom(l.ServerAddr(), 0)))
		return err
	})
	if err != nil {
		t.Fatalf("listen in server namespace: %v", err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// sink accepts connections in the server namespace and counts the bytes
// it reads from all of them.
type sink struct {
	addr  netip.AddrPort
	bytes atomic.Int64
}

func startSink(t *testing.T, l *Link) *sink {
	t.Helper()
	s := &sink{}
	s.addr = serveTCP(t, l, func(c net.Conn) {
		buf := make([]byte, 256<<10)
		for {
			n, err := c.Read(buf)
			s.bytes.Add(int64(n))
			if err != nil {
				return
			}
		}
	})
	return s
}

// startEcho echoes every byte back, in the server namespace.
func startEcho(t *testing.T, l *Link) netip.AddrPort {
	t.Helper()
	return serveTCP(t, l, func(c net.Conn) { _, _ = io.Copy(c, c) })
}

// serveTCP listens in the server namespace and runs handle for every
// connection until the test ends.
func serveTCP(t *testing.T, l *Link, handle func(net.Conn)) netip.AddrPort {
	t.Helper()
	ln := listenTCP(t, l)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				handle(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().(*net.TCPAddr).AddrPort()
}

// senders are n bulk TCP flows from the root namespace to addr.
type senders struct {
	conns  []*net.TCPConn
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func startSenders(t *testing.T, addr netip.AddrPort, n int) *senders {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	s := &senders{cancel: cancel}
	d := net.Dialer{Timeout: 10 * time.Second}
	for range n {
		c, err := d.DialContext(ctx, "tcp4", addr.String())
		if err != nil {
			cancel()
			t.Fatalf("dial %s: %v", addr, err)
		}
		s.conns = append(s.conns, c.(*net.TCPConn))
	}
	buf := make([]byte, 128<<10)
	for _, c := range s.conns {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			for ctx.Err() == nil {
				if _, err := c.Write(buf); err != nil {
					return
				}
			}
		}()
	}
	t.Cleanup(s.stop)
	return s
}

func (s *senders) stop() {
	s.cancel()
	for _, c := range s.conns {
		c.Close()
	}
	s.wg.Wait()
}

// tcpInfo reads TCP_INFO of c.
func tcpInfo(c *net.TCPConn) (*unix.TCPInfo, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var info *unix.TCPInfo
	var serr error
	if err := rc.Control(func(fd uintptr) {
		info, serr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	}); err != nil {
		return nil, err
	}
	return info, serr
}

// congestionControl reads TCP_CONGESTION of c.
func congestionControl(c *net.TCPConn) (string, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return "", err
	}
	var name string
	var serr error
	if err := rc.Control(func(fd uintptr) {
		name, serr = unix.GetsockoptString(int(fd), unix.IPPROTO_TCP, unix.TCP_CONGESTION)
	}); err != nil {
		return "", err
	}
	return name, serr
}

// mbit converts bytes over d to Mbit/s.
func mbit(bytes int64, d time.Duration) float64 {
	return float64(bytes) * 8 / d.Seconds() / 1e6
}

// pingPong measures n round trips of one byte over a fresh TCP connection
// to an echo server; it also returns the connect (handshake) time.
func pingPong(ctx context.Context, addr netip.AddrPort, n int, gap time.Duration) (connect time.Duration, rtts []time.Duration, err error) {
	d := net.Dialer{Timeout: 10 * time.Second}
	start := time.Now()
	c, err := d.DialContext(ctx, "tcp4", addr.String())
	if err != nil {
		return 0, nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	connect = time.Since(start)
	defer c.Close()
	b := []byte{0}
	for i := range n {
		if err := ctx.Err(); err != nil {
			return connect, rtts, err
		}
		b[0] = byte(i)
		t0 := time.Now()
		if _, err := c.Write(b); err != nil {
			return connect, rtts, fmt.Errorf("write: %w", err)
		}
		if _, err := io.ReadFull(c, b); err != nil {
			return connect, rtts, fmt.Errorf("read: %w", err)
		}
		if b[0] != byte(i) {
			return connect, rtts, errors.New("echo mismatch")
		}
		rtts = append(rtts, time.Since(t0))
		if gap > 0 {
			time.Sleep(gap)
		}
	}
	return connect, rtts, nil
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func minMax(ds []time.Duration) (lo, hi time.Duration) {
	lo, hi = ds[0], ds[0]
	for _, d := range ds {
		lo, hi = min(lo, d), max(hi, d)
	}
	return lo, hi
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
