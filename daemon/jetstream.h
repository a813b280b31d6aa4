/* jetstream.h - the daemon's one wrapper over the NATS C client (cnats 3.4.1).
 *
 * Only built with the meson feature `jetstream` (SV_HAVE_JETSTREAM).  The
 * ingest gateway, the trainer, the query replicas and trainer failover call
 * this interface and nothing of cnats itself; docs/SCALING.md says what each
 * of them promises on top of it.
 *
 * What it covers:
 *   - a connection to a list of servers (one sv_js per thread: a handle is
 *     not shared between threads);
 *   - streams: the pair log (file storage, replicas, an explicit duplicate
 *     window) and the items stream (latest value per subject);
 *   - publishing with a message id made from (client id, seq), one message
 *     synchronously, a batch pipelined, or a stream of them through a pipe
 *     that reports each PubAck as it comes;
 *   - a durable pull consumer that fetches batches, acks up to a stream
 *     sequence after the caller's commit, and resumes after a restart just
 *     after the sequence the caller recorded;
 *   - a key-value bucket for model versions: a blob of any size, chunked
 *     under a manifest key written with compare-and-set on its revision;
 *   - a lease in a key-value bucket with a TTL: acquire, renew (CAS), read.
 * What it leaves out: the message formats (the caller's bytes are opaque),
 * any logging (callers log once, with sv_js_strerror() and sv_js_detail()),
 * retries (callers decide), and threads of its own beyond cnats's.
 *
 * Errors: every function returns 0 or a negative code: -errno for OS
 * failures, SV_ERR_* from sv/error.h (SV_ERR_NOTFOUND, SV_ERR_CORRUPT,
 * SV_ERR_RANGE, SV_ERR_TOOBIG), or SV_JS_ERR_* below.  Out-parameters are
 * written only on success.  After a failure sv_js_detail() holds the
 * client's or server's own text for the last failure on that handle.
 *
 * Durations are milliseconds unless a name ends in _ns.
 */
#ifndef SV_DAEMON_JETSTREAM_H
#define SV_DAEMON_JETSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum sv_js_error {
	SV_JS_ERR_CONNECT = -20501,     /* no server of the list could be reached */
	SV_JS_ERR_NOACK = -20502,       /* no PubAck within the timeout: the message may or may
	                                 * not be stored; resend it with the same id */
	SV_JS_ERR_STALE = -20503,       /* compare-and-set refused: the revision moved on */
	SV_JS_ERR_HELD = -20504,        /* the lease is held (by anyone, this holder included) */
	SV_JS_ERR_UNAVAILABLE = -20505, /* JetStream is not available: no leader, no quorum,
	                                 * not enabled */
	SV_JS_ERR_API = -20506,         /* JetStream refused the request (conflicting stream
	                                 * config, bad name, ...): sv_js_detail() says why */
	SV_JS_ERR_CLIENT = -20507,      /* any other failure inside the client library */
};

typedef struct sv_js sv_js;
typedef struct sv_js_consumer sv_js_consumer;
typedef struct sv_js_kv sv_js_kv;

/* A static name for any return code of this module, SV_ERR_* and -errno
 * included (never NULL). */
const char *sv_js_strerror(int rc);

/* The client's or server's text for the last failure on js ("" if none).
 * Valid until the next call on js. */
const char *sv_js_detail(const sv_js *js);

/* Connects to urls, a comma-separated list ("nats://127.0.0.1:14222,...").
 * timeout_ms bounds the connect and is the default wait of JetStream API
 * requests.  The connection reconnects by itself forever; calls made while
 * it is down fail with SV_JS_ERR_NOACK or SV_JS_ERR_UNAVAILABLE. */
int sv_js_open(sv_js **out, const char *urls, int64_t timeout_ms);
void sv_js_close(sv_js *js); /* accepts NULL */

/* The largest message payload the connected server accepts (bytes). */
size_t sv_js_max_payload(const sv_js *js);

/* A stream, created if missing.  If it exists with another replica count,
 * duplicate window or per-subject limit, it is updated; a change the server
 * cannot apply (a different storage type) is SV_JS_ERR_API. */
struct sv_js_stream_cfg {
	const char *name;          /* "SV_PAIRS" */
	const char *subjects;      /* one subject or wildcard: "sv.pairs", "sv.items.>" */
	int replicas;              /* 1..5 */
	int64_t duplicates_ns;     /* de-dup window; > 0 (the pair log must set it) */
	int64_t max_msgs_per_subject; /* 0 = unlimited; 1 = latest value per subject */
	bool memory;               /* memory storage (tests); default file storage */
};
int sv_js_stream_ensure(sv_js *js, const struct sv_js_stream_cfg *cfg);

/* The stream's last sequence (0 when empty). */
int sv_js_stream_last_seq(sv_js *js, const char *stream, uint64_t *last_seq);

/* The message at seq in stream, read directly (no consumer): *data is
 * malloc'd (the caller frees it), *len its size, and its message id goes
 * into id (idcap bytes, "" when it had none).  SV_ERR_NOTFOUND when the
 * stream holds no message at seq (deleted, or past the end). */
