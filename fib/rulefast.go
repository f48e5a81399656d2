package fib

import (
	"math/bits"
	"slices"
	"sync/atomic"
)

// Policy rules on the fast path. With only the default rules, structure 0
// merges local, main and default (fast.go). With others, the rules are
// compiled over structures built the same way (ruleProg):
//   - structure 0 merges, in rule order, the tables of the rules that select
//     every packet (no selector, as "from all lookup main"), up to the first
//     such rule that ends the walk (blackhole, unreachable, prohibit), which
//     answers the addresses none of them covers;
//   - when some rule has a selector, every table a rule looks up also gets
//     a structure of its own.
// A packet that no rule with a selector matches takes the same path
// through the rules as through structure 0: one lookup, as without rules.
// Any other walks the rules it matches, one structure lookup per table,
// until a table covers its destination. What the answers leave to the
// exact walk (slow answers) goes there, as without rules.

// fastPlan is which tables each structure merges, and the rules compiled
// over them.
type fastPlan struct {
	u    []uint32 // structure 0's tables, in rule order
	per  []uint32 // structure s (from 1) is table per[s-1]'s alone
	prog *ruleProg
}

// ruleProg is the rule list compiled over the structures.
type ruleProg struct {
	rules []progRule
	cond  []int // indexes in rules of those with a selector
	// srcMay and dstMay filter cond by the addresses' first octet: bit i
	// of srcMay[s>>24]&dstMay[d>>24] is clear when cond[i] cannot match
	// (bits past the 64th: cond[64:] are always tried).
	srcMay, dstMay [256]uint64
	uMiss          uint16 // value of an address no table of structure 0 covers
	// walk: structure 0 could not merge all its tables (more than
	// maxMerge): every packet walks the rules.
	walk bool
}

type progRule struct {
	cRule
	s   int    // a lookup's structure
	ans uint16 // the answer of a rule that ends the walk
}

// Fixed answers, at the start of every snapshot's table: no route, and the
// rule actions that end the walk (fib4_rule_action's errors).
const (
	ansNoRoute = iota
	ansRuleUnreachable
	ansRuleProhibit
	ansRuleBlackhole
)

var fixedAnswers = [...]answer{
	ansNoRoute:         noRoute,
	ansRuleUnreachable: {typ: Unreachable, err: errcNetUnreach, inErr: errcNetUnreach},
	ansRuleProhibit:    {typ: Prohibit, err: errcProhibited, inErr: errcProhibited},
	ansRuleBlackhole:   {typ: Blackhole, err: errcBlackhole, inErr: errcBlackhole},
}

func actionAnswer(a RuleAction) uint16 {
	switch a {
	case ActionUnreachable:
		return ansRuleUnreachable
	case ActionProhibit:
		return ansRuleProhibit
	}
	return ansRuleBlackhole
}

// selectsAll reports whether a rule matches every packet.
func (r *cRule) selectsAll() bool {
	return r.srcMask == 0 && r.dstMask == 0 && r.tos == 0 && r.markMask == 0 &&
		r.iif == portAny && r.oif == portAny && !r.invert
}

// planFast plans the structures for the rules now published. Writers.
func (f *FIB) planFast() fastPlan {
	if !f.custom.Load() {
		return fastPlan{u: []uint32{TableLocal, TableMain, TableDefault}}
	}
	rs := f.ruleSnap.Load().rules
	prog := &ruleProg{rules: make([]progRule, len(rs))}
	var pl fastPlan
	ended := false
	for i := range rs {
		r := &rs[i]
		prog.rules[i].cRule = *r
		if !r.selectsAll() {
			prog.cond = append(prog.cond, i)
			continue
		}
		if ended {
			continue
		}
		if r.action != ActionLookup {
			prog.uMiss, ended = actionAnswer(r.action), true
		} else if !slices.Contains(pl.u, r.t.id) {
			pl.u = append(pl.u, r.t.id)
		}
	}
	prog.filter()
	if len(pl.u) > maxMerge {
		pl.u, prog.walk = nil, true
	}
	if len(prog.cond) > 0 || prog.walk {
		for i := range prog.rules {
			r := &prog.rules[i]
			if r.action != ActionLookup {
				r.ans = actionAnswer(r.action)
				continue
			}
			j := slices.Index(pl.per, r.t.id)
			if j < 0 {
				j = len(pl.per)
				pl.per = append(pl.per, r.t.id)
			}
			r.s = 1 + j
		}
	}
	pl.prog = prog
	return pl
}

