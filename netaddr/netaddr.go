// Package netaddr holds the address types all of ferry shares: Ethernet
// MACs, IPv4 addresses as host-order uint32s (the form the packet path
// loads from headers and the FIB keys on), and IPv4 prefixes. It imports
// no other ferry package, so every one of them may use it.
package netaddr