int sv_js_stream_get(sv_js *js, const char *stream, uint64_t seq, void **data, size_t *len,
		     char *id, size_t idcap);

/* The message id of the last message on subject in stream into id (idcap
 * bytes, "" when it had none).  SV_ERR_NOTFOUND when the subject has none. */
int sv_js_subject_last_id(sv_js *js, const char *stream, const char *subject, char *id,
			  size_t idcap);

/* The message id of a pair: 32 hex digits, client id then seq.  buf must
 * hold SV_JS_MSGID_LEN + 1 bytes. */
#define SV_JS_MSGID_LEN 33
void sv_js_msgid(char *buf, uint64_t client_id, uint64_t seq);

/* Publishes data to subject and waits up to timeout_ms for its PubAck.
 * msgid may be NULL (no de-duplication).  On success *stream_seq is the
 * message's sequence in the stream and *duplicate tells whether the stream
 * already had a message with that id inside its window (then *stream_seq is
 * that earlier message's).  Either out-parameter may be NULL. */
int sv_js_publish(sv_js *js, const char *subject, const char *msgid,
		  const void *data, size_t len, int64_t timeout_ms,
		  uint64_t *stream_seq, bool *duplicate);

/* A batch published pipelined (over an sv_js_pipe of its own): all n
 * messages are sent, then the call waits up to timeout_ms for all their
 * PubAcks.  Per message, the caller fills the inputs and reads rc, and on
 * rc == 0 stream_seq and duplicate.  The return is 0 when every message was
 * acked, else the first failing rc. */
struct sv_js_pub {
	const char *msgid;        /* in: may be NULL */
	const void *data;         /* in: borrowed for the call only */
	size_t len;               /* in */
	int rc;                   /* out: 0 or a negative code */
	uint64_t stream_seq;      /* out */
	bool duplicate;           /* out */
};
int sv_js_publish_batch(sv_js *js, const char *subject, struct sv_js_pub *msgs, size_t n,
			int64_t timeout_ms);

/* A pipelined publisher: up to `window` messages in flight on the handle's
 * connection without waiting, each one's outcome reported as its PubAck
 * arrives.  The owner thread sends and reaps; cnats's own thread takes the
 * acks.  The pipe borrows js (close the pipe first) and the handle's other
 * calls may be used meanwhile.
 *
 * send copies data and returns at once: 0 (its outcome will come, with
 * tag), SV_ERR_STATE when `window` messages are in flight or reaped-to-be,
 * or a failure to send (then no outcome comes).
 *
 * reap takes up to max outcomes, in arrival order.  When the oldest message
 * in flight was sent timeout_ms ago or more, every message in flight is
 * given up first and reported SV_JS_ERR_NOACK: the stream may or may not
 * hold it.  (cnats 3.4 can only drop all of its pending list, and a server
 * that owes one ack that long is failing the rest as well.)
 *
 * fd is readable while outcomes wait: for poll() or a zmq_pollitem_t. */
typedef struct sv_js_pipe sv_js_pipe;
struct sv_js_done {
	uint64_t tag;
	int rc;                   /* 0 or a negative code */
	uint64_t stream_seq;      /* on rc == 0: as sv_js_publish */
	bool duplicate;
};
int sv_js_pipe_open(sv_js_pipe **out, sv_js *js, size_t window);
int sv_js_pipe_send(sv_js_pipe *p, const char *subject, const char *msgid, const void *data,
		    size_t len, uint64_t tag);
size_t sv_js_pipe_reap(sv_js_pipe *p, struct sv_js_done *out, size_t max, int64_t timeout_ms);
size_t sv_js_pipe_inflight(sv_js_pipe *p);
int sv_js_pipe_fd(const sv_js_pipe *p);
void sv_js_pipe_close(sv_js_pipe *p);

/* A durable pull consumer on stream (AckPolicy all: acking sequence s acks
 * everything delivered before it).
 *
 * resume_after is the last stream sequence the caller has durably applied
 * (0 if none).  A new durable starts just after it; an existing one keeps
 * its server-side position, and any message at or below resume_after that
 * it delivers again (its ack was lost in a crash) is acked and dropped by
 * sv_js_fetch, never returned.  So a caller that records the stream
 * sequence in the same commit as the data sees each message once.
 *
 * ack_wait_ms: how long a fetched, unacked message stays with this consumer
 * before the server delivers it again; max_ack_pending: how many may be
 * outstanding (the fetch batch must not exceed it).
 *
 * reset: delete an existing durable of that name first, so the consumer
 * starts just after resume_after whatever the server kept.  A caller whose
 * own store is the truth uses it: messages an old durable delivered before
 * a crash but never had acked would otherwise come back only after
 * ack_wait, behind newer ones. */
struct sv_js_consumer_cfg {
	const char *stream;
	const char *durable;      /* [A-Za-z0-9_-]+ */
	uint64_t resume_after;
	bool reset;
	int64_t ack_wait_ms;      /* 0 = 30000 */
	int max_ack_pending;      /* 0 = 1000 */
};
int sv_js_consumer_open(sv_js_consumer **out, sv_js *js, const struct sv_js_consumer_cfg *cfg);
void sv_js_consumer_close(sv_js_consumer *c); /* accepts NULL; the durable stays */

