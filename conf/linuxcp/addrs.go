package linuxcp

import (
	"fmt"

	"ferry/netaddr"

	"github.com/vishvananda/netlink"
	"go.uber.org/zap"
)

// syncAddrs gives each port the IPv4 addresses of its kernel interface.
func (m *Mirror) syncAddrs() {
	for port, st := range m.path.States() {
		link, err := m.ns.nl.LinkByIndex(st.Index)
		if err != nil {
			continue
		}
		kas, err := m.ns.nl.AddrList(link, netlink.FAMILY_V4)
		if err != nil {
			m.fail("addresses", fmt.Errorf("list addresses of %s: %w", st.Iface, err))
			continue
		}
		type pfx struct {
			a uint32
			l uint8
		}
		have := map[pfx]bool{}
		for _, a := range m.f.Addresses(port) {
			have[pfx{a.Addr, a.Len}] = true
		}
		want := map[pfx]bool{}
		for _, ka := range kas {
			a, ok := ipv4(ka.IP)
			if !ok {
				continue
			}
			ones, _ := ka.Mask.Size()
			want[pfx{a, uint8(ones)}] = true
		}
		for p := range want {
			if !have[p] {
				m.setAddr(port, p.a, p.l, true)
			}
		}
		for p := range have {
			if !want[p] {
				m.setAddr(port, p.a, p.l, false)
			}
		}
	}
}

func (m *Mirror) applyAddr(u netlink.AddrUpdate) {
	port, ok := m.portOfIndex(u.LinkIndex)
	if !ok {
		return
	}
	a, ok := ipv4(u.LinkAddress.IP)
	if !ok {
		return
	}
	ones, _ := u.LinkAddress.Mask.Size()
	have := false
	for _, x := range m.f.Addresses(port) {
		have = have || x.Addr == a && x.Len == uint8(ones)
	}
	if have != u.NewAddr {
		m.setAddr(port, a, uint8(ones), u.NewAddr)
	}
}

func (m *Mirror) setAddr(port int, a uint32, plen uint8, add bool) {
	if err := m.addrs.SetAddress(port, a, plen, add); err != nil {
		m.fail("addresses", fmt.Errorf("port %s address %s/%d: %w", m.f.PortName(port), netaddr.IPv4String(a), plen, err))
		return
	}
	verb := "address added from the kernel"
	if !add {
		verb = "address removed as in the kernel"
	}
	m.log.Info(verb, zap.String("port", m.f.PortName(port)), zap.String("address", fmt.Sprintf("%s/%d", netaddr.IPv4String(a), plen)))
}

// neighKey is a mirrored neighbour.
type neighKey struct {
	port int
	ip   uint32
}

// permanent is a kernel neighbour entry the mirror takes: IPv4, on a
// port's interface, NUD_PERMANENT, with a link-layer address.
func (m *Mirror) permanent(n *netlink.Neigh) (neighKey, [6]byte, bool) {
	var mac [6]byte
	port, ok := m.portOfIndex(n.LinkIndex)
	if !ok {
		return neighKey{}, mac, false
	}
	ip, ok := ipv4(n.IP)
	if !ok || n.State&netlink.NUD_PERMANENT == 0 || len(n.HardwareAddr) != 6 {
		return neighKey{port, ip}, mac, false
	}
	copy(mac[:], n.HardwareAddr)
	return neighKey{port, ip}, mac, true
}

func (m *Mirror) applyNeigh(add bool, n *netlink.Neigh) {
	k, mac, ok := m.permanent(n)
	old, had := m.neighs[k]
	switch {
	case add && ok && (!had || old != mac):
		if err := m.addrs.SetNeighbor(k.port, k.ip, mac, true); err != nil {
			m.fail("neighbours", fmt.Errorf("neighbour %s: %w", netaddr.IPv4String(k.ip), err))
			return
		}
		m.neighs[k] = mac
	case had && (!add || !ok):
		if err := m.addrs.SetNeighbor(k.port, k.ip, mac, false); err != nil {
			m.fail("neighbours", fmt.Errorf("neighbour %s: %w", netaddr.IPv4String(k.ip), err))
		}
		delete(m.neighs, k)
	}
}

// syncNeighs makes the mirrored permanent neighbours the kernel's.
func (m *Mirror) syncNeighs() {
	kns, err := m.ns.nl.NeighList(0, netlink.FAMILY_V4)
	if err != nil {
		m.fail("neighbours", fmt.Errorf("list neighbours: %w", err))
		return
	}
	seen := map[neighKey]bool{}
	for i := range kns {
		if k, _, ok := m.permanent(&kns[i]); ok {
			seen[k] = true
			m.applyNeigh(true, &kns[i])
		}
	}
	for k, mac := range m.neighs {
		if !seen[k] {
			if err := m.addrs.SetNeighbor(k.port, k.ip, mac, false); err != nil {
				m.fail("neighbours", err)
			}
			delete(m.neighs, k)
		}
	}
}
