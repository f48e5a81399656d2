package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"go.uber.org/zap"
)

// The generator and the device talk through shared cache lines (memif ring
// indices, descriptors, buffers), so the time a cache line takes to go from
// one CPU to the other bounds what both can do. On a virtual machine that
// time is the host's business: it was seen to change fivefold for minutes
// at a time, taking every device's rate with it. The benchmark measures it
// before and after each run, waits a little for a fast phase, and reports it.

// pingPongNs bounces a cache line between CPUs a and b and returns the
// median round trip in nanoseconds over a few batches.
func pingPongNs(a, b int) (float64, error) {
	type line struct {
		v uint64
		_ [56]byte
	}
	var ping, pong line
	const rounds = 20000
	var samples []float64
	for batch := 0; batch < 5; batch++ {
		atomic.StoreUint64(&ping.v, 0)
		atomic.StoreUint64(&pong.v, 0)
		errc := make(chan error, 1)
		go func() {
			runtime.LockOSThread()
			if err := pin(b); err != nil {
				errc <- err
				return
			}
			errc <- nil
			for i := uint64(1); i <= rounds; i++ {
				for atomic.LoadUint64(&ping.v) != i {
				}
				atomic.StoreUint64(&pong.v, i)
			}
		}()
		if err := <-errc; err != nil {
			return 0, err
		}
		runtime.LockOSThread()
		if err := pin(a); err != nil {
			return 0, err
		}
		t0 := time.Now()
		for i := uint64(1); i <= rounds; i++ {
			atomic.StoreUint64(&ping.v, i)
			for atomic.LoadUint64(&pong.v) != i {
			}
		}
		samples = append(samples, float64(time.Since(t0).Nanoseconds())/rounds)
		runtime.UnlockOSThread()
	}
	sort.Float64s(samples)
	return samples[len(samples)/2], nil
}

func pin(cpu int) error {
	var set [16]uint64
	set[cpu/64] |= 1 << (cpu % 64)
	_, _, e := syscall.RawSyscall(syscall.SYS_SCHED_SETAFFINITY, 0, uintptr(len(set)*8), uintptr(unsafe.Pointer(&set[0])))
	if e != 0 {
		return fmt.Errorf("pin to cpu %d: %w", cpu, e)
	}
	return nil
}

// probeMain is the child side of probe: "-probe-rtt A,B" prints the round
// trip in nanoseconds.
func probeMain(spec string) int {
	a, b, ok := strings.Cut(spec, ",")
	ca, err1 := strconv.Atoi(a)
	cb, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil {
		fmt.Fprintln(os.Stderr, "ferry-bench: -probe-rtt wants two CPUs, e.g. 0,1")
		return 2
	}
	ns, err := pingPongNs(ca, cb)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ferry-bench:", err)
		return 1
	}
	fmt.Printf("%.1f\n", ns)
	return 0
}

// settle probes before a run and, while the round trip is well above the
// best seen, waits for it to come back, within a total budget for the
// whole benchmark. It returns the last measurement.
func (b *bench) settle(ctx context.Context, tag string) float64 {
	const pause = 3 * time.Second
	waited := time.Duration(0)
	for {
		rtt, err := b.probe(ctx)
		if err != nil {
			b.log.Warn("core-to-core probe failed", zap.Error(err))
			return 0
		}
		b.noteRTT(rtt)
		// Same-socket x86 cores answer in 50-200 ns; far above that, or
		// far above the best seen, the host has moved or crowded them.
		slow := rtt > b.o.rttMax || rtt > 2*b.bestRTT && rtt > b.bestRTT+100
		if !slow || b.waitBudget <= 0 || ctx.Err() != nil {
			if slow {
				b.log.Warn("core-to-core round trip still slow, running anyway", zap.String("run", tag),
					zap.Float64("rtt_ns", rtt), zap.Float64("best_ns", b.bestRTT))
			} else if waited > 0 {
				b.log.Info("core-to-core round trip back to normal", zap.String("run", tag), zap.Float64("rtt_ns", rtt), zap.Duration("waited", waited))
			}
			return rtt
		}
		if waited == 0 {
			b.log.Info("core-to-core round trip slow, waiting", zap.String("run", tag), zap.Float64("rtt_ns", rtt), zap.Float64("best_ns", b.bestRTT))
		}
		if sleepCtx(ctx, pause) != nil {
			return rtt
		}
		waited += pause
		b.waitBudget -= pause
	}
}

// noteRTT keeps the fastest round trip seen.
func (b *bench) noteRTT(rtt float64) {
	if b.bestRTT == 0 || rtt < b.bestRTT {
		b.bestRTT = rtt
	}
}

// probe measures the round trip in a child process in its own session with
// the benchmark's boost: unboosted spinning threads on a busy machine
// measure the scheduler, not the caches.
func (b *bench) probe(ctx context.Context) (float64, error) {
	self, err := os.Executable()
	if err != nil {
		return 0, err
	}
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(cctx, self, "-probe-rtt", fmt.Sprintf("%d,%d", b.o.genCPU, b.o.dutCPU))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGKILL}
	var out strings.Builder
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	if b.o.boost != 0 {
		// The child spins only once its Go runtime is up, well after this.
		os.WriteFile(fmt.Sprintf("/proc/%d/autogroup", cmd.Process.Pid), []byte(strconv.Itoa(b.o.boost)), 0)
	}
	if err := cmd.Wait(); err != nil {
		return 0, fmt.Errorf("core-to-core probe: %w", err)
	}
	return strconv.ParseFloat(strings.TrimSpace(out.String()), 64)
}
