package stage

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"unsafe"
)

// chunkSize is the unit of RAM the pool hands out. Part buffers are lists
// of chunks, so a change of part size (the controller does that) reuses
// the same chunks instead of leaving buffers of the old size to the GC:
// RSS stays at the budget whatever the sizes.
const chunkSize = 1 << 20

// memPool holds part buffers within max_staging_memory_mb. A part whose
// bytes are in RAM is checksummed and sent from memory; without a buffer it
// is read from the staging file once for the checksum and once to send.
// Writes never wait for memory: when the budget is spent, parts go from
// disk.
type memPool struct {
	mu     sync.Mutex
	limit  int64    // chunks
	made   int64    // chunks allocated so far (never freed, never more than limit)
	chunks [][]byte // free chunks
}

func newMemPool(limitBytes int64) *memPool { return &memPool{limit: limitBytes / chunkSize} }

// get returns a buffer of n bytes, or nil if the budget does not allow it.
func (p *memPool) get(n int64) *buffer {
	need := (n + chunkSize - 1) / chunkSize
	p.mu.Lock()
	defer p.mu.Unlock()
	if int64(len(p.chunks))+p.limit-p.made < need {
		return nil
	}
	b := &buffer{n: n, chunks: make([][]byte, 0, need)}
	for range need {
		if k := len(p.chunks); k > 0 {
			b.chunks = append(b.chunks, p.chunks[k-1])
			p.chunks = p.chunks[:k-1]
			continue
		}
		p.made++
		b.chunks = append(b.chunks, make([]byte, chunkSize))
	}
	return b
}

// put returns a buffer from get.
func (p *memPool) put(b *buffer) {
	if b == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.chunks = append(p.chunks, b.chunks...)
	b.chunks, b.n = nil, 0
}

// inUse returns the bytes of chunks held by buffers (not free in the pool).
func (p *memPool) inUse() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return (p.made - int64(len(p.chunks))) * chunkSize
}

// buffer is n bytes kept in chunks.
type buffer struct {
	chunks [][]byte
	n      int64
}

func (b *buffer) len() int64 { return b.n }

// truncate shortens the buffer to n bytes (a short last part).
func (b *buffer) truncate(n int64) { b.n = min(b.n, n) }

// copyIn copies p to offset off; bytes past the end are ignored.
func (b *buffer) copyIn(p []byte, off int64) {
	for len(p) > 0 && off < b.n {
		c := b.chunks[off/chunkSize][off%chunkSize:]
		k := copy(c[:min(int64(len(c)), b.n-off)], p)
		p, off = p[k:], off+int64(k)
	}
}

// clear zeroes [from, to).
func (b *buffer) clear(from, to int64) {
	for off := from; off < min(to, b.n); {
		c := b.chunks[off/chunkSize][off%chunkSize:]
		k := min(int64(len(c)), to-off)
		clear(c[:k])
		off += k
	}
}

// load reads [from, to) of the buffer from f at base+from; bytes past f's
// end are zeroed.
func (b *buffer) load(f *os.File, base, from, to int64) error {
	for off := from; off < min(to, b.n); {
		c := b.chunks[off/chunkSize][off%chunkSize:]
		c = c[:min(int64(len(c)), to-off)]
		got, err := f.ReadAt(c, base+off)
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		clear(c[got:])
		off += int64(len(c))
	}
	return nil
}

// copyOut copies the buffer's bytes at off into p.
func (b *buffer) copyOut(p []byte, off int64) {
	for len(p) > 0 && off < b.n {
		c := b.chunks[off/chunkSize][off%chunkSize:]
		k := copy(p, c[:min(int64(len(c)), b.n-off)])
		p, off = p[k:], off+int64(k)
	}
}

// writeTo writes the first n bytes to f at base. With aligned set (an
// O_DIRECT handle) it refuses chunks that are not 4 KiB aligned.
func (b *buffer) writeTo(f *os.File, base, n int64, aligned bool) error {
	const align = 4096
	for off := int64(0); off < min(n, b.n); {
		c := b.chunks[off/chunkSize]
		c = c[:min(int64(len(c)), n-off)]
		if aligned && (uintptr(unsafe.Pointer(unsafe.SliceData(c)))%align != 0 || len(c)%align != 0 || (base+off)%align != 0) {
			return errNoDirect
		}
		if _, err := f.WriteAt(c, base+off); err != nil {
			return err
		}
		off += int64(len(c))
	}
	return nil
}

var errNoDirect = errors.New("O_DIRECT not possible for this buffer")

// reader returns a seekable reader of the buffer's bytes.
func (b *buffer) reader() io.ReadSeeker { return &bufReader{b: b} }

type bufReader struct {
	b   *buffer
	off int64
}

func (r *bufReader) Read(p []byte) (int, error) {
	if r.off >= r.b.n {
		return 0, io.EOF
	}
	c := r.b.chunks[r.off/chunkSize][r.off%chunkSize:]
	c = c[:min(int64(len(c)), r.b.n-r.off)]
	n := copy(p, c)
	r.off += int64(n)
	return n, nil
}

// WriteTo lets io.Copy (checksum, HTTP body) go chunk by chunk, no copy.
func (r *bufReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for r.off < r.b.n {
		c := r.b.chunks[r.off/chunkSize][r.off%chunkSize:]
		c = c[:min(int64(len(c)), r.b.n-r.off)]
		n, err := w.Write(c)
		r.off += int64(n)
		total += int64(n)
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

func (r *bufReader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += r.off
	case io.SeekEnd:
		offset += r.b.n
	default:
		return 0, fmt.Errorf("seek: bad whence %d", whence)
	}
	if offset < 0 {
		return 0, fmt.Errorf("seek to %d: negative offset", offset)
	}
	r.off = offset
	return offset, nil
}

// partBuf is the RAM copy of one part being filled by sequential writes.
type partBuf struct {
	start    int64 // file offset of the buffer's first byte
	buf      *buffer
	deferred bool  // its bytes are not in the staging file yet (persist.go)
	filled   int64 // [0, filled) of buf holds the file's bytes; past it, stale pool memory
}

func (b *partBuf) end() int64 { return b.start + b.buf.len() }

// bufferFillThreshold: a file gets a part buffer only once it has this many
// bytes, so the many small files of a cp -r never take one.
const bufferFillThreshold = 1 << 20

// body returns a seekable body for [off, off+size) of the staging file: from
// buf when given, else read into a pooled buffer once, else (no memory)
// straight from the file. release must be called when the request is done.
func (a *Area) body(data *os.File, buf *buffer, off, size int64) (io.ReadSeeker, func(), error) {
	if buf != nil {
		buf.truncate(size)
		return buf.reader(), func() { a.mem.put(buf) }, nil
	}
	if b := a.mem.get(size); b != nil {
		if err := b.load(data, off, 0, size); err != nil {
			a.mem.put(b)
			return nil, nil, err
		}
		return b.reader(), func() { a.mem.put(b) }, nil
	}
	return io.NewSectionReader(data, off, size), func() {}, nil
}
