// Package fib is ferry's IPv4 forwarding information base: one
// longest-prefix-match trie per routing table, the policy rules (RPDB) that
// choose between tables, the kernel's automatic routes for interface
// addresses, and the formats of iproute2 for routes and rules.
//
// Readers (Lookup, LookupOutput, IsLocal, HasCustomRules) take no lock and
// never allocate: they load immutable snapshots published with atomic
// pointers. Writers are serialized by one mutex, replace what a trie node
// holds as a whole (one node per change), publish the merged lookup
// structure once per batch, then bump the generation id.
package fib

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"

	"ferry/cache"
	"ferry/netaddr"
)

// Type is a route type, with the kernel's RTN_* values.
type Type uint8

const (
	Unicast     Type = 1
	Local       Type = 2
	Broadcast   Type = 3
	Anycast     Type = 4
	Multicast   Type = 5
	Blackhole   Type = 6
	Unreachable Type = 7
	Prohibit    Type = 8
	Throw       Type = 9
)

// Scope is a route scope, with the kernel's RT_SCOPE_* values.
type Scope uint8

const (
	ScopeUniverse Scope = 0
	ScopeSite     Scope = 200
	ScopeLink     Scope = 253
	ScopeHost     Scope = 254
	ScopeNowhere  Scope = 255
)

// Reserved table ids.
const (
	TableUnspec  = 0
	TableDefault = 253
	TableMain    = 254
	TableLocal   = 255
)

// Routing protocols (RTPROT_*) the FIB itself uses.
const (
	ProtoUnspec = 0
	ProtoKernel = 2
	ProtoBoot   = 3
	ProtoStatic = 4
)

// Errors lookups report, as the kernel reports them. They are package
// values so a lookup never allocates one.
var (
	ErrNetUnreach  error = syscall.ENETUNREACH  // no route, or an unreachable rule
	ErrHostUnreach error = syscall.EHOSTUNREACH // unreachable route
	ErrProhibited  error = syscall.EACCES       // prohibit route or rule
	ErrBlackhole   error = syscall.EINVAL       // blackhole route or rule, martians
	ErrExists      error = syscall.EEXIST       // add of a route or rule that exists
	ErrNoRoute     error = syscall.ESRCH        // delete of a missing route
	ErrNoEntry     error = syscall.ENOENT       // change of a missing route
	errThrow             = errors.New("throw")  // internal: continue with the next rule
)

// Nexthop is one path of a route. It is immutable once its route is added.
type Nexthop struct {
	Gateway uint32 // 0: directly connected
	Port    int    // output port index, -1 when none
	Weight  int    // multipath weight, >= 1
	Onlink  bool
	// Cache holds the routing decisions made through this nexthop; the FIB
	// creates it when the route is added.
	Cache *cache.NhCache
	// UpperBound is the end of this nexthop's share of the 31-bit hash space
	// when every nexthop of the route is alive (the kernel's
	// fib_nh_upper_bound); -1 for a single-path route.
	UpperBound int32
}

// Route is one route (the kernel's fib_alias with its fib_info). It is
// immutable once added: changes publish a new *Route.
//
// The fields are ordered by size so that a Route takes 56 bytes: a leaf of
// the trie holds one, and a full table holds a million leaves.
type Route struct {
	Table    uint32
	Dst      uint32
	Priority uint32
	Prefsrc  uint32
	MTU      uint32
	Len      uint8
	Type     Type
	Tos      uint8
	Proto    uint8
	Scope    Scope
	MTULock  bool

	given uint16 // fields the parser saw explicitly (given* bits); 0 when built in code

	Nexthops []*Nexthop
}

// Bits of Route.given.
const (
	givenParsed uint16 = 1 << iota
	givenType
	givenScope
	givenProto
	givenTable
	givenPriority
	givenTos
)

// Key is what a lookup matches on.
type Key struct {
	Dst, Src uint32
	Tos      uint8
	Iif      int // input port index; -1 for locally generated packets
	Oif      int // output port for locally generated packets; -1 if unspecified
	Mark     uint32
	Hash     uint32 // flow hash for multipath selection (see FlowHash)
}

