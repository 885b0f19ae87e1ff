package fs

import (
	"context"
	"encoding/json"
	"syscall"
)

// The control interface of a mount: extended attributes on its root, so the
// `adaptfs sync` and `unmount` commands need nothing but the mount point.
const (
	// XattrQueue (get) is a JSON stage.Pending snapshot.
	XattrQueue = "user.adaptfs.queue"
	// XattrFlush (set) starts every queued upload now and retries failed
	// ones; with the value FlushQueued it only starts queued uploads. It
	// returns at once.
	XattrFlush = "user.adaptfs.flush"
	// XattrController (get) is the adaptive controller's JSON snapshot:
	// link estimates, parameters, bounds and the adaptation events.
	XattrController = "user.adaptfs.controller"
)

// FlushQueued is the XattrFlush value that starts queued uploads only. A
// waiting `adaptfs sync` sets it on every poll: a file whose close(2)
// returned before the flush can reach the daemon after it (FUSE sends
// RELEASE asynchronously), and would otherwise wait out write_back_delay.
const FlushQueued = "queued"

func (d *dirNode) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	if !d.IsRoot() {
		return 0, syscall.ENODATA
	}
	var v any
	switch {
	case attr == XattrQueue:
		v = d.fsys.area.Pending()
	case attr == XattrController && d.fsys.ctrl != nil:
		v = d.fsys.ctrl.Snapshot()
	default:
		return 0, syscall.ENODATA
	}
	b, err := json.Marshal(v)
	if err != nil {
		return 0, syscall.EIO
	}
	return copyXattr(dest, string(b))
}

func (d *dirNode) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	if !d.IsRoot() || attr != XattrFlush {
		return syscall.ENOTSUP
	}
	if string(data) == FlushQueued {
		d.fsys.area.StartQueued()
	} else {
		d.fsys.area.Retry()
	}
	return 0
}
