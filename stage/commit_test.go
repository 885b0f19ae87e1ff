package stage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/adaptfs/adaptfs/adapt"
	"github.com/adaptfs/adaptfs/s3backend"
)

// lateBackend is a server that commits a PutObject whose body it has
// received even after the client gave up: the first Put is slow to
// answer and is committed whatever the context says.
type lateBackend struct {
	*memBackend
	slow    time.Duration
	fail    bool // the first Put fails (a 500) instead of committing
	puts    atomic.Int32
	entered chan struct{} // closed when the first Put arrives
}

func (b *lateBackend) Put(ctx context.Context, key string, body io.ReadSeeker, size int64, meta s3backend.ObjectMeta) (string, error) {
	data, err := io.ReadAll(body)
	if err != nil {
		return "", err
	}
	if b.puts.Add(1) == 1 {
		close(b.entered)
		time.Sleep(b.slow) // the server is busy writing; the client's ctx does not stop it
		if b.fail {
			return "", errors.New("500 InternalError")
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.objects[key] = data
	b.metas[key] = meta
	if err := ctx.Err(); err != nil {
		return "", err // committed, but the client no longer hears the answer
	}
	return "etag", nil
}

func (b *lateBackend) Delete(ctx context.Context, key string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.objects, key)
	return nil
}

func (b *lateBackend) Copy(ctx context.Context, src, dst string, meta *s3backend.ObjectMeta) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.objects[dst] = b.objects[src]
	return nil
}

func (b *lateBackend) object(key string) ([]byte, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	o, ok := b.objects[key]
	return o, ok
}

