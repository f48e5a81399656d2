package conf

import (
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"ferry/cache"
	"ferry/cache/neigh"
	"ferry/netaddr"
	"ferry/pipeline"
)

type nullTx struct{}

func (nullTx) Solicit(int, uint32, *netaddr.MAC) error { return nil }

type sysClock struct{}

func (sysClock) Now() time.Time { return time.Now() }

type noLinks struct{}

func (noLinks) Links() []LinkStat { return nil }

func testRouter(t testing.TB) *Router {
	c, err := Parse("test.yaml", []byte(goodConfig))
	if err != nil {
		t.Fatal(err)
	}
	gen := &cache.GenID{}
	f, err := BuildFIB(c, "test.yaml", gen)
	if err != nil {
		t.Fatal(err)
	}
	var infos []pipeline.PortInfo
	var nps []neigh.PortConfig
	for _, p := range c.Ports {
		infos = append(infos, pipeline.PortInfo{Name: p.Name, MTU: p.MTU})
		nps = append(nps, neigh.PortConfig{Name: p.Name, Params: neigh.DefaultParams()})
	}
	nm := neigh.NewManager(nps, 1, sysClock{}, nullTx{}, nil)
	sh := pipeline.NewDataplane(f, gen, nm, nil, infos, 1)
	return &Router{FIB: f, Gen: gen, Neigh: nm, Dataplane: sh, Links: noLinks{}}
}

func exec(t *testing.T, r *Router, cmd string) string {
	t.Helper()
	out, _, err := r.Exec(strings.Fields(cmd), false)
	if err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	return out
}

func TestRouterCommands(t *testing.T) {
	r := testRouter(t)
	if got := strings.TrimSpace(exec(t, r, "route get 203.0.113.5")); got != "203.0.113.5 via 198.51.100.2 dev port1 src 198.51.100.1" {
		t.Fatalf("route get: %q", got)
	}
	exec(t, r, "route add 10.0.0.0/8 via 192.0.2.9 metric 5")
	if got := exec(t, r, "route show"); !strings.Contains(got, "10.0.0.0/8 via 192.0.2.9 dev port0 metric 5") {
		t.Fatalf("route show:\n%s", got)
	}
	if _, _, err := r.Exec(strings.Fields("route add 10.0.0.0/8 via 192.0.2.9 metric 5"), false); err == nil || !strings.Contains(err.Error(), "File exists") {
		t.Fatalf("duplicate add: %v", err)
	}
	exec(t, r, "route del 10.0.0.0/8 via 192.0.2.9 metric 5")
	if _, _, err := r.Exec(strings.Fields("route get 10.1.1.1"), false); err == nil || !strings.Contains(err.Error(), "Network is unreachable") {
		t.Fatalf("route get without a route: %v", err)
	}
	exec(t, r, "route add blackhole 10.66.0.0/16")
	if _, _, err := r.Exec(strings.Fields("route get 10.66.1.1"), false); err == nil {
		t.Fatal("route get through a blackhole succeeded")
	}
	before := r.Gen.Bumps()
	exec(t, r, "rule add from 10.1.0.0/16 lookup 100 priority 100")
	if r.Gen.Bumps() == before {
		t.Fatal("a rule change did not bump the genid")
	}
	if got := exec(t, r, "rule show"); !strings.Contains(got, "100:\tfrom 10.1.0.0/16 lookup 100") {
		t.Fatalf("rule show:\n%s", got)
	}
	before = r.Gen.Bumps()
	exec(t, r, "knob set dev port0 accept_redirects 1")
	exec(t, r, "knob set forward_use_pmtu 1")
	if r.Gen.Bumps() < before+2 || !r.Dataplane.Ports()[0].AcceptRedirects || !r.Dataplane.Knobs().ForwardUsePMTU {
		t.Fatal("knob changes not applied or no genid bump")
	}
	exec(t, r, "knob set dev port1 neigh.base_reachable_time_ms 2000")
	if p, _ := r.Neigh.Params(1); p.BaseReachableTime != 2*time.Second {
		t.Fatalf("neigh knob: %v", p.BaseReachableTime)
	}
	if got := exec(t, r, "knob show"); !strings.Contains(got, "port0.accept_redirects = 1") || !strings.Contains(got, "port1.neigh.base_reachable_time_ms = 2000") {
		t.Fatalf("knob show:\n%s", got)
	}
	for _, bad := range []string{"knob set bogus 1", "knob set dev port9 mtu 1400", "knob set dev port0 mtu 20", "route get 1.2.3", "frobnicate", "neigh add 192.0.2.9 lladdr zz dev port0"} {
		if _, _, err := r.Exec(strings.Fields(bad), false); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	exec(t, r, "neigh add 192.0.2.9 lladdr 02:00:00:00:00:09 dev port0")
	if got := exec(t, r, "neigh show"); !strings.Contains(got, "192.0.2.9 dev port0 lladdr 02:00:00:00:00:09 PERMANENT") {
		t.Fatalf("neigh show:\n%s", got)
	}
	if got := exec(t, r, "cache stats"); !strings.Contains(got, "genid_bumps") || !strings.Contains(got, "fib_slow_walks") || !strings.Contains(got, "fib_used_blocks") {
		t.Fatalf("cache stats:\n%s", got)
	}
	// The collector's cycles, as the benchmark reads them: a cycle forced
	// here shows.
	rt0 := runtimeStats(t, r)
	runtime.GC()
	if after := runtimeStats(t, r); after.GCCycles <= rt0.GCCycles || after.HeapBytes == 0 {
		t.Fatalf("runtime stats across a collection: %+v, then %+v", rt0, after)
	}
}

func runtimeStats(t *testing.T, r *Router) RuntimeStats {
	t.Helper()
	_, data, err := r.Exec([]string{"stats"}, true)
	if err != nil {
		t.Fatal(err)
	}
	bs, err := json.Marshal(data)
	if err != nil {
		t.Fatal(err)
	}
	var st struct{ Runtime RuntimeStats }
	if err := json.Unmarshal(bs, &st); err != nil {
		t.Fatal(err)
	}
	return st.Runtime
}

func TestBatchStopsAtFirstFailure(t *testing.T) {
	r := testRouter(t)
	cmds := [][]string{
		strings.Fields("route add 10.1.0.0/16 via 192.0.2.9"),
		strings.Fields("route add 10.2.0.0/16 via 192.0.2.9"),
		strings.Fields("route get 10.1.0.1"),
		strings.Fields("route add 10.3.0.0/16 via 203.0.113.9"), // gateway not on a link
		strings.Fields("route add 10.4.0.0/16 via 192.0.2.9"),
	}
	out, failed, err := r.ExecBatch(cmds)
	if err == nil || failed != 3 {
		t.Fatalf("failed at %d (%v), want 3", failed, err)
	}
	if !strings.Contains(out, "10.1.0.1 via 192.0.2.9") {
		t.Fatalf("output before the failure: %q", out)
	}
	if _, _, err := r.Exec(strings.Fields("route get 10.4.0.1"), false); err == nil {
		t.Fatal("a command after the failure ran")
	}
}

// Route changes, multipath, throw and rules in one batch complete (the
// parser must not need the lock a FIB batch holds).
func TestBatchMixedCommands(t *testing.T) {
	r := testRouter(t)
	var cmds [][]string
	for _, l := range []string{
		"route add 10.1.0.0/16 via 192.0.2.2 dev port0",
		"route add 10.2.0.0/24 nexthop via 192.0.2.2 weight 1 nexthop via 198.51.100.2 weight 2",
		"route add throw 10.3.0.0/16 table 100",
		"route add 10.0.0.0/8 via 192.0.2.3 table 100",
		"rule add from 10.1.0.0/16 lookup 100 priority 100",
		"route add default via 198.51.100.2",
	} {
		cmds = append(cmds, strings.Fields(l))
	}
	done := make(chan error, 1)
	go func() { _, _, err := r.ExecBatch(cmds); done <- err }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("batch did not complete")
	}
	if got := exec(t, r, "route get 10.9.9.9 from 10.1.2.3 iif port0"); !strings.Contains(got, "via 192.0.2.3") {
		t.Fatalf("rule and table 100 not applied: %q", got)
	}
}

