package adapt

import (
	"fmt"
	"math"
	"time"
)

// MiB is 2^20 bytes.
const MiB = 1 << 20

// S3's multipart limits on the size of one part.
const (
	s3MinPart = 5 * MiB
	s3MaxPart = 5 * 1024 * MiB
)

// Params are the upload parameters in force. The uploader reads them when it
// cuts the next part and when it starts the next request; a part already in
// flight keeps the size it was cut with.
type Params struct {
	PartSize    int64 // bytes of the next part to cut (before S3 limits are applied)
	Concurrency int   // requests in flight across all uploads
}

// Config holds the parameter bounds, the starting values and the knobs of
// the controller. Durations are written like "5s" in the TOML file.
type Config struct {
	PartSizeMB     int `toml:"part_size_mb"` // starting (or fixed) part size
	Concurrency    int `toml:"concurrency"`  // starting (or fixed) concurrency
	MinChunkSizeMB int `toml:"min_chunk_size_mb"`
	MaxChunkSizeMB int `toml:"max_chunk_size_mb"`
	MinConcurrency int `toml:"min_concurrency"`
	MaxConcurrency int `toml:"max_concurrency"`

	// Adaptive false keeps the starting parameters for the whole session;
	// the controller still measures and reports.
	Adaptive bool `toml:"adaptive"`
	// MonitoringInterval is how often estimates are refreshed.
	MonitoringInterval time.Duration `toml:"monitoring_interval"`
	// AdaptationInterval is how long a trigger must hold before a change
	// (twice as long in conservative mode, unless the signal is strong).
	AdaptationInterval time.Duration `toml:"adaptation_interval"`
	// The relative changes that count as a signal: goodput, RTT inflation
	// over the propagation RTT, and error (loss) rate.
	BandwidthChangeThreshold float64 `toml:"bandwidth_change_threshold"`
	LatencyChangeThreshold   float64 `toml:"latency_change_threshold"`
	LossChangeThreshold      float64 `toml:"loss_change_threshold"`
	// AggressiveAdaptation grows concurrency by ×1.5 per step and halves
	// min_adaptation_interval.
	AggressiveAdaptation bool `toml:"aggressive_adaptation"`
	// ConservativeMode makes ordinary triggers hold for two adaptation
	// intervals instead of one.
	ConservativeMode bool `toml:"conservative_mode"`
	// AdaptationSensitivity divides the three thresholds: 2 reacts to
	// changes half as large, 0.5 only to changes twice as large.
	AdaptationSensitivity float64 `toml:"adaptation_sensitivity"`
	// TargetThroughputMbps stops probing for more concurrency once goodput
	// reaches it (0 = no target).
	TargetThroughputMbps float64 `toml:"target_throughput_mbps"`
	// TargetLatencyMs treats a request latency above it as congestion
	// (0 = no target).
	TargetLatencyMs float64 `toml:"target_latency_ms"`
	// MaxTolerableLoss is the request error rate above which concurrency is
	// cut regardless of RTT (the server or path is shedding load).
	MaxTolerableLoss float64 `toml:"max_tolerable_loss"`
	// MinAdaptationInterval is the least time between two changes of one
	// parameter.
	MinAdaptationInterval time.Duration `toml:"min_adaptation_interval"`
	// MaxAdaptationsPerSession caps the changes per mount (0 = unlimited).
	// Rolling back a bad change is not counted.
	MaxAdaptationsPerSession int `toml:"max_adaptations_per_session"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		PartSizeMB:     8, // the AWS CLI's multipart_chunksize: small enough that a cold start on a slow link does not commit the first parts to a size the controller would not choose
		Concurrency:    8,
		MinChunkSizeMB: 5,
		MaxChunkSizeMB: 100,
		MinConcurrency: 1,
		MaxConcurrency: 32,

		Adaptive:                 true,
		MonitoringInterval:       2 * time.Second,
		AdaptationInterval:       5 * time.Second,
		BandwidthChangeThreshold: 0.1,
		LatencyChangeThreshold:   0.2,
		LossChangeThreshold:      0.001,
		AggressiveAdaptation:     false,
		ConservativeMode:         true,
		AdaptationSensitivity:    1.0,
		TargetThroughputMbps:     0,
		TargetLatencyMs:          0,
		MaxTolerableLoss:         0.05,
		MinAdaptationInterval:    10 * time.Second,
		MaxAdaptationsPerSession: 0,
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
	case c.MonitoringInterval < 100*time.Millisecond || c.MonitoringInterval > time.Minute:
		return fmt.Errorf("monitoring_interval: must be between 100ms and 1m, got %s", c.MonitoringInterval)
	case c.AdaptationInterval < c.MonitoringInterval || c.AdaptationInterval > 10*time.Minute:
		return fmt.Errorf("adaptation_interval: must be between monitoring_interval (%s) and 10m, got %s", c.MonitoringInterval, c.AdaptationInterval)
	case !inRange(c.BandwidthChangeThreshold, 0, 1) || c.BandwidthChangeThreshold == 0:
		return fmt.Errorf("bandwidth_change_threshold: must be in (0, 1], got %g", c.BandwidthChangeThreshold)
	case !inRange(c.LatencyChangeThreshold, 0, 10) || c.LatencyChangeThreshold == 0:
		return fmt.Errorf("latency_change_threshold: must be in (0, 10], got %g", c.LatencyChangeThreshold)
	case !inRange(c.LossChangeThreshold, 0, 1) || c.LossChangeThreshold == 0 || c.LossChangeThreshold == 1:
		return fmt.Errorf("loss_change_threshold: must be in (0, 1), got %g", c.LossChangeThreshold)
	case !inRange(c.AdaptationSensitivity, 0.1, 10):
		return fmt.Errorf("adaptation_sensitivity: must be between 0.1 and 10, got %g", c.AdaptationSensitivity)
	case !inRange(c.TargetThroughputMbps, 0, 1e7):
		return fmt.Errorf("target_throughput_mbps: must be 0 (none) or a positive rate, got %g", c.TargetThroughputMbps)
	case !inRange(c.TargetLatencyMs, 0, 1e7):
		return fmt.Errorf("target_latency_ms: must be 0 (none) or a positive latency, got %g", c.TargetLatencyMs)
	case !inRange(c.MaxTolerableLoss, 0, 1) || c.MaxTolerableLoss == 0:
		return fmt.Errorf("max_tolerable_loss: must be in (0, 1], got %g", c.MaxTolerableLoss)
	case c.MinAdaptationInterval < 0 || c.MinAdaptationInterval > 24*time.Hour:
		return fmt.Errorf("min_adaptation_interval: must be between 0 and 24h, got %s", c.MinAdaptationInterval)
	case c.MaxAdaptationsPerSession < 0:
		return fmt.Errorf("max_adaptations_per_session: must be 0 (unlimited) or positive, got %d", c.MaxAdaptationsPerSession)
	}
	return nil
}

// inRange reports lo <= x <= hi; NaN is never in range.
func inRange(x, lo, hi float64) bool { return !math.IsNaN(x) && x >= lo && x <= hi }

// bounds returns the part size range in bytes within S3's limits.
func (c Config) partBounds() (lo, hi int64) {
	lo = max(int64(c.MinChunkSizeMB)*MiB, s3MinPart)
	hi = min(int64(c.MaxChunkSizeMB)*MiB, s3MaxPart)
	return lo, max(lo, hi)
}

// clampParams puts p within the configured bounds, the part size rounded to
// whole MiB.
func (c Config) clampParams(p Params) Params {
	lo, hi := c.partBounds()
	p.PartSize = roundMiB(min(max(p.PartSize, lo), hi))
	p.Concurrency = min(max(p.Concurrency, c.MinConcurrency), c.MaxConcurrency)
	return p
}

// roundMiB rounds to the nearest whole MiB, at least one.
func roundMiB(n int64) int64 { return max(1, (n+MiB/2)/MiB) * MiB }

// Fixed is a parameter source that never changes: the configured values.
type Fixed struct{ P Params }

// NewFixed returns the starting parameters of c as a fixed source.
func NewFixed(c Config) Fixed {
	return Fixed{P: Params{PartSize: int64(c.PartSizeMB) * MiB, Concurrency: c.Concurrency}}
}

// Params returns the fixed parameters.
func (f Fixed) Params() Params { return f.P }
