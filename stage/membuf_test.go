package stage

import (
	"bytes"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// TestBufferAcrossChunks: copies, loads, reads, seeks and writes that
// straddle chunk boundaries give back exactly the bytes put in.
func TestBufferAcrossChunks(t *testing.T) {
	tests := []struct {
		name string
		n    int64
	}{
		{"one partial chunk", 1000},
		{"exact chunks", 3 * chunkSize},
		{"ragged end", 2*chunkSize + 12345},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newMemPool(16 << 20)
			b := p.get(tt.n)
			want := make([]byte, tt.n)
			rand.NewChaCha8([32]byte{4}).Read(want)
			// Write in odd-sized pieces.
			for off := int64(0); off < tt.n; off += 70001 {
				b.copyIn(want[off:min(off+70001, tt.n)], off)
			}
			got, err := io.ReadAll(b.reader())
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("read back differs (err %v)", err)
			}
			r := b.reader()
			if _, err := r.Seek(tt.n/2, io.SeekStart); err != nil {
				t.Fatal(err)
			}
			var w bytes.Buffer
			if _, err := io.Copy(&w, r); err != nil || !bytes.Equal(w.Bytes(), want[tt.n/2:]) {
				t.Fatalf("read after seek differs (err %v)", err)
			}
			path := filepath.Join(t.TempDir(), "f")
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if err := b.writeTo(f, 100, tt.n, false); err != nil {
				t.Fatal(err)
			}
			b2 := p.get(tt.n)
			b2.copyIn(bytes.Repeat([]byte{0xff}, int(tt.n)), 0)
			if err := b2.load(f, 100, 0, tt.n); err != nil {
				t.Fatal(err)
			}
			if got, _ := io.ReadAll(b2.reader()); !bytes.Equal(got, want) {
				t.Fatal("load from file differs")
			}
		})
	}
}

// TestPoolReusesChunksAcrossSizes: buffers of changing sizes never take
// more than the budget, and what is returned is reused.
func TestPoolReusesChunksAcrossSizes(t *testing.T) {
	p := newMemPool(64 << 20)
	for _, size := range []int64{16 << 20, 5 << 20, 64 << 20, 7<<20 + 1, 32 << 20} {
		b := p.get(size)
		if b == nil {
			t.Fatalf("no buffer of %d bytes from an empty pool", size)
		}
		if p.get(64<<20) != nil {
			t.Fatal("pool handed out more than its budget")
		}
		p.put(b)
	}
	if p.made > 64 {
		t.Fatalf("pool made %d chunks for a budget of 64", p.made)
	}
	if p.inUse() != 0 {
		t.Fatalf("%d bytes still in use", p.inUse())
	}
}
