package e2e

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"ferry/pipeline"
)

// udpFrame is an Ethernet frame from srcMAC to dstMAC carrying a UDP
// datagram (no UDP checksum) from src to dst:port, its IPv4 header
// checksum broken when badSum.
func udpFrame(dstMAC, srcMAC net.HardwareAddr, src, dst net.IP, port uint16, payload []byte, badSum bool) []byte {
	b := make([]byte, 14+20+8+len(payload))
	copy(b, dstMAC)
	copy(b[6:], srcMAC)
	binary.BigEndian.PutUint16(b[12:], 0x0800)
	ip := b[14:34]
	ip[0], ip[8], ip[9] = 0x45, 64, 17
	binary.BigEndian.PutUint16(ip[2:], uint16(20+8+len(payload)))
	copy(ip[12:], src.To4())
	copy(ip[16:], dst.To4())
	binary.BigEndian.PutUint16(ip[10:], pipeline.Checksum(ip))
	if badSum {
		ip[11] ^= 0x5a
	}
	udp := b[34:]
	binary.BigEndian.PutUint16(udp[0:], 40000)
	binary.BigEndian.PutUint16(udp[2:], port)
	binary.BigEndian.PutUint16(udp[4:], uint16(8+len(payload)))
	copy(udp[8:], payload)
	return b
}

// sendFrames writes frames onto ifname in namespace ns through a packet
// socket: frames no host stack would send.
func sendFrames(t *testing.T, ns, ifname string, frames [][]byte) {
	t.Helper()
	err := inNetns(t, ns, func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		fd, err := syscall.Socket(syscall.AF_PACKET, syscall.SOCK_RAW, 0)
		if err != nil {
			return err
		}
		defer syscall.Close(fd)
		to := &syscall.SockaddrLinklayer{Ifindex: ifi.Index, Halen: 6}
		for _, f := range frames {
			if err := syscall.Sendto(fd, f, 0, to); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("send frames on %s: %v", ifname, err)
	}
}

// linkJSON is a port as 'link show -json' gives it.
type linkJSON struct {
	Name       string   `json:"ifname"`
	MAC        string   `json:"address"`
	RxOffloads []string `json:"rx_offloads"`
}

// link is ferryd's port name as 'link show' reports it.
func (r *router) link(name string) linkJSON {
	r.t.Helper()
	var links []linkJSON
	if err := json.Unmarshal([]byte(r.mustCtl("-json", "link", "show")), &links); err != nil {
		r.t.Fatal(err)
	}
	for _, l := range links {
		if l.Name == name {
			return l
		}
	}
	r.t.Fatalf("no port %s in link show", name)
	return linkJSON{}
}

// counterSum is counter name summed over the pipelines.
func (r *router) counterSum(name string) uint64 {
	var n uint64
	for _, c := range r.coreCounters() {
		n += c[name]
	}
	return n
}

// An IPv4 header with a wrong checksum is dropped and counted, whether the
// device (a tap checks it once asked to) or ferryd finds it wrong; the
// same datagrams with a right one are forwarded.
func TestHeaderChecksumEndToEnd(t *testing.T) {
	r, a, b, taps := twoHosts(t, "")
	port0 := r.link("port0")
	if !slices.Contains(port0.RxOffloads, "ipv4_cksum") {
		t.Errorf("port0, a tap, runs without the IPv4 checksum offload: %+v", port0)
	}
	if log, _ := os.ReadFile(r.logf); !strings.Contains(string(log), "device checks IPv4 header checksums") {
		t.Errorf("the log does not say the taps check IPv4 header checksums:\n%s", log)
	}
	// B's address is resolved through a ping, so that nothing waits on
	// ARP when the datagrams come.
	if out, err := a.run(t, "ping", "-c", "1", "-W", "2", "198.51.100.2"); err != nil {
		t.Fatalf("ping A→B: %v\n%s", err, out)
	}
	const port, each = 9998, 5
	var got atomic.Int64
	pc := b.listenUDP(t, fmt.Sprintf("198.51.100.2:%d", port))
	go func() {
		buf := make([]byte, 2048)
		for {
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if string(buf[:n]) == "checksum" {
				got.Add(1)
			}
		}
	}()
	var aMAC net.HardwareAddr
	if err := inNetns(t, a.name, func() error {
		ifi, err := net.InterfaceByName(taps[0])
		if err != nil {
			return err
		}
		aMAC = ifi.HardwareAddr
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	rMAC, err := net.ParseMAC(port0.MAC)
	if err != nil {
		t.Fatal(err)
	}
	src, dst := net.IPv4(192, 0, 2, 2), net.IPv4(198, 51, 100, 2)
	var frames [][]byte
	for range each {
		frames = append(frames,
			udpFrame(rMAC, aMAC, src, dst, port, []byte("checksum"), true),
			udpFrame(rMAC, aMAC, src, dst, port, []byte("checksum"), false))
	}
	drops := r.counterSum("drop_ip_checksum")
	sendFrames(t, a.name, taps[0], frames)
	if !waitUntil(5*time.Second, func() bool { return got.Load() >= each && r.counterSum("drop_ip_checksum")-drops >= each }) {
		t.Fatalf("%d of %d datagrams with a right checksum arrived, %d with a wrong one dropped", got.Load(), each, r.counterSum("drop_ip_checksum")-drops)
	}
	time.Sleep(200 * time.Millisecond)
	if n, d := got.Load(), r.counterSum("drop_ip_checksum")-drops; n != each || d != each {
		t.Fatalf("%d datagrams arrived and %d were dropped for their checksum, want %d and %d", n, d, each, each)
	}
}
