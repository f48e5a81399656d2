package neigh

import (
	"sync/atomic"
	"time"

	"ferry/netaddr"
)

// Layout of Entry.word: state and MAC travel in one 64-bit word so a reader
// never pairs one update's state with another's MAC.
const (
	wordMACMask  = 1<<48 - 1
	wordStateSft = 48
	wordHasMAC   = 1 << 56
	wordDead     = 1 << 57
)

// Entry is one neighbour: (port, next-hop IPv4). Cores read it through
// atomics only; every other field belongs to the owner.
type Entry struct {
	word     atomic.Uint64
	seq      atomic.Uint32
	failures atomic.Uint32 // transitions to FAILED, so a core can tell one
	kick     atomic.Uint32 // an event about this entry is in a ring: dedupes pushes
	used     atomic.Int64  // owner-clock ns of the last use, written by cores

	ip   uint32
	port int32

	// Owner-only (guarded by Manager.mu).
	state     State
	mac       netaddr.MAC
	hasMAC    bool
	single    bool // the one NOARP neighbour of a noarp/p2p port
	probes    int
	confirmed int64
	updated   int64
	deadline  int64
	hidx      int // index in the timer heap; -1 when no timer runs
}

// State returns the current NUD state.
func (e *Entry) State() State { return State(e.word.Load() >> wordStateSft) }

// MAC returns the link-layer address; ok only if one is known and the state
// allows sending with it (NUD_VALID).
func (e *Entry) MAC() (netaddr.MAC, bool) {
	_, m, ok := e.Load()
	return m, ok
}

// Load returns state and MAC from one atomic read; ok as for MAC.
func (e *Entry) Load() (State, netaddr.MAC, bool) {
	w := e.word.Load()
	s := State(w >> wordStateSft)
	var m netaddr.MAC
	v := w & wordMACMask
	for i := 5; i >= 0; i-- {
		m[i] = byte(v)
		v >>= 8
	}
	return s, m, w&wordHasMAC != 0 && s.Valid()
}

// Failures counts transitions to FAILED. A core holding queued packets can
// compare it with the value at enqueue time: FAILED may be left again (a new
// send restarts INCOMPLETE) before the core looks at State.
func (e *Entry) Failures() uint32 { return e.failures.Load() }

// Dead reports that the entry left its table (GC, delete, flush). Packets
// still queued on it should be dropped; a fresh Lookup finds its successor.
func (e *Entry) Dead() bool { return e.word.Load()&wordDead != 0 }

// publish makes the owner's view visible to cores.
func (e *Entry) publish(dead bool) {
	w := uint64(e.state) << wordStateSft
	if e.hasMAC {
		var v uint64
		for _, b := range e.mac {
			v = v<<8 | uint64(b)
		}
		w |= v | wordHasMAC
	}
	if dead {
		w |= wordDead
	}
	if e.word.Load() != w {
		e.word.Store(w)
		e.seq.Add(1)
	}
}

// EntryInfo is a snapshot of an entry for Show and Format.
type EntryInfo struct {
	Port      int
	IP        uint32
	MAC       netaddr.MAC
	HasMAC    bool
	State     State
	Probes    int
	Used      time.Duration // time since last use
	Confirmed time.Duration // time since last confirmation
	Updated   time.Duration // time since last state/MAC change
	Seq       uint32
}

// tombstone marks a deleted slot; probing continues past it.
var tombstone = &Entry{}

type slots struct {
	mask uint32
	seed uint32
	s    []atomic.Pointer[Entry]
}

// Table is one port's neighbours: a fixed-capacity open-addressing hash
// (linear probing) of atomic pointers, written only by the owner. Deletes
// leave tombstones; when they pile up the owner rebuilds into a fresh array
// and swaps it in, so readers never see a half-moved table.
type Table struct {
	single atomic.Pointer[Entry] // set on noarp/p2p ports: the only neighbour
	cur    atomic.Pointer[slots]

	count int // owner-only: live entries
	tombs int // owner-only: tombstones in cur
}

