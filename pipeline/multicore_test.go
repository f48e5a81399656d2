package pipeline

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"ferry/cache"
	"ferry/cache/neigh"
	"ferry/fib"
	"ferry/netaddr"
)

// coreRig is one core's IO over Go memory, as the data plane hands it.
type coreRig struct {
	io    IO
	p     *Pipeline
	rxN   uint32
	freeN uint32
	alloN uint32
	bufs  map[uintptr]*testBuf
}

func newCoreRig(sh *Dataplane, core int) *coreRig {
	c := &coreRig{bufs: map[uintptr]*testBuf{}}
	goIO(&c.io, &c.rxN, &c.freeN, &c.alloN, c.buf)
	c.p = sh.NewPipeline(core, &c.io)
	return c
}

func (c *coreRig) buf() *testBuf {
	b := &testBuf{}
	c.bufs[uintptr(unsafe.Pointer(b))] = b
	return b
}

// pass runs frames through the core and returns the destination MACs of
// what it sent on port 1; it fails on a buffer sent or freed twice.
func (c *coreRig) pass(frames [][]byte) (toPort1 []netaddr.MAC, err error) {
	for i, f := range frames {
		b := c.buf()
		copy(b.data[:], f)
		c.io.Rx[i] = RxPkt{Ref: unsafe.Pointer(b), Data: unsafe.Pointer(&b.data[0]), Len: uint16(len(f)), Cap: uint16(len(b.data))}
	}
	c.rxN = uint32(len(frames))
	if len(frames) > 0 {
		c.p.Process()
	} else {
		c.p.Idle()
	}
	for port := range c.io.TxN {
		for j := 0; j < int(c.io.TxN[port]); j++ {
			ref := c.io.TxRef[port][j]
			b, ok := c.bufs[ref]
			if !ok {
				return nil, fmt.Errorf("core %d sent a buffer twice", c.p.core)
			}
			delete(c.bufs, ref)
			if port == 1 {
				toPort1 = append(toPort1, netaddr.MAC(b.data[0:6]))
			}
		}
		c.io.TxN[port] = 0
	}
	for j := 0; j < int(c.freeN); j++ {
		if _, ok := c.bufs[uintptr(c.io.FreeRef[j])]; !ok {
			return nil, fmt.Errorf("core %d freed a buffer twice", c.p.core)
		}
		delete(c.bufs, uintptr(c.io.FreeRef[j]))
	}
	c.freeN = 0
	return toPort1, nil
}

