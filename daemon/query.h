/* query.h - the query socket: SCORE, SCORE_BATCH, TOPK, ITEM_GET.
 *
 * One front thread owns the ROUTER (ROUTER_MANDATORY: a reply to a vanished
 * client is counted, not queued forever).  It answers cheap requests itself
 * (a SCORE, a small SCORE_BATCH, ITEM_GET, and a lone TOPK over a small
 * cache: query.c says exactly which).  The TOPKs over a small cache that
 * come together are collected and ranked as one product each set, by one
 * batch thread (sv-query-topk) while the front keeps receiving and replying,
 * or by the front when both sets are full.  The rest passes over inproc to
 * query_threads workers.  DEALER clients may pipeline any number of
 * requests and match replies by request id (replies may come in any
 * order).  Workers read the model only through snapshots (snapshot.h)
 * and items only through read-only store transactions: nothing here waits
 * for a training step.
 *
 * Every request gets a reply: its answer, or a status with a message
 * (MALFORMED with the codec's reason, NOT_FOUND, REFUSED for verbs of other
 * sockets).  Malformed requests are counted by reason.
 *
 * TOPK is answered from the top-k cache service (topk_cache.h).
 */
#ifndef SV_DAEMON_QUERY_H
#define SV_DAEMON_QUERY_H

#include "daemon.h"

struct dquery;

/* Bind the query socket and start the front and worker threads.  Returns
 * 0 or a negative code (logged); *out is set either way, and query_stop
 * must follow zmq_ctx_shutdown. */
int query_start(struct dquery **out, struct sv_daemon *d);

/* Join the threads (after zmq_ctx_shutdown made their sockets fail) and
 * free.  Accepts NULL. */
void query_stop(struct dquery *q);

#endif
