package zseek_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/adaptfs/adaptfs/zseek"
)

func TestSeekTableRoundTrip(t *testing.T) {
	for _, frames := range [][]zseek.Frame{
		nil,
		{{Comp: 1, Raw: 0, Checksum: 0xdeadbeef}},
		{{Comp: 10, Raw: 20, Checksum: 1}, {Comp: 0xFFFFFFFF, Raw: 0xFFFFFFFF, Checksum: 0xFFFFFFFF}, {Comp: 3, Raw: 4, Checksum: 5}},
	} {
		prefix := []byte("frames before")
		b := zseek.AppendSeekTable(bytes.Clone(prefix), frames)
		if !bytes.HasPrefix(b, prefix) {
			t.Fatal("AppendSeekTable overwrote dst")
		}
		table := b[len(prefix):]
		size, n, err := zseek.ParseFooter(b) // reads only the last 9 bytes
		if err != nil || size != len(table) || n != len(frames) || size != zseek.SeekTableSize(n) {
			t.Fatalf("ParseFooter = %d, %d, %v; want %d, %d", size, n, err, len(table), len(frames))
		}
		got, err := zseek.ParseSeekTable(table)
		if err != nil || len(got) != len(frames) {
			t.Fatalf("ParseSeekTable = %v, %v", got, err)
		}
		for i := range got {
			if got[i] != frames[i] {
				t.Fatalf("frame %d = %+v, want %+v", i, got[i], frames[i])
			}
		}
		if _, err := zseek.ParseSeekTable(b); !errors.Is(err, zseek.ErrCorrupt) {
			t.Fatalf("ParseSeekTable with leading bytes: %v, want ErrCorrupt", err)
		}
	}
}

// seedTables returns valid tables and near misses for the fuzzer.
func seedTables() [][]byte {
	valid := zseek.AppendSeekTable(nil, []zseek.Frame{{Comp: 10, Raw: 20, Checksum: 30}, {Comp: 40, Raw: 0, Checksum: 50}})
	badCount := bytes.Clone(valid)
	badCount[len(badCount)-9] = 3
	return [][]byte{
		zseek.AppendSeekTable(nil, nil),
		zseek.AppendSeekTable(nil, []zseek.Frame{{Comp: 1, Raw: 1, Checksum: 1}}),
		valid,
		valid[1:],
		valid[:len(valid)-1],
		badCount,
		{},
		[]byte("\xb1\xea\x92\x8f"),
	}
}

func FuzzParseSeekTable(f *testing.F) {
	for _, b := range seedTables() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		size, n, ferr := zseek.ParseFooter(b)
		if ferr == nil && (n < 0 || n > zseek.MaxFrames || size != zseek.SeekTableSize(n)) {
			t.Fatalf("ParseFooter = %d, %d", size, n)
		}
		frames, err := zseek.ParseSeekTable(b)
		if err != nil {
			if !errors.Is(err, zseek.ErrCorrupt) {
				t.Fatalf("error does not wrap ErrCorrupt: %v", err)
			}
		} else {
			if ferr != nil || size != len(b) || n != len(frames) {
				t.Fatalf("ParseSeekTable accepted %d bytes, %d frames; ParseFooter said %d, %d, %v", len(b), len(frames), size, n, ferr)
			}
			// Writing the frames back gives the input, but for the
			// descriptor's unused bits.
			want := bytes.Clone(b)
			want[len(want)-5] &^= 3
			if got := zseek.AppendSeekTable(nil, frames); !bytes.Equal(got, want) {
				t.Fatalf("AppendSeekTable(ParseSeekTable(b)) != b")
			}
			idx := zseek.NewIndex(frames)
			for _, off := range []int64{-1, 0, 1, idx.RawSize() / 2, idx.RawSize() - 1, idx.RawSize()} {
				lo, hi := idx.Range(off, 4096)
				if lo < 0 || hi > idx.Len() || lo > hi {
					t.Fatalf("Range(%d) = %d, %d of %d frames", off, lo, hi, idx.Len())
				}
			}
		}

		// Open b as the end of an object whose frames are zeros, served
		// without materializing them; reads must fail cleanly.
		compSize := int64(0)
		for _, f := range frames {
			compSize += int64(f.Comp)
		}
		objSize := compSize + int64(len(b))
		fetch := func(_ context.Context, off, n int64) ([]byte, error) {
			out := make([]byte, n)
			if at := compSize - off; at < n { // b starts at out[at] (at < 0: before out)
				copy(out[max(0, at):], b[max(0, -at):])
			}
			return out, nil
		}
		r, err := zseek.NewReader(context.Background(), fetch, objSize)
		if err != nil || compSize > 1<<20 {
			return
		}
		p := make([]byte, 100)
		for off := int64(0); off < r.RawSize() && off < 1<<20; off += 4096 {
			if _, err := r.ReadAt(context.Background(), p, off); err != nil && !errors.Is(err, zseek.ErrCorrupt) {
				t.Fatalf("ReadAt(%d): %v, want ErrCorrupt", off, err)
			}
		}
	})
}

func TestIndexRange(t *testing.T) {
	// Raw sizes 10, 0, 5, 0, 0, 7: offsets 0, 10, 10, 15, 15, 15, 22.
	raws := []uint32{10, 0, 5, 0, 0, 7}
	frames := make([]zseek.Frame, len(raws))
	for i, r := range raws {
		frames[i] = zseek.Frame{Comp: uint32(100 + i), Raw: r}
	}
	idx := zseek.NewIndex(frames)
	if idx.RawSize() != 22 || idx.CompSize() != 615 || idx.Len() != 6 || idx.CompOffset(2) != 201 || idx.RawOffset(5) != 15 {
		t.Fatalf("sizes: raw %d, comp %d, len %d, comp off %d, raw off %d", idx.RawSize(), idx.CompSize(), idx.Len(), idx.CompOffset(2), idx.RawOffset(5))
	}
	frames[0].Raw = 99 // NewIndex copied
	if idx.Frame(0).Raw != 10 {
		t.Fatal("Index shares the caller's slice")
	}
	for _, tc := range []struct {
		off, n int64
		lo, hi int
	}{
		{0, 1, 0, 1},
		{0, 10, 0, 1},   // ends at the boundary: not the empty frame 1 nor frame 2
		{9, 2, 0, 3},    // crosses into frame 2, taking empty frame 1 along
		{10, 1, 2, 3},   // starts at frame 2, skipping empty frame 1
		{14, 2, 2, 6},   // frames 2 .. 5 with the empty ones between
		{15, 7, 5, 6},   // last frame
		{21, 100, 5, 6}, // clipped at the end
		{22, 1, 0, 0},   // at the end
		{100, 1, 0, 0},  // past the end
		{5, 0, 0, 0},    // empty
		{5, -3, 0, 0},   // negative length
		{-5, 6, 0, 1},   // clipped at the start
		{-5, 5, 0, 0},   // entirely before the start
		{-1 << 62, 1 << 62, 0, 0},
		{1, 1<<63 - 1, 0, 6}, // no overflow
	} {
		if lo, hi := idx.Range(tc.off, tc.n); lo != tc.lo || hi != tc.hi {
			t.Errorf("Range(%d, %d) = %d, %d; want %d, %d", tc.off, tc.n, lo, hi, tc.lo, tc.hi)
		}
	}
	empty := zseek.NewIndex(nil)
	if lo, hi := empty.Range(0, 10); lo != 0 || hi != 0 || empty.RawSize() != 0 || empty.CompSize() != 0 {
		t.Fatal("empty index")
	}
}
