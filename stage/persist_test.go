package stage

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/adaptfs/adaptfs/adapt"
	"github.com/adaptfs/adaptfs/s3backend"
)

// gatedBackend holds every UploadPart until gate is closed.
type gatedBackend struct {
	*memBackend
	gate chan struct{}
}

func (g *gatedBackend) UploadPart(ctx context.Context, key, id string, n int32, body io.ReadSeeker, size int64) (s3backend.CompletedPart, error) {
	select {
	case <-g.gate:
	case <-ctx.Done():
		return s3backend.CompletedPart{}, ctx.Err()
	}
	return g.memBackend.UploadPart(ctx, key, id, n, body, size)
}

// TestDeferredBytesAreNeverLost: bytes that live only in a part buffer
// (not yet in the staging file) are visible to reads at once, survive a
// truncate and a write behind the stream, and are all in the staging file
// when close returns, while the parts are still on their way.
func TestDeferredBytesAreNeverLost(t *testing.T) {
	tests := []struct {
		name  string
		after func(t *testing.T, f *File, data []byte) []byte // returns the expected content
	}{
		{"close", func(t *testing.T, f *File, data []byte) []byte { return data }},
		{"truncate into the buffer", func(t *testing.T, f *File, data []byte) []byte {
			n := len(data) - 3*MiB/2
			if err := f.Truncate(int64(n)); err != nil {
				t.Fatal(err)
			}
			return data[:n]
		}},
		{"write behind the stream", func(t *testing.T, f *File, data []byte) []byte {
			want := bytes.Clone(data)
			copy(want[10:], "PATCH")
			if _, err := f.WriteAt([]byte("PATCH"), 10); err != nil {
				t.Fatal(err)
			}
			return want
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			be := &gatedBackend{newMemBackend(), make(chan struct{})}
			a := newTestArea(t, be, adapt.Fixed{P: adapt.Params{PartSize: 5 * MiB, Concurrency: 4}}, 256)
			data := make([]byte, 17*MiB+777)
			rand.NewChaCha8([32]byte{3}).Read(data)
			f, err := a.Create("obj", s3backend.ObjectMeta{})
			if err != nil {
				t.Fatal(err)
			}
			const chunk = 128 << 10
			for off := 0; off < len(data); off += chunk {
				end := min(off+chunk, len(data))
				if _, err := f.WriteAt(data[off:end], int64(off)); err != nil {
					t.Fatal(err)
				}
				// Read back a window that ends at what was just written.
				from := max(0, end-3*chunk)
				got := make([]byte, end-from)
				if _, err := f.ReadAt(got, int64(from)); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, data[from:end]) {
					t.Fatalf("read of [%d, %d) while writing differs", from, end)
				}
			}
			want := tt.after(t, f, data)
			if err := f.Flush(); err != nil {
				t.Fatal(err)
			}
			onDisk, err := os.ReadFile(f.dataPath())
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(onDisk, want) {
				t.Fatalf("staging file after close differs from the content (%d vs %d bytes)", len(onDisk), len(want))
			}
			f.Release(true)
			close(be.gate)
			checkUploaded(t, a, be.memBackend, "obj", want)
		})
	}
}
