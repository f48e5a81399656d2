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

// routeInput gives every valid packet its decision and sends it on its
// way, in list order, walking the list as ip_list_rcv_finish does: a
// packet with the previous packet's destination, TOS and input port reuses
// its decision (a route hint) unless policy rules could tell them apart or
// the decision was a broadcast; the receive stage marked those and listed
// the other destinations, which are looked up together first, so that
// their cache misses overlap.
//
// The usual packet takes the previous packet's decision or the last
// lookup result's (see routeState) and is forwarded the usual way: those
// go through fwdRun, loops that call nothing (see ethInput). routeOne and
// sendOne take the others, one at a time.
func (p *Pipeline) routeInput() {
	pks := p.io.Rx[:p.nIP]
	view := &p.view // taken by ethInput
	view.Vals(p.dsts[:p.nk], p.vals[:p.nk])
	if p.bursts%usedSample == 0 {
		view.NoteUsed(p.dsts[:p.nk])
	}
	if view.Rules() {
		p.ruleVals(pks)
	}
	p.ctr.local[FIBLookups] += uint64(p.nk)
	st := routeState{memoVal: -1, hash: p.sh.FIB.HasMultipath()}
	for i := range p.valMemo {
		p.valMemo[i].val = -1
	}
	for k := 0; ; k++ {
		if k = p.fwdRun(pks, k, &st); k >= len(pks) {
			break
		}
		if k = p.fwdMix(pks, k, &st); k >= len(pks) {
			break
		}
		pk := &pks[k]
		p.sendOne(pk, p.routeOne(pk, k, &st), &st)
	}
	view.Done()
}

// usedSample is how often a pass tells the FIB which /16 blocks its
// lookups went to (one in usedSample), so that route changes there are
// built at once rather than left to the slow walk (fib/used.go). Odd, so
// that traffic repeating in a power-of-two cycle of passes (a replay) is
// sampled all over its cycle.
const usedSample = 61

// ruleVals corrects the lookup values of the listed packets that a policy
// rule with a selector matches: theirs come through the rules, with each
// one's key (each such packet has a slot of its own: see rxRunShared).
func (p *Pipeline) ruleVals(pks []RxPkt) {
	key, view := &p.inKey, &p.view
	for i := range pks {
		pk := &pks[i]
		if r := p.route[i]; r >= 0 && view.MayNeedKey(pk.Src, pk.Dst) {
			inputKey(key, pk)
			if view.NeedsKey(key) {
				p.vals[r] = view.KeyVal(key)
			}
		}
	}
}

// routeState is what the route stage carries from packet to packet.
type routeState struct {
	prev *cache.Decision // the previous packet's, for a hint; nil: none
	// The last lookup result's decision, when it does not depend on the
	// destination: random destinations under a few nexthops share their
	// results, and need the nexthop's cache only once a pass.
	memoRes  *fib.Result
	memoDec  *cache.Decision
	memoFrom decFrom
	// memoVal is the lookup value whose shared Result memoRes is, or -1:
	// any other packet with that value and no special address has it too.
	memoVal int32
	hash    bool    // some route is multipath: keys carry the flow hash
	fast    fastFwd // how the last decision's usual packets are forwarded
}

