package stage

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/adaptfs/adaptfs/adapt"
	"github.com/adaptfs/adaptfs/s3backend"
)

// memBackend is an in-memory s3backend.Backend for unit tests of the part
// cutter only; the end-to-end tests in test/ use a real server.
type memBackend struct {
	s3backend.Backend // methods the cutter never calls panic
	mu                sync.Mutex
	objects           map[string][]byte
	metas             map[string]s3backend.ObjectMeta // of objects, and of uploads by id
	uploads           map[string]map[int32][]byte
	partsAt           []time.Time // when each part arrived
}

func newMemBackend() *memBackend {
	return &memBackend{objects: map[string][]byte{}, metas: map[string]s3backend.ObjectMeta{}, uploads: map[string]map[int32][]byte{}}
}

func (m *memBackend) Put(ctx context.Context, key string, body io.ReadSeeker, size int64, meta s3backend.ObjectMeta) (string, error) {
	b, err := io.ReadAll(body)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.objects[key] = b
	m.metas[key] = meta
	return "etag", err
}

func (m *memBackend) CreateMultipart(ctx context.Context, key string, meta s3backend.ObjectMeta) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	id := fmt.Sprintf("up%d", len(m.uploads))
	m.uploads[id] = map[int32][]byte{}
	m.metas[id] = meta
	return id, nil
}

