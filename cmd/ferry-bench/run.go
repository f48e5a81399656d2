package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
)

// Devices under test.
const (
	dutSource = "source" // the generator's own reflector: the source limit
	dutFerryd = "ferryd"
	dutL3fwd  = "l3fwd"
)

// dutSpec is one device under test of -dut: a label, the kind of device
// (the label up to its first '.' or '+'), for another build of it its
// binary, and for a ferryd labelled +rulesN, N policy rules, +burstN, an
// rx_burst of N.
type dutSpec struct {
	label, kind, bin string
	rules            int
	rxBurst          int
}

// parseDUTs reads -dut: LABEL[=BINARY], comma separated, where LABEL is
// source, ferryd or l3fwd, or one of them with a suffix (ferryd.new=/tmp/ferryd)
// for another build measured in the same turns.
func parseDUTs(spec string) ([]dutSpec, error) {
	var out []dutSpec
	seen := map[string]bool{}
	for _, item := range strings.Split(spec, ",") {
		label, bin, _ := strings.Cut(strings.TrimSpace(item), "=")
		name, opt, withOpt := strings.Cut(label, "+")
		kind, _, _ := strings.Cut(name, ".")
		nrules, burst := 0, 0
		if withOpt {
			var err error
			switch {
			case kind != dutFerryd:
				err = errors.New("options are for ferryd")
			case strings.HasPrefix(opt, "rules"):
				nrules, err = strconv.Atoi(opt[5:])
				if err == nil && (nrules < 1 || nrules > 64) {
					err = errors.New("N from 1 to 64")
				}
			case strings.HasPrefix(opt, "burst"):
				burst, err = strconv.Atoi(opt[5:])
				if err == nil && (burst < 1 || burst > 512) {
					err = errors.New("N from 1 to 512")
				}
			default:
				err = errors.New("+rulesN or +burstN")
			}
			if err != nil {
				return nil, fmt.Errorf("-dut: %q: %v", item, err)
			}
		}
		switch {
		case kind != dutSource && kind != dutFerryd && kind != dutL3fwd:
			return nil, fmt.Errorf("-dut: %q is not source, ferryd or l3fwd (optionally .SUFFIX=BINARY)", item)
		case seen[label]:
			return nil, fmt.Errorf("-dut: %s twice", label)
		case kind == dutSource && bin != "":
			return nil, fmt.Errorf("-dut: %q: the source is the generator's own reflector", item)
		case name != kind && bin == "":
			return nil, fmt.Errorf("-dut: %q needs =BINARY: another build to compare", item)
		}
		if bin != "" {
			abs, err := filepath.Abs(bin)
			if err != nil {
				return nil, err
			}
			if _, err := os.Stat(abs); err != nil {
				return nil, fmt.Errorf("-dut %s: %w", label, err)
			}
			bin = abs
		}
		seen[label] = true
		out = append(out, dutSpec{label: label, kind: kind, bin: bin, rules: nrules, rxBurst: burst})
	}
	return out, nil
}

// genReport is what ferry-pktgen --json prints (the fields used here).
type genReport struct {
	TSCHz  uint64    `json:"tsc_hz"`
	Rounds int       `json:"rounds"`
	Cases  []genCase `json:"cases"`
}

// genCase is one turn: a traffic case measured on one device in one round.
type genCase struct {
	Case        string  `json:"case"`
	Label       string  `json:"label"`
	Round       int     `json:"round"`
	Dist        string  `json:"dist"`
	Flows       int     `json:"flows"`
	Size        string  `json:"size"`
	Seconds     float64 `json:"duration_s"`
	TxPPS       float64 `json:"tx_pps"`
	RxPPS       float64 `json:"rx_pps"`
	RxPPSMedian float64 `json:"rx_pps_median"`
	RxPPSMin    float64 `json:"rx_pps_min"`
	RxPPSMax    float64 `json:"rx_pps_max"`
	RxGbps      float64 `json:"rx_gbps"`
	LossRatio   float64 `json:"loss_ratio"`
	RxOther     uint64  `json:"rx_other"`
	RxBack      uint64  `json:"rx_back"`
	GenShare    float64 `json:"gen_cpu_share"`
	Attempts    int     `json:"attempts"`
	DUT         *struct {
		Name      string  `json:"name"`
		CPUShare  float64 `json:"cpu_share"`
		WaitShare float64 `json:"wait_share"`
	} `json:"dut_thread"`
}

