// ferryd is the ferry router daemon: it reads its configuration, starts the
// DPDK data plane with one pipeline per configured core, and serves the
// control socket ferryctl talks to.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"ferry/cache"
	"ferry/cache/neigh"
	"ferry/cmd/internal/cli"
	"ferry/conf"
	"ferry/conf/linuxcp"
	"ferry/dpdk"
	"ferry/fib"
	"ferry/pipeline"
)

const usage = `Usage: ferryd [--config FILE | --demo] [--check] [--log-format console|json]

ferryd forwards IPv4 between DPDK ports. Without --config it reads
/etc/ferry/ferry.yaml; --demo runs the embedded demo instead: two net_tap
ports, ftap0 (192.0.2.1/24) and ftap1 (198.51.100.1/24). Exit status 2
means the configuration was refused. SIGHUP reloads the configuration.

Options:
`

func main() {
	os.Exit(run())
}

func run() int {
	fs := flag.NewFlagSet("ferryd", flag.ContinueOnError)
	cfgPath := fs.String("config", "", "configuration file (YAML); default "+conf.DefaultConfigPath)
	demo := fs.Bool("demo", false, "run the embedded demo configuration (two net_tap ports)")
	version := fs.Bool("version", false, "print the version and exit")
	check := fs.Bool("check", false, "check the configuration and exit")
	logFormat := fs.String("log-format", "console", "log format: console or json")
	printDefault := fs.Bool("print-default-config", false, "print the embedded default configuration and exit")
	if ok, status := cli.Parse(fs, usage, os.Args[1:]); !ok {
		return status
	}
	if *version {
		fmt.Println(cli.VersionLine("ferryd"))
		return 0
	}
	if *printDefault {
		os.Stdout.Write(conf.DefaultYAML)
		return 0
	}
	var cfg *conf.Config
	var err error
	file := *cfgPath
	switch {
	case *demo && file != "":
		fmt.Fprintln(os.Stderr, "ferryd: --demo and --config exclude each other")
		return 2
	case *demo:
		file = "<embedded demo>"
		cfg, err = conf.Parse(file, conf.DefaultYAML)
	case file == "":
		if _, serr := os.Stat(conf.DefaultConfigPath); serr != nil {
			fmt.Fprintf(os.Stderr, "ferryd: no configuration: %s does not exist; give --config FILE, or --demo for the two-tap demo\n", conf.DefaultConfigPath)
			return 2
		}
		file = conf.DefaultConfigPath
		fallthrough
	default:
		cfg, err = conf.Load(file)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ferryd: bad configuration:", err)
		return 2
	}
	log, err := newLogger(cfg.LogLevel, *logFormat)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ferryd:", err)
		return 2
	}
	defer log.Sync()
	debug.SetGCPercent(cfg.GCPercent)

	gen := &cache.GenID{}
	f, err := conf.BuildFIB(cfg, file, gen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ferryd: bad configuration:", err)
		return 2
	}
	if *check {
		fmt.Fprintf(os.Stderr, "ferryd: configuration %s is valid\n", file)
		return 0
	}
	if os.Geteuid() != 0 {
		log.Warn("not running as root: DPDK devices, hugepages and taps usually need it")
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	// SIGHUP reloads (systemctl reload, log rotation hooks): it must not
	// take the router down, as Go's default would.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		// Until serve takes over: a SIGHUP during start is ignored.
		for range hup {
			if reloadHook.Load() != nil {
				(*reloadHook.Load())()
			}
		}
	}()
	if err := serve(ctx, cfg, file, f, gen, log); err != nil {
		log.Error("ferryd stopped", zap.Error(err))
		var ce *refusedError
		if errors.As(err, &ce) {
			fmt.Fprintln(os.Stderr, "ferryd: bad configuration:", err)
			return 2
		}
		return 1
	}
	log.Info("ferryd stopped cleanly")
	return 0
}

func newLogger(level, format string) (*zap.Logger, error) {
	var lvl zapcore.Level
	if err := lvl.Set(level); err != nil {
		return nil, fmt.Errorf("log level %q: %w", level, err)
	}
	zc := zap.NewProductionConfig()
	zc.Level = zap.NewAtomicLevelAt(lvl)
	zc.Sampling = nil
	zc.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	switch format {
	case "json":
	case "console":
		zc.Encoding = "console"
		zc.EncoderConfig.EncodeLevel = zapcore.CapitalLevelEncoder
	default:
		return nil, fmt.Errorf("log format %q: use console or json", format)
	}
	return zc.Build()
}

