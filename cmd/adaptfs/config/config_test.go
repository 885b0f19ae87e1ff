package config

import (
	"errors"
	iofs "io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/adaptfs/adaptfs/adapt"
	"github.com/adaptfs/adaptfs/fs"
	"github.com/adaptfs/adaptfs/s3backend"
	"github.com/adaptfs/adaptfs/stage"
)

// fullFile sets every key to a value other than its default.
const fullFile = `# every key
bucket = "my-bucket"
prefix = "data/2024"
region = "eu-west-1"
endpoint = "https://s3.example.com:9000"
path_style = true
profile = "backup"
request_timeout = "45s"
max_retries = 7
staging_dir = "/var/cache/adaptfs"
staging_sync = "close"
max_staging_memory_mb = 512
stage_ahead_chunks = 4
write_back_delay = "1m30s"
max_staging_disk_mb = 4096
staging_full_wait = "2m"
compression = "zstd-high"
compression_rules = ["media/*.mp4=off", "logs/=zstd-max"]
part_size_mb = 32
concurrency = 12
min_chunk_size_mb = 8
max_chunk_size_mb = 256
min_concurrency = 2
max_concurrency = 48
adaptive = false
monitoring_interval = "1s"
adaptation_interval = "10s"
bandwidth_change_threshold = 0.15
latency_change_threshold = 0.3
loss_change_threshold = 0.002
aggressive_adaptation = true
conservative_mode = false
adaptation_sensitivity = 1.5
target_throughput_mbps = 500
target_latency_ms = 80
max_tolerable_loss = 0.1
min_adaptation_interval = "20s"
max_adaptations_per_session = 100
dir_cache_ttl = "10s"
attr_cache_ttl = "2s"
read_ahead_mb = 16
writeback_cache = false
allow_other = true
default_permissions = true
ro = true
uid = 1000
gid = 1001
umask = "027"
allow_nonempty = true
log_level = "debug"
log_format = "json"
log_file = "/var/log/adaptfs.log"
`

func fullConfig() Config {
	return Config{
		S3: s3backend.Config{
			Bucket: "my-bucket", Prefix: "data/2024", Region: "eu-west-1",
			Endpoint: "https://s3.example.com:9000", PathStyle: true, Profile: "backup",
			RequestTimeout: 45 * time.Second, MaxRetries: 7,
		},
		Stage: stage.Config{
			StagingDir: "/var/cache/adaptfs", StagingSync: "close", MaxStagingMemoryMB: 512,
			StageAheadChunks: 4, WriteBackDelay: 90 * time.Second, MaxStagingDiskMB: 4096, StagingFullWait: 2 * time.Minute,
			Compression: "zstd-high", CompressionRules: []string{"media/*.mp4=off", "logs/=zstd-max"},
		},
		Adapt: adapt.Config{
			PartSizeMB: 32, Concurrency: 12, MinChunkSizeMB: 8, MaxChunkSizeMB: 256,
			MinConcurrency: 2, MaxConcurrency: 48,
			Adaptive: false, MonitoringInterval: time.Second, AdaptationInterval: 10 * time.Second,
			BandwidthChangeThreshold: 0.15, LatencyChangeThreshold: 0.3, LossChangeThreshold: 0.002,
			AggressiveAdaptation: true, ConservativeMode: false, AdaptationSensitivity: 1.5,
			TargetThroughputMbps: 500, TargetLatencyMs: 80, MaxTolerableLoss: 0.1,
			MinAdaptationInterval: 20 * time.Second, MaxAdaptationsPerSession: 100,
		},
		FS: fs.Config{
			DirCacheTTL: 10 * time.Second, AttrCacheTTL: 2 * time.Second, ReadAheadMB: 16, WritebackCache: false,
			AllowOther: true, DefaultPermissions: true, ReadOnly: true,
			UID: 1000, GID: 1001, Umask: "027", AllowNonEmpty: true,
		},
		LogLevel: "debug", LogFormat: "json", LogFile: "/var/log/adaptfs.log",
	}
}