// dutRun is one device under test on one table: how it started, and what
// it said about itself after its turns.
type dutRun struct {
	Routes   int                        `json:"routes"`
	DUT      string                     `json:"dut"`
	Load     string                     `json:"route_load,omitempty"`   // ferryd: batch or inline
	LoadS    float64                    `json:"route_load_s,omitempty"` // ferryd: ferryctl -batch of the table
	StartS   float64                    `json:"start_s"`                // start until ready, routes included
	Counters map[string]json.RawMessage `json:"dut_counters,omitempty"`
	Error    string                     `json:"error,omitempty"`
	LogDir   string                     `json:"log_dir"`
	// ferryd: garbage collection cycles from ready to the end of the
	// turns, where steady forwarding runs none.
	GCCycles *uint64 `json:"gc_cycles_during_run,omitempty"`
	spec     dutSpec
	proc     *proc
	api      string    // ferryd's control socket
	gc0      uint64    // GC cycles when it was ready
	gcKnown  bool      // gc0 was read
	readyAt  time.Time // when gc0 was read
	prefix   string    // its EAL's file prefix (telemetry socket)
}

// ealMem is the memory part of every EAL's arguments.
func (b *bench) ealMem(mb int) []string {
	if b.huge {
		// Unlinked hugepage files cannot outlive the process.
		return []string{"--huge-unlink"}
	}
	return []string{"--no-huge", "-m", strconv.Itoa(mb)}
}

// portDevs are a device's two ports, as DPDK device arguments, and the
// mbufs its pool needs beyond the usual (ferryd's mbufs; 0: the default).
type portDevs struct {
	dev     [2]string
	mbufs   int
	rxBurst int // ferryd's rx_burst; 0: its default
}

// memifDevs are a device's two memif client ports.
func memifDevs(sock0, sock1 string) portDevs {
	a := memifPair(0, "client", sock0, sock1, dutP0MAC, dutP1MAC)
	return portDevs{dev: [2]string{a[1], a[3]}}
}

// memifPair is the --vdev arguments of one device's two memif ports, as
// net_memif<first> and net_memif<first+1>.
func memifPair(first int, role, sock0, sock1, mac0, mac1 string) []string {
	return []string{
		"--vdev", fmt.Sprintf("net_memif%d,role=%s,id=0,socket=%s,socket-abstract=no,mac=%s", first, role, sock0, mac0),
		"--vdev", fmt.Sprintf("net_memif%d,role=%s,id=0,socket=%s,socket-abstract=no,mac=%s", first+1, role, sock1, mac1),
	}
}

func (b *bench) prefix(what string) string {
	p := fmt.Sprintf("fybench%d-%s", os.Getpid(), what)
	b.prefixes = append(b.prefixes, p)
	return p
}

// runTable measures every device on one table. One generator serves them
// all, each on its own pair of memif ports; the devices are started one
// after the other on the same core and stopped once ready, and the
// generator then gives each its turn per case and round (ferry-pktgen
// --duts): whatever the host does to the two CPUs over minutes, devices
// compared within a round ran seconds apart. A device that fails to start
// is left out and the others are measured without it.
func (b *bench) runTable(ctx context.Context, t *routeTable, duts []dutSpec, tr *tableResult) error {
	for len(duts) > 0 {
		failed, err := b.measureTable(ctx, t, duts, tr)
		if err != nil || failed < 0 {
			return err
		}
		b.note("%s left out on %s routes: %s", duts[failed].label, t.name(), firstLine(tr.Runs[len(tr.Runs)-1].Error))
		duts = append(duts[:failed:failed], duts[failed+1:]...)
	}
	return nil
}

