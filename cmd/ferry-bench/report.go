package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"

	"go.uber.org/zap"
)

// results is the JSON file the benchmark writes.
type results struct {
	Started   string         `json:"started"`
	Seconds   float64        `json:"duration_s"`
	Machine   map[string]any `json:"machine"`
	Options   map[string]any `json:"options"`
	Hugepages bool           `json:"hugepages"`
	TSCHz     uint64         `json:"tsc_hz"`
	BestRTT   float64        `json:"core_rtt_best_ns"`
	// The generator looped on one net_ring port: its own ceiling, Mpps.
	Ceiling map[string]float64 `json:"generator_ceiling_mpps,omitempty"`
	Rows    []row              `json:"rows"`
	Others  []otherRow         `json:"other_builds,omitempty"`
	Tables  []tableResult      `json:"tables"`
	Notes   []string           `json:"notes,omitempty"`
}

type tableResult struct {
	Routes int `json:"routes"`
	// ferryd from start until ready to forward, with the routes loaded by
	// ferryctl -batch after start (and the batch alone), or inline in the
	// config; the best of the runs.
	FerrydBatchReadyS  float64 `json:"ferryd_batch_ready_s,omitempty"`
	FerrydBatchS       float64 `json:"ferryd_batch_s,omitempty"`
	FerrydInlineReadyS float64 `json:"ferryd_inline_ready_s,omitempty"`
	// The cache-line round trip between the two CPUs before and after
	// the table's turns.
	RTTBefore float64 `json:"core_rtt_before_ns"`
	RTTAfter  float64 `json:"core_rtt_after_ns"`
	// The generator's report: every turn of every device.
	Generator json.RawMessage `json:"generator,omitempty"`
	Runs      []*dutRun       `json:"runs"`
	report    *genReport
}

// noteLoad keeps the fastest start of ferryd for each way of loading.
func (t *tableResult) noteLoad(r *dutRun) {
	better := func(cur, v float64) float64 {
		if cur == 0 || v < cur {
			return v
		}
		return cur
	}
	switch r.Load {
	case "batch":
		t.FerrydBatchReadyS = better(t.FerrydBatchReadyS, r.StartS)
		t.FerrydBatchS = better(t.FerrydBatchS, r.LoadS)
	case "inline":
		t.FerrydInlineReadyS = better(t.FerrydInlineReadyS, r.StartS)
	}
}

// row compares the devices on one table and traffic case. Rates are
// frames per second received back by the generator over a turn's window;
// all devices ran one pipeline core, so they are also rates per core. A
// device's rate is the median of its turns; a ratio is the median of the
// ratios within each round, whose turns ran seconds apart.
type row struct {
	Routes        int       `json:"routes"`
	Case          string    `json:"case"`
	SourceMpps    float64   `json:"source_mpps"`
	FerrydMpps    float64   `json:"ferryd_mpps"`
	L3fwdMpps     float64   `json:"l3fwd_mpps"`
	FerrydCycles  float64   `json:"ferryd_cycles_per_pkt"` // TSC Hz / pps
	L3fwdCycles   float64   `json:"l3fwd_cycles_per_pkt"`
	FerrydRan     float64   `json:"ferryd_cycles_per_pkt_ran"` // × the share of the window its thread ran
	L3fwdRan      float64   `json:"l3fwd_cycles_per_pkt_ran"`
	FerrydVsL3fwd float64   `json:"ferryd_vs_l3fwd"`
	RatioLow      float64   `json:"ferryd_vs_l3fwd_low"` // lowest and highest round
	RatioHigh     float64   `json:"ferryd_vs_l3fwd_high"`
	FerrydVsSrc   float64   `json:"ferryd_vs_source"`
	L3fwdVsSrc    float64   `json:"l3fwd_vs_source"`
	FerrydLoss    float64   `json:"ferryd_loss"` // the most of any turn
	L3fwdLoss     float64   `json:"l3fwd_loss"`
	MinShare      float64   `json:"min_cpu_share"` // least CPU any loop of the row got
	CoreRTT       float64   `json:"core_rtt_ns"`   // slowest cache-line round trip around the table's turns
	SourceRounds  []float64 `json:"source_mpps_rounds"`
	FerrydRounds  []float64 `json:"ferryd_mpps_rounds"`
	L3fwdRounds   []float64 `json:"l3fwd_mpps_rounds"`
	RatioRounds   []float64 `json:"ferryd_vs_l3fwd_rounds"`
}

// otherRow is another build (a -dut LABEL=BINARY) on one table and case,
// against the main ones.
type otherRow struct {
	Routes   int       `json:"routes"`
	Case     string    `json:"case"`
	Label    string    `json:"label"`
	Mpps     float64   `json:"mpps"`
	Rounds   []float64 `json:"mpps_rounds"`
	VsFerryd float64   `json:"vs_ferryd"` // medians of each round's ratio
	VsL3fwd  float64   `json:"vs_l3fwd"`
}

