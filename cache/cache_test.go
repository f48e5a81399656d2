package cache

import (
	"math/rand"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

// After Bump returns, no decision stamped with an older generation is valid,
// on any goroutine, while others keep bumping and caching concurrently.
func TestGenIDInvalidationConcurrent(t *testing.T) {
	var g GenID
	nh := NewNhCache(4)
	var floor atomic.Uint32 // generation every bump so far has reached
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for c := 0; c < 4; c++ {
		wg.Add(1)
		go func(core int) {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				// A decision is stamped with the generation read before
				// it is made, as the pipeline does.
				stamp := g.Current()
				f := floor.Load()
				if d := nh.Output(&g, core); d == nil {
					nh.SetOutput(core, &Decision{Genid: stamp})
				} else if d.Genid < f {
					t.Errorf("core %d used a decision of generation %d after bump to %d returned", core, d.Genid, f)
				}
				if d := nh.Input(&g); d == nil {
					nh.SetInput(&Decision{Genid: stamp})
				} else if d.Genid < f {
					t.Errorf("input decision of generation %d used after bump to %d returned", d.Genid, f)
				}
			}
		}(c)
	}
	for i := 0; i < 2000; i++ {
		before := g.Current()
		g.Bump()
		floor.Store(g.Current())
		// Anything made before the bump is now invalid.
		if g.Valid(&Decision{Genid: before}) {
			t.Fatal("decision from before the bump still valid")
		}
		if d := nh.Input(&g); d != nil && d.Genid == before {
			t.Fatal("Input returned a pre-bump decision")
		}
		if i%100 == 0 {
			runtime.Gosched()
		}
	}
	close(stop)
	wg.Wait()
	if g.Bumps() != 2000 {
		t.Fatalf("bumps %d", g.Bumps())
	}
}

func TestNhCacheWarmPathAllocs(t *testing.T) {
	var g GenID
	nh := NewNhCache(2)
	nh.SetInput(&Decision{Genid: g.Current()})
	nh.SetOutput(1, &Decision{Genid: g.Current()})
	if a := testing.AllocsPerRun(1000, func() {
		if nh.Input(&g) == nil || nh.Output(&g, 1) == nil {
			panic("miss")
		}
	}); a != 0 {
		t.Fatalf("%v allocs", a)
	}
}

func TestExceptionLifecycle(t *testing.T) {
	nh := NewNhCache(2)
	tb := nh.ExceptionsForUpdate()
	now := int64(1e9)
	tb.Update(0x0a000001, 0xc0000209, 0, false, now+300e9, now)
	e := tb.Find(0x0a000001, now)
	if e == nil || e.Gateway != 0xc0000209 || e.PMTU != 0 {
		t.Fatalf("redirect exception: %+v", e)
	}
	// A PMTU update keeps the gateway and sets its own expiry.
	tb.Update(0x0a000001, 0, 1400, false, now+600e9, now+1)
	e = tb.Find(0x0a000001, now+2)
	if e.Gateway != 0xc0000209 || e.PMTU != 1400 || e.Expires != now+600e9 {
		t.Fatalf("after PMTU: %+v", e)
	}
	if tb.Find(0x0a000002, now) != nil {
		t.Fatal("found an exception for another destination")
	}
	// Expiry.
	if tb.Find(0x0a000001, now+601e9) != nil {
		t.Fatal("expired exception still found")
	}
	if n := tb.Expire(now + 601e9); n != 1 || tb.Len() != 0 {
		t.Fatalf("expire removed %d, len %d", n, tb.Len())
	}
	// Cached decisions die with an update.
	e = tb.Update(0x0a000003, 0, 1300, false, 0, now)
	e.SetInput(&Decision{})
	if e.Input(&GenID{}) == nil {
		t.Fatal("input decision not cached")
	}
	e2 := tb.Update(0x0a000003, 0, 1200, false, 0, now)
	if e2.Input(&GenID{}) != nil {
		t.Fatal("new exception kept the old decision")
	}
}

func TestExceptionReclaimOldestInFullChain(t *testing.T) {
	tb := NewNhCache(1).ExceptionsForUpdate()
	// Find ExcDepth+1 addresses in one bucket.
	var same []uint32
	want := excHash(1)
	for a := uint32(1); len(same) < ExcDepth+1; a++ {
		if excHash(a) == want {
			same = append(same, a)
		}
	}
	for i, a := range same {
		tb.Update(a, 7, 0, false, 0, int64(i+1))
	}
	if tb.Find(same[0], 100) != nil {
		t.Fatal("oldest exception not reclaimed")
	}
	for _, a := range same[1:] {
		if tb.Find(a, 100) == nil {
			t.Fatal("a newer exception was reclaimed")
		}
	}
}

// A flood of exceptions for random destinations stays within the bound.
func TestExceptionFloodBounded(t *testing.T) {
	tb := NewNhCache(2).ExceptionsForUpdate()
	r := rand.New(rand.NewSource(1))
	for i := 0; i < 100000; i++ {
		tb.Update(r.Uint32(), 0, 1400, false, 600e9, int64(i))
	}
	if tb.Len() > ExcBuckets*ExcDepth {
		t.Fatalf("%d exceptions, bound %d", tb.Len(), ExcBuckets*ExcDepth)
	}
	n := 0
	tb.Each(0, func(*Exception) { n++ })
	if n != tb.Len() {
		t.Fatalf("Each saw %d, Len %d", n, tb.Len())
	}
}

// Bumps during a hold become one at its release; without one pending,
// the release bumps nothing.
func TestGenIDHold(t *testing.T) {
	var g GenID
	release := g.Hold()
	g.Bump()
	g.Bump()
	g.Bump()
	if g.Bumps() != 0 {
		t.Fatalf("%d bumps during the hold", g.Bumps())
	}
	release()
	if g.Bumps() != 1 || g.Current() != 1 {
		t.Fatalf("after the release: %d bumps, genid %d", g.Bumps(), g.Current())
	}
	g.Hold()()
	if g.Bumps() != 1 {
		t.Fatal("an empty hold bumped")
	}
	g.Bump()
	if g.Bumps() != 2 {
		t.Fatal("a bump outside a hold waited")
	}
}
