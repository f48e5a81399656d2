package main

import (
	"bufio"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"ferry/fib"
)

func TestMakeTable(t *testing.T) {
	tb, err := makeTable(t.TempDir(), 2000, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range tb.prefixes {
		if overlaps(p, port0Net) || overlaps(p, port1Net) {
			t.Fatalf("%s overlaps a port subnet", p)
		}
	}
	check := func(path, prefix string) {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		n := 0
		for sc := bufio.NewScanner(f); sc.Scan(); n++ {
			if !strings.HasPrefix(sc.Text(), prefix) {
				t.Fatalf("%s: line %q", path, sc.Text())
			}
		}
		if n != 2000 {
			t.Fatalf("%s: %d lines", path, n)
		}
	}
	check(tb.Batch, "route add ")
	check(tb.Config, "  - \"")
	check(tb.L3fwd, "R")
	// Deterministic: the same table every time.
	again, err := makeTable(t.TempDir(), 2000, 1)
	if err != nil {
		t.Fatal(err)
	}
	for i := range again.prefixes {
		if again.prefixes[i] != tb.prefixes[i] {
			t.Fatal("two tables of the same size differ")
		}
	}
}

// With -gateways, the routes go through the gateways in turn, in a file of
// their own.
func TestMakeTableGateways(t *testing.T) {
	dir := t.TempDir()
	one, err := makeTable(dir, 8, 1)
	if err != nil {
		t.Fatal(err)
	}
	tb, err := makeTable(dir, 8, 3)
	if err != nil {
		t.Fatal(err)
	}
	if tb.Batch == one.Batch || tb.Config == one.Config {
		t.Fatalf("tables over 1 and 3 gateways share %s", tb.Batch)
	}
	b, err := os.ReadFile(tb.Batch)
	if err != nil {
		t.Fatal(err)
	}
	for i, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if want := "via " + gateway(i%3) + " dev port1"; !strings.HasSuffix(line, want) {
			t.Fatalf("line %d: %q, want ...%s", i, line, want)
		}
	}
}

func TestOverlaps(t *testing.T) {
	for _, c := range []struct {
		p    fib.Prefix
		want bool
	}{
		{fib.Prefix{Addr: 0xc0000000, Len: 8}, true},   // 192/8 covers 192.0.2/24
		{fib.Prefix{Addr: 0xc0000200, Len: 24}, true},  // itself
		{fib.Prefix{Addr: 0xc0000280, Len: 25}, true},  // inside
		{fib.Prefix{Addr: 0xc0000300, Len: 24}, false}, // next door
		{fib.Prefix{}, true},                           // default
	} {
		if got := overlaps(c.p, port0Net); got != c.want {
			t.Errorf("overlaps(%s) = %v", c.p, got)
		}
	}
}

func TestCompute(t *testing.T) {
	var turns []genCase
	add := func(dut string, round int, mpps float64) {
		turns = append(turns, genCase{Case: "single@64", Label: dut, Round: round, RxPPS: mpps * 1e6, GenShare: 0.95})
	}
	// In round 2 the machine slowed l3fwd's turn: a ratio of medians
	// (5/8) would hide that each round's own ratio is mostly 0.5.
	add(dutSource, 1, 10)
	add(dutFerryd, 1, 4)
	add(dutL3fwd, 1, 8)
	add(dutL3fwd, 2, 6)
	add(dutFerryd, 2, 6)
	add(dutSource, 2, 9)
	add(dutSource, 3, 12)
	add(dutFerryd, 3, 5)
	add(dutL3fwd, 3, 10)
	add("ferryd.new", 1, 6)
	add("ferryd.new", 2, 6)
	add("ferryd.new", 3, 6)
	res := &results{Options: map[string]any{"rounds": 3}, Tables: []tableResult{{Routes: 16, RTTBefore: 100, RTTAfter: 120,
		report: &genReport{TSCHz: 2_000_000_000, Rounds: 3, Cases: turns}}}}
	res.compute()
	if len(res.Rows) != 1 {
		t.Fatalf("%d rows", len(res.Rows))
	}
	r := res.Rows[0]
	if r.SourceMpps != 10 || r.FerrydMpps != 5 || r.L3fwdMpps != 8 {
		t.Fatalf("medians: %+v", r)
	}
	if r.FerrydVsL3fwd != 0.5 || r.RatioLow != 0.5 || r.RatioHigh != 1 {
		t.Fatalf("paired ratio: %+v", r)
	}
	if r.FerrydCycles != 400 || r.L3fwdCycles != 250 || math.Abs(r.FerrydVsSrc-5.0/12) > 1e-9 {
		t.Fatalf("derived figures: %+v", r)
	}
	if !slices.Equal(r.FerrydRounds, []float64{4, 6, 5}) || r.CoreRTT != 120 || r.MinShare != 0.95 {
		t.Fatalf("rounds, RTT or share: %+v", r)
	}
	if len(res.Others) != 1 || res.Others[0].Mpps != 6 || res.Others[0].VsFerryd != 1.2 || res.Others[0].VsL3fwd != 0.75 {
		t.Fatalf("other build: %+v", res.Others)
	}
	if txt := res.text(); !strings.Contains(txt, "single@64") || !strings.Contains(txt, "0.50-1.00") || !strings.Contains(txt, "ferryd.new") {
		t.Fatalf("table lacks the case or the range:\n%s", txt)
	}
}

