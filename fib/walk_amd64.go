//go:build amd64 && !race

package fib

import "golang.org/x/sys/cpu"

// walkNodesAsm is walkNodesGo in assembly (walk_amd64.s), with BMI2 and
// POPCNT and the prefetches inline: the compiled walk takes about twice
// the instructions, as the compiler spills and reloads around the levels
// and Go has no prefetch but a call. Its plain load of a top-level entry
// is the atomic load the compiled walk makes (x86 does not reorder loads
// with loads), but the race detector cannot see it order the node reads
// after it: race builds take the compiled walk.
//
//go:noescape
func walkNodesAsm(w *walk) int

// walkAsm: the CPU has what the assembly uses. Checked at run time, so
// that a binary built for any x86-64 level (CPUs, or virtual machines,
// that hide one feature of x86-64-v3 get a v1 build) takes it.
var walkAsm = cpu.X86.HasBMI2 && cpu.X86.HasPOPCNT

func walkNodes(w *walk) int {
	if walkAsm {
		return walkNodesAsm(w)
	}
	return walkNodesGo(w)
}
