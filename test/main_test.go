// Package test holds adaptfs's end-to-end tests and benchmarks: a real
// mount (the adaptfs binary) over a real S3-compatible server (versitygw),
// driven by real cp, rsync and tar, verified against the server with a plain
// S3 client.
package test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/adaptfs/adaptfs/test/harness"
)

// env is what every test in this package shares: the adaptfs binary built
// once for the run.
type env struct {
	bin string
}

var shared env

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "adaptfs-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	bin, err := harness.BuildAdaptfs(ctx, dir)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "build adaptfs:", err)
		return 1
	}
	shared.bin = bin
	return m.Run()
}

// rig is one server, one bucket and one mount.
type rig struct {
	srv    *harness.Server
	bucket string
	prefix string // "" or ending in "/"
	mnt    *harness.Mount
}

// newRig starts a server, creates a bucket and mounts bucket/prefix.
func newRig(t *testing.T, prefix string, extra ...string) *rig {
	t.Helper()
	requireFuse(t)
	srv := harness.StartServerTB(t)
	r := &rig{srv: srv, bucket: "adaptfs-test", prefix: prefix}
	harness.CreateBucketTB(t, srv, r.bucket)
	r.mnt = r.mount(t, extra...)
	return r
}

func (r *rig) bucketPath() string {
	return strings.TrimSuffix(r.bucket+"/"+r.prefix, "/")
}

func (r *rig) mount(t *testing.T, extra ...string) *harness.Mount {
	t.Helper()
	staging := filepath.Join(t.TempDir(), "staging")
	if r.mnt != nil {
		staging = r.mnt.StagingDir()
	}
	return harness.MountTB(t, harness.MountOptions{
		Bin: shared.bin, Server: r.srv, BucketPath: r.bucketPath(),
		StagingDir: staging, ExtraArgs: extra,
	})
}

func (r *rig) path(rel string) string { return filepath.Join(r.mnt.Dir, rel) }

func (r *rig) sync(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	if err := r.mnt.Sync(ctx); err != nil {
		t.Fatalf("adaptfs sync: %v\n%s", err, r.mnt.LogTail(30))
	}
}

// objects returns every object under the rig's prefix, read from the server.
func (r *rig) objects(t *testing.T) (map[string]harness.Sum, []string) {
	t.Helper()
	sums, markers, err := harness.BucketContents(t.Context(), r.srv.Client, r.bucket, r.prefix)
	if err != nil {
		t.Fatal(err)
	}
	return sums, markers
}

func requireFuse(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("these tests mount FUSE file systems and must run as root (CI does)")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Fatalf("no /dev/fuse: %v", err)
	}
}

// run runs a command and fails the test with its output if it fails.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// subtree returns the sums whose key starts with dir+"/", re-rooted.
func subtree(sums map[string]harness.Sum, dir string) map[string]harness.Sum {
	out := map[string]harness.Sum{}
	for k, v := range sums {
		if rest, ok := strings.CutPrefix(k, dir+"/"); ok {
			out[rest] = v
		}
	}
	return out
}

func requireSame(t *testing.T, what string, want, got map[string]harness.Sum) {
	t.Helper()
	if d := harness.DiffSums(want, got); len(d) > 0 {
		t.Fatalf("%s differs (%d files expected, %d found):\n%s", what, len(want), len(got), strings.Join(d, "\n"))
	}
}
