// Package fs is adaptfs's FUSE node tree (go-fuse v2 fs API). It maps
// POSIX operations onto the staging area (writes) and the S3 backend
// (listing, reads, renames, deletes). Nodes hold no key: a node's key is its
// path in the tree, so renaming a directory renames everything under it.
package fs

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/adaptfs/adaptfs/adapt"
	"github.com/adaptfs/adaptfs/s3backend"
	"github.com/adaptfs/adaptfs/stage"
)

// maxKeyLen is S3's limit on a key's length in bytes.
const maxKeyLen = 1024

// FS is one mounted bucket (or prefix).
type FS struct {
	cfg        Config
	be         s3backend.Backend
	area       *stage.Area
	log        *slog.Logger
	dirs       *dirCache
	root       *dirNode
	mounted    atomic.Bool // see Mounted
	keyPrefix  string      // the bucket prefix, only for the key-length limit
	uid, gid   uint32
	umask      uint32
	started    time.Time
	ctrl       Snapshotter // nil: no controller view
	stats      StatsSource // nil: no StatsDir
	shadowOnce sync.Once
}

// Snapshotter is the read-only view of the adaptive controller.
type Snapshotter interface{ Snapshot() adapt.Snapshot }

// SetController publishes the controller's snapshot on the mount root.
func (f *FS) SetController(c Snapshotter) { f.ctrl = c }

// New returns the file system. keyPrefix is the prefix the backend adds to
// every key (it counts against S3's 1024-byte key limit).
func New(cfg Config, be s3backend.Backend, area *stage.Area, keyPrefix string, log *slog.Logger) (*FS, error) {
	umask, err := cfg.UmaskBits()
	if err != nil {
		return nil, err
	}
	f := &FS{
		cfg: cfg, be: be, area: area, log: log, keyPrefix: keyPrefix,
		dirs:    newDirCache(be, cfg.DirCacheTTL),
		uid:     uint32(os.Getuid()),
		gid:     uint32(os.Getgid()),
		umask:   umask,
		started: time.Now(),
	}
	f.root = &dirNode{fsys: f}
	if cfg.UID >= 0 {
		f.uid = uint32(cfg.UID)
	}
	if cfg.GID >= 0 {
		f.gid = uint32(cfg.GID)
	}
	f.dirs.onStale = func(dir string, err error) {
		log.Warn("listing failed; using the last listing of the directory", "dir", "/"+dir, "err", err)
	}
	area.SetObserver(f)
	return f, nil
}

// Root returns the root node for gofs.Mount.
func (f *FS) Root() gofs.InodeEmbedder { return f.root }

// Mounted tells f that gofs.Mount returned: the tree below Root is set up
// and may be walked (uploads of recovered files can end before).
func (f *FS) Mounted() { f.mounted.Store(true) }

// fileAt is the inode the kernel knows for key, if any.
func (f *FS) fileAt(key string) *fileNode {
	if !f.mounted.Load() {
		return nil
	}
	n := f.root.EmbeddedInode()
	for _, seg := range strings.Split(key, "/") {
		if n = n.GetChild(seg); n == nil {
			return nil
		}
	}
	fn, _ := n.Operations().(*fileNode)
	return fn
}

// Options returns go-fuse options with our timeouts.
func (f *FS) Options() *gofs.Options {
	ttl := f.cfg.AttrCacheTTL
	neg := time.Duration(0) // a name created by someone else must show up
	return &gofs.Options{EntryTimeout: &ttl, AttrTimeout: &ttl, NegativeTimeout: &neg}
}

// Uploaded implements stage.Observer: the finished object joins the
// directory cache so lookups after the staged copy is gone still find it.
func (f *FS) Uploaded(key string, info s3backend.ObjectInfo) {
	f.dirs.putFile(key, info)
	if fn := f.fileAt(key); fn != nil {
		// The inode shows this version: a later lookup that finds another
		// one knows the object was replaced behind our back.
		fn.setVersion(info.ETag)
	}
}

