// ferry-bench runs ferry's forwarding benchmark end to end: it generates
// route tables and builds DPDK's l3fwd as the peer to compare with. The
// device-bound runs (device.go) replay a capture into each device's own
// port, so that the device's core is the bottleneck; the memif runs drive
// ferry-pktgen against the generator's own reflector (the source limit),
// ferryd and l3fwd over memif ports, one pipeline core each, with the same
// source, table and core. It prints tables and writes JSON, text copies
// and a PNG chart into the results directory.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"

	"ferry/cmd/internal/cli"
	"ferry/dpdk"
)

const usage = `Usage: ferry-bench [options]

Measures ferryd against DPDK's l3fwd (--lookup=fib). Device-bound (-mode
device): each device reads a pcap replay on its own port and sends to a null
port, on one core, so that the device is the bottleneck; testpmd in io mode
shows what the replay gives. End to end (-mode memif): over net_memif ports
from a generator on another core, against the generator's own limit. Churn
(-mode churn): each ferryd device-bound while its whole table is replaced,
in windows of 100 ms: what control-plane work costs the pipeline. Needs
root (hugepages, DPDK), bin/ferryd, bin/ferryctl, bin/ferry-pktgen,
dpdk-testpmd and DPDK's example sources. 'make bench' runs it.

Options:
`

type options struct {
	bin         string
	l3fwd       string
	out         string
	tables      string
	duts        string
	cases       string
	duration    time.Duration
	warmup      time.Duration
	rest        time.Duration
	retries     int
	rounds      int
	warmRounds  int
	gateways    int
	minShare    float64
	seed        int64
	huge        string
	boost       int
	genCPU      int
	dutCPU      int
	ncores      int
	dutCPUs     string
	genCPUs     string
	dutCPUList  []int // parsed -dut-cpus: one a core
	genCPUList  []int // parsed -gen-cpus: one a queue
	debug       bool
	writeTo     string
	ferrydLoad  string
	probeRTT    string
	settle      time.Duration
	rttMax      float64
	render      string
	mode        string
	deviceCases string
	churnFrames int
	profile     bool
}

type bench struct {
	o        options
	log      *zap.Logger
	work     string
	huge     bool
	pktgen   string
	ferryd   string
	ferryctl string
	l3fwd    string
	ncases   int
	duts     []dutSpec
	prefixes []string
	notes    []string
	// How ferryd gets its routes in the traffic runs; "auto" starts with
	// batch and stays with inline once a batch has failed.
	loadMode    string
	batchBroken bool
	bestRTT     float64       // fastest core-to-core round trip seen, ns
	waitBudget  time.Duration // left for waiting out slow phases
}

func main() {
	os.Exit(run())
}

