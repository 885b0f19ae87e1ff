package stage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/adaptfs/adaptfs/s3backend"
)

// maxUploadAttempts is how often one closed file is tried before it is
// marked failed (each request is already retried by the S3 client).
const maxUploadAttempts = 4

// stream is a multipart upload fed with parts cut from the staging file.
type stream struct {
	key      string
	meta     s3backend.ObjectMeta // metadata the upload was created with
	uploadID string               // set once created is closed
	created  chan struct{}        // closed when CreateMultipart returned
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup // parts in flight

	// guarded by the file's mutex
	sealed    int64 // bytes cut into parts
	final     bool  // cut after close: the last part may be short
	nextPart  int32
	tailSize  int64 // part size of a closed file's last parts, 0 until planned
	tailConc  int   // the concurrency the tail was planned for
	inFlight  int
	parts     []s3backend.CompletedPart
	err       error // first error of the stream
	createErr error
	creating  bool    // CreateMultipart started (created will close)
	z         *zstate // compressed stream, nil for as-is
}

// job is one scheduled upload of a closed file.
type job struct {
	ctx      context.Context
	cancel   context.CancelFunc
	kick     chan struct{} // closed to skip the write-back delay
	kickOnce sync.Once
	done     chan struct{} // closed when the job ends
	err      error         // set before done closes
	// A commit phase runs from the request that creates the object
	// (CompleteMultipartUpload, or the PutObject of a small file) until
	// the attempt that sent it has settled: the object may appear whatever
	// the client does, because the server can commit a body it already has
	// after the client gave up. A drop or rename waits for it instead (an
	// unlink's DeleteObject must come after it). inCommit is non-nil during
	// one and closed at its end.
	cmu      sync.Mutex
	inCommit chan struct{}
	// at is the key the upload's object ended at (settle), for finish.
	at string
	// prev is the file's latest job before this one that may still
	// commit, set once. Its commit must answer before this job's:
	// otherwise the older content can land last. The chain stays short:
	// each new job links past the jobs that can no longer commit.
	prev *job
}

func (j *job) start() { j.kickOnce.Do(func() { close(j.kick) }) }

// commit starts a commit phase. It returns false if the job was cancelled
// first: with drop's order (cancel, then commitChan) one of the two always
// sees the other.
func (j *job) commit() bool {
	j.cmu.Lock()
	defer j.cmu.Unlock()
	if j.ctx.Err() != nil {
		return false
	}
	if j.inCommit == nil {
		j.inCommit = make(chan struct{})
	}
	return true
}

// endCommit ends the commit phase, if one runs.
func (j *job) endCommit() {
	j.cmu.Lock()
	defer j.cmu.Unlock()
	if j.inCommit != nil {
		close(j.inCommit)
		j.inCommit = nil
	}
}

// commitChan is closed when the running commit phase ends; nil if none runs.
func (j *job) commitChan() <-chan struct{} {
	j.cmu.Lock()
	defer j.cmu.Unlock()
	return j.inCommit
}

func (j *job) ended() bool {
	select {
	case <-j.done:
		return true
	default:
		return false
	}
}

// _mayCommit is the file's latest job that may still create its object:
// jobs that ended, or were cancelled outside a commit phase, never will.
func (f *File) _mayCommit() *job {
	j := f.lastJob
	for j != nil && (j.ended() || j.ctx.Err() != nil && j.commitChan() == nil) {
		j = j.prev
	}
	return j
}

// _commits are the commit phases running in the file's jobs.
func (f *File) _commits() []<-chan struct{} {
	var out []<-chan struct{}
	for j := f.lastJob; j != nil; j = j.prev {
		if ch := j.commitChan(); ch != nil {
			out = append(out, ch)
		}
	}
	return out
}

// _schedule queues an upload of the file as it is now.
func (f *File) _schedule() {
	if err := f._persistAll(); err != nil {
		f.area.log.Error("staging file incomplete", "key", f.key, "err", err)
	}
	f._cancelUpload()
	ctx, cancel := context.WithCancel(f.area.ctx)
	j := &job{ctx: ctx, cancel: cancel, kick: make(chan struct{}), done: make(chan struct{}), prev: f._mayCommit()}
	f.job, f.lastJob = j, j
	f.state, f.err = Queued, nil
	f.area.jobs.Add(1)
	go f.run(j)
}

