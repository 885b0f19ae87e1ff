package stage

import (
	"fmt"
	"path"
	"strings"
)

// Compression modes of the configuration: auto, off, or a fixed level.
const (
	CompressAuto = "auto"
	CompressOff  = "off"
)

// compressionModes are the values compression and its rules accept.
var compressionModes = []string{CompressAuto, CompressOff, "zstd-fast", "zstd", "zstd-high", "zstd-max"}

// compressionRule applies mode to keys under dir (at any depth; only
// directly in it when anchored) whose base name matches glob ("" matches
// all). Written "DIR/GLOB=MODE": "media/*.mp4=off", "logs/=zstd-high",
// "*.zip=off"; a leading "/" anchors: "/top.csv=off", "/logs/*.gz=off".
type compressionRule struct {
	dir, glob, mode string
	anchored        bool
}

func parseCompressionRule(s string) (compressionRule, error) {
	pat, mode, ok := strings.Cut(s, "=")
	pat, mode = strings.TrimSpace(pat), strings.TrimSpace(mode)
	if !ok || pat == "" {
		return compressionRule{}, fmt.Errorf("%q: want PATTERN=MODE, like \"media/*.mp4=off\"", s)
	}
	if err := checkCompressionMode(mode); err != nil {
		return compressionRule{}, fmt.Errorf("%q: %w", s, err)
	}
	var r compressionRule
	pat, r.anchored = strings.CutPrefix(pat, "/")
	if i := strings.LastIndexByte(pat, '/'); i >= 0 {
		r.dir, r.glob = pat[:i+1], pat[i+1:]
	} else {
		r.glob = pat
	}
	if strings.ContainsAny(r.dir, "*?[") {
		return compressionRule{}, fmt.Errorf("%q: wildcards only in the last path element", s)
	}
	if _, err := path.Match(r.glob, ""); err != nil {
		return compressionRule{}, fmt.Errorf("%q: bad pattern %q: %w", s, r.glob, err)
	}
	r.mode = mode
	return r, nil
}

func (r compressionRule) matches(key string) bool {
	if !strings.HasPrefix(key, r.dir) || r.anchored && strings.Contains(key[len(r.dir):], "/") {
		return false
	}
	if r.glob == "" {
		return true
	}
	ok, _ := path.Match(r.glob, path.Base(key))
	return ok
}

func checkCompressionMode(m string) error {
	for _, v := range compressionModes {
		if m == v {
			return nil
		}
	}
	return fmt.Errorf("unknown mode %q; want one of %s", m, strings.Join(compressionModes, ", "))
}

// compressionFor returns the mode for key: the first matching rule's, else
// the global one. The config is validated.
func (c Config) compressionFor(key string) string {
	for _, s := range c.CompressionRules {
		if r, err := parseCompressionRule(s); err == nil && r.matches(key) {
			return r.mode
		}
	}
	if c.Compression == "" {
		return CompressAuto
	}
	return c.Compression
}
