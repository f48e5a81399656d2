package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"strings"

	"ferry/dpdk/pktgen"
	"ferry/fib"
	"ferry/internal/bgptable"
)

// loadTable reads destination prefixes: one a line, either a bare prefix, an
// ip-route batch line ("route add 10.0.0.0/8 via ..." or "10.0.0.0/8 via
// ..."), or an l3fwd rule ("R10.0.0.0/8 1"). Blank lines and '#' comments
// are skipped.
func loadTable(path string) ([]fib.Prefix, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("route table: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	var out []fib.Prefix
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if i := strings.IndexByte(text, '#'); i >= 0 {
			text = text[:i]
		}
		fs := strings.Fields(text)
		if len(fs) == 0 {
			continue
		}
		if fs[0] == "route" || fs[0] == "ip" {
			fs = fs[1:]
			for len(fs) > 0 && (fs[0] == "route" || fs[0] == "add" || fs[0] == "replace" || fs[0] == "append" || fs[0] == "prepend" || fs[0] == "change") {
				fs = fs[1:]
			}
		}
		// A route type keyword may come before the prefix.
		if len(fs) > 1 && (fs[0] == "unicast" || fs[0] == "blackhole" || fs[0] == "unreachable" || fs[0] == "prohibit") {
			fs = fs[1:]
		}
		if len(fs) == 0 {
			return nil, fmt.Errorf("%s:%d: no prefix in %q", path, line, sc.Text())
		}
		tok := strings.TrimPrefix(fs[0], "R")
		p, err := fib.ParsePrefix(tok)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		out = append(out, p)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no prefixes", path)
	}
	return out, nil
}

// trafficCase is one measured traffic pattern.
type trafficCase struct {
	Dist  string // single, uniform, zipf
	Flows int    // 0: every address of the table (uniform only)
	Size  string // "64", "570", "imix"...
}

func (c trafficCase) String() string {
	s := c.Dist
	if c.Flows > 0 && c.Dist != "single" {
		s += ":" + strconv.Itoa(c.Flows)
	}
	return s + "@" + c.Size
}

// parseCases reads "single;uniform:1000;uniform;zipf:10000@imix": cases
// separated by ';', each DIST[:FLOWS][@SIZE], defaulting to size.
func parseCases(spec, size string) ([]trafficCase, error) {
	var out []trafficCase
	for _, s := range strings.Split(spec, ";") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		c := trafficCase{Size: size}
		if i := strings.IndexByte(s, '@'); i >= 0 {
			s, c.Size = s[:i], s[i+1:]
		}
		if i := strings.IndexByte(s, ':'); i >= 0 {
			n, err := strconv.Atoi(s[i+1:])
			if err != nil || n < 1 {
				return nil, fmt.Errorf("case %q: flows must be a positive number", s)
			}
			s, c.Flows = s[:i], n
		}
		c.Dist = s
		if err := c.check(); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no traffic cases in %q", spec)
	}
	return out, nil
}

func (c trafficCase) check() error {
	switch c.Dist {
	case "single", "uniform":
	case "zipf":
		if c.Flows < 2 {
			return fmt.Errorf("case %s: zipf needs --flows of at least 2", c)
		}
	default:
		return fmt.Errorf("case %s: distribution must be uniform, zipf or single", c)
	}
	if _, _, err := frameMix(c.Size); err != nil {
		return fmt.Errorf("case %s: %w", c, err)
	}
	return nil
}

// destinations builds the case's template of destination addresses, the
// order in which frames use them. Deterministic for a seed.
func (c trafficCase) destinations(ps []fib.Prefix, templateLen int, seed int64) []uint32 {
	switch {
	case c.Dist == "single":
		return bgptable.Addrs(ps, 1, seed)
	case c.Dist == "zipf":
		return bgptable.SkewedAddrs(ps, templateLen, c.Flows, seed)
	case c.Flows > 0:
		// N flows sent round robin: every flow recurs every N frames.
		return bgptable.Addrs(ps, c.Flows, seed)
	default:
		return bgptable.Addrs(ps, templateLen, seed)
	}
}

// frameMix turns a size ("64", "imix", any 64-1518) into frame lengths
// without the 4-byte FCS (a 64-byte frame is 60 bytes in the buffer) and the
// order the size classes are sent in. IMIX is 7×64, 4×570, 1×1518.
func frameMix(size string) (lens []int, seq []int, err error) {
	if size == "imix" {
		// Spread so no burst carries only one size.
		return []int{60, 566, 1514}, []int{0, 0, 1, 0, 1, 0, 0, 1, 0, 2, 0, 1}, nil
	}
	n, err := strconv.Atoi(size)
	if err != nil || n < 64 || n > 1518 {
		return nil, nil, fmt.Errorf("size %q: use imix or a frame size from 64 to 1518", size)
	}
	return []int{n - 4}, []int{0}, nil
}

// headers builds the Ethernet/IPv4/UDP header of each frame length with the
// destination address and IP checksum zero: the C loop stamps those.
func headers(lens []int, dstMAC, srcMAC [6]byte, src uint32) [][]byte {
	out := make([][]byte, len(lens))
	for k, l := range lens {
		h := make([]byte, pktgen.HeaderLen)
		copy(h[0:6], dstMAC[:])
		copy(h[6:12], srcMAC[:])
		binary.BigEndian.PutUint16(h[12:], 0x0800)
		ip := h[14:]
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], uint16(l-14))
		ip[8] = 64 // TTL
		ip[9] = 17 // UDP
		binary.BigEndian.PutUint32(ip[12:], src)
		udp := ip[20:]
		binary.BigEndian.PutUint16(udp[0:], 1024)
		binary.BigEndian.PutUint16(udp[2:], 1024)
		binary.BigEndian.PutUint16(udp[4:], uint16(l-14-20))
		out[k] = h
	}
	return out
}
