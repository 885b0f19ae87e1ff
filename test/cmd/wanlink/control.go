package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/adaptfs/adaptfs/test/wan"
)

// The control protocol: one JSON request per connection, one JSON
// response.

type changeRequest struct {
	RateMbit *float64 `json:"rate_mbit,omitempty"`
	RTTms    *float64 `json:"rtt_ms,omitempty"`
	LossPct  *float64 `json:"loss_pct,omitempty"`
	JitterMs *float64 `json:"jitter_ms,omitempty"`
	QueueMs  *float64 `json:"queue_ms,omitempty"`
	CongCtl  *string  `json:"congctl,omitempty"`
}

func (c changeRequest) apply(cfg wan.Config) wan.Config {
	if c.RateMbit != nil {
		cfg.RateMbit = *c.RateMbit
	}
	if c.RTTms != nil {
		cfg.RTTms = *c.RTTms
	}
	if c.LossPct != nil {
		cfg.LossPct = *c.LossPct
	}
	if c.JitterMs != nil {
		cfg.JitterMs = *c.JitterMs
	}
	if c.QueueMs != nil {
		cfg.QueueMs = *c.QueueMs
	}
	if c.CongCtl != nil {
		cfg.CongCtl = *c.CongCtl
	}
	return cfg
}

type request struct {
	Op  string         `json:"op"` // set, status, down
	Set *changeRequest `json:"set,omitempty"`
}

type response struct {
	Error    string        `json:"error,omitempty"`
	Config   *wan.Config   `json:"config,omitempty"`
	Addrs    *wan.Addrs    `json:"addrs,omitempty"`
	Counters *wan.Counters `json:"counters,omitempty"`
}

const ioTimeout = 10 * time.Second

func socketPath(name string) string { return "/run/adaptfs-wan-" + name + ".sock" }

var errNotRunning = errors.New("no running `wanlink up` for this name")

// call sends one request to the `up` process of link name.
func call(ctx context.Context, name string, req request) (*response, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", socketPath(name))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("%s: %w", name, errNotRunning)
		}
		return nil, fmt.Errorf("connect %s: %w", socketPath(name), err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(ioTimeout))
	if err := json.NewEncoder(c).Encode(req); err != nil {
		return nil, fmt.Errorf("send to %s: %w", socketPath(name), err)
	}
	var resp response
	if err := json.NewDecoder(c).Decode(&resp); err != nil {
		return nil, fmt.Errorf("read from %s: %w", socketPath(name), err)
	}
	if resp.Error != "" {
		return &resp, errors.New(resp.Error)
	}
	return &resp, nil
}

// control serves the socket of a running `up`.
type control struct {
	path string
	ln   *net.UnixListener
	link *wan.Link // set once the link is up
	mu   sync.Mutex
	// downReq is closed when a client asks for down; the up command
	// closes downDone once the link is removed.
	downReq, downDone chan struct{}
	once              sync.Once
	wg                sync.WaitGroup
}

func (s *control) setLink(l *wan.Link) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.link = l
}

// listenControl refuses when another `up` of the same name answers, and
// otherwise replaces a stale socket.
func listenControl(ctx context.Context, name string) (*control, error) {
	p := socketPath(name)
	if _, err := call(ctx, name, request{Op: "status"}); err == nil {
		return nil, fmt.Errorf("link %s is already up (socket %s answers): `wanlink down --name %s` first", name, p, name)
	}
	_ = os.Remove(p) // stale
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: p, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", p, err)
	}
	if err := os.Chmod(p, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("chmod %s: %w", p, err)
	}
	s := &control{path: p, ln: ln, downReq: make(chan struct{}), downDone: make(chan struct{})}
	s.wg.Add(1)
	go s.serve()
	return s, nil
}

func (s *control) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.handle(c)
		}()
	}
}

func (s *control) handle(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(ioTimeout))
	var req request
	if err := json.NewDecoder(c).Decode(&req); err != nil {
		slog.Warn("wanlink: bad control request", "err", err)
		return
	}
	resp := s.do(req)
	if req.Op == "down" && resp.Error == "" {
		// Reply after the teardown, so that `wanlink down` returns after it.
		s.once.Do(func() { close(s.downReq) })
		select {
		case <-s.downDone:
		case <-time.After(ioTimeout):
			resp.Error = "timed out waiting for the link to go down"
		}
	}
	if err := json.NewEncoder(c).Encode(resp); err != nil {
		slog.Warn("wanlink: control reply", "err", err)
	}
}

func (s *control) do(req request) response {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.link
	if l == nil {
		return response{Error: "link is not up yet"}
	}
	switch req.Op {
	case "status", "set":
		if req.Op == "set" {
			if req.Set == nil {
				return response{Error: "set: nothing to change"}
			}
			if err := l.Set(req.Set.apply(l.Config())); err != nil {
				return response{Error: err.Error()}
			}
		}
		cfg, a := l.Config(), l.Addrs()
		resp := response{Config: &cfg, Addrs: &a}
		if c, err := l.Counters(); err == nil {
			resp.Counters = &c
		}
		return resp
	case "down":
		return response{}
	default:
		return response{Error: fmt.Sprintf("unknown op %q", req.Op)}
	}
}

func (s *control) close() {
	s.ln.Close()
	s.wg.Wait()
	_ = os.Remove(s.path)
}
