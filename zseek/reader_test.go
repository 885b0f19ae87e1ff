package zseek_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/adaptfs/adaptfs/zseek"
)

func TestReadAtRandom(t *testing.T) {
	enc := zseek.NewEncoder()
	defer enc.Close()
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			data := k.gen(1_500_000, 3)
			obj, _ := encode(t, enc, split(data, 100_000, 1, 0, 300_000, 77_777), zseek.Fastest)
			r, _ := openReader(t, obj)
			want := bytes.NewReader(data)
			rng := rand.New(rand.NewPCG(4, 5))
			for i := range 500 {
				off := int64(rng.IntN(len(data) + 1000))
				var p, q []byte
				switch i % 3 {
				case 0: // small, like a 4 KiB page
					p = make([]byte, rng.IntN(5000))
				case 1: // kernel-sized
					p = make([]byte, 128<<10)
				default: // anything, possibly past the end
					p = make([]byte, rng.IntN(len(data)))
				}
				q = make([]byte, len(p))
				n, err := r.ReadAt(context.Background(), p, off)
				wn, werr := want.ReadAt(q, off)
				if n != wn || (err == io.EOF) != (werr == io.EOF) || (err != nil && err != io.EOF) || !bytes.Equal(p[:n], q[:wn]) {
					t.Fatalf("ReadAt(%d bytes at %d) = %d, %v; want %d, %v", len(p), off, n, err, wn, werr)
				}
			}
			if _, err := r.ReadAt(context.Background(), make([]byte, 1), -1); err == nil {
				t.Fatal("negative offset: no error")
			}
		})
	}
}

