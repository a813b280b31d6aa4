/* cluster.h - the clustered trainer on NATS JetStream (cluster.role trainer;
 * docs/SCALING.md has the design, the guarantees and what is not promised).
 *
 * With cluster.role off (the default) nothing here runs and every call is a
 * no-op on a NULL handle.  With trainer, three threads join the daemon, each
 * with its own NATS connection (daemon/jetstream.h):
 *   sv-gateway  binds the ingest endpoints in place of ingest.c, checks each
 *               message with the same decoder and limits, and publishes the
 *               good ones to the pair stream (message id: client id + seq,
 *               or the gateway's own for messages without one); answers the
 *               acked ones once JetStream acked (cluster.ack stored) or once
 *               this node's group commit holds them (committed); publishes
 *               the batch cuts the leader's trainer asks for.
 *   sv-feed     the node's durable pull consumer on the stream: hands every
 *               message, in stream order, to ingest.c on an inproc socket
 *               (frame 0 its stream sequence), and acks the stream up to the
 *               last sequence the trainer committed (the store keeps that
 *               sequence with each commit, so a restart resumes just after
 *               it).  The leader also forwards item changes to the items
 *               stream (latest value per id).
 *   sv-lease    holds or waits for the trainer lease (a key in a TTL bucket)
 *               and, while this node leads, publishes each new checkpoint to
 *               the models bucket by compare-and-set on its revision.
 * Every trainer node, leader or standby, consumes the same stream and trains
 * in lockstep: a batch ends when it is full or when a CUT message comes in
 * the stream, which only the leader publishes (train.max_wait_ms).  So W is a
 * function of the stream on every node, bit for bit, and a standby takes
 * over without catching up.
 *
 * Leaves out: query replicas (cluster.role replica: not built yet), the
 * decoding of the stream's messages (ingest.c), NATS itself (jetstream.h).
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
/* The store mark (sv_store_mark_put) of the last stream sequence applied. */
#define CLUSTER_MARK "js.pairs"

/* Connect, make the stream and buckets if missing, start the threads.
 * After trainer_start (ingest's inproc endpoint is bound).  Logs each
 * failure.  Returns 0 (with *out NULL when cluster.role is off), or a
 * negative code: a daemon built without JetStream refuses role trainer. */
int cluster_start(struct cluster **out, struct sv_daemon *d);
/* Joins the threads and closes the connections; accepts NULL.  Call once
 * d->stopping is set, before the trainer thread is joined's store goes. */
void cluster_stop(struct cluster *c);

/* For the trainer thread. */
/* Whether this node holds the lease (0 for NULL). */
int cluster_leader(const struct cluster *c);
/* A group commit that applied the stream up to seq. */
void cluster_note_commit(struct cluster *c, uint64_t seq);
/* Ask for a CUT of the batch that starts at log sequence batch_first (the
 * leader's train.max_wait_ms; repeated asks for one batch publish once). */
void cluster_request_cut(struct cluster *c, uint64_t batch_first);
/* A checkpoint was taken: the leader publishes it. */
void cluster_note_checkpoint(struct cluster *c, uint64_t version);

/* STATUS and the exposition. */
struct cluster_status {
	const char *role;         /* "leader", "standby" */
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