func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestKeys(t *testing.T) {
	keys := Keys()
	if !slices.IsSorted(keys) {
		t.Errorf("Keys() not sorted: %v", keys)
	}
	if len(slices.Compact(slices.Clone(keys))) != len(keys) {
		t.Errorf("Keys() has duplicates: %v", keys)
	}
	for _, want := range []string{"bucket", "max_concurrency", "write_back_delay", "ro", "umask", "log_level", "log_format", "log_file"} {
		if !slices.Contains(keys, want) {
			t.Errorf("Keys() lacks %q", want)
		}
	}
	for _, k := range keys {
		for _, bad := range []string{"secret", "password", "token", "access_key", "credential"} {
			if strings.Contains(k, bad) {
				t.Errorf("key %q looks like a credential; credentials come only from the AWS chain", k)
			}
		}
		if isCredentialKey(k) {
			t.Errorf("key %q is a credentials key", k)
		}
	}
}

func TestFullFileCoversEveryKey(t *testing.T) {
	var raw map[string]any
	if _, err := toml.Decode(fullFile, &raw); err != nil {
		t.Fatal(err)
	}
	var inFile []string
	for k := range raw {
		inFile = append(inFile, k)
	}
	slices.Sort(inFile)
	if !slices.Equal(inFile, Keys()) {
		t.Errorf("fullFile keys = %v\nKeys()        = %v\n(add new keys to fullFile and fullConfig)", inFile, Keys())
	}
	def := Default()
	dv, fv := reflect.ValueOf(def), reflect.ValueOf(fullConfig())
	for k, f := range fieldTable() {
		if reflect.DeepEqual(dv.FieldByIndex(f.index).Interface(), fv.FieldByIndex(f.index).Interface()) {
			t.Errorf("fullConfig().%s equals its default; use another value", k)
		}
	}
}

func TestDefault(t *testing.T) {
	c := Default()
	tests := []struct {
		name      string
		got, want any
	}{
		{"s3", c.S3, s3backend.DefaultConfig()},
		{"stage", c.Stage, stage.DefaultConfig()},
		{"adapt", c.Adapt, adapt.DefaultConfig()},
		{"fs", c.FS, fs.DefaultConfig()},
		{"log_level", c.LogLevel, "info"},
		{"log_format", c.LogFormat, "text"},
		{"log_file", c.LogFile, ""},
	}
	for _, tt := range tests {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("%s: got %+v, want %+v", tt.name, tt.got, tt.want)
		}
	}
	c.Bucket = "b"
	if err := c.Validate(); err != nil {
		t.Errorf("defaults with a bucket: %v", err)
	}
}

func TestLoadFileFull(t *testing.T) {
	for _, start := range []struct {
		name string
		c    Config
	}{{"over defaults", Default()}, {"over zero", Config{}}} {
		c := start.c
		if err := c.LoadFile(writeFile(t, "adaptfs.toml", fullFile)); err != nil {
			t.Fatalf("%s: %v", start.name, err)
		}
		if !reflect.DeepEqual(c, fullConfig()) {
			t.Errorf("%s:\ngot  %+v\nwant %+v", start.name, c, fullConfig())
		}
	}
	c := fullConfig()
	if err := c.Validate(); err != nil {
		t.Errorf("fullConfig().Validate() = %v", err)
	}
}

func TestRoundTrip(t *testing.T) {
	odd := fullConfig()
	odd.Prefix = "quotes \" and \\ and\nnewline and ünïcode and # and = and ,"
	odd.LogFile = "C:\\logs\\a b.log"
	for _, tt := range []struct {
		name string
		c    Config
	}{{"default", Default()}, {"full", fullConfig()}, {"odd strings", odd}} {
		t.Run(tt.name, func(t *testing.T) {
			out, err := tt.c.TOML()
			if err != nil {
				t.Fatal(err)
			}
			for _, table := range []string{"[S3]", "[Stage]", "[Adapt]", "[FS]"} {
				if strings.Contains(string(out), table) {
					t.Errorf("TOML() has table %s:\n%s", table, out)
				}
			}
			got := Config{}
			if err := got.LoadFile(writeFile(t, "effective.toml", string(out))); err != nil {
				t.Fatalf("LoadFile(TOML()): %v\n%s", err, out)
			}
			if !reflect.DeepEqual(got, tt.c) {
				t.Errorf("round trip:\ngot  %+v\nwant %+v\n%s", got, tt.c, out)
			}
		})
	}
}

