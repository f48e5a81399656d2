package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"ferry/fib"
)

func TestMakeTable(t *testing.T) {
	tb, err := makeTable(t.TempDir(), 2000)
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
	again, err := makeTable(t.TempDir(), 2000)
	if err != nil {
		t.Fatal(err)
	}
	for i := range again.prefixes {
		if again.prefixes[i] != tb.prefixes[i] {
			t.Fatal("two tables of the same size differ")
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
	run := func(dut string, round int, pps float64) *dutRun {
		r := &dutRun{DUT: dut, Round: round, report: &genReport{TSCHz: 2_000_000_000, Cases: []genCase{{Case: "single@64", RxPPS: pps, GenShare: 0.95}}}}
		return r
	}
	res := &results{Options: map[string]any{"rounds": 2}, Tables: []tableResult{{Routes: 16, Runs: []*dutRun{
		run(dutSource, 1, 10e6), run(dutFerryd, 1, 4e6), run(dutL3fwd, 1, 8e6),
		run(dutL3fwd, 2, 7e6), run(dutFerryd, 2, 5e6), run(dutSource, 2, 9e6),
	}}}}
	res.compute()
	if len(res.Rows) != 1 {
		t.Fatalf("%d rows", len(res.Rows))
	}
	r := res.Rows[0]
	if r.SourceMpps != 10 || r.FerrydMpps != 5 || r.L3fwdMpps != 8 {
		t.Fatalf("best rounds: %+v", r)
	}
	if r.FerrydCycles != 400 || r.L3fwdCycles != 250 || r.FerrydVsL3fwd != 0.625 || r.FerrydVsSrc != 0.5 {
		t.Fatalf("derived figures: %+v", r)
	}
	if !strings.Contains(res.text(), "single@64") {
		t.Fatal("table lacks the case")
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
