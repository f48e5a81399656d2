package neigh

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"ferry/netaddr"
)

func portIdx(name string) (int, bool) {
	switch name {
	case "port0":
		return 0, true
	case "port1":
		return 1, true
	}
	return -1, false
}

func portName(i int) string { return []string{"port0", "port1"}[i] }

func TestParseNeigh(t *testing.T) {
	mac := netaddr.MAC{2, 0, 0, 0, 0, 9}
	cases := []struct {
		in   string
		want Request
	}{
		{"neigh add 192.0.2.9 lladdr 02:00:00:00:00:09 dev port0 nud permanent",
			Request{Cmd: CmdAdd, Port: 0, IP: 0xc0000209, MAC: mac, HasMAC: true, State: Permanent}},
		{"add 192.0.2.9 lladdr 2:0:0:0:0:9 dev port1",
			Request{Cmd: CmdAdd, Port: 1, IP: 0xc0000209, MAC: mac, HasMAC: true, State: Permanent}},
		{"neighbour replace to 192.0.2.9 lladdr 02:00:00:00:00:09 nud reachable dev port0",
			Request{Cmd: CmdReplace, Port: 0, IP: 0xc0000209, MAC: mac, HasMAC: true, State: Reachable}},
		{"n change 192.0.2.9 dev port0 nud stale lladdr 02:00:00:00:00:09",
			Request{Cmd: CmdChange, Port: 0, IP: 0xc0000209, MAC: mac, HasMAC: true, State: Stale}},
		{"chg 192.0.2.9 dev port0 nud noarp lladdr 02:00:00:00:00:09",
			Request{Cmd: CmdChange, Port: 0, IP: 0xc0000209, MAC: mac, HasMAC: true, State: NoARP}},
		{"del 192.0.2.9 dev port0", Request{Cmd: CmdDel, Port: 0, IP: 0xc0000209, State: Permanent}},
		{"neigh add 192.0.2.9 lladdr null dev port0 nud failed", Request{Cmd: CmdAdd, Port: 0, IP: 0xc0000209, State: Failed}},
		{"", Request{Cmd: CmdShow, Port: -1}},
		{"neigh", Request{Cmd: CmdShow, Port: -1}},
		{"show dev port1", Request{Cmd: CmdShow, Port: 1}},
		{"ls to 192.0.2.0/24 nud reachable nud stale",
			Request{Cmd: CmdShow, Port: -1, Prefix: 0xc0000200, PrefixLen: 24, StateMask: uint32(Reachable | Stale)}},
		{"list 192.0.2.7/24 nud all", Request{Cmd: CmdShow, Port: -1, Prefix: 0xc0000200, PrefixLen: 24, StateMask: 0x1ff}},
		{"flush dev port0", Request{Cmd: CmdFlush, Port: 0}},
		{"flush all", Request{Cmd: CmdFlush, Port: -1}},
		{"flush dev port0 nud none", Request{Cmd: CmdFlush, Port: 0, StateMask: StateNoneBit}},
	}
	for _, tc := range cases {
		got, err := ParseNeigh(strings.Fields(tc.in), portIdx)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q:\n got %+v\nwant %+v", tc.in, got, tc.want)
		}
		// Round trip through String.
		again, err := ParseNeigh(strings.Fields(got.String(portName)), portIdx)
		if err != nil || !reflect.DeepEqual(again, got) {
			t.Errorf("%q: round trip %q -> %+v, %v", tc.in, got.String(portName), again, err)
		}
	}
}

