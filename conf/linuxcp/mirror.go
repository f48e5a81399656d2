package linuxcp

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"ferry/fib"
)

// AddrSink takes the addresses the kernel interfaces gain and lose: they
// become the ports' (the FIB's local and connected routes follow); and
// the permanent neighbours made on them ('ip neigh add ... nud
// permanent'), which become the ports' too. The kernel resolves its
// other neighbours for itself, as the data plane does.
type AddrSink interface {
	SetAddress(port int, addr uint32, plen uint8, add bool) error
	SetNeighbor(port int, ip uint32, mac [6]byte, add bool) error
}

// Mirror keeps the FIB in step with the control namespace's kernel:
// routes whose nexthops are all on ports' kernel interfaces (unicast,
// blackhole, unreachable, prohibit, throw, multipath, every table),
// policy rules, and the interfaces' addresses. A full resync runs at
// start and after the kernel dropped notifications (ENOBUFS).
type Mirror struct {
	ns    *Namespace
	f     *fib.FIB
	path  *Path
	addrs AddrSink
	log   *zap.Logger

	// Owned by the run loop.
	routes map[routeKey]mirrored // what the mirror put in the FIB
	gen    uint32                // the current resync's mark
	peak   int                   // the most routes since routes was made
	rules  map[string]bool       // their 'ip rule' arguments
	neighs map[neighKey][6]byte  // permanent neighbours mirrored
	warned map[string]time.Time  // last warning by reason
	pend   []netlink.RouteUpdate // updates of the batch being applied

	mu sync.Mutex
	st Status

	// own guards routes and ruleText for the control API's readers; the
	// run loop writes them under it.
	own      sync.RWMutex
	ruleText map[string]bool // mirrored rules as FormatRule prints them
}

func (m *Mirror) ownsRoute(r *fib.Route) bool {
	m.own.RLock()
	defer m.own.RUnlock()
	_, ok := m.routes[keyOf(r)]
	return ok
}

func (m *Mirror) ownsRule(text string) bool {
	m.own.RLock()
	defer m.own.RUnlock()
	return m.ruleText[text]
}

// mirrored is a route the mirror put in the FIB: its fingerprint, and the
// resync that last saw it in the kernel.
type mirrored struct {
	fp  uint64
	gen uint32
}

// Status is what 'ferryctl cp status' shows.
type Status struct {
	Running     bool              `json:"running"`
	Netns       string            `json:"netns"`
	Routes      int               `json:"routes_mirrored"`
	Rules       int               `json:"rules_mirrored"`
	Resyncs     uint64            `json:"resyncs"`
	Events      uint64            `json:"route_events"`
	Skipped     map[string]uint64 `json:"skipped"`
	Failed      uint64            `json:"failed"`
	LastError   string            `json:"last_error,omitempty"`
	LastErrorAt string            `json:"last_error_at,omitempty"`
	LastResync  string            `json:"last_resync,omitempty"`
	ResyncTook  float64           `json:"last_resync_s"`
}

// rcvBuf is the notification sockets' buffer: a full table arriving at
// once must not overrun it before the loop reads.
const rcvBuf = 64 << 20

// batchMax route updates go into one FIB batch (one publish, one genid
// bump); the loop takes what has arrived, up to that, waiting up to
// batchWait for more while they come in bulk. routeQueue updates wait
// decoded between the netlink socket and the loop.
const (
	batchMax   = 65536
	batchWait  = 20 * time.Millisecond
	routeQueue = 8192
)

// NewMirror mirrors ns's kernel into f; path maps the kernel interfaces
// to ports.
func NewMirror(ns *Namespace, f *fib.FIB, path *Path, addrs AddrSink, log *zap.Logger) *Mirror {
	return &Mirror{ns: ns, f: f, path: path, addrs: addrs, log: log,
		routes: map[routeKey]mirrored{}, rules: map[string]bool{}, ruleText: map[string]bool{}, neighs: map[neighKey][6]byte{}, warned: map[string]time.Time{},
		st: Status{Netns: ns.Name, Skipped: map[string]uint64{}}}
}

// Status reports the mirror.
func (m *Mirror) Status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.st
	st.Skipped = map[string]uint64{}
	for k, v := range m.st.Skipped {
		st.Skipped[k] = v
	}
	return st
}