func run() int {
	var o options
	fs := flag.NewFlagSet("ferry-bench", flag.ContinueOnError)
	fs.StringVar(&o.bin, "bin", "bin", "directory with ferryd, ferryctl and ferry-pktgen")
	fs.StringVar(&o.l3fwd, "l3fwd", "", "l3fwd binary (default: build it with bench/build-l3fwd.sh)")
	fs.StringVar(&o.out, "out", "bench/results", "results directory")
	fs.StringVar(&o.tables, "tables", "16,900000", "route table sizes, comma separated")
	fs.StringVar(&o.duts, "dut", "source,ferryd,l3fwd", "devices under test: they take turns on the device core, in this order (reversed every other round); LABEL=BINARY adds another build, e.g. ferryd.new=/tmp/ferryd; ferryd+rules16 is ferryd with 16 policy rules over 4 tables that match none of the traffic, ferryd+burst64 ferryd with rx_burst 64")
	fs.StringVar(&o.cases, "cases", "single;uniform:1000;uniform;uniform@imix", "traffic cases of the memif runs (ferry-pktgen --cases syntax)")
	fs.StringVar(&o.mode, "mode", "device,memif", "runs, comma separated: device (device-bound: pcap replay in, null port out), memif (end to end from the generator), churn (ferryd device-bound while its whole table is replaced)")
	fs.StringVar(&o.deviceCases, "device-cases", "single;uniform:1000;uniform:65536;uniform;uniform@imix", "traffic cases of the device-bound runs")
	fs.IntVar(&o.churnFrames, "churn-frames", 1024, "frames of the churn mode's replay, each to a destination of its own drawn from the table: 1024 fall in at most as many /16 blocks, 32768 in most of a full table's (1-32768)")
	fs.BoolVar(&o.profile, "profile", true, "record ferryd's and l3fwd's last device-bound turn on the uniform case with perf, into device-profile-DEVICE.txt")
	fs.DurationVar(&o.duration, "duration", 2*time.Second, "measured time of each turn (a device on a case in a round)")
	fs.DurationVar(&o.warmup, "warmup", 500*time.Millisecond, "warm-up of each turn")
	fs.DurationVar(&o.rest, "rest", 3*time.Second, "generator idle between cases and rounds: on a virtual machine, cores loaded for more than ~10 s in a row were seen to slow down")
	fs.IntVar(&o.retries, "retries", 1, "repeat a case up to this often when a loop did not get its CPU")
	fs.IntVar(&o.gateways, "gateways", 1, "gateways on port1 the routes go through in turn (198.51.100.2 on), each a static neighbour of ferryd with the generator's MAC: with several, the packets of a pass mix their routing decisions as under several BGP peers (1-200)")
	fs.IntVar(&o.rounds, "rounds", 5, "turns of each device on each case; rates are medians, ratios medians of each round's ratio")
	fs.IntVar(&o.warmRounds, "warmup-rounds", 1, "device-bound runs: rounds of turns before the counted ones, whose rates are kept apart (warmup_mpps): right after the devices start and load their tables every device was seen to run slower")
	fs.Float64Var(&o.minShare, "min-share", 0.85, "share of its CPU a loop must get for a case to count without repeat")
	fs.Int64Var(&o.seed, "seed", 1, "seed of the destination draw")
	fs.StringVar(&o.huge, "hugepages", "auto", "auto | on | off: run every EAL on hugepages (auto: when they can be reserved)")
	fs.IntVar(&o.boost, "boost", -10, "nice value (-20..19) for the benchmark processes' scheduler autogroups; 0 leaves them alone")
	fs.IntVar(&o.genCPU, "gen-cpu", 0, "CPU of the generator's loop")
	fs.IntVar(&o.dutCPU, "dut-cpu", runtime.NumCPU()-1, "CPU of the device under test's pipeline")
	fs.IntVar(&o.ncores, "cores", 1, "pipeline cores of each device (ferryd's cores, l3fwd's lcores), a memif queue pair each; the generator runs a loop a queue")
	fs.StringVar(&o.dutCPUs, "dut-cpus", "", "CPUs of the devices' N pipeline cores, comma separated (default: --dut-cpu for all; see docs/benchmarking.md)")
	fs.StringVar(&o.genCPUs, "gen-cpus", "", "CPUs of the generator's N queue loops, comma separated (default: --gen-cpu for all)")
	fs.StringVar(&o.ferrydLoad, "ferryd-load", "auto", "how ferryd gets the routes in the traffic runs: batch (ferryctl -batch after start), inline (routes: in its config) or auto (batch, inline if a batch fails); the other way is timed once per table")
	fs.DurationVar(&o.settle, "settle", 3*time.Minute, "total time the benchmark may wait for the core-to-core round trip to come back to its best before runs")
	fs.Float64Var(&o.rttMax, "rtt-max", 300, "a core-to-core round trip above this many ns counts as slow (see -settle)")
	fs.StringVar(&o.render, "render", "", "only print the table and redraw the text and chart of a results JSON file, next to it")
	fs.StringVar(&o.probeRTT, "probe-rtt", "", "only measure the cache-line round trip between two CPUs, e.g. 0,1, and print it in ns")
	fs.BoolVar(&o.debug, "debug", false, "debug logging")
	fs.StringVar(&o.writeTo, "write-tables", "", "only write the -tables route tables (ferryctl batch, YAML, l3fwd rules) into this directory")
	if ok, status := cli.Parse(fs, usage, os.Args[1:]); !ok {
		return status
	}
	if o.probeRTT != "" {
		return probeMain(o.probeRTT)
	}
	log, err := cli.ToolLogger(o.debug)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ferry-bench:", err)
		return 2
	}
	defer log.Sync()
	if o.render != "" {
		if err := render(o.render, log); err != nil {
			log.Error("rendering failed", zap.Error(err))
			return 1
		}
		return 0
	}
	if o.writeTo != "" {
		if err := writeTables(o.writeTo, o.tables, o.gateways, log); err != nil {
			log.Error("writing tables failed", zap.Error(err))
			return 1
		}
		return 0
	}
	b := &bench{o: o, log: log, waitBudget: o.settle}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := b.run(ctx); err != nil {
		log.Error("benchmark failed", zap.Error(err))
		return 1
	}
	return 0
}

