package fib

import (
	"errors"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"ferry/cache"
	"ferry/netaddr"
)

func ip(s string) uint32 {
	a, err := ParseAddr(s)
	if err != nil {
		panic(err)
	}
	return a
}

// testFIB has port0 192.0.2.1/24 and port1 198.51.100.1/24, both up.
func testFIB(t testing.TB) *FIB {
	t.Helper()
	f := New(&cache.GenID{}, 2)
	must(t, f.SetPort(0, "port0", 1500, true))
	must(t, f.SetPort(1, "port1", 9000, true))
	must(t, f.AddAddress(0, ip("192.0.2.1"), 24))
	must(t, f.AddAddress(1, ip("198.51.100.1"), 24))
	return f
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func run(t testing.TB, f *FIB, verb, line string) error {
	t.Helper()
	r, err := ParseRoute(strings.Fields(line), f)
	if err != nil {
		return err
	}
	switch verb {
	case "add":
		return f.Add(r)
	case "del":
		return f.Del(r)
	case "replace":
		return f.Replace(r)
	case "change":
		return f.Change(r)
	case "append":
		return f.Append(r)
	case "prepend":
		return f.Prepend(r)
	}
	t.Fatalf("verb %q", verb)
	return nil
}

func show(f *FIB, table uint32) string {
	var lines []string
	for _, r := range f.Routes(table) {
		lines = append(lines, FormatRoute(r, f))
	}
	return strings.Join(lines, "\n")
}

func get(f *FIB, dst string) string {
	k := Key{Dst: ip(dst), Iif: -1, Oif: -1, Hash: FlowHash(0, ip(dst))}
	var res Result
	f.LookupOutput(&k, &res)
	return FormatGet(k.Dst, &k, &res, f)
}

func TestAutoRoutes(t *testing.T) {
	f := testFIB(t)
	want := "192.0.2.0/24 dev port0 proto kernel scope link src 192.0.2.1\n" +
		"198.51.100.0/24 dev port1 proto kernel scope link src 198.51.100.1"
	if got := show(f, TableMain); got != want {
		t.Errorf("main:\n%s\nwant:\n%s", got, want)
	}
	want = "local 192.0.2.1 dev port0 proto kernel scope host src 192.0.2.1\n" +
		"broadcast 192.0.2.255 dev port0 proto kernel scope link src 192.0.2.1\n" +
		"local 198.51.100.1 dev port1 proto kernel scope host src 198.51.100.1\n" +
		"broadcast 198.51.100.255 dev port1 proto kernel scope link src 198.51.100.1"
	if got := show(f, TableLocal); got != want {
		t.Errorf("local:\n%s\nwant:\n%s", got, want)
	}
	// A secondary address: only its local route, with the primary as source.
	must(t, f.AddAddress(0, ip("192.0.2.9"), 24))
	if got := show(f, TableLocal); !strings.Contains(got, "local 192.0.2.9 dev port0 proto kernel scope host src 192.0.2.1") {
		t.Errorf("secondary:\n%s", got)
	}
	// /31 and /32: no broadcast; /32 no prefix route either.
	must(t, f.AddAddress(1, ip("10.0.0.0"), 31))
	must(t, f.AddAddress(1, ip("10.9.9.9"), 32))
	if got := show(f, TableMain); !strings.Contains(got, "10.0.0.0/31 dev port1") || strings.Contains(got, "10.9.9.9") {
		t.Errorf("main:\n%s", got)
	}
	if got := show(f, TableLocal); strings.Contains(got, "10.0.0.1") || !strings.Contains(got, "local 10.9.9.9 dev port1") {
		t.Errorf("local:\n%s", got)
	}
	if !f.IsLocal(ip("10.9.9.9")) || !f.IsLocal(ip("192.0.2.9")) || f.IsLocal(ip("192.0.2.2")) || f.IsLocal(ip("192.0.2.255")) {
		t.Error("IsLocal")
	}
	// Deleting the primary promotes the secondary.
	must(t, f.DelAddress(0, ip("192.0.2.1"), 24))
	want = "local 192.0.2.9 dev port0 proto kernel scope host src 192.0.2.9\n" +
		"broadcast 192.0.2.255 dev port0 proto kernel scope link src 192.0.2.9"
	if got := show(f, TableLocal); !strings.HasPrefix(got, "local 10.0.0.0") || !strings.Contains(got, want) {
		t.Errorf("after promote:\n%s", got)
	}
	if got := show(f, TableMain); !strings.Contains(got, "192.0.2.0/24 dev port0 proto kernel scope link src 192.0.2.9") {
		t.Errorf("after promote main:\n%s", got)
	}
	must(t, f.DelAddress(0, ip("192.0.2.9"), 24))
	if got := show(f, TableLocal); strings.Contains(got, "192.0.2") {
		t.Errorf("after delete:\n%s", got)
	}
	if err := f.DelAddress(0, ip("192.0.2.9"), 24); err == nil {
		t.Error("delete of missing address succeeded")
	}
	if got := f.Addresses(1); len(got) != 3 || got[0] != (Prefix{Addr: ip("198.51.100.1"), Len: 24}) {
		t.Errorf("Addresses = %v", got)
	}
}

func TestRouteRoundTrip(t *testing.T) {
	f := testFIB(t)
	must(t, f.SetPort(2, "port2", 1500, true))
	cases := []struct{ in, out string }{
		{"203.0.113.0/24 via 198.51.100.2 dev port1", ""},
		{"203.0.114.0/24 via 198.51.100.2", "203.0.114.0/24 via 198.51.100.2 dev port1"},
		{"default via 192.0.2.254", "default via 192.0.2.254 dev port0"},
		{"blackhole 10.0.0.0/8", ""},
		{"unreachable 10.1.0.0/16 metric 10", ""},
		{"prohibit 10.4.0.0/16 proto static", ""},
		{"10.2.0.0/16 nexthop via 192.0.2.2 weight 1 nexthop via 198.51.100.2 weight 2",
			"10.2.0.0/16\n\tnexthop via 192.0.2.2 dev port0 weight 1\n\tnexthop via 198.51.100.2 dev port1 weight 2"},
		{"10.5.0.0/16 dev port2", "10.5.0.0/16 dev port2 scope link"},
		{"10.6.0.0/16 via 10.99.0.1 dev port2 onlink", ""},
		{"10.7.0.0/16 via 192.0.2.3 src 198.51.100.1 metric 5 proto static mtu lock 1400",
			"10.7.0.0/16 via 192.0.2.3 dev port0 proto static src 198.51.100.1 metric 5 mtu lock 1400"},
		{"to 10.8.0.0/16 via 192.0.2.3 protocol 99 preference 7 mtu 1280",
			"10.8.0.0/16 via 192.0.2.3 dev port0 proto openr metric 7 mtu 1280"},
		{"10.10.0.0/16 tos 0x10 via 192.0.2.3", "10.10.0.0/16 tos 0x10 via 192.0.2.3 dev port0"},
		{"10.11.0.0/16 dsfield 8 via 192.0.2.3 scope global", "10.11.0.0/16 tos 0x08 via 192.0.2.3 dev port0"},
		{"10/8 via 192.0.2.3 table 100", "10.0.0.0/8 via 192.0.2.3 dev port0"},
		{"throw 10.3.0.0/16 table 100", "throw 10.3.0.0/16"},
		{"local 10.9.9.9 dev port0 table local", "local 10.9.9.9 dev port0 scope host"},
		{"broadcast 10.9.9.255 dev port0", "broadcast 10.9.9.255 dev port0 scope link"},
		{"unicast 10.12.0.0/16 via 192.0.2.3 dev port0", "10.12.0.0/16 via 192.0.2.3 dev port0"},
		{"anycast 10.13.0.1 dev port0", "anycast 10.13.0.1 dev port0 scope link"},
		{"10.14.0.0/16 nexthop via 192.0.2.7", "10.14.0.0/16 via 192.0.2.7 dev port0"},
	}
	for _, c := range cases {
		r, err := ParseRoute(strings.Fields(c.in), f)
		if err != nil {
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		if err := f.Add(r); err != nil {
			t.Errorf("add %q: %v", c.in, err)
			continue
		}
		want := c.out
		if want == "" {
			want = c.in
		}
		var got string
		for _, x := range f.Routes(r.Table) {
			if x.Dst == r.Dst && x.Len == r.Len && x.Tos == r.Tos {
				got = FormatRoute(x, f)
			}
		}
		if got != want {
			t.Errorf("%q:\n got %q\nwant %q", c.in, got, want)
		}
		// The printed form parses back to the same route.
		line := strings.Fields(strings.ReplaceAll(got, "\n\t", " "))
		r2, err := ParseRoute(line, f)
		if err != nil {
			t.Errorf("reparse %q: %v", got, err)
			continue
		}
		r2.Table = r.Table
		if err := f.Add(r2); !errors.Is(err, ErrExists) {
			t.Errorf("re-add of %q: %v, want EEXIST", got, err)
		}
	}
}

func TestParseErrors(t *testing.T) {
	f := testFIB(t)
	cases := []struct{ in, want string }{
		{"", "no destination prefix"},
		{"10.0.0.0/8 dev eth9", `cannot find device "eth9"`},
		{"10.0.0.0/8 via 1.2.3", `argument "1.2.3" is wrong`},
		{"10.0.0.0/33 dev port0", `any valid prefix is expected rather than "10.0.0.0/33"`},
		{"10.0.0.1/8 dev port0", "invalid prefix for given prefix length"},
		{"10.0.0.0/8 metric x dev port0", `argument "x" is wrong: "metric" value is invalid`},
		{"10.0.0.0/8 dev port0 foo", `either "to" is duplicate, or "foo" is a garbage`},
		{"bogus", `any valid prefix is expected rather than "bogus"`},
		{"10.0.0.0/8 table", "command line is not complete"},
		{"10.0.0.0/8 scope planet dev port0", `argument "planet" is wrong`},
		{"10.0.0.0/8 nexthop via 192.0.2.2 weight 0", `argument "0" is wrong: "weight" is invalid`},
		{"10.0.0.0/8 via 192.0.2.2 nexthop via 192.0.2.3", `"nexthop" after "via"`},
		{"10.0.0.0/8 mtu lock", "command line is not complete"},
	}
	for _, c := range cases {
		_, err := ParseRoute(strings.Fields(c.in), f)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: err %v, want %q", c.in, err, c.want)
		}
	}
}

func TestApplyErrors(t *testing.T) {
	f := testFIB(t)
	must(t, run(t, f, "add", "203.0.113.0/24 via 198.51.100.2"))
	cases := []struct {
		verb, in string
		want     error
		msg      string
	}{
		{"add", "203.0.113.0/24 via 198.51.100.3", syscall.EEXIST, "file exists"},
		{"del", "203.0.114.0/24", syscall.ESRCH, "no such process"},
		{"del", "203.0.113.0/24 via 198.51.100.9", syscall.ESRCH, ""},
		{"change", "203.0.115.0/24 via 198.51.100.2", syscall.ENOENT, ""},
		{"add", "10.0.0.0/8 via 203.0.113.1", nil, "invalid gateway"},
		{"add", "10.0.0.0/8 via 10.0.0.1", nil, "invalid gateway"},
		{"add", "10.0.0.0/8 via 192.0.2.2 dev port1", nil, "invalid gateway"},
		{"add", "10.0.0.0/8 via 192.0.2.2 src 10.1.1.1", nil, "invalid prefsrc"},
		{"add", "local 10.0.0.1 dev port0 scope link", nil, "invalid scope"},
		{"add", "10.0.0.0/8 via 192.0.2.1 dev port0 onlink", nil, "invalid gateway"},
	}
	for _, c := range cases {
		err := run(t, f, c.verb, c.in)
		if err == nil || c.want != nil && !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s %q: err %v, want %v %q", c.verb, c.in, err, c.want, c.msg)
		}
	}
}

