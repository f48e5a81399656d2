package dpdk

/*
#include <stdlib.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include "shim.h"
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// MaxPorts is how many ports one pipeline polls.
const MaxPorts = C.FY_MAX_PORTS

// Port is an ethdev port.
type Port struct {
	ID   uint16
	Name string
}

// PortByName finds the port a device name (as given to --vdev or -a) made.
func PortByName(name string) (Port, error) {
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	var id C.uint16_t
	if ret := C.fy_port_by_name(cname, &id); ret != 0 {
		return Port{}, errorf(ret, "find port %q", name)
	}
	return Port{ID: uint16(id), Name: name}, nil
}

// PortConfig sets up a port.
type PortConfig struct {
	Queues int // rx and tx queues, one of each per pipeline core
	RxDesc int
	TxDesc int
	MTU    int
	Pool   *Pool
	RSSKey []byte // the Toeplitz key; nil for the symmetric one (0x6d5a repeated)
}

// RSS is what a port's set-up did about spreading flows over its queues.
type RSS struct {
	Driver string
	Queues int
	// Hash functions in use (RTE_ETH_RSS_* bits); 0 when the PMD does not
	// hash, or there is one queue.
	Hash uint64
	// RETA is the redirection table's size, spread evenly over the queues;
	// 0 when the PMD has none (or refused it: RETAErr).
	RETA    int
	RETAErr error
	KeySet  bool // the configured key is in use
}

// Spreads reports whether the port itself spreads flows over its queues.
func (r RSS) Spreads() bool { return r.Queues > 1 && r.Hash != 0 && r.RETA > 0 }

// SetupInfo is what a port's set-up did: how it spreads flows, and which
// receive offloads it turned on.
type SetupInfo struct {
	RSS
	// IPChecksum: the device checks IPv4 header checksums, and the receive
	// checks take its word for a right one instead of summing the header.
	IPChecksum bool
}

// RxOffloads names the receive offloads the set-up turned on, as DPDK
// does (rte_eth_dev_rx_offload_name), lower case.
func (s SetupInfo) RxOffloads() []string {
	if s.IPChecksum {
		return []string{"ipv4_cksum"}
	}
	return nil
}

// Setup configures and starts the port. All of its queues are set up
// before it starts, so no pipeline polls a queue that does not exist.
func (p Port) Setup(c PortConfig) (SetupInfo, error) {
	if c.Pool == nil {
		return SetupInfo{}, fmt.Errorf("port %s: no mbuf pool", p.Name)
	}
	var key *C.uint8_t
	if len(c.RSSKey) > 0 {
		key = (*C.uint8_t)(C.CBytes(c.RSSKey))
		defer C.free(unsafe.Pointer(key))
	}
	var info C.struct_fy_setup_info
	ret := C.fy_port_setup(C.uint16_t(p.ID), C.uint16_t(c.Queues), C.uint16_t(c.RxDesc), C.uint16_t(c.TxDesc), c.Pool.p, C.uint16_t(c.MTU),
		key, C.uint8_t(len(c.RSSKey)), &info)
	if ret != 0 {
		return SetupInfo{}, errorf(ret, "set up port %s (%d queues, mtu %d)", p.Name, c.Queues, c.MTU)
	}
	r := RSS{Driver: C.GoString(&info.driver[0]), Queues: c.Queues, Hash: uint64(info.hf), RETA: int(info.reta_size), KeySet: info.key_set != 0}
	if info.reta_err != 0 {
		r.RETAErr = errorf(info.reta_err, "write the RSS redirection table of port %s", p.Name)
	}
	return SetupInfo{RSS: r, IPChecksum: info.ip_csum != 0}, nil
}

// Stop stops and closes the port.
func (p Port) Stop() error {
	if ret := C.fy_port_stop(C.uint16_t(p.ID)); ret != 0 {
		return errorf(ret, "stop port %s", p.Name)
	}
	return nil
}

// Socket is the NUMA node the port's device is on; -1 when unknown (a
// virtual device).
func (p Port) Socket() int { return int(C.fy_port_socket(C.uint16_t(p.ID))) }

// MAC returns the port's Ethernet address.
func (p Port) MAC() ([6]byte, error) {
	var m [6]byte
	if ret := C.fy_port_mac(C.uint16_t(p.ID), (*C.uint8_t)(unsafe.Pointer(&m[0]))); ret != 0 {
		return m, errorf(ret, "read MAC of port %s", p.Name)
	}
	return m, nil
}

// Link returns speed in Mbit/s and whether the link is up.
func (p Port) Link() (speed uint32, up bool, err error) {
	var s C.uint32_t
	var u C.int
	if ret := C.fy_port_link(C.uint16_t(p.ID), &s, &u); ret != 0 {
		return 0, false, errorf(ret, "read link of port %s", p.Name)
	}
	return uint32(s), u != 0, nil
}

// SetMTU changes the port's MTU.
func (p Port) SetMTU(mtu int) error {
	if ret := C.fy_port_set_mtu(C.uint16_t(p.ID), C.uint16_t(mtu)); ret != 0 {
		return errorf(ret, "set MTU %d on port %s", mtu, p.Name)
	}
	return nil
}

// Stats are the PMD's port counters.
type Stats struct {
	RxPackets, TxPackets, RxBytes, TxBytes, RxMissed, RxErrors, TxErrors, RxNoMbuf uint64
}

// Stats reads the port counters.
func (p Port) Stats() (Stats, error) {
	var s C.struct_fy_port_stats
	if ret := C.fy_port_stats(C.uint16_t(p.ID), &s); ret != 0 {
		return Stats{}, errorf(ret, "read counters of port %s", p.Name)
	}
	return Stats{uint64(s.ipackets), uint64(s.opackets), uint64(s.ibytes), uint64(s.obytes),
		uint64(s.imissed), uint64(s.ierrors), uint64(s.oerrors), uint64(s.rx_nombuf)}, nil
}

// Hash functions of RSS (RTE_ETH_RSS_*), as RSS.Hash reports them.
const (
	RSSIPv4      = uint64(C.RTE_ETH_RSS_IPV4)
	RSSIPv4Other = uint64(C.RTE_ETH_RSS_NONFRAG_IPV4_OTHER)
	RSSIPv4TCP   = uint64(C.RTE_ETH_RSS_NONFRAG_IPV4_TCP)
	RSSIPv4UDP   = uint64(C.RTE_ETH_RSS_NONFRAG_IPV4_UDP)
)

// Headroom is the room DPDK keeps in front of a packet buffer's data.
const Headroom = C.RTE_PKTMBUF_HEADROOM
