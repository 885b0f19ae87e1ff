package zseek

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/cespare/xxhash/v2"
	"github.com/klauspost/compress/zstd"
)

// FetchFunc returns exactly the bytes [off, off+n) of the compressed
// object, typically with one ranged GET. It is called concurrently. The
// Reader may keep the returned slice, so the function must not reuse it.
type FetchFunc func(ctx context.Context, off, n int64) ([]byte, error)

const (
	// tailFetch is what NewReader fetches from the end of the object: the
	// footer and, in the same request, a table of up to 5459 frames (5 GiB
	// at 1 MiB per frame). Frames within it are served without another
	// fetch, so a small object costs one request in all.
	tailFetch = 64 << 10

	// cacheFrames is how many decoded frames a Reader keeps. Two cover
	// sequential reads (the kernel reads 128 KiB at a time) including
	// those that straddle a frame boundary, at 2× the frame size of
	// memory per open Reader.
	cacheFrames = 2

	// maxAttempts bounds how often a read retries after a concurrent
	// reader it was waiting for gave up (its context ended).
	maxAttempts = 3
)

// Reader reads a seekable object at random raw offsets, fetching and
// decoding only the frames a read touches. It is safe for concurrent use.
// It holds no goroutines or OS resources: dropping it is enough.
type Reader struct {
	fetch FetchFunc
	idx   *Index
	// dec only runs DecodeAll, which is safe for concurrent use and starts
	// no goroutines.
	dec *zstd.Decoder
	// tail holds the compressed bytes [tailOff, CompSize) fetched with the
	// seek table.
	tail    []byte
	tailOff int64
	cache   frameCache
}

// NewReader opens an object of objectSize bytes: it fetches the last
// 64 KiB (one more fetch if the seek table is larger) and parses the seek
// table. Frames within those 64 KiB are later read without a fetch, so a
// small object costs one request. It fails, with an error wrapping
// ErrCorrupt, if the object is not a seekable zstd object whose frames and
// table add up to objectSize.
func NewReader(ctx context.Context, fetch FetchFunc, objectSize int64) (*Reader, error) {
	if minSize := int64(SeekTableSize(0)); objectSize < minSize {
		return nil, fmt.Errorf("%w: object of %d bytes is smaller than an empty seek table (%d bytes)", ErrCorrupt, objectSize, minSize)
	}
	n := min(objectSize, tailFetch)
	tail, err := fetchExact(ctx, fetch, objectSize-n, n)
	if err != nil {
		return nil, fmt.Errorf("zseek: reading seek table: %w", err)
	}
	size, _, err := ParseFooter(tail)
	if err != nil {
		return nil, err
	}
	if int64(size) > objectSize {
		return nil, fmt.Errorf("%w: seek table of %d bytes is larger than the object (%d bytes)", ErrCorrupt, size, objectSize)
	}
	var table []byte
	if size <= len(tail) {
		table, tail = tail[len(tail)-size:], tail[:len(tail)-size]
	} else {
		head, err := fetchExact(ctx, fetch, objectSize-int64(size), int64(size-len(tail)))
		if err != nil {
			return nil, fmt.Errorf("zseek: reading seek table: %w", err)
		}
		table = append(append(make([]byte, 0, size), head...), tail...)
		tail = nil
	}
	frames, err := ParseSeekTable(table)
	if err != nil {
		return nil, err
	}
	idx := NewIndex(frames)
	if idx.CompSize()+int64(size) != objectSize {
		return nil, fmt.Errorf("%w: frames (%d bytes) and seek table (%d bytes) do not make up the object (%d bytes): truncated or not a seekable object",
			ErrCorrupt, idx.CompSize(), size, objectSize)
	}
	r, err := NewReaderFromIndex(fetch, idx)
	if err != nil {
		return nil, err
	}
	r.tail, r.tailOff = tail, idx.CompSize()-int64(len(tail))
	return r, nil
}

