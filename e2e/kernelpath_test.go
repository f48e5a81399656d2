package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// kernelPathRouter starts ferryd with a control plane in namespace c and
// hosts A (port0) and B (port1).
func kernelPathRouter(t *testing.T, extra string) (r *router, a, b, c *netns) {
	needRoot(t)
	taps := [2]string{uniq("fka"), uniq("fkb")}
	c = newNetns(t, uniq("fkC"))
	r = startRouter(t, tapConfig("fykp", taps, "", "", fmt.Sprintf("control_plane: {netns: %s}\n%s", c.name, extra)))
	a = newNetns(t, uniq("fkA"))
	b = newNetns(t, uniq("fkB"))
	attach(t, taps[0], a, "192.0.2.2/24", "192.0.2.1")
	attach(t, taps[1], b, "198.51.100.2/24", "198.51.100.1")
	return r, a, b, c
}

type kernelPathJSON struct {
	Punted   struct{ Frames, Full, Limited uint64 } `json:"punted"`
	Injected struct{ Frames uint64 }                `json:"injected"`
}

func (r *router) kernelPath(port string) kernelPathJSON {
	r.t.Helper()
	var st struct {
		KernelPath map[string]struct {
			Punted   map[string]uint64 `json:"punted"`
			Injected map[string]uint64 `json:"injected"`
		} `json:"kernel_path"`
	}
	if err := json.Unmarshal([]byte(r.mustCtl("-json", "stats")), &st); err != nil {
		r.t.Fatal(err)
	}
	var k kernelPathJSON
	p := st.KernelPath[port]
	k.Punted.Frames, k.Punted.Full, k.Punted.Limited = p.Punted["frames"], p.Punted["dropped_full"], p.Punted["dropped_rate"]
	k.Injected.Frames = p.Injected["frames"]
	return k
}

