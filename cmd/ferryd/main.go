// ferryd is the ferry router daemon: it reads its configuration, starts the
// DPDK data plane with one pipeline per configured core, and serves the
// control socket ferryctl talks to.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
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

// refusedError is a configuration refused once ferryd looked at the
// machine (cores the EAL has no lcore for, hugepages required but
// missing): exit status 2, as for a bad file.
type refusedError struct{ error }

func (e *refusedError) Unwrap() error { return e.error }

func serve(ctx context.Context, cfg *conf.Config, file string, f *fib.FIB, gen *cache.GenID, log *zap.Logger) error {
	cleanup, pipeCPUs, err := startEAL(cfg, file, log)
	if err != nil {
		return err
	}
	defer cleanup()

	pool, err := dpdk.NewPool("ferry_mbufs", cfg.Mbufs, conf.MbufCache, cfg.FrameRoom()+dpdk.Headroom)
	if err != nil {
		return err
	}
	dp := &dpdkPlane{cfg: cfg, frameRoom: cfg.FrameRoom()}
	defer dp.closePorts(log)
	infos, nports, err := dp.openPorts(file, f, pool, log)
	if err != nil {
		return err
	}
	plane, nm, err := newDataplane(cfg, file, f, gen, infos, nports, log)
	if err != nil {
		return err
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopNeigh := inBackground(runCtx, cancel, nm.Run)
	defer stopNeigh()

	keepThreadsOff(len(cfg.Cores), pipeCPUs, log)
	if b := dpdk.RxBurst(cfg.RxBurst, len(dp.ports)); b != cfg.RxBurst {
		log.Info("receive burst shared out over the ports", zap.Int("rx_burst", cfg.RxBurst), zap.Int("per_port", b), zap.Int("ports", len(dp.ports)))
	}
	dp.plane = plane
	// Stopped before the ports close (deferred calls run last first), on
	// every path: a pipeline left polling a closed port crashes.
	defer dp.stopPipelines(log)
	if err := dp.startPipelines(pool); err != nil {
		return err
	}

	router := &conf.Router{FIB: f, Gen: gen, Neigh: nm, Dataplane: plane, Links: dp, MTU: dp, Log: log}
	defer setReload(router, cfg, file, log)()
	if cfg.ControlPlane != nil {
		stopCP, err := startControlPlane(runCtx, cfg, file, f, plane, dp, router, log)
		if err != nil {
			return err
		}
		defer func() {
			cancel()
			stopCP()
		}()
	}
	if cfg.Metrics != "" {
		if err := conf.ServeMetrics(runCtx, cfg.Metrics, router, log); err != nil {
			return fmt.Errorf("%s: metrics: %w", file, err)
		}
	}
	go expireExceptions(runCtx, f.Exceptions(), plane)
	stopAPI, err := startAPI(runCtx, cancel, cfg, file, router, log)
	if err != nil {
		return err
	}
	defer stopAPI()

	garps := 3
	if cfg.GratuitousARP != nil {
		garps = *cfg.GratuitousARP
	}
	go announce(runCtx, cfg, f, plane, garps, log)
	logSummary(log, cfg, f, infos)
	if err := sdNotify("READY=1\nSTATUS=forwarding"); err != nil {
		log.Warn("could not tell systemd ferryd is ready", zap.Error(err))
	}
	<-ctx.Done()
	sdNotify("STOPPING=1")
	log.Info("shutting down", zap.String("reason", "signal"))
	return nil
}

// newDataplane builds the state the pipelines share and the neighbour
// manager that owns its neighbour tables, with the configured knobs, punt
// queues and static neighbours.
func newDataplane(cfg *conf.Config, file string, f *fib.FIB, gen *cache.GenID, infos []pipeline.PortInfo, nports []neigh.PortConfig, log *zap.Logger) (*pipeline.Dataplane, *neigh.Manager, error) {
	// The manager solicits through the pipelines, which reach it through
	// plane: tx carries its solicitations once NewDataplane has bound it.
	tx := &pipeline.NeighTx{}
	nm := neigh.NewManager(nports, len(cfg.Cores), cache.SystemClock{}, tx, func(msg string, kv ...any) {
		log.Sugar().Debugw(msg, kv...)
	})
	plane := pipeline.NewDataplane(f, gen, nm, tx, infos, len(cfg.Cores))
	plane.SetKnobs(cfg.Knobs())
	if cp := cfg.ControlPlane; cp != nil {
		on := make([]bool, len(cfg.Ports))
		for i := range on {
			on[i] = true
		}
		if err := plane.EnablePunt(pipeline.PuntConfig{Ports: on, Queue: cp.PuntQueue, Rate: cp.PuntRate, FrameLen: cfg.FrameRoom()}); err != nil {
			return nil, nil, err
		}
	}
	for i, n := range cfg.Neighbors {
		// Entries are written as after 'ip neigh replace'.
		req, err := neigh.ParseNeigh(append([]string{"replace"}, strings.Fields(n)...), f.PortIndex)
		if err == nil {
			err = nm.Apply(req)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%s: neighbors[%d] %q: %w", file, i, n, err)
		}
	}
	return plane, nm, nil
}

// inBackground runs run(ctx) in a goroutine; stop cancels ctx and waits
// for run to return.
func inBackground(ctx context.Context, cancel context.CancelFunc, run func(context.Context)) (stop func()) {
	done := make(chan struct{})
	go func() {
		run(ctx)
		close(done)
	}()
	return func() {
		cancel()
		<-done
	}
}

// keepThreadsOff moves every thread but the pipelines' off their CPUs and
// says where they went, then sizes the Go runtime's processors (Ps) for
// npipe pipelines and the control plane.
func keepThreadsOff(npipe int, pipeCPUs []int, log *zap.Logger) {
	cpus, err := keepOffCores(pipeCPUs)
	switch {
	case err != nil:
		log.Warn("other threads may share the pipeline cores", zap.Error(err))
	case cpus == nil:
		log.Warn("no CPU but the pipelines': other threads share them", zap.Ints("cpus", pipeCPUs))
	default:
		log.Info("threads other than the pipelines kept off their CPUs", zap.Ints("pipeline_cpus", pipeCPUs), zap.Ints("other_cpus", cpus))
	}
	if env := os.Getenv("GOMAXPROCS"); env != "" {
		log.Info("Go processors as the environment sets them", zap.Int("gomaxprocs", runtime.GOMAXPROCS(0)), zap.Int("pipelines", npipe))
		return
	}
	procs := goProcs(npipe, len(cpus))
	runtime.GOMAXPROCS(procs)
	log.Info("Go processors", zap.Int("gomaxprocs", procs), zap.Int("pipelines", npipe))
}

// goProcs is GOMAXPROCS for npipe pipelines and nctl CPUs left to the
// rest. A pipeline runs Go code all the time it forwards, and so holds one
// of the runtime's Ps; the runtime's default counts only the CPUs the
// process may use, which keepOffCores just narrowed to the control plane's
// (one on a 2-CPU box): the pipeline and the control plane would then take
// turns on a single P, and the pipeline would stall whenever a route
// load, a timer or the collector ran. So: a P for each pipeline, one for
// each control CPU (at least one), and one spare, which a pipeline that
// was preempted or woke from a nap takes at once instead of waiting until
// the control plane's goroutines yield theirs.
func goProcs(npipe, nctl int) int {
	return npipe + max(nctl, 1) + 1
}

// startControlPlane gives every port its kernel interface and starts the
// netlink mirror; stop removes them again.
func startControlPlane(ctx context.Context, cfg *conf.Config, file string, f *fib.FIB, plane *pipeline.Dataplane, dp *dpdkPlane, router *conf.Router, log *zap.Logger) (stop func(), err error) {
	kp, ns, err := startKernelPath(ctx, cfg, f, plane, dp, log)
	if err != nil {
		return nil, fmt.Errorf("%s: control_plane: %w", file, err)
	}
	dp.kernel = kp
	mc := linuxcp.NewController(ctx, linuxcp.NewMirror(ns, f, kp, router, log), cfg.ControlPlane.MirrorOn())
	router.CP = mc
	return func() {
		mc.Stop()
		kp.Close()
		ns.Close()
		log.Info("kernel interfaces removed")
	}, nil
}

// startAPI serves the control socket under the configured access policy;
// stop cancels ctx and waits for the server to end.
func startAPI(ctx context.Context, cancel context.CancelFunc, cfg *conf.Config, file string, router *conf.Router, log *zap.Logger) (stop func(), err error) {
	policy, err := conf.NewAccessPolicy(cfg.APIGroup, cfg.APIReadonlyGroup)
	if err != nil {
		return nil, &refusedError{fmt.Errorf("%s: api_group: %w", file, err)}
	}
	srv := &conf.Server{Path: cfg.API, Log: log, Handler: router, Access: policy}
	if err := srv.Listen(); err != nil {
		return nil, err
	}
	return inBackground(ctx, cancel, srv.Serve), nil
}

// announce sends gratuitous ARP for every address, count times a second
// apart, so neighbours learn (or relearn) the router's MACs; hosts that
// attach to a port just after start still hear one.
func announce(ctx context.Context, cfg *conf.Config, f *fib.FIB, plane *pipeline.Dataplane, count int, log *zap.Logger) {
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
				if err := plane.Announce(i, a.Addr); err != nil {
					log.Warn("gratuitous ARP not sent", zap.String("port", cfg.Ports[i].Name), zap.Error(err))
				}
			}
		}
	}
}

// expireExceptions reclaims expired nexthop exceptions, as the kernel's
// fnhe expiry does lazily; lookups already ignore them.
func expireExceptions(ctx context.Context, reg *cache.ExcRegistry, plane *pipeline.Dataplane) {
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			reg.Expire(plane.Now())
		}
	}
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
