package dpdk

/*
#include <stdlib.h>
#include <string.h>
#include "shim.h"
*/
import "C"

import (
	"unsafe"

	"ferry/pipeline"
)

// parseUsual runs the shim's receive checks (fy_parse_usual, what fy_rx
// does to every frame) on a copy of frame in C memory, as received on port
// whose MAC is mac (pipeline.MACWord), sumGood if the device found its
// header checksum right, and returns the record they leave. The data
// plane's tests hold it to pipeline.ParseUsual.
func parseUsual(frame []byte, port uint16, mac uint64, sumGood bool) (pipeline.RxPkt, bool) {
	// Room past the frame: a short frame's first word is loaded only
	// after its length is checked, but the buffer must not end before 8.
	n := len(frame) + 8
	buf := C.malloc(C.size_t(n))
	defer C.free(buf)
	C.memset(buf, 0, C.size_t(n))
	if len(frame) > 0 {
		C.memcpy(buf, unsafe.Pointer(&frame[0]), C.size_t(len(frame)))
	}
	r := (*C.struct_fy_rxpkt)(C.calloc(1, C.sizeof_struct_fy_rxpkt))
	defer C.free(unsafe.Pointer(r))
	r.data = buf
	r.len = C.uint16_t(len(frame))
	r.cap = C.uint16_t(len(frame))
	r.port = C.uint16_t(port)
	var good C.uint8_t
	if sumGood {
		good = 1
	}
	ok := C.fy_parse_usual(r, C.uint64_t(mac), good) != 0
	out := *(*pipeline.RxPkt)(unsafe.Pointer(r))
	out.Ref, out.Data = nil, nil
	return out, ok
}
