package linuxcp

import (
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"ferry/pipeline"
)

// PortSpec is one port's kernel interface and the rings it shares with
// the pipelines.
type PortSpec struct {
	Port   int    // the port's index
	Name   string // the port's name
	Iface  string // the kernel interface's name
	MAC    net.HardwareAddr
	MTU    int
	Addrs  []Addr
	Punt   []*pipeline.FrameRing // a core each: frames for the kernel
	Wake   <-chan struct{}       // signalled when Punt has frames
	Inject *pipeline.FrameRing   // frames the kernel sends out
	// LinkUp reports the port's link (carrier); nil: always up. The
	// kernel interface's carrier follows it.
	LinkUp func() bool
}

// Path runs every port's kernel interface: a writer of punted frames and
// a reader of frames to inject, neither of which a pipeline waits for.
type Path struct {
	ns    *Namespace
	log   *zap.Logger
	ports []*portPath
	wg    sync.WaitGroup
	// byIndex maps kernel interface indexes to ports, replaced whole
	// when an interface is made (again).
	byIndex atomic.Pointer[map[int]int]
	mu      sync.Mutex // serialises byIndex's writers
}

type portPath struct {
	spec     PortSpec
	file     atomic.Pointer[os.File]
	index    atomic.Int32
	writeErr atomic.Uint64 // frames the kernel interface refused
	remade   atomic.Uint64 // times the interface was made again
}

// retryEvery is how often a kernel interface that went away is made again.
const retryEvery = time.Second

// Start makes every port's kernel interface in ns and runs their frames
// until ctx ends; Close then removes them.
func Start(ctx context.Context, ns *Namespace, specs []PortSpec, log *zap.Logger) (*Path, error) {
	p := &Path{ns: ns, log: log}
	for _, s := range specs {
		pp := &portPath{spec: s}
		if err := p.open(pp); err != nil {
			p.closeFiles()
			return nil, err
		}
		p.ports = append(p.ports, pp)
	}
	for _, pp := range p.ports {
		p.wg.Add(2)
		go p.writer(ctx, pp)
		go p.reader(ctx, pp)
	}
	p.wg.Add(1)
	go p.carrier(ctx)
	return p, nil
}

// carrierEvery is how often the ports' links are read for their kernel
// interfaces' carrier.
const carrierEvery = time.Second

// tunSetCarrier is TUNSETCARRIER, _IOW('T', 226, int).
const tunSetCarrier = 0x400454e2

