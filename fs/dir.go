package fs

import (
	"context"
	"errors"
	"sort"
	"strings"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/adaptfs/adaptfs/s3backend"
)

// dirNode is a directory: the root, a common prefix, a "dir/" marker, or a
// directory implied by staged files.
type dirNode struct {
	gofs.Inode
	fsys *FS
}

var (
	_ = (gofs.NodeLookuper)((*dirNode)(nil))
	_ = (gofs.NodeReaddirer)((*dirNode)(nil))
	_ = (gofs.NodeGetattrer)((*dirNode)(nil))
	_ = (gofs.NodeSetattrer)((*dirNode)(nil))
	_ = (gofs.NodeCreater)((*dirNode)(nil))
	_ = (gofs.NodeMkdirer)((*dirNode)(nil))
	_ = (gofs.NodeUnlinker)((*dirNode)(nil))
	_ = (gofs.NodeRmdirer)((*dirNode)(nil))
	_ = (gofs.NodeRenamer)((*dirNode)(nil))
	_ = (gofs.NodeStatfser)((*dirNode)(nil))
	_ = (gofs.NodeMknoder)((*dirNode)(nil))
	_ = (gofs.NodeLinker)((*dirNode)(nil))
	_ = (gofs.NodeSymlinker)((*dirNode)(nil))
	_ = (gofs.NodeGetxattrer)((*dirNode)(nil))
	_ = (gofs.NodeSetxattrer)((*dirNode)(nil))
)

// prefix returns the directory's key prefix ("" for the root).
func (d *dirNode) prefix() (string, syscall.Errno) {
	k, ok := nodeKey(d.EmbeddedInode())
	if !ok {
		return "", syscall.ENOENT
	}
	return dirPrefix(k), 0
}

func (d *dirNode) childKey(name string) (string, syscall.Errno) {
	p, e := d.prefix()
	if e != 0 {
		return "", e
	}
	key := p + name
	return key, d.fsys.checkKey(key)
}

func (d *dirNode) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	d.fsys.fillDir(&out.Attr)
	return 0
}

// Setattr on a directory is accepted (rsync sets directory times) but not
// stored: S3 has no directory metadata beyond the marker object.
func (d *dirNode) Setattr(ctx context.Context, fh gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if _, ok := in.GetSize(); ok {
		return syscall.EISDIR
	}
	d.fsys.fillDir(&out.Attr)
	return 0
}

func (d *dirNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	ctx = detach(ctx)
	if d.isStats(name) {
		d.fsys.fillStatsDir(&out.Attr)
		if ch := d.GetChild(name); ch != nil {
			return ch, 0
		}
		return d.NewInode(ctx, &statsDirNode{fsys: d.fsys}, gofs.StableAttr{Mode: syscall.S_IFDIR}), 0
	}
	key, e := d.childKey(name)
	if e != 0 {
		return nil, e
	}
	f := d.fsys
	if sf := f.area.Get(key); sf != nil {
		st := sf.Stat()
		f.fillFile(&out.Attr, st.Size, st.Meta, f.started)
		return d.child(ctx, name, false), 0
	}
	if f.area.HasPrefix(key + "/") {
		f.fillDir(&out.Attr)
		return d.child(ctx, name, true), 0
	}
	dir := key[:len(key)-len(name)]
	de, ok, err := f.dirs.lookup(ctx, dir, name)
	if err != nil {
		f.log.Warn("listing failed", "dir", dir, "err", err)
		return nil, errno(err)
	}
	if !ok {
		return nil, syscall.ENOENT
	}
	if de.isDir {
		f.fillDir(&out.Attr)
		return d.child(ctx, name, true), 0
	}
	info := de.info
	if !de.metaKnown { // mtime and mode live in user metadata: rsync needs them right
		if info, err = f.object(ctx, key); err != nil {
			return nil, errno(err)
		}
	}
	f.fillFile(&out.Attr, objSize(info), info.Meta, info.LastModified)
	return d.objectChild(ctx, name, info.ETag), 0
}

