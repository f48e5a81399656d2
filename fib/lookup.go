package fib

// Lookup routes a received packet (ip_route_input_slow): the policy rules,
// then the tables they name. Most keys are answered by the merged
// structure, and their Result names no Route; LookupExact always walks.
// Lock-free, no allocation.
func (f *FIB) Lookup(k *Key, res *Result) {
	if inputMaybeSpecial(k) && inputSpecial(k, f.portSnap.Load(), res) {
		return
	}
	if fs, j, ok := f.fastAnswer(k); ok && int(j) < len(fs.inRes) {
		*res = fs.inRes[j]
		return
	}
	f.lookupWalk(k, res)
}

// LookupExact is Lookup through the rule walk and the tries: its Result
// names the Route that matched.
func (f *FIB) LookupExact(k *Key, res *Result) {
	if inputMaybeSpecial(k) && inputSpecial(k, f.portSnap.Load(), res) {
		return
	}
	f.lookupWalk(k, res)
}

// fastAnswer finds k's answer in the lookup structures, through the
// compiled policy rules: the snapshot and the answer's index, or false
// where only the rule walk can tell (an output port, what answers leave
// to matchRoute).
func (f *FIB) fastAnswer(k *Key) (*fsnap, uint32, bool) {
	fs := f.fast.Load()
	j, ok := fs.ansAt(uint32(fs.val(k)), k)
	return fs, j, ok
}

// lookupWalk is an input lookup through the rule walk.
func (f *FIB) lookupWalk(k *Key, res *Result) {
	*res = Result{}
	f.walkRules(k, f.portSnap.Load(), res)
	inputFinish(res)
}

// inputMaybeSpecial is a quick test for the keys inputSpecial answers
// (some others pass it too).
func inputMaybeSpecial(k *Key) bool { return Special(k.Dst, k.Src) }

// Special reports whether an input lookup from src to dst may be answered
// apart from the tables (broadcast, martians, multicast and the like); a
// few others pass the test too.
func Special(dst, src uint32) bool {
	top := dst >> 24
	return top == 0 || top == 127 || top >= 0xe0 || src >= 0xe0000000
}

// inputSpecial clears res and answers the destinations an input lookup
// never takes to the tables: broadcast, martians, multicast.
func inputSpecial(k *Key, ps *portSnap, res *Result) bool {
	*res = Result{}
	dst := k.Dst
	if dst == 0xffffffff || dst == 0 && k.Src == 0 {
		res.Type = Broadcast
		res.Prefsrc = selectAddr(ps, k.Iif, 0)
		return true
	}
	if dst>>24 == 0 || dst>>24 == 127 || isMartianSrc(k.Src) {
		res.Err = ErrBlackhole // martian
		return true
	}
	if dst>>28 == 0xe {
		res.Type = Multicast
		return true
	}
	return false
}

func inputFinish(res *Result) {
	if res.Err != nil {
		return
	}
	switch res.Type {
	case Unicast, Local, Broadcast:
	default: // anycast, multicast routes are martian destinations for input
		res.Err = ErrBlackhole
	}
}

func isMartianSrc(src uint32) bool {
	return src == 0xffffffff || src>>28 == 0xe
}

// LookupOutput routes a packet the router itself sends
// (ip_route_output_key): a given source must be one of ours, a given output
// port constrains the nexthop, and with no route a given port is assumed to
// be on-link. As with Lookup, a Result from the merged structure names no
// Route; LookupOutputExact always walks.
func (f *FIB) LookupOutput(k *Key, res *Result) {
	f.lookupOutput(k, res, false)
}

// LookupOutputExact is LookupOutput through the rule walk: its Result names
// the Route that matched.
func (f *FIB) LookupOutputExact(k *Key, res *Result) {
	f.lookupOutput(k, res, true)
}

