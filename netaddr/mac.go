package netaddr

import "fmt"

// MAC is an Ethernet address.
type MAC [6]byte

// BroadcastMAC is the all-ones Ethernet address.
var BroadcastMAC = MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// String formats m as six colon-separated pairs of lower-case hex digits.
func (m MAC) String() string {
	const hex = "0123456789abcdef"
	var b [17]byte
	for i, v := range m {
		if i > 0 {
			b[i*3-1] = ':'
		}
		b[i*3] = hex[v>>4]
		b[i*3+1] = hex[v&0xf]
	}
	return string(b[:])
}

// ParseMAC reads six colon-separated hex octets of one or two digits each,
// as iproute2 reads an lladdr.
func ParseMAC(s string) (MAC, error) {
	var m MAC
	i := 0
	for part := 0; part < 6; part++ {
		n, v := 0, 0
		for i < len(s) && s[i] != ':' {
			d := hexDigit(s[i])
			if d < 0 || n == 2 {
				return MAC{}, fmt.Errorf("invalid lladdr %q", s)
			}
			v = v<<4 | d
			n++
			i++
		}
		if n == 0 {
			return MAC{}, fmt.Errorf("invalid lladdr %q", s)
		}
		m[part] = byte(v)
		if part < 5 {
			if i >= len(s) {
				return MAC{}, fmt.Errorf("invalid lladdr %q: want 6 octets", s)
			}
			i++ // the ':'
		}
	}
	if i != len(s) {
		return MAC{}, fmt.Errorf("invalid lladdr %q: want 6 octets", s)
	}
	return m, nil
}

func hexDigit(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
