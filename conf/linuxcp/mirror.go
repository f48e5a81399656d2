package linuxcp

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
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

func (m *Mirror) portOfIndex(ifindex int) (int, bool) { return m.path.PortOf(ifindex) }
