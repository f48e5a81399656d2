package fib

import "unsafe"

// The answer table: what a lookup through the merged structure returns,
// precomputed so that the common lookup is the structure walk plus one load
// of the answer, and never dereferences a *Route or *Nexthop.
//
// The merged structure holds, for every prefix, the index of its first
// route's answer. Answers are shared: routes with the
// same interned nexthop set, type, table, prefsrc, MTU and TOS-ness (for a
// BGP table, one per gateway) have one, so the table stays small and hot in
// the cache. An answer holds the Result's fields as matchRoute would fill
// them for a key with no output port: the type, the table, the nexthop, the
// preferred source and the MTU (both resolved against the ports), and the
// error of output and of input lookups. A multipath route's answer is
// followed by one answer per nexthop, with its upper bound: the hash picks
// one without touching the route. Whatever the answer cannot tell (a TOS
// route, a throw route, a dead nexthop, an output port in the key) is marked
// slow and goes to matchRoute and the rule walk.
//
// Answers depend on the ports (liveness, MTU, addresses): every change of
// the ports recomputes the table and publishes a new snapshot.

// answer is the precomputed Result of a route (see above).
type answer struct {
	nh      *Nexthop
	prefsrc uint32
	mtu     uint32
	table   uint32
	bound   int32  // a multipath nexthop's fib_nh_upper_bound
	n       uint32 // a multipath answer's nexthops (answers that follow it)
	typ     Type
	err     uint8 // errc* of output lookups
	inErr   uint8 // errc* of input lookups (inputFinish applied)
	flags   uint8 // ans*
}

// Bits of answer.flags.
const (
	ansSlow  = 1 << iota // only matchRoute and the rule walk can answer
	ansMulti             // pick one of the n answers that follow by the hash
	ansPath              // one of those: Result.Multipath
)

// Error codes of answers.
const (
	errcNone = iota
	errcBlackhole
	errcHostUnreach
	errcProhibited
	errcNetUnreach
)

// errByCode maps the errc* codes to their errors; an array, as the bulk
// lookup fills a Result per key.
var errByCode = [...]error{
	errcNone:        nil,
	errcBlackhole:   ErrBlackhole,
	errcHostUnreach: ErrHostUnreach,
	errcProhibited:  ErrProhibited,
	errcNetUnreach:  ErrNetUnreach,
}

func errOf(c uint8) error {
	if int(c) < len(errByCode) {
		return errByCode[c]
	}
	return ErrNetUnreach
}

// noRoute is answer 0: no table covers the address.
var noRoute = answer{err: errcNetUnreach, inErr: errcNetUnreach}

// ansKey identifies the routes that share an answer. Routes with the same
// first nexthop share the whole interned nexthop set (and so their
// attributes); the other fields are there for routes without nexthops.
type ansKey struct {
	nh0                 *Nexthop
	n                   int
	table, prefsrc, mtu uint32
	typ                 Type
	tos                 bool
}

func ansKeyOf(r *Route) ansKey {
	k := ansKey{n: len(r.Nexthops), table: r.Table, prefsrc: r.Prefsrc, mtu: r.MTU, typ: r.Type, tos: r.Tos != 0}
	if k.n > 0 {
		k.nh0 = r.Nexthops[0]
	}
	return k
}

// ansSrc is what the writers recompute an answer from.
type ansSrc struct {
	key ansKey
	nhs []*Nexthop
	at  uint32 // index of the answer
}

// answerOf returns the index of r's answer in the snapshot being built,
// appending it when new.
func (w *fastWriter) answerOf(r *Route) uint32 {
	if len(r.Nexthops) == 0 {
		return w.answerOfKey(r)
	}
	// Routes share their nexthops only when all an answer holds is the
	// same (publishRoute interns them by it): the first nexthop and
	// whether there is a TOS name the answer, and a small memo of them
	// spares most builds of a key and most map lookups.
	nh, tos := r.Nexthops[0], r.Tos != 0
	slot := uintptr(unsafe.Pointer(nh)) >> 4
	if tos {
		slot ^= 1
	}
	m := &w.memo[slot%uintptr(len(w.memo))]
	if m.nh == nh && m.tos == tos && m.epoch == w.epoch {
		return m.at
	}
	at := w.answerOfKey(r)
	*m = ansMemo{nh: nh, tos: tos, epoch: w.epoch, at: at}
	return at
}

// ansMemo remembers the answer of routes through a nexthop group.
type ansMemo struct {
	nh    *Nexthop
	tos   bool
	epoch uint32
	at    uint32
}

