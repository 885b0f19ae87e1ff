package zseek_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/adaptfs/adaptfs/zseek"
)

func TestLevels(t *testing.T) {
	names := map[zseek.Level]string{
		zseek.None: "none", zseek.Fastest: "zstd-fast", zseek.Default: "zstd", zseek.Better: "zstd-high", zseek.Best: "zstd-max",
	}
	for lvl, name := range names {
		if lvl.String() != name {
			t.Errorf("%d.String() = %q, want %q", int(lvl), lvl.String(), name)
		}
		if got, err := zseek.ParseLevel(name); got != lvl || err != nil {
			t.Errorf("ParseLevel(%q) = %v, %v", name, got, err)
		}
	}
	if want := []zseek.Level{zseek.Fastest, zseek.Default, zseek.Better, zseek.Best}; !slices.Equal(zseek.Levels(), want) {
		t.Errorf("Levels() = %v, want %v", zseek.Levels(), want)
	}
	if s := zseek.Level(9).String(); s != "Level(9)" {
		t.Errorf("Level(9).String() = %q", s)
	}
	for _, bad := range []string{"", "ZSTD", "gzip", "auto", " zstd"} {
		_, err := zseek.ParseLevel(bad)
		if err == nil {
			t.Errorf("ParseLevel(%q): no error", bad)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, `"`+bad+`"`) {
			t.Errorf("ParseLevel(%q): error %q does not name the value", bad, msg)
		}
		for _, name := range names {
			if !strings.Contains(msg, name) {
				t.Errorf("ParseLevel(%q): error %q does not list %q", bad, msg, name)
			}
		}
	}
}
