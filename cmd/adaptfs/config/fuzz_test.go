package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzLoad loads arbitrary files: LoadFile and Validate must not panic, a
// failed load must leave the configuration unchanged, and a successful one
// must survive a round trip through TOML().
func FuzzLoad(f *testing.F) {
	for _, seed := range []string{
		"",
		fullFile,
		"bucket = \"b\"\nmax_concurrency = \"eight\"\n",
		"write_back_delay = \"soon\"\n",
		"[s3]\nbucket = \"b\"\n",
		"s3 = { bucket = \"b\" }\ns4.x = 1\n[[t]]\n",
		"secret_key = \"x\"\naccess_key = y\n",
		"max_concurency = 8\n",
		"prefix = \"\"\"\nmax_concurency = 1\n\"\"\"\nlog_file = '''\n'''\n",
		"staging_dir = [\n  \"x = 1\", # c\n  'y',\n]\n",
		"\xef\xbb\xbfbucket = 'b'\r\nro = true\r\n",
		"dir_cache_ttl = 1979-05-27 07:32:00\n",
		"uid = 99999999999999999999\nread_ahead_mb = 1e400\n",
		"bucket = \"\\u0000\\u007f\\ud800\"\n",
	} {
		f.Add([]byte(seed))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "adaptfs.toml")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		c := Default()
		if err := c.LoadFile(path); err != nil {
			if !reflect.DeepEqual(c, Default()) {
				t.Fatalf("failed load changed the configuration: %v", err)
			}
			return
		}
		_ = c.Validate()
		out, err := c.TOML()
		if err != nil {
			t.Fatalf("TOML(): %v", err)
		}
		if err := os.WriteFile(path, out, 0o600); err != nil {
			t.Fatal(err)
		}
		var back Config
		if err := back.LoadFile(path); err != nil {
			t.Fatalf("LoadFile(TOML()): %v\n%s", err, out)
		}
		if !reflect.DeepEqual(back, c) {
			t.Fatalf("round trip:\ngot  %+v\nwant %+v", back, c)
		}
	})
}

// FuzzApplyOptions applies arbitrary -o lists: no panic, and a failed list
// leaves the configuration unchanged.
func FuzzApplyOptions(f *testing.F) {
	for _, seed := range []string{
		"",
		",,, ,",
		"bucket=b,max_concurrency=16,ro",
		" allow_other , write_back_delay = 2s ",
		"ro,rw",
		"max_concurrency=eight",
		"secret_key=abc",
		"uid=-1,gid=99999999999999999999",
		"endpoint=http://h:1/?a=b=c",
		"=,=x,x=",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, opts string) {
		c := Default()
		if err := c.ApplyOptions(opts); err != nil {
			if !reflect.DeepEqual(c, Default()) {
				t.Fatalf("failed ApplyOptions changed the configuration: %v", err)
			}
			return
		}
		_ = c.Validate()
		if _, err := c.TOML(); err != nil && utf8.ValidString(opts) {
			t.Fatalf("TOML(): %v", err)
		}
	})
}

// FuzzCredentialsNotEchoed checks that no error about a credentials line
// quotes what follows the key, however malformed the line is.
func FuzzCredentialsNotEchoed(f *testing.F) {
	for _, seed := range []string{
		`"SECRETVALUE1"`,
		`SECRETVALUE1`,
		`"SECRETVALUE1`,
		`"""SECRETVALUE1`,
		`["SECRETVALUE1",`,
		`{ a = "SECRETVALUE1" `,
		`"SECRETVALUE1" junk`,
	} {
		f.Add(seed)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, value string) {
		const secret = "SECRETVALUE1"
		if !strings.Contains(value, secret) {
			return
		}
		path := filepath.Join(dir, "adaptfs.toml")
		text := "bucket = \"b\"\nsecret_key = " + value + "\n"
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		c := Default()
		if err := c.LoadFile(path); err != nil && strings.Contains(err.Error(), secret) {
			t.Fatalf("error echoes the credential: %v", err)
		}
	})
}
