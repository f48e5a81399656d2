package pipeline

import (
	"errors"
	"syscall"

	"ferry/cache"
	"ferry/fib"
)

// Decisions that name no nexthop are the same for every packet and never
// stale: they are shared and never cached.
var (
	decNetUnreach  = &cache.Decision{Kind: cache.Unreachable, Port: -1, ICMPType: ICMPDestUnreach, ICMPCode: CodeNetUnreach}
	decHostUnreach = &cache.Decision{Kind: cache.Unreachable, Port: -1, ICMPType: ICMPDestUnreach, ICMPCode: CodeHostUnreach}
	decProhibit    = &cache.Decision{Kind: cache.Prohibit, Port: -1, ICMPType: ICMPDestUnreach, ICMPCode: CodePktFiltered}
	decBlackhole   = &cache.Decision{Kind: cache.Blackhole, Port: -1}
	decLimitedBcst = &cache.Decision{Kind: cache.Broadcast, Port: -1}
	decMulticast   = &cache.Decision{Kind: cache.Blackhole, Port: -1}
)

// routeInput gives every valid packet its decision, walking the list as
// ip_list_rcv_finish does: a packet with the previous packet's destination,
// TOS and input port reuses its decision (a route hint) unless policy rules
// could tell them apart or the decision was a broadcast. The remaining
// packets are looked up together, so their cache misses overlap.
func (p *Pipeline) routeInput() {
	custom := p.sh.FIB.HasCustomRules()
	hash := p.sh.FIB.HasMultipath()
	pks := p.pk[:p.nIP]
	route := p.route[:len(pks)]
	dec := p.dec[:len(pks)]
	nk := 0
	var prevDst uint32
	var prevTOS uint8
	var prevIif uint16
	prevOK := false
	for k := range pks {
		pk := &pks[k]
		dst, tos, iif := pk.dst, pk.tos, pk.port
		switch {
		case dst == 0xffffffff:
			dec[k], route[k] = decLimitedBcst, routeStatic
			prevOK = false
			continue
		case dst>>28 == 0xe:
			dec[k], route[k] = decMulticast, routeStatic
			prevOK = false
			continue
		case prevOK && !custom && dst == prevDst && tos == prevTOS && iif == prevIif:
			route[k] = routeHint
			continue
		}
		p.dsts[nk], p.srcs[nk], p.keyPk[nk] = dst, pk.src, uint16(k)
		route[k] = int16(nk)
		nk++
		prevDst, prevTOS, prevIif, prevOK = dst, tos, iif, true
	}
	if nk > 0 {
		p.lookupInput(pks, nk, hash)
	}
	var prev *cache.Decision
	// The last lookup result's decision, when it does not depend on the
	// destination: random destinations under a few nexthops share their
	// results, and need the nexthop's cache only once a burst.
	var memoRes *fib.Result
	var memoDec *cache.Decision
	var memoFrom decFrom
	for k := range pks {
		var d *cache.Decision
		multipath := false
		switch r := route[k]; {
		case r == routeStatic:
			prev = nil
			continue
		case r == routeHint && prev != nil && prev.Kind != cache.Broadcast:
			d = prev
			p.ctr.local[HintHits]++
		case r == routeHint:
			// The previous packet was a broadcast or took a multipath
			// route: its decision is not reused, as the kernel's hint
			// check says.
			pk := &pks[k]
			inputKey(&p.hintKey[0], pk)
			if hash {
				p.hintKey[0].Hash = p.flowHash(pk)
			}
			p.sh.FIB.LookupBulkRefs(p.hintKey[:], p.hintRes[:], p.hintSpill[:])
			p.ctr.local[FIBLookups]++
			d, _ = p.inputDecision(p.hintRes[0], pk.dst)
			multipath = p.hintRes[0].Multipath
		case p.results[r] == memoRes:
			d = memoDec
			if memoFrom == fromNhCache {
				p.ctr.local[NhCacheHits]++
			}
		default:
			res := p.results[r]
			var from decFrom
			d, from = p.inputDecision(res, p.dsts[r])
			multipath = res.Multipath
			if from != fromPerDst && !multipath && !p.spilled[r] {
				memoRes, memoDec, memoFrom = res, d, from
			}
		}
		dec[k] = d
		prev = d
		if multipath {
			// Another flow to the same destination may hash to another
			// nexthop: no hint (IPSKB_MULTIPATH).
			prev = nil
		}
	}
}