func TestLoadFileKeepsDefaults(t *testing.T) {
	c := Default()
	if err := c.LoadFile(writeFile(t, "adaptfs.toml", "bucket = \"b\"\nmax_concurrency = 64\n")); err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Bucket = "b"
	want.MaxConcurrency = 64
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got %+v\nwant %+v", c, want)
	}
}

func TestLoadFileMissing(t *testing.T) {
	c := Default()
	err := c.LoadFile(filepath.Join(t.TempDir(), "none.toml"))
	if !errors.Is(err, iofs.ErrNotExist) {
		t.Errorf("got %v, want ErrNotExist", err)
	}
}

func TestLoadFileErrors(t *testing.T) {
	const secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	tests := []struct {
		name    string
		text    string
		want    []string // substrings of the error, in order
		notWant []string
		isCred  bool
	}{
		{
			name: "unknown key with suggestion",
			text: "# adaptfs\n\nbucket = \"b\"\n\n# tuning\nmin_concurrency = 1\nmax_concurency = 8\n",
			want: []string{`adaptfs.toml:7: unknown key "max_concurency" (did you mean "max_concurrency"?)`},
		},
		{
			name:    "unknown key without suggestion",
			text:    "frobnicate = 1\n",
			want:    []string{`adaptfs.toml:1: unknown key "frobnicate"`},
			notWant: []string{"did you mean"},
		},
		{
			name: "quoted unknown key",
			text: "bucket = \"b\"\n  \"log level\" = \"info\"\n",
			want: []string{`adaptfs.toml:2: unknown key "log level" (did you mean "log_level"?)`},
		},
		{
			name: "string for integer",
			text: "bucket = \"b\"\n\nmax_concurrency = \"eight\"\n",
			want: []string{`adaptfs.toml:3: max_concurrency: want an integer, got string "eight"`},
		},
		{
			name: "float for integer",
			text: "read_ahead_mb = 2.5\n",
			want: []string{`adaptfs.toml:1: read_ahead_mb: want an integer, got float 2.5`},
		},
		{
			name: "string for boolean",
			text: "ro = \"yes\"\n",
			want: []string{`adaptfs.toml:1: ro: want true or false, got string "yes"`},
		},
		{
			name: "integer for string",
			text: "umask = 22\n",
			want: []string{`adaptfs.toml:1: umask: want a string, got integer 22`},
		},
		{
			name: "array for string",
			text: "bucket = [\"a\", \"b\"]\n",
			want: []string{`adaptfs.toml:1: bucket: want a string, got an array`},
		},
		{
			name: "bad duration",
			text: "bucket = \"b\"\nwrite_back_delay = \"soon\"\n",
			want: []string{`adaptfs.toml:2: write_back_delay: "soon" is not a duration (like "500ms", "5s" or "1m30s")`},
		},
		{
			name: "integer for duration",
			text: "dir_cache_ttl = 5\n",
			want: []string{`adaptfs.toml:1: dir_cache_ttl: want a duration string like "5s", got integer 5`},
		},
		{
			name: "datetime for duration",
			text: "dir_cache_ttl = 1979-05-27\n",
			want: []string{`adaptfs.toml:1: dir_cache_ttl: want a duration string like "5s", got a date/time`},
		},
		{
			name: "syntax error",
			text: "bucket = \"b\"\nregion = \"eu\"\nmax_concurrency = eight\n",
			want: []string{`adaptfs.toml:3: syntax error: `},
		},
		{
			name: "unterminated string",
			text: "bucket = \"b\nregion = \"eu\"\n",
			want: []string{`adaptfs.toml:1: syntax error: `},
		},
		{
			name: "duplicate key",
			text: "bucket = \"a\"\n\nbucket = \"b\"\n",
			want: []string{`adaptfs.toml:3: syntax error: `, `bucket`},
		},
		{
			name: "table",
			text: "log_level = \"info\"\n\n[s3]\nbucket = \"b\"\n",
			want: []string{`adaptfs.toml:3: table "s3": tables are not part of the format; write every key at the top level`},
		},
		{
			name: "table named like a key",
			text: "[ bucket ]\nname = \"b\"\n",
			want: []string{`adaptfs.toml:1: table "bucket": tables are not part of the format`},
		},
		{
			name: "array of tables",
			text: "\n[[mounts]]\nbucket = \"b\"\n",
			want: []string{`adaptfs.toml:2: table "mounts": tables are not part of the format`},
		},
		{
			name: "dotted key",
			text: "ro = true\ns3.bucket = \"b\"\n",
			want: []string{`adaptfs.toml:2: table "s3": tables are not part of the format`},
		},
		{
			name: "inline table",
			text: "ro = true\n\ns3 = { bucket = \"b\" }\n",
			want: []string{`adaptfs.toml:3: table "s3": tables are not part of the format`},
		},
		{
			name: "keys inside values are not keys",
			text: "prefix = \"\"\"\nmax_concurency = 1\n\"\"\"\nlog_file = '''\nfoo = [\n'''\n" +
				"staging_dir = [\n  \"x = 1\", # max_concurency = 2\n  'y',\n]\nmax_concurency = 3\n",
			want: []string{`adaptfs.toml:7: staging_dir: want a string, got an array`, `adaptfs.toml:11: unknown key "max_concurency"`},
		},
		{
			name: "every error, in line order",
			text: "zzz = 1\nmax_concurrency = \"eight\"\n[s3]\nbucket = 1\n",
			want: []string{`adaptfs.toml:1: unknown key "zzz"`, "\n", `adaptfs.toml:2: max_concurrency: want an integer`, "\n", `adaptfs.toml:3: table "s3"`},
		},
	}
	for _, key := range []string{"access_key", "secret_key", "aws_access_key_id", "aws_secret_access_key", "session_token", "AWS_SESSION_TOKEN"} {
		tests = append(tests, struct {
			name    string
			text    string
			want    []string
			notWant []string
			isCred  bool
		}{
			name:    "credentials " + key,
			text:    "bucket = \"b\"\n" + key + " = \"" + secret + "\"\n",
			want:    []string{"adaptfs.toml:2: " + key + ": credentials are not read from the config file; use the AWS environment variables, shared credentials file or --profile"},
			notWant: []string{secret, "did you mean"},
			isCred:  true,
		})
	}
	tests = append(tests, []struct {
		name    string
		text    string
		want    []string
		notWant []string
		isCred  bool
	}{
		{
			name:    "credentials unquoted (syntax error)",
			text:    "bucket = \"b\"\nsecret_key = " + secret + "\n",
			want:    []string{"adaptfs.toml:2: secret_key: credentials are not read from the config file"},
			notWant: []string{secret},
			isCred:  true,
		},
		{
			name:    "credentials unterminated (syntax error)",
			text:    "aws_secret_access_key = \"" + secret + "\n",
			want:    []string{"adaptfs.toml:1: aws_secret_access_key: credentials are not read from the config file"},
			notWant: []string{secret},
			isCred:  true,
		},
		{
			name:    "credentials in a table",
			text:    "[credentials]\naws_secret_access_key = \"" + secret + "\"\n",
			want:    []string{`adaptfs.toml:1: table "credentials"`},
			notWant: []string{secret},
		},
	}...)

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, "adaptfs.toml", tt.text)
			c := Default()
			err := c.LoadFile(path)
			if err == nil {
				t.Fatalf("no error for\n%s", tt.text)
			}
			msg := strings.ReplaceAll(err.Error(), path, "adaptfs.toml")
			rest := msg
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("error %q\nlacks (in order) %q", msg, w)
				}
				rest = rest[i+len(w):]
			}
			for _, nw := range tt.notWant {
				if strings.Contains(msg, nw) {
					t.Errorf("error %q contains %q", msg, nw)
				}
			}
			if got := errors.Is(err, ErrCredentials); got != tt.isCred {
				t.Errorf("errors.Is(err, ErrCredentials) = %v, want %v", got, tt.isCred)
			}
			if !reflect.DeepEqual(c, Default()) {
				t.Errorf("config changed despite the error: %+v", c)
			}
		})
	}
}

