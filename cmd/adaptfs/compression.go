package main

import (
	"runtime"

	"github.com/adaptfs/adaptfs/adapt"
	"github.com/adaptfs/adaptfs/cmd/adaptfs/config"
	"github.com/adaptfs/adaptfs/stage"
	"github.com/adaptfs/adaptfs/zseek"
)

// newLevelChooser makes the compression level policy for compression =
// "auto": it starts at the level the profile saved for this endpoint if it
// compresses, else at zstd-fast, which costs little on a fast link, and climbs where the
// link is the bottleneck.
func newLevelChooser(cfg config.Config, prof *adapt.Profile) *adapt.LevelChooser {
	names := []string{zseek.None.String()}
	auto := stage.AutoLevels()
	for _, l := range auto {
		names = append(names, l.String())
	}
	start := zseek.Fastest
	if prof != nil && prof.CompressionLevel != "" {
		// Not below zstd-fast: at none nothing is compressed, no curve
		// is ever measured, and a mount over a slower link would stay
		// there for good. Not above what auto chooses among.
		if l, err := zseek.ParseLevel(prof.CompressionLevel); err == nil && l > start {
			start = min(l, auto[len(auto)-1])
		}
	}
	return adapt.NewLevelChooser(cfg.Adapt, wallClock{}, names, runtime.GOMAXPROCS(0), int(start), cfg.Adaptive)
}

// compressionState is the stats source: nil when nothing is ever
// compressed.
func compressionState(cfg config.Config, l *adapt.LevelChooser) func() adapt.LevelState {
	if cfg.Compression == stage.CompressOff && len(cfg.CompressionRules) == 0 {
		return nil
	}
	return l.State
}