func hash(ip, seed uint32) uint32 {
	// murmur3 finaliser with a per-table seed, so crafted sender addresses
	// cannot line up into one long probe run.
	x := ip ^ seed
	x ^= x >> 16
	x *= 0x85ebca6b
	x ^= x >> 13
	x *= 0xc2b2ae35
	x ^= x >> 16
	return x
}

func newSlots(capacity int, seed uint32) *slots {
	n := 8
	for n < capacity {
		n <<= 1
	}
	return &slots{mask: uint32(n - 1), seed: seed, s: make([]atomic.Pointer[Entry], n)}
}

// capacityFor keeps the load factor at or under one half.
func capacityFor(thresh3 int) int { return 2 * thresh3 }

// Lookup returns the neighbour for ip, or nil. Lock-free and allocation-free;
// on a noarp/p2p port it returns the port's single entry for any address.
func (t *Table) Lookup(ip uint32) *Entry {
	if t == nil {
		return nil
	}
	if e := t.single.Load(); e != nil {
		return e
	}
	a := t.cur.Load()
	if a == nil {
		return nil
	}
	i := hash(ip, a.seed) & a.mask
	for n := uint32(0); n <= a.mask; n++ {
		e := a.s[i].Load()
		if e == nil {
			return nil
		}
		if e.ip == ip && e != tombstone {
			return e
		}
		i = (i + 1) & a.mask
	}
	return nil
}

// Len returns the number of entries (owner's count; approximate for readers).
func (t *Table) Len() int {
	if t.single.Load() != nil {
		return 1
	}
	return t.count
}

// find is the owner's lookup; it ignores the single entry.
func (t *Table) find(ip uint32) *Entry {
	a := t.cur.Load()
	i := hash(ip, a.seed) & a.mask
	for n := uint32(0); n <= a.mask; n++ {
		e := a.s[i].Load()
		if e == nil {
			return nil
		}
		if e.ip == ip && e != tombstone {
			return e
		}
		i = (i + 1) & a.mask
	}
	return nil
}

// insert adds e, which must not be present. It reuses the first tombstone on
// e's probe path. The caller keeps count below capacity.
func (t *Table) insert(e *Entry) {
	a := t.cur.Load()
	i := hash(e.ip, a.seed) & a.mask
	for {
		old := a.s[i].Load()
		if old == nil || old == tombstone {
			if old == tombstone {
				t.tombs--
			}
			a.s[i].Store(e)
			t.count++
			return
		}
		i = (i + 1) & a.mask
	}
}

// remove takes e out, leaving a tombstone, and compacts when tombstones
// would lengthen probes too much.
func (t *Table) remove(e *Entry) bool {
	a := t.cur.Load()
	i := hash(e.ip, a.seed) & a.mask
	for n := uint32(0); n <= a.mask; n++ {
		old := a.s[i].Load()
		if old == nil {
			return false
		}
		if old == e {
			a.s[i].Store(tombstone)
			t.count--
			t.tombs++
			if (t.count+t.tombs)*4 > len(a.s)*3 {
				t.rebuild(len(a.s), a.seed)
			}
			return true
		}
		i = (i + 1) & a.mask
	}
	return false
}

// rebuild publishes a fresh array holding the live entries. Readers still
// on the old array see a consistent (if momentarily stale) table.
func (t *Table) rebuild(capacity int, seed uint32) {
	old := t.cur.Load()
	a := newSlots(capacity, seed)
	t.count, t.tombs = 0, 0
	if old != nil {
		for i := range old.s {
			if e := old.s[i].Load(); e != nil && e != tombstone {
				j := hash(e.ip, a.seed) & a.mask
				for a.s[j].Load() != nil {
					j = (j + 1) & a.mask
				}
				a.s[j].Store(e)
				t.count++
			}
		}
	}
	t.cur.Store(a)
}

// each calls fn for every live entry (owner only); fn may not modify t.
func (t *Table) each(fn func(*Entry)) {
	if e := t.single.Load(); e != nil {
		fn(e)
		return
	}
	a := t.cur.Load()
	for i := range a.s {
		if e := a.s[i].Load(); e != nil && e != tombstone {
			fn(e)
		}
	}
}
