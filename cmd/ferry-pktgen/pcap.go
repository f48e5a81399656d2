package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"os"

	"ferry/pipeline"
)

// writePcap stores n frames of case c, as the generator would send them,
// in a pcap file: Pktgen-DPDK and other replayers can then send the same
// destinations from the same table on a bare-metal test bed.
func writePcap(path string, c trafficCase, dsts []uint32, n int, dstMAC, srcMAC [6]byte, src uint32) error {
	lens, seq, err := frameMix(c.Size)
	if err != nil {
		return err
	}
	hdrs := headers(lens, dstMAC, srcMAC, src)
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("pcap: %w", err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	le := binary.LittleEndian
	var gh [24]byte
	le.PutUint32(gh[0:], 0xa1b2c3d4) // microsecond timestamps
	le.PutUint16(gh[4:], 2)
	le.PutUint16(gh[6:], 4)
	le.PutUint32(gh[16:], 65535) // snap length
	le.PutUint32(gh[20:], 1)     // Ethernet
	w.Write(gh[:])
	frame := make([]byte, 1514)
	for i := 0; i < n; i++ {
		k := seq[i%len(seq)]
		l := lens[k]
		clear(frame[:l])
		copy(frame, hdrs[k])
		binary.BigEndian.PutUint32(frame[30:], dsts[i%len(dsts)])
		binary.BigEndian.PutUint16(frame[24:], pipeline.Checksum(frame[14:34]))
		var rh [16]byte
		le.PutUint32(rh[4:], uint32(i)) // 1 µs apart: the replayer paces, not the file
		le.PutUint32(rh[8:], uint32(l))
		le.PutUint32(rh[12:], uint32(l))
		w.Write(rh[:])
		w.Write(frame[:l])
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("pcap %s: %w", path, err)
	}
	return f.Close()
}