func TestReadAtConcurrent(t *testing.T) {
	enc := zseek.NewEncoder()
	defer enc.Close()
	data := csvData(1_000_000, 9)
	obj, _ := encode(t, enc, split(data, 64<<10), zseek.Default)
	r, _ := openReader(t, obj)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 6))
			for range 200 {
				off := rng.IntN(len(data))
				p := make([]byte, min(1+rng.IntN(200_000), len(data)-off))
				n, err := r.ReadAt(context.Background(), p, int64(off))
				if n != len(p) || err != nil || !bytes.Equal(p, data[off:off+n]) {
					t.Errorf("ReadAt(%d bytes at %d) = %d, %v", len(p), off, n, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestFetchOnlyNeededFrames counts the bytes a Reader fetches.
func TestFetchOnlyNeededFrames(t *testing.T) {
	enc := zseek.NewEncoder()
	defer enc.Close()
	ctx := context.Background()
	// Incompressible 256 KiB frames: every frame is larger than the 64 KiB
	// fetched at open, so none is served from it.
	data := randomData(8*256<<10, 10)
	obj, frames := encode(t, enc, split(data, 256<<10), zseek.Fastest)
	r, f := openReader(t, obj)
	idx := r.Index()

	calls, got := f.counts()
	if calls != 1 || got != 64<<10 {
		t.Fatalf("open: %d fetches of %d bytes, want one of %d", calls, got, 64<<10)
	}
	step := func(what string, off, n int64, wantCalls int, wantBytes int64) {
		t.Helper()
		c0, b0 := f.counts()
		p := make([]byte, n)
		if k, err := r.ReadAt(ctx, p, off); k != len(p) || err != nil || !bytes.Equal(p, data[off:off+n]) {
			t.Fatalf("%s: ReadAt = %d, %v", what, k, err)
		}
		c1, b1 := f.counts()
		if c1-c0 != wantCalls || b1-b0 != wantBytes {
			t.Fatalf("%s: %d fetches of %d bytes, want %d of %d", what, c1-c0, b1-b0, wantCalls, wantBytes)
		}
	}
	step("inside frame 3", idx.RawOffset(3)+100, 1000, 1, int64(frames[3].Comp))
	step("frame 3 again", idx.RawOffset(3)+5000, 1000, 0, 0)
	step("frames 5 and 6", idx.RawOffset(6)-10, 20, 1, int64(frames[5].Comp)+int64(frames[6].Comp))
	step("frames 1 to 4", idx.RawOffset(1), idx.RawOffset(5)-idx.RawOffset(1), 1,
		idx.CompOffset(5)-idx.CompOffset(1)) // frame 3 may be refetched: one request is the point

	// Sequential kernel-sized reads fetch every frame once.
	for _, lvl := range []zseek.Level{zseek.Fastest, zseek.Best} {
		data := csvData(5<<20+3333, 11)
		obj, frames := encode(t, enc, split(data, 1<<20), lvl)
		f := &fetcher{obj: obj}
		r, err := zseek.NewReaderFromIndex(f.fetch, zseek.NewIndex(frames))
		if err != nil {
			t.Fatal(err)
		}
		var out []byte
		p := make([]byte, 128<<10)
		for off := int64(0); ; off += int64(len(p)) {
			n, err := r.ReadAt(ctx, p, off)
			out = append(out, p[:n]...)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(out, data) {
			t.Fatal("sequential reads differ from the input")
		}
		calls, got := f.counts()
		if calls != len(frames) || got != r.Index().CompSize() {
			t.Fatalf("%v: sequential reads: %d fetches of %d bytes, want %d of %d", lvl, calls, got, len(frames), r.Index().CompSize())
		}
	}
}

func TestSmallObjectOneFetch(t *testing.T) {
	enc := zseek.NewEncoder()
	defer enc.Close()
	data := csvData(200_000, 12) // compresses to well under 64 KiB
	obj, _ := encode(t, enc, split(data, 50_000), zseek.Default)
	if len(obj) >= 64<<10 {
		t.Fatalf("object is %d bytes; the test needs < 64 KiB", len(obj))
	}
	r, f := openReader(t, obj)
	if got := readAll(t, r); !bytes.Equal(got, data) {
		t.Fatal("content differs")
	}
	if calls, n := f.counts(); calls != 1 || n != int64(len(obj)) {
		t.Fatalf("%d fetches of %d bytes, want 1 of %d", calls, n, len(obj))
	}
}

func TestLargeSeekTable(t *testing.T) {
	enc := zseek.NewEncoder()
	defer enc.Close()
	data := csvData(6000*16, 13)
	obj, frames := encode(t, enc, split(data, 16), zseek.Fastest) // 6000 frames
	tableSize := zseek.SeekTableSize(len(frames))
	if tableSize <= 64<<10 {
		t.Fatalf("table is %d bytes; the test needs > 64 KiB", tableSize)
	}
	r, f := openReader(t, obj)
	if calls, n := f.counts(); calls != 2 || n != int64(tableSize) {
		t.Fatalf("open: %d fetches of %d bytes, want 2 of %d (the table)", calls, n, tableSize)
	}
	if got := readAll(t, r); !bytes.Equal(got, data) {
		t.Fatal("content differs")
	}
}

// TestConcurrentReadsShareFetch: readers of a frame being loaded wait for
// it instead of fetching it again, and survive the loader's cancellation.
func TestConcurrentReadsShareFetch(t *testing.T) {
	enc := zseek.NewEncoder()
	defer enc.Close()
	data := randomData(4*100_000, 14)
	obj, frames := encode(t, enc, split(data, 100_000), zseek.Fastest)
	idx := zseek.NewIndex(frames)

	var calls atomic.Int32
	started := make(chan struct{})
	release := make(chan struct{})
	fetch := func(ctx context.Context, off, n int64) ([]byte, error) {
		if calls.Add(1) == 1 {
			close(started)
			select { // the first fetch hangs until released or cancelled
			case <-release:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		return bytes.Clone(obj[off : off+n]), nil
	}
	read := func(ctx context.Context, r *zseek.Reader) error {
		off := idx.RawOffset(2) + 10
		p := make([]byte, 1000)
		n, err := r.ReadAt(ctx, p, off)
		if err == nil && !bytes.Equal(p[:n], data[off:off+int64(n)]) {
			err = errors.New("content differs")
		}
		return err
	}

	t.Run("shared", func(t *testing.T) {
		calls.Store(0)
		started, release = make(chan struct{}), make(chan struct{})
		r, err := zseek.NewReaderFromIndex(fetch, idx)
		if err != nil {
			t.Fatal(err)
		}
		errs := make(chan error, 2)
		go func() { errs <- read(context.Background(), r) }()
		<-started
		go func() { errs <- read(context.Background(), r) }()
		close(release)
		for range 2 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		if c := calls.Load(); c != 1 {
			t.Fatalf("%d fetches, want 1", c)
		}
	})
	t.Run("loader cancelled", func(t *testing.T) {
		calls.Store(0)
		started, release = make(chan struct{}), make(chan struct{})
		r, err := zseek.NewReaderFromIndex(fetch, idx)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		first := make(chan error, 1)
		go func() { first <- read(ctx, r) }()
		<-started
		second := make(chan error, 1)
		go func() { second <- read(context.Background(), r) }()
		cancel()
		if err := <-first; !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled read: %v, want context.Canceled", err)
		}
		if err := <-second; err != nil {
			t.Fatalf("concurrent read after the loader's cancellation: %v", err)
		}
	})
}

func TestCorruptObject(t *testing.T) {
	enc := zseek.NewEncoder()
	defer enc.Close()
	data := csvData(300_000, 15)
	obj, frames := encode(t, enc, split(data, 100_000), zseek.Default)
	tableSize := zseek.SeekTableSize(len(frames))
	tableOff := len(obj) - tableSize
	entry := func(i int) int { return tableOff + 8 + 12*i } // Comp, Raw, Checksum

	for _, tc := range []struct {
		name   string
		mutate func(b []byte) []byte
		want   string
	}{
		{"seekable magic", func(b []byte) []byte { b[len(b)-1] ^= 1; return b }, "footer"},
		{"reserved descriptor bit", func(b []byte) []byte { b[len(b)-5] |= 0x04; return b }, "reserved"},
		{"no checksum flag", func(b []byte) []byte { b[len(b)-5] = 0; return b }, "without checksums"},
		{"absurd frame count", func(b []byte) []byte { putU32(b[len(b)-9:], 0xFFFFFFFF); return b }, "limit"},
		{"frame count at limit", func(b []byte) []byte { putU32(b[len(b)-9:], zseek.MaxFrames); return b }, "larger than the object"},
		{"frame count +1", func(b []byte) []byte { putU32(b[len(b)-9:], uint32(len(frames)+1)); return b }, "magic"},
		{"frame count -1", func(b []byte) []byte { putU32(b[len(b)-9:], uint32(len(frames)-1)); return b }, "magic"},
		{"skippable magic", func(b []byte) []byte { b[tableOff] ^= 1; return b }, "magic"},
		{"frame size field", func(b []byte) []byte { b[tableOff+4]++; return b }, "frame size field"},
		{"zero compressed size", func(b []byte) []byte { putU32(b[entry(1):], 0); return b }, "compressed size 0"},
		{"compressed size too large", func(b []byte) []byte { putU32(b[entry(1):], 1<<30); return b }, "do not make up"},
		{"compressed sizes shifted", func(b []byte) []byte { putU32(b[entry(1):], frames[1].Comp+1); return b }, "do not make up"},
		{"raw size over limit", func(b []byte) []byte { putU32(b[entry(0)+4:], zseek.MaxFrameSize+1); return b }, "exceeds MaxFrameSize"},
		{"truncated end", func(b []byte) []byte { return b[:len(b)-1] }, "footer"},
		{"truncated start", func(b []byte) []byte { return b[1:] }, "do not make up"},
		{"only the footer", func(b []byte) []byte { return b[len(b)-9:] }, "smaller than an empty seek table"},
		{"empty", func(b []byte) []byte { return nil }, "smaller than an empty seek table"},
		{"not seekable", func([]byte) []byte { return bytes.Repeat([]byte("plain text "), 100) }, "footer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.mutate(bytes.Clone(obj))
			f := &fetcher{obj: b}
			_, err := zseek.NewReader(context.Background(), f.fetch, int64(len(b)))
			if !errors.Is(err, zseek.ErrCorrupt) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewReader: %v; want ErrCorrupt mentioning %q", err, tc.want)
			}
		})
	}

	// Damage that only shows when the frame is read.
	for _, tc := range []struct {
		name   string
		mutate func(b []byte)
		want   string
	}{
		{"checksum", func(b []byte) { b[entry(1)+8] ^= 0xff }, "frame 1 at offset"},
		{"raw size", func(b []byte) { putU32(b[entry(1)+4:], frames[1].Raw-1) }, "frame 1 at offset"},
		{"frame data", func(b []byte) { b[int(frames[0].Comp)+int(frames[1].Comp)/2] ^= 0x55 }, "frame 1 at offset"},
		{"frame magic", func(b []byte) { b[frames[0].Comp] ^= 1 }, "frame 1 at offset"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := bytes.Clone(obj)
			tc.mutate(b)
			r, _ := openReader(t, b)
			ctx := context.Background()
			p := make([]byte, 100)
			if _, err := r.ReadAt(ctx, p, 10); err != nil {
				t.Fatalf("frame 0 is intact, but: %v", err)
			}
			for range 2 { // the failure is not cached as success
				_, err := r.ReadAt(ctx, p, int64(frames[0].Raw)+10)
				if !errors.Is(err, zseek.ErrCorrupt) || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("ReadAt in frame 1: %v; want ErrCorrupt mentioning %q", err, tc.want)
				}
			}
		})
	}
	t.Run("checksum message", func(t *testing.T) {
		b := bytes.Clone(obj)
		b[entry(2)+8] ^= 0xff
		r, _ := openReader(t, b)
		_, err := r.ReadAt(context.Background(), make([]byte, 10), int64(frames[0].Raw+frames[1].Raw))
		want := "frame 2 at offset " + strconv.Itoa(int(frames[0].Comp+frames[1].Comp)) + ": checksum mismatch"
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("error %v; want it to contain %q", err, want)
		}
	})
}

