package main

import (
	"fmt"
	"strings"

	"ferry/cmd/internal/cli"
	"ferry/dpdk/pktgen"
)

// genGroup is one device's generator: a loop per queue, each on its own
// CPU, as a device with several pipelines needs one per pipeline to be
// the bottleneck itself. With one queue it is the single loop.
type genGroup struct {
	gens []*pktgen.Generator
	cpus []int
}

func (g *genGroup) Start() error {
	for i, x := range g.gens {
		if err := x.Start(g.cpus[i%len(g.cpus)]); err != nil {
			for _, y := range g.gens[:i] {
				y.Stop()
			}
			return fmt.Errorf("queue %d: %w", i, err)
		}
	}
	return nil
}

func (g *genGroup) Stop() {
	for _, x := range g.gens {
		x.Stop()
	}
}

// Counters adds up every loop's.
func (g *genGroup) Counters() pktgen.Counters {
	var s pktgen.Counters
	for _, x := range g.gens {
		c := x.Counters()
		s.TxPkts += c.TxPkts
		s.TxBytes += c.TxBytes
		s.TxFull += c.TxFull
		s.AllocFail += c.AllocFail
		s.RxPkts += c.RxPkts
		s.RxBytes += c.RxBytes
		s.RxOther += c.RxOther
		s.RxBack += c.RxBack
		s.Loops += c.Loops
		s.IdleLoops += c.IdleLoops
		s.TSC += c.TSC
	}
	return s
}

// ThreadIDs are the loops' threads, queue by queue.
func (g *genGroup) ThreadIDs() []int {
	ids := make([]int, len(g.gens))
	for i, x := range g.gens {
		ids[i] = x.ThreadID()
	}
	return ids
}

func (g *genGroup) Free() {
	for _, x := range g.gens {
		x.Free()
	}
}

// splitDestinations deals a template's destinations out to n queues, in
// turn, so that each queue carries its own flows as RSS would give them.
func splitDestinations(dsts []uint32, n int) [][]uint32 {
	out := make([][]uint32, n)
	if len(dsts) < n {
		for q := range out {
			out[q] = dsts
		}
		return out
	}
	for i, d := range dsts {
		out[i%n] = append(out[i%n], d)
	}
	return out
}

// parseCPUs reads --cpus: a comma-separated list, one CPU a queue (or
// fewer, reused in turn); empty means cpu for every queue.
func parseCPUs(s string, cpu int) ([]int, error) {
	if strings.TrimSpace(s) == "" {
		return []int{cpu}, nil
	}
	out, err := cli.CPUList(s)
	if err != nil {
		return nil, fmt.Errorf("--cpus %w", err)
	}
	return out, nil
}
