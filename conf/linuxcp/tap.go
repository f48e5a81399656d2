// Package linuxcp gives each port a kernel interface, as VPP's linux-cp
// does: a TAP device in the control plane's network namespace with the
// port's MAC, MTU and addresses. What the data plane punts for the router
// is written to it, and what the kernel sends out of it is injected on the
// port, so routing daemons and every other socket on the router work
// unchanged.
package linuxcp

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"unsafe"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Namespace is a network namespace the kernel interfaces live in.
type Namespace struct {
	Name   string // empty: ferryd's own
	handle netns.NsHandle
	nl     *netlink.Handle
}

// OpenNamespace opens a named namespace (made with 'ip netns add'), or
// ferryd's own for "".
func OpenNamespace(name string) (*Namespace, error) {
	ns := &Namespace{Name: name, handle: -1}
	var err error
	if name == "" {
		ns.nl, err = netlink.NewHandle(unix.NETLINK_ROUTE)
	} else {
		if ns.handle, err = netns.GetFromName(name); err != nil {
			return nil, fmt.Errorf("network namespace %q: %w (make it with 'ip netns add %s')", name, err, name)
		}
		ns.nl, err = netlink.NewHandleAt(ns.handle, unix.NETLINK_ROUTE)
	}
	if err != nil {
		ns.Close()
		return nil, fmt.Errorf("netlink in namespace %q: %w", name, err)
	}
	return ns, nil
}

// Close releases the namespace's handles.
func (ns *Namespace) Close() {
	if ns.nl != nil {
		ns.nl.Close()
	}
	if ns.handle >= 0 {
		ns.handle.Close()
	}
}

// in runs fn on a thread inside the namespace: what fn opens (a TAP's
// queue, a /proc/sys file) belongs to it.
func (ns *Namespace) in(fn func() error) error {
	if ns.Name == "" {
		return fn()
	}
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	if err := netns.Set(ns.handle); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter namespace %q: %w", ns.Name, err)
	}
	ferr := fn()
	if err := netns.Set(orig); err != nil {
		// The thread stays in the other namespace: it must not run
		// anything else, so it stays locked and ends with its goroutine.
		return errors.Join(ferr, fmt.Errorf("leave namespace %q: %w", ns.Name, err))
	}
	runtime.UnlockOSThread()
	return ferr
}

// tunSetIff is TUNSETIFF's request: the interface name and its flags.
type tunSetIff struct {
	name  [unix.IFNAMSIZ]byte
	flags uint16
	_     [22]byte
}

// openTap makes TAP interface name in the namespace (or takes an existing
// TAP of that name) and returns its queue; the interface goes with the
// last close. IPv6 is off on it: the data plane forwards IPv4 only.
func (ns *Namespace) openTap(name string) (*os.File, error) {
	var f *os.File
	err := ns.in(func() error {
		fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		if err != nil {
			return fmt.Errorf("open /dev/net/tun: %w", err)
		}
		var req tunSetIff
		copy(req.name[:], name)
		req.flags = unix.IFF_TAP | unix.IFF_NO_PI
		if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TUNSETIFF, uintptr(unsafe.Pointer(&req))); e != 0 {
			unix.Close(fd)
			return fmt.Errorf("make TAP %s: %w", name, e)
		}
		// Best effort: a kernel without IPv6 has nothing to turn off.
		_ = os.WriteFile("/proc/sys/net/ipv6/conf/"+name+"/disable_ipv6", []byte("1"), 0)
		f = os.NewFile(uintptr(fd), "tap:"+name)
		return nil
	})
	return f, err
}

// Addr is an interface address.
type Addr struct {
	IP  net.IP
	Len int
}

// configure gives interface name the port's MAC, MTU and addresses and
// sets it up.
func (ns *Namespace) configure(name string, mac net.HardwareAddr, mtu int, addrs []Addr) error {
	nl := ns.nl
	link, err := nl.LinkByName(name)
	if err != nil {
		return fmt.Errorf("find %s: %w", name, err)
	}
	if err := nl.LinkSetHardwareAddr(link, mac); err != nil {
		return fmt.Errorf("set MAC of %s: %w", name, err)
	}
	if err := nl.LinkSetMTU(link, mtu); err != nil {
		return fmt.Errorf("set MTU of %s: %w", name, err)
	}
	for _, a := range addrs {
		na := &netlink.Addr{IPNet: &net.IPNet{IP: a.IP.To4(), Mask: net.CIDRMask(a.Len, 32)}}
		if err := nl.AddrReplace(link, na); err != nil {
			return fmt.Errorf("add %s/%d to %s: %w", a.IP, a.Len, name, err)
		}
	}
	if err := nl.LinkSetUp(link); err != nil {
		return fmt.Errorf("set %s up: %w", name, err)
	}
	return nil
}

// Index is interface name's index in the namespace; 0 when it has none.
func (ns *Namespace) Index(name string) int {
	l, err := ns.nl.LinkByName(name)
	if err != nil {
		return 0
	}
	return l.Attrs().Index
}
