package wan

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// netnsDir is where iproute2 keeps named network namespaces; `ip netns
// exec NAME` finds ours there.
const netnsDir = "/run/netns"

// onLockedThread runs fn on a fresh OS thread, restoring the thread's
// network namespace afterwards. fn may switch the thread's namespace (and
// open sockets there: they stay in that namespace and may be used from any
// goroutine). A thread that cannot be switched back is thrown away, so no
// other goroutine ever runs in a foreign namespace by accident.
func onLockedThread(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("get current netns: %w", err)
			return
		}
		defer orig.Close()
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			// Leave the thread locked: the runtime ends it with the goroutine.
			errc <- errors.Join(ferr, fmt.Errorf("leave netns: %w", err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// inNS runs fn on a fresh OS thread that has joined the network namespace
// ns (see onLockedThread).
func inNS(ns netns.NsHandle, fn func() error) error {
	return onLockedThread(func() error {
		if err := netns.Set(ns); err != nil {
			return fmt.Errorf("enter netns: %w", err)
		}
		return fn()
	})
}

// makeNetnsDirShared prepares /run/netns the way `ip netns add` does (a
// shared mount point), so that namespaces we bind-mount there behave like
// the ones iproute2 creates.
func makeNetnsDirShared() error {
	if err := os.MkdirAll(netnsDir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", netnsDir, err)
	}
	err := unix.Mount("", netnsDir, "none", unix.MS_SHARED|unix.MS_REC, "")
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("make %s shared: %w", netnsDir, err)
	}
	// Not a mount point yet: bind it onto itself first.
	if err := unix.Mount(netnsDir, netnsDir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind-mount %s: %w", netnsDir, err)
	}
	if err := unix.Mount("", netnsDir, "none", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make %s shared: %w", netnsDir, err)
	}
	return nil
}

// newNamedNS creates the network namespace /run/netns/name and returns a
// handle (an open fd) to it, without moving the calling thread.
func newNamedNS(name string) (netns.NsHandle, error) {
	if err := makeNetnsDirShared(); err != nil {
		return netns.None(), err
	}
	h := netns.None()
	err := onLockedThread(func() error {
		// NewNamed moves this throw-away thread into the new namespace;
		// onLockedThread moves it back.
		var err error
		h, err = netns.NewNamed(name)
		if err != nil {
			return fmt.Errorf("create netns %s: %w", name, err)
		}
		return nil
	})
	if err != nil {
		if h.IsOpen() {
			h.Close()
		}
		return netns.None(), err
	}
	return h, nil
}

// nsID identifies a namespace (device and inode of its nsfs file).
type nsID struct{ dev, ino uint64 }

func nsIDOfHandle(h netns.NsHandle) (nsID, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(h), &st); err != nil {
		return nsID{}, fmt.Errorf("stat netns fd: %w", err)
	}
	return nsID{uint64(st.Dev), st.Ino}, nil
}

func nsIDOfName(name string) (nsID, error) {
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(netnsDir, name), &st); err != nil {
		return nsID{}, err
	}
	return nsID{uint64(st.Dev), st.Ino}, nil
}

// deleteNamedNS removes /run/netns/name (unmount and unlink), as
// `ip netns delete` does. The namespace itself goes away once nothing
// (process, fd) refers to it any more. A missing name is not an error.
func deleteNamedNS(name string) error {
	p := filepath.Join(netnsDir, name)
	if _, err := os.Lstat(p); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount %s: %w", p, err)
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", p, err)
	}
	return nil
}

// openNamedNS returns a handle to /run/netns/name.
func openNamedNS(name string) (netns.NsHandle, error) {
	h, err := netns.GetFromPath(filepath.Join(netnsDir, name))
	if err != nil {
		return netns.None(), fmt.Errorf("open netns %s: %w", name, err)
	}
	return h, nil
}
