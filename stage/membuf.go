package stage

import (
	"bytes"
	"io"
	"os"
	"sync"
)

// memPool holds part buffers within max_staging_memory_mb. A part whose
// bytes are in RAM is hashed (SigV4) and sent from memory; without a buffer
// it is read from the staging file once for the hash and once to send.
// Writes never wait for memory: when the budget is spent, parts go from disk.
type memPool struct {
	mu    sync.Mutex
	limit int64
	used  int64    // bytes handed out or cached
	free  [][]byte // returned buffers, reused before allocating
}

func newMemPool(limit int64) *memPool { return &memPool{limit: limit} }

// get returns a buffer of length n, or nil if the budget does not allow it.
func (p *memPool) get(n int64) []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, b := range p.free {
		if int64(cap(b)) >= n && int64(cap(b)) <= 2*n {
			p.free = append(p.free[:i], p.free[i+1:]...)
			return b[:n]
		}
	}
	// Drop cached buffers of the wrong size to make room.
	for p.used+n > p.limit && len(p.free) > 0 {
		p.used -= int64(cap(p.free[0]))
		p.free = p.free[1:]
	}
	if p.used+n > p.limit {
		return nil
	}
	p.used += n
	return make([]byte, n)
}

// put returns a buffer from get.
func (p *memPool) put(b []byte) {
	if b == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.free = append(p.free, b[:cap(b)])
}

// inUse returns the bytes of buffers held by parts (not cached free).
func (p *memPool) inUse() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := p.used
	for _, b := range p.free {
		n -= int64(cap(b))
	}
	return n
}

// partBuf is the RAM copy of one part being filled by sequential writes.
type partBuf struct {
	start    int64 // file offset of buf[0]
	buf      []byte
	deferred bool // its bytes are not in the staging file yet (persist.go)
}

// bufferFillThreshold: a file gets a part buffer only once it has this many
// bytes, so the many small files of a cp -r never take one.
const bufferFillThreshold = 1 << 20

// body returns a seekable body for [off, off+size) of the staging file: from
// buf when given, else read into a pooled buffer once, else (no memory)
// straight from the file. release must be called when the request is done.
func (a *Area) body(data *os.File, buf []byte, off, size int64) (io.ReadSeeker, func(), error) {
	if buf != nil {
		return bytes.NewReader(buf[:size]), func() { a.mem.put(buf) }, nil
	}
	if b := a.mem.get(size); b != nil {
		if _, err := data.ReadAt(b, off); err != nil && err != io.EOF {
			a.mem.put(b)
			return nil, nil, err
		}
		return bytes.NewReader(b), func() { a.mem.put(b) }, nil
	}
	return io.NewSectionReader(data, off, size), func() {}, nil
}