// _cancelUpload stops a scheduled or running upload. A stream that was
// being fed while the file was open survives: it belongs to the content.
func (f *File) _cancelUpload() {
	if f.job != nil {
		f.job.cancel()
		f.job = nil
	}
}

// _abandonStream aborts the multipart stream (the content behind it changed).
func (f *File) _abandonStream() {
	s := f.stream
	if err := f._persistAll(); err != nil {
		f.area.log.Error("staging file incomplete", "key", f.key, "err", err)
	}
	f.stream = nil
	if len(f._commits()) == 0 {
		// Else a completion of s may be in flight: claim must still find
		// it and wait (the entry goes after its settle).
		f.area.clearAway(s.key, f)
	}
	f.noStream = true
	f.zplan = zUndecided
	f._dropBuffer()
	s.cancel()
	if !s.creating {
		s.creating = true
		close(s.created) // nothing to abort
	}
	be := f.area.be
	f.area.jobs.Add(1)
	f.area.aborting.Add(1)
	go func() {
		defer f.area.jobs.Done()
		defer f.area.notify()
		defer f.area.aborting.Add(-1)
		s.wg.Wait()
		f.closeSide(s)
		<-s.created
		if s.uploadID != "" {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := abortFully(ctx, be, s.key, s.uploadID); err != nil {
				f.area.log.Warn("abort of an abandoned multipart upload failed", "key", s.key, "err", err)
			}
		}
	}()
}

// abortFully aborts an upload until the server no longer has it. A part the
// server was still receiving when the abort came may complete after it and
// bring the upload back (S3 documents this; versitygw does it when the
// client cancelled a part whose body it had already sent), so an abort is
// checked after a pause, and repeated.
func abortFully(ctx context.Context, be s3backend.Backend, key, id string) error {
	pause := 200 * time.Millisecond
	for range 4 {
		if err := be.AbortMultipart(ctx, key, id); err != nil {
			return err
		}
		select {
		case <-time.After(pause):
		case <-ctx.Done():
			return ctx.Err()
		}
		_, err := be.ListParts(ctx, key, id)
		if errors.Is(err, s3backend.ErrNoSuchUpload) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("check the abort of %s: %w", key, err)
		}
		pause *= 2
	}
	return fmt.Errorf("upload %s of %s still exists after 4 aborts", id, key)
}

// _cutParts cuts every part the contiguous bytes allow. With final set the
// file is closed: everything up to size is cut, the last part may be short.
func (f *File) _cutParts(final bool) {
	if f.noStream {
		return
	}
	// Entering the final cut: make the staging file whole and reload what
	// was never written in order. Later final cuts (one per finished part)
	// find that done: nothing is written after close.
	if final && (f.stream == nil || !f.stream.final) {
		if err := f._persistAll(); err != nil {
			f.area.log.Error("staging file incomplete", "key", f.key, "err", err)
		}
		if b := f.pbuf; b != nil && f.contig < b.end() {
			// Bytes past contig were never written in order (holes,
			// truncates): take them from the file.
			from := max(f.contig, b.start)
			to := min(f.size, b.end())
			if from < to {
				if err := b.buf.load(f.data, b.start, from-b.start, to-b.start); err != nil {
					f._dropBuffer()
				} else {
					b.filled = max(b.filled, to-b.start)
				}
			}
		}
		f.contig = f.size
	}
	// A compressed stream frames the file: it cuts its own parts.
	if s := f.stream; s != nil && s.z != nil {
		if final && !s.final {
			s.final = true
		}
		f._cutCompressed(s)
		s.z.poke()
		return
	}
	if f.stream == nil && (f.contig >= max(f.area.params.Params().PartSize, MinPartSize) || final && f.contig > 0) {
		if policy := f._compressionLevel(); policy != nil {
			if err := f._startCompressed(policy); err != nil {
				f.area.log.Error("cannot compress; sending as-is", "key", f.key, "err", err)
				f.zplan, f.zpolicy = zPlain, nil
			} else {
				f.stream.final = final
				return
			}
		}
	}
	p := f.area.params.Params()
	limit := int64(f.area.cfg.StageAheadChunks + p.Concurrency)
	for {
		var sealed int64
		if f.stream != nil {
			sealed = f.stream.sealed
		}
		if f.pbuf != nil && f.pbuf.start != sealed {
			f._dropBuffer()
		}
		size := nextPartSize(p.PartSize, sealed)
		if f.pbuf != nil {
			size = f.pbuf.buf.len() // the size it was started with
		}
		avail := f.contig - sealed
		if final {
			if f.stream != nil {
				f.stream.final = true
			}
			if avail <= 0 {
				return
			}
		} else if avail < size {
			return
		}
		if f.stream == nil {
			f._startStream()
			f.stream.final = final
		}
		s := f.stream
		if final {
			size = s.tailCut(avail, size, p.Concurrency)
		}
		if int64(s.inFlight) >= limit {
			// Cut more when a part finishes: a part's size is fixed when it
			// is cut, so cutting late lets it follow the controller.
			return
		}
		var cut *partBuf
		if b := f.pbuf; b != nil {
			b.buf.truncate(size)
			f.pbuf = nil
			cut = b
			if b.deferred {
				f.unpersisted = append(f.unpersisted, b)
			}
		}
		s.nextPart++
		s.inFlight++
		s.wg.Add(1)
		go f.uploadPart(s, s.nextPart, sealed, size, cut)
		s.sealed += size
	}
}

