package zseek

import (
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/cespare/xxhash/v2"
	"github.com/klauspost/compress/zstd"
)

// Frame describes one zstd frame of an object, as recorded in the seek
// table.
type Frame struct {
	Comp     uint32 // compressed size: bytes of the frame in the object
	Raw      uint32 // decompressed size
	Checksum uint32 // low 32 bits of XXH64 (seed 0) of the raw bytes
}

// Encoder compresses frames. It keeps one klauspost encoder per level,
// created on first use and reused, since setting one up costs far more
// than encoding a small frame. It is safe for concurrent use; calls at the
// same level run up to the concurrency it was made with (NewEncoder: one,
// which bounds memory to one encoder state per level) and take turns
// beyond it.
//
// Frames carry zstd's own content checksum (4 bytes per frame, the same
// XXH64 value as the seek table's): decoders that ignore the seek table,
// such as `zstd -d`, then still detect corruption. The Reader verifies the
// seek table's checksum instead and tells its decoder to skip the frame's,
// so the data is hashed once per read.
type Encoder struct {
	mu   sync.Mutex
	conc int
	encs [numLevels]*zstd.Encoder // index None unused
}

// encoderWindow is the encoders' window: adaptfs cuts 2 MiB frames, and a
// larger frame still encodes, its matches limited to the window. With it,
// an encoder state of the three faster levels takes 2.5–6 MiB.
const encoderWindow = 2 << 20

// NewEncoder returns an Encoder; encoders for each level are created
// lazily.
func NewEncoder() *Encoder { return &Encoder{conc: 1} }

// NewParallelEncoder returns an Encoder that runs up to n EncodeFrame calls
// at one level at once (n encoder states per level used).
func NewParallelEncoder(n int) *Encoder { return &Encoder{conc: max(1, n)} }

// encoder returns the shared klauspost encoder for a compressing level.
func (e *Encoder) encoder(lvl Level) *zstd.Encoder {
	e.mu.Lock()
	defer e.mu.Unlock()
	if z := e.encs[lvl]; z != nil {
		return z
	}
	z, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(lvl.zstd()),
		// e.conc encoder states per level, one for Best: concurrent calls
		// beyond it take turns (see EncoderMemory).
		zstd.WithEncoderConcurrency(statesOf(lvl, e.conc)),
		zstd.WithEncoderCRC(true),
		// An empty input still yields a frame, so every table entry is a
		// real frame.
		zstd.WithZeroFrames(true),
		// Frames are independent and small: a window past the frame buys
		// nothing and costs memory per encoder state (the default
		// windows made three levels × two states take 93 MiB).
		zstd.WithWindowSize(encoderWindow),
		zstd.WithLowerEncoderMem(true),
	)
	if err != nil {
		// Only invalid options make NewWriter fail; ours are constant.
		panic(fmt.Sprintf("zseek: creating zstd encoder for level %v: %v", lvl, err))
	}
	e.encs[lvl] = z
	return z
}

// stateMemory is what one encoder state of each level holds with our
// options (2 MiB window, lower-memory mode), measured after encoding a
// 2 MiB frame. Best's hash tables alone are 32 MiB.
var stateMemory = [numLevels]int64{None: 0, Fastest: 5 << 19, Default: 7 << 19, Better: 13 << 19, Best: 37 << 20}

// statesOf is how many encoder states a level gets for conc concurrent
// calls: Best one, since two would take 72 MiB for a level too slow to be
// worth running on every core.
func statesOf(lvl Level, conc int) int {
	if lvl == Best {
		return 1
	}
	return max(1, conc)
}

// EncoderMemory is the most the encoder states of lvl take in an Encoder
// made for conc concurrent calls.
func EncoderMemory(lvl Level, conc int) int64 {
	return int64(statesOf(lvl, conc)) * stateMemory[lvl]
}

// EncodeFrame appends to dst one independent zstd frame holding src,
// compressed at lvl (None stores src in raw blocks), and returns the
// extended slice and the frame's seek-table entry. The frame records its
// content size, so decoders can allocate exactly.
//
// It panics if len(src) > MaxFrameSize or lvl is not a valid Level: both
// are programming errors (frames are 1–4 MiB, levels come from ParseLevel).
func (e *Encoder) EncodeFrame(dst, src []byte, lvl Level) ([]byte, Frame) {
	if len(src) > MaxFrameSize {
		panic(fmt.Sprintf("zseek: EncodeFrame: %d bytes exceeds MaxFrameSize %d", len(src), MaxFrameSize))
	}
	if !lvl.valid() {
		panic(fmt.Sprintf("zseek: EncodeFrame: invalid level %d", int(lvl)))
	}
	// Hash explicitly rather than lifting the frame's trailing checksum:
	// XXH64 runs at >10 GB/s, negligible next to compression, and the
	// value then does not depend on how the encoder lays out frames.
	sum := uint32(xxhash.Sum64(src))
	start := len(dst)
	if lvl == None {
		dst = appendStoredFrame(dst, src, sum)
	} else {
		dst = e.encoder(lvl).EncodeAll(src, dst)
	}
	return dst, Frame{Comp: uint32(len(dst) - start), Raw: uint32(len(src)), Checksum: sum}
}

// Close releases the encoders. The Encoder stays usable: a later
// EncodeFrame creates a fresh encoder for its level.
func (e *Encoder) Close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, z := range e.encs {
		if z != nil {
			_ = z.Close() // nothing to flush: only EncodeAll is used
			e.encs[i] = nil
		}
	}
}

const (
	zstdMagic    = 0xFD2FB528
	maxBlockSize = 128 << 10 // zstd's Block_Maximum_Size
)

// appendStoredFrame appends a zstd frame that stores src in raw
// (uncompressed) blocks, for Level None: the object stays a seekable zstd
// object that every decoder reads, at the cost of 3 bytes per 128 KiB.
func appendStoredFrame(dst, src []byte, sum uint32) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, zstdMagic)
	// Frame_Header_Descriptor: 4-byte Frame_Content_Size (flag 2),
	// Single_Segment (window = content size, so no Window_Descriptor),
	// Content_Checksum.
	dst = append(dst, 2<<6|1<<5|1<<2)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(src)))
	for {
		n := min(len(src), maxBlockSize)
		last := n == len(src)
		hdr := uint32(n) << 3 // Block_Type 0 = Raw_Block
		if last {
			hdr |= 1
		}
		dst = append(dst, byte(hdr), byte(hdr>>8), byte(hdr>>16))
		dst = append(dst, src[:n]...)
		src = src[n:]
		if last {
			break
		}
	}
	return binary.LittleEndian.AppendUint32(dst, sum)
}