// lookupInput looks up the first nk entries of the burst's lookup list:
// by address through the merged structure, then with full keys (and the
// multipath hash) for what that could not answer, together.
func (p *Pipeline) lookupInput(pks []rcvPkt, nk int, hash bool) {
	f := p.sh.FIB
	res := p.results[:nk]
	f.LookupInputAddrs(p.dsts[:nk], p.srcs[:nk], res)
	ns := 0
	for i, r := range res {
		p.spilled[i] = false
		if r == nil {
			pk := &pks[p.keyPk[i]]
			key := &p.keys[ns]
			inputKey(key, pk)
			if hash {
				key.Hash = p.flowHash(pk)
			}
			p.slowAt[ns] = uint16(i)
			ns++
		}
	}
	if ns > 0 {
		f.LookupBulkRefs(p.keys[:ns], p.slowRes[:ns], p.spill[:ns])
		for j, r := range p.slowRes[:ns] {
			i := p.slowAt[j]
			res[i] = r
			// A Result in spill belongs to this burst's key alone.
			p.spilled[i] = r == &p.spill[j]
		}
	}
	p.ctr.local[FIBLookups] += uint64(nk)
}

// inputKey fills key for the input lookup of pk, without the multipath
// hash. Field by field: a composite literal is built on the stack and then
// copied.
func inputKey(key *fib.Key, pk *rcvPkt) {
	key.Dst, key.Src, key.Tos, key.Iif, key.Oif, key.Mark, key.Hash = pk.dst, pk.src, pk.tos&0x1c, int(pk.port), -1, 0, 0
}

// flowHash is the multipath hash of a received packet: by addresses, or
// with fib_multipath_hash_policy 1 also by protocol and ports, which
// fragments do not carry (as the kernel's flow dissector, that does not
// parse even a first fragment's ports here).
func (p *Pipeline) flowHash(pk *rcvPkt) uint32 {
	src, dst := pk.src, pk.dst
	if !p.knobs.MultipathHashL4 {
		return fib.FlowHash(src, dst)
	}
	ip := bytesAt(pk.data, int(pk.len))[EthHdrLen:]
	proto := ip[ipProto]
	var sport, dport uint16
	hlen := int(ip[ipVerIHL]&0xf) * 4
	if be.Uint16(ip[ipFragOff:])&(ipFlagMF|ipOffsetMask) == 0 && (proto == ProtoTCP || proto == ProtoUDP || proto == ProtoSCTP) && len(ip) >= hlen+4 {
		sport, dport = be.Uint16(ip[hlen:]), be.Uint16(ip[hlen+2:])
	}
	return fib.FlowHashL4(src, dst, proto, sport, dport)
}

// route[k] says how packet k of the list gets its decision.
const (
	routeStatic = int16(-1) // fixed by its destination (broadcast, multicast)
	routeHint   = int16(-2) // the previous packet's decision
)

// staticDecision maps a result without a usable nexthop to its shared decision.
func staticDecision(res *fib.Result) *cache.Decision {
	switch {
	case res.Err == nil:
	case errors.Is(res.Err, syscall.EHOSTUNREACH):
		return decHostUnreach
	case errors.Is(res.Err, syscall.EACCES):
		return decProhibit
	case errors.Is(res.Err, syscall.EINVAL):
		return decBlackhole
	default:
		return decNetUnreach
	}
	switch res.Type {
	case fib.Blackhole:
		return decBlackhole
	case fib.Unreachable:
		return decHostUnreach
	case fib.Prohibit:
		return decProhibit
	case fib.Broadcast:
		return decLimitedBcst
	}
	return nil
}

// decFrom says where an input decision came from, and so whether packets
// with the same lookup result may share it.
type decFrom uint8

