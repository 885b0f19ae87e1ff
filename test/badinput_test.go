package test

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/adaptfs/adaptfs/test/harness"
)

// mountCmd runs `adaptfs mount` the way a user does (backgrounding) and
// returns its exit status and output.
func mountCmd(t *testing.T, env []string, args ...string) (int, string, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, shared.bin, append([]string{"mount"}, args...)...)
	cmd.Env = append(cleanEnv(), env...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	took := time.Since(start)
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, string(out), took
}

// cleanEnv is the environment without AWS settings of the machine.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			out = append(out, kv)
		}
	}
	return append(out, "AWS_EC2_METADATA_DISABLED=true")
}

func closedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestMountBadInput: every mistake a user can make fails the command with a
// message that names the problem, fast, and leaves nothing mounted.
func TestMountBadInput(t *testing.T) {
	requireFuse(t)
	srv := harness.StartServerTB(t)
	harness.CreateBucketTB(t, srv, "real-bucket")
	good := srv.Env()
	wrongSecret := append(append([]string{}, good...), "AWS_SECRET_ACCESS_KEY=not-the-secret")

	tmp := t.TempDir()
	nonEmpty := filepath.Join(tmp, "nonempty")
	os.MkdirAll(nonEmpty, 0o755)
	os.WriteFile(filepath.Join(nonEmpty, "keep.txt"), []byte("mine"), 0o644)
	badKey := filepath.Join(tmp, "badkey.toml")
	os.WriteFile(badKey, []byte("region = \"us-east-1\"\n\nmax_concurency = 8\n"), 0o644)
	badValue := filepath.Join(tmp, "badvalue.toml")
	os.WriteFile(badValue, []byte("# comment\nmax_concurrency = \"eight\"\n"), 0o644)
	outOfRange := filepath.Join(tmp, "range.toml")
	os.WriteFile(outOfRange, []byte("min_chunk_size_mb = 2\n"), 0o644)

	tests := []struct {
		name     string
		env      []string
		endpoint string
		spec     string
		mnt      string // "" → a fresh empty dir
		extra    []string
		want     []string // all must appear in the output
		code     int
	}{
		{name: "nonexistent bucket", env: good, spec: "no-such-bucket", want: []string{"no-such-bucket", "does not exist"}, code: 1},
		{name: "wrong credentials", env: wrongSecret, spec: "real-bucket", want: []string{"real-bucket", "access denied"}, code: 1},
		{name: "unreachable endpoint", env: good, endpoint: "http://" + closedPort(t), spec: "real-bucket", want: []string{"unreachable"}, code: 1},
		{name: "missing mountpoint", env: good, spec: "real-bucket", mnt: filepath.Join(tmp, "nope"), want: []string{filepath.Join(tmp, "nope"), "does not exist"}, code: 1},
		{name: "non-empty mountpoint", env: good, spec: "real-bucket", mnt: nonEmpty, want: []string{nonEmpty, "not empty", "allow-nonempty"}, code: 1},
		{name: "unknown config key", env: good, spec: "real-bucket", extra: []string{"--config", badKey}, want: []string{"badkey.toml:3", "max_concurency", `did you mean "max_concurrency"`}, code: 1},
		{name: "bad config value", env: good, spec: "real-bucket", extra: []string{"--config", badValue}, want: []string{"badvalue.toml:2", "max_concurrency"}, code: 1},
		{name: "value out of range", env: good, spec: "real-bucket", extra: []string{"--config", outOfRange}, want: []string{"min_chunk_size_mb", "5 MiB"}, code: 1},
		{name: "unknown -o option", env: good, spec: "real-bucket", extra: []string{"-o", "concurency=4"}, want: []string{"concurency"}, code: 1},
		{name: "missing argument", env: good, spec: "", want: []string{"BUCKET[/PREFIX] MOUNTPOINT"}, code: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mnt := tt.mnt
			if mnt == "" {
				mnt = filepath.Join(t.TempDir(), "mnt")
				os.Mkdir(mnt, 0o755)
			}
			endpoint := tt.endpoint
			if endpoint == "" {
				endpoint = srv.Endpoint
			}
			args := append([]string{"--endpoint", endpoint, "--path-style", "--staging-dir", filepath.Join(t.TempDir(), "st")}, tt.extra...)
			if tt.spec != "" {
				args = append(args, tt.spec)
			}
			args = append(args, mnt)
			code, out, took := mountCmd(t, tt.env, args...)
			if code != tt.code {
				t.Errorf("exit status %d, want %d; output:\n%s", code, tt.code, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(strings.ToLower(out), strings.ToLower(w)) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			if took > 15*time.Second {
				t.Errorf("took %v to fail", took)
			}
			if ok, _ := harness.IsMountPoint(mnt); ok {
				harness.LazyUnmount(mnt)
				t.Errorf("left %s mounted", mnt)
			}
			if strings.Contains(out, "not-the-secret") {
				t.Error("the secret key appears in the output")
			}
		})
	}

	// --allow-nonempty mounts over the directory after all.
	code, out, _ := mountCmd(t, good, "--endpoint", srv.Endpoint, "--path-style", "--staging-dir", filepath.Join(tmp, "st2"), "--allow-nonempty", "real-bucket", nonEmpty)
	if code != 0 {
		t.Fatalf("--allow-nonempty: status %d: %s", code, out)
	}
	t.Cleanup(func() { exec.Command(shared.bin, "unmount", nonEmpty).Run() })
	if ok, _ := harness.IsFuseMount(nonEmpty); !ok {
		t.Fatal("--allow-nonempty did not mount")
	}
	if _, err := os.Stat(filepath.Join(nonEmpty, "keep.txt")); err == nil {
		t.Error("the mount does not cover the directory")
	}
	if out, err := exec.Command(shared.bin, "unmount", nonEmpty).CombinedOutput(); err != nil {
		t.Fatalf("unmount: %v: %s", err, out)
	}
	if ok, _ := harness.IsMountPoint(nonEmpty); ok {
		t.Error("still mounted after adaptfs unmount")
	}
}