// objectChild is child for an object with etag: the existing inode unless
// it showed another version of the object.
func (d *dirNode) objectChild(ctx context.Context, name, etag string) *gofs.Inode {
	if ch := d.GetChild(name); ch != nil && !ch.IsDir() {
		if fn, ok := ch.Operations().(*fileNode); !ok || fn.sameVersion(etag) {
			return ch
		}
	}
	fn := &fileNode{fsys: d.fsys, etag: strings.Trim(etag, `"`)}
	return d.NewInode(ctx, fn, gofs.StableAttr{Mode: syscall.S_IFREG})
}

// child returns the existing inode for name if it has the right type, else
// a new one.
func (d *dirNode) child(ctx context.Context, name string, dir bool) *gofs.Inode {
	if ch := d.GetChild(name); ch != nil && ch.IsDir() == dir {
		return ch
	}
	if dir {
		return d.NewInode(ctx, &dirNode{fsys: d.fsys}, gofs.StableAttr{Mode: syscall.S_IFDIR})
	}
	return d.NewInode(ctx, &fileNode{fsys: d.fsys}, gofs.StableAttr{Mode: syscall.S_IFREG})
}

func (d *dirNode) Readdir(ctx context.Context) (gofs.DirStream, syscall.Errno) {
	ctx = detach(ctx)
	p, e := d.prefix()
	if e != 0 {
		return nil, e
	}
	listed, err := d.fsys.dirs.entries(ctx, p)
	if err != nil {
		return nil, errno(err)
	}
	types := make(map[string]uint32, len(listed))
	for name, de := range listed {
		types[name] = syscall.S_IFREG
		if de.isDir {
			types[name] = syscall.S_IFDIR
		}
	}
	files, dirs := d.fsys.area.Children(p)
	for _, sf := range files {
		_, name := splitKey(sf.Stat().Key)
		if types[name] != syscall.S_IFDIR {
			types[name] = syscall.S_IFREG
		}
	}
	for _, name := range dirs {
		types[name] = syscall.S_IFDIR
	}
	if d.fsys.stats != nil && d.IsRoot() {
		if _, ok := types[StatsDir]; ok {
			d.fsys.shadowed()
		}
		types[StatsDir] = syscall.S_IFDIR
	}
	names := make([]string, 0, len(types))
	for name := range types {
		if len(name) <= 255 && !strings.ContainsRune(name, 0) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	list := make([]fuse.DirEntry, len(names))
	for i, name := range names {
		list[i] = fuse.DirEntry{Name: name, Mode: types[name]}
	}
	return gofs.NewListDirStream(list), 0
}

func (d *dirNode) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	if d.isStats(name) {
		return nil, nil, 0, syscall.EPERM // adaptfs's own, read-only
	}
	ctx = detach(ctx)
	key, e := d.childKey(name)
	if e != 0 {
		return nil, nil, 0, e
	}
	f := d.fsys
	if f.cfg.ReadOnly {
		return nil, nil, 0, syscall.EROFS
	}
	meta := callerMeta(ctx, syscall.S_IFREG|(mode&0o7777))
	sf, err := f.area.Create(key, meta)
	if err != nil {
		f.log.Error("create failed", "key", key, "err", err)
		return nil, nil, 0, errno(err)
	}
	f.fillFile(&out.Attr, 0, meta, meta.Mtime)
	ch := d.NewInode(ctx, &fileNode{fsys: f}, gofs.StableAttr{Mode: syscall.S_IFREG})
	return ch, &stagedHandle{f: sf, write: true}, 0, 0
}

func (d *dirNode) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if d.isStats(name) {
		return nil, syscall.EPERM // adaptfs's own, read-only
	}
	ctx = detach(ctx)
	key, e := d.childKey(name)
	if e != 0 {
		return nil, e
	}
	f := d.fsys
	if f.cfg.ReadOnly {
		return nil, syscall.EROFS
	}
	meta := callerMeta(ctx, syscall.S_IFDIR|(mode&0o7777))
	if _, err := f.be.Put(ctx, key+"/", strings.NewReader(""), 0, meta); err != nil {
		f.log.Error("mkdir failed", "key", key+"/", "err", err)
		return nil, errno(err)
	}
	f.dirs.putDir(key)
	f.fillDir(&out.Attr)
	return d.NewInode(ctx, &dirNode{fsys: f}, gofs.StableAttr{Mode: syscall.S_IFDIR}), 0
}

