package zseek_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	seekable "github.com/SaveTheRbtz/zstd-seekable-format-go/pkg"
	"github.com/cespare/xxhash/v2"
	"github.com/klauspost/compress/zstd"

	"github.com/adaptfs/adaptfs/zseek"
)

// csvData returns n bytes of CSV-like text: compressible, but not trivially.
func csvData(n int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 1))
	names := []string{"alpha", "bravo", "charlie", "delta", "echo", "foxtrot"}
	var b bytes.Buffer
	b.WriteString("id,name,amount,ts\n")
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "%d,%s,%d.%02d,2024-%02d-%02dT%02d:%02d:00Z\n", i, names[rng.IntN(len(names))],
			rng.IntN(100000), rng.IntN(100), 1+rng.IntN(12), 1+rng.IntN(28), rng.IntN(24), rng.IntN(60))
	}
	return b.Bytes()[:n]
}

// randomData returns n incompressible bytes.
func randomData(n int, seed uint64) []byte {
	b := make([]byte, n)
	_, _ = rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16)}).Read(b)
	return b
}

// split cuts data into frames of the given sizes, cycling through them; a
// 0 size makes an empty frame.
func split(data []byte, sizes ...int) [][]byte {
	var chunks [][]byte
	for i := 0; len(data) > 0 || (i < len(sizes) && sizes[i] == 0); i++ {
		n := min(sizes[i%len(sizes)], len(data))
		chunks = append(chunks, data[:n])
		data = data[n:]
	}
	return chunks
}

// encode builds a seekable object from chunks.
func encode(t testing.TB, enc *zseek.Encoder, chunks [][]byte, lvl zseek.Level) ([]byte, []zseek.Frame) {
	t.Helper()
	var obj []byte
	var frames []zseek.Frame
	for _, c := range chunks {
		start := len(obj)
		var f zseek.Frame
		obj, f = enc.EncodeFrame(obj, c, lvl)
		if int(f.Comp) != len(obj)-start || int(f.Raw) != len(c) || f.Checksum != uint32(xxhash.Sum64(c)) {
			t.Fatalf("EncodeFrame(%d bytes, %v) = %+v, appended %d bytes", len(c), lvl, f, len(obj)-start)
		}
		frames = append(frames, f)
	}
	n := len(obj)
	obj = zseek.AppendSeekTable(obj, frames)
	if len(obj)-n != zseek.SeekTableSize(len(frames)) {
		t.Fatalf("seek table is %d bytes, SeekTableSize says %d", len(obj)-n, zseek.SeekTableSize(len(frames)))
	}
	return obj, frames
}

// fetcher serves an object from memory and counts what it is asked for.
type fetcher struct {
	obj   []byte
	mu    sync.Mutex
	calls int
	bytes int64
}

func (f *fetcher) fetch(_ context.Context, off, n int64) ([]byte, error) {
	f.mu.Lock()
	f.calls++
	f.bytes += n
	f.mu.Unlock()
	if off < 0 || n < 0 || off+n > int64(len(f.obj)) {
		return nil, fmt.Errorf("fetch [%d, %d) outside object of %d bytes", off, off+n, len(f.obj))
	}
	return bytes.Clone(f.obj[off : off+n]), nil
}

func (f *fetcher) counts() (int, int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls, f.bytes
}

func openReader(t testing.TB, obj []byte) (*zseek.Reader, *fetcher) {
	t.Helper()
	f := &fetcher{obj: obj}
	r, err := zseek.NewReader(context.Background(), f.fetch, int64(len(obj)))
	if err != nil {
		t.Fatalf("NewReader: %v", err)
	}
	return r, f
}

func readAll(t testing.TB, r *zseek.Reader) []byte {
	t.Helper()
	p := make([]byte, r.RawSize())
	n, err := r.ReadAt(context.Background(), p, 0)
	if n != len(p) || (err != nil && err != io.EOF) || (len(p) > 0 && err != nil) {
		t.Fatalf("ReadAt whole object: n=%d of %d, err=%v", n, len(p), err)
	}
	return p
}

type shape struct {
	name   string
	size   int
	frames []int // frame sizes, cycled
}

const testFrame = 64 << 10 // small frames keep the level matrix fast

var shapes = []shape{
	{"empty", 0, []int{testFrame}},
	{"empty-frame", 0, []int{0}},
	{"one-byte", 1, []int{testFrame}},
	{"frame-1", testFrame - 1, []int{testFrame}},
	{"frame", testFrame, []int{testFrame}},
	{"frame+1", testFrame + 1, []int{testFrame}},
	{"uneven", 250_000, []int{1, 70_000, testFrame, 12_345, 0, 100_000, 3}},
}

var kinds = []struct {
	name string
	gen  func(n int, seed uint64) []byte
}{
	{"csv", csvData},
	{"random", randomData},
}

// each runs fn for every level, kind and shape.
func each(t *testing.T, levels []zseek.Level, fn func(t *testing.T, data []byte, chunks [][]byte, lvl zseek.Level)) {
	for _, lvl := range levels {
		for _, k := range kinds {
			for _, s := range shapes {
				t.Run(fmt.Sprintf("%v/%s/%s", lvl, k.name, s.name), func(t *testing.T) {
					data := k.gen(s.size, uint64(s.size))
					fn(t, data, split(data, s.frames...), lvl)
				})
			}
		}
	}
}

