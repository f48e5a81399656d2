#!/usr/bin/env bash
# Builds DPDK's l3fwd example, the peer ferryd is compared with, from the
# sources the dpdk-doc/dpdk-dev packages install. The example is copied to a
# scratch directory and patched there so it runs on net_memif ports and holds
# a full BGP table; nothing of it is kept in the repository.
#
# usage: bench/build-l3fwd.sh [BUILD_DIR]   (default bench/.build/l3fwd)
# prints the path of the built binary on its last line.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/.build/l3fwd}
src=${L3FWD_SRC:-/usr/share/dpdk/examples/l3fwd}
common=$(dirname "$src")/common

[ -f "$src/main.c" ] || { echo "build-l3fwd: $src/main.c not found (install dpdk-doc)" >&2; exit 1; }
pkg-config --exists libdpdk || { echo "build-l3fwd: pkg-config cannot find libdpdk (install libdpdk-dev)" >&2; exit 1; }

# Rebuild only when the sources, this script or DPDK changed.
stamp=$( (cat "$0"; ls -l --time-style=+%s "$src" "$common" 2>/dev/null; pkg-config --modversion libdpdk) | sha1sum | cut -c1-16)
if [ -x "$out/l3fwd/build/l3fwd" ] && [ "$(cat "$out/.stamp" 2>/dev/null)" = "$stamp" ]; then
	echo "$out/l3fwd/build/l3fwd"
	exit 0
fi

rm -rf "$out"
mkdir -p "$out"
cp -r "$src" "$out/l3fwd"
[ -d "$common" ] && cp -r "$common" "$out/common"
cd "$out/l3fwd"

# patch FILE SED-EXPR WHAT: apply one edit and fail loudly if it no longer
# matches, so a new DPDK release cannot silently drop a change.
patch_one() {
	local file=$1 expr=$2 what=$3
	local before
	before=$(sha1sum "$file")
	sed -i -e "$expr" "$file"
	if [ "$(sha1sum "$file")" = "$before" ]; then
		echo "build-l3fwd: patch '$what' did not apply to $file (DPDK $(pkg-config --modversion libdpdk))" >&2
		exit 1
	fi
}

# memif offers no RX checksum offload; requesting it makes configure fail.
patch_one main.c 's/\.offloads = RTE_ETH_RX_OFFLOAD_CHECKSUM,/.offloads = 0,/' "no rx checksum offload"
# memif copies every received frame into a fresh mbuf: give the pool room.
patch_one main.c 's/(unsigned)8192)/(unsigned)65536)/' "more mbufs"
# A full table: ~900k IPv4 routes, with tbl8 groups for the longer prefixes.
patch_one l3fwd_fib.c 's/config_ipv4.max_routes = (1 << 16);/config_ipv4.max_routes = (1 << 20);/' "fib max routes"
patch_one l3fwd_fib.c 's/config_ipv4.dir24_8.num_tbl8 = (1 << 15);/config_ipv4.dir24_8.num_tbl8 = (1 << 16);/' "fib tbl8 groups"
# One printf per route costs minutes at 900k routes; print small tables only.
patch_one l3fwd_fib.c 's/^\(\s*\)in.s_addr = htonl(route_base_v4\[i\].ip);/&\n\1if (route_num_v4 > 64) continue;/' "quiet route load"
# The LPM table, used by --lookup=lpm, gets the same limit.
patch_one l3fwd_lpm.c 's/#define IPV4_L3FWD_LPM_MAX_RULES\s*1024/#define IPV4_L3FWD_LPM_MAX_RULES (1 << 20)/' "lpm max rules"
patch_one l3fwd_lpm.c 's/#define IPV4_L3FWD_LPM_NUMBER_TBL8S (1 << 8)/#define IPV4_L3FWD_LPM_NUMBER_TBL8S (1 << 16)/' "lpm tbl8 groups"

make -s -j"$(nproc)" >&2
printf '%s' "$stamp" > "$out/.stamp"
echo "$out/l3fwd/build/l3fwd"
