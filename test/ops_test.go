package test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/adaptfs/adaptfs/test/harness"
)

func sumOf(b []byte) harness.Sum {
	h := sha256.Sum256(b)
	return harness.Sum{Size: int64(len(b)), SHA256: hex.EncodeToString(h[:])}
}

func randBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)}).Read(b)
	return b
}

// TestReadBack reads a large file through the mount while it is staged and
// after it is uploaded, whole and at random offsets.
func TestReadBack(t *testing.T) {
	r := newRig(t, "rb/")
	data := randBytes(90<<20+12345, 3)
	if err := os.WriteFile(r.path("big"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	check := func(phase string) {
		got, err := os.ReadFile(r.path("big"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("%s: whole read differs", phase)
		}
		f, err := os.Open(r.path("big"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		rng := rand.New(rand.NewPCG(1, 2))
		for range 200 {
			off := rng.Int64N(int64(len(data)))
			n := rng.IntN(3<<20) + 1
			buf := make([]byte, n)
			m, err := f.ReadAt(buf, off)
			if err != nil && !errors.Is(err, io.EOF) {
				t.Fatalf("%s: ReadAt(%d, %d): %v", phase, off, n, err)
			}
			if want := data[off:min(off+int64(n), int64(len(data)))]; !bytes.Equal(buf[:m], want) {
				t.Fatalf("%s: ReadAt(%d, %d) differs", phase, off, n)
			}
		}
	}
	check("staged")
	r.sync(t)
	// A fresh mount has nothing staged: every read is a ranged GET.
	r.mnt.Unmount(t.Context())
	r.mnt = r.mount(t)
	check("uploaded")
}

// TestNamespaceOps applies each operation through the mount and checks the
// server's view afterwards.
func TestNamespaceOps(t *testing.T) {
	r := newRig(t, "ns/")
	write := func(rel string, b []byte) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(r.path(rel)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(r.path(rel), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	a, b, big := randBytes(1000, 1), randBytes(5000, 2), randBytes(12<<20, 3)

	// Set up: some files uploaded, then more operations on staged and uploaded files.
	write("up/a", a)
	write("up/b", b)
	write("up/big", big)
	write("up/dir/x", a)
	write("up/dir/sub/y", b)
	r.sync(t)

	steps := []struct {
		name string
		do   func() error
	}{
		{"rename uploaded file", func() error { return os.Rename(r.path("up/a"), r.path("up/a2")) }},
		{"rename uploaded large file", func() error { return os.Rename(r.path("up/big"), r.path("big-moved")) }},
		{"rename staged file", func() error {
			write("staged1", a)
			return os.Rename(r.path("staged1"), r.path("staged1-moved"))
		}},
		{"rename over existing file", func() error {
			write("victim", b)
			write("winner", a)
			return os.Rename(r.path("winner"), r.path("victim"))
		}},
		{"rename directory", func() error { return os.Rename(r.path("up/dir"), r.path("dir2")) }},
		{"unlink uploaded", func() error { return os.Remove(r.path("up/b")) }},
		{"unlink staged", func() error {
			write("gone", a)
			return os.Remove(r.path("gone"))
		}},
		{"mkdir", func() error { return os.Mkdir(r.path("empty"), 0o755) }},
		{"mkdir+rmdir", func() error {
			if err := os.Mkdir(r.path("tmpdir"), 0o755); err != nil {
				return err
			}
			return os.Remove(r.path("tmpdir"))
		}},
		{"rmdir non-empty fails", func() error {
			if err := syscall.Rmdir(r.path("dir2")); !errors.Is(err, syscall.ENOTEMPTY) {
				return errors.New("rmdir of a non-empty directory: " + errString(err))
			}
			return nil
		}},
		{"overwrite uploaded", func() error {
			write("up/a2", b) // O_TRUNC of an uploaded object
			return nil
		}},
		{"truncate uploaded", func() error { return os.Truncate(r.path("dir2/sub/y"), 100) }},
		{"extend staged", func() error {
			write("ext", a)
			return os.Truncate(r.path("ext"), 3000)
		}},
		{"append to uploaded", func() error {
			f, err := os.OpenFile(r.path("dir2/x"), os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				return err
			}
			if _, err := f.Write(b); err != nil {
				return err
			}
			return f.Close()
		}},
		{"write in the middle of uploaded", func() error {
			f, err := os.OpenFile(r.path("big-moved"), os.O_WRONLY, 0)
			if err != nil {
				return err
			}
			if _, err := f.WriteAt([]byte("PATCH"), 6<<20); err != nil {
				return err
			}
			return f.Close()
		}},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
	}
	r.sync(t)

	patched := slices.Clone(big)
	copy(patched[6<<20:], "PATCH")
	extended := append(slices.Clone(a), make([]byte, 2000)...)
	want := map[string]harness.Sum{
		"up/a2":         sumOf(b),
		"big-moved":     sumOf(patched),
		"staged1-moved": sumOf(a),
		"victim":        sumOf(a),
		"dir2/x":        sumOf(append(slices.Clone(a), b...)),
		"dir2/sub/y":    sumOf(b[:100]),
		"ext":           sumOf(extended),
	}
	got, markers := r.objects(t)
	requireSame(t, "bucket after operations", want, got)
	slices.Sort(markers)
	if !slices.Contains(markers, "empty/") || slices.Contains(markers, "tmpdir/") {
		t.Errorf("directory markers: %v (want empty/, not tmpdir/)", markers)
	}
	for _, m := range markers {
		if strings.HasPrefix(m, "up/dir/") {
			t.Errorf("marker of the renamed directory left behind: %s", m)
		}
	}
	// The mount agrees with the bucket.
	back, err := harness.TreeSums(r.mnt.Dir)
	if err != nil {
		t.Fatal(err)
	}
	requireSame(t, "mount after operations", want, back)
}

func errString(err error) string {
	if err == nil {
		return "succeeded"
	}
	return err.Error()
}

// TestFsyncWaitsForS3: when fsync returns, the object is complete on the
// server, before the file is even closed.
func TestFsyncWaitsForS3(t *testing.T) {
	r := newRig(t, "", "-o", "write_back_delay=1h")
	for _, size := range []int{10, 40 << 20} {
		data := randBytes(size, uint64(size))
		f := createSynced(t, r.path("f"), data)
		got, err := objectBytes(t, r, "f")
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("after fsync of %d bytes the server has %d bytes, %v", size, len(got), err)
		}
		f.Close()
	}
	// With a write-back delay of an hour, only `adaptfs sync` makes a closed
	// file durable, and it does.
	data := randBytes(7<<20, 9)
	if err := os.WriteFile(r.path("g"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := objectBytes(t, r, "g"); err == nil {
		t.Fatal("uploaded before the write-back delay")
	}
	r.sync(t)
	if got, err := objectBytes(t, r, "g"); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("after sync: %d bytes, %v", len(got), err)
	}
}

// writeHeldOpen writes path and opens it for reading: the reader keeps
// the staged copy after its upload. The caller closes it.
func writeHeldOpen(t *testing.T, path string, data []byte) *os.File {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	rd, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return rd
}

// createSynced creates path with data and fsyncs it; the file stays open.
func createSynced(t *testing.T, path string, data []byte) *os.File {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatalf("fsync: %v", err)
	}
	return f
}

func objectBytes(t *testing.T, r *rig, key string) ([]byte, error) {
	return harness.ObjectBytes(t.Context(), r.srv.Client, r.bucket, r.prefix+key)
}

// TestKeyTooLong: a path whose key would pass S3's 1024 bytes is refused
// with ENAMETOOLONG, and nothing reaches the bucket.
func TestKeyTooLong(t *testing.T) {
	r := newRig(t, "p/")
	dir := r.mnt.Dir
	for i := range 4 {
		dir = filepath.Join(dir, strings.Repeat(string(rune('a'+i)), 250))
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatalf("mkdir level %d (key %d bytes): %v", i+1, len(dir)-len(r.mnt.Dir), err)
		}
	}
	err := os.WriteFile(filepath.Join(dir, strings.Repeat("z", 30)), []byte("x"), 0o644)
	if !errors.Is(err, syscall.ENAMETOOLONG) {
		t.Fatalf("want ENAMETOOLONG, got %v", err)
	}
	r.sync(t)
	got, _ := r.objects(t)
	if len(got) != 0 {
		t.Errorf("objects: %v", got)
	}
}

// TestRenameAfterFsyncWhileOpen: a file uploaded by fsync and renamed while
// still open ends up under the new name with its content, and the old name
// is gone, whether or not more is written before close.
func TestRenameAfterFsyncWhileOpen(t *testing.T) {
	r := newRig(t, "", "-o", "write_back_delay=0s")
	for _, more := range []bool{false, true} {
		data := randBytes(1<<20, 3)
		f := createSynced(t, r.path("old"), data)
		if err := os.Rename(r.path("old"), r.path("new")); err != nil {
			t.Fatal(err)
		}
		if more {
			if _, err := f.Write([]byte("tail")); err != nil {
				t.Fatal(err)
			}
			data = append(data, "tail"...)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		r.sync(t)
		got, _ := r.objects(t)
		if len(got) != 1 || got["new"] != sumOf(data) {
			t.Fatalf("more=%v: bucket holds %+v, want only new = %+v", more, got, sumOf(data))
		}
		os.Remove(r.path("new"))
	}
}

// TestRenameUploadedWhileReadOpen: a file uploaded while a reader still
// holds it open is still staged; a rename then must move the object, not
// only the staged copy.
func TestRenameUploadedWhileReadOpen(t *testing.T) {
	r := newRig(t, "", "-o", "write_back_delay=1h")
	data := randBytes(3<<20, 4)
	rd := writeHeldOpen(t, r.path("a"), data)
	r.sync(t)
	if err := os.Rename(r.path("a"), r.path("b")); err != nil {
		t.Fatal(err)
	}
	rd.Close()
	r.sync(t)
	got, _ := r.objects(t)
	if len(got) != 1 || got["b"] != sumOf(data) {
		t.Fatalf("bucket holds %+v, want only b = %+v", got, sumOf(data))
	}
}
