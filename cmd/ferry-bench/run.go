package main

import (
	"bytes"
	"context"
	"encoding/json"
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

// genReport is what ferry-pktgen --json prints (the fields used here).
type genReport struct {
	TSCHz uint64    `json:"tsc_hz"`
	Cases []genCase `json:"cases"`
}

type genCase struct {
	Case        string  `json:"case"`
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

// dutRun is one device under test driven through every traffic case on
// one table.
type dutRun struct {
	Routes    int                        `json:"routes"`
	DUT       string                     `json:"dut"`
	Round     int                        `json:"round"`
	Cores     int                        `json:"cores"`
	RTTBefore float64                    `json:"core_rtt_before_ns"` // cache-line round trip generator CPU <-> device CPU
	RTTAfter  float64                    `json:"core_rtt_after_ns"`
	Load      string                     `json:"route_load,omitempty"`   // ferryd: batch or inline
	LoadS     float64                    `json:"route_load_s,omitempty"` // ferryd: ferryctl -batch of the table
	StartS    float64                    `json:"start_s"`                // start until ready, routes included
	Generator json.RawMessage            `json:"generator,omitempty"`
	Counters  map[string]json.RawMessage `json:"dut_counters,omitempty"`
	Error     string                     `json:"error,omitempty"`
	LogDir    string                     `json:"log_dir"`
	report    *genReport
}

// ealMem is the memory part of every EAL's arguments.
func (b *bench) ealMem(mb int) []string {
	if b.huge {
		// Unlinked hugepage files cannot outlive the process.
		return []string{"--huge-unlink"}
	}
	return []string{"--no-huge", "-m", strconv.Itoa(mb)}
}

// memifArgs are the --vdev arguments of the two memif ports.
func memifArgs(role, sock0, sock1, mac0, mac1 string) []string {
	return []string{
		"--vdev", fmt.Sprintf("net_memif0,role=%s,id=0,socket=%s,socket-abstract=no,mac=%s", role, sock0, mac0),
		"--vdev", fmt.Sprintf("net_memif1,role=%s,id=0,socket=%s,socket-abstract=no,mac=%s", role, sock1, mac1),
	}
}

func (b *bench) prefix(what string) string {
	p := fmt.Sprintf("fybench%d-%s", os.Getpid(), what)
	b.prefixes = append(b.prefixes, p)
	return p
}

// runDUT measures one device under test on one table: generator (memif
// server) first, then the device (memif client), then the start signal;
// at the end the device goes first, since a memif peer that disconnects
// under a polling one crashes it.
func (b *bench) runDUT(ctx context.Context, t *routeTable, dut string, round int, suffix string) *dutRun {
	tag := fmt.Sprintf("%s-%s-r%d%s", t.name(), dut, round, suffix)
	r := &dutRun{Routes: t.Routes, DUT: dut, Round: round, Cores: 1, LogDir: filepath.Join(b.o.out, "logs", tag)}
	r.RTTBefore = b.settle(ctx, tag)
	if err := b.drive(ctx, t, dut, tag, r); err != nil {
		r.Error = err.Error()
		b.log.Error("run failed", zap.String("run", tag), zap.Error(err))
	}
	if rtt, err := b.probe(ctx); err == nil {
		r.RTTAfter = rtt
		if b.bestRTT == 0 || rtt < b.bestRTT {
			b.bestRTT = rtt
		}
	}
	return r
}

func (b *bench) drive(ctx context.Context, t *routeTable, dut, tag string, r *dutRun) error {
	dir := filepath.Join(b.work, tag) // sockets: short paths
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.MkdirAll(r.LogDir, 0o755); err != nil {
		return err
	}
	sock0, sock1 := filepath.Join(dir, "p0.sock"), filepath.Join(dir, "p1.sock")
	startFile := filepath.Join(dir, "start")

	genPrefix := b.prefix(tag + "-gen")
	defer removeRuntimeDir(genPrefix)
	eal := append([]string{"-l", strconv.Itoa(b.o.genCPU), "--no-pci", "--file-prefix", genPrefix}, b.ealMem(512)...)
	eal = append(eal, memifArgs("server", sock0, sock1, genTxMAC, genRxMAC)...)
	genArgs := []string{b.pktgen, "--eal", strings.Join(eal, " "), "--table", t.Batch, "--dst-mac", dutP0MAC,
		"--src-ip", benchSrc, "--cases", b.o.cases, "--duration", b.o.duration.String(), "--warmup", b.o.warmup.String(),
		"--cpu", strconv.Itoa(b.o.genCPU), "--json", "--start-file", startFile, "--label", dut,
		"--retries", strconv.Itoa(b.o.retries), "--min-share", fmt.Sprint(b.o.minShare), "--seed", strconv.FormatInt(b.o.seed, 10),
		"--linger", "30s", "--rest", b.o.rest.String()}
	if b.o.debug {
		genArgs = append(genArgs, "--debug")
	}
	gen, err := startProc("pktgen", r.LogDir, genArgs, true, b.o.boost, b.log)
	if err != nil {
		return err
	}
	var dev *proc
	measured := false
	defer func() {
		// Device first, then the generator (see above).
		if err := dev.stop(20 * time.Second); err != nil && dev != nil {
			b.log.Warn("device under test did not stop cleanly", zap.String("run", tag), zap.Error(err))
		}
		// A generator with results waits for the disconnect and exits by
		// itself; one that never got to send is told to go.
		stop := gen.wait
		if !measured {
			stop = gen.stop
		}
		if err := stop(45 * time.Second); err != nil {
			b.log.Warn("generator did not stop cleanly", zap.String("run", tag), zap.Error(err))
		}
	}()
	exists := func(p string) func() bool {
		return func() bool { _, err := os.Stat(p); return err == nil }
	}
	if err := waitFor(ctx, gen, 60*time.Second, "the generator's memif sockets", func() bool { return exists(sock0)() && exists(sock1)() }); err != nil {
		return err
	}

	t0 := time.Now()
	switch dut {
	case dutSource:
		dev, err = b.startReflector(ctx, tag, sock0, sock1, r.LogDir)
	case dutFerryd:
		dev, err = b.startFerryd(ctx, t, tag, sock0, sock1, dir, r, b.loadMode == "inline")
	case dutL3fwd:
		dev, err = b.startL3fwd(ctx, t, tag, sock0, sock1, r.LogDir)
	default:
		err = fmt.Errorf("unknown device under test %q", dut)
	}
	if err != nil {
		return err
	}
	r.StartS = time.Since(t0).Seconds()
	b.log.Info("device ready", zap.String("run", tag), zap.Int("pid", dev.pid()), zap.Float64("start_s", r.StartS), zap.Float64("route_load_s", r.LoadS))

	// The start file names the device's pid: the generator watches how
	// much CPU its busiest thread gets.
	tmp := startFile + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(dev.pid())), 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, startFile); err != nil {
		return err
	}
	perCase := b.o.warmup + b.o.duration + b.o.rest
	budget := time.Duration(b.ncases*(1+b.o.retries))*(perCase+time.Second) + 2*time.Minute
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
		return err
	}
	measured = true
	r.Generator = json.RawMessage(bytes.TrimSpace(raw))
	r.report = &genReport{}
	if err := json.Unmarshal(raw, r.report); err != nil {
		return fmt.Errorf("generator results: %w", err)
	}
	if dut == dutFerryd {
		r.Counters = b.ferryCounters(filepath.Join(dir, "ferry.sock"))
	}
	if dev.exited() {
		return fmt.Errorf("device under test exited during the run (%v); its log ends:\n%s", dev.exitErr(), dev.tail(15))
	}
	return nil
}