// NewReaderFromIndex returns a Reader for an object whose seek table the
// caller already has, without fetching it again. It rejects frames larger
// than MaxFrameSize.
func NewReaderFromIndex(fetch FetchFunc, idx *Index) (*Reader, error) {
	for i := range idx.Len() {
		f := idx.Frame(i)
		if f.Raw > MaxFrameSize {
			return nil, fmt.Errorf("%w: frame %d: raw size %d exceeds MaxFrameSize %d", ErrCorrupt, i, f.Raw, MaxFrameSize)
		}
		if int64(f.Comp) > int64(compressBound(int(f.Raw))) {
			return nil, fmt.Errorf("%w: frame %d: compressed size %d is impossible for %d raw bytes", ErrCorrupt, i, f.Comp, f.Raw)
		}
	}
	dec, err := zstd.NewReader(nil,
		zstd.WithDecoderMaxMemory(MaxFrameSize),
		zstd.WithDecoderMaxWindow(MaxFrameSize),
		// Decode into a buffer of exactly the frame's raw size; a frame
		// that claims more is corrupt.
		zstd.WithDecodeAllCapLimit(true),
		// The seek table's checksum is verified instead: one hash per read.
		zstd.IgnoreChecksum(true),
	)
	if err != nil {
		return nil, fmt.Errorf("zseek: creating zstd decoder: %w", err)
	}
	return &Reader{
		fetch:   fetch,
		idx:     idx,
		dec:     dec,
		tailOff: idx.CompSize(),
		cache:   frameCache{max: cacheFrames},
	}, nil
}

// RawSize returns the decompressed size of the object.
func (r *Reader) RawSize() int64 { return r.idx.RawSize() }

// Index returns the object's index.
func (r *Reader) Index() *Index { return r.idx }

