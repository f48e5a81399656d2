package e2e

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// threeHosts: port0's link is a bridge in A's namespace joining A
// (192.0.2.2) and C (192.0.2.3); port1 reaches B (198.51.100.2, also
// 198.51.100.3) with MTU 1400. B and C both own 203.0.113.5; C owns 10.9.0.1.
func threeHosts(t *testing.T) (*router, *netns, *netns, *netns) {
	needRoot(t)
	taps := [2]string{uniq("fyc"), uniq("fyd")}
	cfg := tapConfig("fycache", taps, "    accept_redirects: true\n    secure_redirects: false\n", "    mtu: 1400\n", `routes:
  - "203.0.113.0/24 via 198.51.100.2 dev port1"
  - "10.9.0.0/16 via 192.0.2.3 dev port0"
`)
	r := startRouter(t, cfg)
	a := newNetns(t, uniq("fyA"))
	b := newNetns(t, uniq("fyB"))
	c := newNetns(t, uniq("fyC"))
	waitLink(t, taps[0])
	must(t, "ip", "link", "set", taps[0], "netns", a.name)
	a.must(t, "ip", "link", "add", "br0", "type", "bridge")
	a.must(t, "ip", "link", "set", taps[0], "master", "br0")
	a.must(t, "ip", "link", "add", "vA", "type", "veth", "peer", "name", "vC", "netns", c.name)
	a.must(t, "ip", "link", "set", "vA", "master", "br0")
	for _, l := range []string{taps[0], "vA", "br0"} {
		a.must(t, "ip", "link", "set", l, "up")
	}
	a.must(t, "ip", "addr", "add", "192.0.2.2/24", "dev", "br0")
	a.must(t, "ip", "route", "add", "default", "via", "192.0.2.1")
	c.must(t, "ip", "addr", "add", "192.0.2.3/24", "dev", "vC")
	c.must(t, "ip", "link", "set", "vC", "up")
	c.must(t, "ip", "addr", "add", "203.0.113.5/32", "dev", "lo")
	c.must(t, "ip", "addr", "add", "10.9.0.1/32", "dev", "lo")
	c.must(t, "ip", "route", "add", "default", "via", "192.0.2.1")
	attach(t, taps[1], b, "198.51.100.2/24", "198.51.100.1")
	b.must(t, "ip", "addr", "add", "198.51.100.3/24", "dev", taps[1])
	b.must(t, "ip", "addr", "add", "203.0.113.5/32", "dev", "lo")
	// Wait for the bridge to forward.
	for i := 0; i < 50; i++ {
		if _, err := a.run(t, "ping", "-c", "1", "-W", "1", "192.0.2.1"); err == nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	return r, a, b, c
}

// rxPackets reads an interface's received packet count in a namespace.
func rxPackets(t *testing.T, n *netns, ifname string) int {
	out := n.must(t, "cat", "/sys/class/net/"+ifname+"/statistics/rx_packets")
	v, _ := strconv.Atoi(strings.TrimSpace(out))
	return v
}

func TestCachesEndToEnd(t *testing.T) {
	r, a, b, c := threeHosts(t)

	// (1) A route change during a continuous ping moves the traffic at
	// once: the genid bump expires every cached decision.
	t.Run("RouteChangeDuringPing", func(t *testing.T) {
		r.mustCtl("knob", "set", "dev", "port0", "send_redirects", "0")
		defer r.mustCtl("knob", "set", "dev", "port0", "send_redirects", "1")
		before := rxPackets(t, c, "vC")
		done := make(chan string, 1)
		go func() {
			out, _ := a.run(t, "ping", "-c", "80", "-i", "0.05", "-W", "1", "203.0.113.5")
			done <- out
		}()
		time.Sleep(1500 * time.Millisecond)
		r.mustCtl("route", "replace", "203.0.113.0/24", "via", "192.0.2.3", "dev", "port0")
		out := <-done
		m := lossRE.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("ping output:\n%s", out)
		}
		sent, got := atoi(m[1]), atoi(m[2])
		if sent-got > 2 {
			t.Fatalf("lost %d of %d packets across the route change:\n%s", sent-got, sent, out)
		}
		if moved := rxPackets(t, c, "vC") - before; moved < 20 {
			t.Fatalf("only %d packets reached C after the change", moved)
		}
		t.Logf("route change during ping: %d/%d answered", got, sent)
		r.mustCtl("route", "replace", "203.0.113.0/24", "via", "198.51.100.2", "dev", "port1")
	})

	// (2) PMTU discovery through a 1400-byte port, and fragmentation.
	t.Run("PMTU", func(t *testing.T) {
		// Without DF the router fragments (to .3: A has learned no PMTU
		// for it yet) and B reassembles.
		out, err := a.run(t, "ping", "-c", "3", "-M", "dont", "-s", "1472", "-W", "2", "198.51.100.3")
		if err != nil || !strings.Contains(out, " 0% packet loss") {
			t.Fatalf("fragmented ping: %v\n%s", err, out)
		}
		if st := r.mustCtl("stats"); !regexp.MustCompile(`fragmented\s+[1-9]`).MatchString(st) {
			t.Fatalf("no fragmentation counted:\n%s", st)
		}
		out, _ = a.run(t, "ping", "-c", "2", "-M", "do", "-s", "1472", "-W", "1", "198.51.100.2")
		if !strings.Contains(out, "mtu = 1400") {
			t.Fatalf("want frag needed with mtu 1400:\n%s", out)
		}
		if got := a.must(t, "ip", "route", "get", "198.51.100.2"); !strings.Contains(got, "mtu 1400") {
			t.Fatalf("A's kernel did not learn the PMTU:\n%s", got)
		}
		tcpTransfer(t, a, b, "198.51.100.2", 4<<20)
	})

	// (3) A redirect from the current gateway moves that destination, and
	// only it, to the new gateway.
	t.Run("AcceptRedirect", func(t *testing.T) {
		r.mustCtl("route", "replace", "203.0.113.0/24", "via", "192.0.2.2", "dev", "port0")
		defer r.mustCtl("route", "replace", "203.0.113.0/24", "via", "198.51.100.2", "dev", "port1")
		script := filepath.Join(t.TempDir(), "redirect.py")
		os.WriteFile(script, []byte(redirectScript), 0o644)
		var got string
		for i := 0; i < 10; i++ {
			// The first redirect makes ferryd resolve the new gateway; a
			// later one is accepted, as the kernel does.
			a.must(t, "python3", script, "192.0.2.1", "192.0.2.3", "192.0.2.1", "203.0.113.5")
			time.Sleep(200 * time.Millisecond)
			got = r.mustCtl("route", "get", "203.0.113.5")
			if strings.Contains(got, "via 192.0.2.3") {
				break
			}
		}
		if !strings.Contains(got, "via 192.0.2.3 dev port0") || !strings.Contains(got, "cache <redirected>") {
			t.Fatalf("redirect not applied:\n%s\n%s", got, r.mustCtl("stats"))
		}
		if other := r.mustCtl("route", "get", "203.0.113.6"); !strings.Contains(other, "via 192.0.2.2") {
			t.Fatalf("redirect moved another destination:\n%s", other)
		}
		if cacheList := r.mustCtl("route", "show", "cache"); !strings.Contains(cacheList, "203.0.113.5 via 192.0.2.3") {
			t.Fatalf("route show cache:\n%s", cacheList)
		}
		r.mustCtl("route", "flush", "cache")
		if got := r.mustCtl("route", "get", "203.0.113.5"); !strings.Contains(got, "via 192.0.2.2") {
			t.Fatalf("flush cache kept the redirect:\n%s", got)
		}
	})

	// (4) Traffic that hairpins out its ingress port earns its sender a
	// redirect that the sender's kernel accepts.
	t.Run("SendRedirect", func(t *testing.T) {
		for _, k := range []string{"all", "br0"} {
			a.must(t, "sysctl", "-qw", "net.ipv4.conf."+k+".secure_redirects=0")
			a.must(t, "sysctl", "-qw", "net.ipv4.conf."+k+".accept_redirects=1")
		}
		out, err := a.run(t, "ping", "-c", "3", "-i", "0.2", "-W", "1", "10.9.0.1")
		if err != nil {
			t.Fatalf("ping 10.9.0.1: %v\n%s", err, out)
		}
		got := a.must(t, "ip", "route", "get", "10.9.0.1")
		if !strings.Contains(got, "via 192.0.2.3") || !strings.Contains(got, "redirected") {
			t.Fatalf("A's kernel did not take the redirect:\n%s\n%s", got, r.mustCtl("stats"))
		}
	})
	_ = b
}

