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
// transparent huge pages: on later faults for the whole capacity
// (MADV_HUGEPAGE), and now (MADV_COLLAPSE) for what s holds, not its room.
// A lookup touches a random node of a multi-megabyte arena, and with 4 KB
// pages nearly every one would also miss the TLB. The memory stays the Go
// heap's; failure (no THP, an old kernel) only costs speed.
func hugeArena[T any](s []T) {
	var zero T
	if b := hugeRange(unsafe.Pointer(unsafe.SliceData(s)), uintptr(cap(s))*unsafe.Sizeof(zero)); b != nil {
		_ = syscall.Madvise(b, madvHugepage)
	}
	if b := hugeRange(unsafe.Pointer(unsafe.SliceData(s)), uintptr(len(s))*unsafe.Sizeof(zero)); b != nil {
		_ = syscall.Madvise(b, madvCollapse)
	}
}

// hugeRange is the 2 MB-aligned part of the n bytes at base, nil when that
// is empty or the whole is under 4 MB.
func hugeRange(base unsafe.Pointer, n uintptr) []byte {
	if n < 4<<20 {
		return nil
	}
	p := uintptr(base)
	const huge = 2 << 20
	lo, hi := (p+huge-1)&^(huge-1), (p+n)&^(huge-1)
	if hi <= lo {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Add(base, lo-p)), hi-lo)
}