func (f *FIB) lookupOutput(k *Key, res *Result, exact bool) {
	*res = Result{}
	ps := f.portSnap.Load()
	if k.Src != 0 && (isMartianSrc(k.Src) || k.Src>>24 == 0 || !f.IsLocal(k.Src)) {
		res.Err = ErrBlackhole
		return
	}
	dst := k.Dst
	if k.Oif >= 0 {
		if !ps.alive(k.Oif) {
			res.Err = ErrNetUnreach
			return
		}
		if dst == 0xffffffff || dst>>28 == 0xe {
			res.Type = Broadcast
			if dst != 0xffffffff {
				res.Type = Multicast
			}
			res.Nexthop = ps.onlink[k.Oif]
			res.MTU = ps.mtu[k.Oif]
			res.Prefsrc = k.Src
			if res.Prefsrc == 0 {
				res.Prefsrc = selectAddr(ps, k.Oif, 0)
			}
			return
		}
	}
	if dst == 0 {
		// The kernel sends these to itself over loopback.
		res.Type = Local
		res.Table = TableLocal
		res.Prefsrc = k.Src
		return
	}
	if exact || !f.outputFast(k, res) {
		f.walkRules(k, ps, res)
	}
	if res.Err != nil {
		if k.Oif >= 0 {
			// Apparently the tables are wrong: assume the destination is on
			// link (ip_route_output_key_hash_rcu).
			*res = Result{Type: Unicast, Nexthop: ps.onlink[k.Oif], MTU: ps.mtu[k.Oif], Prefsrc: k.Src}
			if res.Prefsrc == 0 {
				res.Prefsrc = selectAddr(ps, k.Oif, 0)
			}
		}
		return
	}
	if res.Type == Local && res.Route != nil && res.Route.Prefsrc == 0 {
		res.Prefsrc = dst
	}
	if dst == 0xffffffff && res.Type == Unicast {
		res.Type = Broadcast
	}
	if k.Src != 0 {
		res.Prefsrc = k.Src
	}
}

// outputFast fills res from k's answer in the merged structure, as
// walkRules would, when the answer alone tells: not for a local route,
// whose source depends on whether the route names one.
func (f *FIB) outputFast(k *Key, res *Result) bool {
	fs, j, ok := f.fastAnswer(k)
	if !ok || int(j) >= len(fs.ans) {
		return false
	}
	a := &fs.ans[j]
	if a.typ == Local {
		return false
	}
	a.fill(nil, a.err, res)
	return true
}

// IsLocal reports whether addr is one of the router's addresses (a local
// route in the local table). Lock-free, no allocation.
func (f *FIB) IsLocal(addr uint32) bool {
	l := f.local.root.Load().lpm(addr)
	return l != nil && l.route(0).Type == Local
}

// walkRules walks the policy rules (fib_rules_lookup): a rule whose table
// has no match, or matches a throw route, passes on to the next rule.
func (f *FIB) walkRules(k *Key, ps *portSnap, res *Result) {
	rs := f.ruleSnap.Load()
	for i := range rs.rules {
		r := &rs.rules[i]
		if !r.match(k) {
			continue
		}
		switch r.action {
		case ActionLookup:
		case ActionUnreachable:
			*res = Result{Type: Unreachable, Err: ErrNetUnreach}
			return
		case ActionProhibit:
			*res = Result{Type: Prohibit, Err: ErrProhibited}
			return
		default:
			*res = Result{Type: Blackhole, Err: ErrBlackhole}
			return
		}
		if tableLookup(r.t.root.Load(), k, ScopeUniverse, ps, false, true, res) {
			if res.Err == errThrow {
				*res = Result{}
				continue
			}
			return
		}
	}
	*res = Result{Err: ErrNetUnreach}
}