func TestParseNeighErrors(t *testing.T) {
	cases := []struct{ in, want string }{
		{"frob", "unknown"},
		{"add 192.0.2.9 lladdr 02:00:00:00:00:09", "device and destination are required"},
		{"add lladdr 02:00:00:00:00:09 dev port0", "device and destination are required"},
		{"add 192.0.2.9 dev port9", "cannot find device"},
		{"add 192.0.2.9 dev", "requires an argument"},
		{"add 192.0.2.9 lladdr 02:00:00:00:00 dev port0", "lladdr"},
		{"add 192.0.2.9 lladdr 02:00:00:00:00:0g dev port0", "lladdr"},
		{"add 192.0.2.9 lladdr 02:00:00:00:00:009 dev port0", "lladdr"},
		{"add 192.0.2.9 lladdr 02:00:00:00:00:09:01 dev port0", "lladdr"},
		{"add 192.0.2.9 nud bogus dev port0", "nud state"},
		{"add 192.0.2.9 nud 3 dev port0", "nud state"},
		{"add 2001:db8::1 dev port0", "not an IPv4"},
		{"add 192.0.2.256 dev port0", "not an IPv4"},
		{"add 192.0.2.9 192.0.2.10 dev port0", "duplicate"},
		{"add 192.0.2.9 dev port0 dev port1", "duplicate"},
		{"add proxy 192.0.2.9 dev port0", "not supported"},
		{"flush", "requires arguments"},
		{"show 192.0.2.0/33", "bad length"},
		{"show nud whatever", "nud state"},
		{"show dev nope", "cannot find device"},
	}
	for _, tc := range cases {
		_, err := ParseNeigh(strings.Fields(tc.in), portIdx)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one containing %q", tc.in, err, tc.want)
		}
	}
	if _, err := ParseNeigh([]string{"add", "192.0.2.9", "dev", "port0"}, nil); err == nil {
		t.Error("nil portIndex accepted")
	}
}

func TestFormat(t *testing.T) {
	cases := []struct {
		e    EntryInfo
		port string
		want string
	}{
		{EntryInfo{IP: 0xc0000202, MAC: peerMAC, HasMAC: true, State: Reachable}, "port0", "192.0.2.2 dev port0 lladdr 02:11:22:33:44:55 REACHABLE"},
		{EntryInfo{IP: 0xc0000209, MAC: peerMAC, HasMAC: true, State: Failed}, "port0", "192.0.2.9 dev port0 FAILED"},
		{EntryInfo{IP: 0xc0000203, State: Incomplete}, "port0", "192.0.2.3 dev port0 INCOMPLETE"},
		{EntryInfo{IP: 0xc0000209, MAC: netaddr.MAC{2, 0, 0, 0, 0, 9}, HasMAC: true, State: Permanent}, "port0", "192.0.2.9 dev port0 lladdr 02:00:00:00:00:09 PERMANENT"},
		{EntryInfo{IP: 0xc0000209, MAC: peerMAC, HasMAC: true, State: Stale}, "", "192.0.2.9 lladdr 02:11:22:33:44:55 STALE"},
		{EntryInfo{IP: 0xc0000209}, "port0", "192.0.2.9 dev port0"},
	}
	for _, tc := range cases {
		if got := Format(tc.e, tc.port); got != tc.want {
			t.Errorf("got %q want %q", got, tc.want)
		}
	}
	e := EntryInfo{IP: 0xc0000202, MAC: peerMAC, HasMAC: true, State: Reachable, Used: 10e9, Confirmed: 5e9, Updated: 3e9, Probes: 1}
	if got, want := FormatStats(e, "port0"), "192.0.2.2 dev port0 lladdr 02:11:22:33:44:55 used 10/5/3 probes 1 REACHABLE"; got != want {
		t.Errorf("got %q want %q", got, want)
	}
	if s := (Probe | Failed).String(); s != "PROBE,FAILED" {
		t.Errorf("combined state %q", s)
	}
	for _, s := range []State{Permanent, NoARP, Reachable, Probe, Stale, Delay} {
		if !s.Valid() {
			t.Errorf("%v not valid", s)
		}
	}
	for _, s := range []State{None, Incomplete, Failed} {
		if s.Valid() {
			t.Errorf("%v valid", s)
		}
	}
}

