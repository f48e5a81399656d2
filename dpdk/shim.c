#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "shim.h"

int fy_eal_init(int argc, char **argv)
{
	/* rte_eal_init pins the calling thread to the main lcore; Go later
	 * reuses that thread (and its children inherit the mask), so give it
	 * back its original CPU set. */
	cpu_set_t saved;
	int have = pthread_getaffinity_np(pthread_self(), sizeof(saved), &saved) == 0;
	int ret = rte_eal_init(argc, argv);
	if (have)
		pthread_setaffinity_np(pthread_self(), sizeof(saved), &saved);
	return ret;
}

void fy_eal_cleanup(void) { rte_eal_cleanup(); }
const char *fy_strerror(int err) { return rte_strerror(err); }
int fy_errno(void) { return rte_errno; }

struct rte_mempool *fy_pool_create(const char *name, unsigned n, unsigned cache, unsigned dataroom)
{
	return rte_pktmbuf_pool_create(name, n, cache, 0, dataroom, rte_socket_id());
}

int fy_port_by_name(const char *name, uint16_t *port)
{
	return rte_eth_dev_get_port_by_name(name, port);
}

/* Spreads flows over the port's queues where the PMD hashes: the key, then
 * a redirection table that gives every queue the same share. */
static void rss_setup(uint16_t port, uint16_t nq, const struct rte_eth_dev_info *info,
		      struct fy_setup_info *rss)
{
	struct rte_eth_rss_reta_entry64 reta[RTE_ETH_RSS_RETA_SIZE_512 / RTE_ETH_RETA_GROUP_SIZE];
	uint16_t size = info->reta_size;

	if (rss->hf == 0 || size == 0 || size > RTE_ETH_RSS_RETA_SIZE_512) {
		rss->reta_size = 0;
		return;
	}
	memset(reta, 0, sizeof(reta));
	for (uint16_t i = 0; i < size; i++) {
		struct rte_eth_rss_reta_entry64 *e = &reta[i / RTE_ETH_RETA_GROUP_SIZE];
		e->mask |= 1ULL << (i % RTE_ETH_RETA_GROUP_SIZE);
		e->reta[i % RTE_ETH_RETA_GROUP_SIZE] = i % nq;
	}
	rss->reta_err = rte_eth_dev_rss_reta_update(port, reta, size);
	rss->reta_size = rss->reta_err == 0 ? size : 0;
}

int fy_port_setup(uint16_t port, uint16_t nq, uint16_t nrxd, uint16_t ntxd,
		  struct rte_mempool *mp, uint16_t mtu, const uint8_t *key, uint8_t key_len,
		  struct fy_setup_info *out)
{
	struct rte_eth_dev_info info;
	struct rte_eth_conf conf;
	uint8_t keybuf[64];
	int ret;

