package conf

import (
	"fmt"
	"strings"

	"ferry/cache"
	"ferry/fib"
)

// BuildFIB turns the config's ports, addresses, routes and rules into a FIB,
// so a bad route or rule is reported, with its line, before anything starts.
func BuildFIB(c *Config, file string, gen *cache.GenID) (*fib.FIB, error) {
	f := fib.New(gen, len(c.Cores))
	for i, p := range c.Ports {
		// Ports are administratively up while ferryd runs; the carrier
		// state is shown by 'link show' but, as the kernel's
		// ignore_routes_with_linkdown=0, does not hide routes.
		if err := f.SetPort(i, p.Name, p.MTU, true); err != nil {
			return nil, c.Errorf(file, fmt.Sprintf("ports[%d]", i), "%v", err)
		}
	}
	for i, p := range c.Ports {
		for j, a := range p.Addresses {
			pfx, err := ParseAddr(a)
			if err != nil {
				return nil, c.Errorf(file, fmt.Sprintf("ports[%d].addresses[%d]", i, j), "%v", err)
			}
			if err := f.AddAddress(i, Uint32(pfx.Addr().As4()), uint8(pfx.Bits())); err != nil {
				return nil, c.Errorf(file, fmt.Sprintf("ports[%d].addresses[%d]", i, j), "%v", err)
			}
		}
	}
	for i, r := range c.Rules {
		field := fmt.Sprintf("rules[%d]", i)
		rule, err := fib.ParseRule(strings.Fields(r), f)
		if err != nil {
			return nil, c.Errorf(file, field, "%q: %v", r, err)
		}
		if err := f.AddRule(rule); err != nil {
			return nil, c.Errorf(file, field, "%q: %v", r, err)
		}
	}
	for i, r := range c.Routes {
		field := fmt.Sprintf("routes[%d]", i)
		rt, err := fib.ParseRoute(strings.Fields(r), f)
		if err != nil {
			return nil, c.Errorf(file, field, "%q: %v", r, err)
		}
		if err := f.Add(rt); err != nil {
			return nil, c.Errorf(file, field, "%q: %v", r, err)
		}
	}
	return f, nil
}

// Uint32 converts a 4-byte address to the host-order form the FIB uses.
func Uint32(a [4]byte) uint32 {
	return uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
}
