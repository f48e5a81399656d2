package dpdk

/*
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"sync"
	"unsafe"

	"ferry/pipeline"
)

// maxParseFrame is the longest frame parseUsual takes.
const maxParseFrame = 2048

// parseMem is parseUsual's C memory, allocated once: a frame's copy (with
// room for a word past its end) and a record. Its callers take turns.
var parseMem struct {
	sync.Mutex
	buf unsafe.Pointer
	rec *C.struct_fy_rxpkt
}

// parseUsual runs the shim's receive checks (fy_parse_usual, what fy_rx
// does to every frame) on a copy of frame in C memory, as received on port
// whose MAC is mac (pipeline.MACWord), sumGood if the device found its
// header checksum right, and returns the record they leave; a frame
// longer than maxParseFrame is cut to it. The data plane's tests hold it
// to pipeline.ParseUsual.
func parseUsual(frame []byte, port uint16, mac uint64, sumGood bool) (pipeline.RxPkt, bool) {
	frame = frame[:min(len(frame), maxParseFrame)]
	m := &parseMem
	m.Lock()
	defer m.Unlock()
	if m.buf == nil {
		// Room past the frame: a short frame's first word is loaded
		// only after its length is checked, but the buffer must not end
		// before 8.
		m.buf = C.malloc(maxParseFrame + 8)
		m.rec = (*C.struct_fy_rxpkt)(C.malloc(C.sizeof_struct_fy_rxpkt))
	}
	// Filled from Go: one cgo call a frame, the parse.
	buf := unsafe.Slice((*byte)(m.buf), maxParseFrame+8)
	clear(buf[copy(buf, frame):])
	r := m.rec
	*r = C.struct_fy_rxpkt{data: m.buf, len: C.uint16_t(len(frame)), cap: C.uint16_t(len(frame)), port: C.uint16_t(port)}
	var good C.uint8_t
	if sumGood {
		good = 1
	}
	ok := C.fy_parse_usual(r, C.uint64_t(mac), good) != 0
	out := *(*pipeline.RxPkt)(unsafe.Pointer(r))
	out.Ref, out.Data = nil, nil
	return out, ok
}
