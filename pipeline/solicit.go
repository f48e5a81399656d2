package pipeline

import (
	"errors"
	"fmt"

	"ferry/netaddr"
)

// NeighTx is the neighbour manager's Transmitter. The manager is made
// before the Dataplane, which takes it, yet its solicitations leave through
// the Dataplane's pipelines: NewDataplane binds NeighTx to itself, so both
// are built in dependency order and nothing is assigned afterwards. The
// owner solicits only from Step (never from NewManager or admin calls), so
// nothing is sent unbound once Run starts after NewDataplane.
type NeighTx struct{ sh *Dataplane }

var errUnbound = errors.New("solicit: no pipelines to send on yet")

// Solicit is Dataplane.Solicit on the Dataplane tx is bound to.
func (tx *NeighTx) Solicit(port int, target uint32, dst *netaddr.MAC) error {
	if tx.sh == nil {
		return errUnbound
	}
	return tx.sh.Solicit(port, target, dst)
}

// Solicit builds an ARP request for target on port and hands it to a core
// (neigh.Transmitter). The sender address is the port's address on the
// target's subnet, else its first, as inet_select_addr picks for scope link.
func (s *Dataplane) Solicit(port int, target uint32, dst *netaddr.MAC) error {
	ports := s.Ports()
	if port < 0 || port >= len(ports) {
		return fmt.Errorf("solicit %s: no port %d", netaddr.IPv4String(target), port)
	}
	sip, ok := s.sourceFor(port, target)
	if !ok {
		return fmt.Errorf("solicit %s: port %s has no IPv4 address", netaddr.IPv4String(target), ports[port].Name)
	}
	eth := netaddr.BroadcastMAC
	if dst != nil {
		eth = *dst
	}
	var b [EthHdrLen + ArpLen]byte
	n := BuildARP(b[:], 1, eth, ports[port].MAC, sip, target, netaddr.MAC{})
	return s.post(port, b[:n])
}

// Announce sends a gratuitous ARP request for addr on port, so neighbours
// learn (or relearn) the router's MAC at start and on address changes.
func (s *Dataplane) Announce(port int, addr uint32) error {
	ports := s.Ports()
	if port < 0 || port >= len(ports) {
		return fmt.Errorf("announce %s: no port %d", netaddr.IPv4String(addr), port)
	}
	var b [EthHdrLen + ArpLen]byte
	n := BuildARP(b[:], 1, netaddr.BroadcastMAC, ports[port].MAC, addr, addr, netaddr.MAC{})
	return s.post(port, b[:n])
}

func (s *Dataplane) sourceFor(port int, target uint32) (uint32, bool) {
	addrs := s.FIB.Addresses(port)
	if len(addrs) == 0 {
		return 0, false
	}
	for _, a := range addrs {
		if a.Contains(target) {
			return a.Addr, true
		}
	}
	return addrs[0].Addr, true
}

// post gives the frame to the first core's mailbox: control frames are rare
// and one core keeps them in order.
func (s *Dataplane) post(port int, b []byte) error {
	if len(s.boxes) == 0 {
		return fmt.Errorf("no pipeline core to send on")
	}
	return s.boxes[0].Post(port, b)
}