// TestCommitInFlight: the PutObject of a small file may be committed by the
// server after the client cancelled it. An unlink (Remove, then the
// DeleteObject fs sends) must still leave no object, a rename must find
// the object under the new name only once it returns, and a newer content
// uploaded while the older Put is in flight must be the one that stays.
func TestCommitInFlight(t *testing.T) {
	for _, tt := range []struct {
		name  string
		after func(t *testing.T, a *Area, be *lateBackend, f *File) []byte // the object expected, nil for none
	}{
		{"unlink", func(t *testing.T, a *Area, be *lateBackend, f *File) []byte {
			a.Remove("k")
			be.Delete(t.Context(), "k")
			return nil
		}},
		{"rename", func(t *testing.T, a *Area, be *lateBackend, f *File) []byte {
			a.Rename("k", "k2")
			be.Delete(t.Context(), "k") // fs deletes an older version of the old name
			if got, ok := be.object("k2"); !ok || string(got) != "first version, a bit longer" {
				t.Fatalf("when the rename returned, k2 held %q (%v)", got, ok)
			}
			return nil
		}},
		{"rewrite twice", func(t *testing.T, a *Area, be *lateBackend, f *File) []byte {
			// The second rewrite cancels the first one's job, which was
			// waiting for the first Put: the third must wait for it too.
			return rewrite(t, a, f, "second version", "third")
		}},
		{"rewrite", func(t *testing.T, a *Area, be *lateBackend, f *File) []byte {
			return rewrite(t, a, f, "second version")
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			be := &lateBackend{memBackend: newMemBackend(), slow: 300 * time.Millisecond, entered: make(chan struct{})}
			a := newTestArea(t, be, adapt.Fixed{P: adapt.Params{PartSize: 8 * MiB, Concurrency: 2}}, 64)
			f, err := a.Create("k", s3backend.ObjectMeta{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteAt([]byte("first version, a bit longer"), 0); err != nil {
				t.Fatal(err)
			}
			f.Flush()
			f.Release(true)
			<-be.entered
			want := tt.after(t, a, be, f)
			time.Sleep(2 * be.slow) // anything still in flight lands
			got, ok := be.object("k")
			switch {
			case want == nil && ok:
				t.Fatalf("the bucket holds %q after the unlink", got)
			case want != nil && !bytes.Equal(got, want):
				t.Fatalf("the bucket holds %q, want %q", got, want)
			}
		})
	}
}

// TestRenameWaitsForTheAttemptOnly: a rename waits for the commit attempt
// in flight, not for the retry after it fails (the backoff alone is 2 s or
// more): the kernel holds both directories locked meanwhile.
func TestRenameWaitsForTheAttemptOnly(t *testing.T) {
	be := &lateBackend{memBackend: newMemBackend(), slow: 300 * time.Millisecond, fail: true, entered: make(chan struct{})}
	a := newTestArea(t, be, adapt.Fixed{P: adapt.Params{PartSize: 8 * MiB, Concurrency: 2}}, 64)
	f, err := a.Create("k", s3backend.ObjectMeta{})
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("content"), 0)
	f.Flush()
	f.Release(true)
	<-be.entered
	start := time.Now()
	a.Rename("k", "k2")
	if took := time.Since(start); took > 1500*time.Millisecond {
		t.Fatalf("the rename took %v: it waited for the retry, not only the failed attempt", took)
	}
	if err := a.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got, ok := be.object("k2"); !ok || string(got) != "content" {
		t.Fatalf("k2 holds %q (%v) after the retry", got, ok)
	}
}

// rewrite opens f with O_TRUNC, writes, and closes it once per version,
// waits for the uploads and returns the last version.
func rewrite(t *testing.T, a *Area, f *File, versions ...string) []byte {
	t.Helper()
	var last []byte
	for _, v := range versions {
		if err := f.Open(true, true); err != nil {
			t.Fatal(err)
		}
		last = []byte(v)
		if _, err := f.WriteAt(last, 0); err != nil {
			t.Fatal(err)
		}
		f.Flush()
		f.Release(true)
	}
	if err := a.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	return last
}

// renameAsFS renames as fs.renameFile does: the staged file is retargeted,
// the object copied if it holds the last closed content, the old key
// deleted.
func renameAsFS(t *testing.T, a *Area, be *lateBackend, from, to string) {
	t.Helper()
	staged, inS3 := a.Rename(from, to)
	if !staged || inS3 {
		if err := be.Copy(t.Context(), from, to, nil); err != nil {
			t.Fatal(err)
		}
	}
	be.Delete(t.Context(), from)
}

// uploadedHeld creates key with content, closes it and waits for its
// upload while a reader handle keeps it staged.
func uploadedHeld(t *testing.T, a *Area, key, content string) *File {
	t.Helper()
	f, err := a.Create(key, s3backend.ObjectMeta{})
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte(content), 0)
	f.Flush()
	f.Open(false, false)
	f.Release(true)
	if err := a.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestRenameUploadedStaged: renames of a file whose content is in S3 but
// which is still staged (a reader, or a writer, holds it), and a rename
// over a file whose upload is being committed, leave the content under the
// new name, also across a crash.
func TestRenameUploadedStaged(t *testing.T) {
	t.Run("held by a reader", func(t *testing.T) {
		be := &lateBackend{memBackend: newMemBackend(), entered: make(chan struct{})}
		a := newTestArea(t, be, adapt.Fixed{P: adapt.Params{PartSize: 8 * MiB, Concurrency: 2}}, 64)
		f := uploadedHeld(t, a, "k", "content")
		renameAsFS(t, a, be, "k", "k2")
		f.Release(false)
		a.Flush(t.Context())
		if got, ok := be.object("k2"); !ok || string(got) != "content" {
			t.Fatalf("k2 holds %q (%v)", got, ok)
		}
	})
	t.Run("held by a reader, renamed twice", func(t *testing.T) {
		be := &lateBackend{memBackend: newMemBackend(), entered: make(chan struct{})}
		a := newTestArea(t, be, adapt.Fixed{P: adapt.Params{PartSize: 8 * MiB, Concurrency: 2}}, 64)
		f := uploadedHeld(t, a, "k", "content")
		renameAsFS(t, a, be, "k", "k2")
		renameAsFS(t, a, be, "k2", "k3") // the object is at k2 now
		f.Release(false)
		a.Flush(t.Context())
		if got, ok := be.object("k3"); !ok || string(got) != "content" {
			t.Fatalf("k3 holds %q (%v)", got, ok)
		}
	})
	t.Run("reopened for writing, then a crash", func(t *testing.T) {
		be := &lateBackend{memBackend: newMemBackend(), entered: make(chan struct{})}
		cfg := DefaultConfig()
		cfg.StagingDir, cfg.WriteBackDelay = t.TempDir(), 0
		p := adapt.Fixed{P: adapt.Params{PartSize: 8 * MiB, Concurrency: 2}}
		a, _ := New(cfg, be, p, slog.New(slog.DiscardHandler))
		t.Cleanup(a.Close)
		f := uploadedHeld(t, a, "k", "content")
		if err := f.Open(true, false); err != nil { // an append log...
			t.Fatal(err)
		}
		renameAsFS(t, a, be, "k", "k2")                        // ...rotated
		b, _ := New(cfg, be, p, slog.New(slog.DiscardHandler)) // the crash: a new area on the same staging
		t.Cleanup(b.Close)
		if _, err := b.Recover(t.Context()); err != nil {
			t.Fatal(err)
		}
		b.Flush(t.Context())
		if got, ok := be.object("k2"); !ok || string(got) != "content" {
			t.Fatalf("after the crash k2 holds %q (%v)", got, ok)
		}
	})
	t.Run("over a file being committed", func(t *testing.T) {
		be := &lateBackend{memBackend: newMemBackend(), slow: 500 * time.Millisecond, entered: make(chan struct{})}
		cfg := DefaultConfig()
		cfg.StagingDir, cfg.WriteBackDelay = t.TempDir(), 100*time.Millisecond
		a, _ := New(cfg, be, adapt.Fixed{P: adapt.Params{PartSize: 8 * MiB, Concurrency: 2}}, slog.New(slog.DiscardHandler))
		t.Cleanup(a.Close)
		v, _ := a.Create("k2", s3backend.ObjectMeta{})
		v.WriteAt([]byte("victim"), 0)
		v.Flush()
		v.Release(true)
		a.StartQueued()
		<-be.entered
		f, _ := a.Create("k", s3backend.ObjectMeta{})
		f.WriteAt([]byte("content"), 0)
		f.Flush()
		f.Release(true)
		renameAsFS(t, a, be, "k", "k2")
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		if err := a.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if got, ok := be.object("k2"); !ok || string(got) != "content" {
			t.Fatalf("k2 holds %q (%v)", got, ok)
		}
	})
}

// holdingBackend holds every UploadPart until parts is closed, and every
// CompleteMultipart until complete is closed, and remembers aborted
// uploads: completing one fails, as on S3.
type holdingBackend struct {
	*memBackend
	parts, complete chan struct{}
	completing      chan struct{} // closed when the first CompleteMultipart arrives
	once            sync.Once
	aborted         sync.Map
	openParts       sync.Once
	openComplete    sync.Once
}

func (b *holdingBackend) releaseParts()    { b.openParts.Do(func() { close(b.parts) }) }
func (b *holdingBackend) releaseComplete() { b.openComplete.Do(func() { close(b.complete) }) }

func (b *holdingBackend) UploadPart(ctx context.Context, key, id string, n int32, body io.ReadSeeker, size int64) (s3backend.CompletedPart, error) {
	select {
	case <-b.parts:
	case <-ctx.Done():
		return s3backend.CompletedPart{}, ctx.Err()
	}
	return b.memBackend.UploadPart(ctx, key, id, n, body, size)
}

func (b *holdingBackend) CompleteMultipart(ctx context.Context, key, id string, parts []s3backend.CompletedPart) (string, error) {
	b.once.Do(func() { close(b.completing) })
	if _, gone := b.aborted.Load(id); gone {
		return "", fmt.Errorf("complete %s: NoSuchUpload", key)
	}
	// The server has it: busy, it commits whatever the client or a later
	// abort does.
	<-b.complete
	return b.memBackend.CompleteMultipart(ctx, key, id, parts)
}

func (b *holdingBackend) AbortMultipart(ctx context.Context, key, id string) error {
	b.aborted.Store(id, true)
	return nil
}

func (b *holdingBackend) Copy(ctx context.Context, src, dst string, meta *s3backend.ObjectMeta) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	o, ok := b.objects[src]
	if !ok {
		return fmt.Errorf("copy %s: NoSuchKey", src)
	}
	b.objects[dst] = o
	return nil
}

