package neigh

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"ferry/netaddr"
)

// ARPReceived is the tests' shorthand for ARPInput: a request (op 1) or a
// reply (op 2), replies taken as unicast to the router.
func (m *Manager) ARPReceived(core, port int, op uint16, senderIP uint32, senderMAC netaddr.MAC, targetIP uint32) bool {
	return m.ARPInput(core, port, ARPPacket{
		Op: op, SenderIP: senderIP, SenderMAC: senderMAC, TargetIP: targetIP,
		Unicast: op == 2,
	})
}

// String renders r back in ip neigh syntax (portName names r.Port).
func (r Request) String(portName func(int) string) string {
	var b strings.Builder
	b.WriteString(r.Cmd.String())
	name := func() string {
		if portName != nil {
			return portName(r.Port)
		}
		return strconv.Itoa(r.Port)
	}
	switch r.Cmd {
	case CmdAdd, CmdChange, CmdReplace, CmdDel:
		b.WriteString(" " + netaddr.IPv4String(r.IP))
		if r.HasMAC {
			b.WriteString(" lladdr " + r.MAC.String())
		}
		if r.Cmd != CmdDel {
			s := strings.ToLower(r.State.String())
			b.WriteString(" nud " + s)
		}
		b.WriteString(" dev " + name())
	default:
		if r.PrefixLen > 0 {
			fmt.Fprintf(&b, " to %s/%d", netaddr.IPv4String(r.Prefix), r.PrefixLen)
		} else if r.Cmd == CmdFlush {
			b.WriteString(" all") // flush needs an argument
		}
		if r.Port >= 0 {
			b.WriteString(" dev " + name())
		}
		if r.StateMask != 0 {
			for _, n := range stateNames {
				if r.StateMask&uint32(n.s) != 0 {
					b.WriteString(" nud " + strings.ToLower(n.name))
				}
			}
			if r.StateMask&StateNoneBit != 0 {
				b.WriteString(" nud none")
			}
		}
	}
	return b.String()
}

// Get returns one entry's snapshot.
func (m *Manager) Get(port int, ip uint32) (EntryInfo, bool) {
	if uint(port) >= uint(len(m.ports)) {
		return EntryInfo{}, false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.ports[port].t.Lookup(ip)
	if e == nil {
		return EntryInfo{}, false
	}
	return m.info(e, m.last), true
}

// FormatStats prints e as ip -s neigh show does, adding
// "used U/C/Up probes N" (seconds since use, confirmation and update).
func FormatStats(e EntryInfo, portName string) string {
	return format(e, portName, true)
}

// Lookup is Table(port).Lookup(ip) counted in core's lookups/hits.
func (m *Manager) Lookup(core, port int, ip uint32) *Entry {
	if uint(core) >= uint(len(m.cst)) || uint(port) >= uint(len(m.ports)) {
		return nil
	}
	c := &m.cst[core]
	inc(&c.lookups)
	e := m.ports[port].t.Lookup(ip)
	if e != nil {
		inc(&c.hits)
	}
	return e
}

// PortName returns the configured name of port ("" if unknown).
func (m *Manager) PortName(port int) string {
	if uint(port) >= uint(len(m.ports)) {
		return ""
	}
	return m.ports[port].cfg.Name
}

// PortIndex finds a port by name.
func (m *Manager) PortIndex(name string) (int, bool) {
	for i, p := range m.ports {
		if p.cfg.Name == name {
			return i, true
		}
	}
	return -1, false
}

// ReachableTime returns port's current randomized reachable_time.
func (m *Manager) ReachableTime(port int) time.Duration {
	if uint(port) >= uint(len(m.ports)) {
		return 0
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return time.Duration(m.ports[port].reachable)
}

// Seq changes every time the state or MAC changes. It is bumped after the
// word is stored, so a reader that saw the old Seq will see it move.
func (e *Entry) Seq() uint32 { return e.seq.Load() }
