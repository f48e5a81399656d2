/* Thin C layer under the Go binding: everything that would otherwise cost a
 * cgo call per packet is done here once per burst. */
#ifndef FERRY_SHIM_H
#define FERRY_SHIM_H

#include <stdint.h>

#define FY_MAX_PORTS 16
#define FY_BURST 32   /* spare buffers handed to Go at a time */
#define FY_RX_MAX 512 /* packets received per pass, over all ports */
#define FY_TX_MAX 512 /* packets sent per pass and port: a pass's worth */
#define FY_FREE_MAX 1024
#define FY_RX_CHUNK 32 /* packets a PMD call receives: checked while in cache */

struct rte_mempool;
struct rte_mbuf;

/* A received packet, laid out as pipeline.RxPkt: the shim fills the buffer
 * fields, the pipeline's receive stage the header fields, in place. */
struct fy_rxpkt {
	struct rte_mbuf *ref;
	void *data;
	uint32_t dst, src; /* host order */
	uint16_t len;      /* data_len */
	uint16_t cap;      /* room from data */
	uint16_t port;     /* index into port_ids */
	uint8_t tos;
	uint8_t usual; /* passed fy_parse_usual: the header fields are filled
			* (in fy_rx, until then: the device found the
			* header checksum right) */
};

/* One per pipeline core, allocated in C memory so Go can view it without
 * cgo pointer checks. Go reads rx (and completes its records in place),
 * writes tx_* and free_*. */
struct fy_ws {
	uint16_t nports;
	uint16_t queue;
	uint16_t rx_burst; /* per port and pass: nports * rx_burst <= FY_RX_MAX */
	uint16_t port_ids[FY_MAX_PORTS];
	/* Each port's MAC as the frame's first 8 bytes load it (little-endian),
	 * for the receive checks: written by Go. */
	uint64_t port_mac[FY_MAX_PORTS];

	uint32_t nrx;
	struct fy_rxpkt rx[FY_RX_MAX];
	struct rte_mbuf *rx_mbufs[FY_RX_MAX]; /* one port's burst, as received */

	uint16_t tx_n[FY_MAX_PORTS];
	struct rte_mbuf *tx_ref[FY_MAX_PORTS][FY_TX_MAX];
	uint16_t tx_len[FY_MAX_PORTS][FY_TX_MAX];

	uint32_t nfree;
	struct rte_mbuf *free_ref[FY_FREE_MAX];

	/* Cumulative, written by C only. */
	uint64_t rx_pkts[FY_MAX_PORTS];
	uint64_t tx_pkts[FY_MAX_PORTS];
	uint64_t tx_full[FY_MAX_PORTS];
	uint64_t rx_segs[FY_MAX_PORTS]; /* dropped: frames in chained buffers */

	/* Buffers handed to Go for packets it creates. */
	uint32_t nalloc;
	struct rte_mbuf *alloc_ref[FY_BURST];
	void *alloc_data[FY_BURST];
	uint16_t alloc_cap[FY_BURST];
};

int fy_eal_init(int argc, char **argv);
void fy_eal_cleanup(void);
const char *fy_strerror(int err);
int fy_errno(void);

struct rte_mempool *fy_pool_create(const char *name, unsigned n, unsigned cache, unsigned dataroom);

int fy_port_by_name(const char *name, uint16_t *port);

/* What a port's set-up did: how it spreads flows over its queues, and
 * which receive offloads it turned on. */
struct fy_setup_info {
	char driver[32];
	uint64_t hf;        /* hash functions in use; 0: the PMD does not hash */
	uint16_t reta_size; /* redirection table entries spread evenly; 0: none */
	uint8_t key_set;    /* the configured key is in use */
	uint8_t ip_csum;    /* the device checks IPv4 header checksums */
	int reta_err;       /* why the table could not be written, 0 if it was */
};

/* Sets up nq rx and tx queues and starts the port. With nq > 1 and a PMD
 * that hashes, flows are spread by RSS with key (key_len bytes; NULL for
 * the symmetric key) over an even redirection table. A device that can
 * check IPv4 header checksums is asked to. */
int fy_port_setup(uint16_t port, uint16_t nq, uint16_t nrxd, uint16_t ntxd,
		  struct rte_mempool *mp, uint16_t mtu, const uint8_t *key, uint8_t key_len,
		  struct fy_setup_info *out);
int fy_port_stop(uint16_t port);
int fy_port_socket(uint16_t port);
int fy_port_mac(uint16_t port, uint8_t mac[6]);
int fy_port_link(uint16_t port, uint32_t *speed, int *up);
int fy_port_set_mtu(uint16_t port, uint16_t mtu);

struct fy_port_stats {
	uint64_t ipackets, opackets, ibytes, obytes, imissed, ierrors, oerrors, rx_nombuf;
};
int fy_port_stats(uint16_t port, struct fy_port_stats *st);

/* The receive checks of the usual frame (pipeline.ParseUsual, their
 * reference): r's data, len and port filled, mac its port's; sum_good when
 * the device found the header checksum right. */
uint8_t fy_parse_usual(struct fy_rxpkt *r, uint64_t mac, uint8_t sum_good);

struct fy_ws *fy_ws_new(void);
void fy_ws_free(struct fy_ws *ws);

/* Polls every port's queue ws->queue once, for up to rx_burst packets
 * each; fills rx[0..nrx). */
uint32_t fy_rx(struct fy_ws *ws);
/* Sends every port's tx list, frees what the PMD refused and everything in
 * free_ref; clears the lists. Returns packets sent. */
uint32_t fy_tx(struct fy_ws *ws);
/* fy_tx, then fy_rx: the loop's one call per burst. Returns packets
 * received. */
uint32_t fy_txrx(struct fy_ws *ws);
/* Sends what is queued, then sleeps ns nanoseconds: an idle pipeline's
 * nap, taken in C so that its goroutine keeps its P (see worker.go). */
void fy_tx_nap(struct fy_ws *ws, uint32_t ns);
/* Refills alloc_* up to n buffers from mp. */
uint32_t fy_alloc(struct fy_ws *ws, struct rte_mempool *mp, uint32_t n);
void fy_free_bulk(struct rte_mbuf **m, unsigned n);

/* EAL lcores: what one is, and running a pipeline on it. */
struct fy_lcore_info {
	int enabled; /* an lcore of this EAL */
	int is_main;
	int socket;
	uint64_t cpus[16]; /* its CPU set, a bit a CPU */
};
int fy_lcore_info(unsigned lcore, struct fy_lcore_info *info);
/* Runs the Go loop registered as handle on lcore; returns at once. */
int fy_lcore_launch(unsigned lcore, uintptr_t handle);
/* Waits for the lcore's loop to return. */
int fy_lcore_wait(unsigned lcore);
unsigned fy_lcore_id(void);
unsigned fy_max_lcore(void);

#endif
