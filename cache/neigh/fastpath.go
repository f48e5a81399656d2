package neigh

import "ferry/netaddr"

// Resolve says "core needs to send to ip on port" (the kernel's
// neigh_event_send): the owner creates an INCOMPLETE entry, moves STALE to
// DELAY, or restarts a FAILED one. Nothing is pushed when the entry needs no
// action. False means the core's ring was full and the request was dropped.
func (m *Manager) Resolve(core, port int, ip uint32) bool {
	if uint(core) >= uint(len(m.cst)) || uint(port) >= uint(len(m.ports)) {
		return false
	}
	c := &m.cst[core]
	inc(&c.lookups)
	e := m.ports[port].t.Lookup(ip)
	if e == nil {
		return m.push(core, &event{kind: evResolve, port: int32(port), ip: ip})
	}
	inc(&c.hits)
	m.stampUsed(e)
	w := e.word.Load()
	if State(w>>wordStateSft)&(connectedMask|Delay|Probe|Incomplete) != 0 && w&wordDead == 0 {
		return true
	}
	return m.kickEntry(core, e)
}

// Touch records that e was used to send. A STALE entry's use starts DELAY,
// as the kernel's output path does through neigh_event_send.
func (m *Manager) Touch(core int, e *Entry) {
	if e == nil || uint(core) >= uint(len(m.cst)) {
		return
	}
	m.stampUsed(e)
	w := e.word.Load()
	if State(w>>wordStateSft)&(Stale|Failed) != 0 && w&wordDead == 0 {
		m.kickEntry(core, e)
	}
}

// stampUsed writes the used time only when it moved, so a hot entry's
// cache line is not dirtied by every packet.
func (m *Manager) stampUsed(e *Entry) {
	now := m.nowNs.Load()
	if e.used.Load() < now {
		e.used.Store(now)
	}
}

// kickEntry pushes one resolve event per entry until the owner handles it.
func (m *Manager) kickEntry(core int, e *Entry) bool {
	if e.kick.Load() != 0 || !e.kick.CompareAndSwap(0, 1) {
		return true
	}
	if !m.push(core, &event{kind: evResolve, port: e.port, ip: e.ip}) {
		e.kick.Store(0)
		return false
	}
	return true
}

func (m *Manager) push(core int, ev *event) bool {
	if m.rings[core].push(ev) {
		return true
	}
	inc(&m.cst[core].drops)
	return false
}

// ARPPacket is a received ARP frame's fields, in host byte order.
type ARPPacket struct {
	Op        uint16
	SenderIP  uint32
	SenderMAC netaddr.MAC
	TargetIP  uint32
	TargetMAC netaddr.MAC
	HasTarget bool // TargetMAC is meaningful (gratuitous replies need tha == sha)
	Unicast   bool // Ethernet destination was our MAC; broadcast replies only make STALE
}

// ARPInput hands the owner a received ARP request or reply, with what
// the frame was (a broadcast reply only makes an entry STALE).
func (m *Manager) ARPInput(core, port int, p ARPPacket) bool {
	if uint(core) >= uint(len(m.cst)) || uint(port) >= uint(len(m.ports)) {
		return false
	}
	return m.push(core, &event{
		kind: evARP, unicast: p.Unicast, hasTHA: p.HasTarget, op: p.Op,
		port: int32(port), ip: p.SenderIP, tip: p.TargetIP, sha: p.SenderMAC, tha: p.TargetMAC,
	})
}

// UnresolvedDiscard counts a packet the caller dropped because its
// per-neighbour queue was full (unresolved_discards).
func (m *Manager) UnresolvedDiscard(core int) {
	if uint(core) < uint(len(m.cst)) {
		inc(&m.cst[core].unresDiscards)
	}
}