func (b *holdingBackend) Delete(ctx context.Context, key string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.objects, key)
	return nil
}

// TestNameTakenDuringStream: a file renamed while its multipart upload,
// bound to the old key, still runs, then a new file created under the old
// name (a log rotated, then reopened). The old upload used to complete at
// the old key afterwards and be moved away by settle, deleting the new
// file's object (found by TestReference).
func TestNameTakenDuringStream(t *testing.T) {
	for _, tt := range []struct {
		name       string
		completing bool // the old upload is completing when the name is taken
		reopen     bool // and the renamed file is reopened for an append first
		open       bool // the renamed file is still being written (no upload queued)
	}{
		{name: "parts in flight"},
		{name: "completion in flight", completing: true},
		{name: "reopened while completing", completing: true, reopen: true},
		{name: "writer still open", open: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			be := newHoldingBackend()
			a := newTestArea(t, be, adapt.Fixed{P: adapt.Params{PartSize: 5 * MiB, Concurrency: 2}}, 64)
			t.Cleanup(func() { be.releaseParts(); be.releaseComplete() }) // before a.Close
			old := make([]byte, 12*MiB)
			rand.NewChaCha8([32]byte{3}).Read(old)
			want := old
			f, _ := a.Create("Log", s3backend.ObjectMeta{})
			if _, err := f.WriteAt(old, 0); err != nil {
				t.Fatal(err)
			}
			if !tt.open {
				f.Flush()
				f.Release(true)
			}
			if staged, _ := a.Rename("Log", "Log.1"); !staged {
				t.Fatal("not staged")
			}
			if tt.completing {
				be.releaseParts()
				<-be.completing
			}
			if tt.reopen {
				if err := f.Open(true, false); err != nil {
					t.Fatal(err)
				}
			}
			taken := make(chan struct{})
			go func() {
				defer close(taken)
				g, err := a.Create("Log", s3backend.ObjectMeta{})
				if err != nil {
					t.Error(err)
					return
				}
				g.WriteAt([]byte("new"), 0)
				g.Flush()
				g.Release(true)
			}()
			if tt.completing {
				select {
				case <-taken:
					t.Error("the create did not wait for the old upload's completion")
				case <-time.After(200 * time.Millisecond):
				}
			} else {
				<-taken
				be.releaseParts()
			}
			be.releaseComplete()
			<-taken
			if tt.reopen || tt.open {
				f.WriteAt([]byte("x"), int64(len(old)))
				want = append(slices.Clip(old), 'x')
				f.Flush()
				f.Release(true)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			if err := a.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			be.mu.Lock()
			defer be.mu.Unlock()
			if got := be.objects["Log"]; string(got) != "new" {
				t.Errorf("Log holds %d bytes, want the new file's 3", len(got))
			}
			if got := be.objects["Log.1"]; !bytes.Equal(got, want) {
				t.Errorf("Log.1 holds %d bytes, want the renamed file's %d", len(got), len(want))
			}
		})
	}
}

