package stage

import (
	"fmt"
	"time"
)

// Config is the staging area's part of the configuration.
type Config struct {
	// StagingDir holds one data file and one manifest per staged file.
	// Default: $XDG_CACHE_HOME/adaptfs/<bucket>/<prefix hash> (0700).
	StagingDir string `toml:"staging_dir"`
	// StagingSync: "none" (close returns once the kernel has the bytes) or
	// "close" (close also fsyncs the staging file).
	StagingSync        string `toml:"staging_sync"`
	MaxStagingMemoryMB int    `toml:"max_staging_memory_mb"`
	// MaxStagingDiskMB caps the bytes of staged files (0: only the disk's
	// free space). A write that would pass it waits for uploads to free
	// space, at most StagingFullWait, then fails with ENOSPC.
	MaxStagingDiskMB int           `toml:"max_staging_disk_mb"`
	StagingFullWait  time.Duration `toml:"staging_full_wait"`
	StageAheadChunks int           `toml:"stage_ahead_chunks"`
	// WriteBackDelay is how long a closed file waits before its upload
	// starts, so that rsync's write-then-rename and a quick chmod/touch after
	// close cost no extra request. fsync and `adaptfs sync` skip the wait.
	WriteBackDelay time.Duration `toml:"write_back_delay"`
	// Compression: "auto" (compress what compresses, at the level the
	// controller picks), "off", or a fixed level: "zstd-fast", "zstd",
	// "zstd-high", "zstd-max".
	Compression string `toml:"compression"`
	// CompressionRules override Compression by path, first match wins:
	// "media/*.mp4=off", "logs/=zstd-high" (DIR/GLOB=MODE; the glob is
	// matched against the base name of keys under DIR).
	CompressionRules []string `toml:"compression_rules"`
	// OtherMemory is the part of max_staging_memory_mb that buffers outside
	// the staging area take (the FUSE layer's request buffers): part
	// buffers get the rest, at least minPoolMemory.
	OtherMemory int64 `toml:"-"`
}

const minPoolMemory = 8 << 20

// poolMemory is the byte budget of the part buffer pool.
func (c Config) poolMemory() int64 {
	return max(minPoolMemory, int64(c.MaxStagingMemoryMB)<<20-c.OtherMemory)
}

// DefaultConfig returns the defaults (StagingDir is filled in by the caller).
func DefaultConfig() Config {
	return Config{
		StagingSync:        "none",
		MaxStagingMemoryMB: 256,
		StageAheadChunks:   3,
		WriteBackDelay:     500 * time.Millisecond,
		StagingFullWait:    time.Minute,
		Compression:        CompressAuto,
	}
}

// Validate reports the first bad value, naming its key.
func (c Config) Validate() error {
	switch {
	case c.StagingSync != "none" && c.StagingSync != "close":
		return fmt.Errorf("staging_sync: must be \"none\" or \"close\", got %q", c.StagingSync)
	case c.MaxStagingMemoryMB < 16:
		return fmt.Errorf("max_staging_memory_mb: at least 16, got %d", c.MaxStagingMemoryMB)
	case c.StageAheadChunks < 1 || c.StageAheadChunks > 64:
		return fmt.Errorf("stage_ahead_chunks: must be within 1..64, got %d", c.StageAheadChunks)
	case c.WriteBackDelay < 0 || c.WriteBackDelay > time.Hour:
		return fmt.Errorf("write_back_delay: must be within 0..1h, got %s", c.WriteBackDelay)
	case c.MaxStagingDiskMB < 0:
		return fmt.Errorf("max_staging_disk_mb: must be 0 (no cap) or more, got %d", c.MaxStagingDiskMB)
	case c.MaxStagingDiskMB > 0 && c.MaxStagingDiskMB < 64:
		return fmt.Errorf("max_staging_disk_mb: at least 64 (or 0 for no cap), got %d", c.MaxStagingDiskMB)
	case c.StagingFullWait < 0 || c.StagingFullWait > 24*time.Hour:
		return fmt.Errorf("staging_full_wait: must be within 0..24h, got %s", c.StagingFullWait)
	}
	if err := checkCompressionMode(c.Compression); err != nil {
		return fmt.Errorf("compression: %w", err)
	}
	for i, r := range c.CompressionRules {
		if _, err := parseCompressionRule(r); err != nil {
			return fmt.Errorf("compression_rules: item %d: %w", i+1, err)
		}
	}
	return nil
}
