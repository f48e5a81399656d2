package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"

	"ferry/fib"
	"ferry/internal/bgptable"
)

// The benchmark's addressing: frames come from 192.0.2.10 on the device's
// port0 (192.0.2.1/24) and leave port1 (198.51.100.1/24) for the generator's
// receiving port, the static neighbour 198.51.100.2 (and with -gateways N,
// 198.51.100.3 and on, each route through one of them in turn).
const (
	port0Net  = 0xc0000200 // 192.0.2.0/24
	port1Net  = 0xc6336400 // 198.51.100.0/24
	nextHop   = "198.51.100.2"
	genTxMAC  = "02:fe:00:00:00:10"
	genRxMAC  = "02:fe:00:00:00:11"
	dutP0MAC  = "02:fe:00:00:00:01"
	dutP1MAC  = "02:fe:00:00:00:02"
	benchSrc  = "192.0.2.10"
	tableSeed = 20240611
)

// routeTable is one generated table in the formats each tool reads.
type routeTable struct {
	Routes   int    `json:"routes"`
	Gateways int    `json:"gateways"`
	Batch    string `json:"batch_file"`  // ferryctl -batch; also the generator's table
	Config   string `json:"config_file"` // a YAML routes: list for ferryd's config
	L3fwd    string `json:"l3fwd_rules"` // l3fwd --rule_ipv4
	L3fwdV6  string `json:"-"`           // l3fwd wants an IPv6 file too
	prefixes []fib.Prefix
}

func (t *routeTable) name() string {
	if t.Routes >= 1000 {
		return fmt.Sprintf("%dk", t.Routes/1000)
	}
	return fmt.Sprintf("%d", t.Routes)
}

// overlaps reports whether p covers or lies inside the /24 at net.
func overlaps(p fib.Prefix, net uint32) bool {
	if p.Len <= 24 {
		m := ^uint32(0) << (32 - p.Len)
		if p.Len == 0 {
			m = 0
		}
		return net&m == p.Addr
	}
	return p.Addr&0xffffff00 == net
}

// gateway is the i-th of the benchmark's gateways.
func gateway(i int) string { return fmt.Sprintf("198.51.100.%d", 2+i) }

// makeTable writes a deterministic BGP-like table of n routes over gws
// gateways into dir. The ports' own subnets are left out so every
// destination is forwarded.
func makeTable(dir string, n, gws int) (*routeTable, error) {
	ps := bgptable.Generate(n+n/100+16, tableSeed)
	kept := ps[:0]
	for _, p := range ps {
		if overlaps(p, port0Net) || overlaps(p, port1Net) {
			continue
		}
		kept = append(kept, p)
		if len(kept) == n {
			break
		}
	}
	if len(kept) < n {
		return nil, fmt.Errorf("table of %d routes: only %d usable prefixes generated", n, len(kept))
	}
	t := &routeTable{Routes: n, Gateways: gws, prefixes: kept}
	base := filepath.Join(dir, fmt.Sprintf("routes-%d", n))
	if gws > 1 {
		base += fmt.Sprintf("-gw%d", gws)
	}
	t.Batch, t.Config, t.L3fwd, t.L3fwdV6 = base+".batch", base+".yaml", base+".l3fwd", filepath.Join(dir, "l3fwd-v6.rules")
	i := 0
	err := writeLines(t.Batch, kept, func(w *bufio.Writer, p fib.Prefix) {
		fmt.Fprintf(w, "route add %s via %s dev port1\n", p, gateway(i%gws))
		i++
	})
	if err == nil {
		i = 0
		err = writeLines(t.Config, kept, func(w *bufio.Writer, p fib.Prefix) {
			fmt.Fprintf(w, "  - \"%s via %s dev port1\"\n", p, gateway(i%gws))
			i++
		})
	}
	if err == nil {
		err = writeLines(t.L3fwd, kept, func(w *bufio.Writer, p fib.Prefix) {
			fmt.Fprintf(w, "R%s 1\n", p)
		})
	}
	if err == nil {
		// l3fwd only reads --rule_ipv4 together with --rule_ipv6.
		err = os.WriteFile(t.L3fwdV6, []byte("R2001:db8::/32 1\n"), 0o644)
	}
	if err != nil {
		return nil, fmt.Errorf("table of %d routes: %w", n, err)
	}
	return t, nil
}

func writeLines(path string, ps []fib.Prefix, line func(*bufio.Writer, fib.Prefix)) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for _, p := range ps {
		line(w, p)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