// Result is what a lookup found.
type Result struct {
	Type Type
	// Multipath: the nexthop was chosen among a route's several by the
	// flow hash, so the next packet to the same destination may take
	// another (the kernel's IPSKB_MULTIPATH: no route hint).
	Multipath bool
	Table     uint32
	Route     *Route
	Nexthop   *Nexthop // the chosen nexthop; nil for types without one
	Prefsrc   uint32   // the source address the kernel would use
	MTU       uint32   // route MTU, else the output port's MTU
	Err       error    // nil, or one of the Err* values
}

// Prefix is an IPv4 prefix, as ParsePrefix reads it.
type Prefix = netaddr.Prefix

// port is the state of one port as the writers keep it.
type port struct {
	name  string
	mtu   int
	up    bool
	used  bool
	addrs []ifaddr // in the order added; the first of a subnet is primary
	// onlink keeps its decision cache across port changes.
	onlink *Nexthop
}

type ifaddr struct {
	addr      uint32
	plen      uint8
	secondary bool
}

// portSnap is the immutable view of the ports that lookups read.
type portSnap struct {
	up    []bool
	mtu   []uint32
	addrs [][]ifaddr // primaries only, in order, for source selection
	order []int      // ports with a primary address, by index (inet_select_addr's device walk)
	// onlink is each port's nexthop for destinations assumed on-link when
	// an output lookup names the port but finds no route.
	onlink []*Nexthop
	// What readers outside the packet path ask for (the neighbour
	// owner's solicitations among them): they must never wait for the
	// writers' lock, which a large route batch holds for long.
	all    [][]Prefix // every address, in the order added
	names  []string
	byName map[string]int
}

func (ps *portSnap) alive(p int) bool {
	return p >= 0 && p < len(ps.up) && ps.up[p]
}

// FIB is the forwarding information base.
type FIB struct {
	gen   *cache.GenID
	cores int

	mu     sync.Mutex // serializes writers
	ports  []port
	byName map[string]int
	tables map[uint32]*table
	rules  []*Rule
	serial uint64              // stamps of trie nodes (trieTx.publish)
	batch  Batch               // the running batch's state, reused
	nhs    map[string]*nhEntry // interned nexthop sets (the kernel's shared fib_info)
	// gwCache remembers gateway resolutions; any change to a route that can
	// resolve a gateway (link or host scope, local table) or to ports clears it.
	gwCache map[gwKey]gwRes

	// exc lists this FIB's nexthops that have exceptions; a nexthop's
	// entry goes with it.
	exc cache.ExcRegistry

	portSnap atomic.Pointer[portSnap]
	ruleSnap atomic.Pointer[ruleSnap]
	custom   atomic.Bool
	// multipath counts the interned nexthop sets of several paths.
	multipath atomic.Int32
	local     *table // cached: IsLocal and auto routes use them directly
	main      *table
	fast      atomic.Pointer[fsnap] // local, main and default merged (see fast.go)
	fw        fastWriter
	// walks counts the input lookups that took the rule walk for a block
	// whose build waits (SlowWalks): readers add to it once a pass, on a
	// line of its own.
	walks struct {
		_ [64]byte
		n atomic.Uint64
		_ [56]byte
	}
	used usedBlocks
}

// DefaultGCPercent is the Go collector target (GOGC) ferryd runs with:
// Go's own. The FIB is most of the heap (about 125 MB for 900k routes);
// a higher target lets the garbage of route churn and of listings grow to
// several times that before a collection, and the RSS with it, for no
// measurable gain in update rate.
const DefaultGCPercent = 100

// New returns an empty FIB with the default rules and the local, main and
// default tables. cores sizes the per-core decision caches of nexthops.
func New(gen *cache.GenID, cores int) *FIB {
	if gen == nil {
		gen = &cache.GenID{}
	}
	if cores < 1 {
		cores = 1
	}
	f := &FIB{
		gen:    gen,
		cores:  cores,
		byName: make(map[string]int),
		tables: make(map[uint32]*table),
		nhs:    make(map[string]*nhEntry),
	}
	f.local = f.tableLocked(TableLocal)
	f.main = f.tableLocked(TableMain)
	f.tableLocked(TableDefault)
	f.rules = defaultRules()
	f.publishPortsLocked()
	f.publishRulesLocked()
	f.rebuildFast()
	return f
}

