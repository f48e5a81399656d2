package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type neighJSON struct {
	Dst    string `json:"dst"`
	Dev    string `json:"dev"`
	LLAddr string `json:"lladdr"`
	State  string `json:"-"`
}

func (r *router) neighState(dst string) (neighJSON, bool) {
	out, err := r.ctl("-json", "neigh", "show")
	if err != nil {
		return neighJSON{}, false
	}
	// As ip -j neigh: the state is a list of NUD flags.
	var list []struct {
		neighJSON
		States []string `json:"state"`
	}
	json.Unmarshal([]byte(out), &list)
	for _, n := range list {
		if n.Dst == dst {
			n.neighJSON.State = strings.Join(n.States, ",")
			return n.neighJSON, true
		}
	}
	return neighJSON{}, false
}

func TestNeighbourEndToEnd(t *testing.T) {
	needRoot(t)
	taps := [2]string{uniq("fye"), uniq("fyf")}
	// The announcements go on for 10 s: a tap moved into A is down until
	// attached, and what ferryd sends meanwhile is lost.
	cfg := tapConfig("fyneigh", taps, "", "    neigh: {base_reachable_time_ms: 1000, delay_first_probe_time: 1}\n", "gratuitous_arp: 10\n")
	a := newNetns(t, uniq("fyA"))
	b := newNetns(t, uniq("fyB"))
	// A accepts gratuitous ARP, so the router's announcement at start
	// creates its entry without A asking.
	a.must(t, "sysctl", "-qw", "net.ipv4.conf.all.arp_accept=1")
	a.must(t, "sysctl", "-qw", "net.ipv4.conf.default.arp_accept=1")
	r := startRouter(t, cfg)
	attach(t, taps[0], a, "192.0.2.2/24", "")
	attach(t, taps[1], b, "198.51.100.2/24", "198.51.100.1")

	t.Run("GratuitousARPAtStart", func(t *testing.T) {
		var links []struct {
			Name string `json:"name"`
			MAC  string `json:"address"`
		}
		json.Unmarshal([]byte(r.mustCtl("-json", "link", "show")), &links)
		var got string
		for i := 0; i < 40; i++ {
			got = a.must(t, "ip", "neigh", "show", "192.0.2.1")
			if strings.Contains(got, "lladdr") {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if len(links) == 0 || !strings.Contains(got, "lladdr "+links[0].MAC) {
			t.Fatalf("A never heard the router's gratuitous ARP: %q (port0 %+v)", got, links)
		}
		a.must(t, "ip", "route", "add", "default", "via", "192.0.2.1")
	})

	t.Run("SilentHostFails", func(t *testing.T) {
		out, _ := a.run(t, "ping", "-c", "1", "-W", "6", "198.51.100.77")
		if !strings.Contains(out, "From 192.0.2.1") || !strings.Contains(out, "Destination Host Unreachable") {
			t.Fatalf("want host unreachable from the router:\n%s", out)
		}
		if n, ok := r.neighState("198.51.100.77"); !ok || n.State != "FAILED" {
			t.Fatalf("neighbour of a silent host: %+v\n%s", n, r.mustCtl("neigh", "show"))
		}
		if got := r.mustCtl("neigh", "show"); !strings.Contains(got, "198.51.100.77 dev port1 FAILED") {
			t.Fatalf("neigh show:\n%s", got)
		}
	})

	t.Run("MACChangePickedUp", func(t *testing.T) {
		a.must(t, "ping", "-c", "2", "-i", "0.2", "198.51.100.2")
		seq := macChange(t, a, b, taps[1], "198.51.100.2", "02:00:00:00:bb:01", func() (string, string, bool) {
			n, ok := r.neighState("198.51.100.2")
			return n.LLAddr, n.State, ok
		})
		t.Logf("ferry: neighbour 198.51.100.2 after the MAC change: %v", seq)
		if !macChangeOK(seq) {
			t.Fatalf("MAC change not picked up through STALE, DELAY (PROBE) to REACHABLE: %v", seq)
		}
	})

	t.Run("QueuedTrafficInOrder", func(t *testing.T) {
		r.mustCtl("neigh", "flush", "dev", "port1")
		if n, ok := r.neighState("198.51.100.2"); ok && n.State != "FAILED" && n.State != "" {
			t.Fatalf("flush left %+v", n)
		}
		pc := b.listenUDP(t, "198.51.100.2:9999")
		send := filepath.Join(t.TempDir(), "send.py")
		os.WriteFile(send, []byte(`import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(30): s.sendto(str(i).encode(), ("198.51.100.2", 9999))
`), 0o644)
		a.must(t, "python3", send)
		var got []string
		buf := make([]byte, 100)
		for len(got) < 30 {
			pc.SetReadDeadline(time.Now().Add(3 * time.Second))
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				break
			}
			got = append(got, string(buf[:n]))
		}
		want := make([]string, 30)
		for i := range want {
			want[i] = fmt.Sprint(i)
		}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("datagrams sent during resolution arrived as %v", got)
		}
	})
}