// _fail records the stream's first error (called with the file's mutex
// held) and wakes its compressor, which stops: the upload is then retried
// whole, or reported.
func (s *stream) _fail(err error) {
	if s.err == nil {
		s.err = err
	}
	if s.z != nil {
		s.z.poke()
	}
}

// tailCut is the size of the next part of a closed file's last avail
// bytes, parts of size being cut otherwise. The tail is planned once per
// concurrency: recomputed at every cut, the even split would shrink
// geometrically.
func (s *stream) tailCut(avail, size int64, conc int) int64 {
	if s.tailSize == 0 || s.tailConc != conc {
		s.tailSize = tailPartSize(avail, size, conc, MaxParts-int(s.nextPart))
		s.tailConc = conc
	}
	if s.tailSize > 0 {
		size = min(size, s.tailSize)
	}
	return min(size, avail)
}

// recut cuts what the parameters in force allow now.
func (f *File) recut() {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.stream
	switch {
	case f.dropped || s == nil || s.err != nil:
	case s.final:
		f._cutParts(true)
	case f.state == Writing:
		f._cutParts(false)
	}
}

func (f *File) _startStream() {
	f._startStreamMeta(f.meta)
	f._createUpload(f.stream)
}

// _startStreamMeta makes a stream whose object carries meta; its
// CreateMultipartUpload starts with _createUpload.
func (f *File) _startStreamMeta(meta s3backend.ObjectMeta) {
	ctx, cancel := context.WithCancel(f.area.ctx)
	f.stream = &stream{key: f.key, meta: meta, created: make(chan struct{}), ctx: ctx, cancel: cancel}
}

// _createUpload starts the stream's CreateMultipartUpload, once.
func (f *File) _createUpload(s *stream) {
	if s.creating {
		return
	}
	s.creating = true
	meta := s.meta
	// The manifest first, with the key the upload targets: killed after
	// the server created the upload but before its id is recorded, the
	// next mount still knows which key to clean up (abortStaleUploads).
	if err := f._writeManifest(f.manifestState()); err != nil {
		f.area.log.Warn("staging manifest not written before a multipart upload", "key", s.key, "err", err)
	}
	go func() {
		defer close(s.created)
		// Not s.ctx: abandoning the stream cancels that, and a server that
		// got the request may create the upload anyway; with no id we could
		// not abort it, and it would stay, billed (found by TestReference).
		id, err := f.area.be.CreateMultipart(f.area.ctx, s.key, meta)
		f.mu.Lock()
		s.uploadID, s.createErr = id, err
		if err != nil {
			s._fail(err)
		}
		if err == nil && f.stream == s {
			f._writeManifest(f.manifestState())
		}
		f.mu.Unlock()
	}()
}

func (f *File) manifestState() string {
	if f.state == Writing && f.flushed.IsZero() && !f.reopened {
		return stateWriting
	}
	return stateClosed
}