// tableLookup is fib_table_lookup: the longest matching prefix first, then
// shorter ones when none of its routes fits the key. fast selects the
// readers' compressed lookup; writers, whose pending parts have stale leaf
// runs, use the prefix lists.
func tableLookup(root *node, k *Key, minScope Scope, ps *portSnap, ignoreLink, fast bool, res *Result) bool {
	var l *leaf
	if fast {
		l = root.lpm(k.Dst)
	} else {
		l = root.below(k.Dst, 33, true)
	}
	for l != nil {
		if matchLeaf(l, k, minScope, ps, ignoreLink, res) {
			return true
		}
		if l.plen() == 0 {
			return false
		}
		l = root.below(k.Dst, int(l.plen()), !fast)
	}
	return false
}

// matchLeaf walks a prefix's routes: a TOS route only for its TOS, a
// narrower scope than asked for never, a reject type ends the lookup with its
// error, a route with no usable nexthop is skipped.
func matchLeaf(l *leaf, k *Key, minScope Scope, ps *portSnap, ignoreLink bool, res *Result) bool {
	if l.multi == nil {
		return matchRoute(&l.r0, k, minScope, ps, ignoreLink, res)
	}
	for _, r := range *l.multi {
		if matchRoute(r, k, minScope, ps, ignoreLink, res) {
			return true
		}
	}
	return false
}

// matchRoute fills res from r when r fits the key (see matchLeaf).
func matchRoute(r *Route, k *Key, minScope Scope, ps *portSnap, ignoreLink bool, res *Result) bool {
	if r.Tos != 0 && r.Tos != k.Tos || r.Scope < minScope {
		return false
	}
	var err error
	var nh *Nexthop
	switch r.Type {
	case Blackhole:
		err = ErrBlackhole
	case Unreachable:
		err = ErrHostUnreach
	case Prohibit:
		err = ErrProhibited
	case Throw:
		err = errThrow
	default:
		if len(r.Nexthops) > 0 {
			nh = pickNexthop(r.Nexthops, k, ps, ignoreLink)
			if nh == nil {
				return false
			}
		}
	}
	res.Type = r.Type
	res.Multipath = len(r.Nexthops) > 1
	res.Table = r.Table
	res.Route = r
	res.Nexthop = nh
	res.Err = err
	res.Prefsrc = r.Prefsrc
	res.MTU = r.MTU
	if nh != nil {
		if res.Prefsrc == 0 {
			res.Prefsrc = selectAddr(ps, nh.Port, nh.Gateway)
		}
		if res.MTU == 0 && nh.Port >= 0 && nh.Port < len(ps.mtu) {
			res.MTU = ps.mtu[nh.Port]
		}
	}
	return true
}

// pickNexthop returns a live nexthop matching the key's output port, chosen
// among several by the kernel's hash-threshold method (fib_select_multipath
// over fib_rebalance's bounds): the first live nexthop whose upper bound is
// at least the 31-bit flow hash.
func pickNexthop(nhs []*Nexthop, k *Key, ps *portSnap, ignoreLink bool) *Nexthop {
	if len(nhs) == 1 {
		nh := nhs[0]
		if !ignoreLink && nh.Port >= 0 && !ps.alive(nh.Port) || k.Oif >= 0 && nh.Port != k.Oif {
			return nil
		}
		return nh
	}
	if k.Oif >= 0 {
		for _, nh := range nhs {
			if nh.Port == k.Oif && (ignoreLink || ps.alive(nh.Port)) {
				return nh
			}
		}
		return nil
	}
	h := int32(k.Hash >> 1)
	total, all := 0, 0
	for _, nh := range nhs {
		all += nh.Weight
		if ignoreLink || ps.alive(nh.Port) {
			total += nh.Weight
		}
	}
	if total == 0 {
		return nil
	}
	w := 0
	for _, nh := range nhs {
		if !ignoreLink && !ps.alive(nh.Port) {
			continue
		}
		w += nh.Weight
		bound := nh.UpperBound
		if total != all {
			// Some nexthop is dead: the bounds move as fib_rebalance moves them.
			bound = int32((uint64(w)<<31+uint64(total)/2)/uint64(total)) - 1
		}
		if h <= bound {
			return nh
		}
	}
	return nil
}