func newHoldingBackend() *holdingBackend {
	return &holdingBackend{memBackend: newMemBackend(), parts: make(chan struct{}), complete: make(chan struct{}), completing: make(chan struct{})}
}

// TestSyncSurvivesClaim: an fsync of a renamed file still being written
// (a logger's) while its old name is taken: the claim restarts its upload,
// and the fsync waits for the new one instead of failing (EINTR).
func TestSyncSurvivesClaim(t *testing.T) {
	be := newHoldingBackend()
	a := newTestArea(t, be, adapt.Fixed{P: adapt.Params{PartSize: 5 * MiB, Concurrency: 2}}, 64)
	t.Cleanup(func() { be.releaseParts(); be.releaseComplete() })
	data := make([]byte, 12*MiB)
	rand.NewChaCha8([32]byte{4}).Read(data)
	f, _ := a.Create("Log", s3backend.ObjectMeta{})
	f.WriteAt(data, 0)
	a.Rename("Log", "Log.1")
	synced := make(chan error, 1)
	go func() { synced <- f.Sync(t.Context()) }()
	// The fsync's upload is waiting for its parts when the name is taken.
	waitFor(t, func() bool { return f.Stat().State == Uploading })
	g, _ := a.Create("Log", s3backend.ObjectMeta{})
	g.Flush()
	g.Release(true)
	be.releaseParts()
	be.releaseComplete()
	if err := <-synced; err != nil {
		t.Fatalf("fsync of Log.1: %v", err)
	}
	be.mu.Lock()
	defer be.mu.Unlock()
	if got := be.objects["Log.1"]; !bytes.Equal(got, data) {
		t.Errorf("Log.1 holds %d bytes after the fsync, want %d", len(got), len(data))
	}
}

