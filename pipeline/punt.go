package pipeline

import (
	"errors"
	"fmt"
	"math/bits"
	"unsafe"

	"ferry/cache"
)

// PuntConfig turns on the kernel path of the control plane: what arrives
// for the router that the data plane does not answer itself goes to a
// kernel interface of its port (punt), and what the kernel sends out of
// that interface leaves on the port (inject), as VPP's linux-cp does.
type PuntConfig struct {
	Ports    []bool // the ports that have a kernel interface
	Queue    int    // frames that may wait per port, shared out over the cores
	Rate     int    // frames per second per port, shared out over the cores
	FrameLen int    // the largest frame, Ethernet header included
}

const (
	injectSlots   = 1024 // frames from a port's kernel interface that may wait
	injectPerPass = 64   // frames a core sends from the kernel per pass
)

// puntState is the kernel path's rings; fixed once the cores run.
type puntState struct {
	on     [MaxPorts]bool
	rings  [][]*FrameRing // [core][port]: to the kernel
	inject []*FrameRing   // [port]: from the kernel, sent by core port%cores
	wake   []chan struct{}
	rate   float64 // tokens per nanosecond per core
	burst  float64
}

// EnablePunt sets up the kernel path; it must come before NewPipeline.
func (s *Dataplane) EnablePunt(c PuntConfig) error {
	if len(s.cores) > 0 {
		return errors.New("punt: enabled after the pipelines were made")
	}
	if len(c.Ports) > MaxPorts {
		return fmt.Errorf("punt: %d ports, at most %d", len(c.Ports), MaxPorts)
	}
	if c.Queue < 1 || c.Rate < 1 || c.FrameLen < EthHdrLen+IPv4MinHdr {
		return fmt.Errorf("punt: queue %d, rate %d, frames of %d bytes", c.Queue, c.Rate, c.FrameLen)
	}
	ncores := len(s.boxes)
	ps := &puntState{rings: make([][]*FrameRing, ncores), inject: make([]*FrameRing, len(c.Ports)), wake: make([]chan struct{}, len(c.Ports))}
	perCore := (c.Queue + ncores - 1) / ncores
	ps.rate = float64(c.Rate) / float64(ncores) / 1e9
	ps.burst = float64(max(1, perCore))
	for core := range ps.rings {
		ps.rings[core] = make([]*FrameRing, len(c.Ports))
	}
	for port, on := range c.Ports {
		ps.wake[port] = make(chan struct{}, 1)
		if !on {
			continue
		}
		ps.on[port] = true
		for core := range ps.rings {
			ps.rings[core][port] = NewFrameRing(perCore, c.FrameLen)
		}
		ps.inject[port] = NewFrameRing(injectSlots, c.FrameLen)
	}
	s.punt = ps
	return nil
}

// PuntRings are the rings port's frames leave the cores by, a core each
// (nil when the port has no kernel path); PuntWake signals that some
// have frames. Both are for the kernel interface's writer.
func (s *Dataplane) PuntRings(port int) []*FrameRing {
	if s.punt == nil || port < 0 || port >= MaxPorts || !s.punt.on[port] {
		return nil
	}
	out := make([]*FrameRing, len(s.punt.rings))
	for core := range out {
		out[core] = s.punt.rings[core][port]
	}
	return out
}

// PuntWake is signalled, at most once a pass, when frames were punted
// for port.
func (s *Dataplane) PuntWake(port int) <-chan struct{} {
	if s.punt == nil || port < 0 || port >= len(s.punt.wake) {
		return nil
	}
	return s.punt.wake[port]
}

// InjectRing takes frames the kernel sent out of port's interface; a
// core sends them on the port.
func (s *Dataplane) InjectRing(port int) *FrameRing {
	if s.punt == nil || port < 0 || port >= len(s.punt.inject) {
		return nil
	}
	return s.punt.inject[port]
}