func (d *dirNode) Unlink(ctx context.Context, name string) syscall.Errno {
	if d.isStats(name) {
		return syscall.EPERM // adaptfs's own, read-only
	}
	ctx = detach(ctx)
	key, e := d.childKey(name)
	if e != 0 {
		return e
	}
	f := d.fsys
	if f.cfg.ReadOnly {
		return syscall.EROFS
	}
	f.area.Remove(key)
	if err := f.be.Delete(ctx, key); err != nil {
		f.log.Error("delete failed", "key", key, "err", err)
		return errno(err)
	}
	f.dirs.remove(key)
	return 0
}

// errNonEmpty stops a listing at the first entry.
var errNonEmpty = errors.New("directory not empty")

// isEmptyDir reports whether prefix holds nothing but its own marker.
func (f *FS) isEmptyDir(ctx context.Context, prefix string) (bool, error) {
	if f.area.HasPrefix(prefix) {
		return false, nil
	}
	err := f.be.List(ctx, prefix, false, func(e s3backend.Entry) error { return errNonEmpty })
	if errors.Is(err, errNonEmpty) {
		return false, nil
	}
	return err == nil, err
}

func (d *dirNode) Rmdir(ctx context.Context, name string) syscall.Errno {
	if d.isStats(name) {
		return syscall.EPERM // adaptfs's own, read-only
	}
	ctx = detach(ctx)
	key, e := d.childKey(name)
	if e != 0 {
		return e
	}
	f := d.fsys
	if f.cfg.ReadOnly {
		return syscall.EROFS
	}
	empty, err := f.isEmptyDir(ctx, key+"/")
	if err != nil {
		return errno(err)
	}
	if !empty {
		return syscall.ENOTEMPTY
	}
	if err := f.be.Delete(ctx, key+"/"); err != nil {
		return errno(err)
	}
	f.dirs.removeDir(key)
	f.dirs.invalidate(key + "/")
	return 0
}

func (d *dirNode) Rename(ctx context.Context, name string, newParent gofs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	ctx = detach(ctx)
	f := d.fsys
	if f.cfg.ReadOnly {
		return syscall.EROFS
	}
	if flags&^uint32(unix.RENAME_NOREPLACE) != 0 {
		return syscall.EINVAL // RENAME_EXCHANGE, RENAME_WHITEOUT: not on S3
	}
	np, ok := newParent.(*dirNode)
	if !ok {
		if _, stats := newParent.(*statsDirNode); stats {
			return syscall.EROFS
		}
		return syscall.EXDEV
	}
	if d.isStats(name) || np.isStats(newName) {
		return syscall.EPERM
	}
	oldKey, e := d.childKey(name)
	if e != 0 {
		return e
	}
	newKey, e := np.childKey(newName)
	if e != 0 {
		return e
	}
	src := d.GetChild(name)
	if src == nil {
		return syscall.ENOENT
	}
	if dst := np.GetChild(newName); dst != nil {
		if flags&unix.RENAME_NOREPLACE != 0 {
			return syscall.EEXIST
		}
		if dst.IsDir() != src.IsDir() {
			if dst.IsDir() {
				return syscall.EISDIR
			}
			return syscall.ENOTDIR
		}
	}
	if src.IsDir() {
		return f.renameDir(ctx, oldKey, newKey)
	}
	return f.renameFile(ctx, oldKey, newKey)
}

