package conf

import (
	"errors"
	"strings"
	"testing"

	"ferry/cache"
)

const goodConfig = `eal: ["--no-huge", "-m", "1024", "--no-pci", "--file-prefix", "ferry"]
cores: [1]
api: /run/ferry/ferry.sock
ports:
  - name: port0
    dev: "net_tap0,iface=ftap0"
    addresses: ["192.0.2.1/24"]
  - name: port1
    dev: "net_tap1,iface=ftap1"
    addresses: ["198.51.100.1/24"]
routes:
  - "203.0.113.0/24 via 198.51.100.2 dev port1"
`

func TestParseGoodConfig(t *testing.T) {
	c, err := Parse("good.yaml", []byte(goodConfig))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Ports) != 2 || c.Ports[1].Name != "port1" || c.Ports[0].MTU != DefaultMTU || c.Hugepages != "auto" || c.Mbufs < DefaultMbufs || c.RxBurst != DefaultRxBurst {
		t.Fatalf("unexpected config %+v", c)
	}
	f, err := BuildFIB(c, "good.yaml", &cache.GenID{})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(f.Routes(254)); n != 3 {
		t.Fatalf("main table has %d routes, want 3 (two connected, one static)", n)
	}
}

func TestEmbeddedDefaultIsValid(t *testing.T) {
	c, err := Parse("default", DefaultYAML)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := BuildFIB(c, "default", &cache.GenID{}); err != nil {
		t.Fatal(err)
	}
}

// Every bad config names the field and, where YAML knows it, the line.
func TestBadConfigNamesFieldAndLine(t *testing.T) {
	cases := []struct {
		name, edit, want string
		line             int
	}{
		{"unknown key", "cores: [1]", "cores: [1]\nbogus: 3", 0},
		{"bad address", `"192.0.2.1/24"`, `"192.0.2.300/24"`, 7},
		{"duplicate port", "name: port1", "name: port0", 8},
		{"bad route", `"203.0.113.0/24 via 198.51.100.2 dev port1"`, `"203.0.113.0/24 via 198.51.100.2 dev nope"`, 12},
		{"no cores", "cores: [1]", "cores: []", 2},
		{"bad mtu", `addresses: ["198.51.100.1/24"]`, "addresses: [\"198.51.100.1/24\"]\n    mtu: 20", 11},
		{"hugepages", "cores: [1]", "cores: [1]\nhugepages: maybe", 3},
		{"hash policy", "cores: [1]", "cores: [1]\nfib_multipath_hash_policy: 2", 3},
		{"gc percent", "cores: [1]", "cores: [1]\ngc_percent: 10", 3},
		{"rx burst", "cores: [1]", "cores: [1]\nrx_burst: 1000", 3},
		{"missing dev", `    dev: "net_tap1,iface=ftap1"` + "\n", "", 8},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			text := strings.Replace(goodConfig, c.edit, c.want, 1)
			if text == goodConfig {
				t.Fatal("edit did not apply")
			}
			cfg, err := Parse("bad.yaml", []byte(text))
			if err == nil {
				_, err = BuildFIB(cfg, "bad.yaml", &cache.GenID{})
			}
			if err == nil {
				t.Fatal("accepted")
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %v is not a *conf.Error", err)
			}
			if c.line != 0 && ce.Line != c.line {
				t.Errorf("error %q names line %d, want %d", err, ce.Line, c.line)
			}
			if !strings.HasPrefix(err.Error(), "bad.yaml") {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}

func TestDevName(t *testing.T) {
	for in, want := range map[string]string{"net_tap0,iface=ftap0": "net_tap0", "0000:01:00.0": "0000:01:00.0", "net_null0": "net_null0"} {
		if got := DevName(in); got != want {
			t.Errorf("DevName(%q) = %q, want %q", in, got, want)
		}
	}
	if !IsVdev("net_memif0,role=client") || IsVdev("0000:01:00.0") {
		t.Error("IsVdev")
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(goodConfig))
	f.Add(DefaultYAML)
	f.Add([]byte("ports: [{name: a}]"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse("fuzz.yaml", b)
		if err != nil {
			return
		}
		_, _ = BuildFIB(c, "fuzz.yaml", &cache.GenID{})
	})
}

// The pool is sized for every queue by default, and a pool too small for
// them is refused with the numbers; rss_key and MTU are checked too.
func TestQueuesAndBuffers(t *testing.T) {
	withCores := strings.Replace(goodConfig, "cores: [1]", "cores: [1, 2, 3, 4]", 1)
	c, err := Parse("c.yaml", []byte(withCores))
	if err != nil {
		t.Fatal(err)
	}
	need, _ := c.MbufsNeeded()
	if c.Mbufs < need || need <= 4*2*(DefaultRxDesc+DefaultTxDesc) {
		t.Fatalf("mbufs %d for 4 cores x 2 ports, need %d", c.Mbufs, need)
	}
	for _, tc := range []struct{ extra, field, msg string }{
		{"mbufs: 8191\n", "mbufs", "4 cores x 4096 descriptors over 2 ports"},
		{"rss_key: \"6d5a\"\n", "rss_key", "2 bytes"},
		{"rss_key: \"zz\"\n", "rss_key", "not hex"},
	} {
		_, err := Parse("c.yaml", []byte(withCores+tc.extra))
		var ce *Error
		if !errors.As(err, &ce) || ce.Field != tc.field || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%q: got %v, want an error on %s saying %q", tc.extra, err, tc.field, tc.msg)
		}
	}
	key := strings.Repeat("6d:5a:", 19) + "6d:5a"
	c, err = Parse("c.yaml", []byte(withCores+"rss_key: \""+key+"\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := c.RSSKeyBytes(); len(b) != 40 || b[0] != 0x6d || b[1] != 0x5a {
		t.Fatalf("rss_key decoded as %x", b)
	}
	jumbo := strings.Replace(goodConfig, `addresses: ["192.0.2.1/24"]`, "addresses: [\"192.0.2.1/24\"]\n    mtu: 9000", 1)
	if c, err = Parse("j.yaml", []byte(jumbo)); err != nil {
		t.Fatal(err)
	}
	if c.FrameRoom() < 9000+EthHeaderLen {
		t.Fatalf("buffers hold %d bytes of frame for an MTU of 9000", c.FrameRoom())
	}
}
