package fs

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"github.com/adaptfs/adaptfs/s3backend"
)

// readBlock is the unit of a ranged GET.
const readBlock = 1 << 20

// objectReader serves reads of one object from fixed-size blocks fetched by
// ranged GETs. A sequential reader gets the next blocks fetched ahead, in
// parallel; the kernel's slightly out-of-order reads hit blocks already held.
type objectReader struct {
	be    s3backend.Backend
	key   string
	size  int64
	ahead int64 // blocks to fetch ahead of a sequential reader
	log   *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex
	blocks map[int64]*block
	last   int64 // last block index read, -1 at start
}

type block struct {
	done chan struct{}
	data []byte
	err  error
}

func newObjectReader(be s3backend.Backend, key string, size, readAhead int64, log *slog.Logger) *objectReader {
	ctx, cancel := context.WithCancel(context.Background())
	return &objectReader{
		be: be, key: key, size: size, ahead: readAhead / readBlock, log: log,
		ctx: ctx, cancel: cancel, blocks: make(map[int64]*block), last: -1,
	}
}

// Close stops fetches in flight.
func (r *objectReader) Close() { r.cancel() }

// ReadAt fills p from off; it returns io.EOF at the end of the object.
func (r *objectReader) ReadAt(ctx context.Context, p []byte, off int64) (int, error) {
	if off >= r.size {
		return 0, io.EOF
	}
	if rem := r.size - off; int64(len(p)) > rem {
		p = p[:rem]
	}
	n := 0
	for n < len(p) {
		pos := off + int64(n)
		idx := pos / readBlock
		b := r.get(idx)
		select {
		case <-b.done:
		case <-ctx.Done():
			return n, ctx.Err()
		}
		if b.err != nil {
			r.mu.Lock()
			if r.blocks[idx] == b {
				delete(r.blocks, idx) // let a retry fetch it again
			}
			r.mu.Unlock()
			return n, b.err
		}
		n += copy(p[n:], b.data[pos-idx*readBlock:])
	}
	return n, nil
}

// get returns block idx, starting its fetch (and read-ahead) as needed.
func (r *objectReader) get(idx int64) *block {
	r.mu.Lock()
	defer r.mu.Unlock()
	sequential := idx == r.last || idx == r.last+1
	r.last = idx
	b := r._fetch(idx)
	if sequential {
		for i := idx + 1; i <= idx+r.ahead && i*readBlock < r.size; i++ {
			r._fetch(i)
		}
	}
	// Drop blocks the reader has moved past, and far-away ones.
	for i := range r.blocks {
		if i < idx-1 || i > idx+r.ahead+1 {
			delete(r.blocks, i)
		}
	}
	return b
}

func (r *objectReader) _fetch(idx int64) *block {
	if b := r.blocks[idx]; b != nil {
		return b
	}
	b := &block{done: make(chan struct{})}
	r.blocks[idx] = b
	off := idx * readBlock
	length := min(int64(readBlock), r.size-off)
	go func() {
		defer close(b.done)
		body, err := r.be.Get(r.ctx, r.key, off, length)
		if err != nil {
			b.err = err
			return
		}
		defer body.Close()
		buf := make([]byte, length)
		if _, err := io.ReadFull(body, buf); err != nil {
			b.err = fmt.Errorf("read %s at %d: %w", r.key, off, err)
			return
		}
		b.data = buf
	}()
	return b
}