// ReadAt reads len(p) raw bytes at offset off, like io.ReaderAt: it
// returns io.EOF with n < len(p) when the object ends first, and 0, io.EOF
// at or past the end. Frames not in the cache are fetched with one call of
// the FetchFunc covering just their compressed bytes, decoded and checked
// against the seek table's checksums. The last two frames used stay
// decoded, so sequential reads smaller than a frame fetch each frame once,
// and concurrent reads of a frame being fetched wait for that fetch.
func (r *Reader) ReadAt(ctx context.Context, p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("zseek: ReadAt: negative offset %d", off)
	}
	size := r.idx.RawSize()
	if off >= size {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), size-off))
	lo, hi := r.idx.Range(off, int64(n))
	entries, err := r.frames(ctx, lo, hi)
	if err != nil {
		return 0, err
	}
	done := 0
	for i, e := range entries {
		start := off + int64(done) - r.idx.RawOffset(lo+i)
		done += copy(p[done:n], e.data[start:])
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// frames returns the decoded frames [lo, hi), from the cache, from a
// concurrent read that is loading them, or loaded here.
func (r *Reader) frames(ctx context.Context, lo, hi int) ([]*cacheEntry, error) {
	for attempt := 1; ; attempt++ {
		entries, owned := r.cache.claim(lo, hi)
		if len(owned) > 0 {
			r.load(ctx, owned)
		}
		err := wait(ctx, entries)
		if err == nil {
			return entries, nil
		}
		// A concurrent read we waited for may have failed because its
		// context ended; ours has not, and its entries are gone: retry.
		if attempt < maxAttempts && ctx.Err() == nil &&
			(errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
			continue
		}
		return nil, err
	}
}

// load fetches the compressed range from the first to the last of owned
// (ascending frames; frames between them held by other reads are fetched
// again rather than making a second request), decodes owned and completes
// them. Failed entries leave the cache so a later read tries again.
func (r *Reader) load(ctx context.Context, owned []*cacheEntry) {
	first, last := owned[0].frame, owned[len(owned)-1].frame
	// Until decoded, every entry fails: waiters never hang, even if the
	// FetchFunc panics.
	incomplete := fmt.Errorf("zseek: loading frames %d to %d did not complete", first, last)
	for _, e := range owned {
		e.err = incomplete
	}
	defer func() {
		for _, e := range owned {
			if e.err != nil {
				r.cache.remove(e)
			}
			close(e.done)
		}
	}()

	off := r.idx.CompOffset(first)
	comp, err := r.read(ctx, off, r.idx.CompOffset(last+1)-off)
	for _, e := range owned {
		if err != nil {
			e.err = err
			continue
		}
		s := r.idx.CompOffset(e.frame) - off
		e.data, e.err = r.decode(e.frame, comp[s:s+int64(r.idx.Frame(e.frame).Comp)])
	}
}

// read returns the compressed bytes [off, off+n).
func (r *Reader) read(ctx context.Context, off, n int64) ([]byte, error) {
	if off >= r.tailOff && off+n <= r.tailOff+int64(len(r.tail)) {
		return r.tail[off-r.tailOff : off-r.tailOff+n], nil
	}
	return fetchExact(ctx, r.fetch, off, n)
}

// decode decodes frame i from its compressed bytes and verifies it.
func (r *Reader) decode(i int, comp []byte) ([]byte, error) {
	f := r.idx.Frame(i)
	// Check the header's content size before allocating f.Raw bytes, so
	// a damaged frame is rejected cheaply.
	var h zstd.Header
	if err := h.Decode(comp); err != nil {
		return nil, fmt.Errorf("%w: frame %d at offset %d: %w", ErrCorrupt, i, r.idx.CompOffset(i), err)
	}
	if h.HasFCS && h.FrameContentSize != uint64(f.Raw) {
		return nil, fmt.Errorf("%w: frame %d at offset %d holds %d bytes, seek table says %d",
			ErrCorrupt, i, r.idx.CompOffset(i), h.FrameContentSize, f.Raw)
	}
	out, err := r.dec.DecodeAll(comp, make([]byte, 0, f.Raw))
	if err != nil {
		return nil, fmt.Errorf("%w: frame %d at offset %d: %w", ErrCorrupt, i, r.idx.CompOffset(i), err)
	}
	if len(out) != int(f.Raw) {
		return nil, fmt.Errorf("%w: frame %d at offset %d decodes to %d bytes, seek table says %d",
			ErrCorrupt, i, r.idx.CompOffset(i), len(out), f.Raw)
	}
	if sum := uint32(xxhash.Sum64(out)); sum != f.Checksum {
		return nil, fmt.Errorf("%w: frame %d at offset %d: checksum mismatch: seek table %#08x, data %#08x",
			ErrCorrupt, i, r.idx.CompOffset(i), f.Checksum, sum)
	}
	return out, nil
}

// fetchExact calls fetch and checks that it kept its contract.
func fetchExact(ctx context.Context, fetch FetchFunc, off, n int64) ([]byte, error) {
	b, err := fetch(ctx, off, n)
	if err != nil {
		return nil, fmt.Errorf("zseek: fetching bytes [%d, %d): %w", off, off+n, err)
	}
	if int64(len(b)) != n {
		return nil, fmt.Errorf("zseek: fetching bytes [%d, %d): got %d bytes: %w", off, off+n, len(b), io.ErrUnexpectedEOF)
	}
	return b, nil
}

// wait waits until entries are complete and returns the first error.
func wait(ctx context.Context, entries []*cacheEntry) error {
	for _, e := range entries {
		select {
		case <-e.done:
		default:
			select {
			case <-e.done:
			case <-ctx.Done():
				return fmt.Errorf("zseek: waiting for frame %d: %w", e.frame, context.Cause(ctx))
			}
		}
		if e.err != nil {
			return e.err
		}
	}
	return nil
}

// cacheEntry is a decoded frame, or one being loaded.
type cacheEntry struct {
	frame int
	done  chan struct{} // closed when data or err is set
	data  []byte
	err   error
}

// frameCache keeps the most recently used decoded frames, and the frames
// being loaded, so concurrent reads of one frame (kernel readahead) fetch
// it once.
type frameCache struct {
	mu      sync.Mutex
	max     int
	entries []*cacheEntry // least recently used first; a few, so scanned
}

// claim returns entries for frames [lo, hi), marking them most recently
// used. Entries it had to create are also returned in owned: the caller
// must load and complete them.
func (c *frameCache) claim(lo, hi int) (entries, owned []*cacheEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	entries = make([]*cacheEntry, 0, hi-lo)
	for f := lo; f < hi; f++ {
		e := c.take(f)
		if e == nil {
			e = &cacheEntry{frame: f, done: make(chan struct{})}
			owned = append(owned, e)
		}
		c.entries = append(c.entries, e)
		entries = append(entries, e)
	}
	if k := len(c.entries) - c.max; k > 0 {
		n := copy(c.entries, c.entries[k:])
		clear(c.entries[n:])
		c.entries = c.entries[:n]
	}
	return entries, owned
}

// take removes and returns the entry of frame f, or nil.
func (c *frameCache) take(f int) *cacheEntry {
	for i, e := range c.entries {
		if e.frame == f {
			c.entries = slices.Delete(c.entries, i, i+1)
			return e
		}
	}
	return nil
}

// remove drops e if it is still cached.
func (c *frameCache) remove(e *cacheEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, x := range c.entries {
		if x == e {
			c.entries = slices.Delete(c.entries, i, i+1)
			return
		}
	}
}