func (m *Mirror) update(fn func(st *Status)) {
	m.mu.Lock()
	fn(&m.st)
	m.mu.Unlock()
}

// fail records an error and logs it at most once a reason every 10 s.
func (m *Mirror) fail(reason string, err error) {
	now := time.Now()
	m.update(func(st *Status) {
		st.Failed++
		st.LastError, st.LastErrorAt = err.Error(), now.UTC().Format(time.RFC3339)
	})
	m.warn(reason, err.Error())
}

func (m *Mirror) warn(reason, msg string, fields ...zap.Field) {
	now := time.Now()
	if now.Sub(m.warned[reason]) < 10*time.Second {
		return
	}
	m.warned[reason] = now
	m.log.Warn(msg, append(fields, zap.String("reason", reason), zap.String("netns", m.ns.Name))...)
}

func (m *Mirror) skip(reason string, kr *netlink.Route) {
	m.update(func(st *Status) { st.Skipped[reason]++ })
	if reason == skipForeign || reason == skipTooMany || reason == skipType {
		m.warn(reason, "kernel route not mirrored (warned once in 10 s a reason)", zap.String("route", kr.String()))
	}
}

// Run mirrors until ctx ends: subscribe, resync, follow the notifications;
// when the kernel drops some, again from the start.
func (m *Mirror) Run(ctx context.Context) {
	m.update(func(st *Status) { st.Running = true })
	defer m.update(func(st *Status) { st.Running = false })
	for ctx.Err() == nil {
		err := m.session(ctx)
		if ctx.Err() != nil {
			return
		}
		m.fail("resync", fmt.Errorf("netlink: %w: resyncing", err))
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

var errOverrun = errors.New("notifications lost")

// session subscribes first, then resyncs, so no change falls between the
// dump and the notifications; it returns when a subscription fails.
func (m *Mirror) session(ctx context.Context) error {
	done := make(chan struct{})
	defer close(done)
	h := m.ns.handle
	var nsh *netns.NsHandle
	if m.ns.Name != "" {
		nsh = &h
	}
	errs := make(chan error, 4)
	onErr := func(err error) {
		select {
		case errs <- err:
		default:
		}
	}
	rch := make(chan netlink.RouteUpdate, routeQueue)
	if err := netlink.RouteSubscribeWithOptions(rch, done, netlink.RouteSubscribeOptions{
		Namespace: nsh, ErrorCallback: onErr, ReceiveBufferSize: rcvBuf, ReceiveBufferForceSize: true}); err != nil {
		return fmt.Errorf("subscribe to routes: %w", err)
	}
	ach := make(chan netlink.AddrUpdate, 256)
	if err := netlink.AddrSubscribeWithOptions(ach, done, netlink.AddrSubscribeOptions{
		Namespace: nsh, ErrorCallback: onErr, ReceiveBufferSize: 1 << 20}); err != nil {
		return fmt.Errorf("subscribe to addresses: %w", err)
	}
	ruleSig, err := m.subscribeRules(done, nsh)
	if err != nil {
		return err
	}
	nch := make(chan netlink.NeighUpdate, 256)
	if err := netlink.NeighSubscribeWithOptions(nch, done, netlink.NeighSubscribeOptions{
		Namespace: nsh, ErrorCallback: onErr}); err != nil {
		return fmt.Errorf("subscribe to neighbours: %w", err)
	}
	if err := m.resync(); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errs:
			return err
		case u, ok := <-rch:
			if !ok {
				return errOverrun
			}
			m.pend = append(m.pend[:0], u)
			if !m.collect(rch) {
				m.applyRoutes()
				return errOverrun
			}
			m.applyRoutes()
		case u, ok := <-ach:
			if !ok {
				return errOverrun
			}
			m.applyAddr(u)
		case _, ok := <-ruleSig:
			if !ok {
				return errOverrun
			}
			m.syncRules()
		case u, ok := <-nch:
			if !ok {
				return errOverrun
			}
			m.applyNeigh(u.Type == unix.RTM_NEWNEIGH, &u.Neigh)
		}
	}
}

