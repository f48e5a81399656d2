package linuxcp

import (
	"net"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"ferry/cache"
	"ferry/fib"
	"ferry/internal/bgptable"
)

// benchMirror is a mirror over a FIB with two ports whose kernel
// interfaces have indexes 10 and 11, without a namespace: what
// applyRoutes does, apart from reading netlink.
func benchMirror(tb testing.TB) (*Mirror, *fib.FIB) {
	f := fib.New(&cache.GenID{}, 1)
	for i, name := range []string{"port0", "port1"} {
		if err := f.SetPort(i, name, 1500, true); err != nil {
			tb.Fatal(err)
		}
	}
	if err := f.AddAddress(0, 0xc0000201, 24); err != nil {
		tb.Fatal(err)
	}
	if err := f.AddAddress(1, 0xc6336401, 24); err != nil {
		tb.Fatal(err)
	}
	p := &Path{}
	p.byIndex.Store(&map[int]int{10: 0, 11: 1})
	return NewMirror(&Namespace{}, f, p, nil, zap.NewNop()), f
}

func updates(ps []fib.Prefix, typ uint16) []netlink.RouteUpdate {
	gw := net.IPv4(198, 51, 100, 2)
	out := make([]netlink.RouteUpdate, len(ps))
	for i, p := range ps {
		dst := &net.IPNet{IP: net.IPv4(byte(p.Addr>>24), byte(p.Addr>>16), byte(p.Addr>>8), byte(p.Addr)), Mask: net.CIDRMask(int(p.Len), 32)}
		out[i] = netlink.RouteUpdate{Type: typ, Route: netlink.Route{Family: netlink.FAMILY_V4, Dst: dst, Gw: gw, LinkIndex: 11,
			Table: unix.RT_TABLE_MAIN, Type: unix.RTN_UNICAST, Protocol: 186}}
	}
	return out
}

// feed applies updates as the notification loop does, in batches.
func (m *Mirror) feed(us []netlink.RouteUpdate) {
	for len(us) > 0 {
		n := min(len(us), batchMax)
		m.pend = append(m.pend[:0], us[:n]...)
		m.applyRoutes()
		us = us[n:]
	}
}

// Notifications are applied as the kernel sends them: adds, a replace
// that changes a route, deletes.
func TestMirrorApplies(t *testing.T) {
	m, f := benchMirror(t)
	ps := bgptable.Generate(20000, 3)
	m.feed(updates(ps, unix.RTM_NEWROUTE))
	if n := f.Count(fib.TableMain); n != 20000+2 || m.Status().Routes != 20000 {
		t.Fatalf("%d routes in main, %d mirrored", n, m.Status().Routes)
	}
	moved := updates(ps[:1], unix.RTM_NEWROUTE)
	moved[0].Type = unix.RTM_NEWROUTE
	moved[0].Route.Type = unix.RTN_BLACKHOLE
	moved[0].Route.Gw, moved[0].Route.LinkIndex = nil, 0
	m.feed(moved)
	var k fib.Key
	var res fib.Result
	k.Dst = ps[0].Addr
	f.Lookup(&k, &res)
	if res.Type != fib.Blackhole {
		t.Fatalf("replaced route looks up as %v", res.Type)
	}
	m.feed(moved[:0])
	del := updates(ps[1:], unix.RTM_DELROUTE)
	m.feed(del)
	del0 := moved
	del0[0].Type = unix.RTM_DELROUTE
	m.feed(del0)
	if n := f.Count(fib.TableMain); n != 2 || m.Status().Routes != 0 {
		t.Fatalf("after the deletes: %d routes in main, %d mirrored", n, m.Status().Routes)
	}
	// A route moved to another device goes.
	m.feed(updates(ps[:1], unix.RTM_NEWROUTE))
	foreign := updates(ps[:1], unix.RTM_NEWROUTE)
	foreign[0].Route.LinkIndex = 99
	m.feed(foreign)
	if n := f.Count(fib.TableMain); n != 2 || m.Status().Skipped[skipForeign] != 1 {
		t.Fatalf("route moved to another device: %d routes, status %+v", f.Count(fib.TableMain), m.Status())
	}
}

// A full table arriving as notifications, then withdrawn: route changes
// a second the mirror applies (translation and FIB batches).
func BenchmarkMirror900k(b *testing.B) {
	ps := bgptable.Generate(900000, 1)
	add, del := updates(ps, unix.RTM_NEWROUTE), updates(ps, unix.RTM_DELROUTE)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m, f := benchMirror(b)
		t0 := time.Now()
		m.feed(add)
		loaded := time.Since(t0)
		if f.Count(fib.TableMain) < 890000 {
			b.Fatalf("%d routes", f.Count(fib.TableMain))
		}
		t1 := time.Now()
		m.feed(del)
		b.ReportMetric(float64(len(add))/loaded.Seconds(), "adds/s")
		b.ReportMetric(float64(len(del))/time.Since(t1).Seconds(), "dels/s")
	}
}

func BenchmarkMirror200k(b *testing.B) {
	ps := bgptable.Generate(200000, 1)
	add := updates(ps, unix.RTM_NEWROUTE)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m, _ := benchMirror(b)
		t0 := time.Now()
		m.feed(add)
		b.ReportMetric(float64(len(add))/time.Since(t0).Seconds(), "adds/s")
	}
}
