package zseek

import (
	"bytes"
	"encoding/binary"
)

// MinRatio is the compression ratio at the Fastest level below which
// storing data as-is is better: the saving would not pay for the CPU and
// for the extra hop through the decoder on every read.
const MinRatio = 1.1

// Ratio returns len(sample) divided by its compressed size at Fastest, as
// a cheap estimate of how well the data compresses (1 for an empty
// sample). Samples of a few KiB or more give meaningful results; only the
// first MaxFrameSize bytes are used.
func Ratio(enc *Encoder, sample []byte) float64 {
	if len(sample) == 0 {
		return 1
	}
	sample = sample[:min(len(sample), MaxFrameSize)]
	out, _ := enc.EncodeFrame(nil, sample, Fastest)
	return float64(len(sample)) / float64(len(out))
}

// Sniff reports whether p, the start of a file, is in a known
// already-compressed format (archives, compressed images, audio and
// video), and which: "zstd", "gzip", "bzip2", "xz", "lz4", "zip", "7z",
// "rar", "jpeg", "png", "gif", "webp", "mp4", "mov", "m4a", "heic", "avif",
// "jp2", "mkv", "webm", "mp3", "aac", "ogg" or "flac". Compressing such data
// again gains nothing. Formats are recognized by their magic bytes; MPEG
// audio without an ID3 tag needs two consecutive frame headers in p.
func Sniff(p []byte) (format string, ok bool) {
	has := func(off int, magic string) bool {
		return len(p) >= off+len(magic) && string(p[off:off+len(magic)]) == magic
	}
	switch {
	case has(0, "\x28\xb5\x2f\xfd"):
		return "zstd", true
	case len(p) >= 4 && binary.LittleEndian.Uint32(p)&^0xF == 0x184D2A50:
		// A zstd skippable frame (e.g. a seek table or padding).
		return "zstd", true
	case has(0, "\x1f\x8b\x08"):
		return "gzip", true
	case has(0, "BZh") && len(p) >= 4 && p[3] >= '1' && p[3] <= '9':
		return "bzip2", true
	case has(0, "\xfd7zXZ\x00"):
		return "xz", true
	case has(0, "\x04\x22\x4d\x18"), has(0, "\x02\x21\x4c\x18"): // frame, legacy
		return "lz4", true
	case has(0, "PK\x03\x04"), has(0, "PK\x05\x06"), has(0, "PK\x07\x08"):
		// Also jar, docx/xlsx/pptx, odt, epub, apk.
		return "zip", true
	case has(0, "7z\xbc\xaf\x27\x1c"):
		return "7z", true
	case has(0, "Rar!\x1a\x07"):
		return "rar", true
	case has(0, "\xff\xd8\xff"):
		return "jpeg", true
	case has(0, "\x89PNG\r\n\x1a\n"):
		return "png", true
	case has(0, "GIF87a"), has(0, "GIF89a"):
		return "gif", true
	case has(0, "RIFF") && has(8, "WEBP"):
		return "webp", true
	case has(4, "ftyp"):
		return sniffFtyp(p), true
	case has(4, "moov"), has(4, "mdat"), has(4, "wide"), has(4, "pnot"):
		// Old QuickTime files start with a movie atom, not ftyp.
		return "mov", true
	case has(0, "\x1a\x45\xdf\xa3"):
		// EBML; the DocType element near the start names the flavour.
		if bytes.Contains(p[:min(len(p), 64)], []byte("webm")) {
			return "webm", true
		}
		return "mkv", true
	case has(0, "OggS"):
		return "ogg", true
	case has(0, "fLaC"):
		return "flac", true
	case has(0, "ID3"):
		return "mp3", true
	}
	if mpegFrames(p) {
		return "mp3", true
	}
	if adtsFrames(p) {
		return "aac", true
	}
	return "", false
}

