package stage

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/adaptfs/adaptfs/s3backend"
	"github.com/adaptfs/adaptfs/zseek"
)

// Compression: a compressed object is zstd frames of frameSize raw bytes
// each, then a seek table (package zseek). The frames are appended to a
// side file next to the staging file as the raw bytes become contiguous,
// and parts are cut from the side file exactly like plain parts are cut
// from the staging file, so every non-final part has at least MinPartSize
// bytes on the wire whatever the ratio.
const (
	frameSize = 2 << 20
	// minCompressSize: below it an object goes as-is (a seek table and
	// the metadata cost more than compression saves).
	minCompressSize = 4 << 10
	sniffSize       = 128 << 10
	// sampleEvery: one frame in this many is also compressed at a
	// neighbouring level, to keep that level's curve measured.
	sampleEvery = 16
)

// LevelSource is the compression level policy (adapt.LevelChooser): the
// level for the next frame, and the measurements it learns from. Levels are
// zseek.Level values.
type LevelSource interface {
	Level() int
	Observe(level int, raw, comp int64, took time.Duration)
	ObserveRatio(level int, raw, comp int64)
	SampleLevel() (level int, ok bool)
}

// fixedLevel is the policy of a fixed level, or of auto without a
// controller.
type fixedLevel zseek.Level

func (l fixedLevel) Level() int                             { return int(l) }
func (fixedLevel) Observe(int, int64, int64, time.Duration) {}
func (fixedLevel) ObserveRatio(int, int64, int64)           {}
func (fixedLevel) SampleLevel() (int, bool)                 { return 0, false }

// compressor is what an Area shares between its compressed streams: the
// encoders, and a semaphore of one slot per core so that concurrent files
// do not oversubscribe the CPU.
type compressor struct {
	enc    *zseek.Encoder
	slots  chan struct{}
	levels LevelSource
	frames sync.Pool // *[]byte of frameSize raw bytes
	outs   sync.Pool // *[]byte for compressed frames
	nframe uint64    // frames compressed, for sampling (under mu)
	mu     sync.Mutex
}

func newCompressor() *compressor {
	n := runtime.GOMAXPROCS(0)
	return &compressor{
		enc:    zseek.NewParallelEncoder(n),
		slots:  make(chan struct{}, n),
		levels: fixedLevel(zseek.Default),
		frames: sync.Pool{New: func() any { b := make([]byte, frameSize); return &b }},
		outs:   sync.Pool{New: func() any { b := make([]byte, 0, frameSize+frameSize/8); return &b }},
	}
}

// AutoLevels are the levels compression = "auto" chooses among. Not
// zstd-max: its encoder state is 36 MiB, and on this kind of data it saves
// a few percent over zstd-high at a fraction of the speed (the soak's RSS
// went 30 MiB past its limit when auto tried it). Configured explicitly,
// it is used.
func AutoLevels() []zseek.Level { return []zseek.Level{zseek.Fastest, zseek.Default, zseek.Better} }

// CompressionMemory is the RAM compression may take besides part buffers
// with this configuration: per worker a raw frame, its compressed copy and
// a batch buffer, and the encoder states of every level it may use (an
// encoder, once made, is kept). The caller reserves it out of
// max_staging_memory_mb. Zero when nothing is compressed.
func CompressionMemory(c Config) int64 {
	workers := runtime.GOMAXPROCS(0)
	used := map[zseek.Level]bool{}
	add := func(mode string) {
		switch mode {
		case CompressOff:
		case CompressAuto:
			for _, l := range AutoLevels() {
				used[l] = true
			}
		default:
			if l, err := zseek.ParseLevel(mode); err == nil {
				used[l] = true
			}
		}
	}
	add(c.Compression)
	for _, s := range c.CompressionRules {
		if r, err := parseCompressionRule(s); err == nil {
			add(r.mode)
		}
	}
	if len(used) == 0 {
		return 0
	}
	mem := int64(workers) * 4 * frameSize
	for l := range used {
		mem += zseek.EncoderMemory(l, workers)
	}
	return mem
}

// Workers is how many frames are compressed at once.
func (c *compressor) workers() int { return cap(c.slots) }

// zstate is the compressed side of a stream (guarded by the file's mutex,
// except what the compressor goroutine alone touches).
type zstate struct {
	file       *os.File // the side file: frames, then the seek table
	path       string
	frames     []zseek.Frame
	rawClaimed int64 // raw bytes taken by the compressor (framed or being framed)
	rawDone    int64 // raw bytes in frames written to the side file
	compOff    int64 // bytes in the side file
	done       bool  // every raw byte framed and the seek table written
	wake       chan struct{}
}

func (z *zstate) poke() {
	select {
	case z.wake <- struct{}{}:
	default:
	}
}