func TestSyntaxErrorWrapsParseError(t *testing.T) {
	c := Default()
	err := c.LoadFile(writeFile(t, "adaptfs.toml", "a = = 1\n"))
	var pe toml.ParseError
	if !errors.As(err, &pe) || pe.Position.Line != 1 {
		t.Errorf("got %v, want a wrapped toml.ParseError at line 1", err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Config)
		want   string // "" = valid
	}{
		{"valid", func(*Config) {}, ""},
		{"log_level", func(c *Config) { c.LogLevel = "verbose" }, `log_level: must be debug, info, warn or error, got "verbose"`},
		{"log_format", func(c *Config) { c.LogFormat = "xml" }, `log_format: must be text or json, got "xml"`},
		{"log_file", func(c *Config) { c.LogFile = "a\x00b" }, "log_file:"},
		{"s3", func(c *Config) { c.Bucket = "" }, "bucket: must be set"},
		{"stage", func(c *Config) { c.StagingSync = "always" }, "staging_sync:"},
		{"adapt", func(c *Config) { c.MaxConcurrency = 0 }, "max_concurrency:"},
		{"fs", func(c *Config) { c.Umask = "999" }, "umask:"},
		{"several", func(c *Config) { c.LogFormat = "xml"; c.ReadAheadMB = -1 }, "log_format:"},
		{"several (second)", func(c *Config) { c.LogFormat = "xml"; c.ReadAheadMB = -1 }, "read_ahead_mb:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := fullConfig()
			tt.modify(&c)
			err := c.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("unexpected error %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("got %v, want %q", err, tt.want)
			}
		})
	}
}

