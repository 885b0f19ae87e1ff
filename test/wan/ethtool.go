package wan

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Legacy ethtool ioctl commands (linux/ethtool.h) that switch one offload
// on or off; each takes a struct ethtool_value.
const (
	ethtoolGTSO = 0x1e
	ethtoolSTSO = 0x1f
	ethtoolGGSO = 0x23
	ethtoolSGSO = 0x24
	ethtoolGGRO = 0x2b
	ethtoolSGRO = 0x2c
)

type ethtoolValue struct {
	cmd  uint32
	data uint32
}

// ifreqData is struct ifreq with its union holding a pointer (ifr_data).
type ifreqData struct {
	name [unix.IFNAMSIZ]byte
	data unsafe.Pointer
	_    [24 - unsafe.Sizeof(uintptr(0))]byte
}

func ethtoolValueIoctl(fd int, ifname string, cmd, data uint32) (uint32, error) {
	v := &ethtoolValue{cmd: cmd, data: data}
	var ifr ifreqData
	copy(ifr.name[:unix.IFNAMSIZ-1], ifname)
	ifr.data = unsafe.Pointer(v)
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr))); errno != 0 {
		return 0, errno
	}
	return v.data, nil
}

// disableOffloads turns TSO, GSO and GRO off on ifname. fd is any socket
// in the interface's network namespace. Without this a single drop in a
// bottleneck queue could remove a 64 KB super-packet, and packets would
// not be counted (nor delayed) one by one.
func disableOffloads(fd int, ifname string) error {
	for _, c := range []struct {
		name     string
		set, get uint32
	}{
		{"tso", ethtoolSTSO, ethtoolGTSO},
		{"gso", ethtoolSGSO, ethtoolGGSO},
		{"gro", ethtoolSGRO, ethtoolGGRO},
	} {
		if _, err := ethtoolValueIoctl(fd, ifname, c.set, 0); err != nil {
			return fmt.Errorf("ethtool -K %s %s off: %w", ifname, c.name, err)
		}
		on, err := ethtoolValueIoctl(fd, ifname, c.get, 0)
		if err != nil {
			return fmt.Errorf("ethtool -k %s (%s): %w", ifname, c.name, err)
		}
		if on != 0 {
			return fmt.Errorf("ethtool -K %s %s off: still on", ifname, c.name)
		}
	}
	return nil
}

// offloadsOff reports whether TSO, GSO and GRO are all off on ifname.
func offloadsOff(fd int, ifname string) (bool, error) {
	for _, get := range []uint32{ethtoolGTSO, ethtoolGGSO, ethtoolGGRO} {
		on, err := ethtoolValueIoctl(fd, ifname, get, 0)
		if err != nil {
			return false, fmt.Errorf("ethtool -k %s: %w", ifname, err)
		}
		if on != 0 {
			return false, nil
		}
	}
	return true, nil
}
