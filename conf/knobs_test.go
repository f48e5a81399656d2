package conf

import (
	"strings"
	"testing"
)

func TestKnobShowLayout(t *testing.T) {
	r := testRouter(t)
	got := exec(t, r, "knob show")
	want := `fib_multipath_hash_policy = 0
forward_use_pmtu = 0
icmp_msgs_burst = 50
icmp_msgs_per_sec = 1000
min_pmtu = 552
mtu_expires = 600
redirect_number = 9
redirect_silence = 20480
port0.mtu = 1500
port0.accept_redirects = 0
port0.secure_redirects = 0
port0.send_redirects = 0
port0.neigh.app_solicit = 0
port0.neigh.arp_accept = 0
port0.neigh.base_reachable_time = 30
port0.neigh.base_reachable_time_ms = 30000
`
	if !strings.HasPrefix(got, want) {
		t.Fatalf("knob show:\n%s", got)
	}
	if n := strings.Count(got, "\n"); n != 8+2*(4+17) {
		t.Fatalf("knob show has %d lines:\n%s", n, got)
	}
}

func TestKnobSetErrors(t *testing.T) {
	r := testRouter(t)
	for _, c := range []struct{ cmd, err string }{
		{"knob set x", "knob set: want NAME VALUE (global: forward_use_pmtu, min_pmtu, mtu_expires, redirect_number, redirect_silence, icmp_msgs_per_sec, icmp_msgs_burst, fib_multipath_hash_policy; per port with dev PORT: mtu, accept_redirects, secure_redirects, send_redirects)"},
		{"knob set bogus 1", `unknown knob "bogus" (global: forward_use_pmtu, min_pmtu, mtu_expires, redirect_number, redirect_silence, icmp_msgs_per_sec, icmp_msgs_burst, fib_multipath_hash_policy)`},
		{"knob set mtu 1400", "knob mtu is per port: knob set dev PORT mtu VALUE"},
		{"knob set forward_use_pmtu maybe", `"maybe" is not a boolean (0/1, on/off)`},
		{"knob set min_pmtu 67", `min_pmtu: "67" is not a number in 68-9000`},
		{"knob set dev port9 mtu 1400", `Cannot find device "port9"`},
		{"knob set dev port0 min_pmtu 1000", `unknown port knob "min_pmtu" (per port: mtu, accept_redirects, secure_redirects, send_redirects, neigh.<name>)`},
		{"knob set dev port0 mtu x", `mtu: "x" is not a number in 68-9000`},
		{"knob set dev port0 accept_redirects maybe", `accept_redirects: "maybe" is not a boolean (0/1, on/off)`},
		{"knob set dev port0 neigh.bogus x", `neigh.bogus: "x" is not a number`},
		{"knob set dev port0 neigh.gc_thresh3 -1", "gc_thresh3: must not be negative"},
	} {
		_, _, err := r.Exec(strings.Fields(c.cmd), false)
		if err == nil || err.Error() != c.err {
			t.Errorf("%s: error %v, want %s", c.cmd, err, c.err)
		}
	}
	exec(t, r, "knob set dev port1 neigh.proxy_arp 1")
	if !r.Dataplane.Ports()[1].ProxyARP {
		t.Error("neigh.proxy_arp did not reach the port's settings")
	}
}
