package neigh

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"ferry/cache"
	"ferry/netaddr"
)

// Transmitter sends ARP requests for the owner.
type Transmitter interface {
	// Solicit sends an ARP request for target on port: broadcast when dst is
	// nil, unicast to *dst otherwise.
	Solicit(port int, target uint32, dst *netaddr.MAC) error
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
//
// Who writes what:
//
//   - The owner is whoever holds mu: Step (every TickInterval from Run) and
//     the admin calls (Apply, Flush, SetParams, SetAddrs). Only the owner
//     writes tables (slots, count, tombstones), the port structs, the timer heap, the
//     owner counters and an Entry's owner-only fields (state, mac, probes,
//     timestamps, timer index).
//   - A pipeline core, by its index, writes only the producer side of its
//     own ring, its own coreStats, and two atomics of the entries it uses:
//     used (a timestamp raised to nowNs; the owner writes it too) and kick
//     (set from 0 to 1 by CAS when the core pushes an event about the entry;
//     the owner clears it when it handles that event).
//
// What the pipelines read without locks, all through atomics: a Table's
// current slots array and its slots (replaced whole on rebuild, so a reader
// never sees a half-moved table), a port's single NOARP entry (set once by
// NewManager), an Entry's word (state, MAC and dead in one 64-bit store, so
// state and MAC always come from the same update), seq (bumped after the
// word) and failures, and nowNs (the owner's clock for used stamps). An
// Entry's ip and port, and the ports, rings and cst slices, never change
// after creation.
//
// Publication order: the owner changes its private fields first and then
// calls Entry.publish, which stores the word and bumps seq; a core that saw
// the old seq sees it move.
type Manager struct {
	ports []*port
	rings []*ring
	cst   []coreStats
	nowNs atomic.Int64 // owner time published for cores' used stamps

	// mu serializes the owner's Step with admin calls; cores never take it.
	mu      sync.Mutex
	clk     cache.Clock
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
func NewManager(ports []PortConfig, cores int, clk cache.Clock, tx Transmitter, log func(msg string, kv ...any)) *Manager {
	if clk == nil {
		clk = cache.SystemClock{}
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
				e.mac = netaddr.BroadcastMAC
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