func TestChart(t *testing.T) {
	if _, err := exec.LookPath("gnuplot"); err != nil {
		t.Skip("gnuplot not installed")
	}
	res := &results{Started: "now", Options: map[string]any{"rtt_max_ns": 300.0}, Rows: []row{
		{Routes: 16, Case: "single@64", SourceMpps: 10, FerrydMpps: 5, L3fwdMpps: 8, CoreRTT: 100},
		{Routes: 900000, Case: "uniform@imix", SourceMpps: 9, FerrydMpps: 2, L3fwdMpps: 7, CoreRTT: 600},
	}}
	path := filepath.Join(t.TempDir(), "c.png")
	if err := res.chart(path); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Size() < 1000 {
		t.Fatalf("chart not written: %v", err)
	}
}

func TestParseDUTs(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "ferryd")
	if err := os.WriteFile(bin, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := parseDUTs("source, ferryd,l3fwd,ferryd.b=" + bin + ",ferryd+rules16,ferryd.b+rules1=" + bin + ",ferryd+burst64")
	if err != nil {
		t.Fatal(err)
	}
	want := []dutSpec{{"source", "source", "", 0, 0}, {"ferryd", "ferryd", "", 0, 0}, {"l3fwd", "l3fwd", "", 0, 0}, {"ferryd.b", "ferryd", bin, 0, 0},
		{"ferryd+rules16", "ferryd", "", 16, 0}, {"ferryd.b+rules1", "ferryd", bin, 1, 0}, {"ferryd+burst64", "ferryd", "", 0, 64}}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v", got)
	}
	for _, bad := range []string{"vpp", "ferryd,ferryd", "source=" + bin, "ferryd.b", "ferryd.b=/nonexistent/ferryd",
		"l3fwd+rules2", "ferryd+rules0", "ferryd+rules", "ferryd+x3", "ferryd.c+rules2", "ferryd+burst0", "ferryd+burst513"} {
		if _, err := parseDUTs(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestGCCycles(t *testing.T) {
	for _, c := range []struct {
		stats string
		want  uint64
		ok    bool
	}{
		{`{"counters":{},"runtime":{"gc_cycles":7,"heap_bytes":100}}`, 7, true},
		{`{"counters":{}}`, 0, false}, // a ferryd without the runtime section
		{`"not json"`, 0, false},
	} {
		got, ok := gcCycles(map[string]json.RawMessage{"stats": json.RawMessage(c.stats)})
		if got != c.want || ok != c.ok {
			t.Errorf("%s: %d %v, want %d %v", c.stats, got, ok, c.want, c.ok)
		}
	}
	if _, ok := gcCycles(map[string]json.RawMessage{}); ok {
		t.Error("no stats read as known")
	}
}

func TestPeriodicGCs(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want uint64
	}{{0, 1}, {119 * time.Second, 1}, {2 * time.Minute, 2}, {5 * time.Minute, 3}} {
		if got := periodicGCs(c.d); got != c.want {
			t.Errorf("%v: %d, want %d", c.d, got, c.want)
		}
	}
}

// The churn mode's replacement holds every route of the table, each
// through the new gateway.
func TestReplaceBatch(t *testing.T) {
	tb, err := makeTable(t.TempDir(), 500, 2)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "replace.batch")
	if err := replaceBatch(tb.Batch, dst, "198.51.100.9"); err != nil {
		t.Fatal(err)
	}
	src, _ := os.ReadFile(tb.Batch)
	got, _ := os.ReadFile(dst)
	want := strings.NewReplacer("route add ", "route replace ", "via 198.51.100.2 ", "via 198.51.100.9 ", "via 198.51.100.3 ", "via 198.51.100.9 ").Replace(string(src))
	if string(got) != want {
		t.Fatalf("replacement is not the table through 198.51.100.9:\n%.300s\nwant\n%.300s", got, want)
	}
	if n := strings.Count(string(got), "\n"); n != 500 {
		t.Fatalf("%d routes replaced, want 500", n)
	}
	if err := replaceBatch(filepath.Join(t.TempDir(), "none"), dst, "198.51.100.9"); err == nil {
		t.Fatal("a missing table gave no error")
	}
}

