package fs

import (
	"context"
	"errors"
	"io"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/adaptfs/adaptfs/stage"
	"github.com/adaptfs/adaptfs/zseek"
)

// stagedHandle is an open file whose bytes are in the staging area.
type stagedHandle struct {
	f     *stage.File
	write bool
}

var (
	_ = (gofs.FileReader)((*stagedHandle)(nil))
	_ = (gofs.FileWriter)((*stagedHandle)(nil))
	_ = (gofs.FileFlusher)((*stagedHandle)(nil))
	_ = (gofs.FileReleaser)((*stagedHandle)(nil))
	_ = (gofs.FileFsyncer)((*stagedHandle)(nil))
)

func (h *stagedHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	n, err := h.f.ReadAt(dest, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, errno(err)
	}
	return fuse.ReadResultData(dest[:n]), 0
}

func (h *stagedHandle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	if !h.write {
		return 0, syscall.EBADF
	}
	n, err := h.f.WriteAt(data, off)
	if err != nil {
		return uint32(n), errno(err)
	}
	return uint32(n), 0
}

func (h *stagedHandle) Flush(ctx context.Context) syscall.Errno {
	if !h.write {
		return 0
	}
	return errno(h.f.Flush())
}

func (h *stagedHandle) Release(ctx context.Context) syscall.Errno {
	h.f.Release(h.write)
	return 0
}

// Fsync returns once the object is complete in S3, with the upload's error.
func (h *stagedHandle) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	ctx = detach(ctx)
	if err := h.f.Sync(ctx); err != nil {
		// An upload that cannot complete is EIO whatever the cause
		// (the xattr and .adaptstats/uploads say which).
		if e := errno(err); e == syscall.EINTR || e == syscall.ENOSPC {
			return e
		}
		return syscall.EIO
	}
	return 0
}

// objectHandle reads an uploaded object with ranged GETs.
type objectHandle struct {
	r rangeReader
}

// rangeReader reads an object's (decoded) bytes at offsets.
type rangeReader interface {
	ReadAt(ctx context.Context, p []byte, off int64) (int, error)
	Close()
}

// zstdReader reads a compressed object through its seek table: only the
// frames a read touches are fetched.
type zstdReader struct{ zr *zseek.Reader }

func (r *zstdReader) ReadAt(ctx context.Context, p []byte, off int64) (int, error) {
	return r.zr.ReadAt(ctx, p, off)
}

func (r *zstdReader) Close() {}

// readerAtCtx is an io.ReaderAt over a zseek.Reader with a fixed context.
type readerAtCtx struct {
	ctx context.Context
	zr  *zseek.Reader
}

func (r readerAtCtx) ReadAt(p []byte, off int64) (int, error) { return r.zr.ReadAt(r.ctx, p, off) }

var (
	_ = (gofs.FileReader)((*objectHandle)(nil))
	_ = (gofs.FileReleaser)((*objectHandle)(nil))
	_ = (gofs.FileFsyncer)((*objectHandle)(nil))
)

func newObjectHandle(f *FS, key string, size int64) *objectHandle {
	return &objectHandle{r: newObjectReader(f.be, key, size, int64(f.cfg.ReadAheadMB)<<20, f.log)}
}

func (h *objectHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	ctx = detach(ctx)
	n, err := h.r.ReadAt(ctx, dest, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, errno(err)
	}
	return fuse.ReadResultData(dest[:n]), 0
}

func (h *objectHandle) Release(ctx context.Context) syscall.Errno {
	h.r.Close()
	return 0
}

func (h *objectHandle) Fsync(ctx context.Context, flags uint32) syscall.Errno { return 0 }