// sniffFtyp names an ISO base media file (p[4:8] == "ftyp") by the major
// and compatible brands of its ftyp box.
func sniffFtyp(p []byte) string {
	end := min(len(p), int(binary.BigEndian.Uint32(p)))
	major := ""
	if len(p) >= 12 {
		major = string(p[8:12])
	}
	brands := []string{major}
	for i := 16; i+4 <= end; i += 4 { // skip minor_version at 12
		brands = append(brands, string(p[i:i+4]))
	}
	for _, b := range brands {
		if b == "avif" || b == "avis" {
			return "avif"
		}
	}
	for _, b := range brands {
		switch b {
		case "heic", "heix", "hevc", "hevx", "heim", "heis", "mif1", "msf1":
			return "heic"
		}
	}
	switch major {
	case "qt  ":
		return "mov"
	case "M4A ", "M4B ", "M4P ":
		return "m4a"
	case "jp2 ", "jpx ", "jpm ":
		return "jp2"
	}
	return "mp4"
}

// mpegFrames reports whether p starts with two consecutive MPEG audio
// (mp3, mp2) frame headers; one alone is too weak (0xFF 0xFE, the UTF-16
// byte order mark, passes as one).
func mpegFrames(p []byte) bool {
	n := mpegFrameLen(p)
	return n > 0 && len(p) >= n+4 && mpegFrameLen(p[n:]) > 0 && p[n+1]&^1 == p[1]&^1
}

// mpegFrameLen returns the length of the MPEG audio frame whose header
// starts p, or 0 if p does not start with a valid header.
func mpegFrameLen(p []byte) int {
	if len(p) < 4 || p[0] != 0xff || p[1]&0xe0 != 0xe0 {
		return 0
	}
	version := p[1] >> 3 & 3 // 0: MPEG 2.5, 1: reserved, 2: MPEG 2, 3: MPEG 1
	layer := p[1] >> 1 & 3   // 1: III, 2: II, 3: I, 0: reserved
	bi := int(p[2] >> 4)
	si := int(p[2] >> 2 & 3)
	pad := int(p[2] >> 1 & 1)
	if version == 1 || layer == 0 || bi == 0 || bi == 15 || si == 3 {
		return 0 // reserved values; free-format bitrate (0) has no length
	}
	// Bitrates in kbit/s, by table then index.
	rates := [5][15]int{
		{0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448}, // MPEG 1, layer I
		{0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384},    // MPEG 1, layer II
		{0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320},     // MPEG 1, layer III
		{0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256},    // MPEG 2/2.5, layer I
		{0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160},         // MPEG 2/2.5, layers II, III
	}
	sampleRates := [3]int{44100, 48000, 32000} // MPEG 1; halved for 2, quartered for 2.5
	var table int
	switch {
	case version == 3:
		table = int(3 - layer) // I: 0, II: 1, III: 2
	case layer == 3:
		table = 3
	default:
		table = 4
	}
	bitrate := rates[table][bi] * 1000
	sr := sampleRates[si]
	switch version {
	case 2:
		sr /= 2
	case 0:
		sr /= 4
	}
	switch {
	case layer == 3: // layer I: 4-byte slots
		return (12*bitrate/sr + pad) * 4
	case layer == 1 && version != 3: // layer III, MPEG 2/2.5: 576 samples
		return 72*bitrate/sr + pad
	default:
		return 144*bitrate/sr + pad
	}
}

// adtsFrames reports whether p starts with two consecutive AAC ADTS frame
// headers.
func adtsFrames(p []byte) bool {
	n := adtsFrameLen(p)
	return n > 0 && len(p) >= n+7 && adtsFrameLen(p[n:]) > 0
}

// adtsFrameLen returns the length of the ADTS frame whose header starts p,
// or 0.
func adtsFrameLen(p []byte) int {
	// Sync word 0xFFF, layer 00; sampling index 13-15 reserved.
	if len(p) < 7 || p[0] != 0xff || p[1]&0xf6 != 0xf0 || p[2]>>2&0xf > 12 {
		return 0
	}
	n := int(p[3]&3)<<11 | int(p[4])<<3 | int(p[5]>>5)
	if n < 7 {
		return 0
	}
	return n
}