func (o options) public() map[string]any {
	return map[string]any{"tables": o.tables, "dut": o.duts, "cases": o.cases, "duration": o.duration.String(),
		"warmup": o.warmup.String(), "rest": o.rest.String(), "retries": o.retries, "rounds": o.rounds, "gateways": o.gateways, "min_share": o.minShare, "seed": o.seed,
		"hugepages": o.huge, "boost": o.boost, "settle": o.settle.String(), "rtt_max_ns": o.rttMax, "ferryd_load": o.ferrydLoad, "gen_cpu": o.genCPU, "dut_cpu": o.dutCPU, "cores": o.ncores, "dut_cpus": o.dutCPUList, "gen_cpus": o.genCPUList}
}

func machineInfo() map[string]any {
	m := map[string]any{"cpus": runtime.NumCPU(), "go": runtime.Version()}
	if model := cpuinfo("model name"); model != "" {
		m["cpu_model"] = model
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m["kernel"] = strings.TrimSpace(string(b))
	}
	if out, err := exec.Command("pkg-config", "--modversion", "libdpdk").Output(); err == nil {
		m["dpdk"] = strings.TrimSpace(string(out))
	}
	if out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		rev := strings.TrimSpace(string(out))
		if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
			rev += "+dirty"
		}
		m["ferry_commit"] = rev
	}
	return m
}

// median of v (0 for none).
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// turnsOf are one case's turns on a table, by device and round.
type turnsOf map[string]map[int]*genCase

// rates returns dut's Mpps per round, in round order.
func (ts turnsOf) rates(dut string, rounds []int) []float64 {
	var out []float64
	for _, r := range rounds {
		if c := ts[dut][r]; c != nil && c.RxPPS > 0 {
			out = append(out, c.RxPPS/1e6)
		}
	}
	return out
}

// ratios returns a/b within each round both have a turn in.
func (ts turnsOf) ratios(a, b string, rounds []int) []float64 {
	var out []float64
	for _, r := range rounds {
		ca, cb := ts[a][r], ts[b][r]
		if ca != nil && cb != nil && ca.RxPPS > 0 && cb.RxPPS > 0 {
			out = append(out, ca.RxPPS/cb.RxPPS)
		}
	}
	return out
}

// compute fills the comparison rows from the turns.
func (res *results) compute() {
	for ti := range res.Tables {
		t := &res.Tables[ti]
		if t.report == nil {
			continue
		}
		if res.TSCHz == 0 {
			res.TSCHz = t.report.TSCHz
		}
		hz := float64(res.TSCHz)
		var order []string
		byCase := map[string]turnsOf{}
		roundSet := map[int]bool{}
		for i := range t.report.Cases {
			c := &t.report.Cases[i]
			ts := byCase[c.Case]
			if ts == nil {
				ts = turnsOf{}
				byCase[c.Case] = ts
				order = append(order, c.Case)
			}
			if ts[c.Label] == nil {
				ts[c.Label] = map[int]*genCase{}
			}
			ts[c.Label][c.Round] = c
			roundSet[c.Round] = true
		}
		var rounds []int
		for r := range roundSet {
			rounds = append(rounds, r)
		}
		sort.Ints(rounds)
		for _, name := range order {
			ts := byCase[name]
			rw := row{Routes: t.Routes, Case: name, MinShare: 1, CoreRTT: max(t.RTTBefore, t.RTTAfter)}
			for _, byRound := range ts {
				for _, c := range byRound {
					if c.GenShare > 0 {
						rw.MinShare = min(rw.MinShare, c.GenShare)
					}
					if c.DUT != nil {
						rw.MinShare = min(rw.MinShare, c.DUT.CPUShare)
					}
				}
			}
			rw.SourceRounds = ts.rates(dutSource, rounds)
			rw.SourceMpps = median(rw.SourceRounds)
			// dutFigures fills a device's median rate, cycles per packet
			// (also scaled by the median CPU share it got) and worst loss.
			dutFigures := func(dut string, rates *[]float64, mpps, cycles, ran, loss *float64) {
				*rates = ts.rates(dut, rounds)
				if *mpps = median(*rates); *mpps == 0 {
					return
				}
				*cycles = hz / (*mpps * 1e6)
				var shares []float64
				for _, c := range ts[dut] {
					if c.DUT != nil {
						shares = append(shares, c.DUT.CPUShare)
					}
					*loss = max(*loss, c.LossRatio)
				}
				if len(shares) > 0 {
					*ran = *cycles * median(shares)
				}
			}
			dutFigures(dutFerryd, &rw.FerrydRounds, &rw.FerrydMpps, &rw.FerrydCycles, &rw.FerrydRan, &rw.FerrydLoss)
			dutFigures(dutL3fwd, &rw.L3fwdRounds, &rw.L3fwdMpps, &rw.L3fwdCycles, &rw.L3fwdRan, &rw.L3fwdLoss)
			rw.RatioRounds = ts.ratios(dutFerryd, dutL3fwd, rounds)
			rw.FerrydVsL3fwd = median(rw.RatioRounds)
			if len(rw.RatioRounds) > 0 {
				rw.RatioLow, rw.RatioHigh = slices.Min(rw.RatioRounds), slices.Max(rw.RatioRounds)
			}
			rw.FerrydVsSrc = median(ts.ratios(dutFerryd, dutSource, rounds))
			rw.L3fwdVsSrc = median(ts.ratios(dutL3fwd, dutSource, rounds))
			res.Rows = append(res.Rows, rw)
			var others []string
			for label := range ts {
				if label != dutSource && label != dutFerryd && label != dutL3fwd {
					others = append(others, label)
				}
			}
			sort.Strings(others)
			for _, label := range others {
				o := otherRow{Routes: t.Routes, Case: name, Label: label, Rounds: ts.rates(label, rounds)}
				o.Mpps = median(o.Rounds)
				o.VsFerryd = median(ts.ratios(label, dutFerryd, rounds))
				o.VsL3fwd = median(ts.ratios(label, dutL3fwd, rounds))
				res.Others = append(res.Others, o)
			}
		}
	}
}

