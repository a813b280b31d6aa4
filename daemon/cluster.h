/* cluster.h - a cluster node on NATS JetStream (cluster.role trainer or
 * replica; docs/SCALING.md has the design, the guarantees and what is not
 * promised).
 *
 * With cluster.role off (the default) nothing here runs and every call is a
 * no-op on a NULL handle.  With trainer, three threads join the daemon, each
 * with its own NATS connection (daemon/jetstream.h):
 *   sv-gateway  binds the ingest endpoints in place of ingest.c, checks each
 *               message with the same decoder and limits, and publishes the
 *               good ones to the pair stream (message id: client id + seq,
 *               or the gateway's own for messages without one); answers the
 *               acked ones once JetStream acked (cluster.ack stored) or once
 *               this node's group commit holds them (committed), with up to
 *               512 messages in flight, each answered as its ack comes;
 *               publishes the batch cuts the leader's trainer asks for.
 *   sv-feed     the node's durable pull consumer on the stream: hands every
 *               message, in stream order, to ingest.c on an inproc socket
 *               (frame 0 its stream and source sequences), up to three
 *               fetches ahead, and acks the stream up to the last sequence the
 *               trainer committed (the store keeps that sequence with each
 *               commit, so a restart resumes just after it).  The leader
 *               also copies item changes to the items stream (latest value
 *               per id).
 *   sv-lease    holds or waits for the trainer lease (a key in a TTL bucket,
 *               whose value names the holder and the settings W depends
 *               on) and, while this node leads, publishes each new
 *               checkpoint to the models bucket by compare-and-set on its
 *               revision; releases the lease when the daemon stops.  A
 *               standby whose settings differ from the leader's stops the
 *               daemon with status 1 (SV-CLUSTER-LOCKSTEP; also checked
 *               by cluster_start).
 * Every trainer node, leader or standby, consumes the same stream and trains
 * in lockstep: a batch ends when it is full or when a CUT message comes in
 * the stream, which only the leader publishes (train.max_wait_ms).  So W is a
 * function of the stream on every node, bit for bit, and a standby takes
 * over without catching up.
 *
 * With replica, no gateway and no lease: sv-feed follows the items stream
 * into the store (ingest.c applies the item changes, the top-k cache notes
 * them), and sv-follow polls the models bucket and installs each new model
 * as the queries' snapshot, named by its bucket revision.  query.c waits
 * (cluster.read_wait) for a query's least position and names the replica's
 * on every answer.  A replica is not ready (SV_READY_FOLLOWING) until
 * sv-follow has read the bucket and the store holds the items stream as far
 * as it reached at the start.
 *
 * Leaves out: the decoding of the stream's messages (ingest.c), NATS itself
 * (jetstream.h).
 */
#ifndef SV_DAEMON_CLUSTER_H
#define SV_DAEMON_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

struct sv_daemon;
struct cluster;

/* Where sv-feed hands messages to ingest.c (ingest binds it, PULL). */
#define CLUSTER_FEED_ENDPOINT "inproc://sv-cluster-feed"
/* A stream message that ends the open batch on every node. */
#define CLUSTER_CUT "\0sv-cut"
#define CLUSTER_CUT_LEN 7
/* sv-feed to ingest (never in a stream): the consumer was opened again after
 * a failed commit, and what follows starts just after the store's mark. */
#define CLUSTER_REWOUND "\0sv-rew"
/* The store marks (sv_store_mark_put): the last stream sequence applied, of
 * the pair stream (trainer) or the items stream (replica), and on a replica
 * the pair-stream sequence its last item change came from. */
#define CLUSTER_MARK "js.pairs"
#define CLUSTER_MARK_ITEMS "js.items"
#define CLUSTER_MARK_SRC "js.items_src"

/* Connect, make the stream and buckets if missing, start the threads.
 * After trainer_start (ingest's inproc endpoint is bound).  Logs each
 * failure.  Returns 0 (with *out NULL when cluster.role is off), or a
 * negative code: a daemon built without JetStream refuses role trainer. */
int cluster_start(struct cluster **out, struct sv_daemon *d);
/* Joins the threads and closes the connections; accepts NULL.  Call once
 * d->stopping is set and the ZeroMQ context is shut down (a feed blocked
 * on its socket then returns), before the store is closed. */
void cluster_stop(struct cluster *c);

/* For the trainer thread. */
/* Whether this node holds the lease (0 for NULL). */
int cluster_leader(const struct cluster *c);
/* A group commit that applied the followed stream up to seq (and, on a
 * replica, item changes up to pair-stream sequence src). */
void cluster_note_commit(struct cluster *c, uint64_t seq, uint64_t src);
/* A group commit failed other than for room (its messages are gone): the
 * feed opens the consumer again just after the store's mark. */
void cluster_note_failed(struct cluster *c);
/* Ask for a CUT of the batch that starts at log sequence batch_first (the
 * leader's train.max_wait_ms; repeated asks for one batch publish once). */
void cluster_request_cut(struct cluster *c, uint64_t batch_first);
/* A checkpoint was taken: the leader publishes it. */
void cluster_note_checkpoint(struct cluster *c, uint64_t version);

/* For the query workers: whether this node is a replica; the pair-stream
 * sequence of the last item change it applied; cluster.read_wait. */
int cluster_replica(const struct cluster *c);
uint64_t cluster_items_seq(const struct cluster *c);
uint64_t cluster_read_wait_ms(const struct cluster *c);

/* STATUS and the exposition. */
struct cluster_status {
	const char *role;         /* "leader", "standby", "replica" */
	uint64_t items_seq;       /* replica: cluster_items_seq */
	const char *name;
	uint64_t applied_seq;     /* stream sequence of the last local commit */
	uint64_t lag;             /* messages in the stream after the last one fetched */
	uint64_t model_rev;       /* models bucket revision last written or seen */
	uint64_t model_version;   /* local checkpoint version it carries */
	uint64_t published, publish_failed, cuts, items, model_puts, model_refused;
	uint64_t lease_gained, lease_lost;
};
/* 0 and *out filled, or -1 for NULL (no cluster). */
int cluster_status(const struct cluster *c, struct cluster_status *out);

#endif
