package harness

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// Faults says what a FaultProxy does to requests, as probabilities per
// request (drawn from a seeded generator, so a run is repeatable up to the
// order in which requests arrive).
type Faults struct {
	Seed uint64
	// Status answers with a server error instead of forwarding: 500
	// InternalError, 503 ServiceUnavailable and 503 SlowDown in turn.
	Status float64
	// Reset forwards a request with a body, or the response of one
	// without, and closes the connection half way through.
	Reset float64
	// Stall holds the request without an answer for StallFor (longer than
	// the client's request timeout), then closes the connection.
	Stall    float64
	StallFor time.Duration
	// Deny answers every request with this S3 error code and status
	// instead (a permanent fault): "AccessDenied" (403, revoked
	// credentials) or "NoSuchBucket" (404, a deleted bucket).
	Deny string
}

// FaultCounts is what a FaultProxy did.
type FaultCounts struct {
	Requests, Status, Resets, Stalls, Refused int64
}

// FaultProxy is an HTTP proxy in front of an S3 server that injects
// faults: server errors, connections reset mid-body, stalls, and outages
// (every connection refused while down).
type FaultProxy struct {
	URL string // http://127.0.0.1:PORT

	target *url.URL
	rp     *httputil.ReverseProxy
	ln     net.Listener
	srv    *http.Server

	mu     sync.Mutex
	faults Faults
	rng    *rand.Rand
	down   bool

	requests, status, resets, stalls, refused atomic.Int64
}

// StartFaultProxy listens on a free loopback port and forwards to target.
func StartFaultProxy(target string, f Faults) (*FaultProxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("fault proxy: target %q: %w", target, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("fault proxy: %w", err)
	}
	p := &FaultProxy{URL: "http://" + ln.Addr().String(), target: u, ln: ln}
	p.SetFaults(f)
	p.rp = httputil.NewSingleHostReverseProxy(u)
	p.rp.ErrorLog = nil
	p.rp.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		// The client went away (a reset or stall on its side): nothing to say.
		w.WriteHeader(http.StatusBadGateway)
	}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: time.Minute}
	go p.srv.Serve(ln)
	return p, nil
}

// SetFaults replaces the fault probabilities (and reseeds).
func (p *FaultProxy) SetFaults(f Faults) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults = f
	p.rng = rand.New(rand.NewPCG(f.Seed, 0xfa17))
}

// SetDown makes every request fail by a closed connection (an endpoint
// outage) until SetDown(false).
func (p *FaultProxy) SetDown(down bool) {
	p.mu.Lock()
	p.down = down
	p.mu.Unlock()
}

// Counts returns what the proxy did so far.
func (p *FaultProxy) Counts() FaultCounts {
	return FaultCounts{Requests: p.requests.Load(), Status: p.status.Load(), Resets: p.resets.Load(),
		Stalls: p.stalls.Load(), Refused: p.refused.Load()}
}

// Close stops the proxy.
func (p *FaultProxy) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	p.srv.Shutdown(ctx)
	p.srv.Close()
}

type faultKind int

const (
	faultNone faultKind = iota
	faultStatus
	faultReset
	faultStall
	faultDown
)

func (p *FaultProxy) draw() (faultKind, int64, Faults) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		return faultDown, 0, p.faults
	}
	x := p.rng.Float64()
	n := p.rng.Int64()
	f := p.faults
	switch {
	case x < f.Status:
		return faultStatus, n, f
	case x < f.Status+f.Reset:
		return faultReset, n, f
	case x < f.Status+f.Reset+f.Stall:
		return faultStall, n, f
	}
	return faultNone, n, f
}

func (p *FaultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.requests.Add(1)
	kind, n, f := p.draw()
	if f.Deny != "" && kind != faultDown {
		p.status.Add(1)
		io.Copy(io.Discard, r.Body)
		code := http.StatusForbidden
		if f.Deny == "NoSuchBucket" {
			code = http.StatusNotFound
		}
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(code)
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>injected by the test</Message></Error>`, f.Deny)
		return
	}
	switch kind {
	case faultDown:
		p.refused.Add(1)
		hangUp(w)
	case faultStatus:
		p.status.Add(1)
		io.Copy(io.Discard, r.Body)
		code, s3code := http.StatusInternalServerError, "InternalError"
		switch n % 3 {
		case 1:
			code, s3code = http.StatusServiceUnavailable, "ServiceUnavailable"
		case 2:
			code, s3code = http.StatusServiceUnavailable, "SlowDown"
			w.Header().Set("Retry-After", "1")
		}
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(code)
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>injected by the test</Message></Error>`, s3code)
	case faultStall:
		p.stalls.Add(1)
		select {
		case <-time.After(f.StallFor):
		case <-r.Context().Done():
		}
		hangUp(w)
	case faultReset:
		p.resets.Add(1)
		if r.ContentLength > 0 {
			// Read about half the body, then drop the connection.
			io.CopyN(io.Discard, r.Body, r.ContentLength/2)
			hangUp(w)
			return
		}
		p.rp.ServeHTTP(&cutWriter{ResponseWriter: w, left: 1 + n%4096}, r)
	default:
		p.rp.ServeHTTP(w, r)
	}
}

// hangUp closes the client connection without an answer.
func hangUp(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if c, _, err := hj.Hijack(); err == nil {
			if tc, ok := c.(*net.TCPConn); ok {
				tc.SetLinger(0) // a reset, not a clean close
			}
			c.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

// cutWriter forwards a response until left bytes of its body went out,
// then resets the connection.
type cutWriter struct {
	http.ResponseWriter
	left int64
	cut  bool
}

func (c *cutWriter) Write(b []byte) (int, error) {
	if c.cut {
		return 0, io.ErrClosedPipe
	}
	if int64(len(b)) < c.left {
		c.left -= int64(len(b))
		return c.ResponseWriter.Write(b)
	}
	c.ResponseWriter.Write(b[:c.left])
	if f, ok := c.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
	c.cut = true
	panic(http.ErrAbortHandler) // net/http closes the connection
}
