//go:build amd64.v3

package fib

// walkNodes is walkNodesGo in assembly (walk_amd64.s), with the
// instructions of x86-64-v3 (BMI2, POPCNT) and prefetches inline: about
// half the instructions the compiled walk takes, which keeps the
// variables of all three levels in registers but cannot prefetch without
// a call.
//
//go:noescape
func walkNodes(w *walk) int