// slowCopyBackend holds every Copy until release is closed.
type slowCopyBackend struct {
	*holdingBackend
	copying chan struct{} // receives when a Copy arrives
	release chan struct{}
}

func (b *slowCopyBackend) Copy(ctx context.Context, src, dst string, meta *s3backend.ObjectMeta) error {
	select {
	case b.copying <- struct{}{}:
	default:
	}
	<-b.release
	return b.holdingBackend.Copy(ctx, src, dst, meta)
}

// TestRenameWhileSettling: a rename that comes after settle chose the key
// it moves the object to (here: a chmod's in-place copy at the old key),
// before the upload is recorded. The rename must report the object still
// at the old key, or fs deletes it and the content is under neither name.
func TestRenameWhileSettling(t *testing.T) {
	hb := newHoldingBackend()
	hb.releaseParts()
	hb.releaseComplete()
	be := &slowCopyBackend{holdingBackend: hb, copying: make(chan struct{}, 1), release: make(chan struct{})}
	a := newTestArea(t, be, adapt.Fixed{P: adapt.Params{PartSize: 5 * MiB, Concurrency: 2}}, 64)
	t.Cleanup(func() {
		select {
		case <-be.release:
		default:
			close(be.release)
		}
	})
	data := make([]byte, 12*MiB)
	rand.NewChaCha8([32]byte{5}).Read(data)
	f, _ := a.Create("Log", s3backend.ObjectMeta{})
	f.WriteAt(data, 0)
	f.SetMeta(func(m *s3backend.ObjectMeta) { m.Mode = 0o600 }) // after the upload was created
	f.Flush()
	f.Release(true)
	<-be.copying // settle's copy in place, for the mode
	renamed := make(chan struct{})
	var staged, inS3 bool
	go func() {
		defer close(renamed)
		staged, inS3 = a.Rename("Log", "Log.1")
	}()
	time.Sleep(50 * time.Millisecond) // the rename waits for the commit phase
	close(be.release)
	<-renamed
	if staged && inS3 {
		// As fs does: the object moves with the name.
		if err := hb.Copy(t.Context(), "Log", "Log.1", nil); err != nil {
			t.Fatal(err)
		}
	}
	hb.Delete(t.Context(), "Log")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	hb.mu.Lock()
	defer hb.mu.Unlock()
	if got := hb.objects["Log.1"]; !bytes.Equal(got, data) {
		t.Errorf("Log.1 holds %d bytes, want %d (staged %v, reported in S3 at the old key %v)", len(got), len(data), staged, inS3)
	}
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10 s")
		}
	}
}

// slowAbortBackend answers AbortMultipart after a delay and counts the
// aborts that answered.
type slowAbortBackend struct {
	*holdingBackend
	aborted atomic.Int32
}

func (b *slowAbortBackend) AbortMultipart(ctx context.Context, key, id string) error {
	time.Sleep(300 * time.Millisecond)
	b.aborted.Add(1)
	return nil
}

