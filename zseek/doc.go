// Package zseek writes and reads the zstd seekable format
// (facebook/zstd contrib/seekable_format): an object is a sequence of
// independent zstd frames, one per 1–4 MiB of input, followed by a seek
// table in a skippable frame. Any zstd decoder reads such an object
// (`zstd -d` skips the table), and a random read needs only the frames it
// touches, fetched with one ranged GET.
//
// The package does no network or file I/O: the encoder appends to byte
// slices, and the Reader asks a FetchFunc for compressed byte ranges. All
// exported types are safe for concurrent use.
//
// Writing an object:
//
//	enc := zseek.NewEncoder()
//	var obj []byte
//	var frames []zseek.Frame
//	for chunk := range chunks { // 1–4 MiB each
//		var f zseek.Frame
//		obj, f = enc.EncodeFrame(obj, chunk, zseek.Default)
//		frames = append(frames, f)
//	}
//	obj = zseek.AppendSeekTable(obj, frames)
//
// Reading it back at random offsets:
//
//	r, err := zseek.NewReader(ctx, fetch, objectSize)
//	n, err := r.ReadAt(ctx, p, off)
//
// Integrity: every seek-table entry carries the low 32 bits of the XXH64 of
// the frame's raw bytes; the Reader verifies each frame it decodes against
// it. Errors caused by malformed or corrupt data wrap ErrCorrupt.
package zseek

import "errors"

// ErrCorrupt is wrapped by every error that reports malformed or corrupt
// data (seek table, frame, checksum), as opposed to errors of the
// FetchFunc or of the caller's arguments.
var ErrCorrupt = errors.New("zseek: corrupt object")

// MaxFrameSize is the largest raw frame EncodeFrame accepts and the Reader
// decodes. The Reader holds whole decoded frames in memory, so the limit
// keeps a hostile seek table from making it allocate gigabytes; producers
// use 1–4 MiB frames.
const MaxFrameSize = 64 << 20

// MaxFrames is the largest number of frames in one object (a 48 MiB seek
// table; 4 TiB of raw data at 1 MiB per frame). ParseFooter rejects larger
// counts so a tiny corrupt footer cannot make a caller allocate gigabytes.
const MaxFrames = 1 << 22

// compressBound is an upper bound of a frame's compressed size for n raw
// bytes (zstd's ZSTD_COMPRESSBOUND plus room for headers and our stored
// frames' 3-byte block headers).
func compressBound(n int) int { return n + n>>7 + 1<<10 }