// Several pipelines share one FIB, neighbour table and genid while a
// writer churns routes and the gateway of the traffic's route flips:
// under the race detector nothing shared is written unguarded, every
// packet leaves by a gateway the route had, and once the churn stops every
// core follows the final route on its next pass.
func TestPipelinesShareStateUnderChurn(t *testing.T) {
	const cores = 4
	gen := &cache.GenID{}
	f := fib.New(gen, 1)
	for _, err := range []error{
		f.SetPort(0, "port0", 1500, true), f.SetPort(1, "port1", 1500, true),
		f.AddAddress(0, ipR0, 24), f.AddAddress(1, ipR1, 24),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	gwC, macC := ip4(198, 51, 100, 3), netaddr.MAC{0x02, 0, 0, 0, 0, 0xc0}
	route := func(gw string) fib.Route {
		r, err := fib.ParseRoute([]string{"203.0.113.0/24", "via", gw, "dev", "port1"}, f)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if err := f.Add(route("198.51.100.2")); err != nil {
		t.Fatal(err)
	}
	ports := []PortInfo{{Name: "port0", MAC: macR0, MTU: 1500, Up: true}, {Name: "port1", MAC: macR1, MTU: 1500, Up: true}}
	tx := &NeighTx{}
	nm := neigh.NewManager([]neigh.PortConfig{
		{Name: "port0", MAC: macR0, Addrs: []uint32{ipR0}, Params: neigh.DefaultParams()},
		{Name: "port1", MAC: macR1, Addrs: []uint32{ipR1}, Params: neigh.DefaultParams()},
	}, cores, cache.SystemClock{}, tx, nil)
	sh := NewDataplane(f, gen, nm, tx, ports, cores)
	for _, req := range []neigh.Request{neighPermanent(1, ipB, macB), neighPermanent(1, gwC, macC), neighPermanent(0, ipA, macA)} {
		if err := nm.Apply(req); err != nil {
			t.Fatal(err)
		}
	}
	rigs := make([]*coreRig, cores)
	for i := range rigs {
		rigs[i] = newCoreRig(sh, i)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go nm.Run(ctx)

	// Traffic: the flipping route, on-link hosts (one never answers ARP)
	// and destinations the churn adds and removes.
	var frames [][]byte
	for i := 0; i < 64; i++ {
		var dst uint32
		switch i % 4 {
		case 0, 1:
			dst = ip4(203, 0, 113, byte(i))
		case 2:
			dst = ip4(10, byte(i), 0, 1)
		case 3:
			dst = ip4(198, 51, 100, byte(100+i%8))
		}
		frames = append(frames, ipPacket(macR0, macA, ipA, dst, 64, ProtoUDP, make([]byte, 32)))
	}

	var stop atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan error, cores+1)
	for _, c := range rigs {
		wg.Add(1)
		go func(c *coreRig) {
			defer wg.Done()
			for !stop.Load() {
				macs, err := c.pass(frames)
				if err == nil {
					_, err = c.pass(nil)
				}
				if err != nil {
					errs <- err
					return
				}
				for _, m := range macs {
					if m != macB && m != macC && m != netaddr.BroadcastMAC {
						errs <- fmt.Errorf("core %d sent to %v, no gateway's or host's MAC", c.p.core, m)
						return
					}
				}
			}
		}(c)
	}
	churned := make(chan struct{})
	go func() {
		defer close(churned)
		for i := 0; i < 400; i++ {
			gw := "198.51.100.2"
			if i%2 == 1 {
				gw = "198.51.100.3"
			}
			r, err := fib.ParseRoute([]string{fmt.Sprintf("10.%d.0.0/16", i%64), "via", gw, "dev", "port1"}, f)
			if err == nil {
				if i%128 < 64 {
					err = f.Add(r)
				} else {
					err = f.Del(r)
				}
			}
			if err == nil {
				err = f.Replace(route(gw))
			}
			if err != nil {
				errs <- fmt.Errorf("churn %d: %w", i, err)
				return
			}
			time.Sleep(50 * time.Microsecond)
		}
		if err := f.Replace(route("198.51.100.3")); err != nil {
			errs <- err
		}
	}()
	select {
	case <-churned:
	case <-time.After(60 * time.Second):
		t.Fatal("route churn did not end in 60s")
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// The final route, on every core's next pass.
	flow := [][]byte{ipPacket(macR0, macA, ipA, ip4(203, 0, 113, 9), 64, ProtoUDP, make([]byte, 32))}
	for _, c := range rigs {
		sent, err := c.pass(flow)
		if err != nil {
			t.Fatal(err)
		}
		// The owner's solicitations for the silent hosts (broadcasts)
		// may leave in the same pass.
		var macs []netaddr.MAC
		for _, m := range sent {
			if m != netaddr.BroadcastMAC {
				macs = append(macs, m)
			}
		}
		if len(macs) != 1 || macs[0] != macC {
			t.Fatalf("core %d sent %v after the route moved to C (%v)", c.p.core, macs, macC)
		}
	}
	var fwd uint64
	for i, ctr := range sh.CoreCounters() {
		if ctr[Forwarded] == 0 {
			t.Errorf("core %d forwarded nothing", i)
		}
		fwd += ctr[Forwarded]
	}
	t.Logf("%d packets forwarded by %d cores, genid bumped %d times", fwd, cores, gen.Bumps())
}