// Exceptions is the registry of the nexthops with exceptions.
func (f *FIB) Exceptions() *cache.ExcRegistry { return &f.exc }

// GenID returns the generation id the FIB bumps on every change.
func (f *FIB) GenID() *cache.GenID { return f.gen }

// SetPort registers or updates a port. A change of up/down or MTU bumps the
// generation id; routes through a down port are not chosen.
func (f *FIB) SetPort(index int, name string, mtu int, up bool) error {
	if index < 0 || index > 1<<16 {
		return fmt.Errorf("port %d %q: index out of range", index, name)
	}
	if name == "" || name == "lo" || name == "all" || len(name) > 15 {
		return fmt.Errorf("port %d %q: invalid name", index, name)
	}
	if mtu < 68 || mtu > 65535 {
		return fmt.Errorf("port %d %q: mtu %d out of range 68..65535", index, name, mtu)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if other, ok := f.byName[name]; ok && other != index {
		return fmt.Errorf("port %d %q: name already used by port %d", index, name, other)
	}
	for len(f.ports) <= index {
		f.ports = append(f.ports, port{})
	}
	p := &f.ports[index]
	if p.used && p.name != name {
		delete(f.byName, p.name)
	}
	p.name, p.mtu, p.up, p.used = name, mtu, up, true
	f.byName[name] = index
	f.gwCache = nil
	f.publishPortsLocked()
	f.publishRulesLocked() // rules name ports: resolve iif/oif again
	f.gen.Bump()
	return nil
}

// PortIndex resolves a port name, without waiting for writers.
func (f *FIB) PortIndex(name string) (int, bool) {
	i, ok := f.portSnap.Load().byName[name]
	return i, ok
}

// PortName returns a port's name, or "" for an unknown index, without
// waiting for writers.
func (f *FIB) PortName(index int) string {
	ps := f.portSnap.Load()
	if index < 0 || index >= len(ps.names) {
		return ""
	}
	return ps.names[index]
}

func (f *FIB) portNameLocked(index int) string {
	if index < 0 || index >= len(f.ports) || !f.ports[index].used {
		return ""
	}
	return f.ports[index].name
}

func (f *FIB) publishPortsLocked() {
	ps := &portSnap{
		up:     make([]bool, len(f.ports)),
		mtu:    make([]uint32, len(f.ports)),
		addrs:  make([][]ifaddr, len(f.ports)),
		onlink: make([]*Nexthop, len(f.ports)),
		all:    make([][]Prefix, len(f.ports)),
		names:  make([]string, len(f.ports)),
		byName: make(map[string]int, len(f.byName)),
	}
	for name, i := range f.byName {
		ps.byName[name] = i
	}
	for i := range f.ports {
		p := &f.ports[i]
		ps.up[i] = p.used && p.up
		ps.mtu[i] = uint32(p.mtu)
		if p.used && p.onlink == nil {
			p.onlink = &Nexthop{Port: i, Weight: 1, Cache: cache.NewNhCache(f.cores), UpperBound: -1}
		}
		ps.onlink[i] = p.onlink
		ps.names[i] = f.portNameLocked(i)
		for _, a := range p.addrs {
			ps.all[i] = append(ps.all[i], Prefix{Addr: a.addr, Len: a.plen})
			if !a.secondary {
				ps.addrs[i] = append(ps.addrs[i], a)
			}
		}
		if len(ps.addrs[i]) > 0 {
			ps.order = append(ps.order, i)
		}
	}
	f.portSnap.Store(ps)
	f.refreshAnswers() // they depend on the ports
}

// selectAddr is the kernel's inet_select_addr for addresses of universe
// scope (all of ferry's): a primary address of port p whose subnet holds
// dst, else p's first primary, else the first primary address of any port.
func selectAddr(ps *portSnap, p int, dst uint32) uint32 {
	var addr uint32
	if p >= 0 && p < len(ps.addrs) {
		for _, a := range ps.addrs[p] {
			if dst != 0 && (a.addr^dst)&netaddr.Mask(a.plen) == 0 {
				return a.addr
			}
			if addr == 0 {
				addr = a.addr
			}
		}
	}
	if addr != 0 {
		return addr
	}
	if len(ps.order) > 0 {
		return ps.addrs[ps.order[0]][0].addr
	}
	return 0
}