	memset(out, 0, sizeof(*out));
	ret = rte_eth_dev_info_get(port, &info);
	if (ret != 0)
		return ret;
	if (info.driver_name != NULL)
		snprintf(out->driver, sizeof(out->driver), "%s", info.driver_name);
	memset(&conf, 0, sizeof(conf));
	if (nq > 1) {
		uint64_t hf = info.flow_type_rss_offloads & (RTE_ETH_RSS_IP | RTE_ETH_RSS_UDP | RTE_ETH_RSS_TCP);
		if (hf != 0) {
			conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
			conf.rx_adv_conf.rss_conf.rss_hf = hf;
			/* No key: the symmetric one (0x6d5a repeated), which
			 * hashes both directions of a flow alike, in the PMD's
			 * length. A key of another length than the PMD's is left
			 * out rather than refused: the PMD's own still spreads. */
			if (key == NULL && info.hash_key_size > 0 && info.hash_key_size <= sizeof(keybuf)) {
				for (unsigned i = 0; i < info.hash_key_size; i++)
					keybuf[i] = i % 2 ? 0x5a : 0x6d;
				key_len = info.hash_key_size;
				conf.rx_adv_conf.rss_conf.rss_key = keybuf;
				conf.rx_adv_conf.rss_conf.rss_key_len = key_len;
				out->key_set = 1;
			} else if (key != NULL && key_len == info.hash_key_size && key_len <= sizeof(keybuf)) {
				memcpy(keybuf, key, key_len);
				conf.rx_adv_conf.rss_conf.rss_key = keybuf;
				conf.rx_adv_conf.rss_conf.rss_key_len = key_len;
				out->key_set = 1;
			}
			out->hf = hf;
		}
	}
	/* A device that checks IPv4 header checksums spares the pipeline
	 * its sum; one that cannot leaves it to the receive checks. */
	if (info.rx_offload_capa & RTE_ETH_RX_OFFLOAD_IPV4_CKSUM) {
		conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_IPV4_CKSUM;
		out->ip_csum = 1;
	}
	if (info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE)
		conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE;
	ret = rte_eth_dev_configure(port, nq, nq, &conf);
	if (ret != 0)
		return ret;
	ret = rte_eth_dev_adjust_nb_rx_tx_desc(port, &nrxd, &ntxd);
	if (ret != 0)
		return ret;
	for (uint16_t q = 0; q < nq; q++) {
		ret = rte_eth_rx_queue_setup(port, q, nrxd, rte_eth_dev_socket_id(port), NULL, mp);
		if (ret != 0)
			return ret;
		struct rte_eth_txconf txc = info.default_txconf;
		txc.offloads = conf.txmode.offloads;
		ret = rte_eth_tx_queue_setup(port, q, ntxd, rte_eth_dev_socket_id(port), &txc);
		if (ret != 0)
			return ret;
	}
	if (mtu != 0) {
		ret = rte_eth_dev_set_mtu(port, mtu);
		if (ret != 0 && ret != -ENOTSUP)
			return ret;
	}
	ret = rte_eth_dev_start(port);
	if (ret != 0)
		return ret;
	if (nq > 1)
		rss_setup(port, nq, &info, out);
	/* Routers see frames for their own MAC and broadcasts; promiscuous
	 * mode is not needed, but allmulticast keeps multicast ARP paths open. */
	rte_eth_allmulticast_enable(port);
	return 0;
}

int fy_port_socket(uint16_t port) { return rte_eth_dev_socket_id(port); }

int fy_port_stop(uint16_t port)
{
	int ret = rte_eth_dev_stop(port);
	rte_eth_dev_close(port);
	return ret;
}

int fy_port_mac(uint16_t port, uint8_t mac[6])
{
	struct rte_ether_addr a;
	int ret = rte_eth_macaddr_get(port, &a);
	if (ret == 0)
		memcpy(mac, a.addr_bytes, 6);
	return ret;
}

int fy_port_link(uint16_t port, uint32_t *speed, int *up)
{
	struct rte_eth_link l;
	int ret = rte_eth_link_get_nowait(port, &l);
	if (ret == 0) {
		*speed = l.link_speed;
		*up = l.link_status == RTE_ETH_LINK_UP;
	}
	return ret;
}

int fy_port_set_mtu(uint16_t port, uint16_t mtu) { return rte_eth_dev_set_mtu(port, mtu); }

int fy_port_stats(uint16_t port, struct fy_port_stats *st)
{
	struct rte_eth_stats s;
	int ret = rte_eth_stats_get(port, &s);
	if (ret != 0)
		return ret;
	st->ipackets = s.ipackets;
	st->opackets = s.opackets;
	st->ibytes = s.ibytes;
	st->obytes = s.obytes;
	st->imissed = s.imissed;
	st->ierrors = s.ierrors;
	st->oerrors = s.oerrors;
	st->rx_nombuf = s.rx_nombuf;
	return 0;
}

struct fy_ws *fy_ws_new(void)
{
	return rte_zmalloc("ferry_ws", sizeof(struct fy_ws), RTE_CACHE_LINE_SIZE);
}

void fy_ws_free(struct fy_ws *ws) { rte_free(ws); }