func TestLookupAndGet(t *testing.T) {
	f := testFIB(t)
	for _, l := range []string{
		"203.0.113.0/24 via 198.51.100.2 dev port1",
		"default via 192.0.2.254",
		"blackhole 10.0.0.0/8",
		"unreachable 10.1.0.0/16",
		"prohibit 10.2.0.0/16",
		"10.3.0.0/16 via 192.0.2.5 mtu 1400",
		"10.3.0.0/16 tos 0x10 via 198.51.100.5",
		"10.4.0.0/16 via 198.51.100.7 src 192.0.2.1",
	} {
		must(t, run(t, f, "add", l))
	}
	cases := []struct{ dst, want string }{
		{"203.0.113.5", "203.0.113.5 via 198.51.100.2 dev port1 src 198.51.100.1"},
		{"8.8.8.8", "8.8.8.8 via 192.0.2.254 dev port0 src 192.0.2.1"},
		{"192.0.2.7", "192.0.2.7 dev port0 src 192.0.2.1"},
		{"192.0.2.1", "local 192.0.2.1 dev lo table local src 192.0.2.1"},
		{"192.0.2.255", "broadcast 192.0.2.255 dev port0 table local src 192.0.2.1"},
		{"10.9.9.9", "RTNETLINK answers: Invalid argument"},
		{"10.1.2.3", "RTNETLINK answers: No route to host"},
		{"10.2.2.3", "RTNETLINK answers: Permission denied"},
		{"10.3.2.3", "10.3.2.3 via 192.0.2.5 dev port0 src 192.0.2.1"},
		{"10.4.2.3", "10.4.2.3 via 198.51.100.7 dev port1 src 192.0.2.1"},
	}
	for _, c := range cases {
		if got := get(f, c.dst); got != c.want {
			t.Errorf("get %s:\n got %q\nwant %q", c.dst, got, c.want)
		}
	}
	// TOS route only for its TOS.
	k := Key{Dst: ip("10.3.2.3"), Src: ip("192.0.2.50"), Tos: 0x10, Iif: 0, Oif: -1}
	var res Result
	f.Lookup(&k, &res)
	if got := FormatGet(k.Dst, &k, &res, f); got != "10.3.2.3 from 192.0.2.50 via 198.51.100.5 dev port1 iif port0" {
		t.Errorf("tos get: %q", got)
	}
	if res.MTU != 9000 {
		t.Errorf("MTU %d, want port1's 9000", res.MTU)
	}
	k.Tos = 0
	f.Lookup(&k, &res)
	if res.Nexthop == nil || res.Nexthop.Gateway != ip("192.0.2.5") || res.MTU != 1400 {
		t.Errorf("tos 0: %+v", res)
	}
	// Input to a local address.
	k.Dst = ip("198.51.100.1")
	f.Lookup(&k, &res)
	if got := FormatGet(k.Dst, &k, &res, f); got != "local 198.51.100.1 from 192.0.2.50 dev lo table local iif port0" {
		t.Errorf("local input: %q", got)
	}
	// No route at all.
	must(t, run(t, f, "del", "default"))
	if got := get(f, "8.8.8.8"); got != "RTNETLINK answers: Network is unreachable" {
		t.Errorf("no route: %q", got)
	}
	// Output with a port and no route: on-link.
	k = Key{Dst: ip("8.8.8.8"), Iif: -1, Oif: 1, Mark: 5}
	f.LookupOutput(&k, &res)
	if got := FormatGet(k.Dst, &k, &res, f); got != "8.8.8.8 dev port1 src 198.51.100.1 mark 5" {
		t.Errorf("onlink output: %q", got)
	}
	// Output with a source that is not ours.
	k = Key{Dst: ip("203.0.113.5"), Src: ip("1.1.1.1"), Iif: -1, Oif: -1}
	f.LookupOutput(&k, &res)
	if !errors.Is(res.Err, syscall.EINVAL) {
		t.Errorf("foreign source: %v", res.Err)
	}
}

