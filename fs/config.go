package fs

import (
	"fmt"
	"time"
)

// Config is the file system's part of the configuration.
type Config struct {
	// DirCacheTTL is how long a directory listing from S3 is trusted, so
	// that cp -r of many new files does not pay a LIST per lookup.
	DirCacheTTL time.Duration `toml:"dir_cache_ttl"`
	// AttrCacheTTL is how long the kernel may cache attributes and entries.
	AttrCacheTTL time.Duration `toml:"attr_cache_ttl"`
	// ReadAheadMB is how far sequential reads of uploaded objects fetch ahead.
	ReadAheadMB int `toml:"read_ahead_mb"`
	// WritebackCache lets the kernel cache writes and send them in large
	// requests; close and fsync still wait for every byte to reach adaptfs.
	WritebackCache bool `toml:"writeback_cache"`
	// Mount options (also settable with -o).
	AllowOther         bool   `toml:"allow_other"`
	DefaultPermissions bool   `toml:"default_permissions"`
	ReadOnly           bool   `toml:"ro"`
	UID                int64  `toml:"uid"`   // owner of objects without uid metadata; -1: the mounting user
	GID                int64  `toml:"gid"`   // group likewise
	Umask              string `toml:"umask"` // octal, applied to objects without mode metadata
	AllowNonEmpty      bool   `toml:"allow_nonempty"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		DirCacheTTL:    5 * time.Second,
		AttrCacheTTL:   time.Second,
		ReadAheadMB:    8,
		WritebackCache: true,
		UID:            -1,
		GID:            -1,
		Umask:          "022",
	}
}

// Validate reports the first bad value, naming its key.
func (c Config) Validate() error {
	switch {
	case c.DirCacheTTL < 0:
		return fmt.Errorf("dir_cache_ttl: must not be negative, got %s", c.DirCacheTTL)
	case c.AttrCacheTTL < 0:
		return fmt.Errorf("attr_cache_ttl: must not be negative, got %s", c.AttrCacheTTL)
	case c.ReadAheadMB < 0 || c.ReadAheadMB > 1024:
		return fmt.Errorf("read_ahead_mb: must be within 0..1024, got %d", c.ReadAheadMB)
	case c.UID < -1 || c.UID > 1<<32-1:
		return fmt.Errorf("uid: %d is not a valid user id", c.UID)
	case c.GID < -1 || c.GID > 1<<32-1:
		return fmt.Errorf("gid: %d is not a valid group id", c.GID)
	}
	if _, err := c.UmaskBits(); err != nil {
		return err
	}
	return nil
}

// UmaskBits parses Umask.
func (c Config) UmaskBits() (uint32, error) {
	var m uint32
	if _, err := fmt.Sscanf(c.Umask, "%o", &m); err != nil || m > 0o777 || len(c.Umask) > 4 {
		return 0, fmt.Errorf("umask: %q is not an octal mode like 022", c.Umask)
	}
	return m, nil
}
