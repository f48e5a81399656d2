package fib

import (
	"syscall"
	"unsafe"
)

// Linux madvise advice values the syscall package does not name.
const (
	madvHugepage = 14
	madvCollapse = 25 // Linux 6.1
)

// hugeArena asks the kernel to back the 2 MB-aligned part of s's array with
// transparent huge pages, now (MADV_COLLAPSE) and on later faults
// (MADV_HUGEPAGE): a lookup touches a random node of a multi-megabyte arena,
// and with 4 KB pages nearly every one would also miss the TLB. The memory
// stays the Go heap's; failure (no THP, an old kernel) only costs speed.
func hugeArena[T any](s []T) {
	var zero T
	n := uintptr(cap(s)) * unsafe.Sizeof(zero)
	if n < 4<<20 {
		return
	}
	base := unsafe.Pointer(unsafe.SliceData(s))
	p := uintptr(base)
	const huge = 2 << 20
	lo, hi := (p+huge-1)&^(huge-1), (p+n)&^(huge-1)
	if hi <= lo {
		return
	}
	b := unsafe.Slice((*byte)(unsafe.Add(base, lo-p)), hi-lo)
	_ = syscall.Madvise(b, madvHugepage)
	_ = syscall.Madvise(b, madvCollapse)
}