// zstdPath names a new side file: one per stream, so that an abandoned
// stream's cleanup never removes its successor's.
func (f *File) zstdPath() string {
	return filepath.Join(f.area.dir, fmt.Sprintf("%s-%d.zst", f.id, f.area.seq.Add(1)))
}

// rawSealed is the raw offset below which a write changes bytes already
// taken for upload.
func (s *stream) rawSealed() int64 {
	if s.z != nil {
		return s.z.rawClaimed
	}
	return s.sealed
}

// _compressionLevel decides, once per content, whether the file goes up
// compressed: the configured mode for its key, and for auto a sample of
// its first bytes (a known compressed format, or one that does not shrink
// at the fastest level, goes as-is) and the policy's level (none = as-is).
// It returns the level policy to use, or nil for as-is.
func (f *File) _compressionLevel() LevelSource {
	if f.zplan != zUndecided {
		return f.zpolicy
	}
	f.zplan, f.zpolicy = zPlain, nil
	mode := f.area.cfg.compressionFor(f.key)
	if mode == CompressOff || f.size < minCompressSize {
		return nil
	}
	if mode != CompressAuto {
		lvl, err := zseek.ParseLevel(mode)
		if err != nil {
			return nil // validated with the config
		}
		f.zplan, f.zpolicy = zCompress, fixedLevel(lvl)
		return f.zpolicy
	}
	sample := make([]byte, min(sniffSize, f.size))
	if pb := f.pbuf; pb != nil && pb.start == 0 && pb.filled >= int64(len(sample)) {
		pb.buf.copyOut(sample, 0) // the file's first bytes may be in RAM only
	} else {
		if f._deferredOverlaps(0, int64(len(sample))) {
			if err := f._persistAll(); err != nil {
				f.area.log.Error("staging file incomplete", "key", f.key, "err", err)
				return nil
			}
		}
		n, _ := f.data.ReadAt(sample, 0)
		sample = sample[:n]
	}
	if format, ok := zseek.Sniff(sample); ok {
		f.area.log.Debug("stored as-is: already compressed", "key", f.key, "format", format)
		return nil
	}
	z := f.area.z
	ratio := zseek.Ratio(z.enc, sample)
	if len(sample) > 0 && ratio > 0 {
		z.levels.ObserveRatio(int(zseek.Fastest), int64(len(sample)), int64(float64(len(sample))/ratio))
	}
	if ratio < zseek.MinRatio {
		f.area.log.Debug("stored as-is: does not compress", "key", f.key, "ratio", ratio)
		return nil
	}
	if z.levels.Level() == int(zseek.None) {
		return nil // the link is fast enough that compression costs more than it saves
	}
	f.zplan, f.zpolicy = zCompress, z.levels
	return f.zpolicy
}

// Compression decisions of a file's content.
const (
	zUndecided = iota
	zPlain
	zCompress
)

// _startCompressed starts a compressed stream and its compressor.
func (f *File) _startCompressed(policy LevelSource) error {
	if err := f._persistAll(); err != nil {
		return err
	}
	f._dropBuffer() // the compressor reads the staging file
	path := f.zstdPath()
	side, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("compressed staging file of %s: %w", f.key, err)
	}
	meta := f.meta
	meta.ContentEncoding, meta.Format = "zstd", s3backend.FormatZstdSeekable
	meta.RawSize = -1 // known at the end; Complete does not carry metadata
	f._startStreamMeta(meta)
	s := f.stream
	s.z = &zstate{file: side, path: path, wake: make(chan struct{}, 1)}
	s.wg.Add(1)
	go f.compressLoop(s, policy)
	return nil
}

// _takeBuffer hands the compressor the part buffer that starts where it
// is, once every byte of it is written (or the file is closed), and the
// file forgets it: the compressor persists and frees it.
func (f *File) _takeBuffer(s *stream) *partBuf {
	pb := f.pbuf
	if pb == nil || pb.start != s.z.rawClaimed {
		return nil
	}
	if s.final && f.contig >= f.size {
		pb.buf.truncate(max(0, f.size-pb.start))
	} else if f.contig < pb.end() {
		return nil
	}
	if pb.buf.len() == 0 {
		return nil
	}
	f.pbuf = nil
	if pb.deferred {
		f.unpersisted = append(f.unpersisted, pb)
	}
	return pb
}

// frameJob is one frame to compress: raw bytes [off, off+n), read from src
// when set, else from the staging file.
type frameJob struct {
	src    *partBuf
	off, n int64
	comp   []byte
	out    *[]byte // pooled buffer comp lives in
	frame  zseek.Frame
	lvl    zseek.Level
	err    error
}

