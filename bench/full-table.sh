#!/usr/bin/env bash
# Measures ferryd with a full table: the time to load 900k routes with
# 'ferryctl -batch', to list them with 'route show', and to replace a tenth
# of them, and the daemon's memory after each step (RSS without hugepages,
# which ferryd reports apart as hugepage_bytes; the Go heap's live bytes).
#
# usage: bench/full-table.sh [ROUTES] [WORKDIR]   (default 900000, /tmp/ferry-full-table)
# needs root for DPDK; runs on net_null ports, without PCI, on hugepages
# where the machine has them (as ferryd is deployed: DPDK's memory is then
# not in the RSS, and the script prints it apart).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
routes=${1:-900000}
work=${2:-/tmp/ferry-full-table}
mkdir -p "$work"
cd "$here"
bin=$here/bin
[ -x "$bin/ferryd" ] || make build >/dev/null

"$bin/ferry-bench" -tables "$routes" -write-tables "$work" >/dev/null 2>&1
batch=$work/routes-$routes.batch
# A tenth of the routes, moved to another gateway on the other port.
awk 'NR % 10 == 1 { $2 = "replace"; $5 = "192.0.2.77"; $7 = "port0"; print }' "$batch" >"$work/replace.batch"

prefix=ferry-full-$$
sock=$work/ferry.sock
cat >"$work/ferry.yaml" <<YAML
eal: ["--file-prefix", "$prefix", "--no-pci", "--vdev", "net_null0,no-rx=1", "--vdev", "net_null1,no-rx=1"]
hugepages: auto
cores: [1]
api: $sock
log_level: ${FERRY_LOG_LEVEL:-warn}
ports:
  - name: port0
    dev: "net_null0"
    addresses: ["192.0.2.1/24"]
  - name: port1
    dev: "net_null1"
    addresses: ["198.51.100.1/24"]
YAML

"$bin/ferryd" --config "$work/ferry.yaml" >"$work/ferryd.log" 2>&1 &
pid=$!
cleanup() {
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	rm -rf "/var/run/dpdk/$prefix"
}
trap cleanup EXIT
for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.2; done

ctl() { "$bin/ferryctl" --socket "$sock" "$@"; }
rss() { awk '/VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$pid/status"; }
peak() { awk '/VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$pid/status"; }
# field NAME: a runtime figure of 'ferryctl stats', in MB.
field() { ctl stats | awk -v k="$1" '$0 ~ k {for (i = 1; i < NF; i++) if ($i == k) printf "%.0f", $(i + 1) / 1048576}'; }
live() { echo "$(field heap_live_bytes)   go_mapped $(field go_mapped_bytes)   heap_unused $(field heap_unused_bytes)"; }
timed() { local t0 t1; t0=$(date +%s.%N); "$@" >/dev/null; t1=$(date +%s.%N); awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b - a}'; }
# The daemon returns the heap's garbage 2 s after large changes end, which
# takes it a second or two more with a full table.
settle() { sleep "${FERRY_SETTLE:-8}"; }

echo "# $routes routes; RSS and live heap in MB, after the heap was trimmed"
echo "start:        rss $(rss)   hugepages $(field hugepage_bytes)"
t=$(timed ctl -batch "$batch"); settle
echo "load:         ${t} s   rss $(rss) (peak $(peak))   heap_live $(live)"
t=$(timed ctl route show); sleep 1
echo "route show:   ${t} s   rss $(rss)   ($(ctl route show | wc -l) lines)"
t=$(timed ctl -batch "$work/replace.batch"); settle
echo "replace 10%:  ${t} s   rss $(rss)   heap_live $(live)"
