package fib

import (
	"math/rand"
	"testing"
)

// TestCompactDifferential compacts the trie between rounds of random
// changes: lookups agree with the reference right after a compaction and
// after the changes that follow it (which copy the compacted arrays
// before they change them), single and batched.
func TestCompactDifferential(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	f := diffFIB(t)
	rf := newRef()
	ops, lookups := 6000, 3000
	if testing.Short() || raceEnabled {
		ops, lookups = 2000, 1000
	}
	for round := 0; round < 4; round++ {
		must(t, f.Batch(func(b *Batch) error {
			randomOps(t, rng, f, rf, b.Apply, ops, false)
			return nil
		}))
		before := f.main.root.Load().p.Load()
		f.fw.scale = 2 // as a load leaves it: the merged structure's arenas are compacted too
		compactions := f.fw.compactions
		if n := f.Compact(); n == 0 {
			t.Fatal("compaction copied no part")
		}
		if f.main.root.Load().p.Load() == before {
			t.Fatal("the root's part was not replaced")
		}
		if f.fw.compactions != compactions+1 {
			t.Fatal("the merged structure's arenas were not compacted")
		}
		verifyAll(t, f, rf, rng, lookups)
		randomOps(t, rng, f, rf, f.Apply, ops/10, true)
		verifyAll(t, f, rf, rng, lookups)
	}
}
