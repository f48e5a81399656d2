package neigh

import "ferry/netaddr"

// eventSend applies a send attempt to e's state (__neigh_event_send).
func (m *Manager) eventSend(p *port, e *Entry, t int64) {
	if e.used.Load() < t {
		e.used.Store(t)
	}
	switch {
	case e.state&(connectedMask|Delay|Probe|Incomplete) != 0:
		return
	case e.state == Stale:
		e.updated = t
		m.setState(e, Stale, Delay)
		m.arm(e, t+int64(p.p.DelayFirstProbeTime))
	default: // NONE or FAILED: start resolving
		if p.p.MCastSolicit+p.p.AppSolicit > 0 {
			e.probes = p.p.UCastSolicit // skip the unicast step: no MAC yet
			e.updated = t
			m.setState(e, e.state, Incomplete)
			m.arm(e, t+int64(p.p.RetransTime))
			m.probe(p, e)
		} else {
			e.updated = t
			m.setState(e, e.state, Failed)
		}
	}
}

// setState moves e from old to new and publishes; entering FAILED from a
// resolving state invalidates the entry (neigh_invalidate).
func (m *Manager) setState(e *Entry, old, new State) {
	e.state = new
	if new == Failed && old&(Incomplete|Probe) != 0 {
		m.st.ResFailed++
		e.failures.Add(1)
	}
	if new&inTimerMask == 0 {
		m.disarm(e)
	}
	m.gen++
	e.publish(false)
}

// maxProbes is neigh_max_probes.
func maxProbes(p *Params, e *Entry) int {
	n := p.UCastSolicit + p.AppSolicit
	if e.state&Probe != 0 {
		return n + p.MCastResolicit
	}
	return n + p.MCastSolicit
}

// probe sends the next solicitation (neigh_probe + arp_solicit): the first
// ucast_solicit probes are unicast to the known MAC, the next app_solicit
// belong to a userspace resolver, the rest are broadcast.
func (m *Manager) probe(p *port, e *Entry) {
	n := e.probes
	e.probes++
	var dst *netaddr.MAC
	if n -= p.p.UCastSolicit; n < 0 {
		if e.hasMAC {
			mac := e.mac
			dst = &mac
		}
	} else if n-p.p.AppSolicit < 0 {
		m.st.AppProbes++
		return
	}
	if m.tx == nil {
		return
	}
	if err := m.tx.Solicit(p.idx, e.ip, dst); err != nil {
		m.st.SolicitErrors++
	}
}

// timer is neigh_timer_handler for one due entry.
func (m *Manager) timer(p *port, e *Entry, t int64) {
	pp := &p.p
	st := e.state
	if st&inTimerMask == 0 {
		return
	}
	next := int64(-1)
	switch {
	case st&Reachable != 0:
		used := e.used.Load()
		if t < e.confirmed+p.reachable {
			next = e.confirmed + p.reachable
		} else if t < used+int64(pp.DelayFirstProbeTime) {
			e.updated = t
			m.setState(e, st, Delay)
			next = t + int64(pp.DelayFirstProbeTime)
		} else {
			e.updated = t
			m.setState(e, st, Stale)
		}
	case st&Delay != 0:
		if t < e.confirmed+int64(pp.DelayFirstProbeTime) {
			e.updated = t
			m.setState(e, st, Reachable)
			next = e.confirmed + p.reachable
		} else {
			e.updated = t
			e.probes = 0
			m.setState(e, st, Probe)
			next = t + int64(pp.RetransTime)
		}
	default: // INCOMPLETE, PROBE
		next = t + int64(pp.RetransTime)
	}
	if e.state&(Incomplete|Probe) != 0 && e.probes >= maxProbes(pp, e) {
		e.updated = t
		m.setState(e, e.state, Failed)
		return
	}
	if next >= 0 {
		if next <= t {
			next = t + 1
		}
		m.arm(e, next)
	}
	if e.state&(Incomplete|Probe) != 0 {
		m.probe(p, e)
	}
}

// Update flags, as the kernel's NEIGH_UPDATE_F_*.
const (
	fOverride = 1 << iota
	fWeakOverride
	fAdmin
)

// update is __neigh_update: apply a new state and optional MAC under the
// override rules. It returns ErrPerm for learning on PERMANENT/NOARP entries
// and ErrNoLLAddr when a valid state is asked for without any MAC.
func (m *Manager) update(p *port, e *Entry, lladdr *netaddr.MAC, new State, flags int, t int64) error {
	old := e.state
	if flags&fAdmin == 0 && old&(NoARP|Permanent) != 0 {
		return ErrPerm
	}
	if !new.Valid() {
		m.disarm(e)
		m.setState(e, old, new)
		if new == Incomplete {
			// An admin "nud incomplete" starts resolution rather than
			// leaving an entry no timer will ever move.
			e.probes = p.p.UCastSolicit
			m.arm(e, t)
		}
		return nil
	}
	var addr netaddr.MAC
	switch {
	case lladdr != nil:
		addr = *lladdr
	case old.Valid() && e.hasMAC:
		addr = e.mac
	default:
		return ErrNoLLAddr
	}
	changed := !old.Valid() || !e.hasMAC || addr != e.mac
	if new&connectedMask != 0 {
		e.confirmed = t
	}
	if old.Valid() {
		if changed && flags&fOverride == 0 {
			if flags&fWeakOverride != 0 && old&connectedMask != 0 {
				addr, changed, new = e.mac, false, Stale
			} else {
				return nil
			}
		} else if !changed && new == Stale && flags&fAdmin == 0 {
			// Same MAC: a request must not demote a confirmed entry.
			new = old
		}
	}
	if new != old || changed {
		e.updated = t
	}
	if new != old {
		m.disarm(e)
		if new&Probe != 0 {
			e.probes = 0
		}
		if new&inTimerMask != 0 {
			at := t
			if new&Reachable != 0 {
				at += p.reachable
			}
			m.arm(e, at)
		}
		e.state = new
		m.gen++
	}
	if changed {
		e.mac, e.hasMAC = addr, true
		if new&connectedMask == 0 {
			e.confirmed = t - 2*int64(p.p.BaseReachableTime)
		}
	}
	e.publish(false)
	return nil
}