func (f *File) uploadPart(s *stream, num int32, off, size int64, cut *partBuf) {
	defer s.wg.Done()
	var buf *buffer
	if cut != nil {
		buf = cut.buf
		if cut.deferred {
			f.persistPart(cut)
		}
	}
	err := f.sendPart(s, num, off, size, buf)
	f.mu.Lock()
	s.inFlight--
	if err != nil {
		s._fail(err)
	}
	f.mu.Unlock()
	if err == nil {
		f.recut()
	}
}

func (f *File) sendPart(s *stream, num int32, off, size int64, buf *buffer) error {
	select {
	case <-s.created:
	case <-s.ctx.Done():
		f.area.mem.put(buf)
		return s.ctx.Err()
	}
	if s.createErr != nil {
		f.area.mem.put(buf)
		return s.createErr
	}
	if err := f.area.acquire(s.ctx); err != nil {
		f.area.mem.put(buf)
		return err
	}
	defer f.area.release()
	src := f.data
	if s.z != nil {
		src = s.z.file
	}
	body, release, err := f.area.body(src, buf, off, size)
	if err != nil {
		return fmt.Errorf("read part %d of %s from staging: %w", num, s.key, err)
	}
	part, err := f.area.be.UploadPart(s.ctx, s.key, s.uploadID, num, body, size)
	release()
	if err != nil {
		return fmt.Errorf("part %d of %s: %w", num, s.key, err)
	}
	f.mu.Lock()
	s.parts = append(s.parts, part)
	if f.stream == s {
		if z := s.z; z != nil && z.compOff > 0 {
			// Progress in raw bytes: the part's share of what is framed.
			size = int64(float64(size) * float64(z.rawDone) / float64(z.compOff))
		}
		f.uploaded = min(f.uploaded+size, f.size)
	}
	f.mu.Unlock()
	return nil
}

// run is the life of one job: wait out the write-back delay, upload with
// retries, then mark the file uploaded or failed.
func (f *File) run(j *job) {
	defer f.area.jobs.Done()
	defer close(j.done)
	if d := f.area.cfg.WriteBackDelay; d > 0 && f.area.flushing.Load() == 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-j.kick:
			t.Stop()
		case <-j.ctx.Done():
			t.Stop()
			j.err = j.ctx.Err()
			return
		}
	}
	if p := j.prev; p != nil {
		select {
		case <-p.done:
		case <-j.ctx.Done():
			j.err = j.ctx.Err()
			return
		}
	}
	var (
		etag string
		err  error
	)
	for attempt := 1; attempt <= maxUploadAttempts; attempt++ {
		etag, err = f.uploadOnce(j)
		if err != nil {
			j.endCommit() // a retry opens its own
		}
		if err == nil || j.ctx.Err() != nil || permanent(err) {
			break
		}
		backoff := time.Duration(1<<attempt)*time.Second + rand.N(time.Second)
		f.area.log.Warn("upload failed, will retry", "key", f.Stat().Key, "attempt", attempt, "in", backoff.Round(time.Millisecond), "err", err)
		select {
		case <-time.After(backoff):
		case <-j.ctx.Done():
		}
	}
	j.err = err
	f.finish(j, etag, err)
	// Only now: a rename between settle and finish would record the
	// object under a key it is not at.
	j.endCommit()
}

func permanent(err error) bool {
	return errors.Is(err, s3backend.ErrNoSuchBucket) || errors.Is(err, s3backend.ErrAccessDenied) ||
		errors.Is(err, s3backend.ErrInvalidRequest)
}

