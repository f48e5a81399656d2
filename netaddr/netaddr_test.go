package netaddr

import "testing"

func TestIPv4(t *testing.T) {
	for _, s := range []string{"0.0.0.0", "10.0.0.1", "192.0.2.255", "255.255.255.255", "100.9.10.99"} {
		a, err := ParseIPv4(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := IPv4String(a); got != s {
			t.Errorf("%s formats as %s", s, got)
		}
	}
	for _, s := range []string{"", "1.2.3", "1.2.3.256", "::1", "::ffff:1.2.3.4", "01.2.3.4"} {
		if _, err := ParseIPv4(s); err == nil {
			t.Errorf("%q parsed", s)
		}
	}
	if a, _ := ParseIPv4("192.0.2.1"); a != 0xc0000201 {
		t.Errorf("192.0.2.1 is %#x", a)
	}
}

func TestMAC(t *testing.T) {
	m, err := ParseMAC("2:ab:0:1:02:FF")
	if err != nil {
		t.Fatal(err)
	}
	if got := m.String(); got != "02:ab:00:01:02:ff" {
		t.Errorf("got %s", got)
	}
	for _, s := range []string{"", "02:ab:00:01:02", "02:ab:00:01:02:ff:00", "02:ab:00:01:02:fff", "02:ab:00:01::ff", "02:ab:00:01:02:fg"} {
		if _, err := ParseMAC(s); err == nil {
			t.Errorf("%q parsed", s)
		}
	}
}

func TestPrefix(t *testing.T) {
	for _, c := range []struct {
		plen uint8
		mask uint32
	}{{0, 0}, {1, 0x80000000}, {8, 0xff000000}, {24, 0xffffff00}, {31, 0xfffffffe}, {32, 0xffffffff}} {
		if got := Mask(c.plen); got != c.mask {
			t.Errorf("Mask(%d) = %#x, want %#x", c.plen, got, c.mask)
		}
	}
	p := Prefix{0xc0000200, 24}
	if got := p.String(); got != "192.0.2.0/24" {
		t.Errorf("got %s", got)
	}
	if !p.Contains(0xc00002ff) || p.Contains(0xc0000300) || !(Prefix{}).Contains(0xffffffff) {
		t.Error("Contains is wrong")
	}
	if got := (Prefix{0x0a000001, 32}).String(); got != "10.0.0.1/32" {
		t.Errorf("got %s", got)
	}
}
