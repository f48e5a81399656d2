#!/usr/bin/env bash
# Compares ferry's FIB lookups with DPDK's rte_fib DIR-24-8 on the same
# 900k-prefix BGP-like table and the same random lookup addresses.
#
# usage: bench/fib-vs-rte.sh [WORKDIR]   (default /tmp/fib-vs-rte)
# needs dpdk-test-fib (dpdk package) and Go; runs without hugepages or PCI.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-/tmp/fib-vs-rte}
mkdir -p "$work"
cd "$here"
# The x86-64 level the Makefile builds for (the walk's assembly needs v3).
GOAMD64=${GOAMD64:-$(make -s --no-print-directory print-goamd64)}
export GOAMD64

# 1. The table and addresses, in dpdk-test-fib's formats.
FIB_RTE_DIR=$work CGO_ENABLED=0 go test -count 1 -run TestWriteRteFiles ./fib/ >/dev/null

# 2. rte_fib DIR-24-8: prints the average TSC cycles per lookup (bursts of 64).
prefix=fib-vs-rte-$$
trap 'rm -rf "/var/run/dpdk/$prefix"' EXIT
cmd=(dpdk-test-fib --no-huge -m 2048 --no-pci --file-prefix "$prefix" -- -f "$work/routes.txt" -t "$work/ips.txt" -b dir -g 65536)
echo "# ${cmd[*]}"
cyc=$("${cmd[@]}" 2>&1 | awk '/AVG FIB lookup/ {print $4}')
mhz=$(awk '/tsc: Detected/ {print $(NF-2); exit}' <(dmesg 2>/dev/null) || true)
[ -n "$mhz" ] || mhz=$(awk -F: '/cpu MHz/ {gsub(/ /,"",$2); print $2; exit}' /proc/cpuinfo)
rte=$(awk -v c="$cyc" -v m="$mhz" 'BEGIN {printf "%.1f", m / c}')
echo "rte_fib dir24_8: $cyc cycles/lookup at $mhz MHz = $rte M lookups/s; tbl24 64 MiB + 65536 tbl8 x 1 KiB"

# 3. ferry: medians of 5 runs.
bench() {
	CGO_ENABLED=0 go test -count 5 -run XXX -bench "^$1\$" -benchtime 4000000x ./fib/ |
		awk '/Mlookups\/s/ {for (i = 1; i < NF; i++) if ($(i+1) == "Mlookups/s") print $i}' | sort -g | awk '{v[NR] = $1} END {print v[int((NR+1)/2)]}'
}
for b in BenchmarkFastLPMBulk900kRandom BenchmarkLookupBulkRefs900kRandom BenchmarkLookupBulk900kRandom BenchmarkLookup900kRandom; do
	m=$(bench "$b")
	awk -v b="$b" -v m="$m" -v r="$rte" 'BEGIN {printf "%-32s %6.2f M lookups/s  = %.2f x rte_fib\n", b, m, m / r}'
done
