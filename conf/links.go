package conf

import (
	"fmt"
	"strings"
)

// LinkStat is one port as 'link show' reports it.
type LinkStat struct {
	Name   string `json:"ifname"`
	Dev    string `json:"dev"`
	MAC    string `json:"address"`
	Up     bool   `json:"-"`
	Speed  uint32 `json:"speed_mbps"`
	MTU    int    `json:"mtu"`
	Driver string `json:"driver,omitempty"`
	// RxOffloads are the receive offloads the port's set-up turned on, in
	// DPDK's names, lower case.
	RxOffloads []string `json:"rx_offloads,omitempty"`
	RxPackets  uint64   `json:"-"`
	TxPackets  uint64   `json:"-"`
	RxBytes    uint64   `json:"-"`
	TxBytes    uint64   `json:"-"`
	RxMissed   uint64   `json:"-"`
	RxErrors   uint64   `json:"-"`
	TxErrors   uint64   `json:"-"`
	RxNoMbuf   uint64   `json:"-"`
	TxDropped  uint64   `json:"-"`
	// Queues are the port's queues, one a pipeline, as the pipelines
	// counted them.
	Queues []QueueStat `json:"queues"`
	// KernelIface is the port's kernel interface (in Netns) when the
	// control plane is on.
	KernelIface string `json:"kernel_iface,omitempty"`
	Netns       string `json:"netns,omitempty"`
}

// linkJSON is a port as `ip -j -s link show` gives an interface, with
// ferry's own fields beside.
type linkJSON struct {
	LinkStat
	Operstate string `json:"operstate"`
	LinkType  string `json:"link_type"`
	Stats64   struct {
		RX struct {
			Bytes   uint64 `json:"bytes"`
			Packets uint64 `json:"packets"`
			Errors  uint64 `json:"errors"`
			Dropped uint64 `json:"dropped"`
			NoMbuf  uint64 `json:"nombuf"`
		} `json:"rx"`
		TX struct {
			Bytes   uint64 `json:"bytes"`
			Packets uint64 `json:"packets"`
			Errors  uint64 `json:"errors"`
			Dropped uint64 `json:"dropped"`
		} `json:"tx"`
	} `json:"stats64"`
}

func toLinkJSON(l LinkStat) linkJSON {
	j := linkJSON{LinkStat: l, Operstate: "DOWN", LinkType: "ether"}
	if l.Up {
		j.Operstate = "UP"
	}
	j.Stats64.RX.Bytes, j.Stats64.RX.Packets, j.Stats64.RX.Errors, j.Stats64.RX.Dropped, j.Stats64.RX.NoMbuf = l.RxBytes, l.RxPackets, l.RxErrors, l.RxMissed, l.RxNoMbuf
	j.Stats64.TX.Bytes, j.Stats64.TX.Packets, j.Stats64.TX.Errors, j.Stats64.TX.Dropped = l.TxBytes, l.TxPackets, l.TxErrors, l.TxDropped
	return j
}

// QueueStat is one rx/tx queue pair of a port: the pipeline that polls it
// and what passed through.
type QueueStat struct {
	Queue     int    `json:"queue"`
	Lcore     int    `json:"lcore"`
	RxPackets uint64 `json:"rx_packets"`
	TxPackets uint64 `json:"tx_packets"`
	TxDropped uint64 `json:"tx_dropped"` // the queue was full
	RxDropped uint64 `json:"rx_dropped"` // frames in chained buffers
}

// LinkSource reports the data plane's ports.
type LinkSource interface {
	Links() []LinkStat
}

func (r *Router) linkShow(perQueue bool) (string, any, error) {
	links := r.Links.Links()
	var b strings.Builder
	for i, l := range links {
		state := "DOWN"
		if l.Up {
			state = "UP"
		}
		fmt.Fprintf(&b, "%d: %s: mtu %d state %s dev %s\n    link/ether %s speed %dMb/s\n", i, l.Name, l.MTU, state, l.Dev, l.MAC, l.Speed)
		if l.Driver != "" {
			offloads := "none"
			if len(l.RxOffloads) > 0 {
				offloads = strings.Join(l.RxOffloads, " ")
			}
			fmt.Fprintf(&b, "    driver %s rx offloads %s\n", l.Driver, offloads)
		}
		if l.KernelIface != "" {
			ns := l.Netns
			if ns == "" {
				ns = "ferryd's own"
			}
			fmt.Fprintf(&b, "    kernel interface %s (netns %s)\n", l.KernelIface, ns)
		}
		fmt.Fprintf(&b, "    RX: packets %d bytes %d missed %d errors %d nombuf %d\n", l.RxPackets, l.RxBytes, l.RxMissed, l.RxErrors, l.RxNoMbuf)
		fmt.Fprintf(&b, "    TX: packets %d bytes %d dropped %d errors %d\n", l.TxPackets, l.TxBytes, l.TxDropped, l.TxErrors)
		if perQueue {
			for _, q := range l.Queues {
				fmt.Fprintf(&b, "    queue %d (lcore %d): RX packets %d dropped %d  TX packets %d dropped %d\n",
					q.Queue, q.Lcore, q.RxPackets, q.RxDropped, q.TxPackets, q.TxDropped)
			}
		}
	}
	data := make([]linkJSON, len(links))
	for i, l := range links {
		data[i] = toLinkJSON(l)
	}
	return b.String(), data, nil
}