// TestAdminRoundTrip parses commands, applies them and checks ip neigh show.
func TestAdminRoundTrip(t *testing.T) {
	h := newHarness(t, 1, ethPort("port0", DefaultParams()), ethPort("port1", DefaultParams()))
	run := func(cmd string) error {
		req, err := ParseNeigh(strings.Fields(cmd), h.m.PortIndex)
		if err != nil {
			return err
		}
		return h.m.Apply(req)
	}
	show := func(cmd string) string {
		req, err := ParseNeigh(strings.Fields(cmd), h.m.PortIndex)
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		for _, e := range h.m.Show(req) {
			name := h.m.PortName(e.Port)
			if req.Port >= 0 {
				name = ""
			}
			lines = append(lines, Format(e, name))
		}
		return strings.Join(lines, "\n")
	}
	must := func(cmd string) {
		t.Helper()
		if err := run(cmd); err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
	}
	must("neigh add 192.0.2.9 lladdr 02:00:00:00:00:09 dev port0 nud permanent")
	must("neigh add 192.0.2.10 lladdr 02:00:00:00:00:0a dev port0 nud noarp")
	must("neigh add 192.0.2.11 lladdr 02:00:00:00:00:0b dev port1 nud stale")
	must("neigh replace 192.0.2.12 lladdr 02:00:00:00:00:0c dev port1 nud reachable")
	if err := run("neigh add 192.0.2.9 lladdr 02:00:00:00:00:09 dev port0"); !errors.Is(err, ErrExist) {
		t.Fatalf("duplicate add: %v", err)
	}
	if err := run("neigh change 192.0.2.99 lladdr 02:00:00:00:00:09 dev port0"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("change of missing: %v", err)
	}
	if err := run("neigh del 192.0.2.99 dev port0"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("del of missing: %v", err)
	}
	if err := run("neigh add 192.0.2.13 dev port0 nud reachable"); !errors.Is(err, ErrNoLLAddr) {
		t.Fatalf("add without lladdr: %v", err)
	}
	if err := h.m.Apply(Request{Cmd: CmdAdd, Port: 7, IP: 1}); !errors.Is(err, ErrNoPort) {
		t.Fatalf("bad port: %v", err)
	}
	want := "192.0.2.9 dev port0 lladdr 02:00:00:00:00:09 PERMANENT\n" +
		"192.0.2.11 dev port1 lladdr 02:00:00:00:00:0b STALE\n" +
		"192.0.2.12 dev port1 lladdr 02:00:00:00:00:0c REACHABLE"
	if got := show("neigh show"); got != want {
		t.Fatalf("show:\n%s\nwant:\n%s", got, want)
	}
	if got := show("neigh show dev port0 nud noarp"); got != "192.0.2.10 lladdr 02:00:00:00:00:0a NOARP" {
		t.Fatalf("show noarp: %q", got)
	}
	// Admin change may rewrite a PERMANENT entry (learning may not).
	must("neigh change 192.0.2.9 lladdr 02:00:00:00:00:99 dev port0 nud stale")
	if got := show("neigh show 192.0.2.9"); got != "192.0.2.9 dev port0 lladdr 02:00:00:00:00:99 STALE" {
		t.Fatalf("after change: %q", got)
	}
	// Flush spares PERMANENT and NOARP.
	must("neigh replace 192.0.2.9 lladdr 02:00:00:00:00:09 dev port0 nud permanent")
	e11 := h.m.Table(1).Lookup(0xc000020b)
	n, err := h.m.Flush(Request{Cmd: CmdFlush, Port: -1})
	if err != nil || n != 2 {
		t.Fatalf("flush: %d %v", n, err)
	}
	if !e11.Dead() || e11.State() != Failed {
		t.Fatalf("flushed entry: dead=%v state=%v", e11.Dead(), e11.State())
	}
	if got := show("neigh show nud all"); got != "192.0.2.9 dev port0 lladdr 02:00:00:00:00:09 PERMANENT\n192.0.2.10 dev port0 lladdr 02:00:00:00:00:0a NOARP" {
		t.Fatalf("after flush: %q", got)
	}
	must("neigh del 192.0.2.9 dev port0")
	if h.m.Table(0).Lookup(0xc0000209) != nil {
		t.Fatal("deleted entry still found")
	}
	// Admin "nud incomplete" starts resolving.
	must("neigh replace 192.0.2.20 dev port0 nud incomplete")
	h.at(0)
	if h.state(0xc0000214) != Incomplete || len(h.tx.list()) != 1 {
		t.Fatalf("admin incomplete: %v, %d solicits", h.state(0xc0000214), len(h.tx.list()))
	}
	if info, ok := h.m.Get(0, 0xc0000214); !ok || info.State != Incomplete {
		t.Fatalf("get: %+v %v", info, ok)
	}
}
