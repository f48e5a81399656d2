package fib

// LookupBulk is Lookup for many keys (res must be at least as long as
// keys), for the forwarding path: the lookups go through the merged
// structure bulkN at a time, level by level, so that their cache misses
// overlap (with policy rules, through the rules one by one), and most end
// with their answer, whose Result has no Route (the rest take the rule
// walk and have it). Lock-free, no allocation.
func (f *FIB) LookupBulk(keys []Key, res []Result) {
	res = res[:len(keys)]
	var refs [bulkN]*Result
	for off := 0; off < len(keys); off += bulkN {
		ks := keys[off:]
		if len(ks) > bulkN {
			ks = ks[:bulkN]
		}
		rs := res[off : off+len(ks)]
		f.LookupBulkRefs(ks, refs[:len(ks)], rs)
		for i, r := range refs[:len(ks)] {
			if r != &rs[i] {
				rs[i] = *r
			}
		}
	}
}

// InputView is one published state of the lookup structures, for a pass
// of input lookups (no output port, no mark) that goes by address first:
// Vals walks the merged structure for the destinations (KeyVal, with
// policy rules, each packet's key through them), then Result gives each
// one's shared Result where the value alone answers, and Lookup the rest
// with full keys. Taken once a pass, so that every value is read against
// the snapshot it came from. Lock-free, no allocation.
type InputView struct {
	fs *fsnap
	f  *FIB
	// walks are this pass's lookups of slow values, for Done.
	walks uint32
}

// InputView pins the current state.
func (f *FIB) InputView() InputView {
	return InputView{fs: f.fast.Load(), f: f}
}

// Rules reports whether policy rules other than the default ones are in
// play: some values then come from KeyVal (NeedsKey).
func (v *InputView) Rules() bool { return v.fs.prog != nil }

// Vals puts in vals[i] the merged structure's value for dsts[i] (vals at
// least as long), bulkN at a time so that their cache misses overlap.
// With policy rules these are the values of packets that no rule with a
// selector matches; NeedsKey tells the others, whose value KeyVal gives.
func (v *InputView) Vals(dsts []uint32, vals []uint16) {
	vals = vals[:len(dsts)]
	p := v.fs.prog
	if p != nil && p.walk {
		for i := range vals {
			vals[i] = valSlow
		}
		return
	}
	for off := 0; off < len(dsts); off += bulkN {
		end := min(off+bulkN, len(dsts))
		v.fs.lpmBulk(dsts[off:end], vals[off:end])
	}
	if p != nil && p.uMiss != ansNoRoute {
		for i, x := range vals {
			if x == ansNoRoute {
				vals[i] = p.uMiss
			}
		}
	}
}

// NeedsKey reports whether the value of k is not its destination's from
// Vals: some policy rule with a selector matches it.
func (v *InputView) NeedsKey(k *Key) bool {
	p := v.fs.prog
	return p != nil && (p.walk || p.anyCond(k))
}

// MayNeedKey is NeedsKey's quick test on addresses: false when no policy
// rule with a selector can match a packet from src to dst.
func (v *InputView) MayNeedKey(src, dst uint32) bool {
	p := v.fs.prog
	return p != nil && p.mayCond(src, dst)
}

// KeyFilter returns the tables of MayNeedKey's test: with policy rules, no
// rule with a selector can match a packet from src to dst, whose value is
// then its destination's alone, when srcMay[src>>24]&dstMay[dst>>24] is 0.
// Both are nil where the tables do not tell: without policy rules, or with
// rules that every packet may need (MayNeedKey always true).
func (v *InputView) KeyFilter() (srcMay, dstMay *[256]uint64) {
	p := v.fs.prog
	if p == nil || !p.filterTells() {
		return nil, nil
	}
	return &p.srcMay, &p.dstMay
}

// KeyVal is the value of an input key through the policy rules (ruleVal),
// or through the merged structure without them.
func (v *InputView) KeyVal(k *Key) uint16 { return v.fs.val(k) }

// Val is Vals for one destination, without a key: valSlow with policy
// rules, where the destination alone does not tell.
func (v *InputView) Val(dst uint32) uint16 {
	if v.fs.prog != nil {
		return valSlow
	}
	return v.fs.lpm(dst)
}

// Result is the shared, read-only Result for a destination whose value is
// val, or nil where a full key is needed (Lookup): special addresses,
// multipath routes (their hash) and what the structure leaves to the rule
// walk.
func (v *InputView) Result(val uint16, dst, src uint32) *Result {
	if Special(dst, src) {
		return nil
	}
	return v.Shared(val)
}

// Shared is the Result that Result gives for val to every address that is
// not Special, or nil: one Result for all of them.
//
// A value past the snapshot's answers comes from an entry a later single
// change stored in place (updateFast) with an answer this snapshot
// predates: it is left to the full lookup too.
func (v *InputView) Shared(val uint16) *Result {
	if int(val) >= len(v.fs.inRes) || v.fs.ans[val].flags != 0 {
		return nil
	}
	return &v.fs.inRes[val]
}

// Lookup is the input lookup of k, whose value (Vals, KeyVal) is val: a
// shared Result or spill, filled.
func (v *InputView) Lookup(k *Key, val uint16, spill *Result) *Result {
	f := v.f
	if inputMaybeSpecial(k) && inputSpecial(k, f.portSnap.Load(), spill) {
		return spill
	}
	if int(val) < len(v.fs.inRes) {
		if j, ok := v.fs.ansAt(uint32(val), k); ok && int(j) < len(v.fs.inRes) {
			return &v.fs.inRes[j]
		}
	}
	// A waiting block (not rules that send every lookup to the walk,
	// which no build would spare): counted, and built by the next batch.
	if val == valSlow && (v.fs.prog == nil || !v.fs.prog.walk) {
		v.walks++
		f.used.mark(k.Dst)
	}
	f.lookupWalk(k, spill)
	return spill
}

// Done ends a pass: it adds the pass's lookups that took the rule walk
// for a block waiting on its build to SlowWalks, once.
func (v *InputView) Done() {
	if v.walks != 0 {
		v.f.walks.n.Add(uint64(v.walks))
		v.walks = 0
	}
}

// LookupBulkRefs is LookupBulk without copying Results: out[i] points at a
// Result shared by all keys with the same answer (read-only, no Route), or
// at spill[i], which the rule walk filled (out and spill must be at least
// as long as keys). Lock-free, no allocation.
func (f *FIB) LookupBulkRefs(keys []Key, out []*Result, spill []Result) {
	out, spill = out[:len(keys)], spill[:len(keys)]
	v := f.InputView()
	var dsts [bulkN]uint32
	var vals [bulkN]uint16
	for off := 0; off < len(keys); off += bulkN {
		ks := keys[off:min(off+bulkN, len(keys))]
		for i := range ks {
			dsts[i] = ks[i].Dst
		}
		v.Vals(dsts[:len(ks)], vals[:len(ks)])
		if v.Rules() {
			for i := range ks {
				if v.NeedsKey(&ks[i]) {
					vals[i] = v.KeyVal(&ks[i])
				}
			}
		}
		for i := range ks {
			out[off+i] = v.Lookup(&ks[i], vals[i], &spill[off+i])
		}
	}
	v.Done()
}

// SlowWalks counts the input lookups that took the rule walk for a block
// whose build waited (InputView.Done), since the start.
func (f *FIB) SlowWalks() uint64 { return f.walks.n.Load() }

// LookupBytes is the memory of the data plane's lookup structure now.
func (f *FIB) LookupBytes() int { return f.fast.Load().bytes() }