// collect adds what has arrived to the pending batch. Under load (a full
// table arriving) it waits a little for more, up to batchMax: the FIB
// rebuilds each changed /16 block once a batch, so large batches cost
// far less a route. A single change goes at once. False: the
// subscription ended.
func (m *Mirror) collect(rch <-chan netlink.RouteUpdate) bool {
	var wait <-chan time.Time
	for len(m.pend) < batchMax {
		select {
		case u, ok := <-rch:
			if !ok {
				return false
			}
			m.pend = append(m.pend, u)
			continue
		default:
		}
		if len(m.pend) < routeQueue/2 {
			return true
		}
		if wait == nil {
			wait = time.After(batchWait)
		}
		select {
		case u, ok := <-rch:
			if !ok {
				return false
			}
			m.pend = append(m.pend, u)
		case <-wait:
			return true
		}
	}
	return true
}

// subscribeRules signals on every rule change in the namespace: rules
// are few, so each change resyncs them all.
func (m *Mirror) subscribeRules(done <-chan struct{}, nsh *netns.NsHandle) (<-chan struct{}, error) {
	target := netns.None()
	if nsh != nil {
		target = *nsh
	}
	s, err := nl.SubscribeAt(target, netns.None(), unix.NETLINK_ROUTE, unix.RTNLGRP_IPV4_RULE)
	if err != nil {
		return nil, fmt.Errorf("subscribe to rules: %w", err)
	}
	sig := make(chan struct{}, 1)
	go func() {
		<-done
		s.Close()
	}()
	go func() {
		defer close(sig)
		for {
			if _, _, err := s.Receive(); err != nil {
				return
			}
			select {
			case sig <- struct{}{}:
			default:
			}
		}
	}()
	return sig, nil
}

func (m *Mirror) portOfIndex(ifindex int) (int, bool) { return m.path.PortOf(ifindex) }