// compressLoop turns the staging file's contiguous bytes into frames in the
// side file, cutting parts as they fill, and writes the seek table once the
// file is closed and every byte is framed. It runs ahead of the uploads by
// at most stage_ahead_chunks + concurrency parts.
func (f *File) compressLoop(s *stream, policy LevelSource) {
	defer s.wg.Done()
	z := s.z
	c := f.area.z
	for {
		f.mu.Lock()
		if s.err != nil || s.ctx.Err() != nil || f.stream != s {
			f.mu.Unlock()
			return
		}
		p := f.area.params.Params()
		limit := int64(f.area.cfg.StageAheadChunks + p.Concurrency)
		queued := z.compOff - s.sealed
		ahead := int64(s.inFlight) >= limit || queued >= limit*nextPartSize(p.PartSize, s.sealed)
		var (
			jobs  []*frameJob
			taken []*partBuf
		)
		for !ahead && len(jobs) < c.workers() {
			if pb := f._takeBuffer(s); pb != nil {
				// The part buffer's bytes are in RAM (maybe only there):
				// frame them from it.
				taken = append(taken, pb)
				for off := int64(0); off < pb.buf.len(); off += frameSize {
					jobs = append(jobs, &frameJob{off: pb.start + off, n: min(frameSize, pb.buf.len()-off), src: pb})
				}
				z.rawClaimed = pb.end()
				continue
			}
			end := f.contig
			if pb := f.pbuf; pb != nil && pb.start >= z.rawClaimed {
				end = min(end, pb.start) // bytes from there on may be in RAM only
			}
			n := min(frameSize, end-z.rawClaimed)
			if n <= 0 || (n < frameSize && !(s.final && end == f.size)) {
				break
			}
			jobs = append(jobs, &frameJob{off: z.rawClaimed, n: n})
			z.rawClaimed += n
		}
		if len(jobs) == 0 && s.final && z.rawDone == f.size && z.rawClaimed == f.size && !z.done {
			if err := f._finishCompressed(s); err != nil {
				s._fail(err)
			}
			f._cutCompressed(s)
			f.mu.Unlock()
			return
		}
		f.mu.Unlock()
		if len(jobs) == 0 {
			select {
			case <-z.wake:
			case <-s.ctx.Done():
			}
			continue
		}
		lvl := zseek.Level(policy.Level())
		var (
			written int64
			err     error
		)
		// A workers' worth of frames at a time: a taken part buffer may
		// hold dozens, and each compressed frame holds a pooled buffer
		// until it is written.
		for lo := 0; lo < len(jobs) && err == nil; lo += c.workers() {
			chunk := jobs[lo:min(lo+c.workers(), len(jobs))]
			err = f.compressFrames(s, chunk, lvl, policy)
			// One write per frame; only this goroutine appends to the
			// side file.
			for _, j := range chunk {
				if err == nil {
					if _, werr := z.file.WriteAt(j.comp, z.compOff+written); werr != nil {
						err = fmt.Errorf("write compressed staging file of %s: %w", s.key, werr)
					}
					written += int64(len(j.comp))
				}
				if j.out != nil {
					*j.out = j.comp[:0]
					c.outs.Put(j.out)
				}
			}
		}
		for _, pb := range taken {
			if pb.deferred {
				f.persistPart(pb) // O_DIRECT, as a cut plain part
			}
			f.area.mem.put(pb.buf)
		}
		f.mu.Lock()
		if err != nil {
			s._fail(err)
			f.mu.Unlock()
			return
		}
		if f.stream != s || s.ctx.Err() != nil {
			f.mu.Unlock() // abandoned meanwhile: cut nothing more
			return
		}
		for _, j := range jobs {
			z.frames = append(z.frames, j.frame)
			z.rawDone += j.n
		}
		z.compOff += written
		f._cutCompressed(s)
		f.mu.Unlock()
	}
}

// compressFrames reads and compresses jobs in parallel, each on one of the
// area's compression slots, and reports every frame to the policy.
func (f *File) compressFrames(s *stream, jobs []*frameJob, lvl zseek.Level, policy LevelSource) error {
	c := f.area.z
	var wg sync.WaitGroup
	for _, j := range jobs {
		select {
		case c.slots <- struct{}{}:
		case <-s.ctx.Done():
			wg.Wait()
			return s.ctx.Err()
		}
		wg.Add(1)
		go func() {
			defer func() { <-c.slots; wg.Done() }()
			bp := c.frames.Get().(*[]byte)
			defer c.frames.Put(bp)
			raw := (*bp)[:j.n]
			if j.src != nil {
				j.src.buf.copyOut(raw, j.off-j.src.start)
			} else if _, err := f.data.ReadAt(raw, j.off); err != nil {
				j.err = fmt.Errorf("read %s at %d from staging: %w", s.key, j.off, err)
				return
			}
			start := time.Now()
			op := c.outs.Get().(*[]byte)
			j.out = op
			j.comp, j.frame = c.enc.EncodeFrame((*op)[:0], raw, lvl)
			policy.Observe(int(lvl), j.n, int64(len(j.comp)), time.Since(start))
			j.lvl = lvl
			c.mu.Lock()
			c.nframe++
			sample := c.nframe%sampleEvery == 0
			c.mu.Unlock()
			if sample {
				if other, ok := policy.SampleLevel(); ok && other != int(lvl) {
					sp := c.outs.Get().(*[]byte)
					start := time.Now()
					out, _ := c.enc.EncodeFrame((*sp)[:0], raw, zseek.Level(other))
					policy.Observe(other, j.n, int64(len(out)), time.Since(start))
					*sp = out[:0]
					c.outs.Put(sp)
				}
			}
		}()
	}
	wg.Wait()
	for _, j := range jobs {
		if j.err != nil {
			return j.err
		}
	}
	return nil
}

