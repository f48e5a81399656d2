package conf

import (
	"fmt"
	"strings"

	"ferry/cache"
	"ferry/fib"
	"ferry/netaddr"
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
			if err := f.AddAddress(i, netaddr.IPv4From4(pfx.Addr().As4()), uint8(pfx.Bits())); err != nil {
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
