package stage

import (
	"errors"
	"log/slog"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"github.com/adaptfs/adaptfs/adapt"
	"github.com/adaptfs/adaptfs/s3backend"
)

// TestStagingQuota: a write past max_staging_disk_mb waits while uploads
// free space (the write-back delay is skipped for that), fails with ENOSPC
// when none comes within staging_full_wait, and succeeds once the uploads
// went through. Nothing staged is lost.
func TestStagingQuota(t *testing.T) {
	be := &gatedBackend{memBackend: newMemBackend(), gate: make(chan struct{})}
	cfg := DefaultConfig()
	cfg.StagingDir = t.TempDir()
	cfg.WriteBackDelay = time.Hour
	cfg.MaxStagingDiskMB = 64
	cfg.StagingFullWait = 3 * time.Second
	a, err := New(cfg, be, adapt.Fixed{P: adapt.Params{PartSize: 8 * MiB, Concurrency: 2}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	first := make([]byte, 40*MiB)
	rand.NewChaCha8([32]byte{5}).Read(first)
	fa, _ := a.Create("a", s3backend.ObjectMeta{})
	if _, err := fa.WriteAt(first, 0); err != nil {
		t.Fatal(err)
	}
	fa.Flush()
	fa.Release(true)

	second := make([]byte, 40*MiB)
	rand.NewChaCha8([32]byte{6}).Read(second)
	fb, _ := a.Create("b", s3backend.ObjectMeta{})
	start := time.Now()
	_, err = fb.WriteAt(second, 0)
	if !errors.Is(err, syscall.ENOSPC) || !errors.Is(err, ErrStagingFull) {
		t.Fatalf("write past the quota with uploads held: %v, want ENOSPC", err)
	}
	if waited := time.Since(start); waited < cfg.StagingFullWait {
		t.Fatalf("ENOSPC after %v, before staging_full_wait", waited)
	}

	close(be.gate) // the link is back: a's upload frees its space
	if _, err := fb.WriteAt(second, 0); err != nil {
		t.Fatalf("write after the uploads went through: %v", err)
	}
	fb.Flush()
	fb.Release(true)
	checkUploaded(t, a, be.memBackend, "a", first)
	checkUploaded(t, a, be.memBackend, "b", second)
}

// TestFlushCatchesLateClose: a file closed while Flush already runs skips
// the write-back delay. FUSE delivers RELEASE after cp's close returned, so
// a SIGTERM right after cp reaches Flush first; before the fix the daemon
// then waited out the whole write_back_delay.
func TestFlushCatchesLateClose(t *testing.T) {
	be := newMemBackend()
	cfg := DefaultConfig()
	cfg.StagingDir = t.TempDir()
	cfg.WriteBackDelay = time.Hour
	a, err := New(cfg, be, adapt.Fixed{P: adapt.Params{PartSize: 8 * MiB, Concurrency: 2}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	data := make([]byte, 3*MiB)
	rand.NewChaCha8([32]byte{7}).Read(data)
	f, _ := a.Create("late", s3backend.ObjectMeta{})
	if _, err := f.WriteAt(data, 0); err != nil {
		t.Fatal(err)
	}
	f.Flush()

	done := make(chan error, 1)
	go func() { done <- a.Flush(t.Context()) }()
	time.Sleep(100 * time.Millisecond) // Flush has kicked the queue and waits
	f.Release(true)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Flush still waits for a file closed after it started: the write-back delay was not skipped")
	}
	checkUploaded(t, a, be, "late", data)
}