func tableLabel(routes int) string {
	if routes >= 1000 {
		return fmt.Sprintf("%dk", routes/1000)
	}
	return fmt.Sprint(routes)
}

// text renders the comparison table.
func (res *results) text() string {
	var b bytes.Buffer
	// Results from before -cores hold no "cores": one core each.
	cores := "Mpps per core (one pipeline core"
	if n, ok := res.Options["cores"].(float64); ok && n > 1 {
		cores = fmt.Sprintf("Mpps of %v pipeline cores together (a memif queue pair and a generator loop each", n)
	} else if n, ok := res.Options["cores"].(int); ok && n > 1 {
		cores = fmt.Sprintf("Mpps of %d pipeline cores together (a memif queue pair and a generator loop each", n)
	}
	fmt.Fprintf(&b, "ferry benchmark %s: %s, net_memif, %s), TSC %.3f GHz\n",
		res.Started, cores, map[bool]string{true: "hugepages", false: "no hugepages"}[res.Hugepages], float64(res.TSCHz)/1e9)
	fmt.Fprintf(&b, "the devices take turns on the same core, each turn %v after %v of warm-up, the others stopped meanwhile;\n", res.Options["duration"], res.Options["warmup"])
	fmt.Fprintf(&b, "a rate is the median of a device's %v turns; a ratio the median of the ratios within each round (whose turns\n", res.Options["rounds"])
	fmt.Fprintf(&b, "ran seconds apart), 'range' its lowest and highest round; 'src' is the source limit (the generator looped through a\n")
	fmt.Fprintf(&b, "bare reflector); cycles/pkt = TSC Hz / pps on the device core; 'min CPU share' the least of its core any loop of the row\n")
	fmt.Fprintf(&b, "got in a turn; 'core RTT' the slower cache-line round trip between the two CPUs before and after the table (best seen: %.0f ns)\n", res.BestRTT)
	if len(res.Ceiling) > 0 {
		var cs []string
		for _, k := range []string{"single@64", "uniform@64"} {
			if v, ok := res.Ceiling[k]; ok {
				cs = append(cs, fmt.Sprintf("%s %.2f Mpps", k, v))
			}
		}
		fmt.Fprintf(&b, "generator alone on a net_ring loop (no memif, no device): %s\n", strings.Join(cs, ", "))
	}
	b.WriteString("\n")
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "routes\ttraffic\tsource\tferryd\tl3fwd\tferryd/l3fwd\trange\tferryd/src\tl3fwd/src\tferryd cyc/pkt\tl3fwd cyc/pkt\tmin CPU share\tcore RTT ns\t")
	f := func(v float64, format string) string {
		if v == 0 {
			return "-"
		}
		return fmt.Sprintf(format, v)
	}
	for _, r := range res.Rows {
		rng := "-"
		if r.RatioHigh > 0 {
			rng = fmt.Sprintf("%.2f-%.2f", r.RatioLow, r.RatioHigh)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.2f\t%s\t\n", tableLabel(r.Routes), r.Case,
			f(r.SourceMpps, "%.2f"), f(r.FerrydMpps, "%.2f"), f(r.L3fwdMpps, "%.2f"),
			f(r.FerrydVsL3fwd, "%.2f"), rng, f(r.FerrydVsSrc, "%.2f"), f(r.L3fwdVsSrc, "%.2f"),
			f(r.FerrydCycles, "%.0f"), f(r.L3fwdCycles, "%.0f"), r.MinShare, f(r.CoreRTT, "%.0f"))
	}
	w.Flush()
	if len(res.Others) > 0 {
		b.WriteString("\nother builds, in the same turns:\n")
		w = tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(w, "routes\ttraffic\tbuild\tMpps\tvs ferryd\tvs l3fwd\t")
		for _, o := range res.Others {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t\n", tableLabel(o.Routes), o.Case, o.Label,
				f(o.Mpps, "%.2f"), f(o.VsFerryd, "%.3f"), f(o.VsL3fwd, "%.2f"))
		}
		w.Flush()
	}
	for _, t := range res.Tables {
		if t.FerrydBatchReadyS > 0 || t.FerrydInlineReadyS > 0 {
			fmt.Fprintf(&b, "\nferryd start to ready with %s routes: %s with ferryctl -batch (the batch alone %s), %s with routes: in the config",
				tableLabel(t.Routes), secs(t.FerrydBatchReadyS), secs(t.FerrydBatchS), secs(t.FerrydInlineReadyS))
		}
		for _, r := range t.Runs {
			if r.Error != "" {
				fmt.Fprintf(&b, "\nFAILED %s on %s routes: %s", r.DUT, tableLabel(t.Routes), firstLine(r.Error))
			}
		}
		if t.report == nil && len(t.Runs) > 0 {
			fmt.Fprintf(&b, "\nno measurements on %s routes", tableLabel(t.Routes))
		}
	}
	b.WriteString("\n")
	for _, n := range res.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	return b.String()
}

