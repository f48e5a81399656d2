package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
)

// The device-bound benchmark. Over memif the generator is the bottleneck
// (l3fwd forwards all it gets), so a ratio there says little of what each
// device costs. Here each device's input is a capture replayed on its own
// port, on its own core (net_pcap with infinite_rx: the replay runs in the
// device's rx burst), and its output a net_null port that drops in the tx
// burst: the device's core does all the work and nothing waits on a peer.
// The rate is the output port's transmitted packets (DPDK telemetry, the
// same counter for every device). The source row is testpmd forwarding in
// io mode, which does nothing but move the packets: what the replay gives a
// device that only forwards. A device within 90% of it is bound by the
// source, and its row is no comparison.
//
// The devices take turns on one core as in the memif runs: all started,
// each stopped (SIGSTOP) but during its turn, in an order reversed every
// other round.

// pcapMAC is the MAC address DPDK 22.11's net_pcap gives its first port;
// the frames are addressed to it, as ferryd forwards only frames for it.
const pcapMAC = "02:70:63:61:70:00"

// Devices of the device-bound runs besides ferryd and l3fwd.
const dutTestpmd = "testpmd"

// deviceCase is one traffic case of the device-bound runs: a capture and
// the frames it holds.
type deviceCase struct {
	Case   string `json:"case"`
	Frames int    `json:"frames"`
	pcap   string
}

// deviceRow is one device on one case: its rate in each round.
type deviceRow struct {
	Routes int       `json:"routes"`
	Case   string    `json:"case"`
	Device string    `json:"device"`
	Mpps   []float64 `json:"mpps"`
	// Warmup: the warm-up rounds' rates, in none of the figures.
	Warmup []float64 `json:"warmup_mpps,omitempty"`
	Median float64   `json:"mpps_median"`
	Spread float64   `json:"spread"` // (max-min)/median over the rounds
	Cycles float64   `json:"cycles_per_packet"`
	// SourceBound: within 90% of the source row, so bound by the replay.
	SourceBound bool   `json:"source_bound"`
	Error       string `json:"error,omitempty"`
}

type deviceResults struct {
	Started string      `json:"started"`
	CPUMHz  float64     `json:"cpu_mhz"`
	Rounds  int         `json:"rounds"`
	Warmup  int         `json:"warmup_rounds"`
	TurnS   float64     `json:"turn_s"`
	Rows    []deviceRow `json:"rows"`
	Notes   []string    `json:"notes,omitempty"`
}

// deviceCases are the traffic cases of the device-bound runs, with the
// frames of each capture: enough for its destinations, within the pools.
func deviceCases(spec string) []deviceCase {
	var out []deviceCase
	for _, c := range strings.Split(strings.Trim(spec, ";"), ";") {
		c = strings.TrimSpace(c)
		if c == "" {
			continue
		}
		frames := 1024
		if d, _, _ := strings.Cut(c, "@"); strings.HasPrefix(d, "uniform") {
			n := 0
			if _, v, ok := strings.Cut(d, ":"); ok {
				n, _ = strconv.Atoi(v)
			}
			// Every frame holds an mbuf of the replay: 32,768 fit the
			// pools (65,536 mbufs) with the rings, and the pools of all
			// devices fit the hugepages ferry-bench reserves.
			if n == 0 || n > 1024 {
				frames = 32768
			}
		}
		out = append(out, deviceCase{Case: c, Frames: frames})
	}
	return out
}

