#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
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

int fy_port_setup(uint16_t port, uint16_t nq, uint16_t nrxd, uint16_t ntxd,
		  struct rte_mempool *mp, uint16_t mtu)
{
	struct rte_eth_dev_info info;
	struct rte_eth_conf conf;
	int ret;

	ret = rte_eth_dev_info_get(port, &info);
	if (ret != 0)
		return ret;
	memset(&conf, 0, sizeof(conf));
	if (nq > 1) {
		/* Spread flows only where the PMD can hash on IP. */
		uint64_t hf = info.flow_type_rss_offloads & (RTE_ETH_RSS_IP | RTE_ETH_RSS_UDP | RTE_ETH_RSS_TCP);
		if (hf != 0) {
			conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
			conf.rx_adv_conf.rss_conf.rss_hf = hf;
		}
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
	/* Routers see frames for their own MAC and broadcasts; promiscuous
	 * mode is not needed, but allmulticast keeps multicast ARP paths open. */
	rte_eth_allmulticast_enable(port);
	return 0;
}

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

uint32_t fy_rx(struct fy_ws *ws)
{
	uint32_t n = 0;
	ws->polls++;
	for (uint16_t p = 0; p < ws->nports; p++) {
		struct rte_mbuf **pk = ws->rx_mbufs;
		uint16_t got = rte_eth_rx_burst(ws->port_ids[p], ws->queue, pk, ws->rx_burst);
		for (uint16_t i = 0; i < got; i++) {
			struct rte_mbuf *m = pk[i];
			if (unlikely(m->nb_segs != 1)) {
				/* Chained buffers are not parsed as flat views. */
				rte_pktmbuf_free(m);
				ws->rx_segs_dropped++;
				continue;
			}
			struct fy_rxpkt *r = &ws->rx[n++];
			r->ref = m;
			r->data = rte_pktmbuf_mtod(m, void *);
			r->len = m->data_len;
			r->cap = m->buf_len - m->data_off;
			r->port = p;
		}
		ws->rx_pkts[p] += got;
	}
	if (n == 0)
		ws->idle_polls++;
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

int fy_thread_register(void) { return rte_thread_register(); }
void fy_thread_unregister(void) { rte_thread_unregister(); }
unsigned fy_lcore_id(void) { return rte_lcore_id(); }


int fy_pin(int cpu)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}
