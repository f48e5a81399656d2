package fib

import (
	"fmt"
	"strconv"

	"ferry/netaddr"
)

// RuleAction is what a matching rule does, with the kernel's FR_ACT_* values.
type RuleAction uint8

const (
	ActionLookup      RuleAction = 1 // FR_ACT_TO_TBL
	ActionBlackhole   RuleAction = 6
	ActionUnreachable RuleAction = 7
	ActionProhibit    RuleAction = 8
)

// Rule is one policy rule (`ip rule`). Immutable once added.
type Rule struct {
	Priority uint32
	Invert   bool // "not"
	Src      uint32
	SrcLen   uint8
	Dst      uint32
	DstLen   uint8
	Tos      uint8
	Mark     uint32
	MarkMask uint32 // 0 with Mark 0: no fwmark selector
	IifName  string // "" any; a name that is not a port matches nothing; "lo" matches locally generated packets
	OifName  string
	Action   RuleAction
	Table    uint32

	prioSet bool // the parser saw a priority: 0 is then a real value
}

// cRule is a rule compiled for the lock-free walk: ports resolved to
// indexes, tables to pointers.
type cRule struct {
	srcMask, src   uint32
	dstMask, dst   uint32
	mark, markMask uint32
	iif, oif       int
	tos            uint8
	invert         bool
	action         RuleAction
	t              *table
}

// Port selectors of a compiled rule besides real indexes.
const (
	portLocal = -1 // locally generated (Key.Iif == -1): the kernel's "iif lo"
	portNone  = -2 // a name with no port: never matches
	portAny   = -3
)

type ruleSnap struct {
	rules []cRule
}

func (r *cRule) match(k *Key) bool {
	m := (k.Dst^r.dst)&r.dstMask == 0 && (k.Src^r.src)&r.srcMask == 0 &&
		(r.tos == 0 || r.tos == k.Tos) && (k.Mark^r.mark)&r.markMask == 0 &&
		(r.iif == portAny || r.iif == k.Iif) && (r.oif == portAny || r.oif == k.Oif)
	return m != r.invert
}

func defaultRules() []*Rule {
	return []*Rule{
		{Priority: 0, Action: ActionLookup, Table: TableLocal, prioSet: true},
		{Priority: 32766, Action: ActionLookup, Table: TableMain, prioSet: true},
		{Priority: 32767, Action: ActionLookup, Table: TableDefault, prioSet: true},
	}
}

func (f *FIB) resolvePortLocked(name string) int {
	switch name {
	case "":
		return portAny
	case "lo":
		return portLocal
	}
	if i, ok := f.byName[name]; ok {
		return i
	}
	return portNone
}

func (f *FIB) publishRulesLocked() {
	rs := &ruleSnap{rules: make([]cRule, len(f.rules))}
	for i, r := range f.rules {
		c := &rs.rules[i]
		c.srcMask, c.src = netaddr.Mask(r.SrcLen), r.Src&netaddr.Mask(r.SrcLen)
		c.dstMask, c.dst = netaddr.Mask(r.DstLen), r.Dst&netaddr.Mask(r.DstLen)
		c.mark, c.markMask = r.Mark&r.MarkMask, r.MarkMask
		c.iif, c.oif = f.resolvePortLocked(r.IifName), f.resolvePortLocked(r.OifName)
		c.tos, c.invert, c.action = r.Tos, r.Invert, r.Action
		if r.Action == ActionLookup {
			c.t = f.tableLocked(r.Table)
		}
	}
	f.ruleSnap.Store(rs)
	def := defaultRules()
	custom := len(f.rules) != len(def)
	for i := 0; !custom && i < len(def); i++ {
		custom = !sameRule(f.rules[i], def[i], false)
	}
	f.custom.Store(custom)
	if f.fast.Load() != nil && !f.fw.plan.same(f.planFast()) {
		f.rebuildFast()
	}
}

// HasCustomRules reports whether any rule other than the three default ones
// exists (or a default one is gone). Lock-free.
func (f *FIB) HasCustomRules() bool { return f.custom.Load() }

// HasMultipath reports whether any route has several nexthops: without one,
// the forwarding path need not hash flows (Key.Hash is then unused).
func (f *FIB) HasMultipath() bool { return f.multipath.Load() > 0 }

