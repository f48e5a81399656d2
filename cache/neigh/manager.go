package neigh

import (
	"container/heap"
	"context"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"ferry/cache"
)

// Clock supplies the owner's time: the one the packet path reads too.
type Clock = cache.Clock

// SystemClock is the real clock.
type SystemClock = cache.SystemClock

// Transmitter sends ARP requests for the owner.
type Transmitter interface {
	// Solicit sends an ARP request for target on port: broadcast when dst is
	// nil, unicast to *dst otherwise.
	Solicit(port int, target uint32, dst *MAC) error
}

// TickInterval is how often Run steps the owner.
const TickInterval = 10 * time.Millisecond

const (
	// rerandomizeEvery: how often reachable_time is redrawn (the kernel's 300 s).
	rerandomizeEvery = int64(300 * time.Second)
	// forcedGCQuiet: above gc_thresh2, forced GC runs at most this often, and
	// entries updated more recently than this are not forced out.
	forcedGCQuiet = int64(5 * time.Second)
)

// port is the owner's per-port state.
type port struct {
	idx       int
	cfg       PortConfig
	p         Params
	addrs     []uint32
	t         *Table
	seed      uint32
	reachable int64 // current randomized reachable_time
	lastRand  int64
	nextGC    int64
	lastFlush int64 // last forced GC
	// A forced GC that freed nothing is not retried until time or some
	// entry's state moves on (a flood would otherwise rescan per packet).
	gcFailed  bool
	gcFailAt  int64
	gcFailGen uint64
	lastFull  int64 // last table-overflow log line
}

// Manager owns every port's table.
type Manager struct {
	ports []*port
	rings []*ring
	cst   []coreStats
	nowNs atomic.Int64 // owner time published for cores' used stamps

	// mu serializes the owner's Step with admin calls; cores never take it.
	mu      sync.Mutex
	clk     Clock
	tx      Transmitter
	log     func(msg string, kv ...any)
	epoch   time.Time
	last    int64
	timers  timerHeap
	rnd     func() float64
	gen     uint64 // bumped on every state change, for the forced-GC retry gate
	st      Stats  // owner-side counters
	scratch []*Entry
}

// NewManager builds the tables for ports. cores is the number of pipeline
// cores that will call the fast-path methods, each with its own index.
// Zero Params mean DefaultParams; invalid ones are logged and replaced by
// the defaults so a bad knob cannot leave a port without neighbours.
func NewManager(ports []PortConfig, cores int, clk Clock, tx Transmitter, log func(msg string, kv ...any)) *Manager {
	if clk == nil {
		clk = SystemClock{}
	}
	if log == nil {
		log = func(string, ...any) {}
	}
	if cores < 1 {
		cores = 1
	}
	r := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	m := &Manager{
		clk:   clk,
		tx:    tx,
		log:   log,
		epoch: clk.Now(),
		rnd:   r.Float64,
		rings: make([]*ring, cores),
		cst:   make([]coreStats, cores),
	}
	for i := range m.rings {
		m.rings[i] = newRing()
	}
	for i, pc := range ports {
		p := &port{idx: i, cfg: pc, t: &Table{}, seed: r.Uint32()}
		p.addrs = append([]uint32(nil), pc.Addrs...)
		p.p = pc.Params
		if p.p == (Params{}) {
			p.p = DefaultParams()
		} else if err := p.p.Validate(); err != nil {
			log("neigh: invalid params, using defaults", "port", pc.Name, "err", err.Error())
			p.p = DefaultParams()
		}
		p.cfg.Params = p.p
		p.t.cur.Store(newSlots(capacityFor(p.p.GCThresh3), p.seed))
		if pc.NoARP || pc.PointToPoint {
			e := &Entry{port: int32(i), single: true, hidx: -1, state: NoARP, hasMAC: true}
			// As arp_constructor: a noarp device's neighbour carries the device
			// address, a point-to-point one the broadcast address.
			e.mac = pc.MAC
			if pc.PointToPoint {
				e.mac = BroadcastMAC
			}
			e.publish(false)
			p.t.single.Store(e)
		}
		p.reachable = m.randReach(p.p.BaseReachableTime)
		p.nextGC = m.gcPeriod(p)
		m.ports = append(m.ports, p)
	}
	return m
}