// ealArgs completes the configured EAL arguments: one --vdev or -a per
// port, a main lcore outside the pipeline cores, and the hugepage fallback.
func ealArgs(cfg *conf.Config, log *zap.Logger) ([]string, string, error) {
	args := slices.Clone(cfg.EAL)
	has := func(names ...string) bool { return hasArg(args, names...) }
	prefix := "rte"
	for i, a := range args {
		if a == "--file-prefix" && i+1 < len(args) {
			prefix = args[i+1]
		} else if strings.HasPrefix(a, "--file-prefix=") {
			prefix = strings.TrimPrefix(a, "--file-prefix=")
		}
	}
	if !has("-l", "-c", "--lcores") {
		args = append(args, lcoreArgs(cfg.Cores)...)
	}
	if !has("--no-huge") {
		// Files a killed ferryd left hold hugepages: free them before counting.
		if n, err := dpdk.RemoveStaleHugeFiles(prefix); err != nil {
			log.Warn("could not check for stale hugepage files", zap.String("prefix", prefix), zap.Error(err))
		} else if n > 0 {
			log.Info("removed stale hugepage files", zap.String("prefix", prefix), zap.Int("files", n))
		}
		useHuge := false
		switch cfg.Hugepages {
		case "off":
		default:
			mb := 512
			for i, a := range args {
				if (a == "-m" || a == "--socket-mem") && i+1 < len(args) {
					if v, err := strconv.Atoi(strings.Split(args[i+1], ",")[0]); err == nil && v > 0 {
						mb = v
					}
				}
			}
			if err := dpdk.EnsureHugepages(mb); err != nil {
				if cfg.Hugepages == "on" {
					return nil, prefix, &refusedError{fmt.Errorf("hugepages: on, but %d MB of hugepages cannot be had: %w; reserve them at boot "+
						"(kernel command line: default_hugepagesz=1G hugepagesz=1G hugepages=N, or hugepages=N for 2 MiB pages), or now with "+
						"'echo %d > /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages' and hugetlbfs mounted on /dev/hugepages; "+
						"or set hugepages: auto to fall back to --no-huge", mb, err, (mb+1)/2)}
				}
				log.Warn("hugepages unavailable, falling back to --no-huge", zap.Error(err))
			} else {
				useHuge = true
			}
		}
		if !useHuge {
			args = append(args, "--no-huge")
			if !has("-m", "--socket-mem") {
				args = append(args, "-m", "1024")
			}
		} else if !has("--huge-unlink") {
			// Unlinked hugepage files vanish with the process, even a killed one.
			args = append(args, "--huge-unlink")
		}
	}
	for _, p := range cfg.Ports {
		if conf.IsVdev(p.Dev) {
			args = append(args, "--vdev", p.Dev)
		} else {
			args = append(args, "-a", p.Dev)
		}
	}
	return args, prefix, nil
}

// refusedError is a configuration refused once ferryd looked at the
// machine (cores the EAL has no lcore for, hugepages required but
// missing): exit status 2, as for a bad file.
type refusedError struct{ error }

func (e *refusedError) Unwrap() error { return e.error }

// reloadHook is what SIGHUP runs once serve is ready for it.
var reloadHook atomic.Pointer[func()]

// reloader re-reads the configuration file and applies it in place.
type reloader struct {
	mu     sync.Mutex
	file   string
	cur    *conf.Config
	router *conf.Router
	log    *zap.Logger
}