func (m *Mirror) portOfIface(name string) (string, bool) {
	for port, st := range m.path.States() {
		if st.Iface == name {
			return m.f.PortName(port), true
		}
	}
	return "", false
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

// syncRules makes the FIB's mirrored rules the kernel's.
func (m *Mirror) syncRules() {
	krs, err := m.ns.nl.RuleList(netlink.FAMILY_V4)
	if err != nil {
		m.fail("rules", fmt.Errorf("list rules: %w", err))
		return
	}
	want := map[string]bool{}
	for i := range krs {
		if defaultRule(&krs[i]) {
			continue
		}
		args, ok := ruleArgs(&krs[i], m.portOfIface)
		if !ok {
			m.update(func(st *Status) { st.Skipped["rule"]++ })
			m.warn("rule", "kernel rule not mirrored", zap.String("rule", krs[i].String()))
			continue
		}
		want[strings.Join(args, " ")] = true
	}
	for key := range m.rules {
		if !want[key] {
			if ru, err := fib.ParseRule(strings.Fields(key), m.f); err == nil {
				if err := m.f.DelRule(ru); err != nil {
					m.fail("rules", fmt.Errorf("mirror rule del %s: %w", key, err))
				}
				m.own.Lock()
				delete(m.ruleText, fib.FormatRule(&ru, m.f))
				m.own.Unlock()
			}
			delete(m.rules, key)
		}
	}
	keys := make([]string, 0, len(want))
	for key := range want {
		keys = append(keys, key)
	}
	slices.Sort(keys)
	for _, key := range keys {
		if m.rules[key] {
			continue
		}
		ru, err := fib.ParseRule(strings.Fields(key), m.f)
		if err == nil {
			err = m.f.AddRule(ru)
		}
		if err != nil {
			m.fail("rules", fmt.Errorf("mirror rule %s: %w", key, err))
			continue
		}
		m.rules[key] = true
		m.own.Lock()
		m.ruleText[fib.FormatRule(&ru, m.f)] = true
		m.own.Unlock()
	}
	m.update(func(st *Status) { st.Rules = len(m.rules) })
}

// syncAddrs gives each port the IPv4 addresses of its kernel interface.
func (m *Mirror) syncAddrs() {
	for port, st := range m.path.States() {
		link, err := m.ns.nl.LinkByIndex(st.Index)
		if err != nil {
			continue
		}
		kas, err := m.ns.nl.AddrList(link, netlink.FAMILY_V4)
		if err != nil {
			m.fail("addresses", fmt.Errorf("list addresses of %s: %w", st.Iface, err))
			continue
		}
		type pfx struct {
			a uint32
			l uint8
		}
		have := map[pfx]bool{}
		for _, a := range m.f.Addresses(port) {
			have[pfx{a.Addr, a.Len}] = true
		}
		want := map[pfx]bool{}
		for _, ka := range kas {
			a, ok := ipv4(ka.IP)
			if !ok {
				continue
			}
			ones, _ := ka.Mask.Size()
			want[pfx{a, uint8(ones)}] = true
		}
		for p := range want {
			if !have[p] {
				m.setAddr(port, p.a, p.l, true)
			}
		}
		for p := range have {
			if !want[p] {
				m.setAddr(port, p.a, p.l, false)
			}
		}
	}
}

func (m *Mirror) applyAddr(u netlink.AddrUpdate) {
	port, ok := m.portOfIndex(u.LinkIndex)
	if !ok {
		return
	}
	a, ok := ipv4(u.LinkAddress.IP)
	if !ok {
		return
	}
	ones, _ := u.LinkAddress.Mask.Size()
	have := false
	for _, x := range m.f.Addresses(port) {
		have = have || x.Addr == a && x.Len == uint8(ones)
	}
	if have != u.NewAddr {
		m.setAddr(port, a, uint8(ones), u.NewAddr)
	}
}

func (m *Mirror) setAddr(port int, a uint32, plen uint8, add bool) {
	if err := m.addrs.SetAddress(port, a, plen, add); err != nil {
		m.fail("addresses", fmt.Errorf("port %s address %s/%d: %w", m.f.PortName(port), ipString(a), plen, err))
		return
	}
	verb := "address added from the kernel"
	if !add {
		verb = "address removed as in the kernel"
	}
	m.log.Info(verb, zap.String("port", m.f.PortName(port)), zap.String("address", fmt.Sprintf("%s/%d", ipString(a), plen)))
}

// neighKey is a mirrored neighbour.
type neighKey struct {
	port int
	ip   uint32
}

// permanent is a kernel neighbour entry the mirror takes: IPv4, on a
// port's interface, NUD_PERMANENT, with a link-layer address.
func (m *Mirror) permanent(n *netlink.Neigh) (neighKey, [6]byte, bool) {
	var mac [6]byte
	port, ok := m.portOfIndex(n.LinkIndex)
	if !ok {
		return neighKey{}, mac, false
	}
	ip, ok := ipv4(n.IP)
	if !ok || n.State&netlink.NUD_PERMANENT == 0 || len(n.HardwareAddr) != 6 {
		return neighKey{port, ip}, mac, false
	}
	copy(mac[:], n.HardwareAddr)
	return neighKey{port, ip}, mac, true
}

func (m *Mirror) applyNeigh(add bool, n *netlink.Neigh) {
	k, mac, ok := m.permanent(n)
	old, had := m.neighs[k]
	switch {
	case add && ok && (!had || old != mac):
		if err := m.addrs.SetNeighbor(k.port, k.ip, mac, true); err != nil {
			m.fail("neighbours", fmt.Errorf("neighbour %s: %w", ipString(k.ip), err))
			return
		}
		m.neighs[k] = mac
	case had && (!add || !ok):
		if err := m.addrs.SetNeighbor(k.port, k.ip, mac, false); err != nil {
			m.fail("neighbours", fmt.Errorf("neighbour %s: %w", ipString(k.ip), err))
		}
		delete(m.neighs, k)
	}
}

// syncNeighs makes the mirrored permanent neighbours the kernel's.
func (m *Mirror) syncNeighs() {
	kns, err := m.ns.nl.NeighList(0, netlink.FAMILY_V4)
	if err != nil {
		m.fail("neighbours", fmt.Errorf("list neighbours: %w", err))
		return
	}
	seen := map[neighKey]bool{}
	for i := range kns {
		if k, _, ok := m.permanent(&kns[i]); ok {
			seen[k] = true
			m.applyNeigh(true, &kns[i])
		}
	}
	for k, mac := range m.neighs {
		if !seen[k] {
			if err := m.addrs.SetNeighbor(k.port, k.ip, mac, false); err != nil {
				m.fail("neighbours", err)
			}
			delete(m.neighs, k)
		}
	}
}
