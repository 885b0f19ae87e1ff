package fs

import (
	"context"
	"slices"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// StatsDir is the read-only directory of the mount root that shows what
// adaptfs measures and decides. It is never an object in the bucket: a real
// object of that name is shadowed (and logged once).
const StatsDir = ".adaptstats"

// StatsSource renders the files of StatsDir. Render is called once per
// open, so a reader sees one consistent document whatever its buffer size.
type StatsSource interface {
	Files() []string
	Render(name string) ([]byte, error)
}

// SetStats publishes src as the StatsDir directory; call before mounting.
func (f *FS) SetStats(src StatsSource) { f.stats = src }

// isStats reports whether name in d is the stats directory.
func (d *dirNode) isStats(name string) bool {
	return d.fsys.stats != nil && d.IsRoot() && name == StatsDir
}

// shadowed logs, once, that a bucket entry named StatsDir is hidden.
func (f *FS) shadowed() {
	f.shadowOnce.Do(func() {
		f.log.Warn("the bucket has an entry named " + StatsDir + " at the mount root; it is hidden by adaptfs's stats directory")
	})
}

type statsDirNode struct {
	gofs.Inode
	fsys *FS
}

var (
	_ gofs.NodeLookuper  = (*statsDirNode)(nil)
	_ gofs.NodeReaddirer = (*statsDirNode)(nil)
	_ gofs.NodeGetattrer = (*statsDirNode)(nil)
	_ gofs.NodeSetattrer = (*statsDirNode)(nil)
	_ gofs.NodeCreater   = (*statsDirNode)(nil)
	_ gofs.NodeMkdirer   = (*statsDirNode)(nil)
	_ gofs.NodeUnlinker  = (*statsDirNode)(nil)
	_ gofs.NodeRmdirer   = (*statsDirNode)(nil)
	_ gofs.NodeRenamer   = (*statsDirNode)(nil)
	_ gofs.NodeMknoder   = (*statsDirNode)(nil)
	_ gofs.NodeSymlinker = (*statsDirNode)(nil)
	_ gofs.NodeLinker    = (*statsDirNode)(nil)
)

func (f *FS) fillStatsDir(out *fuse.Attr) {
	f.fillDir(out)
	out.Mode = syscall.S_IFDIR | (0o555 &^ f.umask)
}

func (d *statsDirNode) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	d.fsys.fillStatsDir(&out.Attr)
	return 0
}

func (d *statsDirNode) Setattr(ctx context.Context, fh gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return syscall.EROFS
}

func (d *statsDirNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if !slices.Contains(d.fsys.stats.Files(), name) {
		return nil, syscall.ENOENT
	}
	d.fsys.fillStatsFile(&out.Attr)
	if ch := d.GetChild(name); ch != nil {
		return ch, 0
	}
	return d.NewInode(ctx, &statsFileNode{fsys: d.fsys, name: name}, gofs.StableAttr{Mode: syscall.S_IFREG}), 0
}

func (d *statsDirNode) Readdir(ctx context.Context) (gofs.DirStream, syscall.Errno) {
	names := d.fsys.stats.Files()
	list := make([]fuse.DirEntry, len(names))
	for i, n := range names {
		list[i] = fuse.DirEntry{Name: n, Mode: syscall.S_IFREG}
	}
	return gofs.NewListDirStream(list), 0
}

func (d *statsDirNode) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	return nil, nil, 0, syscall.EROFS
}

func (d *statsDirNode) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}

func (d *statsDirNode) Unlink(ctx context.Context, name string) syscall.Errno { return syscall.EROFS }
func (d *statsDirNode) Rmdir(ctx context.Context, name string) syscall.Errno  { return syscall.EROFS }

func (d *statsDirNode) Rename(ctx context.Context, name string, newParent gofs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	return syscall.EROFS
}

func (d *statsDirNode) Mknod(ctx context.Context, name string, mode, dev uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}

func (d *statsDirNode) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}

func (d *statsDirNode) Link(ctx context.Context, target gofs.InodeEmbedder, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}

// statsFileNode is one generated file. Its size is 0 in stat; it is read
// with direct I/O, so readers read until EOF.
type statsFileNode struct {
	gofs.Inode
	fsys *FS
	name string
}

var (
	_ gofs.NodeOpener    = (*statsFileNode)(nil)
	_ gofs.NodeGetattrer = (*statsFileNode)(nil)
	_ gofs.NodeSetattrer = (*statsFileNode)(nil)
)

func (f *FS) fillStatsFile(out *fuse.Attr) {
	now := time.Now()
	out.Mode = syscall.S_IFREG | (0o444 &^ f.umask)
	out.Nlink = 1
	out.Blksize = 1 << 20
	out.Uid, out.Gid = f.uid, f.gid
	out.SetTimes(&now, &now, &now)
}

func (n *statsFileNode) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	n.fsys.fillStatsFile(&out.Attr)
	return 0
}

func (n *statsFileNode) Setattr(ctx context.Context, fh gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return syscall.EROFS
}

func (n *statsFileNode) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if flags&syscall.O_ACCMODE != syscall.O_RDONLY || flags&syscall.O_TRUNC != 0 {
		return nil, 0, syscall.EROFS
	}
	b, err := n.fsys.stats.Render(n.name)
	if err != nil {
		n.fsys.log.Error("rendering a stats file failed", "file", n.name, "err", err)
		return nil, 0, syscall.EIO
	}
	return &statsHandle{b: b}, fuse.FOPEN_DIRECT_IO, 0
}

// statsHandle holds the document rendered at open.
type statsHandle struct{ b []byte }

var _ gofs.FileReader = (*statsHandle)(nil)

func (h *statsHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if off >= int64(len(h.b)) {
		return fuse.ReadResultData(nil), 0
	}
	return fuse.ReadResultData(h.b[off:min(int64(len(h.b)), off+int64(len(dest)))]), 0
}