func (b *bench) check() error {
	if os.Geteuid() != 0 {
		return errors.New("needs root: DPDK, hugepages and scheduler priorities")
	}
	if b.o.genCPU == b.o.dutCPU {
		return fmt.Errorf("--gen-cpu and --dut-cpu are both %d: the generator and the device need a CPU each", b.o.genCPU)
	}
	if n := runtime.NumCPU(); b.o.genCPU >= n || b.o.dutCPU >= n || b.o.genCPU < 0 || b.o.dutCPU < 0 {
		return fmt.Errorf("this machine has CPUs 0-%d", n-1)
	}
	for _, name := range []string{"ferryd", "ferryctl", "ferry-pktgen"} {
		p, err := filepath.Abs(filepath.Join(b.o.bin, name))
		if err != nil {
			return err
		}
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("%s not built (make bench builds it): %w", p, err)
		}
		switch name {
		case "ferryd":
			b.ferryd = p
		case "ferryctl":
			b.ferryctl = p
		default:
			b.pktgen = p
		}
	}
	if b.o.ncores < 1 || b.o.ncores > 16 {
		return fmt.Errorf("-cores %d out of range 1-16", b.o.ncores)
	}
	var err error
	if b.o.dutCPUList, err = cpuList(b.o.dutCPUs, b.o.dutCPU, b.o.ncores); err != nil {
		return fmt.Errorf("-dut-cpus: %w", err)
	}
	if b.o.genCPUList, err = cpuList(b.o.genCPUs, b.o.genCPU, b.o.ncores); err != nil {
		return fmt.Errorf("-gen-cpus: %w", err)
	}
	if b.o.ncores > 1 && runtime.NumCPU() < 2*b.o.ncores {
		b.note("%d pipeline cores and %d generator loops share %d CPUs: the run checks that N cores work, its rates say nothing of scaling (docs/benchmarking.md)", b.o.ncores, b.o.ncores, runtime.NumCPU())
	}
	return nil
}

// cpuList reads a CPU list for n cores: one CPU each, or def for all.
func cpuList(s string, def, n int) ([]int, error) {
	if strings.TrimSpace(s) == "" {
		out := make([]int, n)
		for i := range out {
			out[i] = def
		}
		return out, nil
	}
	out, err := cli.CPUList(s)
	if err != nil {
		return nil, err
	}
	for _, c := range out {
		if c >= runtime.NumCPU() {
			return nil, fmt.Errorf("%q: CPU %d, and this machine has CPUs 0-%d", s, c, runtime.NumCPU()-1)
		}
	}
	if len(out) != n {
		return nil, fmt.Errorf("%q names %d CPUs for %d cores", s, len(out), n)
	}
	return out, nil
}

// lcoreMap maps lcores first, first+1, ... onto cpus, as --lcores takes it.
func lcoreMap(first int, cpus []int) string {
	m := make([]string, len(cpus))
	for i, c := range cpus {
		m[i] = fmt.Sprintf("%d@%d", first+i, c)
	}
	return strings.Join(m, ",")
}

// joinInts is a comma-separated list.
func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ",")
}

func (b *bench) note(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	b.notes = append(b.notes, s)
	b.log.Warn(s)
}

