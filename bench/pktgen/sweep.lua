-- Pktgen-DPDK script for benchmarking ferryd on a bare-metal test bed.
-- See docs/benchmarking.md. Pktgen sends on FERRY_TX_PORT into the router's
-- port0 and counts what the router forwards back on FERRY_RX_PORT.
--
-- FERRY_MODE=pcap  (default) replays the pcap loaded with -s TX:FILE: frames
--                  whose destinations ferry-pktgen --write-pcap drew from the
--                  route table; one measurement, labelled FERRY_LABEL.
-- FERRY_MODE=sizes sweeps FERRY_SIZES (default 64..1518) with a single flow
--                  to FERRY_DST through FERRY_DST_MAC (the router's port0).
--
-- Each measurement prints one line:
--   RESULT label=... size=... tx_mpps=... rx_mpps=... loss=...
-- Rates come from the port counters over FERRY_SECONDS after FERRY_WARMUP.

package.path = package.path .. ";?.lua;test/?.lua;app/?.lua;"
require "Pktgen"

local function env(name, default)
	local v = os.getenv(name)
	if v == nil or v == "" then
		return default
	end
	return v
end

local tx = env("FERRY_TX_PORT", "0")
local rx = env("FERRY_RX_PORT", "1")
local txid, rxid = tonumber(tx), tonumber(rx)
local seconds = tonumber(env("FERRY_SECONDS", "10"))
local warmup = tonumber(env("FERRY_WARMUP", "2"))
local mode = env("FERRY_MODE", "pcap")
local label = env("FERRY_LABEL", mode)

local function counters()
	local s = pktgen.portStats("all", "port")
	return s[txid].opackets, s[rxid].ipackets
end

local function measure(name, size)
	pktgen.clr()
	pktgen.start(tx)
	pktgen.delay(warmup * 1000)
	local tx0, rx0 = counters()
	pktgen.delay(seconds * 1000)
	local tx1, rx1 = counters()
	pktgen.stop(tx)
	local sent, got = tx1 - tx0, rx1 - rx0
	local loss = 0
	if sent > 0 and got < sent then
		loss = (sent - got) / sent
	end
	printf("RESULT label=%s size=%s tx_mpps=%.3f rx_mpps=%.3f loss=%.5f\n",
		name, size, sent / seconds / 1e6, got / seconds / 1e6, loss)
	-- Let the router drain before the next step.
	pktgen.delay(1000)
end

pktgen.screen("off")
pktgen.set(tx, "count", 0) -- until stopped
pktgen.set(tx, "rate", 100)
pktgen.set(tx, "burst", 32)

if mode == "pcap" then
	pktgen.pcap(tx, "on")
	measure(label, env("FERRY_SIZE", "pcap"))
else
	pktgen.pcap(tx, "off")
	pktgen.set_type(tx, "ipv4")
	pktgen.set_proto(tx, "udp")
	pktgen.set_ipaddr(tx, "src", env("FERRY_SRC", "192.0.2.10/24"))
	pktgen.set_ipaddr(tx, "dst", env("FERRY_DST", "203.0.113.5"))
	pktgen.set_mac(tx, "dst", env("FERRY_DST_MAC", "02:fe:00:00:00:01"))
	for size in string.gmatch(env("FERRY_SIZES", "64 128 256 512 1024 1280 1518"), "%d+") do
		pktgen.set(tx, "size", tonumber(size))
		measure(label, size)
	end
end

pktgen.quit()