func secs(v float64) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f s", v)
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// render redraws the table and chart of a results file into its directory.
func render(path string, log *zap.Logger) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if filepath.Base(path) == "device.json" {
		var dr deviceResults
		if err := json.Unmarshal(b, &dr); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		return dr.write(filepath.Dir(path), log)
	}
	var res results
	if err := json.Unmarshal(b, &res); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for i := range res.Tables {
		if raw := res.Tables[i].Generator; len(raw) > 0 {
			rep := &genReport{}
			if err := json.Unmarshal(raw, rep); err != nil {
				return fmt.Errorf("%s: generator report of table %d: %w", path, i, err)
			}
			res.Tables[i].report = rep
		}
	}
	return res.write(filepath.Dir(path), log)
}

// write prints the table and stores latest.json, latest.txt and latest.png.
func (res *results) write(dir string, log *zap.Logger) error {
	txt := res.text()
	fmt.Print("\n" + txt)
	js, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	for name, data := range map[string][]byte{"latest.json": append(js, '\n'), "latest.txt": []byte(txt)} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return err
		}
	}
	png := filepath.Join(dir, "latest.png")
	if err := res.chart(png); err != nil {
		log.Warn("no chart", zap.Error(err))
	}
	log.Info("results written", zap.String("json", filepath.Join(dir, "latest.json")), zap.String("png", png),
		zap.String("logs", filepath.Join(dir, "logs")))
	return nil
}

// chart draws Mpps per table and traffic case with gnuplot.
func (res *results) chart(path string) error {
	gp, err := exec.LookPath("gnuplot")
	if err != nil {
		return fmt.Errorf("gnuplot not installed (make deps installs gnuplot-nox): %w", err)
	}
	var data bytes.Buffer
	limit, _ := res.Options["rtt_max_ns"].(float64)
	slow := false
	for _, r := range res.Rows {
		mark := ""
		if limit > 0 && r.CoreRTT > limit {
			mark, slow = " *", true
		}
		fmt.Fprintf(&data, "\"%s %s%s\" %.3f %.3f %.3f\n", tableLabel(r.Routes), r.Case, mark, r.SourceMpps, r.FerrydMpps, r.L3fwdMpps)
	}
	title := "ferry forwarding over net_memif, " + res.Started + " (routes, traffic@frame size)"
	if slow {
		title += fmt.Sprintf("\\n* measured while the core-to-core round trip was above %.0f ns", limit)
	}
	f, err := os.CreateTemp("", "ferry-bench-*.dat")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data.Bytes()); err != nil {
		f.Close()
		return err
	}
	f.Close()
	script := fmt.Sprintf(`set terminal pngcairo size 1200,650 font "sans,10" noenhanced
set output %q
set title "%s"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set ylabel "Mpps (one core)"
set yrange [0:*]
set grid ytics
set xtics rotate by -35 scale 0
set key top right
plot %q using 2:xtic(1) title "source limit", '' using 3 title "ferryd", '' using 4 title "l3fwd --lookup=fib"
`, path, title, f.Name())
	cmd := exec.Command(gp)
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("gnuplot: %w: %s", err, bytes.TrimSpace(out))
	}
	return nil
}
