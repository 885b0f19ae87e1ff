// Package adapt measures the network from per-request samples and chooses
// the upload parameters (part size, concurrency, compression level). It does
// no I/O and imports nothing else of adaptfs, so it can run on a simulated
// clock in tests.
package adapt

import "fmt"

// MiB is 2^20 bytes.
const MiB = 1 << 20

// Params are the upload parameters in force. The uploader reads them when it
// cuts the next part and when it starts the next request; a part already in
// flight keeps the size it was cut with.
type Params struct {
	PartSize    int64 // bytes of the next part to cut (before S3 limits are applied)
	Concurrency int   // requests in flight across all uploads
}

// Config holds the parameter bounds and the starting values.
type Config struct {
	PartSizeMB     int `toml:"part_size_mb"` // starting (or fixed) part size
	Concurrency    int `toml:"concurrency"`  // starting (or fixed) concurrency
	MinChunkSizeMB int `toml:"min_chunk_size_mb"`
	MaxChunkSizeMB int `toml:"max_chunk_size_mb"`
	MinConcurrency int `toml:"min_concurrency"`
	MaxConcurrency int `toml:"max_concurrency"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		PartSizeMB:     16,
		Concurrency:    8,
		MinChunkSizeMB: 5,
		MaxChunkSizeMB: 100,
		MinConcurrency: 1,
		MaxConcurrency: 8,
	}
}

// Validate reports the first bad value, naming its key.
func (c Config) Validate() error {
	switch {
	case c.MinChunkSizeMB < 5:
		return fmt.Errorf("min_chunk_size_mb: S3 parts must be at least 5 MiB, got %d", c.MinChunkSizeMB)
	case c.MaxChunkSizeMB > 5*1024:
		return fmt.Errorf("max_chunk_size_mb: S3 parts can be at most 5120 MiB, got %d", c.MaxChunkSizeMB)
	case c.MaxChunkSizeMB < c.MinChunkSizeMB:
		return fmt.Errorf("max_chunk_size_mb: %d is below min_chunk_size_mb %d", c.MaxChunkSizeMB, c.MinChunkSizeMB)
	case c.PartSizeMB < c.MinChunkSizeMB || c.PartSizeMB > c.MaxChunkSizeMB:
		return fmt.Errorf("part_size_mb: %d is outside [min_chunk_size_mb, max_chunk_size_mb] = [%d, %d]", c.PartSizeMB, c.MinChunkSizeMB, c.MaxChunkSizeMB)
	case c.MinConcurrency < 1:
		return fmt.Errorf("min_concurrency: must be at least 1, got %d", c.MinConcurrency)
	case c.MaxConcurrency < c.MinConcurrency:
		return fmt.Errorf("max_concurrency: %d is below min_concurrency %d", c.MaxConcurrency, c.MinConcurrency)
	case c.MaxConcurrency > 1024:
		return fmt.Errorf("max_concurrency: at most 1024, got %d", c.MaxConcurrency)
	case c.Concurrency < c.MinConcurrency || c.Concurrency > c.MaxConcurrency:
		return fmt.Errorf("concurrency: %d is outside [min_concurrency, max_concurrency] = [%d, %d]", c.Concurrency, c.MinConcurrency, c.MaxConcurrency)
	}
	return nil
}

// Fixed is a parameter source that never changes: the configured values.
type Fixed struct{ P Params }

// NewFixed returns the starting parameters of c as a fixed source.
func NewFixed(c Config) Fixed {
	return Fixed{P: Params{PartSize: int64(c.PartSizeMB) * MiB, Concurrency: c.Concurrency}}
}

// Params returns the fixed parameters.
func (f Fixed) Params() Params { return f.P }
