package test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/adaptfs/adaptfs/test/harness"
)

func TestZProf(t *testing.T) {
	srv := harness.StartServerTB(t)
	harness.CreateBucketTB(t, srv, "bkt")
	src := filepath.Join(t.TempDir(), "src")
	harness.GenTreeTB(t, src, harness.TreeSpec{Seed: 31, Text: true, LargeFiles: 2, LargeSize: 384 << 20, MediumFiles: 12, MediumMin: 8 << 20, MediumMax: 16 << 20, SmallFiles: 200, SmallMin: 1 << 10, SmallMax: 64 << 10, Depth: 3})
	m := harness.MountTB(t, harness.MountOptions{Bin: shared.bin, Server: srv, BucketPath: "bkt"})
	for i := range 3 {
		start := time.Now()
		out, err := exec.Command("cp", "-r", src, filepath.Join(m.Dir, "r"+string(rune('0'+i)))).CombinedOutput()
		if err != nil {
			t.Fatal(err, string(out))
		}
		if err := m.Sync(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Logf("durable %v", time.Since(start))
		for _, f := range []string{"params", "events"} {
			b, _ := os.ReadFile(filepath.Join(m.Dir, ".adaptstats", f))
			t.Logf("%s:\n%s", f, b)
		}
	}
	b, _ := os.ReadFile(m.LogPath)
	t.Logf("%s", b)
}
