package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"
)

// churnWindow is how long each rate sample of a churn run covers.
const churnWindow = 100 * time.Millisecond

// churnRow is one ferryd's run of the churn mode: its forwarding rate
// before, while and after the whole table is replaced.
type churnRow struct {
	Device   string    `json:"device"`
	Round    int       `json:"round"`
	Before   []float64 `json:"before_mpps"` // a rate per window
	During   []float64 `json:"during_mpps"`
	After    []float64 `json:"after_mpps"`
	LoadS    float64   `json:"load_s"`    // ferryctl -batch of the table, traffic flowing
	ReplaceS float64   `json:"replace_s"` // ferryctl -batch of the replacement
	Error    string    `json:"error,omitempty"`
}

type churnResults struct {
	Started string     `json:"started"`
	Routes  int        `json:"routes"`
	Frames  int        `json:"frames"` // distinct frames, so destinations, of the replay
	Rows    []churnRow `json:"rows"`
	Notes   []string   `json:"notes,omitempty"`
}

// runChurn measures each ferryd forwarding device-bound (uniform
// destinations from a pcap replay, a null port out) while every route of
// the largest table is replaced by one through another gateway, as when a
// BGP peer fails over to another (both resolved): what the control
// plane's work on a full table costs the pipeline. Each ferryd runs
// alone, rounds alternating the order; the rates are taken in windows of
// churnWindow from the output port's counter, through DPDK's telemetry.
func (b *bench) runChurn(ctx context.Context, tables []*routeTable) error {
	t := tables[len(tables)-1]
	dir := filepath.Join(b.work, "churn")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	c := deviceCase{Case: "uniform", Frames: b.o.churnFrames, pcap: filepath.Join(dir, "uniform.pcap")}
	if err := b.writeCasePcap(t, c); err != nil {
		return err
	}
	replace := filepath.Join(dir, "replace.batch")
	if err := replaceBatch(t.Batch, replace, gateway(t.Gateways)); err != nil {
		return err
	}
	var duts []dutSpec
	for _, d := range b.duts {
		if d.kind == dutFerryd {
			duts = append(duts, d)
		}
	}
	if len(duts) == 0 {
		return fmt.Errorf("-mode churn: no ferryd among -dut")
	}
	res := &churnResults{Started: time.Now().UTC().Format(time.RFC3339), Routes: t.Routes, Frames: c.Frames}
	for round := 0; round < b.o.rounds; round++ {
		order := slices.Clone(duts)
		if round%2 == 1 {
			slices.Reverse(order)
		}
		for _, d := range order {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			b.log.Info("churn run", zap.String("device", d.label), zap.Int("round", round+1), zap.Int("routes", t.Routes))
			row := b.churnRun(ctx, t, c, replace, d, round)
			if row.Error != "" {
				b.note("%s, churn round %d: %s", d.label, round+1, row.Error)
			}
			res.Rows = append(res.Rows, row)
		}
	}
	res.Notes = b.notes
	bs, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(b.o.out, "churn.json"), append(bs, '\n'), 0o644); err != nil {
		return err
	}
	txt := res.table()
	fmt.Print(txt)
	return os.WriteFile(filepath.Join(b.o.out, "churn.txt"), []byte(txt), 0o644)
}