func TestNewReaderFromIndexLimits(t *testing.T) {
	fetch := func(context.Context, int64, int64) ([]byte, error) { return nil, errors.New("unused") }
	for _, tc := range []struct {
		frame zseek.Frame
		want  string
	}{
		{zseek.Frame{Comp: 100, Raw: zseek.MaxFrameSize + 1}, "exceeds MaxFrameSize"},
		{zseek.Frame{Comp: 1 << 20, Raw: 10}, "impossible"},
	} {
		_, err := zseek.NewReaderFromIndex(fetch, zseek.NewIndex([]zseek.Frame{{Comp: 20, Raw: 10}, tc.frame}))
		if !errors.Is(err, zseek.ErrCorrupt) || !strings.Contains(err.Error(), "frame 1: ") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v; want ErrCorrupt naming frame 1 and %q", tc.frame, err, tc.want)
		}
	}
}

func TestFetchErrors(t *testing.T) {
	enc := zseek.NewEncoder()
	defer enc.Close()
	data := csvData(300_000, 16)
	obj, frames := encode(t, enc, split(data, 100_000), zseek.Fastest)
	idx := zseek.NewIndex(frames)
	boom := errors.New("boom")
	ctx := context.Background()

	var fail atomic.Bool
	fetch := func(_ context.Context, off, n int64) ([]byte, error) {
		if fail.Load() {
			return nil, boom
		}
		return bytes.Clone(obj[off : off+n]), nil
	}
	fail.Store(true)
	if _, err := zseek.NewReader(ctx, fetch, int64(len(obj))); !errors.Is(err, boom) {
		t.Fatalf("NewReader with failing fetch: %v", err)
	}
	r, err := zseek.NewReaderFromIndex(fetch, idx)
	if err != nil {
		t.Fatal(err)
	}
	p := make([]byte, 1000)
	if _, err := r.ReadAt(ctx, p, 0); !errors.Is(err, boom) {
		t.Fatalf("ReadAt with failing fetch: %v", err)
	}
	fail.Store(false) // the failure was not cached
	if n, err := r.ReadAt(ctx, p, 0); n != len(p) || err != nil || !bytes.Equal(p, data[:len(p)]) {
		t.Fatalf("ReadAt after recovery: %d, %v", n, err)
	}

	short := func(_ context.Context, off, n int64) ([]byte, error) { return bytes.Clone(obj[off : off+n-1]), nil }
	if _, err := zseek.NewReader(ctx, short, int64(len(obj))); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("NewReader with short fetch: %v", err)
	}
	r, _ = zseek.NewReaderFromIndex(short, idx)
	if _, err := r.ReadAt(ctx, p, 0); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("ReadAt with short fetch: %v", err)
	}
}

func putU32(b []byte, v uint32) {
	b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
}