static inline uint32_t load32(const uint8_t *b)
{
	uint32_t v;
	memcpy(&v, b, sizeof(v));
	return v;
}

static inline uint64_t load64(const uint8_t *b)
{
	uint64_t v;
	memcpy(&v, b, sizeof(v));
	return v;
}

/* First octets that leave an address to the pipeline's full checks: 0/8,
 * 127/8 and 224/4 up. */
static inline int unusual_octet(uint32_t o) { return o == 0 || o == 127 || o >= 224; }

/* pipeline.ParseUsual in C, check for check, with the same loads: a frame
 * it passes skips the pipeline's receive checks, one it fails takes all of
 * them, so the two must agree (dpdk's FuzzParseUsual holds them to it). */
static inline uint8_t parse_usual(struct fy_rxpkt *r, uint64_t mac, uint8_t sum_good)
{
	const uint8_t *h = r->data;

	if (r->len < 14 + 20)
		return 0;
	uint64_t w = load64(h);
	if ((w & 1) == 0 && (w << 16) != (mac << 16))
		return 0;
	if ((load32(h + 12) & 0xffffff) != 0x450008) /* IPv4, version 4, 20 bytes */
		return 0;
	uint64_t w0 = load32(h + 14), w3 = load32(h + 26), w4 = load32(h + 30);
	if (!sum_good && (w0 + load32(h + 18) + load32(h + 22) + w3 + w4) % 0xffff != 0)
		return 0;
	uint32_t tot = __builtin_bswap16((uint16_t)(w0 >> 16));
	uint32_t src = __builtin_bswap32((uint32_t)w3), dst = __builtin_bswap32((uint32_t)w4);
	if (tot - 20 > (uint32_t)(r->len - 14 - 20) || unusual_octet(src >> 24) || unusual_octet(dst >> 24))
		return 0;
	r->dst = dst;
	r->src = src;
	r->len = (uint16_t)(14 + tot);
	r->tos = (uint8_t)(w0 >> 8);
	return 1;
}

uint8_t fy_parse_usual(struct fy_rxpkt *r, uint64_t mac, uint8_t sum_good)
{
	return r->usual = parse_usual(r, mac, sum_good);
}

uint32_t fy_rx(struct fy_ws *ws)
{
	uint32_t n = 0;
	for (uint16_t p = 0; p < ws->nports; p++) {
		struct rte_mbuf **pk = ws->rx_mbufs;
		uint64_t mac = ws->port_mac[p];
		uint16_t want = ws->rx_burst, got;
		/* A chunk at a time, checked as soon as it is in: its buffers
		 * and frames are still in the first-level cache, which a whole
		 * pass's are not by the time the pass would come back to them. */
		do {
			got = rte_eth_rx_burst(ws->port_ids[p], ws->queue, pk, RTE_MIN(want, FY_RX_CHUNK));
			ws->rx_pkts[p] += got;
			want -= got;
			uint32_t first = n;
			for (uint16_t i = 0; i < got; i++) {
				struct rte_mbuf *m = pk[i];
				if (unlikely(m->nb_segs != 1)) {
					/* Chained buffers are not parsed as flat views. */
					rte_pktmbuf_free(m);
					ws->rx_segs[p]++;
					continue;
				}
				struct fy_rxpkt *r = &ws->rx[n++];
				r->ref = m;
				r->data = rte_pktmbuf_mtod(m, void *);
				rte_prefetch0(r->data);
				r->len = m->data_len;
				r->cap = m->buf_len - m->data_off;
				r->port = p;
				/* Until parsed, usual holds whether the device
				 * found the header checksum right. BAD, NONE and
				 * UNKNOWN all leave the sum to the checks. */
				r->usual = (m->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK) == RTE_MBUF_F_RX_IP_CKSUM_GOOD;
			}
			for (uint32_t i = first; i < n; i++)
				ws->rx[i].usual = parse_usual(&ws->rx[i], mac, ws->rx[i].usual);
		} while (want > 0 && got == FY_RX_CHUNK);
	}
	ws->nrx = n;
	return n;
}