func (b *bench) startReflector(ctx context.Context, tag, sock0, sock1, logDir string) (*proc, error) {
	pfx := b.prefix(tag)
	eal := append([]string{"-l", strconv.Itoa(b.o.dutCPU), "--no-pci", "--file-prefix", pfx}, b.ealMem(512)...)
	eal = append(eal, memifArgs("client", sock0, sock1, dutP0MAC, dutP1MAC)...)
	argv := []string{b.pktgen, "--reflect", "--eal", strings.Join(eal, " "), "--rx-dev", "net_memif0", "--tx-dev", "net_memif1",
		"--cpu", strconv.Itoa(b.o.dutCPU)}
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
func (b *bench) ferrydConfig(path, prefix, api, sock0, sock1 string, t *routeTable, inline bool) error {
	var w bytes.Buffer
	eal := []string{"--file-prefix", prefix, "--no-pci"}
	huge := "auto"
	if !b.huge {
		eal = append(eal, "--no-huge", "-m", "1024")
		huge = "off"
	}
	for i := range eal {
		eal[i] = strconv.Quote(eal[i])
	}
	fmt.Fprintf(&w, "# written by ferry-bench\neal: [%s]\nhugepages: %q\ncores: [%d]\napi: %q\nmbufs: 32767\nlog_level: info\n",
		strings.Join(eal, ", "), huge, b.o.dutCPU, api)
	fmt.Fprintf(&w, "ports:\n")
	for i, s := range []struct{ sock, mac, addr string }{{sock0, dutP0MAC, "192.0.2.1/24"}, {sock1, dutP1MAC, "198.51.100.1/24"}} {
		fmt.Fprintf(&w, "  - name: port%d\n    dev: \"net_memif%d,role=client,id=0,socket=%s,socket-abstract=no,mac=%s\"\n    addresses: [%q]\n",
			i, i, s.sock, s.mac, s.addr)
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
	// The static neighbour is added with ferryctl once ferryd runs: see
	// docs/benchmarking.md for why not with the neighbors: key.
	w.WriteString("neighbors: []\n")
	return os.WriteFile(path, w.Bytes(), 0o644)
}

// startFerryd starts ferryd and makes it ready to forward: routes loaded
// (inline, or with ferryctl -batch, timed), the next hop's MAC known.
func (b *bench) startFerryd(ctx context.Context, t *routeTable, tag, sock0, sock1, dir string, r *dutRun, inline bool) (*proc, error) {
	pfx := b.prefix(tag)
	api := filepath.Join(dir, "ferry.sock")
	os.Remove(api)
	cfg := filepath.Join(dir, "ferry.yaml")
	if err := b.ferrydConfig(cfg, pfx, api, sock0, sock1, t, inline); err != nil {
		return nil, err
	}
	p, err := startProc("ferryd", r.LogDir, []string{b.ferryd, "--config", cfg}, false, b.o.boost, b.log)
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
	if _, err := ctl("neigh", "replace", nextHop, "lladdr", genRxMAC, "dev", "port1", "nud", "permanent"); err != nil {
		return p, err
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

// ferryCounters reads ferryd's counters after the run, for the record.
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

func (b *bench) startL3fwd(ctx context.Context, t *routeTable, tag, sock0, sock1, logDir string) (*proc, error) {
	pfx := b.prefix(tag)
	argv := append([]string{b.l3fwd, "-l", strconv.Itoa(b.o.dutCPU), "--no-pci", "--file-prefix", pfx}, b.ealMem(2048)...)
	argv = append(argv, memifArgs("client", sock0, sock1, dutP0MAC, dutP1MAC)...)
	d := b.o.dutCPU
	argv = append(argv, "--", "-p", "0x3", fmt.Sprintf("--config=(0,0,%d),(1,0,%d)", d, d),
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
	r := &dutRun{Routes: t.Routes, DUT: dutFerryd, LogDir: filepath.Join(b.o.out, "logs", tag)}
	for _, d := range []string{dir, r.LogDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	sock0, sock1 := filepath.Join(dir, "p0.sock"), filepath.Join(dir, "p1.sock")
	pfx := b.prefix(tag + "-srv")
	defer removeRuntimeDir(pfx)
	eal := append([]string{"-l", strconv.Itoa(b.o.genCPU), "--no-pci", "--file-prefix", pfx}, b.ealMem(256)...)
	eal = append(eal, memifArgs("server", sock0, sock1, genTxMAC, genRxMAC)...)
	srv, err := startProc("server", r.LogDir, []string{b.pktgen, "--reflect", "--eal", strings.Join(eal, " "), "--cpu", strconv.Itoa(b.o.genCPU)}, false, 0, b.log)
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
	dev, err = b.startFerryd(ctx, t, tag, sock0, sock1, dir, r, inline)
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