func (m *memBackend) UploadPart(ctx context.Context, key, id string, n int32, body io.ReadSeeker, size int64) (s3backend.CompletedPart, error) {
	b, err := io.ReadAll(body)
	if err != nil {
		return s3backend.CompletedPart{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.uploads[id][n] = b
	m.partsAt = append(m.partsAt, time.Now())
	return s3backend.CompletedPart{Number: n, ETag: "e", Size: int64(len(b))}, nil
}

func (m *memBackend) CompleteMultipart(ctx context.Context, key, id string, parts []s3backend.CompletedPart) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var all []byte
	for i, p := range parts {
		b := m.uploads[id][p.Number]
		if i < len(parts)-1 && len(b) < MinPartSize {
			return "", fmt.Errorf("part %d has %d bytes: %w", p.Number, len(b), s3backend.ErrInvalidRequest)
		}
		all = append(all, b...)
	}
	m.objects[key] = all
	m.metas[key] = m.metas[id]
	return "etag-mp", nil
}

func (m *memBackend) AbortMultipart(ctx context.Context, key, id string) error { return nil }

// ListParts: an aborted upload is gone at once here.
func (m *memBackend) ListParts(ctx context.Context, key, id string) ([]s3backend.CompletedPart, error) {
	return nil, s3backend.ErrNoSuchUpload
}

// TestStreamingCutsPartsWhileWriting drives a staged file with writes in
// order, slightly out of order (as the kernel's writeback sends them), and
// with a rewrite inside the unsealed tail, and checks the object equals the
// data, that parts left before close, and that every non-final part is
// at least 5 MiB.
func TestStreamingCutsPartsWhileWriting(t *testing.T) {
	tests := []struct {
		name    string
		shuffle int // writes are shuffled within windows of this many chunks
		memMB   int
	}{
		{"in order", 1, 256},
		{"writeback order", 4, 256},
		{"no memory for buffers", 4, 16},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			be := newMemBackend()
			a := newTestArea(t, be, adapt.Fixed{P: adapt.Params{PartSize: 5 * MiB, Concurrency: 4}}, tt.memMB)
			data := make([]byte, 37*MiB+4321)
			rand.NewChaCha8([32]byte{1}).Read(data)
			f, err := a.Create("obj", s3backend.ObjectMeta{})
			if err != nil {
				t.Fatal(err)
			}
			const chunk = 128 << 10
			var offs []int
			for off := 0; off < len(data); off += chunk {
				offs = append(offs, off)
			}
			rng := rand.New(rand.NewPCG(1, 2))
			for i := 0; i < len(offs); i += tt.shuffle {
				w := offs[i:min(i+tt.shuffle, len(offs))]
				rng.Shuffle(len(w), func(a, b int) { w[a], w[b] = w[b], w[a] })
			}
			for _, off := range offs {
				end := min(off+chunk, len(data))
				if _, err := f.WriteAt(data[off:end], int64(off)); err != nil {
					t.Fatal(err)
				}
			}
			// Rewrite a range in the unsealed tail: still streamable.
			if _, err := f.WriteAt(data[len(data)-100:], int64(len(data)-100)); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(10 * time.Second)
			for time.Now().Before(deadline) {
				be.mu.Lock()
				n := len(be.partsAt)
				be.mu.Unlock()
				if n >= 5 {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			be.mu.Lock()
			before := len(be.partsAt)
			be.mu.Unlock()
			if before < 5 {
				t.Fatalf("only %d parts uploaded while the file was open", before)
			}
			f.Flush()
			f.Release(true)
			checkUploaded(t, a, be, "obj", data)
			if a.mem.inUse() != 0 {
				t.Errorf("%d bytes of part buffers not returned", a.mem.inUse())
			}
		})
	}
}

// TestWriteBehindSealedFallsBack: a write into bytes already cut abandons
// the stream; the whole file goes up after close and is still right.
func TestWriteBehindSealedFallsBack(t *testing.T) {
	be := newMemBackend()
	a := newTestArea(t, be, adapt.Fixed{P: adapt.Params{PartSize: 5 * MiB, Concurrency: 2}}, 0)
	data := make([]byte, 23*MiB)
	rand.NewChaCha8([32]byte{2}).Read(data)
	f, _ := a.Create("obj", s3backend.ObjectMeta{})
	f.WriteAt(data, 0)
	patched := slices.Clone(data)
	copy(patched[100:], "HEADER") // e.g. a length field written last
	f.WriteAt([]byte("HEADER"), 100)
	f.Flush()
	f.Release(true)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := be.objects["obj"]; !bytes.Equal(got, patched) {
		t.Fatal("object differs after a write behind the stream")
	}
}

// newTestArea is a staging area in a temporary directory with no
// write-back delay; memMB 0 keeps the default memory budget.
func newTestArea(t *testing.T, be s3backend.Backend, params ParamSource, memMB int) *Area {
	t.Helper()
	cfg := DefaultConfig()
	cfg.StagingDir = t.TempDir()
	cfg.WriteBackDelay = 0
	if memMB > 0 {
		cfg.MaxStagingMemoryMB = memMB
	}
	a, err := New(cfg, be, params, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	return a
}

// checkUploaded waits for every upload of a and compares the object key in
// be with want.
func checkUploaded(t *testing.T, a *Area, be *memBackend, key string, want []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	be.mu.Lock()
	got := be.objects[key]
	be.mu.Unlock()
	if !bytes.Equal(got, want) {
		t.Fatalf("object differs from the content (%d vs %d bytes)", len(got), len(want))
	}
}

// TestAppendAfterClose: a file closed with its bytes still in a part
// buffer, then reopened and appended to (the appends go straight to the
// staging file), uploads whole and right. The stale buffer used to become
// the first part, cut at the even tail split just past the old end, and
// the object lost the 20 bytes between (found by TestReference).
func TestAppendAfterClose(t *testing.T) {
	be := newMemBackend()
	a := newTestArea(t, be, adapt.Fixed{P: adapt.Params{PartSize: 8 * MiB, Concurrency: 4}}, 256)
	first, more := make([]byte, 5*MiB+23), make([]byte, 5*MiB+63)
	rand.NewChaCha8([32]byte{1}).Read(first)
	rand.NewChaCha8([32]byte{2}).Read(more)
	f, _ := a.Create("a", s3backend.ObjectMeta{})
	writeChunks := func(p []byte, base int) {
		// As the kernel sends them: up to the page boundary, then 1 MiB.
		n := min(len(p), 4096-base%4096)
		f.WriteAt(p[:n], int64(base))
		for off := n; off < len(p); off += MiB {
			if _, err := f.WriteAt(p[off:min(len(p), off+MiB)], int64(base+off)); err != nil {
				t.Fatal(err)
			}
		}
	}
	writeChunks(first, 0)
	f.Flush()
	f.Release(true)
	if err := f.Open(true, false); err != nil {
		t.Fatal(err)
	}
	writeChunks(more, len(first))
	f.Flush()
	f.Release(true)
	checkUploaded(t, a, be, "a", append(first, more...))
}
