package cache

import "sync/atomic"

// Kind says how a packet continues once routed.
type Kind uint8

const (
	Forward     Kind = iota // send out Port, to Gateway or to the destination itself
	Local                   // deliver to the router itself
	Broadcast               // deliver locally as a broadcast
	Blackhole               // drop silently
	Unreachable             // drop, ICMP host/net unreachable
	Prohibit                // drop, ICMP administratively prohibited
)

var kindNames = [...]string{"forward", "local", "broadcast", "blackhole", "unreachable", "prohibit"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// Decision is a routing decision (the kernel's rtable). It is immutable once
// published and holds no neighbour: the neighbour is looked up at send time.
type Decision struct {
	Kind    Kind
	Port    int32  // output port index; -1 when the packet does not leave
	Gateway uint32 // next hop; 0 means the destination itself is on-link
	Src     uint32 // preferred source address
	MTU     uint32 // path MTU; 0 means the port's MTU
	Table   uint32 // table the route came from
	Genid   uint32 // generation the decision was made under
	// ICMPType and ICMPCode are sent back for Unreachable and Prohibit.
	ICMPType, ICMPCode uint8
}

// NextHop returns the address the packet is handed to on the link.
func (d *Decision) NextHop(dst uint32) uint32 {
	if d.Gateway != 0 {
		return d.Gateway
	}
	return dst
}

// coreSlot keeps each core's output decision on its own cache line.
type coreSlot struct {
	d atomic.Pointer[Decision]
	_ [56]byte
}

// slots are the cached decisions of a nexthop or of one of its exceptions:
// one for received packets and one per core for packets the router sends.
type slots struct {
	input  atomic.Pointer[Decision]
	output []coreSlot
}

// Input returns the cached input decision if it is still valid.
func (s *slots) Input(g *GenID) *Decision {
	if d := s.input.Load(); g.Valid(d) {
		return d
	}
	return nil
}

// SetInput publishes a new input decision.
func (s *slots) SetInput(d *Decision) { s.input.Store(d) }

// Output returns core's cached output decision if it is still valid.
func (s *slots) Output(g *GenID, core int) *Decision {
	if core < 0 || core >= len(s.output) {
		return nil
	}
	if d := s.output[core].d.Load(); g.Valid(d) {
		return d
	}
	return nil
}

// SetOutput publishes core's output decision; only that core writes its slot.
func (s *slots) SetOutput(core int, d *Decision) {
	if core >= 0 && core < len(s.output) {
		s.output[core].d.Store(d)
	}
}

// NhCache is the decision cache every nexthop carries, and its exceptions.
type NhCache struct {
	slots
	exc atomic.Pointer[ExceptionTable] // created on the first exception
}

// NewNhCache sizes the per-core output slots.
func NewNhCache(cores int) *NhCache {
	if cores < 1 {
		cores = 1
	}
	return &NhCache{slots: slots{output: make([]coreSlot, cores)}}
}

// Exceptions returns the nexthop's exception table, nil while it has none.
func (c *NhCache) Exceptions() *ExceptionTable { return c.exc.Load() }

// ExceptionsForUpdate returns the table, creating it on first use.
func (c *NhCache) ExceptionsForUpdate() *ExceptionTable {
	if t := c.exc.Load(); t != nil {
		return t
	}
	t := &ExceptionTable{cores: len(c.output)}
	if c.exc.CompareAndSwap(nil, t) {
		return t
	}
	return c.exc.Load()
}
