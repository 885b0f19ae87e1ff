package zseek

import (
	"encoding/binary"
	"fmt"
)

// Seek table layout (all integers little-endian):
//
//	Skippable_Magic_Number 4  0x184D2A5E
//	Frame_Size             4  size of what follows
//	entries                12 each: Compressed_Size, Decompressed_Size, Checksum
//	Number_Of_Frames       4  ┐
//	Seek_Table_Descriptor  1  ├ footer (FooterSize bytes)
//	Seekable_Magic_Number  4  ┘ 0x8F92EAB1
const (
	skippableMagic  = 0x184D2A5E
	seekableMagic   = 0x8F92EAB1
	skippableHeader = 8
	entrySize       = 12

	descChecksum = 1 << 7 // Checksum_Flag: entries carry checksums
	descReserved = 0x7C   // bits 6-2, must be zero; bits 1-0 are unused
)

// FooterSize is the size of the seek table's footer, the last bytes of an
// object, from which ParseFooter learns the table's size.
const FooterSize = 9

// SeekTableSize returns the size of the seek-table skippable frame for
// nframes frames.
func SeekTableSize(nframes int) int { return skippableHeader + nframes*entrySize + FooterSize }

// AppendSeekTable appends the seek table for frames (in object order) and
// returns the extended slice. Entries always carry checksums. It panics if
// len(frames) > MaxFrames, which ParseFooter would reject.
func AppendSeekTable(dst []byte, frames []Frame) []byte {
	if len(frames) > MaxFrames {
		panic(fmt.Sprintf("zseek: AppendSeekTable: %d frames exceeds MaxFrames %d", len(frames), MaxFrames))
	}
	le := binary.LittleEndian
	dst = le.AppendUint32(dst, skippableMagic)
	dst = le.AppendUint32(dst, uint32(SeekTableSize(len(frames))-skippableHeader))
	for _, f := range frames {
		dst = le.AppendUint32(dst, f.Comp)
		dst = le.AppendUint32(dst, f.Raw)
		dst = le.AppendUint32(dst, f.Checksum)
	}
	dst = le.AppendUint32(dst, uint32(len(frames)))
	dst = append(dst, descChecksum)
	return le.AppendUint32(dst, seekableMagic)
}

// ParseFooter reads the last FooterSize bytes of footer (the end of an
// object) and returns the size of the whole seek-table skippable frame,
// i.e. how many bytes at the end of the object are the table, and the
// number of frames it lists.
func ParseFooter(footer []byte) (tableSize int, nframes int, err error) {
	if len(footer) < FooterSize {
		return 0, 0, fmt.Errorf("%w: seek table footer needs %d bytes, have %d", ErrCorrupt, FooterSize, len(footer))
	}
	f := footer[len(footer)-FooterSize:]
	if m := binary.LittleEndian.Uint32(f[5:]); m != seekableMagic {
		return 0, 0, fmt.Errorf("%w: no seekable zstd footer (magic %#08x, want %#08x)", ErrCorrupt, m, seekableMagic)
	}
	desc := f[4]
	if desc&descReserved != 0 {
		return 0, 0, fmt.Errorf("%w: seek table descriptor %#02x has reserved bits set", ErrCorrupt, desc)
	}
	if desc&descChecksum == 0 {
		// Every frame must be verifiable; our writer always sets the flag.
		return 0, 0, fmt.Errorf("%w: seek table without checksums is not supported", ErrCorrupt)
	}
	n := binary.LittleEndian.Uint32(f)
	if n > MaxFrames {
		return 0, 0, fmt.Errorf("%w: seek table lists %d frames, limit %d", ErrCorrupt, n, MaxFrames)
	}
	return SeekTableSize(int(n)), int(n), nil
}

// ParseSeekTable parses b, which must be exactly the seek-table skippable
// frame (the last tableSize bytes of the object, see ParseFooter), and
// returns its frames in object order.
func ParseSeekTable(b []byte) ([]Frame, error) {
	size, n, err := ParseFooter(b)
	if err != nil {
		return nil, err
	}
	if len(b) != size {
		return nil, fmt.Errorf("%w: seek table of %d frames is %d bytes, have %d", ErrCorrupt, n, size, len(b))
	}
	le := binary.LittleEndian
	if m := le.Uint32(b); m != skippableMagic {
		return nil, fmt.Errorf("%w: seek table starts with magic %#08x, want %#08x", ErrCorrupt, m, skippableMagic)
	}
	if fs := le.Uint32(b[4:]); fs != uint32(size-skippableHeader) {
		return nil, fmt.Errorf("%w: seek table frame size field is %d, want %d", ErrCorrupt, fs, size-skippableHeader)
	}
	frames := make([]Frame, n)
	e := b[skippableHeader:]
	for i := range frames {
		f := Frame{Comp: le.Uint32(e), Raw: le.Uint32(e[4:]), Checksum: le.Uint32(e[8:])}
		if f.Comp == 0 {
			// No zstd frame is empty; a zero size would also make the
			// Reader fetch nothing for raw bytes it must produce.
			return nil, fmt.Errorf("%w: seek table entry %d has compressed size 0", ErrCorrupt, i)
		}
		frames[i] = f
		e = e[entrySize:]
	}
	return frames, nil
}
