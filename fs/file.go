package fs

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/adaptfs/adaptfs/s3backend"
	"github.com/adaptfs/adaptfs/stage"
	"github.com/adaptfs/adaptfs/zseek"
)

// fileNode is a regular file: staged (being written or uploaded) or an
// object in the bucket.
type fileNode struct {
	gofs.Inode
	fsys *FS
	// etag is the version of the object this inode shows, "" until a
	// lookup sees one. With the writeback cache the kernel keeps an inode's
	// size whatever we answer, so an object replaced behind our back gets
	// a new inode instead (dirNode.objectChild).
	mu   sync.Mutex
	etag string
}

// setVersion records the ETag of the object the inode shows; "" forgets
// it (open for writing: the object our upload makes is this inode's
// content, whatever its ETag; Uploaded then tells which one it is).
func (n *fileNode) setVersion(etag string) {
	n.mu.Lock()
	n.etag = strings.Trim(etag, `"`)
	n.mu.Unlock()
}

// sameVersion reports whether the inode may go on showing the object with
// etag; an unknown version on either side is adopted, not a change.
func (n *fileNode) sameVersion(etag string) bool {
	etag = strings.Trim(etag, `"`)
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.etag == "" || etag == "" {
		if etag != "" {
			n.etag = etag
		}
		return true
	}
	return n.etag == etag
}

var (
	_ = (gofs.NodeGetattrer)((*fileNode)(nil))
	_ = (gofs.NodeSetattrer)((*fileNode)(nil))
	_ = (gofs.NodeOpener)((*fileNode)(nil))
	_ = (gofs.NodeGetxattrer)((*fileNode)(nil))
	_ = (gofs.NodeListxattrer)((*fileNode)(nil))
)

func (n *fileNode) key() (string, syscall.Errno) {
	k, ok := nodeKey(n.EmbeddedInode())
	if !ok {
		return "", syscall.ENOENT
	}
	return k, 0
}

// object returns what the bucket says about key, with metadata (HEAD once,
// then cached with the listing).
func (f *FS) object(ctx context.Context, key string) (s3backend.ObjectInfo, error) {
	dir, name := splitKey(key)
	de, ok, err := f.dirs.lookup(ctx, dir, name)
	if err != nil {
		return s3backend.ObjectInfo{}, err
	}
	if ok && de.isDir {
		return s3backend.ObjectInfo{}, fmt.Errorf("%s: %w", key, syscall.EISDIR)
	}
	if ok && de.metaKnown {
		return de.info, nil
	}
	info, err := f.be.Head(ctx, key)
	if err != nil {
		return info, err
	}
	if info.Meta.Compressed() && info.Meta.RawSize < 0 {
		// Uploaded before its size was known: the seek table has it.
		r, err := zseek.NewReader(ctx, f.fetcher(key), info.Size)
		if err != nil {
			return info, fmt.Errorf("%s: seek table: %w", key, err)
		}
		info.Meta.RawSize = r.RawSize()
	}
	f.dirs.setMeta(key, info)
	return info, nil
}

// objSize is the size a reader of the object sees (decoded, if compressed).
func objSize(info s3backend.ObjectInfo) int64 {
	n, _ := info.LogicalSize()
	return max(n, 0)
}

// fetcher reads exact byte ranges of key's stored bytes.
func (f *FS) fetcher(key string) zseek.FetchFunc {
	return func(ctx context.Context, off, n int64) ([]byte, error) {
		r, err := f.be.Get(ctx, key, off, n)
		if err != nil {
			return nil, err
		}
		defer r.Close()
		buf := make([]byte, n)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, fmt.Errorf("read %s at %d: %w", key, off, err)
		}
		return buf, nil
	}
}

func (n *fileNode) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	ctx = detach(ctx)
	f := n.fsys
	if h, ok := fh.(*stagedHandle); ok { // fstat, also after unlink
		st := h.f.Stat()
		f.fillFile(&out.Attr, st.Size, st.Meta, f.started)
		return 0
	}
	key, e := n.key()
	if e != 0 {
		return e
	}
	if sf := f.area.Get(key); sf != nil {
		st := sf.Stat()
		f.fillFile(&out.Attr, st.Size, st.Meta, f.started)
		return 0
	}
	info, err := f.object(ctx, key)
	if err != nil {
		return errno(err)
	}
	f.fillFile(&out.Attr, objSize(info), info.Meta, info.LastModified)
	return 0
}

func (n *fileNode) Setattr(ctx context.Context, fh gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	ctx = detach(ctx)
	f := n.fsys
	if f.cfg.ReadOnly {
		return syscall.EROFS
	}
	key, e := n.key()
	var sf *stage.File
	if h, ok := fh.(*stagedHandle); ok {
		sf = h.f
	} else if e != 0 {
		return e
	} else {
		sf = f.area.Get(key)
	}
	if sf == nil {
		// An object in the bucket: a size change goes through staging.
		if size, ok := in.GetSize(); ok {
			var err error
			if sf, err = f.stageForUpdate(ctx, key, size == 0); err != nil {
				return errno(err)
			}
			defer sf.Release(true)
		}
	}
	if sf != nil {
		if size, ok := in.GetSize(); ok {
			if err := sf.Truncate(int64(size)); err != nil {
				return errno(err)
			}
		}
		if err := sf.SetMeta(func(m *s3backend.ObjectMeta) { applySetattr(m, in) }); err != nil {
			return errno(err)
		}
		st := sf.Stat()
		f.fillFile(&out.Attr, st.Size, st.Meta, f.started)
		return 0
	}
	// Metadata only, on an uploaded object: rewrite it server-side.
	info, err := f.object(ctx, key)
	if err != nil {
		return errno(err)
	}
	meta := info.Meta
	applySetattr(&meta, in)
	if !metaChanged(info.Meta, meta) {
		f.fillFile(&out.Attr, objSize(info), meta, info.LastModified)
		return 0
	}
	if err := f.be.Copy(ctx, key, key, &meta); err != nil {
		f.log.Error("setattr: metadata update failed", "key", key, "err", err)
		return errno(err)
	}
	info.Meta = meta
	f.dirs.setMeta(key, info)
	f.fillFile(&out.Attr, objSize(info), meta, info.LastModified)
	return 0
}