func TestBacktrackAndPortDown(t *testing.T) {
	f := testFIB(t)
	must(t, run(t, f, "add", "default via 192.0.2.254"))
	must(t, run(t, f, "add", "10.0.0.0/8 via 198.51.100.2"))
	must(t, run(t, f, "add", "10.1.0.0/16 tos 0x04 via 198.51.100.3"))
	gen := f.GenID().Current()
	// A TOS-only prefix does not match other TOS: back off to the /8.
	if got := get(f, "10.1.1.1"); got != "10.1.1.1 via 198.51.100.2 dev port1 src 198.51.100.1" {
		t.Errorf("backtrack: %q", got)
	}
	must(t, f.SetPort(1, "port1", 9000, false))
	if f.GenID().Current() == gen {
		t.Error("port down did not bump genid")
	}
	if got := get(f, "10.1.1.1"); got != "10.1.1.1 via 192.0.2.254 dev port0 src 192.0.2.1" {
		t.Errorf("port down: %q", got)
	}
	if got := show(f, TableMain); !strings.Contains(got, "10.0.0.0/8 via 198.51.100.2 dev port1 linkdown") {
		t.Errorf("linkdown not shown:\n%s", got)
	}
	must(t, f.SetPort(1, "port1", 9000, true))
	if got := get(f, "10.1.1.1"); !strings.Contains(got, "via 198.51.100.2") {
		t.Errorf("port up: %q", got)
	}
}

