package cache

import "time"

// Clock is the one time source the packet path, the neighbour subsystem
// and nexthop exceptions share; tests give a fake one and step it.
type Clock interface{ Now() time.Time }

// SystemClock is the real clock.
type SystemClock struct{}

func (SystemClock) Now() time.Time { return time.Now() }

// Nanos is c's time in the monotonic nanoseconds decisions and exceptions
// are stamped with.
func Nanos(c Clock) int64 { return int64(c.Now().Sub(epoch)) }
