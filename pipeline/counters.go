package pipeline

import "sync/atomic"

// Counter names a per-core counter. Drops are counted by reason.
type Counter int

const (
	RxPackets Counter = iota
	TxPackets
	Forwarded
	LocalDelivered
	ARPIn
	ARPReplied
	ICMPEchoReplied
	ICMPErrorsSent
	HintHits
	FIBLookups
	NhCacheHits
	NhCacheMisses
	ExceptionHits
	DecisionsMade
	NeighQueued
	NeighLookups
	ControlFramesSent
	Fragmented
	FragmentsCreated
	RedirectsSent
	RedirectsAccepted
	PMTUUpdates
	Punted   // to a port's kernel interface
	Injected // from a port's kernel interface

	DropShort
	DropEtherType
	DropNotForUs
	DropARPBad
	DropIPVersion
	DropIPHeaderLen
	DropIPTotalLen
	DropIPChecksum
	DropMartianSrc
	DropMartianDst
	DropTTLExceeded
	DropNoRoute
	DropHostUnreach
	DropProhibited
	DropBlackhole
	DropFragNeeded
	DropNoLocalHandler
	DropNeighFailed
	DropNeighQueueFull
	DropTxFull
	DropNoBuffer
	DropICMPRateLimited
	DropFragment
	DropBroadcastFwd
	DropRedirectRejected
	DropPMTURejected
	DropExceptionBusy
	DropPuntLimit
	DropPuntQueueFull
	numCounters
)

var counterNames = [numCounters]string{
	RxPackets:            "rx_packets",
	TxPackets:            "tx_packets",
	Forwarded:            "forwarded",
	LocalDelivered:       "local_delivered",
	ARPIn:                "arp_in",
	ARPReplied:           "arp_replied",
	ICMPEchoReplied:      "icmp_echo_replied",
	ICMPErrorsSent:       "icmp_errors_sent",
	HintHits:             "hint_hits",
	FIBLookups:           "fib_lookups",
	NhCacheHits:          "nh_cache_hits",
	NhCacheMisses:        "nh_cache_misses",
	ExceptionHits:        "exception_hits",
	DecisionsMade:        "decisions_made",
	NeighQueued:          "neigh_queued",
	NeighLookups:         "neigh_lookups",
	ControlFramesSent:    "control_frames_sent",
	Fragmented:           "fragmented",
	FragmentsCreated:     "fragments_created",
	RedirectsSent:        "redirects_sent",
	RedirectsAccepted:    "redirects_accepted",
	PMTUUpdates:          "pmtu_updates",
	Punted:               "punted",
	Injected:             "injected",
	DropShort:            "drop_short_frame",
	DropEtherType:        "drop_unknown_ethertype",
	DropNotForUs:         "drop_not_for_us",
	DropARPBad:           "drop_arp_malformed",
	DropIPVersion:        "drop_ip_version",
	DropIPHeaderLen:      "drop_ip_header_length",
	DropIPTotalLen:       "drop_ip_total_length",
	DropIPChecksum:       "drop_ip_checksum",
	DropMartianSrc:       "drop_martian_source",
	DropMartianDst:       "drop_martian_destination",
	DropTTLExceeded:      "drop_ttl_exceeded",
	DropNoRoute:          "drop_no_route",
	DropHostUnreach:      "drop_host_unreachable",
	DropProhibited:       "drop_prohibited",
	DropBlackhole:        "drop_blackhole",
	DropFragNeeded:       "drop_frag_needed",
	DropNoLocalHandler:   "drop_local_unhandled",
	DropNeighFailed:      "drop_neigh_failed",
	DropNeighQueueFull:   "drop_neigh_queue_full",
	DropTxFull:           "drop_tx_full",
	DropNoBuffer:         "drop_no_buffer",
	DropICMPRateLimited:  "icmp_rate_limited",
	DropFragment:         "drop_fragment",
	DropBroadcastFwd:     "drop_broadcast_forward",
	DropRedirectRejected: "redirect_rejected",
	DropPMTURejected:     "pmtu_rejected",
	DropExceptionBusy:    "exception_update_busy",
	DropPuntLimit:        "drop_punt_rate_limited",
	DropPuntQueueFull:    "drop_punt_queue_full",
}

// Name is the counter's name as ferryctl shows it.
func (c Counter) Name() string { return counterNames[c] }

// IsDrop tells drop counters from the others.
func (c Counter) IsDrop() bool { return c >= DropShort && c != DropICMPRateLimited }

// NumCounters is how many counters a core keeps.
const NumCounters = int(numCounters)

// counters are bumped with plain adds by their core and published to the
// atomic copy every few bursts, so readers never race the fast path and the
// fast path pays no locked instruction per packet.
type counters struct {
	local     [numCounters]uint64
	published [numCounters]atomic.Uint64
	_         [64]byte
}

func (c *counters) publish() {
	for i := range c.local {
		c.published[i].Store(c.local[i])
	}
}

// Snapshot adds this core's published counters into sum.
func (c *counters) addTo(sum *[NumCounters]uint64) {
	for i := range c.published {
		sum[i] += c.published[i].Load()
	}
}