func TestNLMFlags(t *testing.T) {
	f := testFIB(t)
	must(t, run(t, f, "add", "10.0.0.0/8 via 192.0.2.2 metric 10"))
	must(t, run(t, f, "append", "10.0.0.0/8 via 192.0.2.3 metric 10"))
	must(t, run(t, f, "prepend", "10.0.0.0/8 via 192.0.2.4 metric 10"))
	must(t, run(t, f, "add", "10.0.0.0/8 via 192.0.2.5 metric 5"))
	must(t, run(t, f, "add", "10.0.0.0/8 tos 0x10 via 192.0.2.6 metric 20"))
	if err := run(t, f, "append", "10.0.0.0/8 via 192.0.2.3 metric 10"); !errors.Is(err, ErrExists) {
		t.Errorf("duplicate append: %v", err)
	}
	order := func() string {
		var s []string
		for _, r := range f.Routes(TableMain) {
			if r.Dst == ip("10.0.0.0") {
				s = append(s, netaddr.IPv4String(r.Nexthops[0].Gateway)[8:])
			}
		}
		return strings.Join(s, ",")
	}
	if got := order(); got != "6,5,4,2,3" {
		t.Errorf("order %s", got)
	}
	must(t, run(t, f, "replace", "10.0.0.0/8 via 192.0.2.7 metric 10"))
	if got := order(); got != "6,5,7,2,3" {
		t.Errorf("after replace %s", got)
	}
	must(t, run(t, f, "change", "10.0.0.0/8 via 192.0.2.8 metric 5"))
	must(t, run(t, f, "replace", "10.0.0.0/8 via 192.0.2.9 metric 1"))
	if got := order(); got != "6,9,8,7,2,3" {
		t.Errorf("after change %s", got)
	}
	must(t, run(t, f, "del", "10.0.0.0/8 via 192.0.2.2"))
	must(t, run(t, f, "del", "10.0.0.0/8 metric 10"))
	must(t, run(t, f, "del", "10.0.0.0/8 tos 0x10"))
	if got := order(); got != "9,8,3" {
		t.Errorf("after del %s", got)
	}
	if got := get(f, "10.1.1.1"); !strings.Contains(got, "via 192.0.2.9") {
		t.Errorf("lowest metric wins: %q", got)
	}
	n, err := f.Flush(TableMain)
	if err != nil || n != 5 {
		t.Errorf("flush = %d, %v", n, err)
	}
	if len(f.nhs) != 4 { // the local table's four auto routes
		t.Errorf("interned nexthop sets left: %d", len(f.nhs))
	}
}

