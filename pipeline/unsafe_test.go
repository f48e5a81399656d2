package pipeline

import (
	"unsafe"

	"ferry/cache/neigh"
)

func unsafePtr[T any](p *T) unsafe.Pointer { return unsafe.Pointer(p) }

func neighPermanent(port int, ip uint32, mac MAC) neigh.Request {
	return neigh.Request{Cmd: neigh.CmdAdd, Port: port, IP: ip, MAC: neigh.MAC(mac), HasMAC: true, State: neigh.Permanent}
}
