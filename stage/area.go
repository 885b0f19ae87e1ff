// Package stage owns the staging area: one local data file and one manifest
// per written file, the part cutter that streams sequential writes to S3
// multipart uploads while the writer is still writing, the write-back queue
// of closed files, and recovery of closed files after a crash.
//
// Staged bytes live on disk; parts are read from the staging file as they are
// sent, so RAM does not grow with part size or concurrency.
package stage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/adaptfs/adaptfs/adapt"
	"github.com/adaptfs/adaptfs/s3backend"
)

// ParamSource gives the upload parameters in force. The adaptive controller
// implements it; adapt.Fixed is the configured, unchanging source.
type ParamSource interface {
	Params() adapt.Params
}

// Observer hears about completed uploads (the file system uses it to keep
// its directory cache in step with the bucket).
type Observer interface {
	Uploaded(key string, info s3backend.ObjectInfo)
}

// Area is the staging area of one mount.
type Area struct {
	cfg    Config
	dir    string
	be     s3backend.Backend
	params ParamSource
	lim    *s3backend.Limiter
	mem    *memPool
	z      *compressor
	log    *slog.Logger
	obs    Observer

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	jobs   sync.WaitGroup

	mu      sync.Mutex
	files   map[string]*File // by target key
	changed chan struct{}    // closed and replaced on every state change (broadcast)
	// renameMu makes a rename's change of the map and of the file's key
	// one step for forget. Taken before a.mu and any file's mu.
	renameMu sync.Mutex
	seq      atomic.Uint64
	// away holds, by key, a file renamed away from that key while its
	// multipart stream, bound to the key at CreateMultipartUpload, still
	// runs: it completes there and is then moved (settle). Whatever takes
	// the key next must first end that (claim). A leaf lock.
	awayMu sync.Mutex
	away   map[string]*File
	// flushing counts running Flush calls. While it is non-zero a file
	// closed from now on skips the write-back delay: its release can reach
	// us after Flush kicked the queue (cp returns before FUSE's RELEASE).
	flushing atomic.Int32
	// aborting counts abandoned multipart uploads not yet aborted: Flush
	// waits for them too (an incomplete upload is billed storage).
	aborting atomic.Int32

	diskBytes     atomic.Int64 // bytes of staged files (the quota's measure)
	uploadedBytes atomic.Int64 // object bytes completed in S3 by this process
	uploadedFiles atomic.Int64
	// Of those, the objects stored compressed: raw bytes and bytes stored.
	compressedRaw    atomic.Int64
	compressedStored atomic.Int64
	compressedFiles  atomic.Int64
}

// New opens (creating it 0700 if needed) the staging directory.
func New(cfg Config, be s3backend.Backend, params ParamSource, log *slog.Logger) (*Area, error) {
	if cfg.StagingDir == "" {
		return nil, errors.New("staging_dir: not set")
	}
	if err := os.MkdirAll(cfg.StagingDir, 0o700); err != nil {
		return nil, fmt.Errorf("staging_dir %s: %w", cfg.StagingDir, err)
	}
	if err := os.Chmod(cfg.StagingDir, 0o700); err != nil {
		return nil, fmt.Errorf("staging_dir %s: %w", cfg.StagingDir, err)
	}
	probe, err := os.CreateTemp(cfg.StagingDir, ".probe-*")
	if err != nil {
		return nil, fmt.Errorf("staging_dir %s is not writable: %w", cfg.StagingDir, err)
	}
	probe.Close()
	os.Remove(probe.Name())

	ctx, cancel := context.WithCancel(context.Background())
	a := &Area{
		cfg:     cfg,
		dir:     cfg.StagingDir,
		be:      be,
		params:  params,
		lim:     s3backend.NewLimiter(params.Params().Concurrency),
		mem:     newMemPool(cfg.poolMemory()),
		z:       newCompressor(),
		log:     log,
		ctx:     ctx,
		cancel:  cancel,
		files:   make(map[string]*File),
		away:    make(map[string]*File),
		changed: make(chan struct{}),
	}
	a.seq.Store(uint64(time.Now().UnixNano()))
	return a, nil
}

// SetObserver installs o; call before any file is staged.
func (a *Area) SetObserver(o Observer) { a.obs = o }