// replaceBatch writes the batch that replaces every route of the batch in
// src by one through gateway gw.
func replaceBatch(src, dst, gw string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(out)
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 || f[0] != "route" || f[1] != "add" {
			continue
		}
		f[1] = "replace"
		for i := 2; i+1 < len(f); i++ {
			if f[i] == "via" {
				f[i+1] = gw
			}
		}
		fmt.Fprintln(w, strings.Join(f, " "))
	}
	if err := sc.Err(); err != nil {
		out.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// churnRun starts ferryd d with the table, lets it warm up, and samples
// its rate for a turn before the replacement, while it runs, and for a
// turn after.
func (b *bench) churnRun(ctx context.Context, t *routeTable, c deviceCase, replace string, d dutSpec, round int) churnRow {
	row := churnRow{Device: d.label, Round: round + 1}
	tag := fmt.Sprintf("churn-%s-%d", d.label, round+1)
	r := &dutRun{Routes: t.Routes, DUT: d.label, LogDir: filepath.Join(b.o.out, "logs", tag), spec: d}
	work := filepath.Join(b.work, tag)
	if err := os.MkdirAll(r.LogDir, 0o755); err != nil {
		row.Error = err.Error()
		return row
	}
	if err := os.MkdirAll(work, 0o755); err != nil {
		row.Error = err.Error()
		return row
	}
	devs := portDevs{dev: [2]string{fmt.Sprintf("net_pcap0,rx_pcap=%s,infinite_rx=1", c.pcap), "net_null1,no-rx=1"}, mbufs: 65535}
	p, err := b.startFerryd(ctx, t, tag, devs, work, r, false)
	if p != nil {
		defer p.stop(20 * time.Second)
	}
	row.LoadS = r.LoadS
	if err != nil {
		row.Error = firstLine(err.Error())
		return row
	}
	b.ferrydSettled(ctx, r)
	if err := sleepCtx(ctx, b.o.warmup); err != nil {
		row.Error = err.Error()
		return row
	}
	if row.Before, err = sampleRates(ctx, r.prefix, b.o.duration, nil); err != nil {
		row.Error = err.Error()
		return row
	}
	// The new gateway is resolved before its routes come, as the old one
	// is: the replacement changes every route's decision, no packet waits.
	if out, err := exec.CommandContext(ctx, b.ferryctl, "--socket", r.api, "neigh", "replace", gateway(t.Gateways),
		"lladdr", genRxMAC, "dev", "port1", "nud", "permanent").CombinedOutput(); err != nil {
		row.Error = fmt.Sprintf("neigh replace: %v: %s", err, strings.TrimSpace(string(out)))
		return row
	}
	cmd := exec.CommandContext(ctx, b.ferryctl, "--socket", r.api, "-batch", replace)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		row.Error = err.Error()
		return row
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	row.During, err = sampleRates(ctx, r.prefix, 0, done)
	row.ReplaceS = time.Since(start).Seconds()
	if err != nil {
		row.Error = err.Error()
		return row
	}
	if row.After, err = sampleRates(ctx, r.prefix, b.o.duration, nil); err != nil {
		row.Error = err.Error()
	}
	return row
}

// sampleRates takes the output port's rate in churnWindow windows, for d,
// or until done delivers (the command's result, an error if it failed).
func sampleRates(ctx context.Context, prefix string, d time.Duration, done <-chan error) ([]float64, error) {
	var rates []float64
	n0, err := ethOpackets(prefix, 1)
	if err != nil {
		return nil, err
	}
	begin := time.Now()
	t0 := begin
	for {
		select {
		case <-ctx.Done():
			return rates, ctx.Err()
		case err := <-done:
			if err != nil {
				return rates, fmt.Errorf("ferryctl -batch: %w", err)
			}
			return rates, nil
		case <-time.After(churnWindow):
		}
		n1, err := ethOpackets(prefix, 1)
		if err != nil {
			return rates, err
		}
		t1 := time.Now()
		rates = append(rates, float64(n1-n0)/t1.Sub(t0).Seconds()/1e6)
		n0, t0 = n1, t1
		if d > 0 && t1.Sub(begin) >= d {
			return rates, nil
		}
	}
}

// table renders the churn results: per run, the median rates before,
// during and after the replacement, the slowest window during it, and
// how long the replacement took.
func (res *churnResults) table() string {
	var w strings.Builder
	fmt.Fprintf(&w, "Forwarding while every route of the table (%d routes) is replaced by one through another gateway\n", res.Routes)
	fmt.Fprintf(&w, "(ferryctl -batch): device-bound, uniform destinations (%d frames), one core; rates in Mpps over %v windows.\n\n", res.Frames, churnWindow)
	fmt.Fprintf(&w, "%-16s %5s %8s %8s %8s %8s %10s %7s\n", "device", "round", "before", "during", "slowest", "after", "replace s", "load s")
	for _, r := range res.Rows {
		if r.Error != "" {
			fmt.Fprintf(&w, "%-16s %5d   error: %s\n", r.Device, r.Round, r.Error)
			continue
		}
		before, _ := medianSpread(r.Before)
		during, _ := medianSpread(r.During)
		after, _ := medianSpread(r.After)
		slowest := 0.0
		if len(r.During) > 0 {
			slowest = slices.Min(r.During)
		}
		fmt.Fprintf(&w, "%-16s %5d %8.2f %8.2f %8.2f %8.2f %10.2f %7.2f\n", r.Device, r.Round, before, during, slowest, after, r.ReplaceS, r.LoadS)
	}
	for _, n := range res.Notes {
		fmt.Fprintf(&w, "\nnote: %s", n)
	}
	if len(res.Notes) > 0 {
		w.WriteString("\n")
	}
	return w.String()
}