// measureTable is one attempt of runTable: it returns the index of a
// device that failed to start (-1: none did).
func (b *bench) measureTable(ctx context.Context, t *routeTable, duts []dutSpec, tr *tableResult) (int, error) {
	tag := t.name()
	attempt := len(tr.Runs)
	if attempt > 0 {
		tag = fmt.Sprintf("%s-try%d", tag, attempt+1)
	}
	tr.RTTBefore = b.settle(ctx, tag)
	dir := filepath.Join(b.work, tag) // sockets: short paths
	logDir := filepath.Join(b.o.out, "logs", tag)
	for _, d := range []string{dir, logDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return -1, err
		}
	}
	sock := func(i, p int) string { return filepath.Join(dir, fmt.Sprintf("d%dp%d.sock", i, p)) }
	startFile := filepath.Join(dir, "start")

	genPrefix := b.prefix(tag + "-gen")
	defer removeRuntimeDir(genPrefix)
	eal := append([]string{"-l", strconv.Itoa(b.o.genCPU), "--no-pci", "--file-prefix", genPrefix}, b.ealMem(256+256*len(duts))...)
	for i := range duts {
		eal = append(eal, memifPair(2*i, "server", sock(i, 0), sock(i, 1), genTxMAC, genRxMAC)...)
	}
	genArgs := []string{b.pktgen, "--eal", strings.Join(eal, " "), "--table", t.Batch, "--dst-mac", dutP0MAC,
		"--src-ip", benchSrc, "--cases", b.o.cases, "--duration", b.o.duration.String(), "--warmup", b.o.warmup.String(),
		"--cpu", strconv.Itoa(b.o.genCPU), "--queues", strconv.Itoa(b.o.ncores), "--cpus", joinInts(b.o.genCPUList),
		"--json", "--start-file", startFile,
		"--duts", strconv.Itoa(len(duts)), "--rounds", strconv.Itoa(b.o.rounds), "--label", strings.Join(labels(duts), ","),
		"--retries", strconv.Itoa(b.o.retries), "--min-share", fmt.Sprint(b.o.minShare), "--seed", strconv.FormatInt(b.o.seed, 10),
		"--linger", "30s", "--rest", b.o.rest.String()}
	if b.o.debug {
		genArgs = append(genArgs, "--debug")
	}
	gen, err := startProc("pktgen", logDir, genArgs, true, b.o.boost, b.log)
	if err != nil {
		return -1, err
	}
	runs := make([]*dutRun, len(duts))
	measured := false
	defer func() {
		// Devices first, then the generator: a memif peer that
		// disconnects under a polling one crashes it. A stopped device
		// must be continued to act on SIGTERM.
		for _, r := range runs {
			if r == nil || r.proc == nil {
				continue
			}
			r.proc.cont()
			if err := r.proc.stop(20 * time.Second); err != nil {
				b.log.Warn("device under test did not stop cleanly", zap.String("dut", r.DUT), zap.Error(err))
			}
		}
		// A generator with results waits for the disconnect and exits by
		// itself; one that never got to send is told to go.
		stop := gen.wait
		if !measured {
			stop = gen.stop
		}
		if err := stop(45 * time.Second); err != nil {
			b.log.Warn("generator did not stop cleanly", zap.String("table", tag), zap.Error(err))
		}
		if rtt, err := b.probe(ctx); err == nil {
			tr.RTTAfter = rtt
			b.noteRTT(rtt)
		}
	}()
	exists := func(p string) bool { _, err := os.Stat(p); return err == nil }
	if err := waitFor(ctx, gen, 60*time.Second, "the generator's memif sockets", func() bool {
		for i := range duts {
			if !exists(sock(i, 0)) || !exists(sock(i, 1)) {
				return false
			}
		}
		return true
	}); err != nil {
		return -1, err
	}

	var pids []string
	for i, dut := range duts {
		if ctx.Err() != nil {
			return -1, ctx.Err()
		}
		r := &dutRun{Routes: t.Routes, DUT: dut.label, LogDir: filepath.Join(logDir, dut.label), spec: dut}
		runs[i] = r
		b.log.Info("starting", zap.String("table", t.name()), zap.String("dut", dut.label))
		if err := b.startDUT(ctx, t, r, filepath.Join(dir, dut.label), sock(i, 0), sock(i, 1)); err != nil {
			r.Error = err.Error()
			b.log.Error("device under test failed to start", zap.String("dut", dut.label), zap.Error(err))
			tr.Runs = append(tr.Runs, r)
			return i, nil
		}
		b.log.Info("device ready", zap.String("dut", dut.label), zap.Int("pid", r.proc.pid()), zap.Float64("start_s", r.StartS), zap.Float64("route_load_s", r.LoadS))
		if dut.kind == dutFerryd {
			b.ferrydSettled(ctx, r)
		}
		// Stopped until its turn: the next device starts on a quiet core.
		if err := r.proc.pause(); err != nil {
			return -1, err
		}
		pids = append(pids, strconv.Itoa(r.proc.pid()))
	}
	tmp := startFile + ".tmp"
	if err := os.WriteFile(tmp, []byte(strings.Join(pids, "\n")+"\n"), 0o644); err != nil {
		return -1, err
	}
	if err := os.Rename(tmp, startFile); err != nil {
		return -1, err
	}
	turn := b.o.warmup + b.o.duration
	budget := time.Duration(b.ncases*b.o.rounds*len(duts)*(1+b.o.retries))*(turn+time.Second) + time.Duration(b.ncases)*b.o.rest + 2*time.Minute
	var raw []byte
	err = waitFor(ctx, gen, budget, "the generator's results", func() bool {
		bs, err := os.ReadFile(gen.stdout)
		if err != nil || !json.Valid(bs) || len(bytes.TrimSpace(bs)) == 0 {
			return false
		}
		raw = bs
		return true
	})
	if err != nil {
		return -1, err
	}
	measured = true
	tr.Generator = json.RawMessage(bytes.TrimSpace(raw))
	tr.report = &genReport{}
	if err := json.Unmarshal(raw, tr.report); err != nil {
		return -1, fmt.Errorf("generator results: %w", err)
	}
	for _, r := range runs {
		if r.spec.kind == dutFerryd {
			r.Counters = b.ferryCounters(r.api)
			if gc, ok := gcCycles(r.Counters); ok && r.gcKnown && gc >= r.gc0 {
				n := gc - r.gc0
				r.GCCycles = &n
				if n > periodicGCs(time.Since(r.readyAt)) {
					b.note("%s collected garbage %d times during the %s turns, more than the Go runtime's one every 2 minutes: something on its forwarding path allocates, and its rates there are not those of steady forwarding", r.DUT, n, t.name())
				}
			}
		}
		if r.proc.exited() {
			r.Error = fmt.Sprintf("device under test exited during the run (%v); its log ends:\n%s", r.proc.exitErr(), r.proc.tail(15))
		}
		tr.Runs = append(tr.Runs, r)
	}
	return -1, nil
}

