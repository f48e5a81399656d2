package neigh

import "sort"

// gcCandidate: not PERMANENT, not held by a timer, not a port's single entry.
func gcCandidate(e *Entry) bool {
	return !e.single && e.state&(Permanent|inTimerMask) == 0
}

// forcedGC is neigh_forced_gc: evict down to gc_thresh2, FAILED (and
// never-resolved or NOARP) entries first, then STALE ones not updated in the
// last 5 s, oldest first.
func (m *Manager) forcedGC(p *port, t int64) int {
	if p.gcFailed && p.gcFailAt == t && p.gcFailGen == m.gen {
		return 0
	}
	m.st.ForcedGCRuns++
	p.lastFlush = t
	target := p.t.count - p.p.GCThresh2
	if target < 1 {
		target = 1
	}
	c := m.scratch[:0]
	p.t.each(func(e *Entry) {
		if gcCandidate(e) && (e.state&(Failed|NoARP) != 0 || e.state == None || t-e.updated > forcedGCQuiet) {
			c = append(c, e)
		}
	})
	sort.Slice(c, func(i, j int) bool {
		ri, rj := gcRank(c[i]), gcRank(c[j])
		if ri != rj {
			return ri < rj
		}
		return c[i].updated < c[j].updated
	})
	n := 0
	for _, e := range c {
		if n >= target {
			break
		}
		m.destroy(p, e)
		n++
	}
	clear(c)
	m.scratch = c[:0]
	p.gcFailed = n == 0
	p.gcFailAt, p.gcFailGen = t, m.gen
	return n
}

func gcRank(e *Entry) int {
	if e.state&(Failed|NoARP) != 0 || e.state == None {
		return 0
	}
	return 1
}

// periodicGC is the kernel's neigh_periodic_work: below gc_thresh1 nothing
// goes; otherwise FAILED entries and ones unused for gc_stale_time do.
func (m *Manager) periodicGC(p *port, t int64) {
	m.st.PeriodicGCRuns++
	if p.t.single.Load() != nil || p.t.count < p.p.GCThresh1 {
		return
	}
	c := m.scratch[:0]
	p.t.each(func(e *Entry) {
		if !gcCandidate(e) {
			return
		}
		used := e.used.Load()
		if used < e.confirmed && e.confirmed <= t {
			used = e.confirmed
			e.used.Store(used)
		}
		if e.state == Failed || t-used >= int64(p.p.GCStaleTime) || t < used {
			c = append(c, e)
		}
	})
	for _, e := range c {
		m.destroy(p, e)
	}
	clear(c)
	m.scratch = c[:0]
}
