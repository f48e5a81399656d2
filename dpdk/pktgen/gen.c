#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <unistd.h>
#include <stdio.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_pause.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>

#include "gen.h"

/* Counters are read by another thread: store them whole, never torn. */
#define BUMP(field, v) __atomic_store_n(&(field), (field) + (v), __ATOMIC_RELAXED)

/* loop_done counts one pass of a loop, idle when it moved nothing, and
 * stamps the time the Go side reads to tell a stalled loop. */
static inline void loop_done(struct fy_gen_counters *c, unsigned work)
{
	BUMP(c->loops, 1);
	if (work == 0)
		BUMP(c->idle_loops, 1);
	__atomic_store_n(&c->tsc, rte_rdtsc(), __ATOMIC_RELAXED);
}

#define OFF_ETHTYPE 12
#define OFF_IP 14
#define OFF_CSUM (OFF_IP + 10)
#define OFF_DST (OFF_IP + 16)

struct fy_gen *fy_gen_new(void)
{
	return rte_zmalloc("ferry_gen", sizeof(struct fy_gen), RTE_CACHE_LINE_SIZE);
}

void fy_gen_free(struct fy_gen *g) { rte_free(g); }

int fy_gen_prepare(struct fy_gen *g)
{
	if (g->nsizes == 0 || g->nsizes > FY_GEN_MAX_SIZES || g->nseq == 0 || g->nseq > FY_GEN_MAX_SEQ)
		return -1;
	for (unsigned k = 0; k < g->nseq; k++)
		if (g->seq[k] >= g->nsizes)
			return -1;
	for (unsigned k = 0; k < g->nsizes; k++) {
		const uint8_t *h = g->hdr[k];
		uint16_t w[10];
		if (h[OFF_IP] != 0x45 || g->frame_len[k] < FY_GEN_HDR)
			return -1;
		/* The sum of the header's words as the CPU loads them, with the
		 * checksum and destination left zero: adding the destination's
		 * two words per packet and folding gives the checksum in the
		 * same (network) byte layout, whatever the CPU's endianness. */
		memcpy(w, h + OFF_IP, sizeof(w));
		uint32_t s = 0;
		for (int i = 0; i < 10; i++)
			s += w[i];
		g->csum_base[k] = s;
	}
	return 0;
}