// randReach draws reachable_time uniformly in [0.5, 1.5) × base.
func (m *Manager) randReach(base time.Duration) int64 {
	return int64(base)/2 + int64(float64(base)*m.rnd())
}

func (m *Manager) gcPeriod(p *port) int64 {
	if p.p.GCInterval > 0 {
		return int64(p.p.GCInterval)
	}
	return int64(p.p.BaseReachableTime) / 2
}

// Table returns port's table, or nil for an unknown port.
func (m *Manager) Table(port int) *Table {
	if uint(port) >= uint(len(m.ports)) {
		return nil
	}
	return m.ports[port].t
}

// Ports returns the number of ports.
func (m *Manager) Ports() int { return len(m.ports) }

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

// ---- fast path ----

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
	SenderMAC MAC
	TargetIP  uint32
	TargetMAC MAC
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

// ---- owner ----

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
		e.state, e.mac, e.hasMAC = NoARP, BroadcastMAC, true
	case ip>>28 == 0xe:
		e.state, e.hasMAC = NoARP, true
		e.mac = MAC{0x01, 0x00, 0x5e, byte(ip>>16) & 0x7f, byte(ip >> 8), byte(ip)}
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
	var dst *MAC
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

func (m *Manager) runTimers(t int64) {
	for len(m.timers) > 0 && m.timers[0].deadline <= t {
		e := heap.Pop(&m.timers).(*Entry)
		m.timer(m.ports[e.port], e, t)
	}
}

func (m *Manager) arm(e *Entry, at int64) {
	e.deadline = at
	if e.hidx >= 0 {
		heap.Fix(&m.timers, e.hidx)
		return
	}
	heap.Push(&m.timers, e)
}

func (m *Manager) disarm(e *Entry) {
	if e.hidx >= 0 {
		heap.Remove(&m.timers, e.hidx)
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
func (m *Manager) update(p *port, e *Entry, lladdr *MAC, new State, flags int, t int64) error {
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
	var addr MAC
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
		sip>>28 == 0xe || sip>>24 == 127 || ev.sha[0]&1 != 0 || ev.sha == (MAC{}) ||
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

// timerHeap orders entries by deadline (owner only).
type timerHeap []*Entry

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].deadline < h[j].deadline }
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].hidx, h[j].hidx = i, j
}
func (h *timerHeap) Push(x any) {
	e := x.(*Entry)
	e.hidx = len(*h)
	*h = append(*h, e)
}
func (h *timerHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	e.hidx = -1
	return e
}

// Stats sums the owner's and every core's counters.
func (m *Manager) Stats() Stats {
	m.mu.Lock()
	s := m.st
	for _, p := range m.ports {
		s.Entries += p.t.Len()
	}
	m.mu.Unlock()
	for i := range m.cst {
		c := &m.cst[i]
		s.Lookups += c.lookups.Load()
		s.Hits += c.hits.Load()
		s.EventDrops += c.drops.Load()
		s.UnresolvedDiscards += c.unresDiscards.Load()
	}
	return s
}

// Params returns port's current knobs.
func (m *Manager) Params(port int) (Params, error) {
	if uint(port) >= uint(len(m.ports)) {
		return Params{}, ErrNoPort
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ports[port].p, nil
}

// SetParams replaces port's knobs. A new gc_thresh3 resizes the table; a
// new base_reachable_time redraws reachable_time at once.
func (m *Manager) SetParams(port int, np Params) error {
	if uint(port) >= uint(len(m.ports)) {
		return ErrNoPort
	}
	if err := np.Validate(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.ports[port]
	old := p.p
	p.p = np
	p.cfg.Params = np
	if np.BaseReachableTime != old.BaseReachableTime {
		p.reachable = m.randReach(np.BaseReachableTime)
	}
	if np.GCInterval != old.GCInterval {
		p.nextGC = m.last + m.gcPeriod(p)
	}
	if np.GCThresh3 != old.GCThresh3 && p.t.single.Load() == nil {
		want := capacityFor(max(np.GCThresh3, p.t.count))
		p.t.rebuild(want, p.seed)
	}
	return nil
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
