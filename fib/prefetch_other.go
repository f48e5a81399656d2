//go:build !amd64

package fib

import "unsafe"

// prefetch is a hint only: without an instruction for it here, the walk's
// own loads bring the lines in.
func prefetch(addrs *unsafe.Pointer, n int) {}
