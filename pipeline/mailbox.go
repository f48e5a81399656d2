package pipeline

import (
	"errors"
	"sync"
	"sync/atomic"
)

const (
	mailboxSlots = 256 // power of two
	maxFrame     = 128
)

// ErrMailboxFull is returned when a core has not drained its control frames.
var ErrMailboxFull = errors.New("pipeline: control mailbox full")

// Mailbox carries frames built by the control plane (ARP solicitations,
// gratuitous ARP) to a core, which sends them on its own transmit queues:
// ports never get a second writer. Producers serialise on a mutex; the core
// drains without locks.
type Mailbox struct {
	mu    sync.Mutex
	head  atomic.Uint32 // next slot the core reads
	tail  atomic.Uint32 // next slot a producer writes
	slots [mailboxSlots]frame
}

type frame struct {
	port int
	n    int
	b    [maxFrame]byte
}

// Post queues a frame for port; it never blocks on the core.
func (m *Mailbox) Post(port int, b []byte) error {
	if len(b) > maxFrame {
		return errors.New("pipeline: control frame too long")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	t := m.tail.Load()
	if t-m.head.Load() >= mailboxSlots {
		return ErrMailboxFull
	}
	s := &m.slots[t%mailboxSlots]
	s.port, s.n = port, copy(s.b[:], b)
	m.tail.Store(t + 1)
	return nil
}

func (p *Pipeline) mailboxPoll() {
	m := p.sh.boxes[p.core]
	h, t := m.head.Load(), m.tail.Load()
	for ; h != t; h++ {
		s := &m.slots[h%mailboxSlots]
		if s.port >= len(p.ports) {
			continue
		}
		ref, buf, ok := p.io.alloc()
		if !ok {
			p.ctr.local[DropNoBuffer]++
			continue
		}
		n := copy(buf, s.b[:s.n])
		if n < 60 {
			clear(buf[n:60]) // pad to the Ethernet minimum
			n = 60
		}
		if !p.io.send(s.port, ref, n) {
			p.drop(ref, DropTxFull)
			continue
		}
		p.ctr.local[ControlFramesSent]++
	}
	m.head.Store(h)
}
