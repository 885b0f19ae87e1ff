package stage

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/adaptfs/adaptfs/s3backend"
)

// State is where a staged file is in its life.
type State int

const (
	Writing   State = iota // open for writing, or never closed
	Queued                 // closed; its upload waits for the write-back delay or a slot
	Uploading              // upload under way
	Uploaded               // complete in S3
	Failed                 // the last upload attempt failed; data kept for a retry
)

func (s State) String() string {
	return [...]string{"writing", "queued", "uploading", "uploaded", "failed"}[s]
}

// dropWaitLimit bounds how long a drop waits for a Complete in flight.
const dropWaitLimit = 2 * time.Minute

// closedGrace is how long a file whose close (flush) was seen but whose
// last handle is still open counts as pending for sync: release reaches us
// asynchronously after close(2) returns.
const closedGrace = 2 * time.Second

// File is one staged file. Its data file holds the bytes; the manifest next
// to it records what crash recovery needs.
type File struct {
	area *Area
	id   string

	mu      sync.Mutex
	key     string
	data    *os.File
	size    int64
	contig  int64    // [0, contig) is all written: parts may be cut from it while open
	islands []extent // written ranges beyond contig (out-of-order writeback), sorted, disjoint
	meta    s3backend.ObjectMeta
	writers int
	handles int
	flushed time.Time // last close (flush) since the last write; zero if none
	// closedOnDisk: the last manifest written says closed. reopened: the
	// content changed in place since (manifest.Reopened).
	closedOnDisk, reopened bool
	// objKey is the key whose object holds the last content closed or
	// fsynced (its upload finished, nothing closed since), "" if none.
	// Usually key; not if a rename came while the upload was settling.
	objKey   string
	state    State
	err      error
	dropped  bool
	noStream bool     // a write landed behind the stream: upload whole after close
	stream   *stream  // multipart upload fed while the file is written
	pbuf     *partBuf // RAM copy of the part being filled, if memory allowed
	// cut parts whose bytes are not yet in the staging file (persist.go)
	unpersisted []*partBuf
	persisting  sync.WaitGroup // O_DIRECT writes under way
	directOnce  sync.Once
	direct      *os.File    // O_DIRECT handle on the data file, if possible
	zplan       int         // compression decision for the content (zUndecided, zPlain, zCompress)
	zpolicy     LevelSource // its level policy when compressed
	job         *job        // scheduled or running upload
	lastJob     *job        // the latest job scheduled; job.prev links the older ones that may still commit
	uploaded    int64       // bytes of the current upload confirmed by S3
	// upMeta and upSize describe the object the last upload wrote (its
	// encoding and stored size), for the observer.
	upMeta s3backend.ObjectMeta
	upSize int64
	// counted is what this file adds to the area's staged bytes (the
	// quota's measure); 0 once its files are discarded.
	counted int64
}

// FileStat is a snapshot of a staged file.
type FileStat struct {
	Key           string
	Size          int64
	Meta          s3backend.ObjectMeta
	State         State
	Err           error
	UploadedBytes int64
	closedButOpen bool
}

// _countDisk changes the file's share of the area's staged bytes.
func (f *File) _countDisk(d int64) {
	f.counted += d
	f.area.diskBytes.Add(d)
}

// Stat returns a snapshot.
func (f *File) Stat() FileStat {
	f.mu.Lock()
	defer f.mu.Unlock()
	return FileStat{
		Key: f.key, Size: f.size, Meta: f.meta, State: f.state, Err: f.err,
		UploadedBytes: f.uploaded,
		closedButOpen: f.state == Writing && !f.flushed.IsZero() && time.Since(f.flushed) < closedGrace,
	}
}

// Open registers a new handle. A writer cancels any scheduled or running
// upload (the content is about to change); trunc empties the file.
func (f *File) Open(write, trunc bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.dropped {
		return fmt.Errorf("open %s: %w", f.key, os.ErrNotExist)
	}
	f.handles++
	if !write {
		return nil
	}
	f.writers++
	f._cancelUpload()
	if f.state == Uploaded {
		if err := f._changeClosed(); err != nil {
			f.writers--
			f.handles--
			return err
		}
	}
	f.state, f.err = Writing, nil
	if trunc {
		return f._truncate(0)
	}
	if f.stream != nil && f.stream.final {
		f._abandonStream() // its last part may be short: nothing can follow it
	}
	if f.stream == nil {
		f.noStream = true // an update of existing content: upload whole after close
	}
	return nil
}