func (w *fastWriter) answerOfKey(r *Route) uint32 {
	k := ansKeyOf(r)
	if i, ok := w.ansIdx[k]; ok {
		return i
	}
	fs := w.next
	s := ansSrc{key: k, nhs: r.Nexthops, at: uint32(len(fs.ans))}
	n := 1
	if k.n > 1 {
		n += k.n
	}
	for i := 0; i < n; i++ {
		fs.ans = append(fs.ans, answer{})
	}
	fillAnswer(fs.ans[s.at:], &s, w.ps)
	fs.syncResults()
	if w.ansIdx == nil {
		w.ansIdx = make(map[ansKey]uint32)
	}
	w.ansIdx[k] = s.at
	w.srcs = append(w.srcs, s)
	return s.at
}

// fillAnswer computes s's answer (and a multipath route's per-nexthop
// answers) into a against the ports ps, as matchRoute fills a Result for a
// key without output port.
func fillAnswer(a []answer, s *ansSrc, ps *portSnap) {
	k := &s.key
	h := answer{typ: k.typ, table: k.table, prefsrc: k.prefsrc, mtu: k.mtu}
	switch k.typ {
	case Blackhole:
		h.err = errcBlackhole
	case Unreachable:
		h.err = errcHostUnreach
	case Prohibit:
		h.err = errcProhibited
	case Throw:
		h.flags |= ansSlow
	}
	h.inErr = h.err
	if h.err == errcNone && k.typ != Unicast && k.typ != Local && k.typ != Broadcast {
		h.inErr = errcBlackhole // inputFinish
	}
	if k.tos {
		h.flags |= ansSlow
	}
	switch {
	case len(s.nhs) == 1:
		nh := s.nhs[0]
		if nh.Port >= 0 && !ps.alive(nh.Port) {
			h.flags |= ansSlow
		} else {
			h.setNexthop(nh, ps)
		}
	case len(s.nhs) > 1:
		// pickNexthop's bounds hold while every nexthop is alive; with
		// one dead they move, which only the walk computes.
		for j, nh := range s.nhs {
			x := h
			x.flags = ansPath
			x.setNexthop(nh, ps)
			x.bound = nh.UpperBound
			a[1+j] = x
			if !ps.alive(nh.Port) {
				h.flags |= ansSlow
			}
		}
		h.flags |= ansMulti
		h.n = uint32(len(s.nhs))
	}
	a[0] = h
}

func (a *answer) setNexthop(nh *Nexthop, ps *portSnap) {
	a.nh = nh
	if a.prefsrc == 0 {
		a.prefsrc = selectAddr(ps, nh.Port, nh.Gateway)
	}
	if a.mtu == 0 && nh.Port >= 0 && nh.Port < len(ps.mtu) {
		a.mtu = ps.mtu[nh.Port]
	}
}

// ansFor returns the answer at index i for k, nil when only matchRoute
// and the rule walk can tell.
func (fs *fsnap) ansFor(i uint32, k *Key) *answer {
	if j, ok := fs.ansAt(i, k); ok {
		return &fs.ans[j]
	}
	return nil
}

// ansAt is ansFor as an index.
func (fs *fsnap) ansAt(i uint32, k *Key) (uint32, bool) {
	if int(i) >= len(fs.ans) {
		return 0, false // newer than this snapshot (InputView.Shared)
	}
	a := &fs.ans[i]
	if a.flags == 0 {
		return i, k.Oif < 0 || a.nh == nil
	}
	if a.flags != ansMulti || k.Oif >= 0 {
		return 0, false
	}
	// fib_select_multipath: the first nexthop whose bound is at least the
	// hash; the last one's bound is the largest hash.
	h := int32(k.Hash >> 1)
	j, end := i+1, min(i+a.n, uint32(len(fs.ans)))
	for j < end && fs.ans[j].bound < h {
		j++
	}
	return j, true
}

// syncResults appends the input Results of the answers that have none
// yet.
func (fs *fsnap) syncResults() {
	for j := len(fs.inRes); j < len(fs.ans); j++ {
		a := &fs.ans[j]
		var r Result
		a.fill(nil, a.inErr, &r)
		fs.inRes = append(fs.inRes, r)
	}
}

// fill writes the answer into res, with the given error code (a.err or
// a.inErr).
func (a *answer) fill(route *Route, errc uint8, res *Result) {
	*res = Result{Type: a.typ, Multipath: a.flags&ansPath != 0, Table: a.table, Route: route, Nexthop: a.nh, Prefsrc: a.prefsrc, MTU: a.mtu, Err: errOf(errc)}
}

// refreshAnswers recomputes the answers after a change of the ports and
// publishes them. Writers only.
func (f *FIB) refreshAnswers() {
	if f.fast.Load() == nil {
		return
	}
	fs := &f.fw.cur
	fs.ans = append([]answer(nil), fs.ans...)
	ps := f.portSnap.Load()
	for i := range f.fw.srcs {
		s := &f.fw.srcs[i]
		fillAnswer(fs.ans[s.at:], s, ps)
	}
	fs.inRes = nil
	fs.syncResults()
	f.publishFast()
}
