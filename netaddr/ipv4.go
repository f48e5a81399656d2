package netaddr

import (
	"fmt"
	"net/netip"
)

// IPv4String formats a host-order IPv4 address as a dotted quad.
func IPv4String(a uint32) string {
	var b [15]byte
	return string(AppendIPv4(b[:0], a))
}

// AppendIPv4 appends a host-order IPv4 address as a dotted quad; route
// dumps format a great many, so it goes digit by digit rather than
// through strconv.
func AppendIPv4(b []byte, a uint32) []byte {
	for shift := 24; shift >= 0; shift -= 8 {
		v := byte(a >> uint(shift))
		if v >= 100 {
			b = append(b, '0'+v/100)
		}
		if v >= 10 {
			b = append(b, '0'+v/10%10)
		}
		b = append(b, '0'+v%10)
		if shift > 0 {
			b = append(b, '.')
		}
	}
	return b
}

// ParseIPv4 reads a dotted-quad IPv4 address into host order.
func ParseIPv4(s string) (uint32, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return 0, fmt.Errorf("%q is not an IPv4 address", s)
	}
	return IPv4From4(a.As4()), nil
}

// IPv4From4 is the host-order form of an address's four bytes in network
// order, as netip.Addr.As4 gives them.
func IPv4From4(b [4]byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}
