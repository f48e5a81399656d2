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
	forgetUse(f) // a check, not traffic for the writers to build for
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

// forgetUse has the writers take no block as used by traffic.
func forgetUse(f *FIB) {
	f.used.clearGen(0)
	f.used.clearGen(1)
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

// A batch that defers its builds builds at once the blocks traffic uses:
// those the pipelines' samples name (NoteUsed), and those waiting that a
// lookup walked since. The rest waits; marks expire after two windows.
func TestUsedBlocksBuildAtOnce(t *testing.T) {
	f := testFIB(t)
	setDeferTimes(f, time.Hour, time.Hour)
	addrs := blockBatch(t, f, 2*deferMinBlocks, "add", "192.0.2.2")
	if f.UsedBlocks() != 0 {
		t.Fatalf("no traffic: %d blocks used", f.UsedBlocks())
	}
	for _, a := range addrs {
		if pending, got, _ := pendingState(f, a); !pending || got != valSlow {
			t.Fatalf("no traffic: %s deferred %v, value %d", netaddr.IPv4String(a), pending, got)
		}
	}
	// Traffic to a quarter of the waiting blocks walks, and marks them.
	walked, sampled, idle := addrs[:len(addrs)/4], addrs[len(addrs)/4:len(addrs)/2], addrs[len(addrs)/2:]
	keys := make([]Key, len(walked))
	for i, a := range walked {
		keys[i] = Key{Dst: a, Src: ip("192.0.2.9"), Iif: 0, Oif: -1}
	}
	before := f.SlowWalks()
	f.LookupBulk(keys, make([]Result, len(keys)))
	if n := f.SlowWalks() - before; n != uint64(len(keys)) {
		t.Fatalf("%d lookups of waiting blocks counted %d walks", len(keys), n)
	}
	// A pass's sample names another quarter.
	v := f.InputView()
	v.NoteUsed(sampled)
	if got, want := f.UsedBlocks(), len(walked)+len(sampled); got != want {
		t.Fatalf("%d blocks used, want %d", got, want)
	}
	// The next batch changes every block: the used ones are built now.
	blockBatch(t, f, 2*deferMinBlocks, "replace", "192.0.2.3")
	for i, a := range addrs {
		pending, got, want := pendingState(f, a)
		if used := i < len(addrs)/2; used && got != want || !used && got != valSlow {
			t.Fatalf("after a batch with traffic: %s (used %v): deferred %v, value %d, want %d", netaddr.IPv4String(a), used, pending, got, want)
		}
	}
	// A small batch elsewhere builds waiting blocks that traffic came to
	// since, even though it changed none of them.
	v.NoteUsed(idle[:1])
	must(t, run(t, f, "add", "12.1.2.0/24 via 192.0.2.3"))
	if pending, got, want := pendingState(f, idle[0]); !pending || got != want {
		t.Fatalf("a waiting block traffic came to, after a batch elsewhere: deferred %v, value %d, want %d", pending, got, want)
	}
	sameAnswers(t, f, addrs)

	// Marks older than two windows are gone: the next batch defers all.
	v.NoteUsed(addrs[:len(addrs)/2])
	f.mu.Lock()
	now := time.Now()
	f.used.age(now.Add(usedWindow))
	f.used.age(now.Add(2 * usedWindow))
	f.mu.Unlock()
	if n := f.UsedBlocks(); n != 0 {
		t.Fatalf("two windows without traffic: %d blocks used", n)
	}
	blockBatch(t, f, 2*deferMinBlocks, "replace", "192.0.2.2")
	if _, got, _ := pendingState(f, addrs[0]); got != valSlow {
		t.Fatalf("marks expired: value %d, want the slow walk", got)
	}
	sameAnswers(t, f, addrs)
}