// renameFile: a staged file is retargeted (no request); an uploaded object
// is copied server-side and deleted.
func (f *FS) renameFile(ctx context.Context, oldKey, newKey string) syscall.Errno {
	if f.area.Get(oldKey) != nil {
		// The staged file shadows an older newKey until uploaded. Recorded
		// before the retarget: an upload finishing right after it records
		// newKey (Uploaded) later, and that record must win, or newKey is
		// hidden once the staged copy is dropped.
		f.dirs.remove(newKey)
	}
	if staged, inS3 := f.area.Rename(oldKey, newKey); staged {
		if inS3 {
			// The object is the file's last closed content: it moves too.
			if err := f.be.Copy(ctx, oldKey, newKey, nil); err != nil {
				f.log.Error("rename: copy failed", "from", oldKey, "to", newKey, "err", err)
				return errno(err)
			}
		}
		// Else an older version of oldKey may exist in the bucket.
		if err := f.be.Delete(ctx, oldKey); err != nil {
			return errno(err)
		}
		f.dirs.remove(oldKey)
		return 0
	}
	f.area.Remove(newKey) // a staged target is replaced
	f.area.Claim(newKey)
	if err := f.be.Copy(ctx, oldKey, newKey, nil); err != nil {
		f.log.Error("rename: copy failed", "from", oldKey, "to", newKey, "err", err)
		return errno(err)
	}
	if err := f.be.Delete(ctx, oldKey); err != nil {
		return errno(err)
	}
	dir, name := splitKey(oldKey)
	if de, ok, _ := f.dirs.lookup(ctx, dir, name); ok && !de.isDir {
		info := de.info
		info.Key = newKey
		if de.metaKnown {
			f.dirs.putFile(newKey, info)
		} else {
			f.dirs.record(splitKeyDir(newKey), baseName(newKey), &dirEntry{info: info})
		}
	} else {
		f.dirs.invalidate(splitKeyDir(newKey))
	}
	f.dirs.remove(oldKey)
	return 0
}

// renameDir moves every staged file and every object under the directory.
// It is not atomic on S3; a failure part way leaves both names populated and
// is reported.
func (f *FS) renameDir(ctx context.Context, oldKey, newKey string) syscall.Errno {
	oldP, newP := oldKey+"/", newKey+"/"
	if strings.HasPrefix(newP, oldP) {
		return syscall.EINVAL // into itself
	}
	empty, err := f.isEmptyDir(ctx, newP)
	if err != nil {
		return errno(err)
	}
	if !empty {
		return syscall.ENOTEMPTY
	}
	f.area.RenamePrefix(oldP, newP)
	var keys []string
	err = f.be.List(ctx, oldP, true, func(e s3backend.Entry) error {
		keys = append(keys, e.Name)
		return nil
	})
	if err != nil {
		return errno(err)
	}
	hasMarker := false
	for _, rel := range keys {
		if rel == "" {
			hasMarker = true
			continue
		}
		f.area.Claim(newP + rel)
		if strings.HasSuffix(rel, "/") { // a marker: recreate it (some servers refuse to copy them)
			if _, err := f.be.Put(ctx, newP+rel, strings.NewReader(""), 0, s3backend.ObjectMeta{}); err != nil {
				return errno(err)
			}
			continue
		}
		if err := f.be.Copy(ctx, oldP+rel, newP+rel, nil); err != nil {
			f.log.Error("directory rename: copy failed", "from", oldP+rel, "to", newP+rel, "err", err)
			return errno(err)
		}
	}
	if !hasMarker {
		if _, err := f.be.Put(ctx, newP, strings.NewReader(""), 0, s3backend.ObjectMeta{}); err != nil {
			return errno(err)
		}
	}
	del := make([]string, 0, len(keys))
	for _, rel := range keys {
		del = append(del, oldP+rel)
	}
	if err := f.be.DeleteMany(ctx, del); err != nil {
		return errno(err)
	}
	f.be.Delete(ctx, oldP)
	f.dirs.invalidate(oldP)
	f.dirs.invalidate(newP)
	f.dirs.removeDir(oldKey)
	f.dirs.putDir(newKey)
	f.dirs.invalidate(newP)
	return 0
}

func splitKeyDir(key string) string { d, _ := splitKey(key); return d }
func baseName(key string) string    { _, n := splitKey(key); return n }

func (d *dirNode) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	// S3 has no capacity; report a large, stable figure like other S3 mounts.
	const blocks = 1 << 40
	out.Bsize = 4096
	out.Frsize = 4096
	out.Blocks, out.Bfree, out.Bavail = blocks, blocks, blocks
	out.Files, out.Ffree = 1<<40, 1<<40
	out.NameLen = 255
	return 0
}

func (d *dirNode) Mknod(ctx context.Context, name string, mode, dev uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	d.fsys.log.Info("special files are not supported on S3", "name", name)
	return nil, syscall.EPERM
}

func (d *dirNode) Link(ctx context.Context, target gofs.InodeEmbedder, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	d.fsys.log.Info("hard links are not supported on S3", "name", name)
	return nil, syscall.ENOTSUP
}

func (d *dirNode) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	d.fsys.log.Info("symbolic links are not supported", "name", name)
	return nil, syscall.ENOTSUP
}
