package e2e

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// inNetns runs fn on a thread inside namespace name: sockets fn makes stay
// in that namespace after it returns, so one test process can be every host.
func inNetns(t *testing.T, name string, fn func() error) error {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	self, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", syscall.Gettid()))
	if err != nil {
		return err
	}
	defer self.Close()
	target, err := os.Open(filepath.Join("/var/run/netns", name))
	if err != nil {
		return err
	}
	defer target.Close()
	if err := setns(target.Fd()); err != nil {
		return fmt.Errorf("enter netns %s: %w", name, err)
	}
	ferr := fn()
	if err := setns(self.Fd()); err != nil {
		// The thread cannot go back: let it die with the goroutine.
		runtime.LockOSThread()
		return fmt.Errorf("leave netns %s: %w", name, err)
	}
	return ferr
}

// setns(2)'s number: the syscall package does not name it.
var sysSetns = map[string]uintptr{"amd64": 308, "arm64": 268, "386": 346}[runtime.GOARCH]

func setns(fd uintptr) error {
	if sysSetns == 0 {
		return fmt.Errorf("setns: unknown on %s", runtime.GOARCH)
	}
	if _, _, e := syscall.RawSyscall(sysSetns, fd, syscall.CLONE_NEWNET, 0); e != 0 {
		return e
	}
	return nil
}

// flowBytes is flow i's stream: the same for sender and receiver.
func flowBytes(i, n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(uint64(i), 0xfe77))
	for k := range b {
		b[k] = byte(r.Uint32())
	}
	return b
}

// coreCounters reads 'stats -per-core'.
func (r *router) coreCounters() []map[string]uint64 {
	r.t.Helper()
	var per []struct {
		Counters map[string]uint64 `json:"counters"`
	}
	if err := json.Unmarshal([]byte(r.mustCtl("-json", "stats", "-per-core")), &per); err != nil {
		r.t.Fatal(err)
	}
	out := make([]map[string]uint64, len(per))
	for i := range per {
		out[i] = per[i].Counters
	}
	return out
}

type queueJSON struct {
	Queue     int    `json:"queue"`
	Lcore     int    `json:"lcore"`
	RxPackets uint64 `json:"rx_packets"`
	TxPackets uint64 `json:"tx_packets"`
}

// queues reads each port's per-queue counters from 'link show -s'.
func (r *router) queues() [][]queueJSON {
	r.t.Helper()
	var links []struct {
		Queues []queueJSON `json:"queues"`
	}
	if err := json.Unmarshal([]byte(r.mustCtl("-json", "link", "show", "-s")), &links); err != nil {
		r.t.Fatal(err)
	}
	out := make([][]queueJSON, len(links))
	for i := range links {
		out[i] = links[i].Queues
	}
	return out
}