// _finishCompressed appends the seek table: the object is complete.
func (f *File) _finishCompressed(s *stream) error {
	z := s.z
	table := zseek.AppendSeekTable(nil, z.frames)
	if _, err := z.file.WriteAt(table, z.compOff); err != nil {
		return fmt.Errorf("write seek table of %s: %w", f.key, err)
	}
	z.compOff += int64(len(table))
	z.done = true
	return nil
}

// _cutCompressed cuts parts from the side file: full parts as they fill,
// and the tail once the seek table is written.
func (f *File) _cutCompressed(s *stream) {
	z := s.z
	p := f.area.params.Params()
	limit := int64(f.area.cfg.StageAheadChunks + p.Concurrency)
	for s.err == nil {
		size := nextPartSize(p.PartSize, s.sealed)
		avail := z.compOff - s.sealed
		if z.done {
			if avail <= 0 {
				return
			}
			size = s.tailCut(avail, size, p.Concurrency)
		} else if avail < size {
			return
		}
		if int64(s.inFlight) >= limit {
			return
		}
		if !s.creating {
			// Created at the first part: by then a file copied in one go
			// is often closed, and its raw size can go in the metadata.
			if s.final {
				s.meta.RawSize = f.size
			}
			f._createUpload(s)
		}
		s.nextPart++
		s.inFlight++
		s.wg.Add(1)
		go f.uploadPart(s, s.nextPart, s.sealed, size, nil)
		s.sealed += size
	}
}

// compressWhole compresses the whole staging file into the side file (for
// an object sent with one PUT) and returns the side file's size and the
// object's metadata. Called without the file's mutex, on a closed file.
func (f *File) compressWhole(key string, policy LevelSource, size int64, meta s3backend.ObjectMeta) (*os.File, int64, s3backend.ObjectMeta, error) {
	side, err := os.OpenFile(f.zstdPath(), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, 0, meta, fmt.Errorf("compressed staging file of %s: %w", key, err)
	}
	c := f.area.z
	lvl := zseek.Level(policy.Level())
	// One compression slot for the whole file, taken before the buffers:
	// many small files queued at once then wait holding nothing.
	c.slots <- struct{}{}
	defer func() { <-c.slots }()
	bp, op := c.frames.Get().(*[]byte), c.outs.Get().(*[]byte)
	defer func() { c.frames.Put(bp); c.outs.Put(op) }()
	var (
		frames  []zseek.Frame
		written int64
	)
	fail := func(err error) (*os.File, int64, s3backend.ObjectMeta, error) {
		side.Close()
		os.Remove(side.Name())
		return nil, 0, meta, err
	}
	for off := int64(0); off < size; off += frameSize {
		n := min(frameSize, size-off)
		raw := (*bp)[:n]
		if _, err := f.data.ReadAt(raw, off); err != nil {
			return fail(fmt.Errorf("read %s at %d from staging: %w", key, off, err))
		}
		start := time.Now()
		out, fr := c.enc.EncodeFrame((*op)[:0], raw, lvl)
		policy.Observe(int(lvl), n, int64(fr.Comp), time.Since(start))
		*op = out[:0]
		if _, err := side.WriteAt(out, written); err != nil {
			return fail(fmt.Errorf("write compressed staging file of %s: %w", key, err))
		}
		written += int64(len(out))
		frames = append(frames, fr)
	}
	table := zseek.AppendSeekTable(nil, frames)
	if _, err := side.WriteAt(table, written); err != nil {
		return fail(fmt.Errorf("write compressed staging file of %s: %w", key, err))
	}
	written += int64(len(table))
	meta.ContentEncoding, meta.Format, meta.RawSize = "zstd", s3backend.FormatZstdSeekable, size
	return side, written, meta, nil
}

// closeSide closes and removes the side file of s, if any.
func (f *File) closeSide(s *stream) {
	if s != nil && s.z != nil {
		s.z.file.Close()
		os.Remove(s.z.path)
	}
}
