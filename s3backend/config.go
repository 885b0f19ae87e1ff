package s3backend

import (
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Config is the [s3] part of the configuration file (keys are flat).
// Credentials are never configured here: they come from the standard AWS
// chain (environment, shared files, profile, instance roles).
type Config struct {
	Bucket         string        `toml:"bucket"`
	Prefix         string        `toml:"prefix"`
	Region         string        `toml:"region"`
	Endpoint       string        `toml:"endpoint"`
	PathStyle      bool          `toml:"path_style"`
	Profile        string        `toml:"profile"`
	RequestTimeout time.Duration `toml:"request_timeout"` // per attempt, without body transfer time
	MaxRetries     int           `toml:"max_retries"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Region:         "us-east-1",
		RequestTimeout: 30 * time.Second,
		MaxRetries:     5,
	}
}

// Validate reports the first bad value, naming its key.
func (c Config) Validate() error {
	if c.Bucket == "" {
		return fmt.Errorf("bucket: must be set (BUCKET[/PREFIX] argument or bucket key)")
	}
	if strings.ContainsAny(c.Bucket, "/ ") {
		return fmt.Errorf("bucket: %q is not a valid bucket name", c.Bucket)
	}
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("endpoint: %q is not an http:// or https:// URL", c.Endpoint)
		}
	}
	if c.RequestTimeout <= 0 {
		return fmt.Errorf("request_timeout: must be positive, got %s", c.RequestTimeout)
	}
	if c.MaxRetries < 0 || c.MaxRetries > 100 {
		return fmt.Errorf("max_retries: must be within 0..100, got %d", c.MaxRetries)
	}
	return nil
}