// routeOne gives packet k its decision where the runs could not.
func (p *Pipeline) routeOne(pk *RxPkt, k int, st *routeState) *cache.Decision {
	var d *cache.Decision
	multipath := false
	switch r := p.route[k]; {
	case r == routeBcast:
		st.prev = nil
		return decLimitedBcst
	case r == routeMcast:
		st.prev = nil
		if linkLocalMcast(pk.Dst) && p.punts(int(pk.Port)) {
			return decLinkMcast
		}
		return decMulticast
	case r == routeHint && st.prev != nil && st.prev.Kind != cache.Broadcast:
		p.ctr.local[HintHits]++
		return st.prev
	case r == routeHint || r == routeSpecial:
		// A hint whose previous packet was a broadcast or took a
		// multipath route (its decision is not reused, as the kernel's
		// hint check says), or special addresses.
		res := p.lookupOne(pk, p.view.Val(pk.Dst), st.hash)
		p.ctr.local[FIBLookups]++
		d, _ = p.inputDecision(res, pk.Dst)
		multipath = res.Multipath
	default:
		v := p.vals[r]
		res := p.lookupOne(pk, v, st.hash)
		if res == st.memoRes {
			d = st.memoDec
			if st.memoFrom == fromNhCache {
				p.ctr.local[NhCacheHits]++
			}
			break
		}
		var from decFrom
		d, from = p.inputDecision(res, pk.Dst)
		multipath = res.Multipath
		// A Result in the spill belongs to this packet alone.
		if from != fromPerDst && !multipath && res != &p.inSpill {
			st.memoRes, st.memoDec, st.memoFrom, st.memoVal = res, d, from, -1
			if res == p.view.Shared(v) {
				st.memoVal = int32(v)
				p.memoVal(v, d, from)
			}
		}
	}
	st.prev = d
	if multipath {
		// Another flow to the same destination may hash to another
		// nexthop: no hint (IPSKB_MULTIPATH).
		st.prev = nil
	}
	return d
}

// lookupOne is the input lookup of pk, whose destination's value is v,
// where the value alone may not answer: with its full key (and the
// multipath hash while some route is multipath).
func (p *Pipeline) lookupOne(pk *RxPkt, v uint16, hash bool) *fib.Result {
	if res := p.view.Result(v, pk.Dst, pk.Src); res != nil {
		return res
	}
	key := &p.inKey
	inputKey(key, pk)
	if hash {
		key.Hash = p.flowHash(pk)
	}
	return p.view.Lookup(key, v, &p.inSpill)
}

// inputKey fills key for the input lookup of pk, without the multipath
// hash. Field by field: a composite literal is built on the stack and then
// copied.
func inputKey(key *fib.Key, pk *RxPkt) {
	key.Dst, key.Src, key.Tos, key.Iif, key.Oif, key.Mark, key.Hash = pk.Dst, pk.Src, pk.TOS&0x1c, int(pk.Port), -1, 0, 0
}

// flowHash is the multipath hash of a received packet: by addresses, or
// with fib_multipath_hash_policy 1 also by protocol and ports, which
// fragments do not carry (as the kernel's flow dissector, that does not
// parse even a first fragment's ports here).
func (p *Pipeline) flowHash(pk *RxPkt) uint32 {
	src, dst := pk.Src, pk.Dst
	if !p.knobs.MultipathHashL4 {
		return fib.FlowHash(src, dst)
	}
	ip := bytesAt(pk.Data, int(pk.Len))[EthHdrLen:]
	proto := ip[ipProto]
	var sport, dport uint16
	hlen := int(ip[ipVerIHL]&0xf) * 4
	if be.Uint16(ip[ipFragOff:])&(ipFlagMF|ipOffsetMask) == 0 && (proto == ProtoTCP || proto == ProtoUDP || proto == ProtoSCTP) && len(ip) >= hlen+4 {
		sport, dport = be.Uint16(ip[hlen:]), be.Uint16(ip[hlen+2:])
	}
	return fib.FlowHashL4(src, dst, proto, sport, dport)
}

// route[k] says how packet k of the list gets its decision: the index of
// its destination in the lookup list, or one of these.
const (
	routeBcast = int16(-1) // the limited broadcast
	routeMcast = int16(-2) // a multicast destination
	routeHint  = int16(-3) // the previous packet's decision
	routeGone  = int16(-4) // handled or dropped by the receive stage
	// fib.Special addresses: looked up alone, never in the lookup list
	// (whose entries the runs take for ordinary addresses).
	routeSpecial = int16(-5)
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