func (rl *reloader) reload() (string, error) {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	sdNotify(fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d", monotonicUsec()))
	defer sdNotify("READY=1")
	next, err := conf.Load(rl.file)
	if err != nil {
		return "", err
	}
	out, err := rl.router.Reload(rl.cur, next, rl.file)
	if err != nil {
		return out, err
	}
	rl.cur = next
	return out, nil
}

// save renders the running state as a configuration file.
func (rl *reloader) save() ([]byte, error) {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	return rl.router.Save(rl.cur)
}

// hasArg reports whether args hold one of the options names.
func hasArg(args []string, names ...string) bool {
	for _, a := range args {
		for _, n := range names {
			if a == n || strings.HasPrefix(a, n+"=") {
				return true
			}
		}
	}
	return false
}

type dataplane struct {
	ports     []dpdk.Port
	cfg       *conf.Config
	workers   []*dpdk.Worker
	shared    *pipeline.Shared
	frameRoom int           // bytes of frame a packet buffer holds
	kernel    *linuxcp.Path // the ports' kernel interfaces; nil without a control plane
}

// Links reports every port for 'ferryctl link show'.
func (d *dataplane) Links() []conf.LinkStat {
	out := make([]conf.LinkStat, len(d.ports))
	infos := d.shared.Ports()
	for i, p := range d.ports {
		ls := conf.LinkStat{Name: d.cfg.Ports[i].Name, Dev: d.cfg.Ports[i].Dev, MTU: d.cfg.Ports[i].MTU}
		if i < len(infos) {
			ls.MAC = infos[i].MAC.String()
			ls.MTU = infos[i].MTU
		}
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

// realClock is the neighbour subsystem's clock in production.
type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func serve(ctx context.Context, cfg *conf.Config, file string, f *fib.FIB, gen *cache.GenID, log *zap.Logger) error {
	if !hasArg(cfg.EAL, "-l", "-c", "--lcores") {
		if err := checkCores(cfg.Cores); err != nil {
			return &refusedError{fmt.Errorf("%s: %w", file, err)}
		}
	}
	args, prefix, err := ealArgs(cfg, log)
	if err != nil {
		return err
	}
	log.Info("starting EAL", zap.Strings("args", args))
	if err := dpdk.Init(args); err != nil {
		return err
	}
	defer func() {
		dpdk.Cleanup()
		// The EAL leaves its runtime directory behind; nothing reads it
		// once the primary is gone.
		_ = os.RemoveAll(filepath.Join("/var/run/dpdk", prefix))
	}()
	pipeCPUs, err := pipelineCPUs(cfg.Cores, log)
	if err != nil {
		return &refusedError{fmt.Errorf("%s: %w", file, err)}
	}

	pool, err := dpdk.NewPool("ferry_mbufs", cfg.Mbufs, conf.MbufCache, cfg.FrameRoom()+dpdk.Headroom)
	if err != nil {
		return err
	}
	dp := &dataplane{cfg: cfg, frameRoom: cfg.FrameRoom()}
	var infos []pipeline.PortInfo
	var nports []neigh.PortConfig
	defer func() {
		for _, p := range dp.ports {
			if err := p.Stop(); err != nil {
				log.Warn("port stop failed", zap.String("port", p.Name), zap.Error(err))
			}
		}
	}()
	rssKey, _ := cfg.RSSKeyBytes() // checked with the config
	for i, pc := range cfg.Ports {
		p, err := dpdk.PortByName(conf.DevName(pc.Dev))
		if err != nil {
			return fmt.Errorf("%s: ports[%d] (%s): %w", file, i, pc.Name, err)
		}
		rss, err := p.Setup(dpdk.PortConfig{Queues: len(cfg.Cores), RxDesc: pc.RxDesc, TxDesc: pc.TxDesc, MTU: pc.MTU, Pool: pool, RSSKey: rssKey})
		if err != nil {
			return fmt.Errorf("%s: ports[%d] (%s): %w", file, i, pc.Name, err)
		}
		dp.ports = append(dp.ports, p)
		logRSS(log, pc, rss, rssKey != nil)
		warnNUMA(log, pc.Name, p.Socket(), cfg.Cores)
		mac, err := p.MAC()
		if err != nil {
			return err
		}
		if ifname := dpdk.TapIface(pc.Dev); ifname != "" {
			peer := dpdk.PeerMAC(mac)
			if err := dpdk.SetKernelMAC(ifname, peer); err != nil {
				log.Warn("tap kernel side keeps the port's MAC", zap.String("iface", ifname), zap.Error(err))
			} else {
				log.Debug("tap kernel side has its own MAC", zap.String("iface", ifname), zap.String("mac", pipeline.MAC(peer).String()))
			}
		}
		pi := pipeline.PortInfo{Name: pc.Name, MAC: pipeline.MAC(mac), MTU: pc.MTU, NoARP: pc.NoARP, Up: true}
		pc.ApplyPortKnobs(&pi)
		var addrs []uint32
		for _, a := range f.Addresses(i) {
			addrs = append(addrs, a.Addr)
			pi.Addrs = append(pi.Addrs, pipeline.Prefix{Addr: a.Addr, Len: a.Len})
		}
		infos = append(infos, pi)
		np, err := pc.NeighParams()
		if err != nil {
			return fmt.Errorf("%s: ports[%d].neigh: %w", file, i, err)
		}
		nports = append(nports, neigh.PortConfig{Name: pc.Name, MAC: neigh.MAC(mac), Addrs: addrs, NoARP: pc.NoARP, PointToPoint: pc.PointToPoint, Params: np})
	}

	sh := pipeline.NewShared(f, gen, nil, infos, len(cfg.Cores))
	sh.SetKnobs(cfg.Knobs())
	if cp := cfg.ControlPlane; cp != nil {
		on := make([]bool, len(cfg.Ports))
		for i := range on {
			on[i] = true
		}
		if err := sh.EnablePunt(pipeline.PuntConfig{Ports: on, Queue: cp.PuntQueue, Rate: cp.PuntRate, FrameLen: cfg.FrameRoom()}); err != nil {
			return err
		}
	}
	nm := neigh.NewManager(nports, len(cfg.Cores), realClock{}, sh, func(msg string, kv ...any) {
		log.Sugar().Debugw(msg, kv...)
	})
	sh.Neigh = nm
	for i, n := range cfg.Neighbors {
		// Entries are written as after 'ip neigh replace'.
		req, err := neigh.ParseNeigh(append([]string{"replace"}, strings.Fields(n)...), f.PortIndex)
		if err == nil {
			err = nm.Apply(req)
		}
		if err != nil {
			return fmt.Errorf("%s: neighbors[%d] %q: %w", file, i, n, err)
		}
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	nmDone := make(chan struct{})
	go func() {
		nm.Run(runCtx)
		close(nmDone)
	}()
	defer func() {
		cancel()
		<-nmDone
	}()

	if cpus, err := keepOffCores(pipeCPUs); err != nil {
		log.Warn("other threads may share the pipeline cores", zap.Error(err))
	} else if cpus == nil {
		log.Warn("no CPU but the pipelines': other threads share them", zap.Ints("cpus", pipeCPUs))
	} else {
		log.Info("threads other than the pipelines kept off their CPUs", zap.Ints("pipeline_cpus", pipeCPUs), zap.Ints("other_cpus", cpus))
	}
	if b := dpdk.RxBurst(cfg.RxBurst, len(dp.ports)); b != cfg.RxBurst {
		log.Info("receive burst shared out over the ports", zap.Int("rx_burst", cfg.RxBurst), zap.Int("per_port", b), zap.Int("ports", len(dp.ports)))
	}
	dp.shared = sh
	// Stopped before the ports close (deferred calls run last first), on
	// every path: a pipeline left polling a closed port crashes.
	defer func() {
		for _, w := range dp.workers {
			if err := w.Stop(); err != nil {
				log.Warn("pipeline stop failed", zap.Int("lcore", w.Lcore), zap.Error(err))
			}
			w.Free()
		}
		log.Info("pipelines stopped", zap.Int("pipelines", len(dp.workers)))
	}()
	for q, lcore := range cfg.Cores {
		w, err := dpdk.NewWorker(lcore, q, dp.ports, pool, cfg.RxBurst)
		if err != nil {
			return err
		}
		pl := sh.NewPipeline(q, &w.IO)
		if err := w.Start(pl); err != nil {
			w.Free()
			return fmt.Errorf("cores[%d]: %w", q, err)
		}
		dp.workers = append(dp.workers, w)
	}

	router := &conf.Router{FIB: f, Gen: gen, Neigh: nm, Shared: sh, Links: dp, MTU: dp, Log: log}
	rl := &reloader{file: file, cur: cfg, router: router, log: log}
	if !strings.HasPrefix(file, "<") {
		router.ReloadConfig = rl.reload
	}
	router.SaveConfig = rl.save
	onHUP := func() {
		if router.ReloadConfig == nil {
			log.Warn("SIGHUP: nothing to reload (ferryd runs the embedded demo)")
			return
		}
		if out, err := router.ReloadConfig(); err != nil {
			log.Error("reload failed, the running configuration is kept", zap.Error(err))
		} else {
			log.Info("configuration reloaded", zap.String("file", file), zap.String("applied", out))
		}
	}
	reloadHook.Store(&onHUP)
	defer reloadHook.Store(nil)
	if cfg.ControlPlane != nil {
		kp, ns, err := startKernelPath(runCtx, cfg, f, sh, dp, log)
		if err != nil {
			return fmt.Errorf("%s: control_plane: %w", file, err)
		}
		dp.kernel = kp
		mc := linuxcp.NewController(runCtx, linuxcp.NewMirror(ns, f, kp, router, log), cfg.ControlPlane.MirrorOn())
		router.CP = mc
		defer func() {
			cancel()
			mc.Stop()
			kp.Close()
			ns.Close()
			log.Info("kernel interfaces removed")
		}()
	}

	if cfg.Metrics != "" {
		if err := conf.ServeMetrics(runCtx, cfg.Metrics, router, log); err != nil {
			return fmt.Errorf("%s: metrics: %w", file, err)
		}
	}

	go expireExceptions(runCtx)
	policy, err := conf.NewAccessPolicy(cfg.APIGroup, cfg.APIReadonlyGroup)
	if err != nil {
		return &refusedError{fmt.Errorf("%s: api_group: %w", file, err)}
	}
	srv := &conf.Server{Path: cfg.API, Log: log, Handler: router, Access: policy}
	if err := srv.Listen(); err != nil {
		return err
	}
	srvDone := make(chan struct{})
	go func() {
		srv.Serve(runCtx)
		close(srvDone)
	}()
	defer func() {
		cancel()
		<-srvDone
	}()

	garps := 3
	if cfg.GratuitousARP != nil {
		garps = *cfg.GratuitousARP
	}
	go announce(runCtx, cfg, f, sh, garps, log)
	logSummary(log, cfg, f, infos)
	if err := sdNotify("READY=1\nSTATUS=forwarding"); err != nil {
		log.Warn("could not tell systemd ferryd is ready", zap.Error(err))
	}
	<-ctx.Done()
	sdNotify("STOPPING=1")
	log.Info("shutting down", zap.String("reason", "signal"))
	return nil
}

// announce sends gratuitous ARP for every address, count times a second
// apart, so neighbours learn (or relearn) the router's MACs; hosts that
// attach to a port just after start still hear one.
func announce(ctx context.Context, cfg *conf.Config, f *fib.FIB, sh *pipeline.Shared, count int, log *zap.Logger) {
	for n := 0; n < count; n++ {
		if n > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
		for i := range cfg.Ports {
			if cfg.Ports[i].NoARP {
				continue
			}
			for _, a := range f.Addresses(i) {
				if err := sh.Announce(i, a.Addr); err != nil {
					log.Warn("gratuitous ARP not sent", zap.String("port", cfg.Ports[i].Name), zap.Error(err))
				}
			}
		}
	}
}

// expireExceptions reclaims expired nexthop exceptions, as the kernel's
// fnhe expiry does lazily; lookups already ignore them.
func expireExceptions(ctx context.Context) {
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			cache.ExpireExceptions(cache.Now())
		}
	}
}

// tapElsewhere reports whether port i is a net_tap whose kernel side is
// not in ferryd's namespace: net_tap reads its link from that interface,
// by name, here, and so reports a tap moved into another namespace (where
// the hosts behind it are) down while it carries traffic. Such a port's
// link is taken as up.
func (d *dataplane) tapElsewhere(i int) bool {
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
func (d *dataplane) SetMTU(port, mtu int) error {
	if port < 0 || port >= len(d.ports) {
		return fmt.Errorf("no port %d", port)
	}
	if mtu+conf.EthHeaderLen > d.frameRoom {
		return fmt.Errorf("mtu %d needs %d-byte frames and the packet buffers hold %d: set the port's mtu in the configuration and restart ferryd", mtu, mtu+conf.EthHeaderLen, d.frameRoom)
	}
	return d.ports[port].SetMTU(mtu)
}

func logSummary(log *zap.Logger, cfg *conf.Config, f *fib.FIB, infos []pipeline.PortInfo) {
	for i, p := range cfg.Ports {
		var addrs []string
		for _, a := range f.Addresses(i) {
			addrs = append(addrs, a.String())
		}
		log.Info("port ready", zap.String("port", p.Name), zap.String("dev", p.Dev),
			zap.String("mac", infos[i].MAC.String()), zap.Int("mtu", p.MTU), zap.Strings("addresses", addrs))
	}
	// A full table is counted, not listed.
	var routes []string
	total := 0
	for _, t := range f.Tables() {
		if t == fib.TableLocal {
			continue
		}
		total += f.Count(t)
		if total <= 20 {
			for _, r := range f.Routes(t) {
				routes = append(routes, fib.FormatRoute(r, f))
			}
		}
	}
	log.Info("ferryd running", zap.Ints("cores", cfg.Cores), zap.String("api", cfg.API), zap.Int("routes", total), zap.Strings("route_list", routes))
}

// pipelineCPUs checks every pipeline lcore against the running EAL and
// returns the CPUs they run on, several lcores to a CPU as --lcores maps
// them.
func pipelineCPUs(cores []int, log *zap.Logger) ([]int, error) {
	var cpus []int
	for i, c := range cores {
		l, err := dpdk.PipelineLcore(c)
		if err != nil {
			return nil, fmt.Errorf("cores[%d]: %w", i, err)
		}
		log.Info("pipeline lcore", zap.Int("queue", i), zap.Int("lcore", c), zap.Ints("cpus", l.CPUs), zap.Int("socket", l.Socket))
		for _, cpu := range l.CPUs {
			if !slices.Contains(cpus, cpu) {
				cpus = append(cpus, cpu)
			}
		}
	}
	slices.Sort(cpus)
	return cpus, nil
}

// logRSS says how a port's flows reach its pipelines: spread by the
// device's RSS, or (with a warning) by whatever the device does instead.
func logRSS(log *zap.Logger, pc conf.Port, r dpdk.RSS, ownKey bool) {
	if r.Queues < 2 {
		return
	}
	fields := []zap.Field{zap.String("port", pc.Name), zap.String("driver", r.Driver), zap.Int("queues", r.Queues)}
	if r.Spreads() {
		key := "symmetric"
		if ownKey {
			key = "configured"
		}
		if !r.KeySet {
			key = "the PMD's (rss_key has another length than the device's)"
		}
		log.Info("RSS spreads flows over the pipelines", append(fields, zap.String("hash", rssHashNames(r.Hash)), zap.Int("reta", r.RETA), zap.String("key", key))...)
		return
	}
	if r.RETAErr != nil {
		fields = append(fields, zap.NamedError("reta", r.RETAErr))
	}
	instead := "each queue gets what the device puts in it: flows may all land on one pipeline"
	switch {
	case strings.HasPrefix(r.Driver, "net_tap"):
		instead = "the kernel's tap queue selection spreads flows over the queues instead (by flow hash, both directions of a flow on one queue)"
	case strings.HasPrefix(r.Driver, "net_memif"):
		instead = "the memif peer picks each packet's queue instead"
	}
	log.Warn("port cannot hash flows onto its queues (no RSS)", append(fields, zap.String("instead", instead))...)
}

// rssHashNames names the hash functions in use.
func rssHashNames(hf uint64) string {
	var names []string
	for _, h := range []struct {
		bits uint64
		name string
	}{{dpdk.RSSIPv4 | dpdk.RSSIPv4Other, "ipv4"}, {dpdk.RSSIPv4TCP, "ipv4-tcp"}, {dpdk.RSSIPv4UDP, "ipv4-udp"}} {
		if hf&h.bits != 0 {
			names = append(names, h.name)
		}
	}
	if len(names) == 0 {
		return fmt.Sprintf("%#x", hf)
	}
	return strings.Join(names, ",")
}

// startKernelPath gives every port its kernel interface in the control
// plane's namespace, with the port's MAC, MTU and addresses.
func startKernelPath(ctx context.Context, cfg *conf.Config, f *fib.FIB, sh *pipeline.Shared, dp *dataplane, log *zap.Logger) (*linuxcp.Path, *linuxcp.Namespace, error) {
	ns, err := linuxcp.OpenNamespace(cfg.ControlPlane.Netns)
	if err != nil {
		return nil, nil, err
	}
	infos := sh.Ports()
	var specs []linuxcp.PortSpec
	for i, pc := range cfg.Ports {
		s := linuxcp.PortSpec{Port: i, Name: pc.Name, Iface: pc.KernelIface, MAC: infos[i].MAC[:], MTU: infos[i].MTU,
			Punt: sh.PuntRings(i), Wake: sh.PuntWake(i), Inject: sh.InjectRing(i)}
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

// warnNUMA says when a port's device is on another NUMA node than a
// pipeline that polls it: its descriptors and packets then cross the
// interconnect on every packet.
func warnNUMA(log *zap.Logger, port string, socket int, cores []int) {
	if socket < 0 {
		return
	}
	for _, c := range cores {
		if l, err := dpdk.LcoreInfo(c); err == nil && l.Socket != socket {
			log.Warn("port and pipeline on different NUMA nodes", zap.String("port", port), zap.Int("port_node", socket),
				zap.Int("lcore", c), zap.Int("lcore_node", l.Socket))
		}
	}
}
