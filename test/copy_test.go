package test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/adaptfs/adaptfs/test/harness"
)

// TestCopyRsyncTar copies the issue's data set (2,000 small, 30 medium and
// 2 × 300 MiB files, 5 deep, spaces and UTF-8 in names) into the mount with
// real cp -r, rsync -a and tar -x, waits with `adaptfs sync`, and compares
// every object byte for byte from the server. A second rsync must transfer
// nothing, and mtimes survive a remount.
func TestCopyRsyncTar(t *testing.T) {
	src := filepath.Join(t.TempDir(), "source")
	files, bytes := harness.GenTreeTB(t, src, harness.SpecIssue2())
	t.Logf("data set: %d files, %d MiB", files, bytes>>20)
	want, err := harness.TreeSums(src)
	if err != nil {
		t.Fatal(err)
	}
	tarball := filepath.Join(t.TempDir(), "set.tar")
	run(t, "tar", "-cf", tarball, "-C", src, ".")

	r := newRig(t, "data/")
	start := time.Now()
	run(t, "cp", "-r", src, r.path("cp"))
	t.Logf("cp -r returned after %v", time.Since(start).Round(time.Millisecond))
	run(t, "rsync", "-a", src+"/", r.path("rsync")+"/")
	if err := os.Mkdir(r.path("tar"), 0o755); err != nil {
		t.Fatal(err)
	}
	run(t, "tar", "-xf", tarball, "-C", r.path("tar"))
	r.sync(t)
	t.Logf("all three copies durable after %v", time.Since(start).Round(time.Millisecond))

	got, _ := r.objects(t)
	for _, dir := range []string{"cp", "rsync", "tar"} {
		requireSame(t, dir+" in the bucket", want, subtree(got, dir))
	}

	// rsync again: nothing to transfer, because sizes and mtimes match.
	out := run(t, "rsync", "-a", "--stats", src+"/", r.path("rsync")+"/")
	if m := regexp.MustCompile(`Number of regular files transferred: (\d+)`).FindStringSubmatch(out); m == nil || m[1] != "0" {
		t.Fatalf("second rsync transferred files:\n%s", out)
	}

	// After a remount the metadata comes from the objects themselves.
	r.mnt.Unmount(t.Context())
	r.mnt = r.mount(t)
	checkMtimes(t, src, r.path("rsync"))
	out = run(t, "rsync", "-a", "--stats", src+"/", r.path("rsync")+"/")
	if m := regexp.MustCompile(`Number of regular files transferred: (\d+)`).FindStringSubmatch(out); m == nil || m[1] != "0" {
		t.Fatalf("rsync after remount transferred files:\n%s", out)
	}

	// Reading back through the mount (ranged GETs now) gives the same bytes.
	back, err := harness.TreeSums(r.path("cp"))
	if err != nil {
		t.Fatal(err)
	}
	requireSame(t, "cp read back through the mount", want, back)
}

// checkMtimes compares every regular file's mtime (to the microsecond) and
// mode between a local tree and the mount.
func checkMtimes(t *testing.T, src, mnt string) {
	t.Helper()
	n := 0
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		sa, err := os.Stat(p)
		if err != nil {
			return err
		}
		sb, err := os.Stat(filepath.Join(mnt, rel))
		if err != nil {
			return err
		}
		a, b := sa.Sys().(*syscall.Stat_t), sb.Sys().(*syscall.Stat_t)
		ta, tb := time.Unix(a.Mtim.Unix()), time.Unix(b.Mtim.Unix())
		if d := ta.Sub(tb).Abs(); d > time.Microsecond {
			t.Errorf("%s: mtime %v in the mount, %v locally", rel, tb, ta)
		}
		if a.Mode != b.Mode || a.Size != b.Size {
			t.Errorf("%s: mode %o size %d in the mount, %o %d locally", rel, b.Mode, b.Size, a.Mode, a.Size)
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("no files compared")
	}
}

