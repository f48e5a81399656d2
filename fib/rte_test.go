package fib

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"ferry/internal/bgptable"
	"ferry/netaddr"
)

// TestWriteRteFiles writes the benchmark's 900k BGP-like table and its
// random lookup addresses in dpdk-test-fib's formats ("a.b.c.d/len nh" and
// one address a line) when FIB_RTE_DIR names a directory; see
// bench/fib-vs-rte.sh.
func TestWriteRteFiles(t *testing.T) {
	dir := os.Getenv("FIB_RTE_DIR")
	if dir == "" {
		t.Skip("FIB_RTE_DIR not set")
	}
	ps := bgptable.Generate(benchSize, 1)
	write := func(name string, fn func(w *bufio.Writer)) {
		fd, err := os.Create(filepath.Join(dir, name))
		must(t, err)
		w := bufio.NewWriter(fd)
		fn(w)
		must(t, w.Flush())
		must(t, fd.Close())
	}
	write("routes.txt", func(w *bufio.Writer) {
		for i, p := range ps {
			fmt.Fprintf(w, "%s/%d %d\n", netaddr.IPv4String(p.Addr), p.Len, i%len(benchGWs))
		}
	})
	write("ips.txt", func(w *bufio.Writer) {
		for _, a := range bgptable.Addrs(ps, 1<<20, 2) {
			fmt.Fprintln(w, netaddr.IPv4String(a))
		}
	})
}