uint32_t fy_tx(struct fy_ws *ws)
{
	uint32_t total = 0;
	for (uint16_t p = 0; p < ws->nports; p++) {
		uint16_t n = ws->tx_n[p];
		if (n == 0)
			continue;
		struct rte_mbuf **pk = ws->tx_ref[p];
		for (uint16_t i = 0; i < n; i++) {
			pk[i]->data_len = ws->tx_len[p][i];
			pk[i]->pkt_len = ws->tx_len[p][i];
		}
		uint16_t sent = rte_eth_tx_burst(ws->port_ids[p], ws->queue, pk, n);
		if (unlikely(sent < n)) {
			rte_pktmbuf_free_bulk(&pk[sent], n - sent);
			ws->tx_full[p] += n - sent;
		}
		ws->tx_pkts[p] += sent;
		total += sent;
		ws->tx_n[p] = 0;
	}
	if (ws->nfree) {
		rte_pktmbuf_free_bulk(ws->free_ref, ws->nfree);
		ws->nfree = 0;
	}
	return total;
}

uint32_t fy_txrx(struct fy_ws *ws)
{
	fy_tx(ws);
	return fy_rx(ws);
}

void fy_tx_nap(struct fy_ws *ws, uint32_t ns)
{
	struct timespec ts = {.tv_sec = ns / 1000000000u, .tv_nsec = ns % 1000000000u};

	fy_tx(ws);
	nanosleep(&ts, NULL);
}

uint32_t fy_alloc(struct fy_ws *ws, struct rte_mempool *mp, uint32_t n)
{
	if (n > FY_BURST)
		n = FY_BURST;
	while (ws->nalloc < n) {
		struct rte_mbuf *m = rte_pktmbuf_alloc(mp);
		if (m == NULL)
			break;
		ws->alloc_ref[ws->nalloc] = m;
		ws->alloc_data[ws->nalloc] = rte_pktmbuf_mtod(m, void *);
		ws->alloc_cap[ws->nalloc] = m->buf_len - m->data_off;
		ws->nalloc++;
	}
	return ws->nalloc;
}

void fy_free_bulk(struct rte_mbuf **m, unsigned n) { rte_pktmbuf_free_bulk(m, n); }

unsigned fy_lcore_id(void) { return rte_lcore_id(); }
unsigned fy_max_lcore(void) { return RTE_MAX_LCORE; }

int fy_lcore_info(unsigned lcore, struct fy_lcore_info *info)
{
	memset(info, 0, sizeof(*info));
	if (lcore >= RTE_MAX_LCORE)
		return -EINVAL;
	info->enabled = rte_lcore_is_enabled(lcore);
	if (!info->enabled)
		return 0;
	info->is_main = lcore == rte_get_main_lcore();
	info->socket = (int)rte_lcore_to_socket_id(lcore);
	rte_cpuset_t set = rte_lcore_cpuset(lcore);
	for (int c = 0; c < CPU_SETSIZE && c < 16 * 64; c++)
		if (CPU_ISSET(c, &set))
			info->cpus[c / 64] |= 1ULL << (c % 64);
	return 0;
}

/* The Go side of a pipeline's lcore (dpdk/lcore.go). */
extern void fyLcoreMain(uintptr_t handle);

static int lcore_entry(void *arg)
{
	/* ferryd moves every thread off the pipeline CPUs once the EAL has
	 * started, these among them: take the lcore's own CPUs back. */
	rte_cpuset_t set = rte_lcore_cpuset(rte_lcore_id());
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	fyLcoreMain((uintptr_t)arg);
	return 0;
}

int fy_lcore_launch(unsigned lcore, uintptr_t handle)
{
	return rte_eal_remote_launch(lcore_entry, (void *)handle, lcore);
}

int fy_lcore_wait(unsigned lcore) { return rte_eal_wait_lcore(lcore); }
