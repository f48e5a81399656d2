package main

import (
	"fmt"
	"net"
	"os"
	"syscall"
	"time"
	"unsafe"
)

// sdNotify tells systemd (Type=notify) the daemon's state: READY=1 once
// ports are up and routes loaded, RELOADING=1 and STOPPING=1. Without
// NOTIFY_SOCKET (not under systemd) it does nothing.
func sdNotify(state string) error {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		return nil
	}
	if addr[0] == '@' {
		addr = "\x00" + addr[1:] // an abstract socket
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	defer conn.Close()
	conn.SetWriteDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte(state)); err != nil {
		return fmt.Errorf("sd_notify %q: %w", state, err)
	}
	return nil
}

// monotonicUsec is CLOCK_MONOTONIC in microseconds, which RELOADING=1
// carries (MONOTONIC_USEC) for systemd to match the reload's end.
func monotonicUsec() int64 {
	var ts [2]int64
	if err := clockMonotonic(&ts); err != nil {
		return 0
	}
	return ts[0]*1e6 + ts[1]/1e3
}

func clockMonotonic(ts *[2]int64) error {
	_, _, e := syscall.RawSyscall(syscall.SYS_CLOCK_GETTIME, 1, uintptr(unsafe.Pointer(ts)), 0)
	if e != 0 {
		return e
	}
	return nil
}
