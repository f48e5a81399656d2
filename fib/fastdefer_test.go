package fib

import (
	"fmt"
	"testing"
	"time"

	"ferry/netaddr"
)

// blockBatch adds or replaces n /24s, each in a /16 block of its own from
// 10.0/16 on, via gw, in one batch, and returns their addresses.
func blockBatch(t *testing.T, f *FIB, n int, verb, gw string) []uint32 {
	t.Helper()
	var addrs []uint32
	must(t, f.Batch(func(b *Batch) error {
		for i := 0; i < n; i++ {
			a := uint32(10+i>>8)<<24 | uint32(i&255)<<16 | 5<<8
			r, err := ParseRoute([]string{netaddr.IPv4String(a) + "/24", "via", gw}, f)
			if err != nil {
				return err
			}
			op := OpAdd
			if verb == "replace" {
				op = OpReplace
			}
			if err := b.Apply(RouteCmd{Op: op, Route: r}); err != nil {
				return err
			}
			addrs = append(addrs, a|7)
		}
		return nil
	}))
	return addrs
}

// pendingState reports whether builds are deferred, and the merged structure's
// value for a with the one the route there should have.
func pendingState(f *FIB, a uint32) (pending bool, got, want uint16) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if l := f.main.root.Load().lpm(a); l != nil {
		want = f.fw.valueOf(l.route(0))
	}
	return f.fw.pending.any(), f.fast.Load().lpm(a), want
}

// sameAnswers checks that the forwarding path's lookups (bulk, by answer)
// agree with the exact rule walk for addrs and their neighbours.
func sameAnswers(t *testing.T, f *FIB, addrs []uint32) {
	t.Helper()
	var keys []Key
	for _, a := range addrs {
		for _, x := range []uint32{a, a ^ 0xff00, a ^ 0x800000} {
			keys = append(keys, Key{Dst: x, Src: ip("192.0.2.9"), Iif: 0, Oif: -1})
		}
	}
	got := make([]Result, len(keys))
	f.LookupBulk(keys, got)
	forgetWalks(f) // a check, not traffic for the writers to build for
	for i := range keys {
		var want Result
		f.LookupExact(&keys[i], &want)
		if got[i].Route == nil {
			want.Route = nil
		}
		if d := resultDiff(&got[i], &want); d != "" {
			t.Fatalf("%s:%s\n got %+v\nwant %+v", netaddr.IPv4String(keys[i].Dst), d, got[i], want)
		}
	}
}

// forgetWalks has the writers take the readers' walks so far as old.
func forgetWalks(f *FIB) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fw.walksSeen, f.fw.busyAt = f.walks.n.Load(), time.Time{}
}

func setDeferTimes(f *FIB, quiet, min time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fw.quiet, f.fw.minAge = quiet, min
}

