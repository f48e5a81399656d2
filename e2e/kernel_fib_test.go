package e2e

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"ferry/conf"
	"ferry/netaddr"
)

// kernelTable builds routes and rules that exercise every route type,
// several tables, policy rules, throw and multipath, in ip(8) batch syntax.
func kernelTable(r *rand.Rand) (lines []string, multipath []string) {
	gws := []string{"192.0.2.2", "192.0.2.3", "198.51.100.2", "198.51.100.3"}
	dev := func(gw string) string {
		if strings.HasPrefix(gw, "192.") {
			return "port0"
		}
		return "port1"
	}
	seen := map[string]bool{}
	prefix := func() string {
		for {
			l := []int{8, 12, 16, 20, 22, 24, 24, 24, 26, 28, 32}[r.Intn(11)]
			a := uint32(10)<<24 | r.Uint32()&0x00ffffff
			if r.Intn(4) == 0 {
				a = uint32(172)<<24 | uint32(16+r.Intn(16))<<16 | r.Uint32()&0xffff
			}
			p := netaddr.Prefix{Addr: a & netaddr.Mask(uint8(l)), Len: uint8(l)}.String()
			if !seen[p] {
				seen[p] = true
				return p
			}
		}
	}
	add := func(s string, args ...any) { lines = append(lines, fmt.Sprintf(s, args...)) }
	for i := 0; i < 300; i++ {
		p := prefix()
		gw := gws[r.Intn(len(gws))]
		switch k := r.Intn(20); {
		case k < 11:
			add("route add %s via %s dev %s", p, gw, dev(gw))
		case k < 13:
			add("route add %s via %s metric %d", p, gw, 10+r.Intn(100))
			gw2 := gws[r.Intn(len(gws))]
			add("route add %s via %s metric %d", p, gw2, 200+r.Intn(100))
		case k < 14:
			add("route add blackhole %s", p)
		case k < 15:
			add("route add unreachable %s", p)
		case k < 16:
			add("route add prohibit %s", p)
		case k < 17:
			add("route add %s dev %s", p, dev(gw))
		case k < 18:
			add("route add %s tos 0x10 via %s", p, gw)
			add("route add %s via %s", p, gws[r.Intn(len(gws))])
		default:
			add("route add %s nexthop via %s weight 1 nexthop via %s weight 2", p, gws[0], gws[2])
			multipath = append(multipath, p)
		}
	}
	for _, t := range []int{100, 200, 300, 400} {
		for i := 0; i < 25; i++ {
			p := prefix()
			gw := gws[r.Intn(len(gws))]
			switch r.Intn(6) {
			case 0:
				add("route add throw %s table %d", p, t)
			case 1:
				add("route add unreachable %s table %d", p, t)
			default:
				add("route add %s via %s table %d", p, gw, t)
			}
		}
		add("route add 10.0.0.0/8 via %s table %d", gws[t/100%4], t)
	}
	add("route add default via 198.51.100.2")
	add("rule add from 10.1.0.0/16 lookup 100 priority 100")
	add("rule add fwmark 0x5 lookup 200 priority 200")
	add("rule add iif port1 lookup 300 priority 300")
	add("rule add tos 0x08 lookup 400 priority 400")
	add("rule add to 172.20.0.0/16 prohibit priority 500")
	add("rule add not from 10.0.0.0/8 iif port1 blackhole priority 600")
	return lines, multipath
}

// jsonSet is a JSON list as the set of its objects, each in canonical
// form (keys sorted); the local table's are left out (the kernel's has
// its own interfaces' entries).
func jsonSet(t *testing.T, s string) map[string]bool {
	t.Helper()
	var list []map[string]any
	if err := json.Unmarshal([]byte(s), &list); err != nil {
		t.Fatalf("not a JSON list: %v\n%.300s", err, s)
	}
	out := map[string]bool{}
	for _, o := range list {
		if o["table"] == "local" {
			continue
		}
		b, _ := json.Marshal(o)
		out[string(b)] = true
	}
	return out
}

func first(s []string, n int) []string { return s[:min(n, len(s))] }

var kernelNoise = regexp.MustCompile(` uid \d+|\s*\n\s*cache.*|\s+iif \S+|\s+$`)

