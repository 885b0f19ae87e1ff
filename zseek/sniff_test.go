package zseek_test

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"strings"
	"testing"

	"github.com/adaptfs/adaptfs/zseek"
)

// mp3Frames returns two MPEG-1 layer III frames (128 kbit/s, 44.1 kHz:
// 417 bytes each).
func mp3Frames() []byte {
	frame := make([]byte, 417)
	copy(frame, "\xff\xfb\x90\x64")
	return append(bytes.Clone(frame), frame...)
}

// adtsFrames returns two AAC ADTS frames of 100 bytes.
func adtsFrames() []byte {
	const n = 100
	frame := make([]byte, n)
	copy(frame, []byte{0xff, 0xf1, 0x50, 0x80 | n>>11, n >> 3 & 0xff, n&7<<5 | 0x1f, 0xfc})
	return append(bytes.Clone(frame), frame...)
}

func ftyp(major string, compatible ...string) []byte {
	box := []byte("\x00\x00\x00\x00ftyp" + major + "\x00\x00\x00\x00" + strings.Join(compatible, ""))
	box[3] = byte(len(box))
	return append(box, "\x00\x00\x00\x08free"...)
}

func TestSniff(t *testing.T) {
	enc := zseek.NewEncoder()
	defer enc.Close()
	img := image.NewRGBA(image.Rect(0, 0, 4, 4))
	img.Set(1, 1, color.RGBA{R: 255, A: 255})

	var gz, pngBuf, jpegBuf, zipBuf bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("hello, world"))
	zw.Close()
	if err := png.Encode(&pngBuf, img); err != nil {
		t.Fatal(err)
	}
	if err := jpeg.Encode(&jpegBuf, img, nil); err != nil {
		t.Fatal(err)
	}
	aw := zip.NewWriter(&zipBuf)
	w, _ := aw.Create("word/document.xml")
	w.Write([]byte("<xml/>"))
	aw.Close()
	zst, _ := enc.EncodeFrame(nil, []byte("hello, world"), zseek.Default)

	for _, tc := range []struct {
		name string
		p    []byte
		want string
	}{
		{"gzip", gz.Bytes(), "gzip"},
		{"zstd frame", zst, "zstd"},
		{"zstd seek table only", zseek.AppendSeekTable(nil, nil), "zstd"},
		{"png", pngBuf.Bytes(), "png"},
		{"jpeg", jpegBuf.Bytes(), "jpeg"},
		{"zip", zipBuf.Bytes(), "zip"},
		{"empty zip", []byte("PK\x05\x06" + strings.Repeat("\x00", 18)), "zip"},
		{"bzip2", []byte("BZh91AY&SY"), "bzip2"},
		{"xz", []byte("\xfd7zXZ\x00\x00\x04"), "xz"},
		{"lz4", []byte("\x04\x22\x4d\x18\x64\x40\xa7"), "lz4"},
		{"7z", []byte("7z\xbc\xaf\x27\x1c\x00\x04"), "7z"},
		{"rar4", []byte("Rar!\x1a\x07\x00"), "rar"},
		{"rar5", []byte("Rar!\x1a\x07\x01\x00"), "rar"},
		{"gif", []byte("GIF89a\x01\x00\x01\x00"), "gif"},
		{"webp", []byte("RIFF\x24\x00\x00\x00WEBPVP8 "), "webp"},
		{"mp4", ftyp("isom", "isom", "iso2", "avc1", "mp41"), "mp4"},
		{"mov", ftyp("qt  ", "qt  "), "mov"},
		{"old mov", []byte("\x00\x00\x10\x00moov\x00\x00\x00\x6cmvhd"), "mov"},
		{"m4a", ftyp("M4A ", "M4A ", "mp42", "isom"), "m4a"},
		{"heic", ftyp("heic", "mif1", "heic"), "heic"},
		{"avif", ftyp("avif", "avif", "mif1", "miaf"), "avif"},
		{"avif via mif1", ftyp("mif1", "mif1", "avif"), "avif"},
		{"mkv", []byte("\x1a\x45\xdf\xa3\xa3\x42\x86\x81\x01\x42\x82\x88matroska"), "mkv"},
		{"webm", []byte("\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm"), "webm"},
		{"mp3 id3", []byte("ID3\x04\x00\x00\x00\x00\x00\x00"), "mp3"},
		{"mp3 frames", mp3Frames(), "mp3"},
		{"aac adts", adtsFrames(), "aac"},
		{"ogg", []byte("OggS\x00\x02"), "ogg"},
		{"flac", []byte("fLaC\x00\x00\x00\x22"), "flac"},
	} {
		if got, ok := zseek.Sniff(tc.p); !ok || got != tc.want {
			t.Errorf("%s: Sniff = %q, %v; want %q", tc.name, got, ok, tc.want)
		}
	}

	for _, tc := range []struct {
		name string
		p    []byte
	}{
		{"empty", nil},
		{"text", []byte("Hello, world. This is a plain text file.\n")},
		{"csv", csvData(4096, 1)},
		{"json", []byte(`{"a": [1, 2, 3], "b": "ftyp"}`)},
		{"utf-16le text", []byte("\xff\xfeh\x00e\x00l\x00l\x00o\x00")},
		{"one mp3 header", mp3Frames()[:420]},
		{"mp3 header then junk", append(mp3Frames()[:417], "junkjunk"...)},
		{"BZh without level", []byte("BZhx")},
		{"short", []byte("P")},
		{"riff wave", []byte("RIFF\x24\x00\x00\x00WAVEfmt ")},
	} {
		if got, ok := zseek.Sniff(tc.p); ok {
			t.Errorf("%s: Sniff = %q, want no match", tc.name, got)
		}
	}
}

func TestRatio(t *testing.T) {
	enc := zseek.NewEncoder()
	defer enc.Close()
	if r := zseek.Ratio(enc, csvData(64<<10, 2)); r < 2 {
		t.Errorf("CSV ratio %.2f, want > 2", r)
	}
	if r := zseek.Ratio(enc, randomData(64<<10, 3)); r >= zseek.MinRatio {
		t.Errorf("random data ratio %.3f, want < MinRatio %v", r, zseek.MinRatio)
	}
	if r := zseek.Ratio(enc, nil); r != 1 {
		t.Errorf("empty sample ratio %v, want 1", r)
	}
}
