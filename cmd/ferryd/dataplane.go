package main

import (
	"context"
	"fmt"
	"net"

	"go.uber.org/zap"

	"ferry/cache/neigh"
	"ferry/conf"
	"ferry/conf/linuxcp"
	"ferry/dpdk"
	"ferry/fib"
	"ferry/netaddr"
	"ferry/pipeline"
)

// dpdkPlane is the DPDK side of the data plane: the ports, the workers
// that run the pipelines on their lcores, and the ports' kernel interfaces.
type dpdkPlane struct {
	ports     []dpdk.Port
	setups    []dpdk.SetupInfo // what each port's set-up did; appended with ports
	cfg       *conf.Config
	workers   []*dpdk.Worker
	plane     *pipeline.Dataplane
	frameRoom int           // bytes of frame a packet buffer holds
	kernel    *linuxcp.Path // the ports' kernel interfaces; nil without a control plane
}

// Links reports every port for 'ferryctl link show'.
func (d *dpdkPlane) Links() []conf.LinkStat {
	out := make([]conf.LinkStat, len(d.ports))
	infos := d.plane.Ports()
	for i, p := range d.ports {
		ls := conf.LinkStat{Name: d.cfg.Ports[i].Name, Dev: d.cfg.Ports[i].Dev, MTU: d.cfg.Ports[i].MTU}
		if i < len(infos) {
			ls.MAC = infos[i].MAC.String()
			ls.MTU = infos[i].MTU
		}
		ls.Driver, ls.RxOffloads = d.setups[i].Driver, d.setups[i].RxOffloads()
		if speed, up, err := p.Link(); err == nil {
			ls.Speed, ls.Up = speed, up || d.tapElsewhere(i)
		}
		if st, err := p.Stats(); err == nil {
			ls.RxPackets, ls.TxPackets, ls.RxBytes, ls.TxBytes = st.RxPackets, st.TxPackets, st.RxBytes, st.TxBytes
			ls.RxMissed, ls.RxErrors, ls.TxErrors, ls.RxNoMbuf = st.RxMissed, st.RxErrors, st.TxErrors, st.RxNoMbuf
		}
		for _, w := range d.workers {
			rx, tx, full, segs := w.PortCounters(i)
			ls.TxDropped += full
			ls.Queues = append(ls.Queues, conf.QueueStat{Queue: w.Queue, Lcore: w.Lcore, RxPackets: rx, TxPackets: tx, TxDropped: full, RxDropped: segs})
		}
		if d.kernel != nil {
			if st, ok := d.kernel.States()[i]; ok {
				ls.KernelIface, ls.Netns = st.Iface, st.Netns
			}
		}
		out[i] = ls
	}
	return out
}

// tapElsewhere reports whether port i is a net_tap whose kernel side is
// not in ferryd's namespace: net_tap reads its link from that interface,
// by name, here, and so reports a tap moved into another namespace (where
// the hosts behind it are) down while it carries traffic. Such a port's
// link is taken as up.
func (d *dpdkPlane) tapElsewhere(i int) bool {
	if i >= len(d.cfg.Ports) {
		return false
	}
	ifname := dpdk.TapIface(d.cfg.Ports[i].Dev)
	if ifname == "" {
		return false
	}
	_, err := net.InterfaceByName(ifname)
	return err != nil
}

// SetMTU changes a port's MTU in the PMD. Frames stay in one buffer
// each, so an MTU whose frames the buffers cannot hold is refused.
func (d *dpdkPlane) SetMTU(port, mtu int) error {
	if port < 0 || port >= len(d.ports) {
		return fmt.Errorf("no port %d", port)
	}
	if mtu+conf.EthHeaderLen > d.frameRoom {
		return fmt.Errorf("mtu %d needs %d-byte frames and the packet buffers hold %d: set the port's mtu in the configuration and restart ferryd", mtu, mtu+conf.EthHeaderLen, d.frameRoom)
	}
	return d.ports[port].SetMTU(mtu)
}

// startKernelPath gives every port its kernel interface in the control
// plane's namespace, with the port's MAC, MTU and addresses.
func startKernelPath(ctx context.Context, cfg *conf.Config, f *fib.FIB, plane *pipeline.Dataplane, dp *dpdkPlane, log *zap.Logger) (*linuxcp.Path, *linuxcp.Namespace, error) {
	ns, err := linuxcp.OpenNamespace(cfg.ControlPlane.Netns)
	if err != nil {
		return nil, nil, err
	}
	infos := plane.Ports()
	var specs []linuxcp.PortSpec
	for i, pc := range cfg.Ports {
		s := linuxcp.PortSpec{Port: i, Name: pc.Name, Iface: pc.KernelIface, MAC: infos[i].MAC[:], MTU: infos[i].MTU,
			Punt: plane.PuntRings(i), Wake: plane.PuntWake(i), Inject: plane.InjectRing(i)}
		if i < len(dp.ports) {
			port := dp.ports[i]
			s.LinkUp = func() bool {
				_, up, err := port.Link()
				return err != nil || up || dp.tapElsewhere(i)
			}
		}
		for _, a := range f.Addresses(i) {
			s.Addrs = append(s.Addrs, linuxcp.Addr{IP: net.IPv4(byte(a.Addr>>24), byte(a.Addr>>16), byte(a.Addr>>8), byte(a.Addr)), Len: int(a.Len)})
		}
		specs = append(specs, s)
	}
	kp, err := linuxcp.Start(ctx, ns, specs, log)
	if err != nil {
		ns.Close()
		return nil, nil, err
	}
	for i, st := range kp.States() {
		log.Info("kernel interface", zap.String("port", cfg.Ports[i].Name), zap.String("iface", st.Iface),
			zap.String("netns", st.Netns), zap.Int("ifindex", st.Index))
	}
	return kp, ns, nil
}