func (f *File) finish(j *job, etag string, err error) {
	f.mu.Lock()
	if f.job != j { // superseded or cancelled
		f.mu.Unlock()
		if err == nil {
			err = context.Canceled
		}
		j.err = err
		return
	}
	f.job = nil
	info := s3backend.ObjectInfo{Key: f.key, Size: f.size, ETag: etag, Meta: f.meta, LastModified: time.Now()}
	if u := f.upMeta; u.Compressed() {
		// What the bucket holds: the compressed size, the encoding, and
		// the raw size (known here even where the metadata lacks it).
		info.Size = f.upSize
		info.Meta.ContentEncoding, info.Meta.Format, info.Meta.RawSize = u.ContentEncoding, u.Format, f.size
	}
	if err != nil {
		f.state, f.err = Failed, err
		f.mu.Unlock()
		f.area.log.Error("upload failed; the staged data is kept and retried by `adaptfs sync` or the next mount",
			"key", info.Key, "staging_file", f.dataPath(), "err", err)
		f.area.notify()
		return
	}
	f.state, f.objKey = Uploaded, j.at
	forget := f.handles == 0
	raw := f.size
	f.mu.Unlock()
	f.area.uploadedBytes.Add(raw)
	f.area.uploadedFiles.Add(1)
	if info.Meta.Compressed() {
		f.area.compressedFiles.Add(1)
		f.area.compressedRaw.Add(raw)
		f.area.compressedStored.Add(info.Size)
	}
	if o := f.area.obs; o != nil {
		o.Uploaded(info.Key, info)
	}
	if forget {
		f.area.forget(f)
	} else {
		f.area.notify()
	}
}

// uploadOnce uploads the file's current content: the open stream is
// finished, or the file goes up whole (one PUT if below one part). It
// returns the object's ETag ("" if it was moved server-side afterwards).
func (f *File) uploadOnce(j *job) (string, error) {
	f.mu.Lock()
	if f.job != j {
		f.mu.Unlock()
		return "", context.Canceled
	}
	f.state = Uploading
	if s := f.stream; s != nil && s.err != nil {
		f._abandonStream()
		f.noStream = false
	}
	if f.stream == nil {
		f.noStream = false
		f.uploaded = 0
		f.upMeta, f.upSize = s3backend.ObjectMeta{}, 0
		if f.size < max(f.area.params.Params().PartSize, MinPartSize) {
			return f._put(j)
		}
	}
	f._cutParts(true)
	s := f.stream
	f.mu.Unlock()
	f.area.notify()

	waited := make(chan struct{})
	go func() { s.wg.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-j.ctx.Done():
		return "", j.ctx.Err()
	}
	f.mu.Lock()
	if err := s.err; err != nil {
		f.mu.Unlock()
		return "", err
	}
	parts := append([]s3backend.CompletedPart(nil), s.parts...)
	f.mu.Unlock()
	sort.Slice(parts, func(a, b int) bool { return parts[a].Number < parts[b].Number })

	if err := f.area.acquire(j.ctx); err != nil {
		return "", err
	}
	if !j.commit() {
		f.area.release()
		return "", j.ctx.Err()
	}
	etag, err := f.area.be.CompleteMultipart(context.WithoutCancel(j.ctx), s.key, s.uploadID, parts)
	f.area.release()
	if err != nil {
		f.mu.Lock()
		if f.stream == s {
			f._abandonStream()
			f.noStream = false
		}
		f.mu.Unlock()
		f.area.clearAway(s.key, f) // nothing of s is left to move
		return "", fmt.Errorf("complete %s: %w", s.key, err)
	}
	f.mu.Lock()
	if f.stream == s {
		f.stream = nil
	}
	f.upMeta, f.upSize = s.meta, s.sealed
	f.mu.Unlock()
	f.closeSide(s)
	etag, err = f.settle(j, s.key, s.meta, etag)
	// After the move: until then, claim must wait for this commit phase.
	f.area.clearAway(s.key, f)
	return etag, err
}

// _put uploads the whole file with one PutObject; called with f.mu held,
// returns with it released.
func (f *File) _put(j *job) (string, error) {
	key, size, meta := f.key, f.size, f.meta
	f.zplan = zUndecided // decided on the content as it is now
	policy := f._compressionLevel()
	f.mu.Unlock()
	f.area.notify()
	// The upload slot first: compressed copies of queued files are made
	// only as fast as they can go out.
	if err := f.area.acquire(j.ctx); err != nil {
		return "", err
	}
	src, stored := f.data, size
	if policy != nil {
		side, n, zmeta, err := f.compressWhole(key, policy, size, meta)
		if err != nil {
			f.area.release()
			return "", err
		}
		path := side.Name()
		defer func() { side.Close(); os.Remove(path) }()
		src, stored, meta = side, n, zmeta
	}
	var body io.ReadSeeker = io.NewSectionReader(src, 0, stored)
	release := func() {}
	if policy == nil {
		// The PutObject cannot be cancelled once sent (see commit), and a
		// writer may reopen the file meanwhile and change the staging file
		// in place: send a copy of the content as it was closed.
		var err error
		if body, release, err = f.snapshot(stored); err != nil {
			f.area.release()
			return "", fmt.Errorf("read %s from staging: %w", key, err)
		}
	}
	if !j.commit() {
		release()
		f.area.release()
		return "", j.ctx.Err()
	}
	// Cancelled only by shutdown: a drop waits for the answer (see commit).
	etag, err := f.area.be.Put(f.area.ctx, key, body, stored, meta)
	release()
	f.area.release()
	if err != nil {
		return "", fmt.Errorf("put %s: %w", key, err)
	}
	f.mu.Lock()
	f.uploaded = size
	f.upMeta, f.upSize = meta, stored
	f.mu.Unlock()
	return f.settle(j, key, meta, etag)
}