// TestPartsStreamWhileWriting: while a large file is still open and being
// written, its completed parts are already on the server.
func TestPartsStreamWhileWriting(t *testing.T) {
	r := newRig(t, "", "-o", "part_size_mb=8,concurrency=4")
	f, err := os.Create(r.path("stream.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	src := filepath.Join(t.TempDir(), "src.bin")
	if err := harness.GenFile(src, 200<<20, 7); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	// Write the first 120 MiB, then watch the server while the file is open.
	if _, err := f.Write(data[:120<<20]); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	var parts int
	for time.Now().Before(deadline) && parts < 3 {
		ups, err := harness.MultipartUploads(t.Context(), r.srv.Client, r.bucket)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range ups {
			if u.Key == "stream.bin" {
				ps, err := harness.ListParts(t.Context(), r.srv.Client, r.bucket, u.Key, u.UploadID)
				if err != nil {
					t.Fatal(err)
				}
				parts = len(ps)
				for _, p := range ps {
					if p.Size != 8<<20 {
						t.Errorf("part %d has %d bytes, want 8 MiB", p.Number, p.Size)
					}
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if parts < 3 {
		t.Fatalf("only %d parts on the server while the file was open", parts)
	}
	t.Logf("%d parts on the server before close", parts)
	if _, err := f.Write(data[120<<20:]); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	r.sync(t)
	got, _ := r.objects(t)
	want, _ := harness.TreeSums(filepath.Dir(src))
	requireSame(t, "streamed object", map[string]harness.Sum{"stream.bin": want["src.bin"]}, got)
	if ups, _ := harness.ListMultipartUploads(t.Context(), r.srv.Client, r.bucket); len(ups) > 0 {
		t.Errorf("multipart uploads left: %v", ups)
	}
}

// TestStagingEmptiesAfterSync: once uploaded and closed, staged data is
// removed (reads go to S3).
func TestStagingEmptiesAfterSync(t *testing.T) {
	r := newRig(t, "")
	for i, size := range []int{0, 1, 6 << 20, 33 << 20} {
		name := filepath.Join(t.TempDir(), "f")
		if err := harness.GenFile(name, int64(size), uint64(i)); err != nil {
			t.Fatal(err)
		}
		run(t, "cp", name, r.path(strings.Repeat("x", i+1)))
	}
	r.sync(t)
	// The staging files go right after the upload is marked complete.
	var left []string
	for range 20 {
		var err error
		if left, err = filepath.Glob(filepath.Join(r.mnt.StagingDir(), "*.data")); err != nil {
			t.Fatal(err)
		}
		if len(left) == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(left) > 0 {
		t.Errorf("staged data left after sync: %v", left)
	}
	got, _ := r.objects(t)
	if len(got) != 4 {
		t.Errorf("want 4 objects, got %v", got)
	}
}

// TestCloseSurvivesKill: files whose close succeeded are uploaded by the
// next mount after the daemon is killed with SIGKILL before uploading them;
// a file still open when it died is kept aside, not uploaded.
func TestCloseSurvivesKill(t *testing.T) {
	r := newRig(t, "k/", "-o", "write_back_delay=1h")
	src := filepath.Join(t.TempDir(), "src")
	harness.GenTreeTB(t, src, harness.TreeSpec{Seed: 5, SmallFiles: 40, SmallMin: 1, SmallMax: 64 << 10, MediumFiles: 2, MediumMin: 20 << 20, MediumMax: 40 << 20, Depth: 3})
	want, err := harness.TreeSums(src)
	if err != nil {
		t.Fatal(err)
	}
	run(t, "cp", "-r", src, r.path("tree"))
	open, err := os.Create(r.path("still-open"))
	if err != nil {
		t.Fatal(err)
	}
	open.Write([]byte("never closed"))
	r.mnt.Kill()
	open.Close()
	if got, _ := r.objects(t); len(got) != 0 {
		t.Fatalf("objects uploaded despite the write-back delay: %d", len(got))
	}

	r.mnt = r.mount(t)
	r.sync(t)
	got, _ := r.objects(t)
	requireSame(t, "tree after kill -9 and remount", want, subtree(got, "tree"))
	if _, ok := got["still-open"]; ok {
		t.Error("a file that was never closed was uploaded")
	}
	if ups, _ := harness.ListMultipartUploads(t.Context(), r.srv.Client, r.bucket); len(ups) > 0 {
		t.Errorf("multipart uploads left: %v", ups)
	}
	aside, _ := filepath.Glob(filepath.Join(r.mnt.StagingDir(), "unclosed", "*.data"))
	if len(aside) != 1 {
		t.Errorf("want the unclosed file kept aside, found %v", aside)
	}
}