/* A fetched message.  data and msgid are owned by the consumer and valid
 * until the second sv_js_fetch after it, or sv_js_consumer_close. */
struct sv_js_msg {
	uint64_t stream_seq;
	uint64_t delivered;       /* 1 on first delivery */
	uint64_t pending;         /* messages left in the stream after this one */
	const char *msgid;        /* "" if the message had none */
	const void *data;
	size_t len;
};

/* Up to max messages and at most SV_JS_FETCH_MAX_BYTES, waiting up to
 * timeout_ms for the first.  *n = 0 on timeout (not an error).  The
 * buffers of the fetch before the previous one are released: the previous
 * batch stays valid, so a caller can fetch ahead while it still commits
 * (and later acks) the one before. */
#define SV_JS_FETCH_MAX_BYTES ((int64_t)8 << 20)
int sv_js_fetch(sv_js_consumer *c, struct sv_js_msg *out, int max, int64_t timeout_ms, int *n);

/* Acks every fetched message up to and including stream_seq, and waits for
 * the server to confirm it (so a restart will not deliver them again).
 * stream_seq must be a message of the last two fetches, or the last message
 * of one of the last SV_JS_ACK_FETCHES fetches, else SV_ERR_RANGE: a caller
 * may keep several fetches in hand and ack each once its commit holds it. */
#define SV_JS_ACK_FETCHES 8
int sv_js_ack_upto(sv_js_consumer *c, uint64_t stream_seq);

/* The highest stream sequence this consumer has acked or skipped. */
uint64_t sv_js_consumer_acked(const sv_js_consumer *c);

/* A key-value bucket, created if missing.  ttl_ms > 0 makes every key
 * expire that long after its last write (the lease bucket); 0 = never. */
int sv_js_kv_open(sv_js_kv **out, sv_js *js, const char *bucket, int replicas,
		  int64_t ttl_ms, bool memory);
void sv_js_kv_close(sv_js_kv *kv); /* accepts NULL; the bucket stays */

/* Model versions.  sv_js_model_put writes blob as chunks under fresh keys
 * (never overwriting a live version's chunks), then writes the manifest key
 * `name` with compare-and-set: expect_rev is the manifest revision the
 * writer last saw (0 = the key must not exist).  When the manifest moved
 * on, the write is refused with SV_JS_ERR_STALE and the new chunks are
 * deleted again; after any other failure (no PubAck) they stay, since the
 * manifest may have landed and name them (a retry then meets STALE).  On
 * success *new_rev is the manifest's new revision and the previous
 * version's chunks are deleted.
 * chunk_max caps a chunk (0 = the server's max payload less 4 KiB). */
int sv_js_model_put(sv_js_kv *kv, const char *name, const void *blob, size_t len,
		    size_t chunk_max, uint64_t expect_rev, uint64_t *new_rev);

/* The latest version: *blob is malloc'd (the caller frees it), *len its
 * size, *rev the manifest revision.  SV_ERR_NOTFOUND if there is none;
 * SV_ERR_CORRUPT if the chunks do not match the manifest's hash.  A read
 * racing a newer put retries from the new manifest.  A bucket replica may
 * answer before it has applied the latest put (even the caller's own): an
 * older revision, or NOTFOUND; callers that need a revision poll for it. */
int sv_js_model_get(sv_js_kv *kv, const char *name, void **blob, size_t *len, uint64_t *rev);

/* Only the manifest's revision (SV_ERR_NOTFOUND if none): cheap polling. */
int sv_js_model_rev(sv_js_kv *kv, const char *name, uint64_t *rev);

/* Leases in a TTL bucket.  The key's value (holder) is the holder's text:
 * cluster.c's is its name and its lockstep settings.
 * acquire creates the key: SV_JS_ERR_HELD while it exists (it lapses TTL
 * after the last renew; 2.9 leaves no marker, so a standby simply retries).
 * renew writes it again with compare-and-set on rev: SV_JS_ERR_STALE means
 * the lease lapsed and someone else took it (or it lapsed and is free):
 * the caller must stop acting as leader at once.
 * release gives it up at once (a graceful stop): the holder's own revision
 * rev, checked by compare-and-set (SV_JS_ERR_STALE: not ours any more,
 * nothing done), then the key is purged so that the next acquire succeeds
 * without waiting for the TTL.
 * holder reads it (SV_ERR_NOTFOUND when free); a read may come from a
 * follower, so base no decision on it alone. */
int sv_js_lease_acquire(sv_js_kv *kv, const char *key, const char *holder, uint64_t *rev);
int sv_js_lease_renew(sv_js_kv *kv, const char *key, const char *holder, uint64_t rev,
		      uint64_t *new_rev);
int sv_js_lease_release(sv_js_kv *kv, const char *key, const char *holder, uint64_t rev);
int sv_js_lease_holder(sv_js_kv *kv, const char *key, char *buf, size_t bufsz, uint64_t *rev);

#endif
