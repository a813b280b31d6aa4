/* ingest.h - reading labeled pairs and item changes into the store.
 *
 * The ingest module owns the two ingest sockets (PULL, fire and forget, and
 * the acked ROUTER) and the group in hand.  It runs on the trainer thread,
 * the store's only writer: ingest_group reads up to group_max messages,
 * validates them, resolves item ids and inline vectors (the latter stored as
 * content-addressed items, sv/store.h), applies every item put or delete and
 * pair append to ONE store group, commits it (durable per store.sync), tells
 * the top-k cache, answers the acked messages, and only then hands the
 * logged pairs back to the caller, in log order, to batch and train.
 *
 * A message is answered once: malformed ones at once (nothing stored), the
 * rest after the commit (ACK with per-row outcomes, DUPLICATE, STORE_FULL
 * when the group did not fit, or INTERNAL when the commit failed otherwise).
 * CLIENT_STATE is answered at once from the committed state.  Replies never
 * block: a client that does not read loses them (counted as unroutable).
 *
 * The store's bounds live here too: retention (store.retain_*) runs inside
 * every group and, when idle, in small groups of its own once a second,
 * with the expiry of idle clients' windows; a full store (the map at
 * store.max_map_size, the file system under store.min_free, or data.mdb
 * gone) stops the PULL socket being read, keeps a group that did not fit
 * with its fire-and-forget messages for a retry, and answers acked writes
 * STORE_FULL until room is back (docs/DAEMON.md).
 *
 * Leaves out: batching and training (trainer.c), queries (query.c).
 */
#ifndef SV_DAEMON_INGEST_H
#define SV_DAEMON_INGEST_H

#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

struct sv_daemon;
struct sv_proto_limits;
struct ingest;

/* A pair the last group logged.  The vectors are the ingest module's and
 * valid until the next ingest_group call. */
struct ingest_pair {
	const float *xa, *xb;
	uint64_t key_a, key_b; /* sv_journal_item_key of the ids */
	uint64_t seq;          /* log sequence */
	uint8_t label;
};

/* Make the ingest state (no sockets yet).  Returns 0 or -ENOMEM. */
int ingest_new(struct ingest **out, struct sv_daemon *d);
/* Create and bind the PULL and ROUTER sockets (endpoints, HWMs and CURVE
 * from d->conf).  Logs each failure.  Returns 0 or -errno. */
int ingest_bind(struct ingest *g);
/* Close the sockets (linger 0) and free everything; accepts NULL. */
void ingest_free(struct ingest *g);

/* The two sockets to poll for input: it[0] the acked ROUTER, it[1] the PULL
 * (leave it[1] unpolled to hold fire-and-forget publishers back). */
void ingest_pollitems(struct ingest *g, zmq_pollitem_t it[2]);

/* Read, commit and answer one group (see above).  Returns the number of
 * messages read (0: nothing was waiting); *pairs / *n get the pairs logged,
 * in log order. */
size_t ingest_group(struct ingest *g, const struct ingest_pair **pairs, size_t *n);

/* Whether the last group ended at the stream's CUT message (cluster.h;
 * cleared by the call): the trainer then cuts the batch. */
int ingest_cut_taken(struct ingest *g);

/* CLIENT_STATE's reply into mb: a client's committed high-water mark and
 * de-duplication window, from the store (any thread; the cluster gateway
 * answers it too).  The reply borrows json, the caller's buffer: keep it
 * until the reply is sent. */
#define INGEST_STATE_JSON_MAX 256
struct sv_proto_request;
struct sv_proto_msgbuf;
void ingest_client_state(struct sv_daemon *d, const struct sv_proto_request *rq,
                         struct sv_proto_msgbuf *mb, char json[INGEST_STATE_JSON_MAX]);

/* The live settings from now on (a reload; the trainer thread): decoder
 * limits, retention, store.min_free, store.max_map_size, the
 * de-duplication window and depth. */
struct sv_live;
void ingest_set_live(struct ingest *g, const struct sv_live *lv);

/* Whether ingest_group has work without input: upkeep (retention, window
 * expiry, the disk check) or a full store to try again. */
int ingest_due(const struct ingest *g);
/* Whether to read the PULL socket: no while the store is full (the
 * publishers then block at the high-water mark; nothing is dropped). */
int ingest_pull_open(const struct ingest *g);

/* While paused: answer every waiting acked message PAUSED (nothing stored;
 * CLIENT_STATE is answered). */
void ingest_refuse_paused(struct ingest *g);

/* While paused: read the PULL socket while what it kept stays under
 * limits.max_paused_bytes; an oversize message is rejected now, the others
 * are kept, in order, for the first groups after RESUME.  So a paused
 * daemon holds at most that many bytes of checked messages (and ZeroMQ's
 * own queue once they are reached).  ingest_hold_room: whether to poll the
 * PULL socket for it. */
void ingest_hold_paused(struct ingest *g);
int ingest_hold_room(const struct ingest *g);

#endif
