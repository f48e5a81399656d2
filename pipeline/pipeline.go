package pipeline

import (
	"sync/atomic"
	"time"
	"unsafe"

	"ferry/cache"
	"ferry/cache/neigh"
	"ferry/fib"
	"ferry/netaddr"
)

// PortInfo is what the packet path needs to know about a port.
type PortInfo struct {
	Name  string
	MAC   netaddr.MAC
	MTU   int
	NoARP bool
	Up    bool
	Addrs []netaddr.Prefix // the port's IPv4 addresses

	// ICMP redirect knobs, as net.ipv4.conf.<port>.*.
	AcceptRedirects bool // default off on a router
	SecureRedirects bool // default on
	SendRedirects   bool // default on
	ProxyARP        bool // answer ARP for addresses routed out another port
}

// onlink reports whether a is on one of the port's subnets.
func (pi *PortInfo) onlink(a uint32) bool {
	for _, p := range pi.Addrs {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Knobs are the run-time settings the packet path reads once a burst.
type Knobs struct {
	ICMPRatePerSec int // ICMP errors a core may send per second (icmp_msgs_per_sec)
	ICMPBurst      int // and in a burst (icmp_msgs_burst)

	ForwardUsePMTU  bool          // forwarded packets honour PMTU exceptions
	MinPMTU         uint32        // learned PMTUs below this are clamped and locked
	MTUExpires      time.Duration // lifetime of a PMTU exception
	RedirectNumber  int           // redirects sent to a host before going silent
	RedirectSilence time.Duration // quiet time that resets the redirect count
	RedirectLoad    time.Duration // base gap between redirects, doubled each time
	RedirectExpires time.Duration // lifetime of a learned redirect (ip_rt_gc_timeout)
	// MultipathHashL4 picks multipath nexthops by source, destination,
	// protocol and ports (fib_multipath_hash_policy 1) instead of by the
	// addresses alone (0, the default).
	MultipathHashL4 bool
}

// DefaultKnobs are the kernel's defaults.
func DefaultKnobs() Knobs {
	return Knobs{
		ICMPRatePerSec:  1000,
		ICMPBurst:       50,
		MinPMTU:         552,
		MTUExpires:      600 * time.Second,
		RedirectNumber:  9,
		RedirectLoad:    20 * time.Millisecond,
		RedirectSilence: 20 * time.Millisecond << 10,
		RedirectExpires: 300 * time.Second,
	}
}

// Knobs returns the current settings.
func (s *Dataplane) Knobs() Knobs { return *s.knobs.Load() }

// Now is the time on the pipelines' clock, in the nanoseconds decisions and
// nexthop exceptions are stamped with: what the control plane compares
// their expiry with.
func (s *Dataplane) Now() int64 { return cache.Nanos(s.clock) }

// Dataplane is the state all the pipelines share: the FIB, the genid, the
// neighbour manager, the ports and knobs, the mailboxes and punt rings.
// Writers publish new values atomically and bump the genid when a decision
// could go stale.
type Dataplane struct {
	FIB   *fib.FIB
	Gen   *cache.GenID
	Neigh *neigh.Manager
	ports atomic.Pointer[[]PortInfo]
	knobs atomic.Pointer[Knobs]
	cores []*Pipeline
	boxes []*Mailbox
	punt  *puntState  // nil: no kernel path
	clock cache.Clock // read once a pass; the neighbour owner's too
}

// NewDataplane ties the FIB, genid and neighbour manager together for
// ncores cores, and binds tx, the transmitter nm was made with (nil when nm
// was given another), to the new Dataplane.
func NewDataplane(f *fib.FIB, gen *cache.GenID, nm *neigh.Manager, tx *NeighTx, ports []PortInfo, ncores int) *Dataplane {
	s := &Dataplane{FIB: f, Gen: gen, Neigh: nm, clock: cache.SystemClock{}}
	if tx != nil {
		tx.sh = s
	}
	s.SetPorts(ports)
	k := DefaultKnobs()
	s.knobs.Store(&k)
	s.boxes = make([]*Mailbox, ncores)
	for i := range s.boxes {
		s.boxes[i] = &Mailbox{}
	}
	return s
}

// SetPorts publishes new port information and expires cached decisions.
func (s *Dataplane) SetPorts(p []PortInfo) {
	cp := append([]PortInfo(nil), p...)
	s.ports.Store(&cp)
	if s.Gen != nil {
		s.Gen.Bump()
	}
}

// Ports returns the current port information (read only).
func (s *Dataplane) Ports() []PortInfo { return *s.ports.Load() }

// SetKnobs publishes new settings; decisions depend on them, so they expire.
func (s *Dataplane) SetKnobs(k Knobs) {
	s.knobs.Store(&k)
	if s.Gen != nil {
		s.Gen.Bump()
	}
}

// Counters sums every core's counters.
func (s *Dataplane) Counters() [NumCounters]uint64 {
	var sum [NumCounters]uint64
	for _, p := range s.cores {
		p.ctr.addTo(&sum)
	}
	return sum
}

// CoreCounters returns each core's published counters, in core order.
func (s *Dataplane) CoreCounters() [][NumCounters]uint64 {
	out := make([][NumCounters]uint64, len(s.cores))
	for i, p := range s.cores {
		p.ctr.addTo(&out[i])
	}
	return out
}

// Pipeline is one core's packet path. Nothing in it is shared for writing.
type Pipeline struct {
	core int
	sh   *Dataplane
	io   *IO

	ports   []PortInfo
	portsAt *[]PortInfo // what ports was read from
	knobs   *Knobs
	gen     uint32
	now     int64 // nanoseconds, read once a burst

	ctr     counters
	bursts  uint64
	icmpTok tokenBucket

	// Per-pass work lists: the valid IPv4 packets (the first nIP of
	// io.Rx), how each gets its decision, and the neighbour stage's list.
	nIP   int
	route [RxMax]int16 // per packet: its lookup's index, or routeBcast and the like
	out   [RxMax + BurstSize]outItem
	nOut  int
	// The lookup list: the destinations the receive stage left to look
	// up, and what the merged structure holds for each.
	dsts [RxMax]uint32
	vals [RxMax]uint16
	nk   int
	view fib.InputView // the lookup state of the pass
	// The pass's decisions by lookup value (fwdMix), valMemoN of them.
	valMemo [valMemoN]valEntry
	// An input lookup with a full key, for what the values do not answer.
	inKey   fib.Key
	inSpill fib.Result
	// An output lookup (packets the router sends).
	key fib.Key
	res fib.Result

	gws       gwMemo // the pass's gateways
	pending   pendingSet
	ipID      uint16
	redirects redirectLimiter

	punt     *puntState // the kernel path, nil when off
	puntTok  [MaxPorts]puntBucket
	puntWake uint32 // ports punted to in this pass
}

// outItem is a packet ready for the neighbour stage. It is kept small and
// nearly pointer-free: the stage groups by (port, next hop), not by decision.
type outItem struct {
	ref  unsafe.Pointer
	data unsafe.Pointer
	nh   uint32
	len  uint16
	cap  uint16 // buffer room from data, for an ICMP error built in place
	port uint16
}

// NewPipeline makes core's pipeline over the data plane's io views.
func (s *Dataplane) NewPipeline(core int, io *IO) *Pipeline {
	p := &Pipeline{core: core, sh: s, io: io, punt: s.punt}
	if io.PortMAC == nil {
		io.PortMAC = new([MaxPorts]uint64) // the receive stage's own
	}
	p.ipID = uint16(core) << 12
	s.cores = append(s.cores, p)
	return p
}

// Process runs one received burst through every stage and leaves the
// results in the IO transmit and free lists.
func (p *Pipeline) Process() {
	p.beginBurst()
	n := int(*p.io.RxN)
	p.ctr.local[RxPackets] += uint64(n)
	p.ethInput(n)
	p.routeInput()
	p.pendingPoll()
	p.mailboxPoll()
	if p.punt != nil {
		p.injectPoll()
	}
	p.neighOutput()
	p.endBurst()
}

// Idle does the timed work of a core that received nothing.
func (p *Pipeline) Idle() {
	p.beginBurst()
	p.pendingPoll()
	p.mailboxPoll()
	if p.punt != nil {
		p.injectPoll()
	}
	p.neighOutput()
	if p.puntWake != 0 {
		p.puntSignal()
	}
	p.ctr.publish()
}

func (p *Pipeline) beginBurst() {
	if pp := p.sh.ports.Load(); pp != p.portsAt {
		p.portsAt, p.ports = pp, *pp
		m := p.io.PortMAC
		for i := range p.ports[:min(len(p.ports), MaxPorts)] {
			m[i] = MACWord(p.ports[i].MAC)
		}
	}
	p.knobs = p.sh.knobs.Load()
	p.gen = p.sh.Gen.Current()
	p.now = cache.Nanos(p.sh.clock)
	p.icmpTok.refill(p.now, p.knobs)
	p.nIP = 0
	p.nk = 0
	p.nOut = 0
	p.gws.n = 0
}

func (p *Pipeline) endBurst() {
	var tx uint64
	for _, n := range p.io.TxN {
		tx += uint64(n)
	}
	p.ctr.local[TxPackets] += tx
	if p.puntWake != 0 {
		p.puntSignal()
	}
	p.bursts++
	if p.bursts&15 == 0 {
		p.ctr.publish()
	}
}

// drop frees a buffer and counts why.
func (p *Pipeline) drop(ref unsafe.Pointer, why Counter) {
	p.ctr.local[why]++
	p.io.free(ref)
}

// tokenBucket limits the ICMP errors a core sends (icmp_msgs_per_sec).
type tokenBucket struct {
	tokens float64
	last   int64
}

func (t *tokenBucket) refill(now int64, k *Knobs) {
	if t.last == 0 {
		t.tokens = float64(k.ICMPBurst)
		t.last = now
		return
	}
	t.tokens += float64(now-t.last) * float64(k.ICMPRatePerSec) / 1e9
	if t.tokens > float64(k.ICMPBurst) {
		t.tokens = float64(k.ICMPBurst)
	}
	t.last = now
}

func (t *tokenBucket) take() bool {
	if t.tokens >= 1 {
		t.tokens--
		return true
	}
	return false
}