// fib_multipath_hash_policy 1 makes route get's ipproto/sport/dport choose
// among a multipath route's nexthops; with 0 they do not matter.
func TestRouteGetMultipathHashPolicy(t *testing.T) {
	r := testRouter(t)
	exec(t, r, "route add 10.9.0.0/16 nexthop via 198.51.100.2 nexthop via 198.51.100.3")
	gateways := func() map[string]bool {
		seen := map[string]bool{}
		for port := 1000; port < 1032; port++ {
			out := exec(t, r, fmt.Sprintf("route get 10.9.1.1 from 192.0.2.2 iif port0 ipproto udp sport %d dport 53", port))
			f := strings.Fields(out)
			for i := 0; i+1 < len(f); i++ {
				if f[i] == "via" {
					seen[f[i+1]] = true
				}
			}
		}
		return seen
	}
	if g := gateways(); len(g) != 1 {
		t.Fatalf("L3 hash: ports chose %v", g)
	}
	exec(t, r, "knob set fib_multipath_hash_policy 1")
	if !r.Dataplane.Knobs().MultipathHashL4 || !strings.Contains(exec(t, r, "knob show"), "fib_multipath_hash_policy = 1") {
		t.Fatal("knob not applied")
	}
	if g := gateways(); len(g) != 2 {
		t.Fatalf("L3+L4 hash: ports chose %v", g)
	}
	for _, bad := range []string{"knob set fib_multipath_hash_policy 2", "route get 10.9.1.1 ipproto bogus", "route get 10.9.1.1 sport 70000"} {
		if _, _, err := r.Exec(strings.Fields(bad), false); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

type fixedLinks []LinkStat

func (l fixedLinks) Links() []LinkStat { return l }

// link show names each port's driver and the receive offloads it runs
// with, in text and JSON; a port with none says so.
func TestLinkShowOffloads(t *testing.T) {
	r := testRouter(t)
	r.Links = fixedLinks{
		{Name: "port0", Dev: "0000:01:00.0", MAC: "02:00:00:00:00:01", MTU: 1500, Driver: "net_ixgbe", RxOffloads: []string{"ipv4_cksum"}},
		{Name: "port1", Dev: "net_pcap0", MAC: "02:00:00:00:00:02", MTU: 1500, Driver: "net_pcap"},
	}
	out, data, err := r.Exec([]string{"link", "show"}, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"    driver net_ixgbe rx offloads ipv4_cksum\n", "    driver net_pcap rx offloads none\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("link show lacks %q:\n%s", want, out)
		}
	}
	js, err := json.Marshal(data)
	if err != nil {
		t.Fatal(err)
	}
	var links []struct {
		Name       string   `json:"ifname"`
		Driver     string   `json:"driver"`
		RxOffloads []string `json:"rx_offloads"`
	}
	if err := json.Unmarshal(js, &links); err != nil {
		t.Fatal(err)
	}
	if len(links) != 2 || links[0].Driver != "net_ixgbe" || len(links[0].RxOffloads) != 1 || links[0].RxOffloads[0] != "ipv4_cksum" ||
		links[1].Driver != "net_pcap" || links[1].RxOffloads != nil {
		t.Errorf("link show -json: %s", js)
	}
}