// runDevice measures every device on every table and case, device-bound,
// and writes device.json and device.txt to the results directory.
func (b *bench) runDevice(ctx context.Context, tables []*routeTable) error {
	res := &deviceResults{Started: time.Now().UTC().Format(time.RFC3339), CPUMHz: cpuMHz(), Rounds: b.o.rounds, Warmup: b.o.warmRounds, TurnS: b.o.duration.Seconds()}
	cases := deviceCases(b.o.deviceCases)
	dir := filepath.Join(b.work, "device")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for i := range cases {
		c := &cases[i]
		c.pcap = filepath.Join(dir, fmt.Sprintf("case%d.pcap", i))
	}
	duts := []dutSpec{{label: dutTestpmd, kind: dutTestpmd}}
	for _, d := range b.duts {
		if d.kind != dutSource {
			duts = append(duts, d)
		}
	}
	for _, t := range tables {
		for _, c := range cases {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err := b.writeCasePcap(t, c); err != nil {
				return err
			}
			b.log.Info("device-bound run", zap.String("table", t.name()), zap.String("case", c.Case), zap.Strings("duts", labels(duts)))
			rows := b.deviceTurns(ctx, t, c, duts)
			markSourceBound(rows)
			for i := range rows {
				rows[i].Cycles = res.CPUMHz / rows[i].Median
				if rows[i].Median == 0 {
					rows[i].Cycles = 0
				}
			}
			res.Rows = append(res.Rows, rows...)
		}
	}
	res.Notes = b.notes
	return res.write(b.o.out, b.log)
}