// checkKey enforces S3's key length.
func (f *FS) checkKey(key string) syscall.Errno {
	if len(f.keyPrefix)+len(key)+1 > maxKeyLen { // +1: a directory marker's "/"
		return syscall.ENAMETOOLONG
	}
	return 0
}

// nodeKey returns the key of n's path from the root, or ok=false when n is
// no longer attached to the tree (unlinked).
func nodeKey(n *gofs.Inode) (key string, ok bool) {
	var segs []string
	for p := n; !p.IsRoot(); {
		name, parent := p.Parent()
		if parent == nil {
			return "", false
		}
		segs = append(segs, name)
		p = parent
	}
	for i, j := 0, len(segs)-1; i < j; i, j = i+1, j-1 {
		segs[i], segs[j] = segs[j], segs[i]
	}
	return strings.Join(segs, "/"), true
}

func dirPrefix(key string) string {
	if key == "" {
		return ""
	}
	return key + "/"
}

func splitKey(key string) (dir, name string) {
	if i := strings.LastIndexByte(key, '/'); i >= 0 {
		return key[:i+1], key[i+1:]
	}
	return "", key
}

// fileMode returns st_mode for a file from its metadata.
func (f *FS) fileMode(meta s3backend.ObjectMeta) uint32 {
	if meta.Mode&syscall.S_IFMT == syscall.S_IFREG && meta.Mode&0o7777 != 0 {
		return meta.Mode
	}
	return syscall.S_IFREG | (0o666 &^ f.umask)
}

func (f *FS) dirMode() uint32 { return syscall.S_IFDIR | (0o777 &^ f.umask) }

func (f *FS) owner(meta s3backend.ObjectMeta) (uint32, uint32) {
	if meta.HasOwner {
		return meta.UID, meta.GID
	}
	return f.uid, f.gid
}

func (f *FS) fillFile(out *fuse.Attr, size int64, meta s3backend.ObjectMeta, fallback time.Time) {
	out.Mode = f.fileMode(meta)
	out.Size = uint64(size)
	out.Blocks = (uint64(size) + 511) / 512
	out.Blksize = 1 << 20
	out.Nlink = 1
	out.Uid, out.Gid = f.owner(meta)
	mt := meta.Mtime
	if mt.IsZero() {
		mt = fallback
	}
	out.SetTimes(&mt, &mt, &mt)
}

func (f *FS) fillDir(out *fuse.Attr) {
	out.Mode = f.dirMode()
	out.Nlink = 2
	out.Size = 4096
	out.Blksize = 1 << 20
	out.Uid, out.Gid = f.uid, f.gid
	out.SetTimes(nil, &f.started, &f.started)
}

// callerMeta is the metadata of a file a caller creates now.
func callerMeta(ctx context.Context, mode uint32) s3backend.ObjectMeta {
	m := s3backend.ObjectMeta{Mtime: time.Now(), Mode: mode}
	if c, ok := fuse.FromContext(ctx); ok {
		m.UID, m.GID, m.HasOwner = c.Uid, c.Gid, true
	}
	return m
}

// detach keeps a FUSE request's values (the caller's uid) but not its
// cancellation: a signal to the calling process (Go's own preemption
// signals included) must not abort an S3 request half way and turn a stat
// into EINTR. Requests are bounded by the client's own timeouts.
func detach(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }

// errno maps backend and staging errors to the errno a program should see.
func errno(err error) syscall.Errno {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, s3backend.ErrNotFound), errors.Is(err, os.ErrNotExist):
		return syscall.ENOENT
	case errors.Is(err, s3backend.ErrAccessDenied):
		return syscall.EACCES
	case errors.Is(err, syscall.EFBIG):
		return syscall.EFBIG
	case errors.Is(err, syscall.ENOSPC):
		return syscall.ENOSPC
	case errors.Is(err, context.Canceled):
		return syscall.EINTR
	}
	return syscall.EIO
}