// SetLevelSource installs the compression level policy for
// compression = "auto" (default: zstd's default level); call before any
// file is staged.
func (a *Area) SetLevelSource(l LevelSource) { a.z.levels = l }

// CompressionWorkers is how many frames are compressed at once.
func (a *Area) CompressionWorkers() int { return a.z.workers() }

// Dir returns the staging directory.
func (a *Area) Dir() string { return a.dir }

// Close stops every upload (staged data stays on disk for the next mount).
func (a *Area) Close() {
	a.cancel()
	a.jobs.Wait()
}

// snapshotFiles returns the staged files, for work done outside a.mu.
func (a *Area) snapshotFiles() []*File {
	a.mu.Lock()
	defer a.mu.Unlock()
	files := make([]*File, 0, len(a.files))
	for _, f := range a.files {
		files = append(files, f)
	}
	return files
}

// ParamsChanged applies new parameters at once: the limiter takes the new
// concurrency (waiting parts get the slots a rise frees) and every stream
// cuts the parts the new values allow. Without it a rise would wait for the
// next request to end, which on a slow link with large parts is long.
func (a *Area) ParamsChanged() {
	a.lim.SetLimit(a.params.Params().Concurrency)
	files := a.snapshotFiles()
	for _, f := range files {
		f.recut()
	}
}

// acquire takes an upload slot, applying the concurrency in force first.
func (a *Area) acquire(ctx context.Context) error {
	a.lim.SetLimit(a.params.Params().Concurrency)
	return a.lim.Acquire(ctx)
}

// release frees a slot. The concurrency in force is applied first: the
// waiters were queued under the old limit, and a lower one must hold from
// the next grant on, not from the next new request.
func (a *Area) release() {
	a.lim.SetLimit(a.params.Params().Concurrency)
	a.lim.Release()
}

func (a *Area) notify() {
	a.mu.Lock()
	close(a.changed)
	a.changed = make(chan struct{})
	a.mu.Unlock()
}

func (a *Area) newID() string {
	return fmt.Sprintf("%016x", a.seq.Add(1))
}

// Create stages a new, empty file for key, replacing any staged file with
// that key. The file starts with one open writer.
func (a *Area) Create(key string, meta s3backend.ObjectMeta) (*File, error) {
	f, err := a.newFile(key, meta)
	if err != nil {
		return nil, err
	}
	f.writers, f.handles = 1, 1
	// No manifest yet: the first close (or a multipart upload) writes it,
	// which saves a file creation per file on the small-file path. Recovery
	// treats a data file without a manifest as never closed.
	a.install(f)
	return f, nil
}

// Adopt stages a copy of an existing object for update: fill writes its
// current bytes into the staging file. The file starts with one open writer,
// and is uploaded whole after close (in-place updates cannot stream).
func (a *Area) Adopt(ctx context.Context, key string, meta s3backend.ObjectMeta, fill func(ctx context.Context, w *os.File) (int64, error)) (*File, error) {
	a.claim(key, nil) // before reading what is there
	f, err := a.newFile(key, meta)
	if err != nil {
		return nil, err
	}
	n, err := fill(ctx, f.data)
	if err != nil {
		f.discardFiles()
		return nil, fmt.Errorf("stage %s for update: %w", key, err)
	}
	f.size, f.contig, f.noStream = n, n, true
	f._countDisk(n)
	f.writers, f.handles = 1, 1
	if err := f.writeManifest(stateWriting); err != nil {
		f.discardFiles()
		return nil, err
	}
	a.install(f)
	return f, nil
}

func (a *Area) newFile(key string, meta s3backend.ObjectMeta) (*File, error) {
	id := a.newID()
	data, err := os.OpenFile(filepath.Join(a.dir, id+".data"), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("staging file for %s: %w", key, err)
	}
	f := &File{area: a, id: id, key: key, data: data, meta: meta, state: Writing}
	return f, nil
}

// install puts f in the map, dropping whatever was staged under its key.
func (a *Area) install(f *File) {
	a.mu.Lock()
	old := a.files[f.key]
	a.files[f.key] = f
	a.mu.Unlock()
	if old != nil {
		old.drop()
	}
	a.claim(f.key, f)
	a.notify()
}