func TestSet(t *testing.T) {
	tests := []struct {
		key, value string
		check      func(Config) bool // nil when an error is expected
		wantErr    string
	}{
		{"bucket", "my-bucket", func(c Config) bool { return c.Bucket == "my-bucket" }, ""},
		{"prefix", "", func(c Config) bool { return c.Prefix == "" }, ""},
		{"prefix", " spaced ", func(c Config) bool { return c.Prefix == " spaced " }, ""},
		{"path_style", "yes", func(c Config) bool { return c.PathStyle }, ""},
		{"path_style", "1", func(c Config) bool { return c.PathStyle }, ""},
		{"path_style", "TRUE", func(c Config) bool { return c.PathStyle }, ""},
		{"allow_other", "no", func(c Config) bool { return !c.AllowOther }, ""},
		{"ro", "0", func(c Config) bool { return !c.ReadOnly }, ""},
		{"ro", "false", func(c Config) bool { return !c.ReadOnly }, ""},
		{"max_concurrency", "16", func(c Config) bool { return c.MaxConcurrency == 16 }, ""},
		{"uid", "-1", func(c Config) bool { return c.UID == -1 }, ""},
		{"write_back_delay", "2s", func(c Config) bool { return c.WriteBackDelay == 2*time.Second }, ""},
		{"dir_cache_ttl", "1m30s", func(c Config) bool { return c.DirCacheTTL == 90*time.Second }, ""},
		{"max_concurrency", "eight", nil, `option "max_concurrency=eight": not an integer`},
		{"max_concurrency", "", nil, `option "max_concurrency=": not an integer`},
		{"max_concurrency", "99999999999999999999", nil, `option "max_concurrency=99999999999999999999": integer out of range`},
		{"ro", "maybe", nil, `option "ro=maybe": not a boolean (true/false, yes/no, 1/0)`},
		{"write_back_delay", "soon", nil, `option "write_back_delay=soon": not a duration (like "500ms", "5s" or "1m30s")`},
		{"write_back_delay", "5", nil, `option "write_back_delay=5": not a duration (like "500ms", "5s" or "1m30s")`},
		{"foo", "1", nil, `unknown option "foo"`},
		{"max_concurency", "8", nil, `unknown option "max_concurency" (did you mean "max_concurrency"?)`},
		{"secret_key", "SECRETVALUE", nil, `option "secret_key": credentials are not read from options or the config file; use the AWS environment variables, shared credentials file or --profile`},
	}
	for _, tt := range tests {
		t.Run(tt.key+"="+tt.value, func(t *testing.T) {
			c := Default()
			err := c.Set(tt.key, tt.value)
			if tt.check != nil {
				if err != nil {
					t.Fatal(err)
				}
				if !tt.check(c) {
					t.Errorf("not applied: %+v", c)
				}
				return
			}
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("got error %v, want %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "SECRETVALUE") {
				t.Errorf("error echoes the credential: %v", err)
			}
			if !reflect.DeepEqual(c, Default()) {
				t.Errorf("config changed despite the error")
			}
		})
	}
}

