package s3backend

import (
	"maps"
	"testing"
	"time"
)

func TestMetaRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		meta ObjectMeta
		want map[string]string
	}{
		{"empty", ObjectMeta{}, nil},
		{
			"everything",
			ObjectMeta{
				Mtime:           time.Unix(1700000000, 123456789),
				Mode:            0o100644,
				UID:             1000,
				GID:             100,
				HasOwner:        true,
				ContentEncoding: "zstd",
				Extra:           map[string]string{"raw-size": "42"},
			},
			map[string]string{"mtime": "1700000000.123456789", "mode": "33188", "uid": "1000", "gid": "100", "raw-size": "42"},
		},
		{
			"root owner and whole seconds",
			ObjectMeta{Mtime: time.Unix(1700000000, 0), HasOwner: true},
			map[string]string{"mtime": "1700000000.000000000", "uid": "0", "gid": "0"},
		},
		{
			"directory mode, small nanos",
			ObjectMeta{Mtime: time.Unix(5, 7), Mode: 0o40755},
			map[string]string{"mtime": "5.000000007", "mode": "16877"},
		},
		{
			"before the epoch",
			ObjectMeta{Mtime: time.Unix(-1, 500000000)},
			map[string]string{"mtime": "-0.500000000"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			md := tt.meta.s3Metadata()
			if !maps.Equal(md, tt.want) {
				t.Errorf("s3Metadata = %v, want %v", md, tt.want)
			}
			got := metaFromS3(md, tt.meta.ContentEncoding)
			if !got.Mtime.Equal(tt.meta.Mtime) || got.Mode != tt.meta.Mode || got.UID != tt.meta.UID ||
				got.GID != tt.meta.GID || got.HasOwner != tt.meta.HasOwner ||
				got.ContentEncoding != tt.meta.ContentEncoding || !maps.Equal(got.Extra, tt.meta.Extra) {
				t.Errorf("round trip = %+v, want %+v", got, tt.meta)
			}
		})
	}
}

func TestMetaExtraCannotShadowTypedFields(t *testing.T) {
	m := ObjectMeta{Mode: 0o100600, Extra: map[string]string{"Mode": "1", "mtime": "2", "Other": "x"}}
	md := m.s3Metadata()
	want := map[string]string{"mode": "33152", "other": "x"}
	if !maps.Equal(md, want) {
		t.Errorf("s3Metadata = %v, want %v", md, want)
	}
}

func TestMetaFromForeignTools(t *testing.T) {
	tests := []struct {
		name string
		md   map[string]string
		want ObjectMeta
	}{
		{
			"s3fs integer seconds",
			map[string]string{"mtime": "1700000000", "mode": "33261", "uid": "0", "gid": "0"},
			ObjectMeta{Mtime: time.Unix(1700000000, 0), Mode: 0o100755, HasOwner: true},
		},
		{
			"rclone short fraction",
			map[string]string{"mtime": "1700000000.5"},
			ObjectMeta{Mtime: time.Unix(1700000000, 500000000)},
		},
		{
			"sub-nanosecond digits truncated",
			map[string]string{"mtime": "1.0000000019"},
			ObjectMeta{Mtime: time.Unix(1, 1)},
		},
		{
			"exponent notation",
			map[string]string{"mtime": "1.7e9"},
			ObjectMeta{Mtime: time.Unix(1700000000, 0)},
		},
		{
			"upper-case keys",
			map[string]string{"Mtime": "10", "X-Other": "v"},
			ObjectMeta{Mtime: time.Unix(10, 0), Extra: map[string]string{"x-other": "v"}},
		},
		{
			"garbage ignored",
			map[string]string{"mtime": "yesterday", "mode": "-1", "uid": "x", "gid": "99999999999", "keep": "me"},
			ObjectMeta{Extra: map[string]string{"keep": "me"}},
		},
		{
			"empty and odd mtimes ignored",
			map[string]string{"mtime": ".", "mode": ""},
			ObjectMeta{},
		},
		{
			"NaN ignored",
			map[string]string{"mtime": "NaN"},
			ObjectMeta{},
		},
		{
			"gid alone sets owner",
			map[string]string{"gid": "5"},
			ObjectMeta{GID: 5, HasOwner: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := metaFromS3(tt.md, "")
			if !got.Mtime.Equal(tt.want.Mtime) || got.Mode != tt.want.Mode || got.UID != tt.want.UID ||
				got.GID != tt.want.GID || got.HasOwner != tt.want.HasOwner || !maps.Equal(got.Extra, tt.want.Extra) {
				t.Errorf("metaFromS3(%v) = %+v, want %+v", tt.md, got, tt.want)
			}
		})
	}
}

func TestFormatMtime(t *testing.T) {
	tests := []struct {
		t    time.Time
		want string
	}{
		{time.Unix(0, 0), "0.000000000"},
		{time.Unix(1700000000, 123456789), "1700000000.123456789"},
		{time.Unix(-2, 0), "-2.000000000"},
		{time.Unix(-2, 250000000), "-1.750000000"},
	}
	for _, tt := range tests {
		got := formatMtime(tt.t)
		if got != tt.want {
			t.Errorf("formatMtime(%v) = %q, want %q", tt.t, got, tt.want)
		}
		if back, ok := parseMtime(got); !ok || !back.Equal(tt.t) {
			t.Errorf("parseMtime(%q) = %v, %v; want %v", got, back, ok, tt.t)
		}
	}
}