// A batch that changes many /16 blocks leaves them to the rule walk, which
// answers right at once; the builds come when the changes pause, when they
// go on for long, or before a compaction.
func TestDeferredBuilds(t *testing.T) {
	f := testFIB(t)
	setDeferTimes(f, time.Hour, time.Hour) // built by hand first
	must(t, run(t, f, "add", "10.0.0.0/8 via 198.51.100.2"))
	addrs := blockBatch(t, f, 2*deferMinBlocks, "add", "192.0.2.2")
	for _, a := range addrs {
		if pending, got, _ := pendingState(f, a); !pending || got != valSlow {
			t.Fatalf("%s after a batch of %d blocks: deferred %v, value %d", netaddr.IPv4String(a), 2*deferMinBlocks, pending, got)
		}
	}
	sameAnswers(t, f, addrs)

	// While builds are deferred, a single change joins them.
	must(t, run(t, f, "add", "12.1.2.0/24 via 192.0.2.3"))
	if _, got, _ := pendingState(f, ip("12.1.2.3")); got != valSlow {
		t.Fatalf("a single change while builds are deferred: value %d", got)
	}
	sameAnswers(t, f, append(addrs, ip("12.1.2.3")))

	f.BuildDeferred()
	for _, a := range append(addrs, ip("12.1.2.3")) {
		if pending, got, want := pendingState(f, a); pending || got != want {
			t.Fatalf("%s after BuildDeferred: deferred %v, value %d, want %d", netaddr.IPv4String(a), pending, got, want)
		}
	}
	sameAnswers(t, f, addrs)

	// A compaction builds what waits first.
	blockBatch(t, f, deferMinBlocks, "replace", "192.0.2.3")
	f.Compact()
	if pending, got, want := pendingState(f, addrs[0]); pending || got != want {
		t.Fatalf("after Compact: deferred %v, value %d, want %d", pending, got, want)
	}

	// A pause builds them.
	setDeferTimes(f, 20*time.Millisecond, time.Hour)
	blockBatch(t, f, deferMinBlocks, "replace", "192.0.2.2")
	deadline := time.Now().Add(5 * time.Second)
	for {
		pending, got, want := pendingState(f, addrs[0])
		if !pending && got == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("5 s after the changes: deferred %v, value %d, want %d", pending, got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
	sameAnswers(t, f, addrs)

	// Changes that never pause get their builds too.
	setDeferTimes(f, time.Hour, 30*time.Millisecond)
	built := false
	for i := 0; i < 100 && !built; i++ {
		blockBatch(t, f, deferMinBlocks, "replace", fmt.Sprintf("192.0.2.%d", 2+i%2))
		built, _, _ = pendingState(f, addrs[0])
		built = !built
		time.Sleep(5 * time.Millisecond)
	}
	if !built {
		t.Fatal("100 batches over 0.5 s: their builds still wait")
	}
	sameAnswers(t, f, addrs)

	// Rules that change the structures rebuild them whole.
	setDeferTimes(f, time.Hour, time.Hour)
	blockBatch(t, f, deferMinBlocks, "replace", "192.0.2.4")
	if pending, _, _ := pendingState(f, addrs[0]); !pending {
		t.Fatal("no builds deferred")
	}
	must(t, f.AddRule(Rule{Priority: 10, Action: ActionLookup, Table: TableMain, Src: ip("203.0.113.0"), SrcLen: 24}))
	if pending, _, _ := pendingState(f, addrs[0]); pending {
		t.Fatal("builds still deferred after the structures were rebuilt for a rule")
	}
	sameAnswers(t, f, addrs)
}

// While lookups walk for blocks whose builds wait, batches build their
// blocks at once: a table changing under traffic keeps it on the fast
// path. Once the readers have been quiet for deferHold, builds wait again.
func TestWalksBuildAtOnce(t *testing.T) {
	f := testFIB(t)
	setDeferTimes(f, time.Hour, time.Hour)
	addrs := blockBatch(t, f, 2*deferMinBlocks, "add", "192.0.2.2")
	if pending, got, _ := pendingState(f, addrs[0]); !pending || got != valSlow {
		t.Fatalf("no traffic: deferred %v, value %d", pending, got)
	}
	// Traffic to the waiting blocks, as a pipeline's passes.
	keys := make([]Key, len(addrs))
	for i, a := range addrs {
		keys[i] = Key{Dst: a, Src: ip("192.0.2.9"), Iif: 0, Oif: -1}
	}
	res := make([]Result, len(keys))
	// Passes enough that the walks' rate since that batch stays above
	// deferWalkRate even if the next batch takes long to come (a loaded
	// machine, the race detector): 20 passes of 512 walks each.
	const passes = 20
	before := f.walks.n.Load()
	for i := 0; i < passes; i++ {
		f.LookupBulk(keys, res)
	}
	walked := uint64(passes * len(keys))
	if n := f.walks.n.Load() - before; n != walked {
		t.Fatalf("%d lookups of waiting blocks counted %d walks", walked, n)
	}
	for round, gw := range []string{"192.0.2.3", "192.0.2.2"} {
		blockBatch(t, f, 2*deferMinBlocks, "replace", gw)
		for _, a := range addrs {
			if pending, got, want := pendingState(f, a); pending || got != want {
				t.Fatalf("round %d: %s with traffic waiting: deferred %v, value %d, want %d", round, netaddr.IPv4String(a), pending, got, want)
			}
		}
	}
	f.LookupBulk(keys, res)
	if n := f.walks.n.Load() - before; n != walked {
		t.Fatalf("lookups of built blocks counted as walks: %d", n-walked)
	}
	sameAnswers(t, f, addrs)

	// The hold over: builds wait again.
	f.mu.Lock()
	f.fw.busyAt = time.Now().Add(-deferHold)
	f.mu.Unlock()
	blockBatch(t, f, 2*deferMinBlocks, "replace", "192.0.2.3")
	if pending, got, _ := pendingState(f, addrs[0]); !pending || got != valSlow {
		t.Fatalf("readers quiet for %v: deferred %v, value %d", deferHold, pending, got)
	}
	sameAnswers(t, f, addrs)
}
