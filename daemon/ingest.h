/* ingest.h - reading labeled pairs and item changes into the store.
 *
 * The ingest module owns the two ingest sockets (PULL, fire and forget, and
 * the acked ROUTER) and the group in hand.  It is a pipeline of two
 * threads:
 *
 *   decode stage (sv-ingest-dec, started by ingest_start): the only thread
 *     that touches the two sockets.  It reads each message whole, decodes
 *     and checks it (frame sizes, dims, every float finite), copies the
 *     vectors of PAIR, PAIR_BATCH and ITEM_PUT out of the frames and
 *     hashes each inline side's content id, and queues it on its socket's
 *     queue, in the order read.  Each queue holds at most one group's
 *     pairs (group_max) and 64 MiB; when one is full the stage stops
 *     reading that socket, so publishers wait at its high-water mark and
 *     nothing is dropped.  It also sends every reply on the ROUTER: the
 *     writer hands them over in order through an inproc socket.
 *   writer (the trainer thread, the store's only writer): ingest_group
 *     takes up to group_max decoded messages from the two queues, resolves
 *     item ids and inline vectors (the latter stored as content-addressed
 *     items, sv/store.h), applies every item put or delete and pair append
 *     to ONE store group, commits it (durable per store.sync), tells the
 *     top-k cache, answers the acked messages, and only then hands the
 *     logged pairs back to the caller, in log order, to batch and train.
 *
 * Every verdict on a message (malformed, refused, its counters and log
 * line) is the writer's, in the order the messages came, as if it had
 * decoded them itself; the stage only prepares.
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
 * from d->conf) and the inproc socket of the replies.  Logs each failure.
 * Returns 0 or -errno. */
int ingest_bind(struct ingest *g);
/* Start the decode stage (after ingest_bind; the sockets are its from
 * then on).  Returns 0 or -EAGAIN. */
int ingest_start(struct ingest *g);
/* Stop the decode stage once the writer is done (after its last reply,
 * which the stage still sends); messages it queued and the writer did not
 * take are dropped, unanswered, like unread ones.  Accepts NULL and a
 * stage never started. */
void ingest_stop(struct ingest *g);
/* Stop the stage, close the sockets (linger 0) and free everything;
 * accepts NULL. */
void ingest_free(struct ingest *g);

/* The writer's input to poll: it[0] the acked queue, it[1] the
 * fire-and-forget one, each readable while it holds a decoded message
 * (eventfds).  Leave it[1] unpolled to hold fire-and-forget publishers
 * back: its queue fills, the stage stops reading the PULL socket. */
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
