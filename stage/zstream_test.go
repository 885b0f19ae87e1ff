package stage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/adaptfs/adaptfs/adapt"
	"github.com/adaptfs/adaptfs/s3backend"
	"github.com/adaptfs/adaptfs/zseek"
)

// textData is n bytes of log-like lines: about 4:1 with zstd.
func textData(n int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, seed))
	var b bytes.Buffer
	for b.Len() < n {
		fmt.Fprintf(&b, "%d INFO host-%d: upload part=%d size=%d took=%dms\n",
			1_790_000_000+rng.IntN(1000), rng.IntN(8), rng.IntN(10000), rng.IntN(1<<20), rng.IntN(999))
	}
	return b.Bytes()[:n]
}

// decodeObject reads a stored object back through zseek.
func decodeObject(t *testing.T, obj []byte) []byte {
	t.Helper()
	fetch := func(ctx context.Context, off, n int64) ([]byte, error) { return obj[off : off+n], nil }
	r, err := zseek.NewReader(context.Background(), fetch, int64(len(obj)))
	if err != nil {
		t.Fatalf("not a seekable zstd object: %v", err)
	}
	out := make([]byte, r.RawSize())
	if _, err := r.ReadAt(context.Background(), out, 0); err != nil {
		t.Fatal(err)
	}
	return out
}

// flushed waits for every upload of a and returns the object key as be
// holds it.
func flushed(t *testing.T, a *Area, be *memBackend, key string) ([]byte, s3backend.ObjectMeta) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.Flush(ctx); err != nil {
		t.Fatalf("upload of %s: %v", key, err)
	}
	be.mu.Lock()
	defer be.mu.Unlock()
	return be.objects[key], be.metas[key]
}