func normalizeGet(s string) string {
	s = strings.TrimSpace(s)
	s = kernelNoise.ReplaceAllString(s, "")
	return strings.Join(strings.Fields(s), " ")
}

// TestRouteGetMatchesKernel loads the same routes and rules into a real
// kernel (a namespace with veth ports named like ferry's) and into ferryd,
// then compares `ip route get` with `ferryctl route get` for thousands of
// lookups with from/iif/tos/mark variants.
func TestRouteGetMatchesKernel(t *testing.T) {
	needRoot(t)
	k := newNetns(t, uniq("fyK"))
	for i, addr := range []string{"192.0.2.1/24", "198.51.100.1/24"} {
		p := fmt.Sprintf("port%d", i)
		k.must(t, "ip", "link", "add", p, "type", "veth", "peer", "name", p+"peer")
		k.must(t, "ip", "addr", "add", addr, "dev", p)
		k.must(t, "ip", "link", "set", p, "up")
		k.must(t, "ip", "link", "set", p+"peer", "up")
	}
	k.must(t, "sysctl", "-qw", "net.ipv4.ip_forward=1")

	r := startRouter(t, fmt.Sprintf(`eal: ["--no-huge", "-m", "256", "--no-pci", "--file-prefix", "%s"]
cores: [%d]
api: "@SOCKET@"
gratuitous_arp: 0
ports:
  - {name: port0, dev: "net_null0", addresses: ["192.0.2.1/24"]}
  - {name: port1, dev: "net_null1", addresses: ["198.51.100.1/24"]}
`, uniq("fykfib"), pipelineCore()))

	rnd := rand.New(rand.NewSource(42))
	lines, multipath := kernelTable(rnd)
	dir := t.TempDir()
	batch := filepath.Join(dir, "routes.batch")
	os.WriteFile(batch, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
	k.must(t, "ip", "-batch", batch)
	r.mustCtl("-batch", batch)

	t.Run("JSONAsIproute2", func(t *testing.T) {
		for _, nb := range [][]string{{"192.0.2.9", "02:00:00:00:00:09", "port0"}, {"198.51.100.9", "02:00:00:00:00:19", "port1"}} {
			k.must(t, "ip", "neigh", "add", nb[0], "lladdr", nb[1], "dev", nb[2], "nud", "permanent")
			r.mustCtl("neigh", "add", nb[0], "lladdr", nb[1], "dev", nb[2], "nud", "permanent")
		}
		for _, c := range []struct {
			name          string
			kernel, ferry []string
		}{
			{"route show table all", []string{"-4", "-j", "route", "show", "table", "all"}, []string{"-json", "route", "show", "table", "all"}},
			{"route show", []string{"-4", "-j", "route", "show"}, []string{"-json", "route", "show"}},
			{"route show table 100", []string{"-4", "-j", "route", "show", "table", "100"}, []string{"-json", "route", "show", "table", "100"}},
			{"rule show", []string{"-4", "-j", "rule", "show"}, []string{"-json", "rule", "show"}},
			{"neigh show nud permanent", []string{"-4", "-j", "neigh", "show", "nud", "permanent"}, []string{"-json", "neigh", "show", "nud", "permanent"}},
		} {
			kern, fer := jsonSet(t, k.must(t, append([]string{"ip"}, c.kernel...)...)), jsonSet(t, r.mustCtl(c.ferry...))
			var missing, extra []string
			for o := range kern {
				if !fer[o] {
					missing = append(missing, o)
				}
			}
			for o := range fer {
				if !kern[o] {
					extra = append(extra, o)
				}
			}
			sort.Strings(missing)
			sort.Strings(extra)
			if len(missing)+len(extra) > 0 {
				t.Errorf("%s -j: %d objects only the kernel's, %d only ferry's; first of each:\n%v\n%v",
					c.name, len(missing), len(extra), first(missing, 5), first(extra, 5))
			}
		}
	})

	// Queries: addresses inside the prefixes (and around them), with variants.
	var queries [][]string
	pfx := regexp.MustCompile(`(\d+\.\d+\.\d+\.\d+)/(\d+)`)
	var bases []uint32
	for _, l := range lines {
		if m := pfx.FindStringSubmatch(l); m != nil {
			var a, b, c, d, n int
			fmt.Sscanf(m[1]+"/"+m[2], "%d.%d.%d.%d/%d", &a, &b, &c, &d, &n)
			bases = append(bases, uint32(a)<<24|uint32(b)<<16|uint32(c)<<8|uint32(d))
		}
	}
	ip := netaddr.IPv4String
	variants := [][]string{nil, {"mark", "5"}, {"tos", "0x10"}, {"tos", "0x08"},
		{"from", "10.1.2.3", "iif", "port0"}, {"from", "10.200.0.1", "iif", "port1"},
		{"from", "172.16.0.9", "iif", "port1"}, {"from", "192.0.2.1"}}
	for i := 0; i < 3000; i++ {
		var d uint32
		switch rnd.Intn(4) {
		case 0:
			d = rnd.Uint32()&0x00ffffff | 10<<24
		case 1:
			d = uint32(192)<<24 | 2<<8 | uint32(rnd.Intn(256))
		default:
			d = bases[rnd.Intn(len(bases))] + uint32(rnd.Intn(256))
		}
		q := append([]string{ip(d)}, variants[rnd.Intn(len(variants))]...)
		queries = append(queries, q)
	}
	// 127.0.0.0/8 is left out: ferry has no loopback device.
	queries = append(queries, []string{"192.0.2.1"}, []string{"198.51.100.255"}, []string{"192.0.2.255"}, []string{"198.51.100.1", "from", "10.1.2.3", "iif", "port0"})

	// Kernel answers, one shell for all.
	var sh strings.Builder
	for _, q := range queries {
		fmt.Fprintf(&sh, "echo '###'; ip route get %s 2>&1\n", strings.Join(q, " "))
	}
	script := filepath.Join(dir, "get.sh")
	os.WriteFile(script, []byte(sh.String()), 0o755)
	kout, _ := k.run(t, "sh", script)
	kern := strings.Split(kout, "###\n")[1:]
	if len(kern) != len(queries) {
		t.Fatalf("kernel gave %d answers for %d queries", len(kern), len(queries))
	}

	cl, err := conf.Dial(r.socket)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	mismatches := 0
	compared := 0
	for i, q := range queries {
		resp, err := cl.Do(conf.Request{Args: append([]string{"route", "get"}, q...)})
		if err != nil {
			t.Fatal(err)
		}
		got := resp.Output
		if !resp.OK {
			got = resp.Error
		}
		want, have := normalizeGet(kern[i]), normalizeGet(got)
		if inMultipath(q[0], multipath) && strings.Contains(want, " via ") && !strings.Contains(want, " table ") {
			// The kernel's multipath hash has a random seed: only the
			// candidate set is comparable.
			if !strings.Contains(have, "via 192.0.2.2 ") && !strings.Contains(have, "via 198.51.100.2 ") {
				t.Errorf("route get %s: ferry chose outside the multipath set: %q", strings.Join(q, " "), have)
			}
			continue
		}
		compared++
		if want != have {
			mismatches++
			if mismatches <= 15 {
				t.Errorf("route get %s:\n  kernel: %s\n  ferry:  %s", strings.Join(q, " "), want, have)
			}
		}
	}
	t.Logf("compared %d lookups with the kernel (%d routes and rules), %d mismatches", compared, len(lines), mismatches)
	if mismatches > 0 {
		t.Fatalf("%d of %d lookups differ from the kernel", mismatches, compared)
	}
}

func inMultipath(addr string, prefixes []string) bool {
	var a, b, c, d int
	fmt.Sscanf(addr, "%d.%d.%d.%d", &a, &b, &c, &d)
	x := uint32(a)<<24 | uint32(b)<<16 | uint32(c)<<8 | uint32(d)
	for _, p := range prefixes {
		var n int
		fmt.Sscanf(p, "%d.%d.%d.%d/%d", &a, &b, &c, &d, &n)
		y := uint32(a)<<24 | uint32(b)<<16 | uint32(c)<<8 | uint32(d)
		m := ^uint32(0) << (32 - n)
		if x&m == y&m {
			return true
		}
	}
	return false
}