func (b *bench) run(ctx context.Context) error {
	start := time.Now()
	if err := b.check(); err != nil {
		return err
	}
	b.ncases = len(strings.Split(strings.Trim(b.o.cases, ";"), ";"))
	if b.o.gateways < 1 || b.o.gateways > 200 {
		return errors.New("-gateways must be 1-200")
	}
	if b.o.warmRounds < 0 {
		return errors.New("-warmup-rounds must not be negative")
	}
	if b.o.rounds < 1 {
		return errors.New("-rounds must be at least 1")
	}
	if b.o.churnFrames < 1 || b.o.churnFrames > 32768 {
		return errors.New("-churn-frames must be 1-32768")
	}
	var err error
	if b.duts, err = parseDUTs(b.o.duts); err != nil {
		return err
	}
	switch b.o.ferrydLoad {
	case "auto":
		b.loadMode = "batch"
	case "batch", "inline":
		b.loadMode = b.o.ferrydLoad
	default:
		return fmt.Errorf("-ferryd-load %q: use auto, batch or inline", b.o.ferrydLoad)
	}
	if b.o.out, err = filepath.Abs(b.o.out); err != nil {
		return err
	}
	if err := os.MkdirAll(b.o.out, 0o755); err != nil {
		return err
	}
	os.RemoveAll(filepath.Join(b.o.out, "logs"))
	b.work, err = os.MkdirTemp("", "ferry-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(b.work)
	defer func() {
		for _, p := range b.prefixes {
			removeRuntimeDir(p)
		}
	}()

	if err := b.setupHugepages(); err != nil {
		return err
	}
	if err := b.buildL3fwd(ctx); err != nil {
		return err
	}
	tables, err := makeTables(b.work, b.o.tables, b.o.gateways, b.log)
	if err != nil {
		return err
	}
	modes := strings.Split(b.o.mode, ",")
	for _, m := range modes {
		if m != "device" && m != "memif" && m != "churn" {
			return fmt.Errorf("-mode %q: use device, memif, churn or several of them, comma separated", b.o.mode)
		}
	}
	if slices.Contains(modes, "device") {
		if err := b.runDevice(ctx, tables); err != nil {
			return err
		}
	}
	if slices.Contains(modes, "churn") {
		if err := b.runChurn(ctx, tables); err != nil {
			return err
		}
	}
	if !slices.Contains(modes, "memif") {
		return nil
	}

	res := &results{Started: start.UTC().Format(time.RFC3339), Machine: machineInfo(), Options: b.o.public(), Hugepages: b.huge}
	for _, t := range tables {
		res.Tables = append(res.Tables, tableResult{Routes: t.Routes})
	}
	duts := b.duts
	if slices.ContainsFunc(duts, func(d dutSpec) bool { return d.kind == dutSource }) {
		if g, err := b.ringCeiling(ctx, tables[0]); err != nil {
			b.note("generator ceiling (net_ring loop) not measured: %v", firstLine(err.Error()))
		} else {
			res.Ceiling = map[string]float64{}
			for _, c := range g.Cases {
				res.Ceiling[c.Case] = c.RxPPS / 1e6
			}
			b.log.Info("generator ceiling on a net_ring loop", zap.Any("mpps", res.Ceiling))
		}
	}
	for ti, t := range tables {
		tr := &res.Tables[ti]
		b.log.Info("running", zap.String("table", t.name()), zap.Strings("duts", labels(duts)), zap.Int("rounds", b.o.rounds))
		if err := b.runTable(ctx, t, duts, tr); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			b.note("%s routes not measured: %s", t.name(), firstLine(err.Error()))
			continue
		}
		var ferryd *dutRun
		for _, r := range tr.Runs {
			if r.DUT == dutFerryd && r.Error == "" {
				tr.noteLoad(r)
				ferryd = r
			}
		}
		if ferryd == nil || b.batchBroken {
			continue
		}
		// Once per table: the routes loaded the other way.
		other, err := b.compareLoad(ctx, t, ferryd.Load == "batch")
		if err != nil {
			b.log.Warn("could not time ferryd's other way of loading routes", zap.Error(err))
			b.note("ferryd with %s routes loaded the other way than %s: %v", t.name(), ferryd.Load, firstLine(err.Error()))
			continue
		}
		tr.noteLoad(other)
		b.log.Info("ferryd route load", zap.Int("routes", t.Routes), zap.Float64("batch_ready_s", tr.FerrydBatchReadyS),
			zap.Float64("batch_s", tr.FerrydBatchS), zap.Float64("inline_ready_s", tr.FerrydInlineReadyS))
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	res.Notes = b.notes
	res.BestRTT = b.bestRTT
	res.Seconds = time.Since(start).Seconds()
	res.compute()
	return res.write(b.o.out, b.log)
}

// makeTables generates the tables of the comma-separated route counts.
func makeTables(dir, spec string, gws int, log *zap.Logger) ([]*routeTable, error) {
	var tables []*routeTable
	for _, s := range strings.Split(spec, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-tables: %q is not a route count", s)
		}
		t0 := time.Now()
		t, err := makeTable(dir, n, gws)
		if err != nil {
			return nil, err
		}
		log.Info("route table generated", zap.Int("routes", n), zap.String("batch", t.Batch), zap.Duration("took", time.Since(t0)))
		tables = append(tables, t)
	}
	return tables, nil
}

func writeTables(dir, spec string, gws int, log *zap.Logger) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	_, err := makeTables(dir, spec, gws, log)
	return err
}

// setupHugepages decides between hugepages and --no-huge for every EAL.
func (b *bench) setupHugepages() error {
	switch b.o.huge {
	case "off":
		b.note("hugepages off: every EAL runs with --no-huge (4 KiB pages; table lookups pay TLB misses)")
		return nil
	case "auto", "on":
	default:
		return fmt.Errorf("--hugepages %q: use auto, on or off", b.o.huge)
	}
	// Generator, device and ferryd's own check: 1.5 GiB covers them all.
	if err := dpdk.EnsureHugepages(1536); err != nil {
		if b.o.huge == "on" {
			return fmt.Errorf("hugepages: %w", err)
		}
		b.note("hugepages unavailable (%v): every EAL runs with --no-huge", err)
		return nil
	}
	b.huge = true
	return nil
}

func (b *bench) buildL3fwd(ctx context.Context) error {
	if b.o.l3fwd != "" {
		b.l3fwd = b.o.l3fwd
		return nil
	}
	if !slices.ContainsFunc(b.duts, func(d dutSpec) bool { return d.kind == dutL3fwd && d.bin == "" }) {
		return nil
	}
	script, err := filepath.Abs("bench/build-l3fwd.sh")
	if err != nil {
		return err
	}
	b.log.Info("building l3fwd from the DPDK examples", zap.String("script", script))
	cmd := exec.CommandContext(ctx, script)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("%s: %w", script, err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	b.l3fwd = lines[len(lines)-1]
	return nil
}