// openPorts sets up and starts every port with a queue pair per pipeline
// and returns what the packet path and the neighbour subsystem need to
// know of them. Ports opened stay in d.ports for closePorts, also on
// error.
func (d *dpdkPlane) openPorts(file string, f *fib.FIB, pool *dpdk.Pool, log *zap.Logger) (infos []pipeline.PortInfo, nports []neigh.PortConfig, err error) {
	cfg := d.cfg
	rssKey, _ := cfg.RSSKeyBytes() // checked with the config
	for i, pc := range cfg.Ports {
		p, err := dpdk.PortByName(conf.DevName(pc.Dev))
		if err != nil {
			return nil, nil, fmt.Errorf("%s: ports[%d] (%s): %w", file, i, pc.Name, err)
		}
		tapIndex, err := tapHere(pc.Dev)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: ports[%d] (%s): %w", file, i, pc.Name, err)
		}
		setup, err := p.Setup(dpdk.PortConfig{Queues: len(cfg.Cores), RxDesc: pc.RxDesc, TxDesc: pc.TxDesc, MTU: pc.MTU, Pool: pool, RSSKey: rssKey})
		if err != nil {
			return nil, nil, fmt.Errorf("%s: ports[%d] (%s): %w", file, i, pc.Name, err)
		}
		if after, err := tapHere(pc.Dev); err != nil || after != tapIndex {
			return nil, nil, fmt.Errorf("%s: ports[%d] (%s): %w", file, i, pc.Name, errTapMoved(pc.Dev))
		}
		d.ports = append(d.ports, p)
		d.setups = append(d.setups, setup)
		logRSS(log, pc, setup.RSS, rssKey != nil)
		if setup.IPChecksum {
			log.Info("device checks IPv4 header checksums", zap.String("port", pc.Name), zap.String("driver", setup.Driver))
		}
		warnNUMA(log, pc.Name, p.Socket(), cfg.Cores)
		mac, err := p.MAC()
		if err != nil {
			return nil, nil, err
		}
		if ifname := dpdk.TapIface(pc.Dev); ifname != "" {
			peer := dpdk.PeerMAC(mac)
			if err := dpdk.SetKernelMAC(ifname, peer); err != nil {
				log.Warn("tap kernel side keeps the port's MAC", zap.String("iface", ifname), zap.Error(err))
			} else {
				log.Debug("tap kernel side has its own MAC", zap.String("iface", ifname), zap.String("mac", netaddr.MAC(peer).String()))
			}
		}
		pi := pipeline.PortInfo{Name: pc.Name, MAC: netaddr.MAC(mac), MTU: pc.MTU, NoARP: pc.NoARP, Up: true}
		pc.ApplyPortKnobs(&pi)
		var addrs []uint32
		for _, a := range f.Addresses(i) {
			addrs = append(addrs, a.Addr)
			pi.Addrs = append(pi.Addrs, netaddr.Prefix{Addr: a.Addr, Len: a.Len})
		}
		infos = append(infos, pi)
		np, err := pc.NeighParams()
		if err != nil {
			return nil, nil, fmt.Errorf("%s: ports[%d].neigh: %w", file, i, err)
		}
		nports = append(nports, neigh.PortConfig{Name: pc.Name, MAC: netaddr.MAC(mac), Addrs: addrs, NoARP: pc.NoARP, PointToPoint: pc.PointToPoint, Params: np})
	}
	return infos, nports, nil
}

// closePorts stops and closes the ports opened.
func (d *dpdkPlane) closePorts(log *zap.Logger) {
	for _, p := range d.ports {
		if err := p.Stop(); err != nil {
			log.Warn("port stop failed", zap.String("port", p.Name), zap.Error(err))
		}
	}
}

// startPipelines runs a pipeline on each configured lcore, each polling
// its queue of every port.
func (d *dpdkPlane) startPipelines(pool *dpdk.Pool) error {
	for q, lcore := range d.cfg.Cores {
		w, err := dpdk.NewWorker(lcore, q, d.ports, pool, d.cfg.RxBurst)
		if err != nil {
			return err
		}
		pl := d.plane.NewPipeline(q, &w.IO)
		if err := w.Start(pl); err != nil {
			w.Free()
			return fmt.Errorf("cores[%d]: %w", q, err)
		}
		d.workers = append(d.workers, w)
	}
	return nil
}

// stopPipelines stops every pipeline started and frees what it held.
func (d *dpdkPlane) stopPipelines(log *zap.Logger) {
	for _, w := range d.workers {
		if err := w.Stop(); err != nil {
			log.Warn("pipeline stop failed", zap.Int("lcore", w.Lcore), zap.Error(err))
		}
		w.Free()
	}
	log.Info("pipelines stopped", zap.Int("pipelines", len(d.workers)))
}

// tapHere returns the index of a net_tap port's kernel interface in
// ferryd's namespace (0 for other devices). Setting up a net_tap port's
// queues opens its interface by name: one moved to another namespace
// before then is replaced by a new one of that name here, and the moved
// one, where the hosts are, carries nothing from then on. That is refused
// rather than left to look like a dead link.
func tapHere(dev string) (int, error) {
	ifname := dpdk.TapIface(dev)
	if ifname == "" {
		return 0, nil
	}
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return 0, errTapMoved(dev)
	}
	return ifi.Index, nil
}

func errTapMoved(dev string) error {
	return fmt.Errorf("net_tap kernel interface %s left ferryd's network namespace before the port was set up, "+
		"so net_tap would use a new one of that name here and the moved one would carry nothing; move it only once "+
		"ferryd answers on its control socket (ferryctl link show) or has logged \"ferryd running\"", dpdk.TapIface(dev))
}