// TestMultiCoreEndToEnd runs two pipeline lcores on one CPU between hosts
// A (port0) and B and C (port1, bridged in B). net_tap cannot hash, so
// flows reach the two queues by the kernel's tap queue selection.
func TestMultiCoreEndToEnd(t *testing.T) {
	needRoot(t)
	cpu := pipelineCore()
	taps := [2]string{uniq("fmc"), uniq("fmd")}
	cfg := fmt.Sprintf(`eal: ["--no-huge", "-m", "512", "--no-pci", "--file-prefix", "%s", "--lcores", "0@0,1@%d,2@%d"]
cores: [1, 2]
api: "@SOCKET@"
ports:
  - name: port0
    dev: "net_tap0,iface=%s"
    addresses: ["192.0.2.1/24"]
  - name: port1
    dev: "net_tap1,iface=%s"
    addresses: ["198.51.100.1/24"]
routes:
  - "203.0.113.0/24 via 198.51.100.2 dev port1"
`, uniq("fymc"), cpu, cpu, taps[0], taps[1])
	r := startRouter(t, cfg)
	a := newNetns(t, uniq("fmA"))
	b := newNetns(t, uniq("fmB"))
	c := newNetns(t, uniq("fmC"))
	attach(t, taps[0], a, "192.0.2.2/24", "192.0.2.1")
	// B bridges port1's segment to C: two gateways for 203.0.113.10,
	// which both hold.
	waitLink(t, taps[1])
	must(t, "ip", "link", "set", taps[1], "netns", b.name)
	b.must(t, "ip", "link", "add", "br0", "type", "bridge")
	b.must(t, "ip", "link", "add", "vb", "type", "veth", "peer", "name", "vc")
	b.must(t, "ip", "link", "set", "vc", "netns", c.name)
	b.must(t, "ip", "link", "set", taps[1], "master", "br0")
	b.must(t, "ip", "link", "set", "vb", "master", "br0")
	for _, l := range []string{taps[1], "vb", "br0"} {
		b.must(t, "ip", "link", "set", l, "up")
	}
	b.must(t, "ip", "addr", "add", "198.51.100.2/24", "dev", "br0")
	c.must(t, "ip", "addr", "add", "198.51.100.3/24", "dev", "vc")
	c.must(t, "ip", "link", "set", "vc", "up")
	for _, h := range []*netns{b, c} {
		h.must(t, "ip", "addr", "add", "203.0.113.10/32", "dev", "lo")
		h.must(t, "ip", "route", "add", "default", "via", "198.51.100.1")
	}
	if out, err := a.run(t, "ping", "-c", "3", "-i", "0.2", "-W", "2", "198.51.100.2"); err != nil {
		t.Fatalf("ping A→B: %v\n%s", err, out)
	}
	if ps := r.queues(); len(ps) != 2 || len(ps[0]) != 2 || ps[0][0].Lcore != 1 || ps[0][1].Lcore != 2 {
		t.Fatalf("link show -s: want 2 ports of 2 queues on lcores 1 and 2, got %+v", ps)
	}

	// Each pipeline runs Go code all the time and holds a runtime P: the
	// control plane keeps Ps of its own (one per other CPU, and a spare),
	// or it would take turns with the pipelines on theirs.
	var st struct {
		Runtime struct {
			GoMaxProcs int `json:"gomaxprocs"`
		} `json:"runtime"`
	}
	if err := json.Unmarshal([]byte(r.mustCtl("-json", "stats")), &st); err != nil {
		t.Fatal(err)
	}
	if want := 2 + max(runtime.NumCPU()-1, 1) + 1; st.Runtime.GoMaxProcs != want {
		t.Errorf("GOMAXPROCS %d with 2 pipelines on a %d-CPU machine, want %d", st.Runtime.GoMaxProcs, runtime.NumCPU(), want)
	}

	t.Run("TCPFlowsIntact", func(t *testing.T) {
		before := r.coreCounters()
		tcpFlows(t, a, b, "198.51.100.2", 7100, 12, 1<<20)
		after := r.coreCounters()
		for core := range after {
			fwd := after[core]["forwarded"] - before[core]["forwarded"]
			t.Logf("core %d forwarded %d packets of the TCP flows", core, fwd)
			if fwd < 100 {
				t.Errorf("core %d forwarded %d packets: the flows did not reach both pipelines\n%s", core, fwd, r.mustCtl("stats", "-per-core"))
			}
		}
	})

	t.Run("ARPLearntOnOneCoreServesBoth", func(t *testing.T) {
		// A forgets the router and the router A: A's ARP request for its
		// gateway reaches one pipeline, whose entry must then serve the
		// replies both pipelines send.
		r.mustCtl("neigh", "flush", "dev", "port0")
		a.must(t, "ip", "neigh", "flush", "all")
		var st0 struct{ Allocs uint64 }
		json.Unmarshal([]byte(r.mustCtl("-json", "neigh", "stats")), &st0)
		q0 := r.queues()[0]
		if out, err := a.run(t, "ping", "-c", "1", "-W", "2", "198.51.100.2"); err != nil {
			t.Fatalf("ping after flush: %v\n%s", err, out)
		}
		// Several flows, so both pipelines send to A.
		tcpFlows(t, a, b, "198.51.100.2", 7200, 12, 256<<10)
		var st1 struct{ Allocs uint64 }
		json.Unmarshal([]byte(r.mustCtl("-json", "neigh", "stats")), &st1)
		q1 := r.queues()[0]
		n, ok := r.neighState("192.0.2.2")
		if !ok || n.LLAddr == "" {
			t.Fatalf("router has no entry for A:\n%s", r.mustCtl("neigh", "show"))
		}
		if got := st1.Allocs - st0.Allocs; got > 1 {
			t.Errorf("%d neighbour entries made for A where one serves every core\n%s", got, r.mustCtl("neigh", "show"))
		}
		for q := range q1 {
			sent := q1[q].TxPackets - q0[q].TxPackets
			t.Logf("queue %d sent %d packets to A", q, sent)
			if sent == 0 {
				t.Errorf("queue %d sent nothing to A: the entry did not serve both pipelines", q)
			}
		}
	})

	t.Run("RouteReplacedMidTransferOnBothCores", func(t *testing.T) {
		const flows, count = 12, 1500
		type arrival struct {
			seq  uint32
			atC  bool
			good bool
		}
		var mu sync.Mutex
		got := make([][]arrival, flows)
		recv := func(host *netns, atC bool) {
			pc := host.listenUDP(t, "203.0.113.10:9000")
			// The reader shares a CPU with everything else here: a
			// buffer that holds the whole stream keeps its stalls from
			// counting as the router's losses.
			forceRcvBuf(t, pc, 8<<20)
			go func() {
				buf := make([]byte, 2048)
				for {
					n, _, err := pc.ReadFrom(buf)
					if err != nil {
						return
					}
					if n < 8 {
						continue
					}
					flow, seq := binary.BigEndian.Uint32(buf), binary.BigEndian.Uint32(buf[4:])
					if flow >= flows {
						continue
					}
					good := bytes.Equal(buf[8:n], udpPayload(flow, seq))
					mu.Lock()
					got[flow] = append(got[flow], arrival{seq, atC, good})
					mu.Unlock()
				}
			}()
		}
		recv(b, false)
		recv(c, true)
		conns := make([]net.PacketConn, flows)
		for i := range conns {
			conns[i] = a.listenUDP(t, fmt.Sprintf("192.0.2.2:%d", 41000+i))
		}
		// The new gateway is resolved beforehand: what is measured is the
		// decisions of both cores, not how many packets wait for an ARP
		// reply (TestReleasedNeighbourQueueKeepsFlowOrder keeps those in
		// order).
		if out, err := a.run(t, "ping", "-c", "1", "-W", "2", "198.51.100.3"); err != nil {
			t.Fatalf("ping A→C: %v\n%s", err, out)
		}
		dst := &net.UDPAddr{IP: net.IPv4(203, 0, 113, 10), Port: 9000}
		before := r.coreCounters()
		replaced := make(chan error, 1)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		msg := make([]byte, 8+udpPayloadLen)
		for seq := uint32(0); seq < count; seq++ {
			<-tick.C
			if seq == count/2 {
				go func() {
					out, err := r.ctl("route", "replace", "203.0.113.0/24", "via", "198.51.100.3", "dev", "port1")
					if err != nil {
						err = fmt.Errorf("route replace: %v\n%s", err, out)
					}
					replaced <- err
				}()
			}
			// The last quarter goes after the replace, however long
			// ferryctl took.
			if seq == 3*count/4 {
				if err := <-replaced; err != nil {
					t.Fatal(err)
				}
			}
			for f := uint32(0); f < flows; f++ {
				binary.BigEndian.PutUint32(msg, f)
				binary.BigEndian.PutUint32(msg[4:], seq)
				copy(msg[8:], udpPayload(f, seq))
				if _, err := conns[f].WriteTo(msg, dst); err != nil {
					t.Fatalf("flow %d: send %d: %v", f, seq, err)
				}
			}
		}
		waitUntil(10*time.Second, func() bool {
			mu.Lock()
			defer mu.Unlock()
			for _, g := range got {
				if len(g) < count {
					return false
				}
			}
			return true
		})
		after := r.coreCounters()
		mu.Lock()
		defer mu.Unlock()
		// The two receivers run apart, so their arrivals interleave
		// freely: each host's share must be in order, and the old
		// gateway's all before the new one's.
		for f := range got {
			var last [2]int64
			last[0], last[1] = -1, -1
			atB, atC := 0, 0
			minC, maxB := int64(count), int64(-1)
			for _, ar := range got[f] {
				h := 0
				if ar.atC {
					h, atC, minC = 1, atC+1, min(minC, int64(ar.seq))
				} else {
					atB, maxB = atB+1, max(maxB, int64(ar.seq))
				}
				if !ar.good {
					t.Errorf("flow %d: datagram %d corrupted", f, ar.seq)
				}
				if int64(ar.seq) <= last[h] {
					t.Errorf("flow %d: datagram %d after %d at %s (out of order)", f, ar.seq, last[h], []string{"B", "C"}[h])
				}
				last[h] = int64(ar.seq)
			}
			if maxB > minC {
				t.Errorf("flow %d: datagram %d went to the old gateway after %d went to the new one", f, maxB, minC)
			}
			if len(got[f]) != count {
				t.Errorf("flow %d: %d of %d datagrams arrived", f, len(got[f]), count)
			}
			if atB == 0 || atC == 0 {
				t.Errorf("flow %d: %d datagrams at the old gateway, %d at the new: the replace did not take effect mid-flow", f, atB, atC)
			}
		}
		if t.Failed() {
			t.Log(r.mustCtl("stats", "-per-core"))
			t.Log(r.mustCtl("link", "show", "-s"))
			for _, h := range []*netns{b, c} {
				out, _ := h.run(t, "nstat", "-az", "UdpRcvbufErrors", "UdpInErrors", "UdpInDatagrams")
				t.Logf("%s: %s", h.name, out)
			}
		}
		for core := range after {
			fwd := after[core]["forwarded"] - before[core]["forwarded"]
			t.Logf("core %d forwarded %d datagrams", core, fwd)
			if fwd < count {
				t.Errorf("core %d forwarded %d datagrams: the UDP flows did not reach both pipelines", core, fwd)
			}
		}
	})

	t.Run("MTUBeyondBuffersRefused", func(t *testing.T) {
		out, err := r.ctl("knob", "set", "dev", "port1", "mtu", "9000")
		if err == nil || !strings.Contains(out, "packet buffers hold 2048") {
			t.Fatalf("mtu 9000 on 2048-byte buffers: %v\n%s", err, out)
		}
		if out := r.mustCtl("link", "show"); !strings.Contains(out, "port1: mtu 1500") {
			t.Fatalf("a refused MTU changed the port:\n%s", out)
		}
	})

	t.Run("SIGTERMStopsAllPipelines", func(t *testing.T) {
		if err := r.stop(); err != nil {
			t.Fatalf("ferryd exit after SIGTERM: %v", err)
		}
		log, _ := os.ReadFile(r.logf)
		if !strings.Contains(string(log), `"pipelines": 2`) || !strings.Contains(string(log), "ferryd stopped cleanly") {
			t.Fatalf("ferryd did not report both pipelines stopped:\n%s", log)
		}
	})
}

