// Package neigh is ferry's neighbour (ARP) subsystem, modelled on the Linux
// kernel after v3.6: routing decisions hold no neighbour; the pipeline looks
// the neighbour up by (port, next hop) at send time, lock-free, on every core.
//
// One owner goroutine (Manager.Run) does every write: it drains per-core
// event rings, runs the NUD timers, collects garbage and sends solicitations.
// Cores only read tables and push events; they never block.
package neigh

import (
	"errors"
	"fmt"
	"time"

	"ferry/netaddr"
)

// State is a NUD state with the kernel's bit values, so masks compose the
// same way (NUD_VALID, NUD_CONNECTED, NUD_IN_TIMER).
type State uint8

const (
	None       State = 0
	Incomplete State = 0x01
	Reachable  State = 0x02
	Stale      State = 0x04
	Delay      State = 0x08
	Probe      State = 0x10
	Failed     State = 0x20
	NoARP      State = 0x40
	Permanent  State = 0x80
)

const (
	// validMask: states whose MAC may be used to send (NUD_VALID).
	validMask = Permanent | NoARP | Reachable | Probe | Stale | Delay
	// connectedMask: states that need no confirmation (NUD_CONNECTED).
	connectedMask = Permanent | NoARP | Reachable
	// inTimerMask: states driven by a timer (NUD_IN_TIMER); the timer is the
	// kernel's reference that keeps them from being collected.
	inTimerMask = Incomplete | Reachable | Delay | Probe
)

var stateNames = [...]struct {
	s    State
	name string
}{
	{Incomplete, "INCOMPLETE"}, {Reachable, "REACHABLE"}, {Stale, "STALE"},
	{Delay, "DELAY"}, {Probe, "PROBE"}, {Failed, "FAILED"}, {NoARP, "NOARP"},
	{Permanent, "PERMANENT"},
}

// String names the state as ip neigh does; combined bits are comma-joined.
func (s State) String() string {
	if s == None {
		return "NONE"
	}
	out := ""
	for _, n := range stateNames {
		if s&n.s != 0 {
			if out != "" {
				out += ","
			}
			out += n.name
		}
	}
	return out
}

// Valid reports whether the entry's MAC may be used to send (NUD_VALID).
func (s State) Valid() bool { return s&validMask != 0 }

// Params are the per-port neighbour knobs, named after the kernel's
// /proc/sys/net/ipv4/neigh/<dev>/ entries.
type Params struct {
	BaseReachableTime   time.Duration // base_reachable_time
	DelayFirstProbeTime time.Duration // delay_first_probe_time
	RetransTime         time.Duration // retrans_time
	GCStaleTime         time.Duration // gc_stale_time
	GCInterval          time.Duration // gc_interval: period of the periodic GC pass
	Locktime            time.Duration // locktime
	ProxyDelay          time.Duration // proxy_delay (exposed for the ARP replier)
	MCastSolicit        int           // mcast_solicit
	UCastSolicit        int           // ucast_solicit
	AppSolicit          int           // app_solicit
	MCastResolicit      int           // mcast_resolicit
	GCThresh1           int           // gc_thresh1
	GCThresh2           int           // gc_thresh2
	GCThresh3           int           // gc_thresh3
	UnresQlenBytes      int           // unres_qlen_bytes: enforced by the caller's queue
	ArpAccept           bool          // arp_accept: create entries from unsolicited replies / gratuitous ARP
	ProxyARP            bool          // proxy_arp: learn from requests for addresses we proxy
}

// DefaultParams returns the kernel's defaults for an Ethernet port.
func DefaultParams() Params {
	return Params{
		BaseReachableTime:   30 * time.Second,
		DelayFirstProbeTime: 5 * time.Second,
		RetransTime:         time.Second,
		GCStaleTime:         60 * time.Second,
		GCInterval:          30 * time.Second,
		Locktime:            time.Second,
		ProxyDelay:          800 * time.Millisecond,
		MCastSolicit:        3,
		UCastSolicit:        3,
		AppSolicit:          0,
		MCastResolicit:      0,
		GCThresh1:           128,
		GCThresh2:           512,
		GCThresh3:           1024,
		UnresQlenBytes:      212992,
	}
}

// maxThresh3 bounds the hash table so a configuration typo cannot ask for
// gigabytes.
const maxThresh3 = 1 << 20

// Validate reports the first knob that is out of range.
func (p Params) Validate() error {
	durs := []struct {
		name string
		d    time.Duration
		pos  bool
	}{
		{"base_reachable_time", p.BaseReachableTime, true},
		{"delay_first_probe_time", p.DelayFirstProbeTime, false},
		{"retrans_time", p.RetransTime, true},
		{"gc_stale_time", p.GCStaleTime, false},
		{"gc_interval", p.GCInterval, false},
		{"locktime", p.Locktime, false},
		{"proxy_delay", p.ProxyDelay, false},
	}
	for _, d := range durs {
		if d.d < 0 || (d.pos && d.d == 0) {
			return fmt.Errorf("neigh: %s %v out of range", d.name, d.d)
		}
	}
	ints := []struct {
		name string
		v    int
	}{
		{"mcast_solicit", p.MCastSolicit}, {"ucast_solicit", p.UCastSolicit},
		{"app_solicit", p.AppSolicit}, {"mcast_resolicit", p.MCastResolicit},
		{"gc_thresh1", p.GCThresh1}, {"gc_thresh2", p.GCThresh2},
		{"unres_qlen_bytes", p.UnresQlenBytes},
	}
	for _, x := range ints {
		if x.v < 0 {
			return fmt.Errorf("neigh: %s %d is negative", x.name, x.v)
		}
	}
	if p.GCThresh3 < 1 || p.GCThresh3 > maxThresh3 {
		return fmt.Errorf("neigh: gc_thresh3 %d out of range [1,%d]", p.GCThresh3, maxThresh3)
	}
	return nil
}

// PortConfig describes one port to the neighbour subsystem.
type PortConfig struct {
	Name         string
	MAC          netaddr.MAC
	Addrs        []uint32 // our addresses on the port: "is this ARP for us"
	NoARP        bool     // no ARP: one NOARP neighbour carrying our own MAC
	PointToPoint bool     // point-to-point: one NOARP neighbour carrying broadcast
	Params       Params   // zero value means DefaultParams()
}

// Stats are the neighbour table counters (ip -s neigh, /proc/net/stat/arp_cache).
type Stats struct {
	Entries            int
	Allocs             uint64
	Destroys           uint64
	Lookups            uint64
	Hits               uint64
	ResFailed          uint64
	RcvProbesMcast     uint64
	RcvProbesUcast     uint64
	PeriodicGCRuns     uint64
	ForcedGCRuns       uint64
	TableFulls         uint64
	UnresolvedDiscards uint64
	EventDrops         uint64 // events a core dropped because its ring was full
	AppProbes          uint64 // app_solicit probes due (no userspace resolver: counted only)
	SolicitErrors      uint64 // Transmitter.Solicit failures
}

// Errors callers may test with errors.Is.
var (
	ErrExist     = errors.New("entry exists")
	ErrNotFound  = errors.New("no such entry")
	ErrTableFull = errors.New("neighbour table overflow")
	ErrNoPort    = errors.New("no such port")
	ErrNoLLAddr  = errors.New("lladdr required")
	ErrNoARPPort = errors.New("port has no ARP (single NOARP neighbour)")
	ErrPerm      = errors.New("entry is PERMANENT or NOARP")
)
