package pipeline

import (
	"testing"
	"time"

	"ferry/netaddr"
)

func puntHarness(t *testing.T, rate int) *harness {
	return newHarness(t, func(sh *Dataplane) {
		if err := sh.EnablePunt(PuntConfig{Ports: []bool{true, true}, Queue: 64, Rate: rate, FrameLen: 1514}); err != nil {
			t.Fatal(err)
		}
	})
}

// drain takes every frame punted for port, in order.
func drainPunted(sh *Dataplane, port int) [][]byte {
	var out [][]byte
	for _, r := range sh.PuntRings(port) {
		for fr := r.Front(); fr != nil; fr = r.Front() {
			out = append(out, append([]byte(nil), fr...))
			r.Pop()
		}
	}
	return out
}

// What the data plane does not answer for the router goes to the port's
// kernel interface, as it came; echo requests and ARP requests it answers
// itself; ARP replies the kernel hears too.
func TestPuntToKernelInterface(t *testing.T) {
	h := puntHarness(t, 1000)
	h.permanent(0, ipA, macA)
	tcp := ipPacket(macR0, macA, ipA, ipR0, 64, ProtoTCP, make([]byte, 20))
	udp := ipPacket(macR0, macA, ipA, ipR0, 64, ProtoUDP, make([]byte, 8))
	ospf := ipPacket(netaddr.MAC{0x01, 0, 0x5e, 0, 0, 5}, macA, ipA, ip4(224, 0, 0, 5), 1, 89, make([]byte, 44))
	arpReply := arpFrame(2, macR0, macA, ipA, ipR0, macR0)
	out := h.burst(sent{0, tcp}, sent{0, udp}, sent{0, ospf}, sent{0, arpReply}, sent{0, echoRequest(macR0, macA, ipA, ipR0, 64, 7)})
	if len(out) != 1 || out[0].port != 0 || ipOf(out[0].frame)[20] != ICMPEchoReply {
		t.Fatalf("want only the echo reply sent, got %d frames", len(out))
	}
	got := drainPunted(h.sh, 0)
	want := [][]byte{tcp, udp, ospf, arpReply}
	if len(got) != len(want) {
		t.Fatalf("punted %d frames, want %d", len(got), len(want))
	}
	// ARP is handled a stage before IPv4: only a flow's order is kept.
	for i, w := range want {
		found := false
		for _, g := range got {
			found = found || string(g) == string(w)
		}
		if !found {
			t.Errorf("frame %d not punted as it came", i)
		}
	}
	if n := len(drainPunted(h.sh, 1)); n != 0 {
		t.Errorf("%d frames punted to the other port", n)
	}
	if h.counter(Punted) != 4 || h.counter(DropNoLocalHandler) != 0 {
		t.Errorf("punted %d, unhandled %d", h.counter(Punted), h.counter(DropNoLocalHandler))
	}
	select {
	case <-h.sh.PuntWake(0):
	default:
		t.Error("the port's writer was not woken")
	}
	if h.held() != 0 {
		t.Fatalf("%d buffers leaked", h.held())
	}
}

// A flood to the router's address is cut by the rate limit and counted,
// and forwarding goes on beside it.
func TestPuntFloodIsLimited(t *testing.T) {
	h := puntHarness(t, 10)
	h.permanent(1, ipB, macB)
	var in []sent
	for i := 0; i < 200; i++ {
		in = append(in, sent{0, ipPacket(macR0, macA, ipA, ipR0, 64, ProtoUDP, make([]byte, 8))})
	}
	in = append(in, sent{0, echoRequest(macR0, macA, ipA, ip4(203, 0, 113, 5), 64, 1)})
	out := h.burst(in...)
	if len(out) != 1 || out[0].port != 1 {
		t.Fatalf("the forwarded packet did not leave beside the flood (%d frames)", len(out))
	}
	punted := h.counter(Punted)
	if punted == 0 || punted > 64 || h.counter(DropPuntLimit)+h.counter(DropPuntQueueFull) != 200-punted {
		t.Fatalf("punted %d, dropped for the rate %d, queue full %d", punted, h.counter(DropPuntLimit), h.counter(DropPuntQueueFull))
	}
	st := h.sh.KernelPathStats()[0].Punted
	if st.Frames != punted || st.Limited != h.counter(DropPuntLimit) {
		t.Fatalf("port stats %+v against counters", st)
	}
	if h.held() != 0 {
		t.Fatalf("%d buffers leaked", h.held())
	}
}

// What the kernel sends out of a port's interface leaves on that port
// unchanged.
func TestInjectFromKernel(t *testing.T) {
	h := puntHarness(t, 1000)
	fr := ipPacket(macA, macR0, ipR0, ipA, 64, ProtoTCP, make([]byte, 100))
	if !h.sh.InjectRing(0).Push(fr) {
		t.Fatal("inject ring full")
	}
	h.step(time.Millisecond)
	out := h.burst()
	if len(out) != 1 || out[0].port != 0 || string(out[0].frame) != string(fr) {
		t.Fatalf("injected frame not sent as given: %d frames", len(out))
	}
	if h.counter(Injected) != 1 || h.sh.InjectRing(0).Len() != 0 {
		t.Fatalf("injected %d, %d left", h.counter(Injected), h.sh.InjectRing(0).Len())
	}
}

// Without a kernel path nothing changes: TCP to the router is dropped and
// UDP answered with port unreachable.
func TestNoPuntWithoutKernelPath(t *testing.T) {
	h := newHarness(t)
	h.permanent(0, ipA, macA)
	out := h.burst(sent{0, ipPacket(macR0, macA, ipA, ipR0, 64, ProtoUDP, make([]byte, 8))})
	if len(out) != 1 || ipOf(out[0].frame)[20] != ICMPDestUnreach {
		t.Fatalf("want port unreachable, got %d frames", len(out))
	}
	if h.sh.PuntRings(0) != nil || h.counter(Punted) != 0 {
		t.Fatal("punted without a kernel path")
	}
}