// TestFlushWaitsForAborts: a file reopened for an append after close gives
// up its multipart upload (its last part was cut short). Sync must not
// return before that upload is aborted: one left incomplete is billed
// storage (found by TestReference: "multipart uploads left after sync").
func TestFlushWaitsForAborts(t *testing.T) {
	be := &slowAbortBackend{holdingBackend: newHoldingBackend()}
	be.releaseComplete()
	a := newTestArea(t, be, adapt.Fixed{P: adapt.Params{PartSize: 5 * MiB, Concurrency: 2}}, 64)
	t.Cleanup(be.releaseParts)
	data := make([]byte, 12*MiB)
	rand.NewChaCha8([32]byte{6}).Read(data) // incompressible: a plain stream
	f, _ := a.Create("b", s3backend.ObjectMeta{})
	f.WriteAt(data, 0)
	f.Flush()
	f.Release(true)
	// The upload cut the last part short: the stream can take nothing more.
	waitFor(t, func() bool { return f.Stat().State == Uploading })
	if err := f.Open(true, false); err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("tail"), 12*MiB)
	f.Flush()
	f.Release(true)
	be.releaseParts()
	if err := a.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := be.aborted.Load(); n != 1 {
		t.Fatalf("sync returned with %d aborts answered, want 1", n)
	}
}

// midBodyBackend's first Put reads one byte of its body, then waits for
// resume before reading the rest (a slow link).
type midBodyBackend struct {
	*memBackend
	sending, resume chan struct{}
	once            sync.Once
}

func (b *midBodyBackend) Put(ctx context.Context, key string, body io.ReadSeeker, size int64, meta s3backend.ObjectMeta) (string, error) {
	first := false
	b.once.Do(func() { first = true })
	if first {
		one := make([]byte, 1)
		if _, err := io.ReadFull(body, one); err != nil {
			return "", err
		}
		close(b.sending)
		<-b.resume
		body.Seek(0, io.SeekStart)
	}
	return b.memBackend.Put(ctx, key, body, size, meta)
}

// TestPutSendsTheClosedContent: a file reopened and changed in place while
// its PutObject is on the wire. The Put cannot be cancelled once sent
// (its commit phase), so it must send the content as closed; it read the
// staging file as it went and stored bytes that were never closed (found
// by TestReference: "read b: first difference at 3" after kill -9).
func TestPutSendsTheClosedContent(t *testing.T) {
	for _, tt := range []struct {
		name        string
		size, memMB int
	}{
		{"small file", 20 << 10, 64},
		{"in a RAM buffer", 3 << 20, 64},
		{"no RAM left: a side file", 3 << 20, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			size := tt.size
			be := &midBodyBackend{memBackend: newMemBackend(), sending: make(chan struct{}), resume: make(chan struct{})}
			a := newTestArea(t, be, adapt.Fixed{P: adapt.Params{PartSize: 8 * MiB, Concurrency: 2}}, tt.memMB)
			t.Cleanup(func() {
				select {
				case <-be.resume:
				default:
					close(be.resume)
				}
			})
			closed := make([]byte, size)
			rand.NewChaCha8([32]byte{7}).Read(closed)
			f, _ := a.Create("b", s3backend.ObjectMeta{})
			f.WriteAt(closed, 0)
			f.Flush()
			f.Release(true)
			<-be.sending
			if err := f.Open(true, false); err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteAt([]byte("changed, never closed"), 3); err != nil {
				t.Fatal(err)
			}
			close(be.resume)
			waitFor(t, func() bool { be.mu.Lock(); defer be.mu.Unlock(); _, ok := be.objects["b"]; return ok })
			be.mu.Lock()
			got := be.objects["b"]
			be.mu.Unlock()
			if !bytes.Equal(got, closed) {
				i := 0
				for i < min(len(got), len(closed)) && got[i] == closed[i] {
					i++
				}
				t.Fatalf("the object differs from the closed content at byte %d", i)
			}
		})
	}
}

