package pipeline

import (
	"ferry/fib"
)

// icmpInput handles ICMP errors addressed to the router that change how it
// routes: fragmentation needed (PMTU) and redirects. Both become nexthop
// exceptions for the destination they name. It reports whether the message
// was one of those.
func (p *Pipeline) icmpInput(ip []byte, hlen, inPort int) bool {
	icmp := ip[hlen:]
	if len(icmp) < ICMPHdrLen+IPv4MinHdr || checksum(icmp, 0) != 0 {
		return false
	}
	inner := icmp[ICMPHdrLen:]
	if inner[ipVerIHL]>>4 != 4 {
		return false
	}
	switch {
	case icmp[0] == ICMPDestUnreach && icmp[1] == CodeFragNeeded:
		p.pmtuUpdate(inner, uint32(be.Uint16(icmp[6:])))
		return true
	case icmp[0] == ICMPRedirect && icmp[1] <= 3:
		p.redirectInput(be.Uint32(ip[ipSrc:]), be.Uint32(icmp[4:]), inner, inPort)
		return true
	}
	return false
}

// pmtuUpdate is __ip_rt_update_pmtu: a lower path MTU toward the inner
// destination, for packets the router itself sent, becomes a PMTU exception.
func (p *Pipeline) pmtuUpdate(inner []byte, mtu uint32) {
	src, dst := be.Uint32(inner[ipSrc:]), be.Uint32(inner[ipDst:])
	if !p.sh.FIB.IsLocal(src) {
		p.ctr.local[DropPMTURejected]++
		return
	}
	nh, res := p.lookupNexthop(dst, src)
	if nh == nil || res.Route.MTULock {
		p.ctr.local[DropPMTURejected]++
		return
	}
	old := res.MTU
	if old == 0 && nh.Port >= 0 && nh.Port < len(p.ports) {
		old = uint32(p.ports[nh.Port].MTU)
	}
	if t := nh.Cache.Exceptions(); t != nil {
		if e := t.Find(dst, p.now); e != nil && e.PMTU != 0 && e.PMTU < old {
			old = e.PMTU
		}
	}
	locked := false
	if mtu < p.knobs.MinPMTU {
		locked = true
		mtu = min(old, p.knobs.MinPMTU)
	}
	if mtu >= old {
		p.ctr.local[DropPMTURejected]++
		return
	}
	t := nh.Cache.ExceptionsForUpdate()
	if t.TryUpdate(dst, 0, mtu, locked, p.now+int64(p.knobs.MTUExpires), p.now) == nil {
		p.ctr.local[DropExceptionBusy]++
		return
	}
	p.sh.FIB.Exceptions().Note(nh.Cache, nh.Port, nh.Gateway)
	p.ctr.local[PMTUUpdates]++
}

// redirectInput is __ip_do_redirect: accepted only on ports with
// accept_redirects, from the current gateway for that destination, toward a
// new gateway on the same link (and, with secure_redirects, one of the
// default gateways), whose neighbour is already resolved.
func (p *Pipeline) redirectInput(oldGW, newGW uint32, inner []byte, inPort int) {
	if inPort >= len(p.ports) || !p.ports[inPort].AcceptRedirects {
		p.ctr.local[DropRedirectRejected]++
		return
	}
	pi := &p.ports[inPort]
	src, dst := be.Uint32(inner[ipSrc:]), be.Uint32(inner[ipDst:])
	nh, _ := p.lookupNexthop(dst, src)
	if nh == nil || nh.Gateway != oldGW || nh.Port != inPort || newGW == oldGW ||
		isMulticastOrBroadcastIP(newGW) || newGW>>24 == 0 ||
		!pi.onlink(newGW) || !pi.onlink(oldGW) || p.sh.FIB.IsLocal(newGW) {
		p.ctr.local[DropRedirectRejected]++
		return
	}
	if pi.SecureRedirects && !p.isDefaultGateway(newGW, inPort) {
		p.ctr.local[DropRedirectRejected]++
		return
	}
	if e := p.sh.Neigh.Table(inPort).Lookup(newGW); e == nil || !e.State().Valid() {
		// As the kernel: resolve the new gateway now, accept a later redirect.
		p.sh.Neigh.Resolve(p.core, inPort, newGW)
		p.ctr.local[DropRedirectRejected]++
		return
	}
	t := nh.Cache.ExceptionsForUpdate()
	if t.TryUpdate(dst, newGW, 0, false, p.now+int64(p.knobs.RedirectExpires), p.now) == nil {
		p.ctr.local[DropExceptionBusy]++
		return
	}
	p.sh.FIB.Exceptions().Note(nh.Cache, nh.Port, nh.Gateway)
	p.ctr.local[RedirectsAccepted]++
}

// lookupNexthop routes dst as the router's own output would, through the
// walk: the callers read the route (its MTU lock).
func (p *Pipeline) lookupNexthop(dst, src uint32) (*fib.Nexthop, *fib.Result) {
	p.key = fib.Key{Dst: dst, Src: src, Iif: -1, Oif: -1, Hash: fib.FlowHash(src, dst)}
	p.sh.FIB.LookupOutputExact(&p.key, &p.res)
	p.ctr.local[FIBLookups]++
	if p.res.Err != nil || p.res.Type != fib.Unicast || p.res.Nexthop == nil || p.res.Nexthop.Cache == nil || p.res.Route == nil {
		return nil, &p.res
	}
	return p.res.Nexthop, &p.res
}

// isDefaultGateway is ip_fib_check_default: gw is a gateway of a default
// route through port.
func (p *Pipeline) isDefaultGateway(gw uint32, port int) bool {
	p.key = fib.Key{Iif: -1, Oif: -1}
	p.sh.FIB.LookupOutputExact(&p.key, &p.res)
	if p.res.Err != nil || p.res.Route == nil || p.res.Route.Len != 0 {
		return false
	}
	for _, nh := range p.res.Route.Nexthops {
		if nh.Gateway == gw && nh.Port == port {
			return true
		}
	}
	return false
}