// Claim is called before the caller writes an object at key by other means
// than a staged upload (the server-side copy of a rename): an upload still
// bound to key by a file renamed away from it must not land there later.
func (a *Area) Claim(key string) { a.claim(key, nil) }

// claim ends the stream of a file renamed away from key (see Area.away)
// for self, the file taking the key (nil for an object written by fs).
// A completion already sent is waited for: its settle moves the object
// away. Otherwise the stream is aborted and the file uploaded afresh under
// its new name: had it completed, its object would replace or (moved by
// settle) delete what self puts there.
func (a *Area) claim(key string, self *File) {
	a.awayMu.Lock()
	g := a.away[key]
	delete(a.away, key)
	a.awayMu.Unlock()
	if g == nil || g == self {
		return
	}
	for waited := false; ; waited = true {
		g.mu.Lock()
		// A commit phase first, even with the stream gone: it ends after
		// settle, which may still have to move the object off key.
		if commits := g._commits(); len(commits) > 0 && !waited {
			g.mu.Unlock()
			g.waitCommit(commits, key)
			continue
		}
		s := g.stream
		if s == nil || s.key != key || g.key == key || g.dropped {
			g.mu.Unlock()
			return
		}
		restart := g.job != nil
		g._cancelUpload()
		commits := g._commits() // after the cancel: see job.commit
		g._abandonStream()
		g.noStream = false // new content under the new name: it may stream again
		if restart {
			g._schedule()
			g.job.start() // it was due already
		}
		newKey := g.key
		g.mu.Unlock()
		a.log.Info("an upload bound to a name taken again restarts under its new name",
			"old_key", key, "key", newKey)
		g.waitCommit(commits, key)
		return
	}
}

// setAway records g as the file whose stream is bound to key while its
// name is elsewhere.
func (a *Area) setAway(key string, g *File) {
	a.awayMu.Lock()
	defer a.awayMu.Unlock()
	a.away[key] = g
}

// clearAway forgets g's entry for key, if it is still g's.
func (a *Area) clearAway(key string, g *File) {
	a.awayMu.Lock()
	defer a.awayMu.Unlock()
	if a.away[key] == g {
		delete(a.away, key)
	}
}

// Get returns the staged file for key, or nil.
func (a *Area) Get(key string) *File {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.files[key]
}

// Remove drops the staged file for key (unlink): its upload is cancelled and
// aborted, its staging files deleted. It reports whether one existed.
func (a *Area) Remove(key string) bool {
	a.mu.Lock()
	f := a.files[key]
	delete(a.files, key)
	a.mu.Unlock()
	if f == nil {
		return false
	}
	f.drop()
	a.notify()
	return true
}

// Rename retargets the staged file at oldKey to newKey, replacing any staged
// file at newKey; staged is false if there is none (fs then copies the
// object). An upload already under way completes at its key and is then
// moved server-side. inS3 reports that the object at oldKey holds the
// file's last closed content (uploaded, nothing closed since): the caller
// must copy it to newKey before deleting oldKey, or it exists under
// neither name until the next close.
func (a *Area) Rename(oldKey, newKey string) (staged, inS3 bool) {
	a.mu.Lock()
	f, victim := a.files[oldKey], a.files[newKey]
	if f == nil {
		a.mu.Unlock()
		return false, false
	}
	if victim != nil && victim != f {
		delete(a.files, newKey)
	}
	a.mu.Unlock()
	if victim != nil && victim != f {
		// First: its commit in flight must land before ours can.
		victim.drop()
	}
	a.claim(newKey, f)
	// The map and f.key change together for forget, which may run when
	// f's own upload ends meanwhile.
	a.renameMu.Lock()
	a.mu.Lock()
	if a.files[oldKey] != f {
		a.mu.Unlock()
		a.renameMu.Unlock()
		return false, false // uploaded and forgotten meanwhile: an object now
	}
	delete(a.files, oldKey)
	a.files[newKey] = f
	a.mu.Unlock()
	commits := f.retarget(newKey)
	a.renameMu.Unlock()
	f.waitCommit(commits, oldKey)
	a.notify()
	// After the wait: an upload that settled at oldKey before the rename
	// left its object there; the caller moves it.
	return true, f.moveObject(oldKey, newKey)
}