func sideFiles(t *testing.T, a *Area) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(a.Dir(), "*.zst"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestCompressedStream: a compressible file streams compressed parts while
// it is written (writeback order), and after close the object is one
// seekable zstd stream equal to the data, with its encoding and raw size in
// the metadata; no non-final part is under 5 MiB (the backend refuses it)
// and the side file is gone.
func TestCompressedStream(t *testing.T) {
	be := newMemBackend()
	a := newTestArea(t, be, adapt.Fixed{P: adapt.Params{PartSize: 5 * MiB, Concurrency: 3}}, 0)
	data := textData(64*MiB+777, 1)
	f, err := a.Create("logs/app.log", s3backend.ObjectMeta{})
	if err != nil {
		t.Fatal(err)
	}
	const chunk = 128 << 10
	for off := 0; off < len(data); off += chunk {
		if _, err := f.WriteAt(data[off:min(off+chunk, len(data))], int64(off)); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for n := 0; n < 2 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		be.mu.Lock()
		n = len(be.partsAt)
		be.mu.Unlock()
	}
	be.mu.Lock()
	early := len(be.partsAt)
	be.mu.Unlock()
	if early < 2 {
		t.Fatalf("%d compressed parts uploaded while the file was open, want ≥ 2", early)
	}
	f.Flush()
	f.Release(true)
	obj, meta := flushed(t, a, be, "logs/app.log")
	if !meta.Compressed() {
		t.Fatalf("metadata %+v: not marked compressed", meta)
	}
	if got := decodeObject(t, obj); !bytes.Equal(got, data) {
		t.Fatalf("decoded object differs (%d vs %d bytes)", len(got), len(data))
	}
	if ratio := float64(len(data)) / float64(len(obj)); ratio < 2 {
		t.Fatalf("ratio %.2f: not compressed at zstd's default level", ratio)
	}
	if s := sideFiles(t, a); len(s) != 0 {
		t.Fatalf("side files left: %v", s)
	}
	st := a.Pending()
	if st.CompressedFiles != 1 || st.CompressedRawBytes != int64(len(data)) || st.CompressedStoredBytes != int64(len(obj)) {
		t.Fatalf("pending = %+v", st)
	}
}

// TestCompressedWriteBehind: a write into bytes the compressor already took
// abandons the compressed stream; the whole file goes up after close.
func TestCompressedWriteBehind(t *testing.T) {
	be := newMemBackend()
	a := newTestArea(t, be, adapt.Fixed{P: adapt.Params{PartSize: 5 * MiB, Concurrency: 2}}, 0)
	data := textData(40*MiB, 2)
	f, _ := a.Create("obj", s3backend.ObjectMeta{})
	f.WriteAt(data, 0)
	time.Sleep(50 * time.Millisecond) // let the compressor take frames
	patched := slices.Clone(data)
	copy(patched[100:], "HEADER")
	f.WriteAt([]byte("HEADER"), 100)
	f.Flush()
	f.Release(true)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := decodeObject(t, be.objects["obj"]); !bytes.Equal(got, patched) {
		t.Fatal("object differs after a write behind the compressed stream")
	}
	// The abandoned stream's side file is removed once its parts end.
	for deadline := time.Now().Add(5 * time.Second); len(sideFiles(t, a)) > 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if s := sideFiles(t, a); len(s) != 0 {
		t.Fatalf("side files left: %v", s)
	}
}

// TestCompressionModes: what each mode stores for compressible text,
// random bytes and tiny files, through the one-PUT path and the multipart
// path.
func TestCompressionModes(t *testing.T) {
	random := make([]byte, 3*MiB)
	rand.NewChaCha8([32]byte{3}).Read(random)
	text := textData(3*MiB, 3)
	bigText := textData(12*MiB, 4)
	tests := []struct {
		mode, key string
		data      []byte
		want      bool // stored compressed
	}{
		{"auto", "t.txt", text, true},
		{"auto", "big.txt", bigText, true},
		{"auto", "r.bin", random, false},
		{"auto", "tiny.txt", text[:100], false},
		{"off", "t.txt", text, false},
		{"off", "big.txt", bigText, false},
		{"zstd-max", "r.bin", random, true}, // a fixed level always compresses
		{"zstd-fast", "big.txt", bigText, true},
	}
	for _, tt := range tests {
		t.Run(tt.mode+"/"+tt.key, func(t *testing.T) {
			be := newMemBackend()
			cfg := DefaultConfig()
			cfg.StagingDir = t.TempDir()
			cfg.WriteBackDelay = 0
			cfg.Compression = tt.mode
			a, err := New(cfg, be, adapt.Fixed{P: adapt.Params{PartSize: 5 * MiB, Concurrency: 2}}, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(a.Close)
			f, _ := a.Create(tt.key, s3backend.ObjectMeta{})
			f.WriteAt(tt.data, 0)
			f.Flush()
			f.Release(true)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := a.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			obj, meta := be.objects[tt.key], be.metas[tt.key]
			if meta.Compressed() != tt.want {
				t.Fatalf("compressed = %v (meta %+v), want %v", meta.Compressed(), meta, tt.want)
			}
			got := obj
			if tt.want {
				got = decodeObject(t, obj)
				if meta.RawSize != int64(len(tt.data)) {
					t.Fatalf("raw size in metadata %d, want %d", meta.RawSize, len(tt.data))
				}
			}
			if !bytes.Equal(got, tt.data) {
				t.Fatal("object differs from the data")
			}
			if _, err := os.Stat(a.Dir()); err != nil || len(sideFiles(t, a)) != 0 {
				t.Fatalf("side files left: %v", sideFiles(t, a))
			}
		})
	}
}

// TestCompressedSparse: a compressible file with a hole in the middle and
// one at the end (never written in order) is still framed to its end and
// uploaded: the upload does not wait for bytes that never come.
func TestCompressedSparse(t *testing.T) {
	be := newMemBackend()
	a := newTestArea(t, be, adapt.Fixed{P: adapt.Params{PartSize: 5 * MiB, Concurrency: 2}}, 0)
	head, tail := textData(10*MiB, 7), textData(MiB, 8)
	f, _ := a.Create("sparse", s3backend.ObjectMeta{})
	f.WriteAt(head, 0)
	f.WriteAt(tail, 30*MiB)
	if err := f.Truncate(40 * MiB); err != nil { // a trailing hole
		t.Fatal(err)
	}
	f.Flush()
	f.Release(true)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := a.Flush(ctx); err != nil {
		t.Fatalf("upload of a sparse compressed file: %v", err)
	}
	want := make([]byte, 40*MiB)
	copy(want, head)
	copy(want[30*MiB:], tail)
	be.mu.Lock()
	obj := be.objects["sparse"]
	be.mu.Unlock()
	if got := decodeObject(t, obj); !bytes.Equal(got, want) {
		t.Fatalf("decoded object differs (%d vs %d bytes)", len(got), len(want))
	}
}

// flakyBackend fails the first n UploadParts.
type flakyBackend struct {
	*memBackend
	left atomic.Int32
}

func (b *flakyBackend) UploadPart(ctx context.Context, key, id string, n int32, body io.ReadSeeker, size int64) (s3backend.CompletedPart, error) {
	if b.left.Add(-1) >= 0 {
		time.Sleep(500 * time.Millisecond) // the compressor is ahead and asleep by now
		return s3backend.CompletedPart{}, errors.New("injected: connection reset")
	}
	return b.memBackend.UploadPart(ctx, key, id, n, body, size)
}

// TestCompressedPartFailureRetried: a part fails while the compressor is
// ahead of the uploads (a closed compressible file on a slow link); the
// stream stops, the upload is retried whole, and it completes.
func TestCompressedPartFailureRetried(t *testing.T) {
	be := &flakyBackend{memBackend: newMemBackend()}
	be.left.Store(1)
	a := newTestArea(t, be, adapt.Fixed{P: adapt.Params{PartSize: 5 * MiB, Concurrency: 1}}, 0)
	data := textData(120*MiB, 9)
	f, _ := a.Create("big.log", s3backend.ObjectMeta{})
	f.WriteAt(data, 0)
	f.Flush()
	f.Release(true)
	obj, _ := flushed(t, a, be.memBackend, "big.log")
	if got := decodeObject(t, obj); !bytes.Equal(got, data) {
		t.Fatal("decoded object differs")
	}
}