func labels(duts []dutSpec) []string {
	var l []string
	for _, d := range duts {
		l = append(l, d.label)
	}
	return l
}

// startDUT starts one device on the generator's sockets and waits until it
// is ready to forward. With -ferryd-load auto, a ferryd whose batch load
// failed is started again with its routes inline.
func (b *bench) startDUT(ctx context.Context, t *routeTable, r *dutRun, dir, sock0, sock1 string) error {
	for _, d := range []string{dir, r.LogDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	// EAL file prefixes must not repeat: a runtime directory is removed
	// only once its process has gone.
	tag := filepath.Base(filepath.Dir(dir)) + "-" + r.DUT
	t0 := time.Now()
	var err error
	switch r.spec.kind {
	case dutSource:
		r.proc, err = b.startReflector(ctx, tag, sock0, sock1, r.LogDir)
	case dutFerryd:
		r.proc, err = b.startFerryd(ctx, t, tag, memifDevs(sock0, sock1), dir, r, b.loadMode == "inline")
		if err != nil && r.Load == "batch" && b.o.ferrydLoad == "auto" {
			b.batchBroken = true
			b.loadMode = "inline"
			b.note("ferryctl -batch failed, ferryd gets its routes inline (routes: in the config) from here on: %s", firstLine(err.Error()))
			r.proc.stop(20 * time.Second)
			t0 = time.Now()
			r.proc, err = b.startFerryd(ctx, t, tag+"-inline", memifDevs(sock0, sock1), dir, r, true)
		}
	case dutL3fwd:
		bin := b.l3fwd
		if r.spec.bin != "" {
			bin = r.spec.bin
		}
		r.proc, err = b.startL3fwd(ctx, t, bin, tag, memifDevs(sock0, sock1), r.LogDir, r)
	default:
		err = fmt.Errorf("unknown device under test %q", r.DUT)
	}
	r.StartS = time.Since(t0).Seconds()
	return err
}

func (b *bench) startReflector(ctx context.Context, tag, sock0, sock1, logDir string) (*proc, error) {
	pfx := b.prefix(tag)
	eal := append([]string{"-l", strconv.Itoa(b.o.dutCPU), "--no-pci", "--file-prefix", pfx}, b.ealMem(512)...)
	eal = append(eal, memifPair(0, "client", sock0, sock1, dutP0MAC, dutP1MAC)...)
	argv := []string{b.pktgen, "--reflect", "--eal", strings.Join(eal, " "), "--rx-dev", "net_memif0", "--tx-dev", "net_memif1",
		"--cpu", strconv.Itoa(b.o.dutCPU), "--queues", strconv.Itoa(b.o.ncores), "--cpus", joinInts(b.o.dutCPUList)}
	p, err := startProc("reflector", logDir, argv, false, b.o.boost, b.log)
	if err != nil {
		return nil, err
	}
	b.cleanupAfter(p, pfx)
	return p, waitFor(ctx, p, 60*time.Second, "the reflector", func() bool { return p.logContains("reflecting") })
}

// cleanupAfter removes the EAL runtime directory once p has exited.
func (b *bench) cleanupAfter(p *proc, prefix string) {
	go func() {
		<-p.done
		removeRuntimeDir(prefix)
	}()
}

// ferrydConfig writes ferryd's configuration: two memif client ports, the
// pipeline on the device core, routes inline (from the table's YAML list)
// or none (loaded later with ferryctl -batch).
func (b *bench) ferrydConfig(path, prefix, api string, devs portDevs, t *routeTable, inline bool) error {
	var w bytes.Buffer
	eal := []string{"--file-prefix", prefix, "--no-pci"}
	cores := strconv.Itoa(b.o.dutCPU)
	if b.o.ncores > 1 {
		// Lcores 1..N on the device CPUs (several may share one), the
		// main lcore on the generator's first.
		eal = append(eal, "--lcores", fmt.Sprintf("0@%d,%s", b.o.genCPUList[0], lcoreMap(1, b.o.dutCPUList)), "--main-lcore", "0")
		ids := make([]int, b.o.ncores)
		for i := range ids {
			ids[i] = i + 1
		}
		cores = joinInts(ids)
	}
	huge := "auto"
	if !b.huge {
		eal = append(eal, "--no-huge", "-m", "1024")
		huge = "off"
	}
	for i := range eal {
		eal[i] = strconv.Quote(eal[i])
	}
	mbufs := devs.mbufs
	if mbufs == 0 {
		mbufs = 32767
	}
	fmt.Fprintf(&w, "# written by ferry-bench\neal: [%s]\nhugepages: %q\ncores: [%s]\napi: %q\nmbufs: %d\nlog_level: info\n",
		strings.Join(eal, ", "), huge, cores, api, mbufs)
	if devs.rxBurst > 0 {
		fmt.Fprintf(&w, "rx_burst: %d\n", devs.rxBurst)
	}
	fmt.Fprintf(&w, "ports:\n")
	for i, addr := range []string{"192.0.2.1/24", "198.51.100.1/24"} {
		fmt.Fprintf(&w, "  - name: port%d\n    dev: %q\n    addresses: [%q]\n", i, devs.dev[i], addr)
	}
	if inline {
		routes, err := os.ReadFile(t.Config)
		if err != nil {
			return err
		}
		w.WriteString("routes:\n")
		w.Write(routes)
	} else {
		w.WriteString("routes: []\n")
	}
	// The static neighbour is added with ferryctl once ferryd runs, after
	// the routes: the same order for either way of loading them.
	w.WriteString("neighbors: []\n")
	return os.WriteFile(path, w.Bytes(), 0o644)
}

// startFerryd starts ferryd and makes it ready to forward: routes loaded
// (inline, or with ferryctl -batch, timed), the next hop's MAC known.
func (b *bench) startFerryd(ctx context.Context, t *routeTable, tag string, devs portDevs, dir string, r *dutRun, inline bool) (*proc, error) {
	pfx := b.prefix(tag)
	api := filepath.Join(dir, "ferry.sock")
	r.api = api
	os.Remove(api)
	cfg := filepath.Join(dir, "ferry.yaml")
	r.prefix = pfx
	devs.rxBurst = r.spec.rxBurst
	if err := b.ferrydConfig(cfg, pfx, api, devs, t, inline); err != nil {
		return nil, err
	}
	bin := b.ferryd
	if r.spec.bin != "" {
		bin = r.spec.bin
	}
	p, err := startProc("ferryd", r.LogDir, []string{bin, "--config", cfg}, false, b.o.boost, b.log)
	if err != nil {
		return nil, err
	}
	b.cleanupAfter(p, pfx)
	ctl := func(args ...string) (string, error) {
		// A batch of 900k routes took 16 s; anything far beyond is a hang.
		limit := 30*time.Second + time.Duration(t.Routes)*200*time.Microsecond
		cctx, cancel := context.WithTimeout(ctx, limit)
		defer cancel()
		out, err := exec.CommandContext(cctx, b.ferryctl, append([]string{"--socket", api}, args...)...).CombinedOutput()
		if cctx.Err() == context.DeadlineExceeded {
			return string(out), fmt.Errorf("ferryctl %s: no answer from ferryd in %s (ferryd's stacks: kill -QUIT %d)", strings.Join(args, " "), limit, p.pid())
		}
		if err != nil {
			return string(out), fmt.Errorf("ferryctl %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
		}
		return string(out), nil
	}
	ready := func() bool { _, err := ctl("link", "show"); return err == nil }
	if err := waitFor(ctx, p, 10*time.Minute, "ferryd's control socket", ready); err != nil {
		return p, err
	}
	r.Load = "inline"
	if !inline {
		r.Load = "batch"
		t0 := time.Now()
		if _, err := ctl("-batch", t.Batch); err != nil {
			return p, err
		}
		r.LoadS = time.Since(t0).Seconds()
	}
	for g := 0; g < t.Gateways; g++ {
		if _, err := ctl("neigh", "replace", gateway(g), "lladdr", genRxMAC, "dev", "port1", "nud", "permanent"); err != nil {
			return p, err
		}
	}
	// +rulesN: policy rules over four more tables that select sources no
	// frame of the benchmark has, as multi-table set-ups add them.
	for i := 0; i < r.spec.rules; i++ {
		tbl := strconv.Itoa(100 + i%4)
		if i < 4 {
			if _, err := ctl("route", "add", "10.99.0.0/16", "via", nextHop, "table", tbl); err != nil {
				return p, err
			}
		}
		if _, err := ctl("rule", "add", "priority", strconv.Itoa(100+i), "from", fmt.Sprintf("172.%d.0.0/16", 16+i), "lookup", tbl); err != nil {
			return p, err
		}
	}
	// One routed destination must go where the benchmark expects.
	probe := t.prefixes[0]
	out, err := ctl("route", "get", fmt.Sprint(probe.Addr>>24, ".", probe.Addr>>16&255, ".", probe.Addr>>8&255, ".", probe.Addr&255))
	if err != nil {
		return p, err
	}
	if !strings.Contains(out, "via "+nextHop) || !strings.Contains(out, "dev port1") {
		return p, fmt.Errorf("ferryd routes %s wrongly: %s", probe, strings.TrimSpace(out))
	}
	return p, nil
}

// periodicGCs is how many collections the Go runtime may force in d of a
// process that allocates nothing: one every 2 minutes (forcegcperiod).
func periodicGCs(d time.Duration) uint64 {
	return uint64(d/(2*time.Minute)) + 1
}

// gcCycles is ferryd's count of garbage collection cycles in its
// counters ('stats'), if they have it.
func gcCycles(counters map[string]json.RawMessage) (uint64, bool) {
	var st struct {
		Runtime *struct {
			GCCycles uint64 `json:"gc_cycles"`
		} `json:"runtime"`
	}
	if err := json.Unmarshal(counters["stats"], &st); err != nil || st.Runtime == nil {
		return 0, false
	}
	return st.Runtime.GCCycles, true
}

// ferrydSettled waits until ferryd r has settled after its route load, before
// anything is measured, and keeps its count of collections then.
func (b *bench) ferrydSettled(ctx context.Context, r *dutRun) {
	r.gc0, r.gcKnown = b.settled(ctx, r.api)
	r.readyAt = time.Now()
}

// settled waits until ferryd's heap has settled after its routes were
// loaded, and returns its count of collections then. ferryd compacts its
// tries and collects once large changes have been quiet for 2 s, on its
// other CPU; its pipeline forwarded 8-10% less in those seconds after a
// 900k load, so that work must not fall in a turn.
func (b *bench) settled(ctx context.Context, api string) (uint64, bool) {
	const quiet, most = 3 * time.Second, 30 * time.Second
	gc, ok := gcCycles(b.ferryCounters(api))
	if !ok {
		return 0, false
	}
	since, start := time.Now(), time.Now()
	for time.Since(since) < quiet && time.Since(start) < most {
		if sleepCtx(ctx, 250*time.Millisecond) != nil {
			break
		}
		if n, ok := gcCycles(b.ferryCounters(api)); ok && n != gc {
			gc, since = n, time.Now()
		}
	}
	return gc, true
}

// ferryCounters reads ferryd's counters, for the record.
func (b *bench) ferryCounters(api string) map[string]json.RawMessage {
	out := map[string]json.RawMessage{}
	for _, c := range [][]string{{"stats"}, {"link", "show"}, {"cache", "stats"}} {
		bs, err := exec.Command(b.ferryctl, append([]string{"--socket", api, "-json"}, c...)...).Output()
		key := strings.Join(c, " ")
		if err != nil {
			continue
		}
		if json.Valid(bs) {
			out[key] = json.RawMessage(bytes.TrimSpace(bs))
		} else {
			s, _ := json.Marshal(string(bs))
			out[key] = s
		}
	}
	return out
}

func (b *bench) startL3fwd(ctx context.Context, t *routeTable, bin, tag string, devs portDevs, logDir string, r *dutRun) (*proc, error) {
	pfx := b.prefix(tag)
	r.prefix = pfx
	// Lcores 1..N on the device CPUs; queue q of both ports on lcore q+1.
	argv := append([]string{bin, "--lcores", lcoreMap(1, b.o.dutCPUList), "--no-pci", "--file-prefix", pfx}, b.ealMem(2048)...)
	argv = append(argv, "--vdev", devs.dev[0], "--vdev", devs.dev[1])
	var cfg []string
	for port := 0; port < 2; port++ {
		for q := 0; q < b.o.ncores; q++ {
			cfg = append(cfg, fmt.Sprintf("(%d,%d,%d)", port, q, q+1))
		}
	}
	argv = append(argv, "--", "-p", "0x3", "--config="+strings.Join(cfg, ","),
		"--lookup=fib", "--rule_ipv4="+t.L3fwd, "--rule_ipv6="+t.L3fwdV6,
		"--eth-dest=1,"+genRxMAC, "--parse-ptype")
	p, err := startProc("l3fwd", logDir, argv, false, b.o.boost, b.log)
	if err != nil {
		return nil, err
	}
	b.cleanupAfter(p, pfx)
	return p, waitFor(ctx, p, 10*time.Minute, "l3fwd's main loop", func() bool { return p.logContains("entering main loop") })
}

// compareLoad times ferryd from start to ready with the table loaded the
// other way than in the traffic runs (inline in the config, or with
// ferryctl -batch), against a passive memif server: the reflector with
// server ports.
func (b *bench) compareLoad(ctx context.Context, t *routeTable, inline bool) (*dutRun, error) {
	tag := t.name() + "-ferryd-load"
	dir := filepath.Join(b.work, tag)
	r := &dutRun{Routes: t.Routes, DUT: dutFerryd, LogDir: filepath.Join(b.o.out, "logs", tag), spec: dutSpec{label: dutFerryd, kind: dutFerryd}}
	for _, d := range []string{dir, r.LogDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	sock0, sock1 := filepath.Join(dir, "p0.sock"), filepath.Join(dir, "p1.sock")
	pfx := b.prefix(tag + "-srv")
	defer removeRuntimeDir(pfx)
	eal := append([]string{"-l", strconv.Itoa(b.o.genCPU), "--no-pci", "--file-prefix", pfx}, b.ealMem(256)...)
	eal = append(eal, memifPair(0, "server", sock0, sock1, genTxMAC, genRxMAC)...)
	srv, err := startProc("server", r.LogDir, []string{b.pktgen, "--reflect", "--eal", strings.Join(eal, " "), "--cpu", strconv.Itoa(b.o.genCPU),
		"--queues", strconv.Itoa(b.o.ncores)}, false, 0, b.log)
	if err != nil {
		return nil, err
	}
	var dev *proc
	defer func() {
		// The server polls: a client leaving under it may crash it,
		// which costs nothing here.
		dev.stop(20 * time.Second)
		srv.stop(20 * time.Second)
	}()
	if err := waitFor(ctx, srv, 60*time.Second, "the memif server", func() bool { return srv.logContains("reflecting") }); err != nil {
		return nil, err
	}
	t0 := time.Now()
	dev, err = b.startFerryd(ctx, t, tag, memifDevs(sock0, sock1), dir, r, inline)
	if err != nil {
		return nil, err
	}
	r.StartS = time.Since(t0).Seconds()
	return r, nil
}

// ringCeiling measures the generator alone: one net_ring port that receives
// what it sends, no transport, no device. It bounds the source limit.
func (b *bench) ringCeiling(ctx context.Context, t *routeTable) (*genReport, error) {
	tag := "generator-ceiling"
	logDir := filepath.Join(b.o.out, "logs", tag)
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, err
	}
	pfx := b.prefix(tag)
	defer removeRuntimeDir(pfx)
	eal := append([]string{"-l", strconv.Itoa(b.o.genCPU), "--no-pci", "--file-prefix", pfx}, b.ealMem(256)...)
	eal = append(eal, "--vdev", "net_ring0")
	argv := []string{b.pktgen, "--eal", strings.Join(eal, " "), "--table", t.Batch, "--dst-mac", dutP0MAC,
		"--cases", "single;uniform", "--duration", "2s", "--warmup", "1s", "--cpu", strconv.Itoa(b.o.genCPU),
		"--json", "--retries", "0", "--linger", "0s", "--label", "net_ring"}
	p, err := startProc("pktgen", logDir, argv, true, b.o.boost, b.log)
	if err != nil {
		return nil, err
	}
	if err := p.wait(time.Minute); err != nil {
		return nil, fmt.Errorf("%w; its log ends:\n%s", err, p.tail(10))
	}
	raw, err := os.ReadFile(p.stdout)
	if err != nil {
		return nil, err
	}
	rep := &genReport{}
	if err := json.Unmarshal(raw, rep); err != nil {
		return nil, fmt.Errorf("generator ceiling results: %w", err)
	}
	return rep, nil
}
