package netaddr

import "strconv"

// Prefix is an IPv4 prefix: an address and how many of its leading bits
// the prefix covers.
type Prefix struct {
	Addr uint32
	Len  uint8
}

// String formats p as "a.b.c.d/len", the length always given.
func (p Prefix) String() string {
	var b [18]byte
	return string(strconv.AppendUint(append(AppendIPv4(b[:0], p.Addr), '/'), uint64(p.Len), 10))
}

// Mask is the netmask of p's length.
func (p Prefix) Mask() uint32 { return Mask(p.Len) }

// Contains reports whether a is inside p.
func (p Prefix) Contains(a uint32) bool { return (a^p.Addr)&Mask(p.Len) == 0 }

// Mask is the netmask of a prefix length: plen leading one bits. A shift
// by 32 or more gives 0, the mask of /0.
func Mask(plen uint8) uint32 { return ^uint32(0) << (32 - uint(plen)) }