// TestSetEveryKey sets every key from the string form of its fullConfig value.
func TestSetEveryKey(t *testing.T) {
	want := fullConfig()
	wv := reflect.ValueOf(want)
	c := Default()
	for _, k := range Keys() {
		s := optionString(wv.FieldByIndex(fieldTable()[k].index))
		if err := c.Set(k, s); err != nil {
			t.Errorf("Set(%q, %q): %v", k, s, err)
		}
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got  %+v\nwant %+v", c, want)
	}
}

// optionString formats a field value the way Set reads it.
func optionString(v reflect.Value) string {
	if d, ok := v.Interface().(time.Duration); ok {
		return d.String()
	}
	switch v.Kind() {
	case reflect.Bool:
		return strconv.FormatBool(v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(v.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.FormatUint(v.Uint(), 10)
	case reflect.Float32, reflect.Float64:
		return strconv.FormatFloat(v.Float(), 'g', -1, v.Type().Bits())
	case reflect.Slice:
		return strings.Join(v.Interface().([]string), ";")
	}
	return v.String()
}

func TestApplyOptions(t *testing.T) {
	tests := []struct {
		name    string
		opts    string
		modify  func(*Config) // expected change from Default; nil when an error is expected
		wantErr string
	}{
		{"empty", "", func(*Config) {}, ""},
		{"only commas", " , ,, ", func(*Config) {}, ""},
		{"values", "bucket=b,max_concurrency=16", func(c *Config) { c.Bucket = "b"; c.MaxConcurrency = 16 }, ""},
		{"spaces", " bucket = b ,  region=eu-west-1 ", func(c *Config) { c.Bucket = "b"; c.Region = "eu-west-1" }, ""},
		{"bare bools", "ro,allow_other", func(c *Config) { c.ReadOnly = true; c.AllowOther = true }, ""},
		{"explicit false", "ro,ro=false", func(*Config) {}, ""},
		{"empty value", "prefix=", func(c *Config) { c.Prefix = "" }, ""},
		{"value with =", "endpoint=http://h:1/?a=b", func(c *Config) { c.Endpoint = "http://h:1/?a=b" }, ""},
		{"later wins", "max_concurrency=4,max_concurrency=5", func(c *Config) { c.MaxConcurrency = 5 }, ""},
		{"bare non-bool", "bucket", nil, `option "bucket": needs a value (bucket=...)`},
		{"bare unknown", "ro,rw", nil, `unknown option "rw" (did you mean "ro"?)`},
		{"bad value stops all", "bucket=b,max_concurrency=eight", nil, `option "max_concurrency=eight": not an integer`},
		{"bare credentials", "session_token", nil, `option "session_token": credentials are not read`},
		{"credentials", "aws_secret_access_key=SECRETVALUE", nil, `option "aws_secret_access_key": credentials are not read`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			err := c.ApplyOptions(tt.opts)
			want := Default()
			if tt.modify != nil {
				if err != nil {
					t.Fatal(err)
				}
				tt.modify(&want)
			} else {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("got error %v, want %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "SECRETVALUE") {
					t.Errorf("error echoes the credential: %v", err)
				}
			}
			if !reflect.DeepEqual(c, want) {
				t.Errorf("got  %+v\nwant %+v", c, want)
			}
		})
	}
}

func TestSuggest(t *testing.T) {
	tests := []struct{ in, want string }{
		{"max_concurency", "max_concurrency"},
		{"maxconcurrency", "max_concurrency"},
		{"bukcet", "bucket"},
		{"regoin", "region"},
		{"log-level", "log_level"},
		{"rw", "ro"},
		{"frobnicate", ""},
		{"foo", ""},
		{"uid", "uid"},
		{"pid", "gid"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := suggest(tt.in); got != tt.want {
			t.Errorf("suggest(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestEditDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"a", "", 1}, {"", "abc", 3}, {"kitten", "sitting", 3},
		{"max_concurency", "max_concurrency", 1}, {"ünï", "uni", 2}, {"ab", "ba", 2},
	}
	for _, tt := range tests {
		if got := editDistance(tt.a, tt.b); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestKeyLines(t *testing.T) {
	tests := []struct {
		name string
		text string
		want map[string]int
	}{
		{"plain", "a = 1\n\n  b=2 # c = 3\n", map[string]int{"a": 1, "b": 3}},
		{"bom and crlf", "\xef\xbb\xbfa = 1\r\nb = 2\r\n", map[string]int{"a": 1, "b": 2}},
		{"quoted", "\"a b\" = 1\n'c.d' = 2\n\"e\\u0066\" = 3\n", map[string]int{"a b": 1, "c.d": 2, "ef": 3}},
		{"dotted", "a.b = 1\n\"c\" . d = 2\n", map[string]int{"a": 1, "c": 2}},
		{"multiline strings", "a = \"\"\"\nb = 1\n\\\"\"\"\nc = 2\"\"\"\"\nd = '''\ne = 1'''\nf = 1\n",
			map[string]int{"a": 1, "d": 5, "f": 7}},
		{"arrays", "a = [\n [1, 2],\n \"b = ]\", # ] c = 1\n { x = 1 },\n]\nd = {e = [1], f = \"}\"}\ng = 1\n",
			map[string]int{"a": 1, "d": 6, "g": 7}},
		{"tables", "a = 1\n[t]\nb = 1\n[[u]]\nc = 1\n[ \"v w\" . x ]\na = 2\n",
			map[string]int{"a": 1, "t": 2, "u": 4, "v w": 6}},
		{"datetime with space", "a = 1979-05-27 07:32:00\nb = 1\n", map[string]int{"a": 1, "b": 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var raw map[string]any
			if _, err := toml.Decode(tt.text, &raw); err != nil {
				t.Fatalf("test input is not valid TOML: %v", err)
			}
			if got := keyLines(tt.text); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// TestConvertKinds covers the field kinds no key uses today, for both the
// option (string) and the file (TOML value) conversions.
func TestConvertKinds(t *testing.T) {
	tests := []struct {
		name    string
		target  any // pointer to a zero value of the kind
		option  string
		file    any
		want    any // value after a successful conversion
		wantErr string
	}{
		{"uint option", new(uint16), "65535", nil, uint16(65535), ""},
		{"uint option range", new(uint16), "65536", nil, nil, "integer out of range"},
		{"uint option negative", new(uint), "-1", nil, nil, "not a non-negative integer"},
		{"uint file", new(uint32), "", int64(7), uint32(7), ""},
		{"uint file negative", new(uint32), "", int64(-7), nil, "-7 is out of range for uint32"},
		{"int8 option range", new(int8), "200", nil, nil, "integer out of range"},
		{"int8 file range", new(int8), "", int64(200), nil, "200 is out of range for int8"},
		{"float option", new(float64), "0.25", nil, 0.25, ""},
		{"float option bad", new(float64), "quarter", nil, nil, "not a number"},
		{"float32 option range", new(float32), "1e300", nil, nil, "number out of range"},
		{"float file", new(float64), "", 0.5, 0.5, ""},
		{"float file from integer", new(float64), "", int64(2), 2.0, ""},
		{"float32 file range", new(float32), "", 1e300, nil, "1e+300 is out of range for float32"},
		{"float file wrong type", new(float64), "", "x", nil, `want a number, got string "x"`},
		{"long string cut", new(int), "", strings.Repeat("a", 50), nil, `want an integer, got string "` + strings.Repeat("a", 40) + `"...`},
		{"unsupported", new([]int), "x", nil, nil, "unsupported type []int"},
		{"list option", new([]string), " a=b ; c=d;", nil, []string{"a=b", "c=d"}, ""},
		{"list file", new([]string), "", []any{"a=b", "c"}, []string{"a=b", "c"}, ""},
		{"list file wrong type", new([]string), "", "a=b", nil, `want an array of strings, got string "a=b"`},
		{"list file wrong item", new([]string), "", []any{"a", int64(3)}, nil, "item 2: want a string, got integer 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := reflect.ValueOf(tt.target).Elem()
			var err error
			if tt.file != nil {
				err = setTOML(v, tt.file)
			} else {
				err = setString(v, tt.option)
			}
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("got error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := v.Interface(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v (%T), want %v (%T)", got, got, tt.want, tt.want)
			}
		})
	}
}
