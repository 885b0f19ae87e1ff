package harness

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// StartServerTB starts versitygw in a temporary directory and stops it when
// the test ends. It fails the test if versitygw is missing.
func StartServerTB(t testing.TB) *Server {
	t.Helper()
	bin, err := FindVersitygw()
	if err != nil {
		t.Fatalf("test S3 server: %v", err)
	}
	s, err := StartServer(t.Context(), bin, t.TempDir())
	if err != nil {
		t.Fatalf("test S3 server: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// CreateBucketTB creates a bucket on s or fails the test.
func CreateBucketTB(t testing.TB, s *Server, name string) {
	t.Helper()
	if err := s.CreateBucket(t.Context(), name); err != nil {
		t.Fatal(err)
	}
}

// BuildAdaptfsTB builds adaptfs into a temporary directory and returns the
// path of the binary. Packages with many tests should build once in
// TestMain instead.
func BuildAdaptfsTB(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	bin, err := BuildAdaptfs(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// MountTB starts a mount (see StartMount) and registers a cleanup that
// unmounts it, falling back to `umount -l` and SIGKILL, so that nothing
// stays mounted after the test. Empty Dir and StagingDir become temporary
// directories. On failure the tail of the adaptfs log is in the message.
func MountTB(t testing.TB, opts MountOptions) *Mount {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = filepath.Join(t.TempDir(), "mnt")
	}
	if opts.StagingDir == "" {
		opts.StagingDir = filepath.Join(t.TempDir(), "staging")
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	m, err := StartMount(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// t.Context is already canceled when cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if err := m.Unmount(ctx); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		if t.Failed() {
			t.Logf("adaptfs log of %s:\n%s", m.Dir, m.LogTail(40))
		}
	})
	return m
}

// GenTreeTB generates spec under dir or fails the test.
func GenTreeTB(t testing.TB, dir string, spec TreeSpec) (files int, bytes int64) {
	t.Helper()
	files, bytes, err := GenTree(dir, spec)
	if err != nil {
		t.Fatal(err)
	}
	return files, bytes
}
