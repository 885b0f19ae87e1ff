package stage

import (
	"runtime"
	"strings"
	"testing"

	"github.com/adaptfs/adaptfs/zseek"
)

func TestCompressionRules(t *testing.T) {
	cfg := DefaultConfig()
	cfg.StagingDir = "/x"
	cfg.CompressionRules = []string{"media/*.mp4=off", "logs/=zstd-max", "*.zip=off", "/top.csv=zstd-fast"}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ key, want string }{
		{"media/a.mp4", "off"},
		{"media/sub/b.mp4", "off"},
		{"media/a.mkv", "auto"},
		{"other/a.mp4", "auto"},
		{"logs/app.log", "zstd-max"},
		{"logs/x/y.zip", "zstd-max"}, // first match wins
		{"a/b.zip", "off"},
		{"top.csv", "zstd-fast"},
		{"x/top.csv", "auto"},
	}
	for _, tt := range tests {
		if got := cfg.compressionFor(tt.key); got != tt.want {
			t.Errorf("compressionFor(%q) = %q, want %q", tt.key, got, tt.want)
		}
	}
}

func TestCompressionConfigErrors(t *testing.T) {
	tests := []struct {
		name  string
		mode  string
		rules []string
		want  string
	}{
		{"bad mode", "gzip", nil, `compression: unknown mode "gzip"`},
		{"rule without mode", "auto", []string{"media/*.mp4"}, `compression_rules: item 1: "media/*.mp4": want PATTERN=MODE`},
		{"rule bad mode", "auto", []string{"a=off", "b/=fast"}, `compression_rules: item 2: "b/=fast": unknown mode "fast"`},
		{"rule bad glob", "auto", []string{"a/[=off"}, `compression_rules: item 1: "a/[=off": bad pattern "["`},
		{"wildcard dir", "auto", []string{"*/a.txt=off"}, "wildcards only in the last path element"},
		{"empty pattern", "auto", []string{"=off"}, "want PATTERN=MODE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.StagingDir = "/x"
			cfg.Compression, cfg.CompressionRules = tt.mode, tt.rules
			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// TestCompressionMemory: the reserve covers the encoder states of exactly
// the levels the configuration may use.
func TestCompressionMemory(t *testing.T) {
	w := int64(runtime.GOMAXPROCS(0))
	frames := w * 4 * frameSize
	auto := zseek.EncoderMemory(zseek.Fastest, int(w)) + zseek.EncoderMemory(zseek.Default, int(w)) + zseek.EncoderMemory(zseek.Better, int(w))
	tests := []struct {
		mode  string
		rules []string
		want  int64
	}{
		{"off", nil, 0},
		{"off", []string{"*.mp4=off"}, 0},
		{"auto", nil, frames + auto},
		{"zstd-fast", nil, frames + zseek.EncoderMemory(zseek.Fastest, int(w))},
		{"off", []string{"logs/=zstd-max"}, frames + zseek.EncoderMemory(zseek.Best, int(w))},
		{"auto", []string{"logs/=zstd-max", "x/=zstd"}, frames + auto + zseek.EncoderMemory(zseek.Best, int(w))},
	}
	for _, tt := range tests {
		c := DefaultConfig()
		c.Compression, c.CompressionRules = tt.mode, tt.rules
		if got := CompressionMemory(c); got != tt.want {
			t.Errorf("%s %v: %d MiB, want %d MiB", tt.mode, tt.rules, got>>20, tt.want>>20)
		}
	}
}