// carrier keeps each kernel interface's carrier as its port's link: up
// while the port is up, so that the routing daemon sees the link go down
// (and its routes through it) when the port's does.
func (p *Path) carrier(ctx context.Context) {
	defer p.wg.Done()
	last := make(map[*portPath]int)
	tick := time.NewTicker(carrierEvery)
	defer tick.Stop()
	for {
		for _, pp := range p.ports {
			up := 1
			if pp.spec.LinkUp != nil && !pp.spec.LinkUp() {
				up = 0
			}
			f := pp.file.Load()
			if f == nil {
				delete(last, pp)
				continue
			}
			if v, ok := last[pp]; ok && v == up {
				continue
			}
			raw, err := f.SyscallConn()
			if err != nil {
				continue
			}
			var serr error
			raw.Control(func(fd uintptr) {
				v := int32(up)
				if _, _, e := unix.Syscall(unix.SYS_IOCTL, fd, tunSetCarrier, uintptr(unsafe.Pointer(&v))); e != 0 {
					serr = e
				}
			})
			if serr != nil {
				p.log.Warn("kernel interface carrier not set", zap.String("iface", pp.spec.Iface), zap.Error(serr))
			} else if _, ok := last[pp]; ok || up == 0 {
				p.log.Info("kernel interface carrier follows its port", zap.String("iface", pp.spec.Iface), zap.Bool("up", up == 1))
			}
			last[pp] = up
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (p *Path) open(pp *portPath) error {
	s := &pp.spec
	f, err := p.ns.openTap(s.Iface)
	if err != nil {
		return err
	}
	// The index is known before the addresses are set: the mirror takes
	// the kernel's address and route events for the interface by it, and
	// would drop those of a remade interface whose index it has not seen.
	pp.index.Store(int32(p.ns.Index(s.Iface)))
	p.mu.Lock()
	m := map[int]int{}
	if old := p.byIndex.Load(); old != nil {
		for i, port := range *old {
			if port != s.Port {
				m[i] = port
			}
		}
	}
	m[int(pp.index.Load())] = s.Port
	p.byIndex.Store(&m)
	p.mu.Unlock()
	if err := p.ns.configure(s.Iface, s.MAC, s.MTU, s.Addrs); err != nil {
		f.Close()
		return err
	}
	pp.file.Store(f)
	return nil
}

// PortOf is the port whose kernel interface has index ifindex.
func (p *Path) PortOf(ifindex int) (int, bool) {
	m := p.byIndex.Load()
	if m == nil || ifindex == 0 {
		return 0, false
	}
	port, ok := (*m)[ifindex]
	return port, ok
}

// Close waits for the ports' goroutines (their context must have ended)
// and removes the kernel interfaces.
func (p *Path) Close() {
	p.closeFiles()
	p.wg.Wait()
}

func (p *Path) closeFiles() {
	for _, pp := range p.ports {
		if f := pp.file.Swap(nil); f != nil {
			f.Close()
		}
	}
}

// writer hands punted frames to the kernel, a core's ring at a time, so
// each core's frames keep their order.
func (p *Path) writer(ctx context.Context, pp *portPath) {
	defer p.wg.Done()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-pp.spec.Wake:
		case <-tick.C:
		}
		f := pp.file.Load()
		for _, r := range pp.spec.Punt {
			for fr := r.Front(); fr != nil; fr = r.Front() {
				if f == nil {
					pp.writeErr.Add(1)
				} else if _, err := f.Write(fr); err != nil {
					// Down, or gone (the reader makes it again).
					pp.writeErr.Add(1)
				}
				r.Pop()
			}
		}
	}
}

// reader injects what the kernel sends out of the interface; when the
// interface goes away (deleted by hand), it is made again.
func (p *Path) reader(ctx context.Context, pp *portPath) {
	defer p.wg.Done()
	buf := make([]byte, pp.spec.MTU+64)
	for ctx.Err() == nil {
		f := pp.file.Load()
		if f == nil {
			return
		}
		n, err := f.Read(buf)
		if err == nil {
			// A full ring counts the frame dropped.
			pp.spec.Inject.Push(buf[:n])
			continue
		}
		if ctx.Err() != nil || errors.Is(err, os.ErrClosed) {
			return
		}
		p.log.Warn("kernel interface failed, making it again", zap.String("port", pp.spec.Name),
			zap.String("iface", pp.spec.Iface), zap.String("netns", p.ns.Name), zap.Error(err))
		if old := pp.file.Swap(nil); old != nil {
			old.Close()
		}
		for ctx.Err() == nil {
			select {
			case <-ctx.Done():
				return
			case <-time.After(retryEvery):
			}
			if err := p.open(pp); err != nil {
				p.log.Warn("kernel interface not made again", zap.String("iface", pp.spec.Iface), zap.Error(err))
				continue
			}
			pp.remade.Add(1)
			p.log.Info("kernel interface made again", zap.String("port", pp.spec.Name), zap.String("iface", pp.spec.Iface))
			break
		}
	}
}

// IfaceState is one port's kernel interface as ferryctl shows it.
type IfaceState struct {
	Iface      string `json:"kernel_iface"`
	Netns      string `json:"netns,omitempty"`
	Index      int    `json:"ifindex"`
	Up         bool   `json:"up"`
	WriteFails uint64 `json:"write_fails"`
	Remade     uint64 `json:"remade"`
}

// States reports every port's kernel interface, by port index.
func (p *Path) States() map[int]IfaceState {
	out := map[int]IfaceState{}
	for _, pp := range p.ports {
		out[pp.spec.Port] = IfaceState{Iface: pp.spec.Iface, Netns: p.ns.Name, Index: int(pp.index.Load()),
			Up: pp.file.Load() != nil, WriteFails: pp.writeErr.Load(), Remade: pp.remade.Load()}
	}
	return out
}
