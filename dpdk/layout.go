package dpdk

/*
#include <stddef.h>
#include "shim.h"

enum {
	fy_off_ref = offsetof(struct fy_rxpkt, ref),
	fy_off_data = offsetof(struct fy_rxpkt, data),
	fy_off_dst = offsetof(struct fy_rxpkt, dst),
	fy_off_src = offsetof(struct fy_rxpkt, src),
	fy_off_len = offsetof(struct fy_rxpkt, len),
	fy_off_cap = offsetof(struct fy_rxpkt, cap),
	fy_off_port = offsetof(struct fy_rxpkt, port),
	fy_off_tos = offsetof(struct fy_rxpkt, tos),
	fy_off_usual = offsetof(struct fy_rxpkt, usual),
	fy_max_ports = FY_MAX_PORTS,
	fy_burst = FY_BURST,
	fy_rx_max = FY_RX_MAX,
	fy_tx_max = FY_TX_MAX,
	fy_free_max = FY_FREE_MAX,
};
*/
import "C"

import (
	"unsafe"

	"ferry/pipeline"
)

// The shim's records are the pipeline's, field by field, and its list
// sizes are the pipeline's limits: shim.h is the definition, and every
// line below fails to compile when the two drift apart (an index out of
// range either way round).
const (
	sizeOK  = unsafe.Sizeof(pipeline.RxPkt{}) - C.sizeof_struct_fy_rxpkt
	sizeOK2 = C.sizeof_struct_fy_rxpkt - unsafe.Sizeof(pipeline.RxPkt{})
)

var (
	_ = [1]struct{}{}[sizeOK]
	_ = [1]struct{}{}[sizeOK2]

	_ = [1]struct{}{}[unsafe.Offsetof(pipeline.RxPkt{}.Ref)-C.fy_off_ref]
	_ = [1]struct{}{}[C.fy_off_ref-unsafe.Offsetof(pipeline.RxPkt{}.Ref)]
	_ = [1]struct{}{}[unsafe.Offsetof(pipeline.RxPkt{}.Data)-C.fy_off_data]
	_ = [1]struct{}{}[C.fy_off_data-unsafe.Offsetof(pipeline.RxPkt{}.Data)]
	_ = [1]struct{}{}[unsafe.Offsetof(pipeline.RxPkt{}.Dst)-C.fy_off_dst]
	_ = [1]struct{}{}[C.fy_off_dst-unsafe.Offsetof(pipeline.RxPkt{}.Dst)]
	_ = [1]struct{}{}[unsafe.Offsetof(pipeline.RxPkt{}.Src)-C.fy_off_src]
	_ = [1]struct{}{}[C.fy_off_src-unsafe.Offsetof(pipeline.RxPkt{}.Src)]
	_ = [1]struct{}{}[unsafe.Offsetof(pipeline.RxPkt{}.Len)-C.fy_off_len]
	_ = [1]struct{}{}[C.fy_off_len-unsafe.Offsetof(pipeline.RxPkt{}.Len)]
	_ = [1]struct{}{}[unsafe.Offsetof(pipeline.RxPkt{}.Cap)-C.fy_off_cap]
	_ = [1]struct{}{}[C.fy_off_cap-unsafe.Offsetof(pipeline.RxPkt{}.Cap)]
	_ = [1]struct{}{}[unsafe.Offsetof(pipeline.RxPkt{}.Port)-C.fy_off_port]
	_ = [1]struct{}{}[C.fy_off_port-unsafe.Offsetof(pipeline.RxPkt{}.Port)]
	_ = [1]struct{}{}[unsafe.Offsetof(pipeline.RxPkt{}.TOS)-C.fy_off_tos]
	_ = [1]struct{}{}[C.fy_off_tos-unsafe.Offsetof(pipeline.RxPkt{}.TOS)]
	_ = [1]struct{}{}[unsafe.Offsetof(pipeline.RxPkt{}.Usual)-C.fy_off_usual]
	_ = [1]struct{}{}[C.fy_off_usual-unsafe.Offsetof(pipeline.RxPkt{}.Usual)]

	_ = [1]struct{}{}[pipeline.MaxPorts-C.fy_max_ports]
	_ = [1]struct{}{}[C.fy_max_ports-pipeline.MaxPorts]
	_ = [1]struct{}{}[pipeline.BurstSize-C.fy_burst]
	_ = [1]struct{}{}[C.fy_burst-pipeline.BurstSize]
	_ = [1]struct{}{}[pipeline.RxMax-C.fy_rx_max]
	_ = [1]struct{}{}[C.fy_rx_max-pipeline.RxMax]
	_ = [1]struct{}{}[pipeline.TxMax-C.fy_tx_max]
	_ = [1]struct{}{}[C.fy_tx_max-pipeline.TxMax]
	_ = [1]struct{}{}[pipeline.FreeMax-C.fy_free_max]
	_ = [1]struct{}{}[C.fy_free_max-pipeline.FreeMax]
)