// Rules returns the rules in the order they are tried.
func (f *FIB) Rules() []*Rule {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*Rule(nil), f.rules...)
}

// AddRule adds a rule after those of the same priority. A rule parsed
// without a priority gets the one below the second rule's, as the kernel
// does.
func (f *FIB) AddRule(r Rule) error {
	if err := checkRule(&r); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !r.prioSet && r.Priority == 0 && len(f.rules) > 1 && f.rules[1].Priority > 0 {
		r.Priority = f.rules[1].Priority - 1
	}
	r.prioSet = true
	for _, o := range f.rules {
		if sameRule(o, &r, false) {
			return fmt.Errorf("rule %q: %w", FormatRule(&r, nil), ErrExists)
		}
	}
	at := len(f.rules)
	for i, o := range f.rules {
		if o.Priority > r.Priority {
			at = i
			break
		}
	}
	nr := r
	f.rules = append(f.rules, nil)
	copy(f.rules[at+1:], f.rules[at:])
	f.rules[at] = &nr
	f.publishRulesLocked()
	f.gen.Bump()
	return nil
}

// DelRule deletes the first rule matching r. For a parsed rule the
// priority, and for any rule the zero-valued fields, match anything.
func (f *FIB) DelRule(r Rule) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, o := range f.rules {
		if sameRule(o, &r, true) {
			f.rules = append(f.rules[:i], f.rules[i+1:]...)
			f.publishRulesLocked()
			f.gen.Bump()
			return nil
		}
	}
	return fmt.Errorf("rule %q: %w", FormatRule(&r, nil), ErrNoEntry)
}

func checkRule(r *Rule) error {
	if r.SrcLen > 32 || r.DstLen > 32 {
		return fmt.Errorf("rule: invalid prefix length")
	}
	switch r.Action {
	case 0:
		r.Action = ActionLookup
	case ActionLookup, ActionBlackhole, ActionUnreachable, ActionProhibit:
	default:
		return fmt.Errorf("rule: unknown action %d", r.Action)
	}
	if r.Action == ActionLookup && r.Table == TableUnspec {
		r.Table = TableMain
	}
	if r.Action != ActionLookup {
		r.Table = 0
	}
	if r.Mark != 0 && r.MarkMask == 0 {
		r.MarkMask = 0xffffffff
	}
	r.Src &= netaddr.Mask(r.SrcLen)
	r.Dst &= netaddr.Mask(r.DstLen)
	return nil
}

// sameRule compares selectors and action; as a delete pattern (wild), zero
// fields of want and an unset priority match anything.
func sameRule(have, want *Rule, wild bool) bool {
	if !wild {
		return have.Priority == want.Priority && have.Invert == want.Invert &&
			have.Src == want.Src && have.SrcLen == want.SrcLen && have.Dst == want.Dst && have.DstLen == want.DstLen &&
			have.Tos == want.Tos && have.Mark == want.Mark && have.MarkMask == want.MarkMask &&
			have.IifName == want.IifName && have.OifName == want.OifName && have.Action == want.Action && have.Table == want.Table
	}
	if (want.prioSet || want.Priority != 0) && have.Priority != want.Priority {
		return false
	}
	if want.Invert && !have.Invert ||
		want.SrcLen != 0 && (have.Src != want.Src || have.SrcLen != want.SrcLen) ||
		want.DstLen != 0 && (have.Dst != want.Dst || have.DstLen != want.DstLen) ||
		want.Tos != 0 && have.Tos != want.Tos ||
		want.Mark != 0 && have.Mark != want.Mark || want.MarkMask != 0 && have.MarkMask != want.MarkMask ||
		want.IifName != "" && have.IifName != want.IifName || want.OifName != "" && have.OifName != want.OifName ||
		want.Action != 0 && have.Action != want.Action || want.Table != 0 && have.Table != want.Table {
		return false
	}
	return true
}

// TableName is a table as iproute2 names it: local, main, default or its
// number.
func TableName(id uint32) string {
	switch id {
	case TableLocal:
		return "local"
	case TableMain:
		return "main"
	case TableDefault:
		return "default"
	case TableUnspec:
		return "unspec"
	}
	return strconv.FormatUint(uint64(id), 10)
}
