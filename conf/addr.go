package conf

import (
	"fmt"

	"ferry/cache/neigh"
	"ferry/netaddr"
	"ferry/pipeline"
)

// SetAddress adds an address to a port or removes it: the FIB's local,
// broadcast and connected routes, the packet path's view of the port and
// the neighbour subsystem's follow (the kernel's
// inetaddr_event/fib_add_ifaddr).
func (r *Router) SetAddress(port int, addr uint32, plen uint8, add bool) error {
	var err error
	if add {
		err = r.FIB.AddAddress(port, addr, plen)
	} else {
		err = r.FIB.DelAddress(port, addr, plen)
	}
	if err != nil {
		return err
	}
	ports := append([]pipeline.PortInfo(nil), r.Dataplane.Ports()...)
	if port >= len(ports) {
		return fmt.Errorf("no port %d", port)
	}
	pi := &ports[port]
	pi.Addrs = nil
	var own []uint32
	for _, a := range r.FIB.Addresses(port) {
		pi.Addrs = append(pi.Addrs, netaddr.Prefix{Addr: a.Addr, Len: a.Len})
		own = append(own, a.Addr)
	}
	r.Dataplane.SetPorts(ports)
	return r.Neigh.SetAddrs(port, own)
}

// SetNeighbor adds a permanent neighbour to a port (as 'ip neigh replace
// ... nud permanent') or deletes one.
func (r *Router) SetNeighbor(port int, ip uint32, mac [6]byte, add bool) error {
	req := neigh.Request{Cmd: neigh.CmdDel, Port: port, IP: ip}
	if add {
		req = neigh.Request{Cmd: neigh.CmdReplace, Port: port, IP: ip, MAC: netaddr.MAC(mac), HasMAC: true, State: neigh.Permanent}
	}
	return r.Neigh.Apply(req)
}
