package fib

import "unsafe"

// prefetch asks for the cache lines at addrs[:n] without waiting for them.
// A load in their place (a touch) would wait to retire until its line came:
// the reorder buffer then fills a few dozen touches into a pass and stops
// further misses from starting, where prefetches retire at once and let a
// whole pass's misses be in flight together.
//
//go:noescape
func prefetch(addrs *unsafe.Pointer, n int)
