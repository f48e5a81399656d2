//go:build cgo

package dpdk

import (
	"fmt"
	"strings"
	"syscall"
	"unsafe"
)

// TapIface returns the kernel interface a net_tap device string names
// ("net_tap0,iface=ftap0" → "ftap0"), or "" for other devices.
func TapIface(dev string) string {
	if !strings.HasPrefix(dev, "net_tap") {
		return ""
	}
	for _, kv := range strings.Split(dev, ",")[1:] {
		if v, ok := strings.CutPrefix(kv, "iface="); ok {
			return v
		}
	}
	return ""
}

// PeerMAC derives the address the kernel side of a tap gets: the port's
// own, locally administered, with the last bit of the last byte flipped.
func PeerMAC(port [6]byte) [6]byte {
	port[0] |= 0x02
	port[5] ^= 0x01
	return port
}

// SetKernelMAC gives a kernel interface a new Ethernet address. net_tap
// gives its kernel interface the port's own MAC; hosts and bridges behind
// the tap then see the router's address as their own, so ferryd moves the
// kernel side to a distinct one.
func SetKernelMAC(ifname string, mac [6]byte) error {
	if len(ifname) >= syscall.IFNAMSIZ {
		return fmt.Errorf("interface name %q too long", ifname)
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("set MAC of %s: %w", ifname, err)
	}
	defer syscall.Close(fd)
	var req struct {
		name   [syscall.IFNAMSIZ]byte
		family uint16
		data   [14]byte
		_      [8]byte
	}
	copy(req.name[:], ifname)
	req.family = syscall.ARPHRD_ETHER
	copy(req.data[:], mac[:])
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), syscall.SIOCSIFHWADDR, uintptr(unsafe.Pointer(&req))); errno != 0 {
		return fmt.Errorf("set MAC of %s: %w", ifname, errno)
	}
	return nil
}