// TestSyncAcrossChmod: an fsync whose upload is superseded by a chmod (the
// upload is redone with the new mode) reports the outcome of the upload
// that ran, not the cancellation of the first (EINTR).
func TestSyncAcrossChmod(t *testing.T) {
	be := &lateBackend{memBackend: newMemBackend(), entered: make(chan struct{})}
	a := newTestArea(t, be, adapt.Fixed{P: adapt.Params{PartSize: 64 * MiB, Concurrency: 4}}, 1)
	data := make([]byte, 4*MiB) // no RAM buffer: a side-file snapshot, a wide window
	rand.NewChaCha8([32]byte{8}).Read(data)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 200 {
		key := fmt.Sprint("k", i)
		f, _ := a.Create(key, s3backend.ObjectMeta{})
		f.WriteAt(data, 0)
		f.Open(false, false)
		f.Flush()
		f.Release(true)
		synced := make(chan error, 1)
		go func() { synced <- f.Sync(t.Context()) }()
		time.Sleep(time.Duration(r.IntN(3000)) * time.Microsecond)
		f.SetMeta(func(m *s3backend.ObjectMeta) { m.Mode = 0o600 })
		if err := <-synced; err != nil {
			t.Fatalf("round %d: fsync: %v (state %v)", i, err, f.Stat().State)
		}
		f.Release(false)
		if err := a.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
		if got, _ := be.object(key); !bytes.Equal(got, data) {
			t.Fatalf("round %d: the object has %d bytes, want %d", i, len(got), len(data))
		}
	}
}

// revivingBackend's uploads survive the first abort, as one does on S3 (and
// versitygw) when a part the server was still receiving completes after it.
type revivingBackend struct {
	*memBackend
	aborts atomic.Int32
}

func (b *revivingBackend) AbortMultipart(ctx context.Context, key, id string) error {
	b.aborts.Add(1)
	return nil
}

func (b *revivingBackend) ListParts(ctx context.Context, key, id string) ([]s3backend.CompletedPart, error) {
	if b.aborts.Load() < 2 {
		return []s3backend.CompletedPart{{Number: 1}}, nil
	}
	return nil, s3backend.ErrNoSuchUpload
}

// TestAbortUntilGone: an abort is checked, and repeated while the upload
// is still there (found by TestReference: an upload left after sync).
func TestAbortUntilGone(t *testing.T) {
	be := &revivingBackend{memBackend: newMemBackend()}
	if err := abortFully(t.Context(), be, "b", "up0"); err != nil {
		t.Fatal(err)
	}
	if n := be.aborts.Load(); n != 2 {
		t.Fatalf("%d aborts, want 2", n)
	}
}

// staleBackend lists one multipart upload and records aborts.
type staleBackend struct {
	*memBackend
	mu      sync.Mutex
	aborted []string
}

func (b *staleBackend) ListMultipartUploads(ctx context.Context, prefix string) ([]s3backend.Upload, error) {
	return []s3backend.Upload{{Key: "k", UploadID: "orphan"}}, nil
}

func (b *staleBackend) AbortMultipart(ctx context.Context, key, id string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.aborted = append(b.aborted, key+"/"+id)
	return nil
}

// TestRecoverAbortsAnUnrecordedUpload: killed while CreateMultipartUpload
// was in flight, a file being written left a manifest with the key its
// upload targets but no id. Recovery keeps the file aside (never closed)
// and aborts the upload the server may have created (found by
// TestKillNineAnywhere: "multipart uploads left").
func TestRecoverAbortsAnUnrecordedUpload(t *testing.T) {
	be := &staleBackend{memBackend: newMemBackend()}
	a := newTestArea(t, be, adapt.Fixed{P: adapt.Params{PartSize: 5 * MiB, Concurrency: 2}}, 64)
	f, _ := a.Create("k", s3backend.ObjectMeta{})
	f.mu.Lock()
	f._startStreamMeta(f.meta)
	f._writeManifest(f.manifestState()) // what _createUpload writes before its request
	f.mu.Unlock()
	b, err := New(a.cfg, be, adapt.Fixed{P: adapt.Params{PartSize: 5 * MiB, Concurrency: 2}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	rep, err := b.Recover(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	be.mu.Lock()
	defer be.mu.Unlock()
	if len(rep.Unclosed) != 1 || !slices.Equal(be.aborted, []string{"k/orphan"}) {
		t.Fatalf("unclosed %v, aborted %v; want k kept aside and its upload aborted", rep.Unclosed, be.aborted)
	}
}
