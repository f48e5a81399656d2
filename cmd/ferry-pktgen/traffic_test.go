package main

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"ferry/fib"
	"ferry/pipeline"
)

func TestLoadTableFormats(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "t")
	text := `# comment
10.0.0.0/8
route add 192.0.2.0/24 via 198.51.100.2 dev port1
203.0.113.0/24 via 198.51.100.2
R198.18.0.0/16 1
route add blackhole 100.64.0.0/10

`
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	ps, err := loadTable(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.0.0.0/8", "192.0.2.0/24", "203.0.113.0/24", "198.18.0.0/16", "100.64.0.0/10"}
	if len(ps) != len(want) {
		t.Fatalf("got %d prefixes %v, want %v", len(ps), ps, want)
	}
	for i, p := range ps {
		if p.String() != want[i] {
			t.Errorf("prefix %d = %s, want %s", i, p, want[i])
		}
	}
	os.WriteFile(path, []byte("route add nonsense\n"), 0o644)
	if _, err := loadTable(path); err == nil {
		t.Error("a line without a prefix was accepted")
	}
}

func TestParseCases(t *testing.T) {
	cs, err := parseCases("single; uniform:1000 ;uniform@imix;zipf:500@128", "64")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"single@64", "uniform:1000@64", "uniform@imix", "zipf:500@128"}
	for i, c := range cs {
		if c.String() != want[i] {
			t.Errorf("case %d = %s, want %s", i, c, want[i])
		}
	}
	for _, bad := range []string{"zipf", "uniform:0", "random", "uniform@63", "uniform@2000", ";"} {
		if _, err := parseCases(bad, "64"); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestDestinationsStayInTable(t *testing.T) {
	ps := []fib.Prefix{{Addr: 0x0a000000, Len: 8}, {Addr: 0xcb007100, Len: 24}}
	in := func(a uint32) bool {
		for _, p := range ps {
			if a&^(uint32(1)<<(32-p.Len)-1) == p.Addr {
				return true
			}
		}
		return false
	}
	for _, c := range []trafficCase{{Dist: "single", Size: "64"}, {Dist: "uniform", Flows: 100, Size: "64"},
		{Dist: "uniform", Size: "64"}, {Dist: "zipf", Flows: 50, Size: "64"}} {
		d := c.destinations(ps, 1000, 7)
		switch {
		case c.Dist == "single" && len(d) != 1, c.Flows == 100 && len(d) != 100, c.Flows == 0 && c.Dist == "uniform" && len(d) != 1000:
			t.Errorf("%s: %d destinations", c, len(d))
		}
		for _, a := range d {
			if !in(a) {
				t.Fatalf("%s: %08x is outside the table", c, a)
			}
		}
	}
}

func TestHeadersAndChecksum(t *testing.T) {
	lens, seq, err := frameMix("imix")
	if err != nil {
		t.Fatal(err)
	}
	n := map[int]int{}
	for _, k := range seq {
		n[lens[k]]++
	}
	if n[60] != 7 || n[566] != 4 || n[1514] != 1 {
		t.Fatalf("imix mix %v, want 7x60 4x566 1x1514", n)
	}
	hs := headers(lens, [6]byte{2, 0, 0, 0, 0, 1}, [6]byte{2, 0, 0, 0, 0, 2}, 0xc000020a)
	for k, h := range hs {
		ip := h[14:34]
		if got := int(binary.BigEndian.Uint16(ip[2:])); got != lens[k]-14 {
			t.Errorf("size %d: IP total length %d", lens[k], got)
		}
		// A header whose checksum is filled in sums to 0xffff.
		binary.BigEndian.PutUint32(ip[16:], 0xcb007107)
		binary.BigEndian.PutUint16(ip[10:], pipeline.Checksum(ip))
		if pipeline.Checksum(ip) != 0 {
			t.Errorf("size %d: checksum does not verify", lens[k])
		}
	}
}

func TestEALDevices(t *testing.T) {
	devs, prefix := ealDevices([]string{"-l", "0", "--file-prefix", "g1", "--vdev", "net_memif0,role=server", "--vdev=net_memif1,id=1", "-a", "0000:01:00.0"})
	if prefix != "g1" || len(devs) != 3 || devs[0] != "net_memif0" || devs[1] != "net_memif1" || devs[2] != "0000:01:00.0" {
		t.Fatalf("devices %v prefix %q", devs, prefix)
	}
}

func TestWritePcap(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.pcap")
	c := trafficCase{Dist: "uniform", Flows: 3, Size: "imix"}
	if err := writePcap(path, c, []uint32{0x0a000001, 0x0a000002, 0x0a000003}, 12, [6]byte{1}, [6]byte{2}, 0xc000020a); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// 24-byte file header, then per frame a 16-byte record header.
	want := 24 + 12*16 + 7*60 + 4*566 + 1514
	if len(b) != want {
		t.Fatalf("pcap is %d bytes, want %d", len(b), want)
	}
	first := b[24+16:]
	if pipeline.Checksum(first[14:34]) != 0 {
		t.Error("first frame's IP checksum does not verify")
	}
}