// echoServer accepts one connection at addr in namespace ns and sends
// back what it reads.
func echoServer(t *testing.T, ns *netns, addr string) net.Listener {
	t.Helper()
	var ln net.Listener
	if err := inNetns(t, ns.name, func() (err error) {
		ln, err = net.Listen("tcp4", addr)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	return ln
}

// tcpEcho sends n bytes to addr from namespace ns and checks they come back.
func tcpEcho(t *testing.T, ns *netns, addr string, n int) {
	t.Helper()
	var conn net.Conn
	if err := inNetns(t, ns.name, func() (err error) {
		conn, err = net.DialTimeout("tcp4", addr, 10*time.Second)
		return err
	}); err != nil {
		t.Fatalf("connect to %s from %s: %v", addr, ns.name, err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	want := flowBytes(7, n)
	go conn.Write(want)
	got := make([]byte, n)
	if _, err := io.ReadFull(conn, got); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("echo through %s: %v", addr, err)
	}
}

// The router's own addresses reach the kernel of the control namespace
// (TCP, UDP, link-local multicast) and the kernel's frames leave on the
// ports, while the data plane still answers pings itself.
func TestKernelPathEndToEnd(t *testing.T) {
	r, a, b, c := kernelPathRouter(t, "")
	if out := c.must(t, "ip", "-br", "addr", "show", "port0"); !strings.Contains(out, "192.0.2.1/24") {
		t.Fatalf("kernel interface port0 in %s: %s", c.name, out)
	}
	var links []struct {
		KernelIface string `json:"kernel_iface"`
		Netns       string `json:"netns"`
		MAC         string `json:"address"`
	}
	json.Unmarshal([]byte(r.mustCtl("-json", "link", "show")), &links)
	if len(links) != 2 || links[0].KernelIface != "port0" || links[0].Netns != c.name {
		t.Fatalf("link show does not pair ports with kernel interfaces: %+v", links)
	}
	if out := c.must(t, "ip", "link", "show", "port0"); !strings.Contains(out, links[0].MAC) {
		t.Fatalf("kernel interface lacks the port's MAC %s:\n%s", links[0].MAC, out)
	}
	// The net_tap ports' kernel sides are in A and B now: the ports are
	// up, and so is their kernel interfaces' carrier.
	time.Sleep(1500 * time.Millisecond)
	if out := r.mustCtl("link", "show"); strings.Contains(out, "state DOWN") {
		t.Fatalf("a port whose tap moved to another namespace shows down:\n%s", out)
	}
	if out := c.must(t, "ip", "link", "show", "port0"); strings.Contains(out, "NO-CARRIER") {
		t.Fatalf("kernel interface without carrier while its port is up:\n%s", out)
	}

	t.Run("TCPToTheRouter", func(t *testing.T) {
		ln := echoServer(t, c, "192.0.2.1:179")
		defer ln.Close()
		before := r.kernelPath("port0")
		tcpEcho(t, a, "192.0.2.1:179", 256<<10)
		after := r.kernelPath("port0")
		if after.Punted.Frames <= before.Punted.Frames || after.Injected.Frames <= before.Injected.Frames {
			t.Fatalf("kernel path of port0 before %+v after %+v", before, after)
		}
	})

	t.Run("UDPAndLinkLocalMulticast", func(t *testing.T) {
		var uc, mc net.PacketConn
		if err := inNetns(t, c.name, func() (err error) {
			if uc, err = net.ListenPacket("udp4", "198.51.100.1:5000"); err != nil {
				return err
			}
			ifi, err := net.InterfaceByName("port0")
			if err != nil {
				return err
			}
			mc, err = net.ListenMulticastUDP("udp4", ifi, &net.UDPAddr{IP: net.IPv4(224, 0, 0, 9), Port: 520})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		defer uc.Close()
		defer mc.Close()
		b.must(t, "sh", "-c", "echo to-the-router | nc -u -w 1 198.51.100.1 5000")
		a.must(t, "ip", "route", "add", "224.0.0.0/24", "dev", strings.TrimSpace(a.must(t, "sh", "-c", "ls /sys/class/net | grep -v lo")))
		a.must(t, "sh", "-c", "echo rip-hello | nc -u -w 1 224.0.0.9 520")
		for _, pc := range []net.PacketConn{uc, mc} {
			pc.SetReadDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 100)
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				t.Fatalf("%s heard nothing: %v", pc.LocalAddr(), err)
			}
			t.Logf("%s got %q from %s", pc.LocalAddr(), strings.TrimSpace(string(buf[:n])), from)
		}
	})

	t.Run("KernelPingsOut", func(t *testing.T) {
		for _, dst := range []string{"192.0.2.2", "198.51.100.2"} {
			if out, err := c.run(t, "ping", "-c", "2", "-i", "0.2", "-W", "2", dst); err != nil {
				t.Fatalf("ping %s from the control namespace: %v\n%s", dst, err, out)
			}
		}
	})

	t.Run("DataPlaneStillAnswersPings", func(t *testing.T) {
		before := r.kernelPath("port0").Punted.Frames
		if out, err := a.run(t, "ping", "-c", "3", "-i", "0.2", "-W", "2", "192.0.2.1"); err != nil {
			t.Fatalf("ping the router: %v\n%s", err, out)
		}
		if after := r.kernelPath("port0").Punted.Frames; after != before {
			t.Fatalf("echo requests went to the kernel (%d frames punted)", after-before)
		}
	})

	t.Run("DeletedInterfaceIsMadeAgain", func(t *testing.T) {
		c.must(t, "ip", "link", "del", "port0")
		deadline := time.Now().Add(10 * time.Second)
		for {
			if out, err := c.run(t, "ip", "-br", "addr", "show", "port0"); err == nil && strings.Contains(out, "192.0.2.1/24") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("port0's kernel interface was not made again")
			}
			time.Sleep(200 * time.Millisecond)
		}
		ln := echoServer(t, c, "192.0.2.1:180")
		defer ln.Close()
		tcpEcho(t, a, "192.0.2.1:180", 4096)
	})

	t.Run("RemovedOnExit", func(t *testing.T) {
		if err := r.stop(); err != nil {
			t.Fatal(err)
		}
		if out, err := c.run(t, "ip", "link", "show", "port0"); err == nil {
			t.Fatalf("kernel interface left behind:\n%s", out)
		}
	})
}

// waitUntil polls cond for up to d.
func waitUntil(d time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(d); ; {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type cpStatusJSON struct {
	Running bool              `json:"running"`
	Routes  int               `json:"routes_mirrored"`
	Rules   int               `json:"rules_mirrored"`
	Resyncs uint64            `json:"resyncs"`
	Skipped map[string]uint64 `json:"skipped"`
}

func (r *router) cpStatus() cpStatusJSON {
	r.t.Helper()
	var st cpStatusJSON
	if err := json.Unmarshal([]byte(r.mustCtl("-json", "cp", "status")), &st); err != nil {
		r.t.Fatal(err)
	}
	return st
}

// Routes, rules and addresses made in the control namespace's kernel
// (here with ip(8), as a routing daemon would over netlink) are the
// data plane's.
func TestMirrorEndToEnd(t *testing.T) {
	r, a, b, c := kernelPathRouter(t, "")
	b.must(t, "ip", "addr", "add", "10.77.0.1/32", "dev", "lo")
	show := func(args ...string) string { return r.mustCtl(append([]string{"route", "show"}, args...)...) }
	has := func(want string, args ...string) func() bool {
		return func() bool { return strings.Contains(show(args...), want) }
	}

	t.Run("StaticRouteForwarded", func(t *testing.T) {
		c.must(t, "ip", "route", "add", "10.77.0.0/16", "via", "198.51.100.2", "proto", "static")
		if !waitUntil(5*time.Second, has("10.77.0.0/16 via 198.51.100.2 dev port1 proto static", "proto", "static")) {
			t.Fatalf("route not mirrored:\n%s", show())
		}
		before := r.coreCounters()[0]["forwarded"]
		if out, err := a.run(t, "ping", "-c", "3", "-i", "0.2", "-W", "2", "10.77.0.1"); err != nil {
			t.Fatalf("ping through the mirrored route: %v\n%s", err, out)
		}
		if fwd := r.coreCounters()[0]["forwarded"] - before; fwd < 6 {
			t.Fatalf("the pipeline forwarded %d packets of the pings", fwd)
		}
		c.must(t, "ip", "route", "del", "10.77.0.0/16")
		if !waitUntil(5*time.Second, func() bool { return !has("10.77.0.0/16")() }) {
			t.Fatalf("deleted route still in ferry:\n%s", show())
		}
		out, _ := a.run(t, "ping", "-c", "1", "-W", "2", "10.77.0.1")
		if !strings.Contains(out, "From 192.0.2.1") || !strings.Contains(out, "Net Unreachable") {
			t.Fatalf("after the delete, want net unreachable from ferry:\n%s", out)
		}
	})

	t.Run("TypesTablesRules", func(t *testing.T) {
		c.must(t, "ip", "route", "add", "10.88.0.0/16", "nexthop", "via", "198.51.100.2", "weight", "2", "nexthop", "via", "192.0.2.2", "weight", "1")
		c.must(t, "ip", "route", "add", "blackhole", "10.99.0.0/16")
		c.must(t, "ip", "route", "add", "unreachable", "10.98.0.0/16")
		c.must(t, "ip", "route", "add", "10.66.0.0/16", "via", "198.51.100.2", "table", "100")
		c.must(t, "ip", "rule", "add", "from", "192.0.2.0/24", "to", "10.66.0.0/16", "lookup", "100", "priority", "100")
		ok := waitUntil(5*time.Second, func() bool {
			all := show("table", "all")
			return strings.Contains(all, "nexthop via 198.51.100.2 dev port1 weight 2") && strings.Contains(all, "blackhole 10.99.0.0/16") &&
				strings.Contains(all, "unreachable 10.98.0.0/16") && strings.Contains(all, "10.66.0.0/16 via 198.51.100.2 dev port1 table 100") &&
				strings.Contains(r.mustCtl("rule", "show"), "100:\tfrom 192.0.2.0/24 to 10.66.0.0/16 lookup 100")
		})
		if !ok {
			t.Fatalf("not mirrored:\n%s\n%s", show("table", "all"), r.mustCtl("rule", "show"))
		}
		c.must(t, "ip", "route", "replace", "blackhole", "10.88.0.0/16")
		c.must(t, "ip", "rule", "del", "priority", "100")
		if !waitUntil(5*time.Second, func() bool {
			return has("blackhole 10.88.0.0/16")() && !strings.Contains(r.mustCtl("rule", "show"), "100:")
		}) {
			t.Fatalf("replace and rule delete not mirrored:\n%s\n%s", show(), r.mustCtl("rule", "show"))
		}
	})

	t.Run("ForeignDeviceSkipped", func(t *testing.T) {
		c.must(t, "ip", "link", "add", "fv0", "type", "veth", "peer", "name", "fv1")
		c.must(t, "ip", "link", "set", "fv0", "up")
		c.must(t, "ip", "link", "set", "fv1", "up")
		c.must(t, "ip", "addr", "add", "10.9.9.1/24", "dev", "fv0")
		c.must(t, "ip", "route", "add", "10.55.0.0/16", "via", "10.9.9.2")
		if !waitUntil(5*time.Second, func() bool { return r.cpStatus().Skipped["foreign_dev"] > 0 }) {
			t.Fatalf("a route on another device was not counted as skipped: %+v", r.cpStatus())
		}
		if has("10.55.0.0/16", "table", "all")() || has("10.9.9.0/24", "table", "all")() {
			t.Fatalf("routes of another device were mirrored:\n%s", show("table", "all"))
		}
	})

	t.Run("AddressesFollowTheKernel", func(t *testing.T) {
		c.must(t, "ip", "addr", "add", "198.51.100.77/24", "dev", "port1")
		if !waitUntil(5*time.Second, has("local 198.51.100.77 dev port1", "table", "local")) {
			t.Fatalf("address not the port's:\n%s", show("table", "local"))
		}
		if out, err := b.run(t, "ping", "-c", "1", "-W", "2", "198.51.100.77"); err != nil {
			t.Fatalf("the new address does not answer: %v\n%s", err, out)
		}
		c.must(t, "ip", "addr", "del", "198.51.100.77/24", "dev", "port1")
		if !waitUntil(5*time.Second, func() bool { return !has("198.51.100.77", "table", "local")() }) {
			t.Fatalf("removed address still the port's:\n%s", show("table", "local"))
		}
	})

	t.Run("PermanentNeighbours", func(t *testing.T) {
		c.must(t, "ip", "neigh", "add", "198.51.100.9", "lladdr", "02:00:00:00:00:09", "dev", "port1", "nud", "permanent")
		if !waitUntil(5*time.Second, func() bool {
			n, ok := r.neighState("198.51.100.9")
			return ok && n.State == "PERMANENT" && n.LLAddr == "02:00:00:00:00:09" && n.Dev == "port1"
		}) {
			t.Fatalf("permanent neighbour not mirrored:\n%s", r.mustCtl("neigh", "show"))
		}
		c.must(t, "ip", "neigh", "del", "198.51.100.9", "dev", "port1")
		if !waitUntil(5*time.Second, func() bool { _, ok := r.neighState("198.51.100.9"); return !ok }) {
			t.Fatalf("deleted neighbour still there:\n%s", r.mustCtl("neigh", "show"))
		}
	})

	t.Run("MirrorOffAndOnResyncs", func(t *testing.T) {
		st0 := r.cpStatus()
		r.mustCtl("cp", "mirror", "off")
		c.must(t, "ip", "route", "add", "10.33.0.0/16", "via", "198.51.100.2", "proto", "bgp")
		time.Sleep(300 * time.Millisecond)
		if has("10.33.0.0/16")() || r.cpStatus().Running {
			t.Fatal("mirror off still mirrors")
		}
		r.mustCtl("cp", "mirror", "on")
		// A resync publishes the routes before it sweeps, syncs rules and
		// neighbours and counts itself.
		resynced := has("10.33.0.0/16 via 198.51.100.2 dev port1 proto bgp", "proto", "bgp")
		if !waitUntil(5*time.Second, func() bool { return resynced() && r.cpStatus().Resyncs > st0.Resyncs }) {
			t.Fatalf("mirror on did not resync:\n%s\n%+v", show(), r.cpStatus())
		}
		if st := r.cpStatus(); st.Resyncs <= st0.Resyncs || !st.Running {
			t.Fatalf("status after mirror on: %+v", st)
		}
		r.mustCtl("route", "flush", "proto", "bgp")
		if has("10.33.0.0/16")() {
			t.Fatalf("route flush proto bgp left:\n%s", show())
		}
	})
}