// RenamePrefix retargets every staged file under oldPrefix (a directory key
// ending in "/") to newPrefix. It returns how many moved.
func (a *Area) RenamePrefix(oldPrefix, newPrefix string) int {
	a.mu.Lock()
	var keys []string
	for k := range a.files {
		if strings.HasPrefix(k, oldPrefix) {
			keys = append(keys, k)
		}
	}
	a.mu.Unlock()
	for _, k := range keys {
		a.Rename(k, newPrefix+strings.TrimPrefix(k, oldPrefix))
	}
	return len(keys)
}

// Children lists the staged files directly under prefix ("" or ending in
// "/") and the names of subdirectories implied by deeper staged files.
func (a *Area) Children(prefix string) (files []*File, dirs []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	seen := map[string]bool{}
	for k, f := range a.files {
		rest, ok := strings.CutPrefix(k, prefix)
		if !ok || rest == "" {
			continue
		}
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			if d := rest[:i]; !seen[d] {
				seen[d] = true
				dirs = append(dirs, d)
			}
			continue
		}
		files = append(files, f)
	}
	sort.Strings(dirs)
	return files, dirs
}

// HasPrefix reports whether any staged file lives under prefix.
func (a *Area) HasPrefix(prefix string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for k := range a.files {
		if strings.HasPrefix(k, prefix) {
			return true
		}
	}
	return false
}

// forget removes f from the map and deletes its staging files once it is
// uploaded and no handle holds it.
func (a *Area) forget(f *File) {
	a.renameMu.Lock() // f.key and the map agree (Rename)
	defer a.renameMu.Unlock()
	f.mu.Lock()
	if f.handles > 0 || f.state != Uploaded || f.dropped {
		f.mu.Unlock() // reopened meanwhile, or already gone
		return
	}
	f.dropped = true
	key := f.key
	f.mu.Unlock()
	a.mu.Lock()
	if a.files[key] == f {
		delete(a.files, key)
	}
	a.mu.Unlock()
	f.discardFiles()
	a.notify()
}

// ErrStagingFull is returned (wrapped, with ENOSPC) by a write that found
// the staging quota full for staging_full_wait.
var ErrStagingFull = errors.New("staging area full")

