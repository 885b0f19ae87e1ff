package stage

import (
	"fmt"
	"os"
	"slices"
	"syscall"
)

// Deferred staging writes.
//
// While a file streams, the bytes of the part being filled live in its RAM
// buffer and are not written to the staging file at write time. When the
// part is cut, its buffer is written to the staging file in one O_DIRECT
// write before the part is sent. Going around the page cache matters: a
// multi-GiB copy would otherwise leave as many dirty pages, push the
// machine past its dirty limits and make every writer on it (the S3 server
// on the same box included) pay for throttled writeback. Anything that reads
// the staging file, or needs it complete (close, fsync, truncate, a write
// behind the stream), first persists whatever is still only in RAM.

// _deferredOverlaps reports whether [off, end) touches bytes that are not
// yet in the staging file.
func (f *File) _deferredOverlaps(off, end int64) bool {
	touches := func(b *partBuf) bool { return off < b.end() && b.start < end }
	if f.pbuf != nil && f.pbuf.deferred && touches(f.pbuf) {
		return true
	}
	return slices.ContainsFunc(f.unpersisted, touches)
}

// _persistAll writes every deferred byte to the staging file (buffered) and
// waits for O_DIRECT writes under way, so that the file is the whole truth.
func (f *File) _persistAll() error {
	f.persisting.Wait() // direct writes run without f.mu and never take it before Done
	var first error
	keep := func(err error) {
		if err != nil && first == nil {
			first = err
		}
	}
	if b := f.pbuf; b != nil && b.deferred {
		keep(f._writeBuffered(b))
		b.deferred = false
	}
	for _, b := range f.unpersisted {
		keep(f._writeBuffered(b))
	}
	f.unpersisted = nil
	return first
}

// _writeBuffered writes the part of b that is within the file's size.
func (f *File) _writeBuffered(b *partBuf) error {
	// Past filled the buffer was never written: the file keeps its own
	// bytes (zeros of a hole) there.
	if err := b.buf.writeTo(f.data, b.start, min(b.filled, f.size-b.start), false); err != nil {
		return fmt.Errorf("write staging file of %s: %w", f.key, err)
	}
	return nil
}

// persistPart writes a cut part's buffer to the staging file, unless
// someone (_persistAll) already did. The bytes of a cut part never change.
func (f *File) persistPart(b *partBuf) {
	f.mu.Lock()
	if !slices.Contains(f.unpersisted, b) {
		f.mu.Unlock()
		return
	}
	f.persisting.Add(1)
	f.mu.Unlock()

	err := f.writeDirect(b)
	f.persisting.Done()

	f.mu.Lock()
	defer f.mu.Unlock()
	i := slices.Index(f.unpersisted, b)
	if i < 0 {
		return
	}
	if err != nil {
		if err = f._writeBuffered(b); err != nil {
			f.area.log.Error("cannot write a part to the staging file; close will report it", "key", f.key, "err", err)
			return // stays listed: close retries it and returns the error
		}
	}
	f.unpersisted = slices.Delete(f.unpersisted, i, i+1)
}

// writeDirect writes b with O_DIRECT when the buffer, offset and length
// allow it, else buffered. It runs without f.mu.
func (f *File) writeDirect(b *partBuf) error {
	fd := f.directFile()
	if fd == nil {
		return errNoDirect
	}
	if err := b.buf.writeTo(fd, b.start, b.buf.len(), true); err != nil {
		return fmt.Errorf("direct write to staging file of %s: %w", f.key, err)
	}
	return nil
}

// directFile opens the O_DIRECT handle once; nil where the file system
// refuses O_DIRECT (tmpfs).
func (f *File) directFile() *os.File {
	f.directOnce.Do(func() {
		fd, err := os.OpenFile(f.dataPath(), os.O_WRONLY|syscall.O_DIRECT, 0)
		if err == nil {
			f.direct = fd
		}
	})
	return f.direct
}
