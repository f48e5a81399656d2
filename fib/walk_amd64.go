//go:build amd64.v3 && !race

package fib

// walkNodes is walkNodesGo in assembly (walk_amd64.s), with the
// instructions of x86-64-v3 (BMI2, POPCNT) and the prefetches inline: the
// compiled walk takes about twice the instructions, as the compiler spills
// and reloads around the levels and Go has no prefetch but a call. Its
// plain load of a top-level entry is the atomic load the
// compiled walk makes (x86 does not reorder loads with loads), but the race
// detector cannot see it order the node reads after it: race builds take
// the compiled walk.
//
//go:noescape
func walkNodes(w *walk) int