// reserve waits until growing the staged bytes by n stays within the
// quota, for at most staging_full_wait; then it fails with ENOSPC. Closed
// files upload meanwhile (their write-back delay is skipped) and free
// their space once complete.
func (a *Area) reserve(ctx context.Context, key string, n int64) error {
	limit := int64(a.cfg.MaxStagingDiskMB) << 20
	if limit <= 0 || n <= 0 || a.diskBytes.Load()+n <= limit {
		return nil
	}
	a.log.Warn("staging area full: the write waits for uploads to free space",
		"key", key, "staged_bytes", a.diskBytes.Load(), "max_staging_disk_mb", a.cfg.MaxStagingDiskMB)
	a.Retry()
	deadline := time.NewTimer(a.cfg.StagingFullWait)
	defer deadline.Stop()
	for a.diskBytes.Load()+n > limit {
		a.mu.Lock()
		ch := a.changed
		a.mu.Unlock()
		select {
		case <-ch:
		case <-time.After(100 * time.Millisecond):
		case <-deadline.C:
			a.log.Error("staging area stayed full: write refused with ENOSPC; raise max_staging_disk_mb or wait for uploads",
				"key", key, "staged_bytes", a.diskBytes.Load(), "max_staging_disk_mb", a.cfg.MaxStagingDiskMB)
			return fmt.Errorf("write %s: %w (max_staging_disk_mb = %d): %w", key, ErrStagingFull, a.cfg.MaxStagingDiskMB, syscall.ENOSPC)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// RequestsInFlight is the number of upload requests holding a slot.
func (a *Area) RequestsInFlight() int { return a.lim.InUse() }

// Pending describes what is still to be uploaded, and the upload parameters
// in force (the benchmarks sample it every second).
type Pending struct {
	Files         int      `json:"pending_files"`
	Bytes         int64    `json:"pending_bytes"` // object bytes not yet confirmed in S3
	UploadedBytes int64    `json:"uploaded_bytes"`
	UploadedFiles int64    `json:"uploaded_files"`
	Failed        []string `json:"failed,omitempty"` // "key: reason"
	// Aborting: multipart uploads given up (the content changed) whose
	// abort has not answered yet; sync waits for them too.
	Aborting int `json:"aborting_uploads,omitempty"`

	PartSizeBytes    int64 `json:"part_size_bytes"`
	Concurrency      int   `json:"concurrency"`
	RequestsInFlight int   `json:"requests_in_flight"`
	MemoryInUseBytes int64 `json:"memory_in_use_bytes"`

	// Objects completed compressed: how many, their raw and stored bytes.
	CompressedFiles       int64 `json:"compressed_files"`
	CompressedRawBytes    int64 `json:"compressed_raw_bytes"`
	CompressedStoredBytes int64 `json:"compressed_stored_bytes"`
}

// Pending returns a snapshot of the queue. A file counts as pending from the
// moment it is closed (flush) until it is complete in S3.
func (a *Area) Pending() Pending {
	files := a.snapshotFiles()
	params := a.params.Params()
	p := Pending{
		UploadedBytes: a.uploadedBytes.Load(), UploadedFiles: a.uploadedFiles.Load(),
		PartSizeBytes: params.PartSize, Concurrency: params.Concurrency,
		RequestsInFlight: a.lim.InUse(), MemoryInUseBytes: a.mem.inUse(),
		CompressedFiles: a.compressedFiles.Load(), CompressedRawBytes: a.compressedRaw.Load(),
		CompressedStoredBytes: a.compressedStored.Load(),
		Aborting:              int(a.aborting.Load()),
	}
	for _, f := range files {
		st := f.Stat()
		switch {
		case st.State == Failed:
			p.Failed = append(p.Failed, fmt.Sprintf("%s: %v", st.Key, st.Err))
		case st.State == Queued || st.State == Uploading || st.closedButOpen:
			p.Files++
			p.Bytes += st.Size - st.UploadedBytes
		}
	}
	sort.Strings(p.Failed)
	return p
}

// Upload is one staged file that is not yet complete in S3.
type Upload struct {
	Key           string `json:"key"`
	SizeBytes     int64  `json:"size_bytes"`
	UploadedBytes int64  `json:"uploaded_bytes"` // confirmed by S3 (completed parts)
	State         string `json:"state"`          // writing, queued, uploading, failed
	Error         string `json:"error,omitempty"`
}

// Uploads lists the staged files not yet complete in S3, by key.
func (a *Area) Uploads() []Upload {
	var out []Upload
	for _, f := range a.snapshotFiles() {
		st := f.Stat()
		if st.State == Uploaded {
			continue
		}
		u := Upload{Key: st.Key, SizeBytes: st.Size, UploadedBytes: st.UploadedBytes, State: st.State.String()}
		if st.Err != nil {
			u.Error = st.Err.Error()
		}
		out = append(out, u)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// Flush starts every queued upload now (skipping the write-back delay),
// retries failed ones, and waits until nothing closed is left to upload.
// It returns an error naming every file whose upload failed.
func (a *Area) Flush(ctx context.Context) error {
	a.flushing.Add(1)
	defer a.flushing.Add(-1)
	a.Retry()
	for {
		a.mu.Lock()
		ch := a.changed
		a.mu.Unlock()
		p := a.Pending()
		if p.Files == 0 && p.Aborting == 0 {
			if len(p.Failed) > 0 {
				return fmt.Errorf("%d upload(s) failed: %s", len(p.Failed), strings.Join(p.Failed, "; "))
			}
			return nil
		}
		select {
		case <-ch:
		case <-time.After(200 * time.Millisecond): // closed-but-open files age out
		case <-ctx.Done():
			return fmt.Errorf("sync: %w", ctx.Err())
		}
	}
}

// StartQueued starts queued uploads now (skipping the write-back delay),
// without waiting.
func (a *Area) StartQueued() {
	for _, f := range a.snapshotFiles() {
		f.kick(false)
	}
}

// Retry starts queued uploads now (skipping the write-back delay) and
// retries failed ones, without waiting.
func (a *Area) Retry() {
	files := a.snapshotFiles()
	for _, f := range files {
		f.kick(true)
	}
}