// macChange changes host's MAC (announcing it, as arp_notify does) while
// pinger pings it through a router, and returns the states the router's
// entry went through with the new MAC, as read by state.
func macChange(t *testing.T, pinger, host *netns, ifname, addr, newMAC string, state func() (mac, st string, ok bool)) []string {
	t.Helper()
	host.must(t, "sysctl", "-qw", "net.ipv4.conf."+ifname+".arp_notify=1")
	host.must(t, "ip", "link", "set", "dev", ifname, "address", newMAC)
	done := make(chan string, 1)
	go func() {
		out, _ := pinger.run(t, "ping", "-c", "50", "-i", "0.1", "-W", "1", addr)
		done <- out
	}()
	var seq []string
	deadline := time.Now().Add(7 * time.Second)
	for time.Now().Before(deadline) {
		if mac, st, ok := state(); ok && mac == newMAC && (len(seq) == 0 || seq[len(seq)-1] != st) {
			seq = append(seq, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	out := <-done
	if m := lossRE.FindStringSubmatch(out); m == nil || atoi(m[1])-atoi(m[2]) > 5 {
		t.Fatalf("ping across the MAC change:\n%s", out)
	}
	return seq
}

// macChangeOK is what ferry and the kernel both do: the announced MAC
// enters as STALE (at once DELAY when traffic uses it, which sampling may
// catch first), and a probe answered confirms it REACHABLE.
func macChangeOK(seq []string) bool {
	return len(seq) > 0 && (seq[0] == "STALE" || seq[0] == "DELAY") && inOrder(seq, "DELAY", "REACHABLE")
}

// inOrder reports whether want appears in seq as a subsequence.
func inOrder(seq []string, want ...string) bool {
	i := 0
	for _, s := range seq {
		if i < len(want) && s == want[i] {
			i++
		}
	}
	return i == len(want)
}

// TestNeighbourStatesMatchKernel runs the MAC-change exchange through a
// Linux router in a namespace, with the same neighbour knobs, and checks the
// kernel's entry goes through the states ferry's does.
func TestNeighbourStatesMatchKernel(t *testing.T) {
	needRoot(t)
	rt := newNetns(t, uniq("fyR"))
	a := newNetns(t, uniq("fyA2"))
	b := newNetns(t, uniq("fyB2"))
	rt.must(t, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	link := func(h *netns, rif, hif, raddr, haddr string) {
		rt.must(t, "ip", "link", "add", rif, "type", "veth", "peer", "name", hif, "netns", h.name)
		rt.must(t, "ip", "addr", "add", raddr, "dev", rif)
		rt.must(t, "ip", "link", "set", rif, "up")
		h.must(t, "ip", "addr", "add", haddr, "dev", hif)
		h.must(t, "ip", "link", "set", hif, "up")
		h.must(t, "ip", "route", "add", "default", "via", strings.Split(raddr, "/")[0])
	}
	link(a, "r0", "h0", "192.0.2.1/24", "192.0.2.2/24")
	link(b, "r1", "h1", "198.51.100.1/24", "198.51.100.2/24")
	rt.must(t, "sysctl", "-qw", "net.ipv4.neigh.r1.base_reachable_time_ms=1000")
	rt.must(t, "sysctl", "-qw", "net.ipv4.neigh.r1.delay_first_probe_time=1")
	a.must(t, "ping", "-c", "2", "-i", "0.2", "198.51.100.2")
	seq := macChange(t, a, b, "h1", "198.51.100.2", "02:00:00:00:bb:01", func() (string, string, bool) {
		out, err := rt.run(t, "ip", "-j", "neigh", "show", "198.51.100.2", "dev", "r1")
		if err != nil {
			return "", "", false
		}
		var l []struct {
			LLAddr string   `json:"lladdr"`
			State  []string `json:"state"`
		}
		if json.Unmarshal([]byte(out), &l) != nil || len(l) == 0 || len(l[0].State) == 0 {
			return "", "", false
		}
		return l[0].LLAddr, l[0].State[0], true
	})
	t.Logf("kernel: neighbour 198.51.100.2 after the MAC change: %v", seq)
	if !macChangeOK(seq) {
		t.Fatalf("the kernel went %v, not as ferry's test expects", seq)
	}
}
