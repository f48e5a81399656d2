package e2e

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

// twoHosts starts ferryd with two taps and puts a host behind each:
// A 192.0.2.2/24 (via 192.0.2.1) and B 198.51.100.2/24 (via 198.51.100.1).
func twoHosts(t *testing.T, extra string) (*router, *netns, *netns, [2]string) {
	needRoot(t)
	taps := [2]string{uniq("fya"), uniq("fyb")}
	cfg := tapConfig("fye2e", taps, "", "", `routes:
  - "203.0.113.0/24 via 198.51.100.2 dev port1"
`+extra)
	r := startRouter(t, cfg)
	a := newNetns(t, uniq("fyA"))
	b := newNetns(t, uniq("fyB"))
	attach(t, taps[0], a, "192.0.2.2/24", "192.0.2.1")
	attach(t, taps[1], b, "198.51.100.2/24", "198.51.100.1")
	return r, a, b, taps
}

var lossRE = regexp.MustCompile(`(\d+) packets transmitted, (\d+) received.*?(\d+(?:\.\d+)?)% packet loss`)
var rttRE = regexp.MustCompile(`rtt min/avg/max/mdev = ([\d.]+)/([\d.]+)/([\d.]+)/([\d.]+) ms`)

func TestForwardingEndToEnd(t *testing.T) {
	r, a, b, taps := twoHosts(t, `neighbors: ["198.51.100.9 lladdr 02:00:00:00:00:09 dev port1"]`+"\n")

	t.Run("PingRouterAddresses", func(t *testing.T) {
		for _, addr := range []string{"192.0.2.1", "198.51.100.1"} {
			out, err := a.run(t, "ping", "-c", "3", "-i", "0.2", "-W", "2", addr)
			if err != nil || !strings.Contains(out, " 0% packet loss") {
				t.Fatalf("ping %s from A: %v\n%s", addr, err, out)
			}
		}
	})

	t.Run("PingThroughRouter", func(t *testing.T) {
		out, err := a.run(t, "ping", "-c", "20", "-i", "0.05", "-W", "2", "198.51.100.2")
		m := lossRE.FindStringSubmatch(out)
		if err != nil || m == nil || m[3] != "0" {
			t.Fatalf("ping A→B through ferryd: %v\n%s", err, out)
		}
		if rtt := rttRE.FindStringSubmatch(out); rtt != nil {
			t.Logf("ping A→B through ferryd: 20/20 answered, rtt min/avg/max %s/%s/%s ms", rtt[1], rtt[2], rtt[3])
		}
	})

	t.Run("TCPTransfer", func(t *testing.T) {
		const size = 12 << 20
		took := tcpTransfer(t, a, b, "198.51.100.2", size)
		t.Logf("TCP A→B through ferryd: %d MB intact in %v (%.0f Mbit/s)", size>>20, took.Round(time.Millisecond), float64(size)*8/took.Seconds()/1e6)
	})

	t.Run("TTLExceeded", func(t *testing.T) {
		out, _ := a.run(t, "ping", "-c", "1", "-t", "1", "-W", "2", "198.51.100.2")
		if !strings.Contains(out, "From 192.0.2.1") || !strings.Contains(out, "Time to live exceeded") {
			t.Fatalf("ping -t 1 through ferryd: want time exceeded from 192.0.2.1, got:\n%s", out)
		}
	})

	t.Run("NetUnreachable", func(t *testing.T) {
		out, _ := a.run(t, "ping", "-c", "1", "-W", "2", "10.99.99.99")
		if !strings.Contains(out, "From 192.0.2.1") || !strings.Contains(out, "Destination Net Unreachable") {
			t.Fatalf("ping to an unrouted address: want net unreachable from 192.0.2.1, got:\n%s", out)
		}
	})

	t.Run("Ferryctl", func(t *testing.T) {
		if got := strings.TrimSpace(r.mustCtl("route", "get", "203.0.113.5")); got != "203.0.113.5 via 198.51.100.2 dev port1 src 198.51.100.1" {
			t.Errorf("route get 203.0.113.5 = %q", got)
		}
		show := r.mustCtl("route", "show")
		for _, want := range []string{"203.0.113.0/24 via 198.51.100.2 dev port1", "192.0.2.0/24 dev port0 proto kernel scope link src 192.0.2.1"} {
			if !strings.Contains(show, want) {
				t.Errorf("route show lacks %q:\n%s", want, show)
			}
		}
		neigh := r.mustCtl("neigh", "show")
		if !strings.Contains(neigh, "198.51.100.9 dev port1 lladdr 02:00:00:00:00:09 PERMANENT") {
			t.Errorf("configured neighbour missing:\n%s", neigh)
		}
		if !regexp.MustCompile(`198\.51\.100\.2 dev port1 lladdr [0-9a-f:]{17} (REACHABLE|STALE|DELAY|PROBE)`).MatchString(neigh) {
			t.Errorf("neigh show lacks B:\n%s", neigh)
		}
		link := r.mustCtl("link", "show")
		if !strings.Contains(link, "port0") || !strings.Contains(link, "port1") {
			t.Errorf("link show:\n%s", link)
		}
		stats := r.mustCtl("stats")
		if !regexp.MustCompile(`forwarded\s+[1-9]`).MatchString(stats) {
			t.Errorf("stats shows nothing forwarded:\n%s", stats)
		}
		js := r.mustCtl("-json", "route", "get", "203.0.113.5")
		if !strings.Contains(js, `"gateway": "198.51.100.2"`) {
			t.Errorf("-json route get:\n%s", js)
		}
		if out, err := r.ctl("route", "add", "bogus"); err == nil {
			t.Errorf("route add bogus succeeded:\n%s", out)
		}
		r.mustCtl("route", "add", "10.99.0.0/16", "via", "198.51.100.2")
		if got := r.mustCtl("route", "get", "10.99.99.99"); !strings.Contains(got, "via 198.51.100.2 dev port1") {
			t.Errorf("route get after add: %q", got)
		}
		r.mustCtl("route", "del", "10.99.0.0/16", "via", "198.51.100.2")
	})
	_ = taps
	if err := r.stop(); err != nil {
		t.Errorf("ferryd did not exit cleanly on SIGTERM: %v", err)
	}
}
