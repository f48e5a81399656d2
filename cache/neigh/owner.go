package neigh

import (
	"context"
	"time"

	"ferry/netaddr"
)

// Run steps the owner every TickInterval until ctx is done.
func (m *Manager) Run(ctx context.Context) {
	tk := time.NewTicker(TickInterval)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
			m.Step(m.clk.Now())
		}
	}
}

// Step drains the rings and runs due timers and GC as of now.
func (m *Manager) Step(now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := m.advance(now)
	for _, r := range m.rings {
		// Bounded per step so timers are never starved by a flood.
		r.drain(RingSize, func(ev *event) { m.handle(ev, t) })
	}
	m.runTimers(t)
	for _, p := range m.ports {
		if t-p.lastRand >= rerandomizeEvery {
			p.lastRand = t
			p.reachable = m.randReach(p.p.BaseReachableTime)
		}
		if t >= p.nextGC {
			p.nextGC = t + m.gcPeriod(p)
			m.periodicGC(p, t)
		}
	}
}

// advance converts now to owner nanoseconds; time never runs backwards.
func (m *Manager) advance(now time.Time) int64 {
	t := int64(now.Sub(m.epoch))
	if t < m.last {
		t = m.last
	}
	m.last = t
	m.nowNs.Store(t)
	return t
}

func (m *Manager) handle(ev *event, t int64) {
	if int(ev.port) >= len(m.ports) || ev.port < 0 {
		return
	}
	p := m.ports[ev.port]
	switch ev.kind {
	case evResolve:
		m.resolve(p, ev.ip, t)
	case evARP:
		m.arpProcess(p, ev, t)
	}
}

func (p *port) isOurs(ip uint32) bool {
	for _, a := range p.addrs {
		if a == ip {
			return true
		}
	}
	return false
}

// resolve is the owner half of neigh_event_send.
func (m *Manager) resolve(p *port, ip uint32, t int64) {
	if p.t.single.Load() != nil {
		return
	}
	e := p.t.find(ip)
	if e == nil {
		if ip == 0 || p.isOurs(ip) {
			return
		}
		if e = m.create(p, ip, t); e == nil {
			return
		}
	}
	e.kick.Store(0)
	m.eventSend(p, e, t)
}

// create allocates an entry, running forced GC first when the table is
// crowded (neigh_alloc). It returns nil, counted, when the table is full.
func (m *Manager) create(p *port, ip uint32, t int64) *Entry {
	n := p.t.count
	th3 := p.p.GCThresh3
	if n >= th3 || (n >= p.p.GCThresh2 && t-p.lastFlush > forcedGCQuiet) {
		m.forcedGC(p, t)
		if p.t.count >= th3 {
			m.st.TableFulls++
			if t-p.lastFull >= int64(time.Second) || p.lastFull == 0 {
				p.lastFull = t
				m.log("neigh: neighbor table overflow", "port", p.cfg.Name)
			}
			return nil
		}
	}
	e := &Entry{ip: ip, port: int32(p.idx), hidx: -1, confirmed: t - 2*int64(p.p.BaseReachableTime), updated: t}
	e.used.Store(t)
	switch {
	case ip == 0xffffffff:
		// Limited broadcast and multicast need no resolution (arp_constructor).
		e.state, e.mac, e.hasMAC = NoARP, netaddr.BroadcastMAC, true
	case ip>>28 == 0xe:
		e.state, e.hasMAC = NoARP, true
		e.mac = netaddr.MAC{0x01, 0x00, 0x5e, byte(ip>>16) & 0x7f, byte(ip >> 8), byte(ip)}
	}
	e.publish(false)
	p.t.insert(e)
	m.st.Allocs++
	return e
}

// destroy takes e out of its table. Cores still holding it see Dead.
func (m *Manager) destroy(p *port, e *Entry) {
	m.disarm(e)
	if p.t.remove(e) {
		m.st.Destroys++
	}
	e.publish(true)
	m.gen++
}

// arpProcess applies the learning rules of the kernel's arp_process.
func (m *Manager) arpProcess(p *port, ev *event, t int64) {
	if p.t.single.Load() != nil {
		return // no ARP on this port
	}
	sip, tip := ev.ip, ev.tip
	if ev.op != 1 && ev.op != 2 {
		return
	}
	if tip>>28 == 0xe || tip>>24 == 127 || sip == 0 || sip == 0xffffffff ||
		sip>>28 == 0xe || sip>>24 == 127 || ev.sha[0]&1 != 0 || ev.sha == (netaddr.MAC{}) ||
		p.isOurs(sip) {
		// Nothing sane to learn (DAD probes, loops, bogus senders). A
		// sender with our own MAC is accepted, as the kernel does: a
		// net_tap port and its kernel interface share one MAC.
		return
	}
	if ev.op == 1 && (p.isOurs(tip) || (p.p.ProxyARP && !p.isOurs(tip))) {
		// A request we answer: neigh_event_ns creates or refreshes the
		// sender's entry as STALE, overriding the MAC.
		if ev.unicast {
			m.st.RcvProbesUcast++
		} else {
			m.st.RcvProbesMcast++
		}
		e := p.t.find(sip)
		if e == nil {
			if e = m.create(p, sip, t); e == nil {
				return
			}
		}
		sha := ev.sha
		_ = m.update(p, e, &sha, Stale, fOverride, t)
		return
	}
	e := p.t.find(sip)
	garp := sip == tip && (ev.op == 1 || !ev.hasTHA || ev.tha == ev.sha)
	if e == nil {
		// Unsolicited ARP creates nothing unless arp_accept.
		if !p.p.ArpAccept || !(garp || ev.op == 2) {
			return
		}
		if e = m.create(p, sip, t); e == nil {
			return
		}
	}
	// Several back-to-back replies (proxies): the first wins for locktime.
	override := t-e.updated > int64(p.p.Locktime) || garp
	state := Reachable
	if ev.op != 2 || !ev.unicast {
		state = Stale // requests and broadcast replies prove nothing
	}
	flags := 0
	if override {
		flags = fOverride
	}
	sha := ev.sha
	_ = m.update(p, e, &sha, state, flags, t)
}