// snapshot copies the staging file's first size bytes for a PutObject: in
// RAM (small files, or a buffer from the memory budget), else in a side
// file next to it (<id>-*.put, removed by release, and by recovery).
func (f *File) snapshot(size int64) (io.ReadSeeker, func(), error) {
	if size < bufferFillThreshold {
		b := make([]byte, size)
		if _, err := io.ReadFull(io.NewSectionReader(f.data, 0, size), b); err != nil {
			return nil, nil, fmt.Errorf("staging file shorter than %d bytes: %w", size, err)
		}
		return bytes.NewReader(b), func() {}, nil
	}
	if b := f.area.mem.get(size); b != nil {
		if err := b.load(f.data, 0, 0, size); err != nil {
			f.area.mem.put(b)
			return nil, nil, err
		}
		return b.reader(), func() { f.area.mem.put(b) }, nil
	}
	// A name per job: a cancelled job may still be copying.
	side, err := os.CreateTemp(f.area.dir, f.id+"-*"+putSuffix)
	if err != nil {
		return nil, nil, err
	}
	drop := func() { side.Close(); os.Remove(side.Name()) }
	if n, err := io.Copy(side, io.NewSectionReader(f.data, 0, size)); err != nil || n != size {
		drop()
		return nil, nil, fmt.Errorf("copy %d bytes of the staging file: %d copied: %w", size, n, err)
	}
	return io.NewSectionReader(side, 0, size), drop, nil
}

// putSuffix names the side file of a PutObject's snapshot.
const putSuffix = ".put"

// settle makes the object just completed at uploadedKey with uploadedMeta
// match the file as it is now: a rename or a metadata change (rsync's
// utimes, chmod) that came while the upload ran is applied server-side.
// It is part of the commit phase, so only shutdown cancels it: whoever
// waits for the phase (an unlink, a rename, a claim) expects the object
// moved.
func (f *File) settle(j *job, uploadedKey string, uploadedMeta s3backend.ObjectMeta, etag string) (string, error) {
	f.mu.Lock()
	key, meta := f.key, f.meta
	f.mu.Unlock()
	j.at = uploadedKey
	if key == uploadedKey && metaEqual(meta, uploadedMeta) {
		return etag, nil
	}
	// The encoding belongs to the bytes uploaded; the copy also fills in a
	// raw size the upload could not know when it started.
	meta.ContentEncoding, meta.Format, meta.RawSize = uploadedMeta.ContentEncoding, uploadedMeta.Format, uploadedMeta.RawSize
	if meta.Format != "" {
		meta.RawSize = f.Stat().Size
	}
	ctx := f.area.ctx
	if err := f.area.be.Copy(ctx, uploadedKey, key, &meta); err != nil {
		return "", fmt.Errorf("move %s to %s after rename: %w", uploadedKey, key, err)
	}
	j.at = key
	if key == uploadedKey {
		return "", nil
	}
	if err := f.area.be.Delete(ctx, uploadedKey); err != nil {
		return "", fmt.Errorf("remove %s after rename: %w", uploadedKey, err)
	}
	return "", nil
}

func metaEqual(a, b s3backend.ObjectMeta) bool {
	return a.Mtime.Equal(b.Mtime) && a.Mode == b.Mode && a.UID == b.UID && a.GID == b.GID &&
		a.HasOwner == b.HasOwner
}