const (
	fromShared  decFrom = iota // a fixed decision for every such packet
	fromNhCache                // the nexthop's cached decision
	fromPerDst                 // may differ for another destination
)

// inputDecision returns the nexthop's cached input decision, making and
// publishing a new one when the genid moved (rt_cache_valid).
func (p *Pipeline) inputDecision(res *fib.Result, dst uint32) (*cache.Decision, decFrom) {
	if d := staticDecision(res); d != nil {
		return d, fromShared
	}
	nh := res.Nexthop
	if nh == nil || nh.Cache == nil {
		if res.Type == fib.Local {
			// A fresh decision each time: not one to reuse.
			return p.newDecision(res, nil, nil, false), fromPerDst
		}
		return decNetUnreach, fromShared
	}
	from := fromNhCache
	// A nexthop exception for this destination has its own decisions
	// (find_exception in __mkroute_input).
	if t := nh.Cache.Exceptions(); t != nil && res.Type == fib.Unicast {
		if e := t.Find(dst, p.now); e != nil {
			p.ctr.local[ExceptionHits]++
			if d := e.Input(p.sh.Gen); d != nil {
				return d, fromPerDst
			}
			d := p.newDecision(res, nh, e, p.knobs.ForwardUsePMTU)
			e.SetInput(d)
			return d, fromPerDst
		}
		from = fromPerDst
	}
	if d := nh.Cache.Input(p.sh.Gen); d != nil {
		p.ctr.local[NhCacheHits]++
		return d, from
	}
	p.ctr.local[NhCacheMisses]++
	d := p.newDecision(res, nh, nil, false)
	nh.Cache.SetInput(d)
	return d, from
}

// outputDecision routes a packet the router itself sends, through the
// nexthop's per-core output slot.
func (p *Pipeline) outputDecision(dst, src uint32) *cache.Decision {
	p.key = fib.Key{Dst: dst, Src: src, Iif: -1, Oif: -1, Hash: fib.FlowHash(src, dst)}
	p.sh.FIB.LookupOutput(&p.key, &p.res)
	p.ctr.local[FIBLookups]++
	res := &p.res
	if d := staticDecision(res); d != nil {
		return d
	}
	nh := res.Nexthop
	if nh == nil || nh.Cache == nil {
		return p.newDecision(res, nil, nil, false)
	}
	if t := nh.Cache.Exceptions(); t != nil && res.Type == fib.Unicast {
		if e := t.Find(dst, p.now); e != nil {
			p.ctr.local[ExceptionHits]++
			if d := e.Output(p.sh.Gen, p.core); d != nil {
				return d
			}
			d := p.newDecision(res, nh, e, true)
			e.SetOutput(p.core, d)
			return d
		}
	}
	if d := nh.Cache.Output(p.sh.Gen, p.core); d != nil {
		p.ctr.local[NhCacheHits]++
		return d
	}
	p.ctr.local[NhCacheMisses]++
	d := p.newDecision(res, nh, nil, false)
	nh.Cache.SetOutput(p.core, d)
	return d
}

// newDecision makes a decision from a FIB result, with an exception's
// gateway and (when usePMTU) its path MTU applied.
func (p *Pipeline) newDecision(res *fib.Result, nh *fib.Nexthop, e *cache.Exception, usePMTU bool) *cache.Decision {
	p.ctr.local[DecisionsMade]++
	// The genid was read before the lookup: a bump during it leaves the
	// decision stale rather than current.
	d := &cache.Decision{Port: -1, Src: res.Prefsrc, MTU: res.MTU, Table: res.Table, Genid: p.gen}
	switch res.Type {
	case fib.Local:
		d.Kind = cache.Local
	case fib.Broadcast:
		d.Kind = cache.Broadcast
	default:
		d.Kind = cache.Forward
		if nh == nil {
			return decNetUnreach
		}
		d.Port = int32(nh.Port)
		d.Gateway = nh.Gateway
		if e != nil {
			if e.Gateway != 0 {
				d.Gateway = e.Gateway
			}
			if usePMTU && e.PMTU != 0 && (d.MTU == 0 || e.PMTU < d.MTU) {
				d.MTU = e.PMTU
			}
		}
	}
	return d
}
