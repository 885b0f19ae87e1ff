package zseek

import (
	"fmt"
	"strings"

	"github.com/klauspost/compress/zstd"
)

// Level is a compression level. None stores frames uncompressed (still a
// valid zstd frame); the others map to klauspost/compress/zstd's speeds.
type Level int

const (
	None    Level = iota // no compression
	Fastest              // zstd.SpeedFastest (≈ zstd -1)
	Default              // zstd.SpeedDefault (≈ zstd -3)
	Better               // zstd.SpeedBetterCompression (≈ zstd -7)
	Best                 // zstd.SpeedBestCompression (≈ zstd -11)
)

const numLevels = Best + 1

// String returns the configuration name of the level ("none", "zstd-fast",
// "zstd", "zstd-high", "zstd-max").
func (l Level) String() string {
	switch l {
	case None:
		return "none"
	case Fastest:
		return "zstd-fast"
	case Default:
		return "zstd"
	case Better:
		return "zstd-high"
	case Best:
		return "zstd-max"
	}
	return fmt.Sprintf("Level(%d)", int(l))
}

func (l Level) valid() bool { return l >= None && l < numLevels }

// zstd returns klauspost's encoder level; only for compressing levels.
func (l Level) zstd() zstd.EncoderLevel {
	switch l {
	case Fastest:
		return zstd.SpeedFastest
	case Default:
		return zstd.SpeedDefault
	case Better:
		return zstd.SpeedBetterCompression
	default:
		return zstd.SpeedBestCompression
	}
}

// ParseLevel parses a level name as returned by Level.String.
func ParseLevel(s string) (Level, error) {
	names := make([]string, 0, numLevels)
	for l := None; l < numLevels; l++ {
		if s == l.String() {
			return l, nil
		}
		names = append(names, l.String())
	}
	return None, fmt.Errorf("zseek: unknown compression level %q (valid: %s)", s, strings.Join(names, ", "))
}

// Levels returns the compressing levels (all but None), fastest first.
func Levels() []Level { return []Level{Fastest, Default, Better, Best} }