func TestZeroAlloc(t *testing.T) {
	f := testFIB(t)
	must(t, run(t, f, "add", "default via 192.0.2.254"))
	must(t, run(t, f, "add", "10.0.0.0/8 nexthop via 192.0.2.2 nexthop via 198.51.100.2"))
	must(t, run(t, f, "add", "10.1.0.0/16 tos 0x04 via 198.51.100.3"))
	keys := []Key{
		{Dst: ip("8.8.8.8"), Src: ip("192.0.2.9"), Iif: 0, Oif: -1},
		{Dst: ip("10.1.2.3"), Src: ip("192.0.2.9"), Iif: 0, Oif: -1, Hash: 12345},
		{Dst: ip("198.51.100.1"), Src: ip("192.0.2.9"), Iif: 0, Oif: -1},
	}
	var res Result
	allocs := testing.AllocsPerRun(1000, func() {
		for i := range keys {
			f.Lookup(&keys[i], &res)
			keys[i].Iif = -1
			f.LookupOutput(&keys[i], &res)
			keys[i].Iif = 0
			_ = f.IsLocal(keys[i].Dst)
		}
	})
	if allocs != 0 {
		t.Errorf("lookups allocate %v times", allocs)
	}
	bulk := make([]Key, 40)
	for i := range bulk {
		bulk[i] = keys[i%len(keys)]
	}
	res2 := make([]Result, len(bulk))
	allocs = testing.AllocsPerRun(100, func() {
		f.LookupBulk(bulk, res2)
	})
	if allocs != 0 {
		t.Errorf("bulk lookups allocate %v times", allocs)
	}
}

