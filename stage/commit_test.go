package stage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
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
	<-b.complete // the server is busy; the client's ctx does not stop it
	if _, gone := b.aborted.Load(id); gone {
		return "", fmt.Errorf("complete %s: NoSuchUpload", key)
	}
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
	}{
		{"parts in flight", false},
		{"completion in flight", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			be := &holdingBackend{memBackend: newMemBackend(), parts: make(chan struct{}), complete: make(chan struct{}), completing: make(chan struct{})}
			a := newTestArea(t, be, adapt.Fixed{P: adapt.Params{PartSize: 5 * MiB, Concurrency: 2}}, 64)
			t.Cleanup(func() { be.releaseParts(); be.releaseComplete() }) // before a.Close
			old := make([]byte, 12*MiB)
			rand.NewChaCha8([32]byte{3}).Read(old)
			f, _ := a.Create("Log", s3backend.ObjectMeta{})
			if _, err := f.WriteAt(old, 0); err != nil {
				t.Fatal(err)
			}
			f.Flush()
			f.Release(true)
			if staged, _ := a.Rename("Log", "Log.1"); !staged {
				t.Fatal("not staged")
			}
			if tt.completing {
				be.releaseParts()
				<-be.completing
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
			if got := be.objects["Log.1"]; !bytes.Equal(got, old) {
				t.Errorf("Log.1 holds %d bytes, want the renamed file's %d", len(got), len(old))
			}
		})
	}
}
