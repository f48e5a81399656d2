/* Traffic generator and reflector loops for the benchmark (cmd/ferry-pktgen).
 * Go builds the templates and reads the counters; everything per packet and
 * per burst happens here, in one cgo call that runs until told to stop. */
#ifndef FERRY_GEN_H
#define FERRY_GEN_H

#include <stdint.h>

#define FY_GEN_MAX_BURST 64
#define FY_GEN_HDR 42      /* Ethernet + IPv4 + UDP, what a template stamps */
#define FY_GEN_MAX_SIZES 8 /* distinct frame sizes in one mix */
#define FY_GEN_MAX_SEQ 64  /* length of the size sequence (IMIX order) */

enum { FY_GEN_SEND = 0, FY_GEN_REFLECT = 1 };

struct rte_mempool;

/* Written by the loop, read by Go with atomic loads. */
struct fy_gen_counters {
	uint64_t tx_pkts, tx_bytes;    /* accepted by the tx port */
	uint64_t tx_full;              /* bursts the tx port took only partly */
	uint64_t alloc_fail;           /* bulk allocations that failed */
	uint64_t rx_pkts, rx_bytes;    /* IPv4 frames back on the rx port */
	uint64_t rx_other;             /* non-IPv4 frames on the rx port */
	uint64_t rx_back;              /* frames arriving on the tx port (ICMP, ARP) */
	uint64_t loops, idle_loops;
	uint64_t tsc;                  /* rte_rdtsc() at the last loop pass */
};

struct fy_gen {
	/* Set by Go before fy_gen_run. */
	uint16_t mode;
	uint16_t tx_port, rx_port, queue;
	uint16_t burst;
	uint16_t backoff_us; /* pause after the tx ring was found full */
	struct rte_mempool *mp;

	/* Destination template: addresses in network order, used in turn. */
	const uint32_t *dst;
	uint32_t ndst;

	/* Headers per size class, filled by Go with dst and checksum zero;
	 * fy_gen_prepare computes csum_base from them. */
	uint8_t hdr[FY_GEN_MAX_SIZES][64];
	uint16_t frame_len[FY_GEN_MAX_SIZES];
	uint32_t csum_base[FY_GEN_MAX_SIZES];
	uint16_t nsizes;
	uint8_t seq[FY_GEN_MAX_SEQ]; /* size classes in sending order */
	uint16_t nseq;

	/* Loop position, kept across runs so a restart continues the pattern. */
	uint32_t next_dst;
	uint32_t next_seq;

	volatile uint32_t stop;
	int32_t tid; /* the loop thread's id, for its scheduler statistics */
	struct fy_gen_counters c;
};

struct fy_gen *fy_gen_new(void);
void fy_gen_free(struct fy_gen *g);
/* Computes the checksum bases; returns -1 if a header is not IPv4. */
int fy_gen_prepare(struct fy_gen *g);
/* Runs the send or reflect loop until g->stop is set; frees what it holds. */
void fy_gen_run(struct fy_gen *g);
/* Pins the calling thread to cpu and registers it with the EAL. */
int fy_gen_thread_start(int cpu);
void fy_gen_thread_end(void);
uint64_t fy_gen_tsc_hz(void);

#endif