// writeCasePcap writes case c's capture with ferry-pktgen.
func (b *bench) writeCasePcap(t *routeTable, c deviceCase) error {
	argv := []string{"--write-pcap", c.pcap, "--pcap-frames", strconv.Itoa(c.Frames), "--table", t.Batch,
		"--cases", c.Case, "--dst-mac", pcapMAC, "--src-ip", benchSrc, "--seed", strconv.FormatInt(b.o.seed, 10)}
	out, err := exec.Command(b.pktgen, argv...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ferry-pktgen --write-pcap: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// deviceTurns starts the devices on case c's capture and gives each its
// turns; a device that fails to start gets a row with its error.
func (b *bench) deviceTurns(ctx context.Context, t *routeTable, c deviceCase, duts []dutSpec) []deviceRow {
	tag := fmt.Sprintf("%s-dev-%s", t.name(), strings.NewReplacer(":", "", "@", "-").Replace(c.Case))
	logDir := filepath.Join(b.o.out, "logs", tag)
	runs := make([]*dutRun, len(duts))
	rows := make([]deviceRow, len(duts))
	defer func() {
		for _, r := range runs {
			if r != nil && r.proc != nil {
				r.proc.cont()
				r.proc.stop(20 * time.Second)
			}
		}
	}()
	for i, d := range duts {
		rows[i] = deviceRow{Routes: t.Routes, Case: c.Case, Device: d.label}
		r := &dutRun{Routes: t.Routes, DUT: d.label, LogDir: filepath.Join(logDir, d.label), spec: d}
		work := filepath.Join(b.work, tag, d.label) // its control socket: a short path
		if err := errors.Join(os.MkdirAll(r.LogDir, 0o755), os.MkdirAll(work, 0o755)); err != nil {
			rows[i].Error = err.Error()
			continue
		}
		devs := portDevs{dev: [2]string{
			fmt.Sprintf("net_pcap0,rx_pcap=%s,infinite_rx=1", c.pcap),
			"net_null1,no-rx=1",
		}, mbufs: 65535}
		var err error
		switch d.kind {
		case dutFerryd:
			r.proc, err = b.startFerryd(ctx, t, tag+"-"+d.label, devs, work, r, false)
			if err == nil {
				b.ferrydSettled(ctx, r)
			}
		case dutL3fwd:
			bin := b.l3fwd
			if d.bin != "" {
				bin = d.bin
			}
			r.proc, err = b.startL3fwd(ctx, t, bin, tag+"-"+d.label, devs, r.LogDir, r)
		case dutTestpmd:
			r.proc, err = b.startTestpmd(ctx, tag+"-"+d.label, devs, r)
		}
		if err == nil {
			err = r.proc.pause()
		}
		if err != nil {
			rows[i].Error = firstLine(err.Error())
			b.note("%s on %s %s: %s", d.label, t.name(), c.Case, rows[i].Error)
			continue
		}
		runs[i] = r
	}
	// Warm-up rounds come first, as negative rounds.
	for round := -b.o.warmRounds; round < b.o.rounds; round++ {
		order := make([]int, len(duts))
		for i := range order {
			order[i] = i
		}
		if (round+b.o.warmRounds)%2 == 1 {
			slices.Reverse(order)
		}
		for _, i := range order {
			r := runs[i]
			if r == nil || ctx.Err() != nil {
				continue
			}
			mpps, err := b.deviceTurn(ctx, r, t, c, round)
			if err != nil {
				rows[i].Error = firstLine(err.Error())
				b.note("%s on %s %s, %s: %s", r.DUT, t.name(), c.Case, roundName(round, b.o.warmRounds), rows[i].Error)
				continue
			}
			if round < 0 {
				rows[i].Warmup = append(rows[i].Warmup, mpps)
				continue
			}
			rows[i].Mpps = append(rows[i].Mpps, mpps)
		}
	}
	for i := range rows {
		rows[i].Median, rows[i].Spread = medianSpread(rows[i].Mpps)
	}
	return rows
}

// deviceTurn runs device r for one turn and returns its rate in Mpps: the
// output port's packets between the end of the warm-up and the end of
// the turn. With -profile, ferryd's and l3fwd's last turn on the largest
// table's uniform case is also recorded with perf.
func (b *bench) deviceTurn(ctx context.Context, r *dutRun, t *routeTable, c deviceCase, round int) (float64, error) {
	r.proc.cont()
	defer r.proc.pause()
	if err := sleepCtx(ctx, b.o.warmup); err != nil {
		return 0, err
	}
	n0, err := ethOpackets(r.prefix, 1)
	if err != nil {
		return 0, err
	}
	t0 := time.Now()
	var prof *exec.Cmd
	profFile := filepath.Join(b.o.out, fmt.Sprintf("device-profile-%s.txt", r.DUT))
	if b.o.profile && round == b.o.rounds-1 && c.Case == "uniform" && (r.spec.kind == dutFerryd || r.spec.kind == dutL3fwd) {
		if _, err := exec.LookPath("perf"); err == nil {
			// The device's core, not its process: ferryd's other
			// threads (Go's runtime among them) run on the other CPU.
			prof = exec.Command("perf", "record", "-q", "-F", "2999", "-g", "-C", strconv.Itoa(b.o.dutCPUList[0]), "-o", profFile+".data",
				"--", "sleep", fmt.Sprint(b.o.duration.Seconds()))
			if err := prof.Start(); err != nil {
				prof = nil
			}
		}
	}
	if err := sleepCtx(ctx, b.o.duration); err != nil {
		return 0, err
	}
	n1, err := ethOpackets(r.prefix, 1)
	if err != nil {
		return 0, err
	}
	dt := time.Since(t0).Seconds()
	if prof != nil {
		prof.Wait()
		b.writeProfile(profFile, r.DUT, t, c)
	}
	if r.proc.exited() {
		return 0, fmt.Errorf("exited: %v", r.proc.exitErr())
	}
	return float64(n1-n0) / dt / 1e6, nil
}

// writeProfile turns perf's record into the per-function report committed
// beside the results.
func (b *bench) writeProfile(path, dut string, t *routeTable, c deviceCase) {
	defer os.Remove(path + ".data")
	var w strings.Builder
	fmt.Fprintf(&w, "# %s, %s routes, case %s: where the device core's cycles go (perf record -g -F 2999 -C %d;\n"+
		"# perf report --no-children, by binary, then by binary and function: the PMDs' functions are\n"+
		"# addresses in librte_net_pcap (the replay) and librte_net_null (the drop))\n", dut, t.name(), c.Case, b.o.dutCPUList[0])
	for _, sort := range []string{"dso", "dso,symbol"} {
		out, err := exec.Command("perf", "report", "-i", path+".data", "--stdio", "--no-children", "--sort", sort,
			"--percent-limit", "0.5", "-g", "none").Output()
		if err != nil {
			b.log.Warn("perf report failed", zap.Error(err))
			return
		}
		sc := bufio.NewScanner(strings.NewReader(string(out)))
		for sc.Scan() {
			l := strings.TrimRight(sc.Text(), " -")
			if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#") && !strings.HasPrefix(l, "# Samples") {
				continue
			}
			w.WriteString(l + "\n")
		}
		w.WriteString("\n")
	}
	if err := os.WriteFile(path, []byte(w.String()), 0o644); err != nil {
		b.log.Warn("profile not written", zap.Error(err))
	}
}

// startTestpmd starts the source row's device: testpmd forwarding port 0
// to port 1 in io mode, doing nothing to the packets.
func (b *bench) startTestpmd(ctx context.Context, tag string, devs portDevs, r *dutRun) (*proc, error) {
	pfx := b.prefix(tag)
	r.prefix = pfx
	argv := append([]string{"dpdk-testpmd", "--lcores", fmt.Sprintf("0@%d,1@%d", b.o.genCPU, b.o.dutCPUList[0]), "--main-lcore", "0",
		"--no-pci", "--file-prefix", pfx}, b.ealMem(1024)...)
	argv = append(argv, "--vdev", devs.dev[0], "--vdev", devs.dev[1], "--",
		"--forward-mode=io", "--nb-cores=1", "--auto-start", "--stats-period=3600", "--total-num-mbufs=65536", "--no-lsc-interrupt")
	p, err := startProc("testpmd", r.LogDir, argv, false, b.o.boost, b.log)
	if err != nil {
		return nil, err
	}
	b.cleanupAfter(p, pfx)
	return p, waitFor(ctx, p, 2*time.Minute, "testpmd's forwarding", func() bool {
		_, err := ethOpackets(pfx, 1)
		return p.logContains("io packet forwarding") && err == nil
	})
}

// ethOpackets reads port's transmitted packets from the DPDK telemetry
// socket of the EAL with file prefix pfx.
func ethOpackets(pfx string, port int) (uint64, error) {
	path := filepath.Join("/var/run/dpdk", pfx, "dpdk_telemetry.v2")
	c, err := net.DialTimeout("unixpacket", path, 2*time.Second)
	if err != nil {
		return 0, fmt.Errorf("telemetry: %w", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64<<10)
	if _, err := c.Read(buf); err != nil { // the greeting
		return 0, fmt.Errorf("telemetry: %w", err)
	}
	cmd := fmt.Sprintf("/ethdev/stats,%d", port)
	if _, err := c.Write([]byte(cmd)); err != nil {
		return 0, fmt.Errorf("telemetry: %w", err)
	}
	n, err := c.Read(buf)
	if err != nil {
		return 0, fmt.Errorf("telemetry: %w", err)
	}
	var reply map[string]struct {
		Opackets uint64 `json:"opackets"`
	}
	if err := json.Unmarshal(buf[:n], &reply); err != nil {
		return 0, fmt.Errorf("telemetry %s: %w", cmd, err)
	}
	st, ok := reply["/ethdev/stats"]
	if !ok {
		return 0, fmt.Errorf("telemetry %s: no stats in %q", cmd, buf[:min(n, 200)])
	}
	return st.Opackets, nil
}

// markSourceBound marks the rows within 90% of the source row's rate.
func markSourceBound(rows []deviceRow) {
	src := 0.0
	for _, r := range rows {
		if r.Device == dutTestpmd {
			src = r.Median
		}
	}
	for i := range rows {
		rows[i].SourceBound = rows[i].Device != dutTestpmd && src > 0 && rows[i].Median >= 0.9*src
	}
}

// roundName names round as the notes do: warm-up rounds are the negative
// ones, before the counted rounds from 0.
func roundName(round, warmRounds int) string {
	if round < 0 {
		return fmt.Sprintf("warm-up round %d", round+warmRounds+1)
	}
	return fmt.Sprintf("round %d", round+1)
}

// roundRatios is a/b round by round, where both have every round's rate
// (a failed turn leaves no rate, and the rounds could not be paired).
func roundRatios(a, b []float64, rounds int) []float64 {
	if len(a) != rounds || len(b) != rounds {
		return nil
	}
	var q []float64
	for i := range a {
		if b[i] > 0 {
			q = append(q, a[i]/b[i])
		}
	}
	return q
}

func medianSpread(v []float64) (median, spread float64) {
	if len(v) == 0 {
		return 0, 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	median = s[len(s)/2]
	if len(s)%2 == 0 {
		median = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	if median > 0 {
		spread = (s[len(s)-1] - s[0]) / median
	}
	return median, spread
}

// cpuMHz is the CPU's clock as the kernel reports it, for cycles per packet.
func cpuMHz() float64 {
	f, _ := strconv.ParseFloat(cpuinfo("cpu MHz"), 64)
	return f
}

// cpuinfo is the first value of key in /proc/cpuinfo, "" without one.
func cpuinfo(key string) string {
	bs, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(string(bs), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// sleepCtx waits d, or less when ctx ends (its error).
func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// write stores the results as JSON and as the text table.
func (res *deviceResults) write(dir string, log *zap.Logger) error {
	bs, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "device.json"), append(bs, '\n'), 0o644); err != nil {
		return err
	}
	txt := res.table()
	fmt.Print(txt)
	log.Info("device-bound results written", zap.String("dir", dir))
	return os.WriteFile(filepath.Join(dir, "device.txt"), []byte(txt), 0o644)
}

// table renders the results: each device's median rate, spread and cycles
// a packet per table and case, and each ferryd's ratio to l3fwd where
// neither was bound by the source.
func (res *deviceResults) table() string {
	var w strings.Builder
	fmt.Fprintf(&w, "Device-bound: a pcap replay into port 0 (net_pcap, infinite_rx), port 1 a net_null port; one core;\n")
	fmt.Fprintf(&w, "rates are medians of %d turns of %.0f s (Mpps), spread (max-min)/median, cycles a packet at %.0f MHz", res.Rounds, res.TurnS, res.CPUMHz)
	if res.Warmup > 0 {
		fmt.Fprintf(&w, ";\n%d warm-up round(s) of turns before them, not counted", res.Warmup)
	}
	w.WriteString(".\n")
	fmt.Fprintf(&w, "testpmd (io) is the source: what the replay gives a device that only forwards; * within 90%% of it: source-bound.\n")
	fmt.Fprintf(&w, "vs l3fwd: the median of each round's ratio (a round's turns are seconds apart, its devices share its phase), and their range.\n\n")
	fmt.Fprintf(&w, "%-7s %-16s %-16s %8s %7s %8s   %s\n", "routes", "case", "device", "Mpps", "spread", "cyc/pkt", "vs l3fwd  range")
	for i, r := range res.Rows {
		mark := " "
		if r.SourceBound {
			mark = "*"
		}
		ratio := ""
		if strings.HasPrefix(r.Device, dutFerryd) {
			for _, l := range res.Rows {
				if l.Device == dutL3fwd && l.Case == r.Case && l.Routes == r.Routes && l.Median > 0 && r.Median > 0 {
					if l.SourceBound || r.SourceBound {
						ratio = "(source-bound)"
					} else if q := roundRatios(r.Mpps, l.Mpps, res.Rounds); len(q) > 0 {
						med, _ := medianSpread(q)
						ratio = fmt.Sprintf("%.2f  %.2f-%.2f", med, slices.Min(q), slices.Max(q))
					} else {
						ratio = fmt.Sprintf("%.2f", r.Median/l.Median)
					}
				}
			}
		}
		if r.Error != "" && len(r.Mpps) == 0 {
			fmt.Fprintf(&w, "%-7d %-16s %-16s %8s   %s\n", r.Routes, r.Case, r.Device, "-", r.Error)
			continue
		}
		fmt.Fprintf(&w, "%-7d %-16s %-16s %7.2f%s %6.1f%% %8.0f   %s\n", r.Routes, r.Case, r.Device, r.Median, mark, 100*r.Spread, r.Cycles, ratio)
		if i+1 < len(res.Rows) && res.Rows[i+1].Case != r.Case {
			w.WriteByte('\n')
		}
	}
	if len(res.Notes) > 0 {
		w.WriteString("\nNotes:\n")
		for _, n := range res.Notes {
			fmt.Fprintf(&w, "- %s\n", n)
		}
	}
	return w.String()
}