// tables lists structure s's tables.
func (pl *fastPlan) tables(s int) []uint32 {
	if s == 0 {
		return pl.u
	}
	return pl.per[s-1 : s]
}

// has reports whether some structure holds table id: its changes must
// reach the structures.
func (pl *fastPlan) has(id uint32) bool {
	return slices.Contains(pl.u, id) || slices.Contains(pl.per, id)
}

// lpmIn is lpm in structure s.
func (fs *fsnap) lpmIn(s int, a uint32) uint16 {
	top := fs.topOf(s)
	e := atomic.LoadUint32(&fs.chunks[top[a>>24]<<8|a>>16&255])
	if e&nodeBit == 0 {
		return uint16(e)
	}
	return fs.nodeLPM(e&^nodeBit, a)
}

// ruleVal is k's value through the compiled rules: an answer index, or
// valSlow for the exact walk.
func (fs *fsnap) ruleVal(p *ruleProg, k *Key) uint16 {
	if !p.walk && !p.anyCond(k) {
		v := fs.lpm(k.Dst)
		if v == ansNoRoute {
			v = p.uMiss
		}
		return v
	}
	for i := range p.rules {
		r := &p.rules[i]
		if !r.match(k) {
			continue
		}
		if r.action != ActionLookup {
			return r.ans
		}
		if v := fs.lpmIn(r.s, k.Dst); v != ansNoRoute {
			return v
		}
	}
	return ansNoRoute
}

// filter computes srcMay and dstMay: a rule with a source or destination
// prefix may match only addresses with the first octets it covers; an
// inverted rule, anything.
func (p *ruleProg) filter() {
	octets := func(may *[256]uint64, bit uint64, a, m uint32, inv bool) {
		lo, hi := a>>24, a>>24|^m>>24&0xff
		if inv {
			lo, hi = 0, 255
		}
		for o := lo; o <= hi; o++ {
			may[o] |= bit
		}
	}
	for j, i := range p.cond {
		if j == 64 {
			break
		}
		r := &p.rules[i]
		bit := uint64(1) << j
		octets(&p.srcMay, bit, r.src, r.srcMask, r.invert)
		octets(&p.dstMay, bit, r.dst, r.dstMask, r.invert)
	}
}

// anyCond reports whether a rule with a selector matches k.
func (p *ruleProg) anyCond(k *Key) bool {
	m := p.srcMay[k.Src>>24] & p.dstMay[k.Dst>>24]
	for m != 0 {
		j := bits.TrailingZeros64(m)
		m &= m - 1
		if p.rules[p.cond[j]].match(k) {
			return true
		}
	}
	for _, i := range p.cond[min(64, len(p.cond)):] {
		if p.rules[i].match(k) {
			return true
		}
	}
	return false
}

// mayCond is anyCond's filter alone, for addresses: false when no rule
// with a selector can match a packet from src to dst.
func (p *ruleProg) mayCond(src, dst uint32) bool {
	return p.srcMay[src>>24]&p.dstMay[dst>>24] != 0 || !p.filterTells()
}

// filterTells reports whether srcMay and dstMay cover every rule with a
// selector: not past the 64th, nor when every packet walks the rules.
func (p *ruleProg) filterTells() bool { return len(p.cond) <= 64 && !p.walk }

// val is k's value in fs: through the rules when there are some.
func (fs *fsnap) val(k *Key) uint16 {
	if fs.prog != nil {
		return fs.ruleVal(fs.prog, k)
	}
	return fs.lpm(k.Dst)
}

// same reports whether two plans build the same structures and rules.
func (pl *fastPlan) same(o fastPlan) bool {
	if !slices.Equal(pl.u, o.u) || !slices.Equal(pl.per, o.per) || (pl.prog == nil) != (o.prog == nil) {
		return false
	}
	if pl.prog == nil {
		return true
	}
	a, b := pl.prog, o.prog
	return a.uMiss == b.uMiss && a.walk == b.walk && slices.Equal(a.cond, b.cond) && slices.Equal(a.rules, b.rules)
}
