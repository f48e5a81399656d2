package cache

import (
	"sync"
	"sync/atomic"
	"time"
)

// Nexthop exceptions (the kernel's fib_nh_exception): per-destination
// overrides of a nexthop learned from ICMP redirects and fragmentation-needed
// messages. Each nexthop's table is bounded: ExcBuckets chains of at most
// ExcDepth entries, the oldest reclaimed first, so a flood of ICMP for random
// destinations cannot grow memory past that.
const (
	ExcBuckets = 2048
	ExcDepth   = 6
)

var epoch = time.Now()

// Exception is immutable once published; an update publishes a new one, so
// the decisions cached in the old one are dropped with it.
type Exception struct {
	Daddr   uint32
	Gateway uint32 // redirected gateway; 0 keeps the route's
	PMTU    uint32 // learned path MTU; 0 keeps the route's
	Locked  bool   // PMTU below min_pmtu was clamped and locked
	Expires int64  // on the Now clock; 0 never
	Stamp   int64  // last update, for oldest-first reclaim

	slots // the exception's own decisions
}

// Expired reports whether the exception no longer applies at now.
func (e *Exception) Expired(now int64) bool { return e.Expires != 0 && now >= e.Expires }

// ExceptionTable is one nexthop's exceptions. Readers walk immutable chains
// without locks; writers (rare: ICMP from the network, the control plane)
// serialise on a mutex that readers never touch.
type ExceptionTable struct {
	mu      sync.Mutex
	cores   int
	count   atomic.Int32
	buckets [ExcBuckets]atomic.Pointer[[]*Exception]
}

func excHash(daddr uint32) uint32 {
	h := daddr * 0x9e3779b1
	return (h ^ h>>15) & (ExcBuckets - 1)
}

// Find returns the live exception for daddr, or nil.
func (t *ExceptionTable) Find(daddr uint32, now int64) *Exception {
	c := t.buckets[excHash(daddr)].Load()
	if c == nil {
		return nil
	}
	for _, e := range *c {
		if e.Daddr == daddr {
			if e.Expired(now) {
				return nil
			}
			return e
		}
	}
	return nil
}

// Len is how many exceptions the table holds (expired ones included until
// they are reclaimed).
func (t *ExceptionTable) Len() int { return int(t.count.Load()) }

// Update creates or updates daddr's exception as update_or_create_fnhe
// does: a non-zero gateway or PMTU replaces the old one; a full chain gives
// up its oldest entry.
func (t *ExceptionTable) Update(daddr, gw, pmtu uint32, locked bool, expires, now int64) *Exception {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.updateLocked(daddr, gw, pmtu, locked, expires, now)
}

func (t *ExceptionTable) updateLocked(daddr, gw, pmtu uint32, locked bool, expires, now int64) *Exception {
	slot := &t.buckets[excHash(daddr)]
	var old []*Exception
	if c := slot.Load(); c != nil {
		old = *c
	}
	ne := &Exception{Daddr: daddr, Stamp: now, slots: slots{output: make([]coreSlot, t.cores)}}
	at := -1
	for i, e := range old {
		if e.Daddr == daddr {
			at = i
			if !e.Expired(now) {
				ne.Gateway, ne.PMTU, ne.Locked, ne.Expires = e.Gateway, e.PMTU, e.Locked, e.Expires
			}
		}
	}
	if gw != 0 {
		ne.Gateway = gw
		if ne.PMTU == 0 {
			ne.Expires = expires
		}
	}
	if pmtu != 0 {
		ne.PMTU, ne.Locked, ne.Expires = pmtu, locked, expires
	}
	chain := make([]*Exception, 0, len(old)+1)
	switch {
	case at >= 0:
		chain = append(chain, old...)
		chain[at] = ne
	case len(old) >= ExcDepth:
		oldest := 0
		for i, e := range old {
			if e.Stamp < old[oldest].Stamp {
				oldest = i
			}
		}
		chain = append(chain, old...)
		chain[oldest] = ne
	default:
		chain = append(chain, ne)
		chain = append(chain, old...)
		t.count.Add(1)
	}
	slot.Store(&chain)
	return ne
}

// Expire removes exceptions past their time and returns how many went.
func (t *ExceptionTable) Expire(now int64) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for i := range t.buckets {
		c := t.buckets[i].Load()
		if c == nil {
			continue
		}
		var keep []*Exception
		for _, e := range *c {
			if e.Expired(now) {
				n++
			} else {
				keep = append(keep, e)
			}
		}
		if len(keep) != len(*c) {
			t.buckets[i].Store(&keep)
		}
	}
	t.count.Add(int32(-n))
	return n
}

// Flush drops every exception.
func (t *ExceptionTable) Flush() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := int(t.count.Load())
	for i := range t.buckets {
		t.buckets[i].Store(nil)
	}
	t.count.Store(0)
	return n
}

// Each calls fn for every live exception.
func (t *ExceptionTable) Each(now int64, fn func(*Exception)) {
	for i := range t.buckets {
		if c := t.buckets[i].Load(); c != nil {
			for _, e := range *c {
				if !e.Expired(now) {
					fn(e)
				}
			}
		}
	}
}

// TryUpdate is Update for pipeline cores: it never waits for the writer
// lock and returns nil when it is busy (the caller counts a drop).
func (t *ExceptionTable) TryUpdate(daddr, gw, pmtu uint32, locked bool, expires, now int64) *Exception {
	if !t.mu.TryLock() {
		return nil
	}
	defer t.mu.Unlock()
	return t.updateLocked(daddr, gw, pmtu, locked, expires, now)
}

// ExcOwner says which nexthop a table belongs to, for listings.
type ExcOwner struct {
	Cache   *NhCache
	Port    int
	Gateway uint32
}

// ExcRegistry lists the nexthops of one FIB that have exceptions, so the
// control plane can show, expire and flush them. The FIB owns it and
// releases a nexthop's entry with the nexthop. Notes come from pipeline
// cores learning a redirect or a PMTU: rare, and never on the forwarding
// path.
type ExcRegistry struct {
	mu     sync.Mutex
	owners map[*NhCache]ExcOwner
}

// Note records c's owner once; callers pass the nexthop they created
// exceptions on.
func (r *ExcRegistry) Note(c *NhCache, port int, gw uint32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.owners == nil {
		r.owners = map[*NhCache]ExcOwner{}
	}
	if _, ok := r.owners[c]; !ok {
		r.owners[c] = ExcOwner{Cache: c, Port: port, Gateway: gw}
	}
}

// Release forgets c, whose nexthop is gone: its exceptions go with it.
func (r *ExcRegistry) Release(c *NhCache) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.owners, c)
	if len(r.owners) == 0 {
		r.owners = nil // a map keeps its buckets: let a big one go
	}
}

// Owners returns the nexthops that hold exceptions.
func (r *ExcRegistry) Owners() []ExcOwner {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]ExcOwner, 0, len(r.owners))
	for _, o := range r.owners {
		out = append(out, o)
	}
	return out
}

// Flush drops every exception of every nexthop.
func (r *ExcRegistry) Flush() int {
	n := 0
	for _, o := range r.Owners() {
		if t := o.Cache.Exceptions(); t != nil {
			n += t.Flush()
		}
	}
	return n
}

// Expire reclaims expired exceptions everywhere.
func (r *ExcRegistry) Expire(now int64) int {
	n := 0
	for _, o := range r.Owners() {
		if t := o.Cache.Exceptions(); t != nil {
			n += t.Expire(now)
		}
	}
	return n
}