// tcpFlows runs flows TCP connections from one host to addr:port.. on
// another, each sending size bytes of its own, and checks every byte
// arrived as sent.
func tcpFlows(t *testing.T, from, to *netns, addr string, port, flows, size int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, 2*flows)
	for i := 0; i < flows; i++ {
		hostPort := net.JoinHostPort(addr, strconv.Itoa(port+i))
		var ln net.Listener
		if err := inNetns(t, to.name, func() (err error) {
			ln, err = net.Listen("tcp4", hostPort)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		want := flowBytes(i, size)
		wg.Add(2)
		go func(i int) {
			defer wg.Done()
			defer ln.Close()
			conn, err := ln.Accept()
			if err != nil {
				errs <- err
				return
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(60 * time.Second))
			got, err := io.ReadAll(conn)
			if err != nil {
				errs <- fmt.Errorf("flow %d: read: %w", i, err)
				return
			}
			if !bytes.Equal(got, want) {
				errs <- fmt.Errorf("flow %d: %d of %d bytes arrived, not as sent", i, len(got), size)
			}
		}(i)
		go func(i int) {
			defer wg.Done()
			var conn net.Conn
			if err := inNetns(t, from.name, func() (err error) {
				conn, err = net.DialTimeout("tcp4", hostPort, 10*time.Second)
				return err
			}); err != nil {
				errs <- fmt.Errorf("flow %d: dial: %w", i, err)
				return
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(60 * time.Second))
			if _, err := conn.Write(want); err != nil {
				errs <- fmt.Errorf("flow %d: write: %w", i, err)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

const udpPayloadLen = 200

// udpPayload is what datagram seq of flow carries after its header.
func udpPayload(flow, seq uint32) []byte {
	b := make([]byte, udpPayloadLen)
	x := flow*2654435761 ^ seq*40503
	for i := range b {
		x = x*1103515245 + 12345
		b[i] = byte(x >> 16)
	}
	return b
}

// forceRcvBuf sets a socket's receive buffer past net.core.rmem_max
// (SO_RCVBUFFORCE, as root).
func forceRcvBuf(t *testing.T, pc net.PacketConn, n int) {
	t.Helper()
	raw, err := pc.(*net.UDPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	raw.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, n)
	})
	if serr != nil {
		t.Fatalf("SO_RCVBUFFORCE: %v", serr)
	}
}
