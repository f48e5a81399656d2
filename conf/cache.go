package conf

import (
	"fmt"
	"strings"

	"ferry/cache"
	"ferry/netaddr"
)

// exceptionText is the "cache" line ip route get prints for an exception,
// at time now (the pipelines' clock).
func exceptionText(e *cache.Exception, now int64) string {
	var b strings.Builder
	b.WriteString("cache")
	if e.Gateway != 0 {
		b.WriteString(" <redirected>")
	}
	if e.Expires != 0 {
		left := (e.Expires - now) / 1e9
		if left < 0 {
			left = 0
		}
		fmt.Fprintf(&b, " expires %dsec", left)
	}
	if e.PMTU != 0 {
		if e.Locked {
			fmt.Fprintf(&b, " mtu lock %d", e.PMTU)
		} else {
			fmt.Fprintf(&b, " mtu %d", e.PMTU)
		}
	}
	return b.String()
}

// ExceptionJSON is one live exception as -json shows it.
type ExceptionJSON struct {
	Dst        string `json:"dst"`
	Gateway    string `json:"gateway,omitempty"`
	Dev        string `json:"dev"`
	Redirected bool   `json:"redirected"`
	MTU        uint32 `json:"mtu,omitempty"`
	Expires    int64  `json:"expires_sec"`
}

// routeShowCache lists live nexthop exceptions as ip route show cache does.
func (r *Router) routeShowCache() (string, any, error) {
	now := r.now()
	var b strings.Builder
	data := []ExceptionJSON{}
	for _, o := range r.FIB.Exceptions().Owners() {
		t := o.Cache.Exceptions()
		if t == nil {
			continue
		}
		t.Each(now, func(e *cache.Exception) {
			gw := o.Gateway
			if e.Gateway != 0 {
				gw = e.Gateway
			}
			dev := r.FIB.PortName(o.Port)
			b.WriteString(netaddr.IPv4String(e.Daddr))
			if gw != 0 {
				b.WriteString(" via " + netaddr.IPv4String(gw))
			}
			fmt.Fprintf(&b, " dev %s \n    %s\n", dev, exceptionText(e, now))
			j := ExceptionJSON{Dst: netaddr.IPv4String(e.Daddr), Dev: dev, Redirected: e.Gateway != 0, MTU: e.PMTU}
			if gw != 0 {
				j.Gateway = netaddr.IPv4String(gw)
			}
			if e.Expires != 0 {
				j.Expires = max(0, (e.Expires-now)/1e9)
			}
			data = append(data, j)
		})
	}
	return b.String(), data, nil
}

func (r *Router) countExceptions() int {
	n := 0
	for _, o := range r.FIB.Exceptions().Owners() {
		if t := o.Cache.Exceptions(); t != nil {
			n += t.Len()
		}
	}
	return n
}

// now is the pipelines' time, which nexthop exceptions expire by (the real
// clock for a router without pipelines).
func (r *Router) now() int64 {
	if r.Dataplane == nil {
		return cache.Nanos(cache.SystemClock{})
	}
	return r.Dataplane.Now()
}