// Release drops a handle; when the last writer goes, the upload is queued.
// When the file is uploaded and unused, its staging files are removed.
func (f *File) Release(write bool) {
	f.mu.Lock()
	f.handles--
	if write {
		f.writers--
		if f.writers == 0 && !f.dropped {
			f._schedule()
		}
	}
	forget := f.handles == 0 && f.state == Uploaded
	gone := f.handles == 0 && f.dropped // unlinked while open: its last close removes it
	f.mu.Unlock()
	if gone {
		f.discardFiles()
	} else if forget {
		f.area.forget(f)
	}
	f.area.notify()
}

// Flush is close(2) of a writer: the content so far is what the user closed,
// so the manifest says so (and the data is fsynced if staging_sync=close).
func (f *File) Flush() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f._persistAll(); err != nil {
		return err
	}
	if f.dropped || f.state != Writing {
		return nil
	}
	f.flushed, f.reopened, f.objKey = time.Now(), false, ""
	if f.area.cfg.StagingSync == "close" {
		if err := f.data.Sync(); err != nil {
			return fmt.Errorf("sync staging file of %s: %w", f.key, err)
		}
	}
	return f._writeManifest(stateClosed)
}

// WriteAt writes p at off into the staging file. Sequential writes feed the
// multipart stream; a write behind it switches the file to a whole upload
// after close.
func (f *File) WriteAt(p []byte, off int64) (int, error) {
	end := off + int64(len(p))
	if off < 0 || end > MaxObjectSize {
		return 0, fmt.Errorf("write %s at %d: %w", f.key, off, syscall.EFBIG)
	}
	if f.area.cfg.MaxStagingDiskMB > 0 {
		f.mu.Lock()
		grow, key := end-f.size, f.key
		f.mu.Unlock()
		if grow > 0 {
			// Waits without the file's lock: its own upload may need it.
			if err := f.area.reserve(f.area.ctx, key, grow); err != nil {
				return 0, err
			}
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.dropped {
		return 0, fmt.Errorf("write %s: %w", f.key, os.ErrNotExist)
	}
	if err := f._changeClosed(); err != nil {
		return 0, err
	}
	if f.stream != nil && off < f.stream.rawSealed() {
		f._abandonStream()
	}
	if !f._feedBuffer(p, off) {
		if n, err := f.data.WriteAt(p, off); err != nil {
			return n, fmt.Errorf("write staging file of %s: %w", f.key, err)
		}
	}
	f.flushed = time.Time{}
	if f.state != Writing {
		f.state = Writing // written again after an fsync: uploaded anew at close
	}
	if end > f.size {
		f._countDisk(end - f.size)
		f.size = end
	}
	f._markWritten(off, end)
	f._cutParts(false)
	return len(p), nil
}

// extent is a half-open byte range.
type extent struct{ from, to int64 }

// maxIslands bounds the bookkeeping of out-of-order writes; past it the
// file simply streams no further until close.
const maxIslands = 256

// _markWritten records [off, end) as written and advances contig over
// every island it now reaches. The kernel's writeback may send a file's
// pages out of order; they still stream once the gaps fill.
func (f *File) _markWritten(off, end int64) {
	if off > f.contig {
		f._addIsland(off, end)
		return
	}
	f.contig = max(f.contig, end)
	i := 0
	for ; i < len(f.islands) && f.islands[i].from <= f.contig; i++ {
		f.contig = max(f.contig, f.islands[i].to)
	}
	f.islands = f.islands[i:]
}

func (f *File) _addIsland(off, end int64) {
	merged := extent{off, end}
	out := f.islands[:0:0]
	for _, e := range f.islands {
		if e.to < merged.from || e.from > merged.to {
			out = append(out, e)
			continue
		}
		merged = extent{min(e.from, merged.from), max(e.to, merged.to)}
	}
	out = append(out, merged)
	slices.SortFunc(out, func(a, b extent) int { return cmp.Compare(a.from, b.from) })
	if len(out) > maxIslands {
		return
	}
	f.islands = out
}

// _feedBuffer keeps the RAM copy of the part being filled equal to the
// file: it starts one once the file is big enough (loading what was written
// before) and copies every write that lands in it. It reports whether the
// buffer took all of p, so that p need not go to the staging file now.
func (f *File) _feedBuffer(p []byte, off int64) bool {
	if f.noStream {
		// Writes go around the buffer now, so it would go stale; a later
		// upload that streams again would cut a part from it (seen: a
		// file appended to after close lost 20 bytes at the old end).
		f._dropBuffer()
		return false
	}
	var sealed int64
	if f.stream != nil {
		sealed = f.stream.rawSealed()
	}
	end := off + int64(len(p))
	if f.pbuf == nil {
		if max(f.contig, end)-sealed < bufferFillThreshold {
			return false
		}
		size := nextPartSize(f.area.params.Params().PartSize, sealed)
		b := f.area.mem.get(size)
		if b == nil {
			return false // over the memory budget: this part goes from disk
		}
		n := min(size, max(f.size, end)-sealed) // islands included: load all that is there
		if err := b.load(f.data, sealed, 0, n); err != nil {
			f.area.mem.put(b)
			return false
		}
		f.pbuf = &partBuf{start: sealed, buf: b, deferred: true, filled: max(n, 0)}
	}
	pb := f.pbuf
	lo, hi := max(off, pb.start), min(end, pb.end())
	if lo < hi {
		if lo-pb.start > pb.filled {
			pb.buf.clear(pb.filled, lo-pb.start) // a hole: zeros, as in the file
		}
		pb.buf.copyIn(p[lo-off:hi-off], lo-pb.start)
		pb.filled = max(pb.filled, hi-pb.start)
	}
	return f.pbuf.deferred && lo == off && hi == end
}

// _dropBuffer gives the part buffer back, writing its bytes to the staging
// file first if they are only there.
func (f *File) _dropBuffer() {
	if f.pbuf != nil {
		if f.pbuf.deferred {
			if err := f._writeBuffered(f.pbuf); err != nil {
				f.area.log.Error("cannot write a part buffer to the staging file", "key", f.key, "err", err)
			}
		}
		f.area.mem.put(f.pbuf.buf)
		f.pbuf = nil
	}
}

// ReadAt reads from the staging file.
func (f *File) ReadAt(p []byte, off int64) (int, error) {
	f.mu.Lock()
	size := f.size
	var err error
	if f._deferredOverlaps(off, off+int64(len(p))) {
		err = f._persistAll() // rare: reading what is being written
	}
	f.mu.Unlock()
	if err != nil {
		return 0, err
	}
	if off >= size {
		return 0, io.EOF
	}
	if rem := size - off; int64(len(p)) > rem {
		p = p[:rem]
	}
	n, err := f.data.ReadAt(p, off)
	if errors.Is(err, io.EOF) && n == len(p) {
		err = nil
	}
	return n, err
}

// Truncate sets the size.
func (f *File) Truncate(size int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f._truncate(size)
}

func (f *File) _truncate(size int64) error {
	if size < 0 || size > MaxObjectSize {
		return fmt.Errorf("truncate %s to %d: %w", f.key, size, syscall.EFBIG)
	}
	if err := f._changeClosed(); err != nil {
		return err
	}
	if err := f._persistAll(); err != nil {
		return err
	}
	if err := f.data.Truncate(size); err != nil {
		return fmt.Errorf("truncate staging file of %s: %w", f.key, err)
	}
	if f.stream != nil && (size < f.stream.rawSealed() || f.stream.final) {
		f._abandonStream()
		f.noStream = false // start over: the content from 0 is new
	}
	if f.pbuf != nil && size < f.pbuf.start {
		f._dropBuffer()
	}
	if f.pbuf != nil {
		f.pbuf.filled = max(0, min(f.pbuf.filled, size-f.pbuf.start))
	}
	f._countDisk(size - f.size)
	f.size = size
	f.contig = min(f.contig, size)
	f.islands = slices.DeleteFunc(f.islands, func(e extent) bool { return e.from >= size })
	for i := range f.islands {
		f.islands[i].to = min(f.islands[i].to, size)
	}
	f.flushed = time.Time{}
	return nil
}

// SetMeta changes the metadata the object will carry (chmod, chown, touch).
// A file that is queued or uploaded gets a new upload.
func (f *File) SetMeta(change func(*s3backend.ObjectMeta)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	change(&f.meta)
	if f.state == Writing {
		return nil
	}
	// Metadata is part of the object: the pending upload must carry it.
	f._cancelUpload()
	f._schedule()
	return f._writeManifest(stateClosed)
}

// Sync uploads the file's current content now and waits until it is
// complete in S3 (fsync). It returns the upload's error.
func (f *File) Sync(ctx context.Context) error {
	f.mu.Lock()
	if f.dropped {
		f.mu.Unlock()
		return nil
	}
	if f.state == Uploaded {
		f.mu.Unlock()
		return nil
	}
	if f.state == Writing {
		// fsync of an open file: upload a snapshot of what is there now.
		if err := f._persistAll(); err != nil {
			f.mu.Unlock()
			return err
		}
		f.reopened, f.objKey = false, "" // the manifest's size is the content's again
		if err := f._writeManifest(stateClosed); err != nil {
			f.mu.Unlock()
			return err
		}
		f._schedule()
	}
	j := f.job
	f.mu.Unlock()
	if j == nil {
		return f.Stat().Err
	}
	for {
		j.start()
		select {
		case <-j.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if !errors.Is(j.err, context.Canceled) {
			return j.err
		}
		// Superseded by an upload of the same content (a chmod, a claim
		// of the file's old name): wait for that one instead.
		f.mu.Lock()
		next, dropped := f.job, f.dropped
		f.mu.Unlock()
		switch {
		case dropped:
			return nil
		case next == nil:
			// Ended meanwhile: its outcome is the file's.
			return f.Stat().Err
		case next == j:
			return j.err
		}
		j = next
	}
}

func (f *File) kick(retryFailed bool) {
	f.mu.Lock()
	if retryFailed && f.state == Failed && !f.dropped {
		f._schedule()
	}
	j := f.job
	f.mu.Unlock()
	if j != nil {
		j.start()
	}
}

// _changeClosed is called before the content may change (a write, a
// truncate, an open for writing of an uploaded file). If the manifest on
// disk says closed (after a close, an fsync, or the flush of a descriptor
// copy closed by fork+exec), the change is made in place in the data file
// it points at, so the manifest must say that its size no longer holds
// (manifest.Reopened) or, if that content is in S3 already, that the file
// is being written.
func (f *File) _changeClosed() error {
	if !f.closedOnDisk || f.reopened {
		return nil
	}
	if f.state == Uploaded {
		// What was closed (or fsynced) is in S3: until the next close, a
		// crash keeps that version, not the content in flux.
		f.flushed = time.Time{}
		return f._writeManifest(stateWriting)
	}
	f.reopened = true
	if err := f._writeManifest(stateClosed); err != nil {
		f.reopened = false
		return err
	}
	return nil
}

// retarget changes the key (rename). It returns the commit phases to wait
// for: an upload whose object may already exist under the old key moves it
// itself (settle), so the old name is gone once they end, unless settle
// had chosen its key before the rename (see objectAt).
func (f *File) retarget(key string) (commits []<-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.key = key
	if s := f.stream; s != nil {
		if s.key != key {
			f.area.setAway(s.key, f)
		} else {
			f.area.clearAway(s.key, f) // back at its stream's key
		}
	}
	f._writeManifest(f.manifestState())
	return f._commits()
}

// moveObject reports whether the object at from holds the file's last
// closed content, and records it at to (the caller copies it there).
func (f *File) moveObject(from, to string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.objKey == "" || f.objKey != from {
		return false
	}
	f.objKey = to
	return true
}

// waitCommit waits for the commit phases (job.commit) running at the
// call: their object may appear whatever the client does, so what the
// caller does next (the DeleteObject of an unlink or rename, the upload of
// a replacement) must come after their answer.
func (f *File) waitCommit(commits []<-chan struct{}, key string) {
	limit := time.After(dropWaitLimit)
	for _, ch := range commits {
		select {
		case <-ch:
		case <-limit:
			f.area.log.Warn("an upload's last request did not answer; the object may reappear", "key", key)
			return
		}
	}
}

// drop cancels everything and deletes the staging files (unlink, replace).
func (f *File) drop() {
	f.mu.Lock()
	f.dropped = true
	f._cancelUpload()
	commits := f._commits() // after the cancel: see job.commit
	if f.stream != nil {
		f._abandonStream()
	}
	handles, key := f.handles, f.key
	f.mu.Unlock()
	f.waitCommit(commits, key)
	os.Remove(f.manifestPath())
	if handles == 0 {
		f.discardFiles()
	}
}

func (f *File) manifestPath() string { return filepath.Join(f.area.dir, f.id+".json") }
func (f *File) dataPath() string     { return filepath.Join(f.area.dir, f.id+".data") }

func (f *File) discardFiles() {
	f.mu.Lock()
	f.persisting.Wait()
	if f.pbuf != nil {
		f.pbuf.deferred = false // the file goes: nothing to keep
	}
	f._dropBuffer()
	f.unpersisted = nil
	f._countDisk(-f.counted) // once: a second discard finds nothing counted
	f.mu.Unlock()
	if f.direct != nil {
		f.direct.Close()
	}
	f.data.Close()
	os.Remove(f.dataPath())
	os.Remove(f.manifestPath())
}

func (f *File) writeManifest(state string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f._writeManifest(state)
}

func (f *File) _writeManifest(state string) error {
	m := manifest{
		Key: f.key, State: state, Size: f.size,
		Mtime: f.meta.Mtime, Mode: f.meta.Mode, UID: f.meta.UID, GID: f.meta.GID,
		Reopened: f.reopened,
	}
	if f.stream != nil {
		m.UploadID, m.UploadKey = f.stream.uploadID, f.stream.key
	}
	if err := writeManifest(f.manifestPath(), m, f.area.cfg.StagingSync == "close"); err != nil {
		return err
	}
	f.closedOnDisk = state == stateClosed
	return nil
}