// KernelPathStats is one port's kernel path.
type KernelPathStats struct {
	Punted   RingStats `json:"punted"`
	Injected RingStats `json:"injected"`
}

// KernelPathStats sums every core's punt ring of each port.
func (s *Dataplane) KernelPathStats() []KernelPathStats {
	if s.punt == nil {
		return nil
	}
	out := make([]KernelPathStats, len(s.punt.inject))
	for port := range out {
		if !s.punt.on[port] {
			continue
		}
		for core := range s.punt.rings {
			out[port].Punted.add(s.punt.rings[core][port].Stats())
		}
		out[port].Injected = s.punt.inject[port].Stats()
	}
	return out
}

// puntBucket limits what a core punts for one port.
type puntBucket struct {
	tokens  float64
	last    int64
	started bool
}

// punts reports whether port's frames go to the kernel.
func (p *Pipeline) punts(port int) bool {
	return p.punt != nil && port < MaxPorts && p.punt.on[port]
}

// puntFrame hands frame fr, which arrived on port, to the port's kernel
// interface: a copy, so the caller frees the buffer either way.
func (p *Pipeline) puntFrame(port int, fr []byte) {
	ps := p.punt
	r := ps.rings[p.core][port]
	b := &p.puntTok[port]
	if !b.started {
		b.tokens, b.last, b.started = ps.burst, p.now, true // a bucket starts full
	}
	b.tokens = min(ps.burst, b.tokens+float64(max(p.now-b.last, 0))*ps.rate)
	b.last = p.now
	if b.tokens < 1 {
		r.limited.Add(1)
		p.ctr.local[DropPuntLimit]++
		return
	}
	b.tokens--
	if !r.Push(fr) {
		p.ctr.local[DropPuntQueueFull]++
		return
	}
	p.ctr.local[Punted]++
	p.puntWake |= 1 << port
}

// puntLocal punts a packet for the router, and frees its buffer, when its
// port has a kernel path; false leaves it to the data plane's own
// handling.
func (p *Pipeline) puntLocal(ref unsafe.Pointer, buf []byte, l, port int) bool {
	if !p.punts(port) {
		return false
	}
	p.puntFrame(port, buf[:l])
	p.io.free(ref)
	return true
}

// puntSignal wakes the writers of the ports punted to in this pass.
func (p *Pipeline) puntSignal() {
	for w := p.puntWake; w != 0; w &= w - 1 {
		port := bits.TrailingZeros32(w)
		select {
		case p.punt.wake[port] <- struct{}{}:
		default:
		}
	}
	p.puntWake = 0
}

// injectPoll sends what the kernel sent out of the interfaces of the
// ports this core serves, a bounded number a pass.
func (p *Pipeline) injectPoll() {
	ps := p.punt
	ncores := len(ps.rings)
	budget := injectPerPass
	for port := p.core; port < len(ps.inject); port += ncores {
		r := ps.inject[port]
		if r == nil || port >= len(p.ports) {
			continue
		}
		for ; budget > 0; budget-- {
			fr := r.Front()
			if fr == nil {
				break
			}
			ref, buf, ok := p.io.alloc()
			if !ok {
				p.ctr.local[DropNoBuffer]++
				return
			}
			n := copy(buf, fr)
			r.Pop()
			if n < 60 {
				clear(buf[n:60])
				n = 60
			}
			if !p.io.send(port, ref, n) {
				p.drop(ref, DropTxFull)
				continue
			}
			p.ctr.local[Injected]++
		}
	}
}

// decLinkMcast is the decision for link-local multicast (224.0.0.0/24,
// routing protocols' hellos) where the kernel path is on: delivered to
// the kernel as broadcasts are.
var decLinkMcast = &cache.Decision{Kind: cache.Broadcast, Port: -1}

// linkLocalMcast reports whether dst is in 224.0.0.0/24.
func linkLocalMcast(dst uint32) bool { return dst>>8 == 0xe00000 }
