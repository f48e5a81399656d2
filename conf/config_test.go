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