func metaChanged(a, b s3backend.ObjectMeta) bool {
	return !a.Mtime.Equal(b.Mtime) || a.Mode != b.Mode || a.UID != b.UID || a.GID != b.GID || a.HasOwner != b.HasOwner
}

func applySetattr(m *s3backend.ObjectMeta, in *fuse.SetAttrIn) {
	if mode, ok := in.GetMode(); ok {
		m.Mode = syscall.S_IFREG | (mode & 0o7777)
	}
	uid, uok := in.GetUID()
	gid, gok := in.GetGID()
	if uok || gok {
		if !m.HasOwner {
			m.UID, m.GID = uint32(os.Getuid()), uint32(os.Getgid())
		}
		if uok {
			m.UID = uid
		}
		if gok {
			m.GID = gid
		}
		m.HasOwner = true
	}
	if mt, ok := in.GetMTime(); ok {
		m.Mtime = mt
	} else if in.Valid&fuse.FATTR_MTIME_NOW != 0 {
		m.Mtime = time.Now()
	}
}

// stageForUpdate stages key for writing: empty when trunc, else with the
// object's current bytes (read-modify-write through the staging file).
func (f *FS) stageForUpdate(ctx context.Context, key string, trunc bool) (*stage.File, error) {
	info, err := f.object(ctx, key)
	if err != nil {
		return nil, err
	}
	meta := info.Meta
	// The staged copy is raw bytes; how it is stored is decided anew.
	meta.ContentEncoding, meta.Format, meta.RawSize = "", "", 0
	if trunc {
		meta.Mtime = time.Now()
		return f.area.Create(key, meta)
	}
	return f.area.Adopt(ctx, key, meta, func(ctx context.Context, w *os.File) (int64, error) {
		if info.Meta.Compressed() {
			zr, err := zseek.NewReader(ctx, f.fetcher(key), info.Size)
			if err != nil {
				return 0, fmt.Errorf("%s: %w", key, err)
			}
			return io.Copy(w, io.NewSectionReader(readerAtCtx{ctx, zr}, 0, zr.RawSize()))
		}
		r, err := f.be.Get(ctx, key, 0, -1)
		if err != nil {
			return 0, err
		}
		defer r.Close()
		return io.Copy(w, r)
	})
}

func (n *fileNode) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	ctx = detach(ctx)
	f := n.fsys
	key, e := n.key()
	if e != 0 {
		return nil, 0, e
	}
	write := flags&syscall.O_ACCMODE != syscall.O_RDONLY
	trunc := flags&syscall.O_TRUNC != 0
	if write && f.cfg.ReadOnly {
		return nil, 0, syscall.EROFS
	}
	if write {
		n.setVersion("") // what we upload next is this inode's content
	}
	if sf := f.area.Get(key); sf != nil {
		if err := sf.Open(write, trunc && write); err == nil {
			return &stagedHandle{f: sf, write: write}, 0, 0
		}
		// uploaded and released meanwhile: open the object instead
	}
	if write {
		sf, err := f.stageForUpdate(ctx, key, trunc)
		if err != nil {
			f.log.Error("open for update failed", "key", key, "err", err)
			return nil, 0, errno(err)
		}
		return &stagedHandle{f: sf, write: true}, 0, 0
	}
	info, err := f.object(ctx, key)
	if err != nil {
		return nil, 0, errno(err)
	}
	if info.Meta.Compressed() {
		zr, err := zseek.NewReader(ctx, f.fetcher(key), info.Size)
		if err != nil {
			f.log.Error("compressed object unreadable", "key", key, "err", err)
			return nil, 0, syscall.EIO
		}
		return &objectHandle{r: &zstdReader{zr: zr}}, 0, 0
	}
	return newObjectHandle(f, key, info.Size), 0, 0
}

// Extended attributes: user.adaptfs.state tells where a file's upload is.
const xattrState = "user.adaptfs.state"

func (n *fileNode) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	if attr != xattrState {
		return 0, syscall.ENODATA
	}
	key, e := n.key()
	if e != 0 {
		return 0, e
	}
	val := "uploaded"
	if sf := n.fsys.area.Get(key); sf != nil {
		st := sf.Stat()
		switch st.State {
		case stage.Uploading:
			pct := 100
			if st.Size > 0 {
				pct = int(st.UploadedBytes * 100 / st.Size)
			}
			val = fmt.Sprintf("uploading %d%%", pct)
		case stage.Failed:
			val = "failed: " + strings.ReplaceAll(fmt.Sprint(st.Err), "\n", " ")
		case stage.Uploaded:
			val = "uploaded"
		default:
			val = "staged"
		}
	}
	return copyXattr(dest, val)
}

func (n *fileNode) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	return copyXattr(dest, xattrState+"\x00")
}

func copyXattr(dest []byte, val string) (uint32, syscall.Errno) {
	if len(dest) == 0 {
		return uint32(len(val)), 0
	}
	if len(dest) < len(val) {
		return uint32(len(val)), syscall.ERANGE
	}
	return uint32(copy(dest, val)), 0
}