// What the neighbour owner and the control API read of the ports does not
// wait for a route batch, which holds the writers' lock for as long as a
// full table takes: a solicitation sent meanwhile would otherwise stall
// the neighbour subsystem and packets queued for it.
func TestPortReadersDoNotWaitForBatches(t *testing.T) {
	f := New(nil, 1)
	if err := f.SetPort(0, "port0", 1500, true); err != nil {
		t.Fatal(err)
	}
	if err := f.AddAddress(0, 0xc0000201, 24); err != nil {
		t.Fatal(err)
	}
	inBatch, release := make(chan struct{}), make(chan struct{})
	go f.Batch(func(b *Batch) error {
		close(inBatch)
		<-release
		return nil
	})
	defer close(release)
	<-inBatch
	done := make(chan bool, 1)
	go func() {
		a := f.Addresses(0)
		i, ok := f.PortIndex("port0")
		done <- len(a) == 1 && a[0].Addr == 0xc0000201 && ok && i == 0 && f.PortName(0) == "port0"
	}()
	select {
	case ok := <-done:
		if !ok {
			t.Fatal("port readers answered wrong during a batch")
		}
	case <-time.After(2 * time.Second):
		t.Fatal("port readers waited for a route batch")
	}
}

// A million routes added and deleted, each nexthop with exceptions
// learnt, leave the FIB's exception registry empty and its memory where
// it was: entries go with their nexthops.
func TestExceptionRegistryFollowsNexthops(t *testing.T) {
	f := New(nil, 1)
	if err := f.SetPort(0, "port0", 1500, true); err != nil {
		t.Fatal(err)
	}
	if err := f.AddAddress(0, 0x0a000001, 8); err != nil {
		t.Fatal(err)
	}
	rounds, per := 1000, 1000
	if raceEnabled {
		rounds = 50 // the race detector makes the full churn take minutes
	}
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	var before uint64
	for round := 0; round < rounds; round++ {
		routes := make([]Route, per)
		f.Batch(func(b *Batch) error {
			for i := range routes {
				gw := 0x0a000000 | (uint32(round*per+i)+2)&0xffffff
				routes[i] = Route{Table: TableMain, Dst: 0xc0000000 | uint32(i)<<8, Len: 24, Type: Unicast,
					Nexthops: []*Nexthop{{Gateway: gw, Port: 0, Weight: 1}}}
				if err := b.Add(routes[i]); err != nil {
					t.Fatal(err)
				}
			}
			return nil
		})
		for i := range routes {
			var k Key
			var res Result
			k.Dst, k.Oif = routes[i].Dst|9, -1
			f.Lookup(&k, &res)
			nh := res.Nexthop
			nh.Cache.ExceptionsForUpdate().Update(k.Dst, 0, 1400, false, 0, 1)
			f.Exceptions().Note(nh.Cache, nh.Port, nh.Gateway)
		}
		if got := len(f.Exceptions().Owners()); got != per {
			t.Fatalf("round %d: %d nexthops with exceptions, want %d", round, got, per)
		}
		f.Batch(func(b *Batch) error {
			for _, r := range routes {
				if err := b.Del(r); err != nil {
					t.Fatal(err)
				}
			}
			return nil
		})
		if got := len(f.Exceptions().Owners()); got != 0 {
			t.Fatalf("round %d: %d nexthops left in the registry after their routes went", round, got)
		}
		if round == min(10, rounds/2) {
			before = heap()
		}
	}
	if after := heap(); after > before+4<<20 {
		t.Fatalf("heap grew from %d to %d bytes over %d route adds and deletes", before, after, rounds*per)
	}
}
