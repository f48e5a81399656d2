package e2e

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"ferry/internal/bgptable"
)

// writeTable writes a BGP-like table of n prefixes as 'ip -batch' adds
// via gw with proto bgp, and the deletes of the same.
func writeTable(t *testing.T, n int, gw string) (add, del string) {
	t.Helper()
	dir := t.TempDir()
	var a, d strings.Builder
	for _, p := range bgptable.Generate(n, 1) {
		pfx := p.String()
		fmt.Fprintf(&a, "route add %s via %s proto bgp\n", pfx, gw)
		fmt.Fprintf(&d, "route del %s via %s proto bgp\n", pfx, gw)
	}
	add, del = filepath.Join(dir, "add"), filepath.Join(dir, "del")
	os.WriteFile(add, []byte(a.String()), 0o644)
	os.WriteFile(del, []byte(d.String()), 0o644)
	return add, del
}

// ipBatch runs 'ip -batch' in a namespace, for as long as it takes.
func ipBatch(t *testing.T, ns *netns, file string) {
	t.Helper()
	if out, err := exec.Command("ip", "-n", ns.name, "-batch", file).CombinedOutput(); err != nil {
		t.Fatalf("ip -n %s -batch %s: %v\n%.2000s", ns.name, file, err, out)
	}
}

// heapLive is ferryd's live heap after a full collection.
func (r *router) heapLive() uint64 {
	var st struct {
		HeapLive uint64 `json:"heap_live_bytes"`
	}
	json.Unmarshal([]byte(r.mustCtl("-json", "debug", "gc")), &st)
	return st.HeapLive
}

// A routing daemon loads and withdraws a full table through the mirror
// while a host streams through a stable route: nothing of the stream is
// lost (the control plane never starves the neighbour resolver or the
// pipeline).
func TestChurnDoesNotDisturbForwarding(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short: loads a full table into a kernel")
	}
	r, a, b, c := kernelPathRouter(t, "")
	const routes = 900000
	add, del := writeTable(t, routes, "198.51.100.2")

	rc := b.listenUDP(t, "198.51.100.2:9999")
	forceRcvBuf(t, rc, 8<<20)
	var got, outOfOrder atomic.Int64
	go func() {
		buf := make([]byte, 64)
		next := uint64(0)
		for {
			n, _, err := rc.ReadFrom(buf)
			if err != nil {
				return
			}
			if n >= 8 {
				// Out of order: after a later one. A loss is no reorder
				// of what follows it.
				if seq := binary.BigEndian.Uint64(buf); seq < next {
					outOfOrder.Add(1)
				} else {
					next = seq + 1
				}
				got.Add(1)
			}
		}
	}()
	sc := a.listenUDP(t, "192.0.2.2:0")
	stop := make(chan struct{})
	sentDone := make(chan int64)
	go func() {
		dst := &net.UDPAddr{IP: net.IPv4(198, 51, 100, 2), Port: 9999}
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		var seq int64
		msg := make([]byte, 64)
		for {
			select {
			case <-stop:
				sentDone <- seq
				return
			case <-tick.C:
			}
			for i := 0; i < 2; i++ { // 2,000 datagrams a second
				binary.BigEndian.PutUint64(msg, uint64(seq))
				if _, err := sc.WriteTo(msg, dst); err == nil {
					seq++
				}
			}
		}
	}()
	time.Sleep(500 * time.Millisecond)
	heap0 := r.heapLive()

	t0 := time.Now()
	ipBatch(t, c, add)
	if !waitUntil(120*time.Second, func() bool { return r.cpStatus().Routes >= routes }) {
		t.Fatalf("table not mirrored: %+v", r.cpStatus())
	}
	t.Logf("%d routes in the kernel and mirrored in %v", routes, time.Since(t0).Round(time.Second))
	t1 := time.Now()
	ipBatch(t, c, del)
	if !waitUntil(120*time.Second, func() bool { return r.cpStatus().Routes == 0 }) {
		t.Fatalf("withdrawal not mirrored: %+v", r.cpStatus())
	}
	t.Logf("withdrawn in %v", time.Since(t1).Round(time.Second))
	close(stop)
	sent := <-sentDone
	waitUntil(10*time.Second, func() bool { return got.Load() >= sent })
	st := r.cpStatus()
	t.Logf("mirror: %+v", st)
	if got.Load() != sent || outOfOrder.Load() != 0 {
		t.Errorf("stream through a stable route: %d of %d datagrams arrived, %d out of order\n%s", got.Load(), sent, outOfOrder.Load(), r.mustCtl("stats"))
		t.Log(r.mustCtl("link", "show", "-s"))
		for _, h := range []*netns{a, b} {
			out, _ := h.run(t, "ip", "-s", "link")
			t.Logf("%s:\n%s", h.name, out)
		}
	} else {
		t.Logf("stream through a stable route: all %d datagrams arrived in order", sent)
	}
	// What a full table leaves behind once withdrawn: the mirror's map
	// and batches shrink with it; the FIB keeps its trie nodes (stable,
	// so that readers never see one freed) and its arenas' room for the
	// next load, about 20 MB after 900k routes.
	if heap1 := r.heapLive(); heap1 > heap0+48<<20 {
		t.Errorf("live heap %d MB before the table, %d MB after it was withdrawn", heap0>>20, heap1>>20)
	} else {
		t.Logf("live heap %d MB before the table, %d MB after it was withdrawn", heap0>>20, heap1>>20)
	}
}