var allLevels = append([]zseek.Level{zseek.None}, zseek.Levels()...)

func TestRoundTrip(t *testing.T) {
	enc := zseek.NewEncoder()
	defer enc.Close()
	dec, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	each(t, allLevels, func(t *testing.T, data []byte, chunks [][]byte, lvl zseek.Level) {
		obj, frames := encode(t, enc, chunks, lvl)

		// A plain zstd decoder reads the frames and skips the table.
		plain, err := dec.DecodeAll(obj, nil)
		if err != nil || !bytes.Equal(plain, data) {
			t.Fatalf("zstd DecodeAll: %d bytes, err %v; want %d bytes", len(plain), err, len(data))
		}

		r, _ := openReader(t, obj)
		if r.RawSize() != int64(len(data)) || r.Index().Len() != len(frames) {
			t.Fatalf("RawSize %d, %d frames; want %d, %d", r.RawSize(), r.Index().Len(), len(data), len(frames))
		}
		if got := readAll(t, r); !bytes.Equal(got, data) {
			t.Fatal("ReadAt of the whole object differs from the input")
		}
		if want := int64(len(obj) - zseek.SeekTableSize(len(frames))); r.Index().CompSize() != want {
			t.Fatalf("CompSize %d, want %d", r.Index().CompSize(), want)
		}
	})
}

func TestEncoderConcurrent(t *testing.T) {
	enc := zseek.NewEncoder()
	defer enc.Close()
	dec, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			lvl := allLevels[g%len(allLevels)]
			for i := range 4 {
				src := csvData(50_000+i*1000, uint64(g*10+i))
				out, f := enc.EncodeFrame(nil, src, lvl)
				got, err := dec.DecodeAll(out, nil)
				if err != nil || !bytes.Equal(got, src) || int(f.Raw) != len(src) {
					t.Errorf("level %v: frame does not round-trip (err %v)", lvl, err)
				}
			}
		})
	}
	wg.Wait()
	// Close leaves the Encoder usable.
	enc.Close()
	if out, _ := enc.EncodeFrame(nil, []byte("again"), zseek.Best); len(out) == 0 {
		t.Fatal("EncodeFrame after Close produced nothing")
	}
}

func TestEncodeFramePanics(t *testing.T) {
	enc := zseek.NewEncoder()
	for name, fn := range map[string]func(){
		"bad level": func() { enc.EncodeFrame(nil, []byte("x"), zseek.Level(42)) },
		"too large": func() { enc.EncodeFrame(nil, make([]byte, zseek.MaxFrameSize+1), zseek.None) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			fn()
		})
	}
}

// TestZstdCLI checks that the reference decoder reads our objects.
func TestZstdCLI(t *testing.T) {
	bin, err := exec.LookPath("zstd")
	if err != nil {
		t.Skip("zstd CLI not installed")
	}
	enc := zseek.NewEncoder()
	defer enc.Close()
	dir := t.TempDir()
	check := func(t *testing.T, data, obj []byte) {
		t.Helper()
		path := filepath.Join(dir, "obj.zst")
		if err := os.WriteFile(path, obj, 0o600); err != nil {
			t.Fatal(err)
		}
		var stderr bytes.Buffer
		cmd := exec.Command(bin, "-d", "-c", path)
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("zstd -d: %v: %s", err, stderr.Bytes())
		}
		if !bytes.Equal(out, data) {
			t.Fatalf("zstd -d output: %d bytes, want %d, equal prefix %v", len(out), len(data), bytes.HasPrefix(data, out))
		}
	}
	each(t, allLevels, func(t *testing.T, data []byte, chunks [][]byte, lvl zseek.Level) {
		obj, _ := encode(t, enc, chunks, lvl)
		check(t, data, obj)
	})
	t.Run("MiB-frames", func(t *testing.T) {
		data := csvData(5<<20+12345, 7)
		obj, _ := encode(t, enc, split(data, 1<<20, 4<<20), zseek.Default)
		check(t, data, obj)
	})
}

// TestSeekableLibrary checks that an independent implementation of the
// format reads our objects, whole and at random offsets.
func TestSeekableLibrary(t *testing.T) {
	enc := zseek.NewEncoder()
	defer enc.Close()
	dec, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	each(t, []zseek.Level{zseek.None, zseek.Fastest, zseek.Best}, func(t *testing.T, data []byte, chunks [][]byte, lvl zseek.Level) {
		obj, _ := encode(t, enc, chunks, lvl)
		r, err := seekable.NewReader(bytes.NewReader(obj), dec)
		if err != nil {
			t.Fatalf("seekable.NewReader: %v", err)
		}
		defer r.Close()
		got, err := io.ReadAll(r)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("ReadAll: %d bytes, err %v; want %d bytes", len(got), err, len(data))
		}
		rng := rand.New(rand.NewPCG(uint64(len(data)), 2))
		for range 50 {
			if len(data) == 0 {
				break
			}
			off := rng.IntN(len(data))
			p := make([]byte, 1+rng.IntN(len(data)-off))
			n, err := r.ReadAt(p, int64(off))
			if n != len(p) || (err != nil && err != io.EOF) || !bytes.Equal(p, data[off:off+n]) {
				t.Fatalf("ReadAt(%d bytes at %d) = %d, %v, equal %v", len(p), off, n, err, bytes.Equal(p[:n], data[off:off+n]))
			}
		}
	})
}
