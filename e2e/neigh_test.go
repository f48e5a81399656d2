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
	State  string `json:"state"`
}

func (r *router) neighState(dst string) (neighJSON, bool) {
	out, err := r.ctl("-json", "neigh", "show")
	if err != nil {
		return neighJSON{}, false
	}
	var list []neighJSON
	json.Unmarshal([]byte(out), &list)
	for _, n := range list {
		if n.Dst == dst {
			return n, true
		}
	}
	return neighJSON{}, false
}

func TestNeighbourEndToEnd(t *testing.T) {
	needRoot(t)
	taps := [2]string{uniq("fye"), uniq("fyf")}
	cfg := fmt.Sprintf(`eal: ["--no-huge", "-m", "512", "--no-pci", "--file-prefix", "%s"]
cores: [%d]
api: "@SOCKET@"
ports:
  - name: port0
    dev: "net_tap0,iface=%s"
    addresses: ["192.0.2.1/24"]
  - name: port1
    dev: "net_tap1,iface=%s"
    addresses: ["198.51.100.1/24"]
    neigh: {base_reachable_time_ms: 1000, delay_first_probe_time: 1}
`, uniq("fyneigh"), pipelineCore(), taps[0], taps[1])
	r := startRouter(t, cfg)
	a := newNetns(t, uniq("fyA"))
	b := newNetns(t, uniq("fyB"))
	// A accepts gratuitous ARP, so the router's announcement at start
	// creates its entry without A asking.
	a.must(t, "sysctl", "-qw", "net.ipv4.conf.all.arp_accept=1")
	a.must(t, "sysctl", "-qw", "net.ipv4.conf.default.arp_accept=1")
	attach(t, taps[0], a, "192.0.2.2/24", "")
	attach(t, taps[1], b, "198.51.100.2/24", "198.51.100.1")

	t.Run("GratuitousARPAtStart", func(t *testing.T) {
		var links []struct {
			Name string `json:"name"`
			MAC  string `json:"mac"`
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
		before, _ := r.neighState("198.51.100.2")
		newMAC := "02:00:00:00:bb:01"
		// As a host does when its MAC changes: it announces the new one
		// (arp_notify); the router takes it as STALE and confirms it by a
		// unicast probe.
		b.must(t, "sysctl", "-qw", "net.ipv4.conf."+taps[1]+".arp_notify=1")
		b.must(t, "ip", "link", "set", "dev", taps[1], "address", newMAC)
		done := make(chan string, 1)
		go func() {
			out, _ := a.run(t, "ping", "-c", "50", "-i", "0.1", "-W", "1", "198.51.100.2")
			done <- out
		}()
		seen := map[string]bool{}
		var seq []string
		deadline := time.Now().Add(8 * time.Second)
		var last neighJSON
		for time.Now().Before(deadline) {
			if n, ok := r.neighState("198.51.100.2"); ok {
				if n.LLAddr == newMAC && !seen[n.State] {
					seen[n.State] = true
					seq = append(seq, n.State)
				}
				last = n
			}
			time.Sleep(50 * time.Millisecond)
		}
		out := <-done
		t.Logf("neighbour 198.51.100.2: %s %s, then with %s: %v", before.LLAddr, before.State, newMAC, seq)
		if last.LLAddr != newMAC || !seen["REACHABLE"] || !(seen["STALE"] || seen["DELAY"] || seen["PROBE"]) {
			t.Fatalf("MAC change not picked up through STALE/DELAY/PROBE to REACHABLE: %v (last %+v)", seq, last)
		}
		if m := lossRE.FindStringSubmatch(out); m == nil || atoi(m[1])-atoi(m[2]) > 5 {
			t.Fatalf("ping across the MAC change:\n%s", out)
		}
	})

	t.Run("QueuedTrafficInOrder", func(t *testing.T) {
		r.mustCtl("neigh", "flush", "dev", "port1")
		if n, ok := r.neighState("198.51.100.2"); ok && n.State != "FAILED" && n.State != "" {
			t.Fatalf("flush left %+v", n)
		}
		dir := t.TempDir()
		recv := filepath.Join(dir, "recv.py")
		send := filepath.Join(dir, "send.py")
		os.WriteFile(recv, []byte(`import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 9999)); s.settimeout(3)
got = []
try:
    while True: got.append(int(s.recv(100)))
except socket.timeout: pass
print(" ".join(map(str, got)))
`), 0o644)
		os.WriteFile(send, []byte(`import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(30): s.sendto(str(i).encode(), ("198.51.100.2", 9999))
`), 0o644)
		res := make(chan string, 1)
		go func() { out, _ := b.run(t, "python3", recv); res <- out }()
		time.Sleep(300 * time.Millisecond)
		a.must(t, "python3", send)
		got := strings.Fields(<-res)
		want := make([]string, 30)
		for i := range want {
			want[i] = fmt.Sprint(i)
		}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("datagrams sent during resolution arrived as %v", got)
		}
	})
}