static inline uint16_t csum_with(uint32_t base, uint32_t dst)
{
	uint32_t s = base + (dst & 0xffff) + (dst >> 16);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

/* Writes n frames from the templates into fresh buffers; returns their bytes. */
static inline uint64_t stamp(struct fy_gen *g, struct rte_mbuf **m, unsigned n, uint32_t *di, uint32_t *si)
{
	uint64_t bytes = 0;
	uint32_t d = *di, s = *si;
	for (unsigned i = 0; i < n; i++) {
		unsigned k = g->seq[s];
		uint8_t *p = rte_pktmbuf_mtod(m[i], uint8_t *);
		uint32_t dst = g->dst[d];
		uint16_t cs = csum_with(g->csum_base[k], dst);
		memcpy(p, g->hdr[k], FY_GEN_HDR);
		memcpy(p + OFF_DST, &dst, 4);
		memcpy(p + OFF_CSUM, &cs, 2);
		m[i]->data_len = g->frame_len[k];
		m[i]->pkt_len = g->frame_len[k];
		bytes += g->frame_len[k];
		if (++d == g->ndst)
			d = 0;
		if (++s == g->nseq)
			s = 0;
	}
	*di = d;
	*si = s;
	return bytes;
}

/* Counts and frees what a port received; IPv4 frames count as returns. */
static inline unsigned drain(uint16_t port, uint16_t q, struct rte_mbuf **rx, uint16_t burst,
			     uint64_t *ipv4, uint64_t *bytes, uint64_t *other)
{
	uint16_t n = rte_eth_rx_burst(port, q, rx, burst);
	if (n == 0)
		return 0;
	uint64_t v4 = 0, b = 0;
	const uint16_t ipv4_be = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
	for (uint16_t i = 0; i < n; i++) {
		uint16_t et;
		memcpy(&et, rte_pktmbuf_mtod(rx[i], uint8_t *) + OFF_ETHTYPE, 2);
		if (likely(et == ipv4_be)) {
			v4++;
			b += rx[i]->pkt_len;
		}
	}
	rte_pktmbuf_free_bulk(rx, n);
	if (ipv4 != NULL) {
		BUMP(*ipv4, v4);
		BUMP(*bytes, b);
		BUMP(*other, n - v4);
	} else {
		BUMP(*other, n);
	}
	return n;
}

static void send_loop(struct fy_gen *g)
{
	struct rte_mbuf *pend[FY_GEN_MAX_BURST];
	struct rte_mbuf *rx[FY_GEN_MAX_BURST];
	struct fy_gen_counters *c = &g->c;
	const uint16_t burst = g->burst;
	uint16_t npend = 0;
	uint32_t di = g->next_dst % g->ndst, si = g->next_seq % g->nseq;
	const uint64_t backoff = rte_get_tsc_hz() / 1000000 * g->backoff_us;

	while (!g->stop) {
		unsigned work = 0;
		if (npend < burst) {
			unsigned want = burst - npend;
			/* Unsent frames stay queued and go first next time, so a
			 * slow receiver pushes back on the generator instead of
			 * costing it frames it stamped for nothing. */
			if (rte_pktmbuf_alloc_bulk(g->mp, &pend[npend], want) == 0) {
				stamp(g, &pend[npend], want, &di, &si);
				npend += want;
			} else {
				BUMP(c->alloc_fail, 1);
			}
		}
		if (npend > 0) {
			/* Lengths are read before sending: a sent buffer may be
			 * back in the pool when tx_burst returns. */
			uint16_t lens[FY_GEN_MAX_BURST];
			for (uint16_t i = 0; i < npend; i++)
				lens[i] = pend[i]->data_len;
			uint16_t sent = rte_eth_tx_burst(g->tx_port, g->queue, pend, npend);
			if (sent > 0) {
				uint64_t b = 0;
				for (uint16_t i = 0; i < sent; i++)
					b += lens[i];
				BUMP(c->tx_pkts, sent);
				BUMP(c->tx_bytes, b);
				work += sent;
			}
			if (sent < npend) {
				BUMP(c->tx_full, 1);
				memmove(pend, pend + sent, (npend - sent) * sizeof(pend[0]));
			}
			npend -= sent;
			if (sent == 0 && backoff > 0) {
				/* The ring is full: the receiver has a ring's worth of
				 * work. Re-reading its indices at once would only
				 * bounce their cache line under the receiver. */
				uint64_t until = rte_rdtsc() + backoff;
				while (rte_rdtsc() < until && !g->stop) {
					work += drain(g->rx_port, g->queue, rx, burst, &c->rx_pkts, &c->rx_bytes, &c->rx_other);
					rte_pause();
				}
			}
		}
		work += drain(g->rx_port, g->queue, rx, burst, &c->rx_pkts, &c->rx_bytes, &c->rx_other);
		if (g->tx_port != g->rx_port)
			work += drain(g->tx_port, g->queue, rx, burst, NULL, NULL, &c->rx_back);
		loop_done(c, work);
	}
	if (npend > 0)
		rte_pktmbuf_free_bulk(pend, npend);
	g->next_dst = di;
	g->next_seq = si;
}

/* Forwards rx_port to tx_port unchanged: the cheapest possible device under
 * test, whose rate is the source limit. */
static void reflect_loop(struct fy_gen *g)
{
	struct rte_mbuf *pend[FY_GEN_MAX_BURST];
	struct rte_mbuf *rx[FY_GEN_MAX_BURST];
	struct fy_gen_counters *c = &g->c;
	const uint16_t burst = g->burst;
	uint16_t npend = 0;

	while (!g->stop) {
		unsigned work = 0;
		if (npend == 0) {
			npend = rte_eth_rx_burst(g->rx_port, g->queue, pend, burst);
			if (npend > 0) {
				uint64_t b = 0;
				for (uint16_t i = 0; i < npend; i++)
					b += pend[i]->pkt_len;
				BUMP(c->rx_pkts, npend);
				BUMP(c->rx_bytes, b);
			}
		}
		if (npend > 0) {
			uint16_t sent = rte_eth_tx_burst(g->tx_port, g->queue, pend, npend);
			BUMP(c->tx_pkts, sent);
			if (sent < npend) {
				BUMP(c->tx_full, 1);
				memmove(pend, pend + sent, (npend - sent) * sizeof(pend[0]));
			}
			npend -= sent;
			work += sent;
		}
		work += drain(g->tx_port, g->queue, rx, burst, NULL, NULL, &c->rx_back);
		loop_done(c, work);
	}
	if (npend > 0)
		rte_pktmbuf_free_bulk(pend, npend);
}

void fy_gen_run(struct fy_gen *g)
{
	if (g->burst == 0 || g->burst > FY_GEN_MAX_BURST)
		g->burst = 32;
	__atomic_store_n(&g->tid, (int32_t)gettid(), __ATOMIC_RELAXED);
	if (g->mode == FY_GEN_REFLECT)
		reflect_loop(g);
	else
		send_loop(g);
}

int fy_gen_thread_start(int cpu)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	int ret = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	if (ret != 0)
		return -ret;
	/* Registered threads get an lcore id, hence mempool caches. */
	if (rte_thread_register() != 0)
		return -rte_errno;
	return 0;
}

void fy_gen_thread_end(void) { rte_thread_unregister(); }

uint64_t fy_gen_tsc_hz(void) { return rte_get_tsc_hz(); }
