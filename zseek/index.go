package zseek

import "sort"

// Index maps raw (decompressed) offsets of an object to its frames and
// their compressed byte ranges. It is immutable and safe for concurrent
// use.
type Index struct {
	frames []Frame
	raw    []int64 // raw[i] = raw offset of frame i; raw[len(frames)] = RawSize
	comp   []int64 // comp[i] = compressed offset of frame i; comp[len(frames)] = CompSize
}

// NewIndex builds the index of frames (in object order). It copies frames.
func NewIndex(frames []Frame) *Index {
	x := &Index{
		frames: append([]Frame(nil), frames...),
		raw:    make([]int64, len(frames)+1),
		comp:   make([]int64, len(frames)+1),
	}
	for i, f := range frames {
		x.raw[i+1] = x.raw[i] + int64(f.Raw)
		x.comp[i+1] = x.comp[i] + int64(f.Comp)
	}
	return x
}

// Len returns the number of frames.
func (x *Index) Len() int { return len(x.frames) }

// Frame returns frame i.
func (x *Index) Frame(i int) Frame { return x.frames[i] }

// Frames returns a copy of the frames, e.g. for AppendSeekTable.
func (x *Index) Frames() []Frame { return append([]Frame(nil), x.frames...) }

// RawOffset returns the raw offset at which frame i starts; RawOffset(Len())
// is RawSize.
func (x *Index) RawOffset(i int) int64 { return x.raw[i] }

// CompOffset returns the object offset at which frame i starts;
// CompOffset(Len()) is CompSize.
func (x *Index) CompOffset(i int) int64 { return x.comp[i] }

// RawSize returns the decompressed size of the object.
func (x *Index) RawSize() int64 { return x.raw[len(x.frames)] }

// CompSize returns the size of the object's frames, without the seek
// table.
func (x *Index) CompSize() int64 { return x.comp[len(x.frames)] }

// Range returns the frames [lo, hi) that hold the raw bytes [off, off+n),
// clipped to [0, RawSize). lo == hi if the clipped range is empty. Empty
// frames at its edges are left out; those inside it are included, since
// their bytes lie within the compressed range to fetch.
func (x *Index) Range(off, n int64) (lo, hi int) {
	if n <= 0 {
		return 0, 0
	}
	if off < 0 { // n > 0 > off: cannot overflow
		n += off
		off = 0
	}
	size := x.RawSize()
	if n <= 0 || off >= size {
		return 0, 0
	}
	end := size
	if n < size-off {
		end = off + n
	}
	nf := len(x.frames)
	// First frame ending after off; last frame starting before end.
	lo = sort.Search(nf, func(i int) bool { return x.raw[i+1] > off })
	hi = sort.Search(nf, func(i int) bool { return x.raw[i] >= end })
	return lo, hi
}
