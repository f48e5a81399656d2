package fib

import (
	"errors"
	"fmt"

	"ferry/netaddr"
)

// AddAddress assigns addr/plen to a port and adds the routes the kernel adds
// for it (fib_add_ifaddr): the local route, and for a primary address the
// connected prefix in main and, below /31, the directed broadcast.
func (f *FIB) AddAddress(port int, addr uint32, plen uint8) error {
	name := fmt.Sprintf("%s/%d", netaddr.IPv4String(addr), plen)
	if plen > 32 {
		return fmt.Errorf("address %q: invalid prefix length", name)
	}
	if addr == 0 || addr>>28 >= 0xe {
		return fmt.Errorf("address %q: not a unicast address", name)
	}
	return f.Batch(func(b *Batch) error {
		if f.portNameLocked(port) == "" {
			return fmt.Errorf("address %q: no such port %d", name, port)
		}
		p := &f.ports[port]
		for _, a := range p.addrs {
			if a.addr == addr && a.plen == plen {
				return fmt.Errorf("address %q on %s: %w", name, p.name, ErrExists)
			}
		}
		old := f.autoRoutes(port)
		p.addrs = append(p.addrs, ifaddr{addr: addr, plen: plen})
		markSecondaries(p.addrs)
		f.publishPortsLocked()
		b.changed = true
		return b.syncAuto(old, f.autoRoutes(port))
	})
}

// DelAddress removes an address and the routes it brought. A secondary of
// the same subnet becomes primary (promote_secondaries).
func (f *FIB) DelAddress(port int, addr uint32, plen uint8) error {
	name := fmt.Sprintf("%s/%d", netaddr.IPv4String(addr), plen)
	return f.Batch(func(b *Batch) error {
		if f.portNameLocked(port) == "" {
			return fmt.Errorf("address %q: no such port %d", name, port)
		}
		p := &f.ports[port]
		i := 0
		for i < len(p.addrs) && !(p.addrs[i].addr == addr && p.addrs[i].plen == plen) {
			i++
		}
		if i == len(p.addrs) {
			return fmt.Errorf("address %q on %s: cannot assign requested address", name, p.name)
		}
		old := f.autoRoutes(port)
		p.addrs = append(p.addrs[:i:i], p.addrs[i+1:]...)
		markSecondaries(p.addrs)
		f.publishPortsLocked()
		b.changed = true
		return b.syncAuto(old, f.autoRoutes(port))
	})
}

// Addresses lists a port's addresses in the order they were added. It
// reads the published snapshot: the neighbour owner asks while it sends a
// solicitation, and must not wait for a route batch.
func (f *FIB) Addresses(port int) []Prefix {
	ps := f.portSnap.Load()
	if port < 0 || port >= len(ps.all) {
		return nil
	}
	return append([]Prefix(nil), ps.all[port]...)
}

// markSecondaries flags each address whose subnet an earlier address of the
// port already has.
func markSecondaries(as []ifaddr) {
	for i := range as {
		as[i].secondary = false
		for j := 0; j < i; j++ {
			if as[j].plen == as[i].plen && (as[j].addr^as[i].addr)&netaddr.Mask(as[i].plen) == 0 {
				as[i].secondary = true
				break
			}
		}
	}
}

// autoRoutes lists the routes the kernel keeps for a port's addresses.
func (f *FIB) autoRoutes(port int) []Route {
	as := f.ports[port].addrs
	nh := func() []*Nexthop { return []*Nexthop{{Port: port, Weight: 1}} }
	var out []Route
	for _, a := range as {
		prim := a.addr
		if a.secondary {
			for _, p := range as {
				if !p.secondary && p.plen == a.plen && (p.addr^a.addr)&netaddr.Mask(a.plen) == 0 {
					prim = p.addr
					break
				}
			}
		}
		out = append(out, Route{Table: TableLocal, Dst: a.addr, Len: 32, Type: Local, Proto: ProtoKernel,
			Scope: ScopeHost, Prefsrc: prim, Nexthops: nh()})
		if a.secondary {
			continue
		}
		net := a.addr & netaddr.Mask(a.plen)
		if net != 0 && (net != a.addr || a.plen < 32) {
			out = append(out, Route{Table: TableMain, Dst: net, Len: a.plen, Type: Unicast, Proto: ProtoKernel,
				Scope: ScopeLink, Prefsrc: a.addr, Nexthops: nh()})
		}
		if a.plen < 31 {
			out = append(out, Route{Table: TableLocal, Dst: net | ^netaddr.Mask(a.plen), Len: 32, Type: Broadcast,
				Proto: ProtoKernel, Scope: ScopeLink, Prefsrc: a.addr, Nexthops: nh()})
		}
	}
	return out
}

func autoID(r *Route) string {
	return fmt.Sprintf("%d %d %d/%d %d %d", r.Table, r.Type, r.Dst, r.Len, r.Prefsrc, r.Nexthops[0].Port)
}

// syncAuto deletes the automatic routes that went away and appends the new
// ones; a duplicate (another address brings the same route) is no error.
func (b *Batch) syncAuto(old, cur []Route) error {
	have := make(map[string]bool, len(cur))
	for i := range cur {
		have[autoID(&cur[i])] = true
	}
	had := make(map[string]bool, len(old))
	for i := range old {
		id := autoID(&old[i])
		had[id] = true
		if have[id] {
			continue
		}
		r := old[i]
		r.given = givenParsed | givenType | givenScope | givenProto
		if err := b.del(&r); err != nil && !isErr(err, ErrNoRoute) {
			return err
		}
	}
	for i := range cur {
		if had[autoID(&cur[i])] {
			continue
		}
		r := cur[i]
		if err := b.insert(&r, OpAppend); err != nil && !isErr(err, ErrExists) {
			return err
		}
	}
	return nil
}

func isErr(err, target error) bool { return errors.Is(err, target) }