func atoi(s string) int { v, _ := strconv.Atoi(s); return v }

// tcpTransfer sends n random bytes from one host to another with nc and
// checks they arrive intact.
func tcpTransfer(t *testing.T, from, to *netns, addr string, n int) time.Duration {
	t.Helper()
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	data := make([]byte, n)
	rand.Read(data)
	os.WriteFile(src, data, 0o644)
	recv := make(chan error, 1)
	go func() {
		out, err := to.run(t, "sh", "-c", fmt.Sprintf("timeout 60 nc -l -p 5002 > %s < /dev/null", dst))
		if err != nil {
			err = fmt.Errorf("%v: %s", err, out)
		}
		recv <- err
	}()
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	var out string
	var err error
	for i := 0; i < 10; i++ {
		if out, err = from.run(t, "sh", "-c", fmt.Sprintf("timeout 60 nc -N %s 5002 < %s", addr, src)); err == nil {
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("send: %v\n%s", err, out)
	}
	if err := <-recv; err != nil {
		t.Fatalf("receive: %v", err)
	}
	took := time.Since(start)
	got, _ := os.ReadFile(dst)
	if string(got) != string(data) {
		t.Fatalf("transfer corrupted: %d of %d bytes", len(got), n)
	}
	return took
}

// redirectScript sends an ICMP host redirect from this host (the current
// gateway) to ROUTER: "for INNER_DST use NEW_GW", quoting a packet from
// INNER_SRC.
const redirectScript = `import socket, struct, sys
router, new_gw, inner_src, inner_dst = sys.argv[1:5]
def csum(b):
    if len(b) % 2: b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b)//2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
inner = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 28, 1, 0, 64, 17, 0,
                    socket.inet_aton(inner_src), socket.inet_aton(inner_dst))
inner = inner[:10] + struct.pack('!H', csum(inner)) + inner[12:] + struct.pack('!HHHH', 1234, 53, 8, 0)
msg = struct.pack('!BBH4s', 5, 1, 0, socket.inet_aton(new_gw)) + inner
msg = msg[:2] + struct.pack('!H', csum(msg)) + msg[4:]
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
s.sendto(msg, (router, 0))
`
