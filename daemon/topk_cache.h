/* topk_cache.h - the top-k cache service: the projection cache TOPK is
 * answered from (sv/topk.h), and the thread that keeps it current.
 *
 * One holder (sv/topk.h) owns the live cache: the normalized projection of
 * every stored item (inline pair vectors, item flag SV_STORE_ITEM_INLINE, are
 * left out) under ONE model snapshot.  A background thread rebuilds it:
 *
 *   rebuild policy  every few ms the thread looks at the current snapshot;
 *                   when its version differs from the live cache's, or its
 *                   steps do and query.topk_refresh has passed since the
 *                   last rebuild began (default 1 s, live; 0: after every
 *                   step), and the previous rebuild has finished, it begins a
 *                   rebuild with the snapshot's W, walks the store in one
 *                   read transaction, projects the items (sv_topk_cache_load:
 *                   one GEMM per 1024 rows) and publishes.  It then waits at
 *                   least as long as that rebuild took before the next one,
 *                   so at large N it spends at most about half a core.  The
 *                   cache therefore lags the latest snapshot's steps by at
 *                   most max(query.topk_refresh, one rebuild) plus the poll
 *                   interval, never its version label; every TOPK answer names the version
 *                   of the cache that computed it, and a query never mixes
 *                   two caches.  A checkpoint or rollback (new version)
 *                   rebuilds too, as its label changes.  The walk holds one
 *                   store read transaction for its duration (a map growth
 *                   waits for it).
 *   mutations       the trainer (the only store writer) notes each item put
 *                   and delete of a group (topk_cache_note_put / _del) and,
 *                   once the group is COMMITTED and before any ack is sent,
 *                   applies them to the holder (topk_cache_commit): the next
 *                   query after an ack sees them, and a rebuild in flight
 *                   replays them (sv/topk.h holder rules).
 *   start          the first build runs in topk_cache_start, before the daemon
 *                   says READY, so every TOPK is answered from a cache.
 *
 * Threads: note/commit/abort from the trainer thread only; answer from any
 * query thread (the query front, its batch thread or a worker); start/stop
 * from main.  SV_TOPK_TEST_DELAY_MS (environment, tests only) holds every
 * rebuild that long before it publishes, so tests can query while a rebuild
 * is in flight.
 *
 * Leaves out: approximate search, persistence of the cache (the store is the
 * source; the cache is rebuilt at start).
 */
#ifndef SV_DAEMON_TOPK_CACHE_H
#define SV_DAEMON_TOPK_CACHE_H

#include <stddef.h>
#include <stdint.h>

struct sv_daemon;
struct sv_proto_request;
struct sv_proto_msgbuf;
struct sv_proto_side;
struct sv_proto_topk_query;
struct sv_proto_hit;
struct sv_topk_hit;
struct topk_cache;

/* Make the holder from the current snapshot (d->snap must hold one), build
 * the first cache from the store (here, on the caller's thread), and start
 * the rebuild thread.  Returns 0 or a negative code (logged). */
int topk_cache_start(struct topk_cache **out, struct sv_daemon *d);

/* Stop the thread (aborting a rebuild in flight) and free.  Accepts NULL.
 * No other call may be in progress or follow. */
void topk_cache_stop(struct topk_cache *g);

/* Trainer: an item put (vec: d_in floats, copied) / delete in the group in
 * hand.  Inline items are not noted.  Accept g == NULL (no cache). */
void topk_cache_note_put(struct topk_cache *g, const void *id, size_t len, const float *vec);
void topk_cache_note_del(struct topk_cache *g, const void *id, size_t len);

/* Trainer: the group committed (ok != 0: apply the noted mutations to the
 * holder) or failed (ok == 0: forget them).  Accepts NULL. */
void topk_cache_commit(struct topk_cache *g, int ok);

/* The buffers of one answering thread, kept from one answer to the next so
 * that an answer allocates nothing once they have grown to its size (up to
 * TOPK_SCRATCH_KEEP bytes: an answer that needed more, a k in the
 * thousands, lets them go).  Owned by that thread: zero-initialize, pass to
 * every topk_cache_answer, free with topk_scratch_free.  Its fields are
 * topk_cache.c's. */
#define TOPK_SCRATCH_KEEP ((size_t)1 << 20)
struct topk_scratch {
	struct sv_proto_side *qs; /* one per query */
	struct sv_proto_topk_query *qr;
	uint8_t *st;
	size_t *counts;
	float *E;                 /* queries x d_out */
	float *X, *EX;            /* vector queries x d_in, x d_out */
	size_t *xrow;             /* a vector query's row of E */
	struct sv_topk_hit *hits; /* queries x (k + 1) */
	struct sv_proto_hit *out; /* queries x k */
	float *x;                 /* d_in */
	size_t q_cap, hit_cap, out_cap, x_cap;
};
void topk_scratch_free(struct topk_scratch *s);

/* Answer n decoded TOPK requests, reply b into mbs[b], from the live cache
 * (any query thread, each with its own scratch s): the query vectors of
 * every request are projected with one GEMM (ids are looked up), then ONE
 * product over the cache ranks them all (16 requests of one query are one
 * 16-row GEMM, not 16 GEMVs), then each request gets its own k and its own
 * reply.  All n see the same cache, and
 * every row of every reply names its version. */
void topk_cache_answer(struct topk_cache *g, const struct sv_proto_request *const *rqs, size_t n,
                       struct sv_proto_msgbuf *mbs, struct topk_scratch *s);

/* Products answered so far by their number of queries: counts[q] for q in
 * 1..TOPK_CACHE_BATCH_MAX - 1, counts[TOPK_CACHE_BATCH_MAX] for that many
 * or more (counts[0] is 0).  STATUS topk_cache.products and the metric
 * simverify_topk_product_queries show them (sv-bench query times the engine
 * alone on the products the daemon formed from them).  All 0 with g == NULL. */
#define TOPK_CACHE_BATCH_MAX 64
void topk_cache_batches(struct topk_cache *g, uint64_t counts[TOPK_CACHE_BATCH_MAX + 1]);

/* The live cache's rows (live plus tombstoned): what one query's product
 * scans.  0 with g == NULL. */
size_t topk_cache_rows(struct topk_cache *g);

/* Version and steps of the snapshot the live cache was built from, and the
 * number of rebuilds published (0 before the first); any pointer may be
 * NULL. */
void topk_cache_info(struct topk_cache *g, uint64_t *version, uint64_t *steps, uint64_t *rebuilds);

#endif
