package linuxcp

import (
	"errors"
	"fmt"
	"time"

	"github.com/vishvananda/netlink"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"ferry/fib"
)

func (m *Mirror) ownsRoute(r *fib.Route) bool {
	m.own.RLock()
	defer m.own.RUnlock()
	_, ok := m.routes[keyOf(r)]
	return ok
}

// mirrored is a route the mirror put in the FIB: its fingerprint, and the
// resync that last saw it in the kernel.
type mirrored struct {
	fp  uint64
	gen uint32
}

// resync makes the FIB's mirrored routes, rules and the ports' addresses
// what the kernel has now. The dump is read as it comes and applied in
// batches; routes the mirror had that the dump lacks go last.
func (m *Mirror) resync() error {
	t0 := time.Now()
	m.syncAddrs()
	m.gen++
	var chunk []fib.Route
	flush := func() {
		m.f.Batch(func(b *fib.Batch) error {
			m.own.Lock()
			defer m.own.Unlock()
			for _, r := range chunk {
				k := keyOf(&r)
				fp := fingerprint(&r)
				if old, ok := m.routes[k]; ok && old.fp == fp {
					m.routes[k] = mirrored{fp, m.gen}
					continue
				}
				if m.apply(b, fib.OpReplace, r) {
					m.routes[k] = mirrored{fp, m.gen}
				} else {
					delete(m.routes, k)
				}
			}
			return nil
		})
		chunk = chunk[:0]
	}
	err := m.ns.nl.RouteListFilteredIter(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE,
		func(kr netlink.Route) bool {
			r, why := translate(&kr, m.portOfIndex)
			if why != "" {
				m.skip(why, &kr)
				return true
			}
			if chunk = append(chunk, r); len(chunk) == batchMax {
				flush()
			}
			return true
		})
	flush()
	if err != nil {
		// What was read is applied; nothing is swept on a partial dump.
		return fmt.Errorf("list routes: %w", err)
	}
	m.f.Batch(func(b *fib.Batch) error {
		m.own.Lock()
		defer m.own.Unlock()
		for k, v := range m.routes {
			if v.gen != m.gen {
				m.apply(b, fib.OpDel, keyRoute(k))
				delete(m.routes, k)
			}
		}
		return nil
	})
	m.shrink()
	m.syncRules()
	m.syncNeighs()
	took := time.Since(t0)
	m.update(func(st *Status) {
		st.Resyncs++
		st.Routes = len(m.routes)
		st.LastResync, st.ResyncTook = time.Now().UTC().Format(time.RFC3339), took.Seconds()
	})
	m.log.Info("kernel tables mirrored", zap.String("netns", m.ns.Name), zap.Int("routes", len(m.routes)), zap.Duration("took", took))
	return nil
}

// shrink remakes the route map once a withdrawn table left it mostly
// empty: a Go map keeps its buckets, 900k routes' worth, forever.
func (m *Mirror) shrink() {
	m.peak = max(m.peak, len(m.routes))
	if m.peak < 4096 || len(m.routes) > m.peak/8 {
		return
	}
	fresh := make(map[routeKey]mirrored, len(m.routes))
	m.own.Lock()
	defer m.own.Unlock()
	for k, v := range m.routes {
		fresh[k] = v
	}
	m.routes, m.peak = fresh, len(fresh)
}

// keyRoute is the route the FIB deletes for key k: the first of its key,
// whatever its type and nexthops, which for a key the mirror owns is the
// one it put there.
func keyRoute(k routeKey) fib.Route {
	return fib.Route{Table: k.table, Dst: k.dst, Len: k.plen, Tos: k.tos, Priority: k.priority}
}

// apply makes one change in a batch; a failure is recorded, never fatal.
func (m *Mirror) apply(b *fib.Batch, op fib.Op, r fib.Route) bool {
	if err := b.Apply(fib.RouteCmd{Op: op, Route: r}); err != nil {
		if op == fib.OpDel && errors.Is(err, fib.ErrNoRoute) {
			return true // gone already (a ferryctl flush, say)
		}
		m.fail("apply", fmt.Errorf("mirror %s: %w", fib.FormatRoute(&r, m.f), err))
		return false
	}
	return true
}

// applyRoutes applies the pending notifications in one batch.
func (m *Mirror) applyRoutes() {
	m.f.Batch(func(b *fib.Batch) error {
		m.own.Lock()
		defer m.own.Unlock()
		for i := range m.pend {
			u := &m.pend[i]
			if u.Family != netlink.FAMILY_V4 {
				continue
			}
			r, why := translate(&u.Route, m.portOfIndex)
			k := keyOf(&r)
			old, had := m.routes[k]
			fp := fingerprint(&r)
			switch {
			case u.Type == unix.RTM_DELROUTE:
				if had && why == "" && old.fp == fp {
					m.apply(b, fib.OpDel, r)
					delete(m.routes, k)
				} else if had && why != "" {
					m.apply(b, fib.OpDel, keyRoute(k))
					delete(m.routes, k)
				}
			case why != "":
				m.skip(why, &u.Route)
				if had {
					// Moved to something ferry cannot take: the old
					// version must not stay.
					m.apply(b, fib.OpDel, keyRoute(k))
					delete(m.routes, k)
				}
			case had && old.fp == fp:
			default:
				if m.apply(b, fib.OpReplace, r) {
					m.routes[k] = mirrored{fp, m.gen}
				}
			}
		}
		return nil
	})
	n := len(m.pend)
	// The updates hold the kernel's routes: let them go, and a bulk
	// batch's room with them.
	clear(m.pend)
	m.pend = m.pend[:0]
	if cap(m.pend) > routeQueue {
		m.pend = nil
	}
	m.shrink()
	m.update(func(st *Status) {
		st.Events += uint64(n)
		st.Routes = len(m.routes)
	})
}
