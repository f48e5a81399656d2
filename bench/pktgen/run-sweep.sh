#!/usr/bin/env bash
# Runs Pktgen-DPDK against a ferryd on another port or host, once per frame
# size, replaying destinations drawn from the router's route table. See
# docs/benchmarking.md for the test bed, ferryd's side and how to read the
# counters during the run.
#
# usage: bench/pktgen/run-sweep.sh TABLE ROUTER_PORT0_MAC -- PKTGEN_EAL_AND_APP_ARGS
#   e.g. bench/pktgen/run-sweep.sh routes.batch 3c:fd:fe:00:00:01 -- \
#          -l 0-4 -n 4 -a 0000:81:00.0 -a 0000:81:00.1 -- -P -m "[1:2].0,[3:4].1"
# environment: PKTGEN (binary, default pktgen), FERRY_PKTGEN (default
# bin/ferry-pktgen), SIZES (default "64 128 256 512 1024 1518 imix"),
# DIST (uniform | uniform:N | zipf:N | single; default uniform),
# FERRY_SECONDS, FERRY_WARMUP, OUT (default bench/results/pktgen)
set -euo pipefail

[ $# -ge 3 ] && [ "$3" = "--" ] || { sed -n '2,14p' "$0" >&2; exit 2; }
table=$1 dmac=$2
shift 3
here=$(cd "$(dirname "$0")" && pwd)
pktgen=${PKTGEN:-pktgen}
gen=${FERRY_PKTGEN:-$here/../../bin/ferry-pktgen}
sizes=${SIZES:-"64 128 256 512 1024 1518 imix"}
dist=${DIST:-uniform}
out=${OUT:-$here/../results/pktgen}
mkdir -p "$out"
results="$out/sweep-$(date +%Y%m%d-%H%M%S).txt"

command -v "$pktgen" >/dev/null || { echo "run-sweep: $pktgen not found (build Pktgen-DPDK, or set PKTGEN)" >&2; exit 1; }
[ -x "$gen" ] || { echo "run-sweep: $gen not found (make bench builds it, or set FERRY_PKTGEN)" >&2; exit 1; }

# Pktgen takes the pcap on its command line: one run per size. Insert
# "-s 0:FILE" among Pktgen's own arguments (after the EAL's "--").
for size in $sizes; do
	pcap="$out/$dist-$size.pcap"
	"$gen" --write-pcap "$pcap" --table "$table" --dst-mac "$dmac" --cases "$dist@$size" --pcap-frames 65536
	args=()
	seen=0
	for a in "$@"; do
		args+=("$a")
		if [ "$a" = "--" ] && [ $seen = 0 ]; then
			args+=(-s "${FERRY_TX_PORT:-0}:$pcap")
			seen=1
		fi
	done
	FERRY_MODE=pcap FERRY_LABEL="$dist" FERRY_SIZE="$size" "$pktgen" "${args[@]}" -f "$here/sweep.lua" 2>&1 |
		tee -a "$out/pktgen.log" | grep '^RESULT' | tee -a "$results"
done
echo "results in $results"