// The churn table reports the medians, the slowest window while the
// table was replaced, and a failed run's error.
func TestChurnTable(t *testing.T) {
	res := &churnResults{Routes: 900000, Frames: 1024, Rows: []churnRow{
		{Device: "ferryd", Round: 1, Before: []float64{30, 31, 29}, During: []float64{20, 5, 22, 21}, After: []float64{30}, ReplaceS: 3.25, LoadS: 7.5},
		{Device: "ferryd.old", Round: 1, Error: "ferryctl -batch: exit status 1"},
	}}
	txt := res.table()
	for _, want := range []string{
		"(900000 routes)",
		"uniform destinations (1024 frames)",
		"ferryd               1    30.00    20.50     5.00    30.00       3.25    7.50",
		"ferryd.old           1   error: ferryctl -batch: exit status 1",
	} {
		if !strings.Contains(txt, want) {
			t.Errorf("churn table lacks %q:\n%s", want, txt)
		}
	}
}

// The device table's ratio pairs each round's turns, which share the
// machine's phase: a slow phase in one round moves both devices.
func TestDeviceTableRatios(t *testing.T) {
	res := &deviceResults{Rounds: 3, TurnS: 2, CPUMHz: 2000, Rows: []deviceRow{
		{Routes: 16, Case: "uniform", Device: dutTestpmd, Mpps: []float64{90, 90, 90}},
		{Routes: 16, Case: "uniform", Device: dutFerryd, Mpps: []float64{20, 40, 30}},
		{Routes: 16, Case: "uniform", Device: dutL3fwd, Mpps: []float64{25, 50, 60}},
		{Routes: 16, Case: "single", Device: dutTestpmd, Mpps: []float64{50, 50, 50}},
		{Routes: 16, Case: "single", Device: dutFerryd, Mpps: []float64{48, 48, 48}},
		{Routes: 16, Case: "single", Device: dutL3fwd, Mpps: []float64{49, 49, 49}},
	}}
	for i := range res.Rows {
		res.Rows[i].Median, res.Rows[i].Spread = medianSpread(res.Rows[i].Mpps)
	}
	markSourceBound(res.Rows[:3])
	markSourceBound(res.Rows[3:])
	txt := res.table()
	// Rounds' ratios 0.8, 0.8, 0.5: median 0.8 (the medians' ratio, 30/50,
	// would be 0.6).
	if !strings.Contains(txt, "0.80  0.50-0.80") {
		t.Fatalf("uniform ratio not paired by round:\n%s", txt)
	}
	if !strings.Contains(txt, "(source-bound)") {
		t.Fatalf("single case not marked source-bound:\n%s", txt)
	}
	if q := roundRatios([]float64{1, 2}, []float64{1, 2, 3}, 3); q != nil {
		t.Fatalf("rounds missing a rate paired: %v", q)
	}
}

// A failed turn's note names its round, warm-up rounds apart from the
// counted ones.
func TestRoundName(t *testing.T) {
	for _, tc := range []struct {
		round, warm int
		want        string
	}{
		{-1, 1, "warm-up round 1"},
		{-2, 2, "warm-up round 1"},
		{-1, 2, "warm-up round 2"},
		{0, 1, "round 1"},
		{4, 0, "round 5"},
	} {
		if got := roundName(tc.round, tc.warm); got != tc.want {
			t.Errorf("roundName(%d, %d) = %q, want %q", tc.round, tc.warm, got, tc.want)
		}
	}
}
