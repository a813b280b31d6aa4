/* cluster.c - a cluster node on NATS JetStream (see cluster.h;
 * docs/SCALING.md): the gateway, feed and lease threads of a trainer, the
 * feed and follow threads of a replica.  Each thread owns its own sv_js
 * connection; they share only the atomics of struct cluster. */
#include "cluster.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "daemon.h"
#include "log.h"

#ifndef SV_HAVE_JETSTREAM

int cluster_start(struct cluster **out, struct sv_daemon *d)
{
	*out = NULL;
	if (d->conf.cfg.cluster_role == SV_CONFIG_ROLE_OFF)
		return 0;
	log_msg(LOG_ERR, "SV-CLUSTER-BUILD",
	        "cluster.role is set, but this simverifyd was built without the jetstream "
	        "feature (libnats-dev); exiting");
	return -ENOTSUP;
}
void cluster_stop(struct cluster *c) { (void)c; }
int cluster_leader(const struct cluster *c) { (void)c; return 0; }
void cluster_note_commit(struct cluster *c, uint64_t seq, uint64_t src)
{
	(void)c;
	(void)seq;
	(void)src;
}
void cluster_note_failed(struct cluster *c) { (void)c; }
int cluster_replica(const struct cluster *c) { (void)c; return 0; }
uint64_t cluster_items_seq(const struct cluster *c) { (void)c; return 0; }
uint64_t cluster_read_wait_ms(const struct cluster *c) { (void)c; return 0; }
void cluster_request_cut(struct cluster *c, uint64_t first) { (void)c; (void)first; }
void cluster_note_checkpoint(struct cluster *c, uint64_t v) { (void)c; (void)v; }
int cluster_status(const struct cluster *c, struct cluster_status *out)
{
	(void)c;
	(void)out;
	return -1;
}

#else

#include "curve.h"
#include "debug.h"
#include "ingest.h"
#include "jetstream.h"
#include "parts.h"
#include "reject.h"
#include "reply.h"
#include "sv/error.h"
#include "snapshot.h"
#include "sv/journal.h"
#include "sv/metrics.h"
#include "util.h"

#define PAIRS_SUBJECT "sv.pairs"
#define ITEMS_PREFIX "sv.items."
#define MODEL_KEY "model"
#define LEASE_KEY "trainer"
#define GW_WINDOW 512  /* messages the gateway has in flight to the stream */
#define GW_RETRY_MS 100 /* a fire-and-forget message without PubAck goes again after */
#define FEED_BATCH 256 /* messages the feed fetches at once */
#define FOLLOW_POLL_US 100000 /* a replica looks at the models bucket this often */
#define ITEMS_CATCH_UP 100000 /* pair-stream messages a new leader looks back at */
#define LEASE_VAL_MAX 2048    /* the lease's value: name and lockstep settings */

struct cluster {
	struct sv_daemon *d;
	char name[64];
	char lease_val[LEASE_VAL_MAX]; /* the lease's value when we hold it (lockstep_value) */
	char items_stream[SV_CONFIG_STR_MAX + 8], models[SV_CONFIG_STR_MAX + 8],
	    lease[SV_CONFIG_STR_MAX + 8];
	int64_t timeout_ms;
	pthread_t th[3];
	int started[3];

	int replica;  /* cluster.role replica: follow items and models, no gateway, no lease */
	const char *mark; /* the store mark of the stream followed */
	atomic_int leader;
	atomic_uint_fast64_t committed;   /* stream seq of the last local commit */
	atomic_uint_fast64_t items_src;   /* replica: pair-stream seq of the last item change applied */
	atomic_int rewind;                /* a group commit failed: feed again from the mark */
	atomic_uint_fast64_t cut_req;     /* batch whose cut the trainer asks (log seq + 1) */
	atomic_uint_fast64_t ckpt_version; /* newest checkpoint to publish (0: none) */
	atomic_uint_fast64_t ckpt_seq;     /* the stream sequence committed when it was taken */
	atomic_uint_fast64_t model_rev, model_version, lag;
	uint64_t items_at_start;          /* replica: the items stream's last sequence at start */
	int model_read;                   /* replica, sv-follow's: the bucket was read once */
	atomic_uint_fast64_t published, publish_failed, cuts, items, model_puts, model_refused;
	atomic_uint_fast64_t lease_gained, lease_lost;
};

/* ---- shared helpers ---- */

/* How long the start waits for the cluster (then it fails, for systemd to
 * try again); the threads, once started, retry for as long as they run. */
#define SETUP_WAIT_NS (30 * 1000000000ULL)

/* A connection, retried once a second until it comes, stopping is set, or
 * (deadline_ns != 0) the monotonic deadline passes. */
static int js_connect(struct cluster *c, sv_js **js, const char *who, uint64_t deadline_ns)
{
	int rc = -ECANCELED;

	while (!atomic_load(&c->d->stopping)) {
		rc = sv_js_open(js, c->d->conf.cfg.cluster_urls, c->timeout_ms);
		if (rc == 0)
			return 0;
		log_msg(LOG_WARNING, "SV-CLUSTER-CONNECT", "%s: cannot reach %s: %s; retrying",
		        who, c->d->conf.cfg.cluster_urls, sv_js_strerror(rc));
		if (deadline_ns && now_mono_ns() >= deadline_ns)
			break;
		sleep(1);
	}
	return rc;
}

/* ---- sv-gateway: ZeroMQ ingest into the pair stream ---- */

/* Whom to answer, and with what: enough to reply after the message itself
 * is gone (the routing id is copied). */
struct gw_to {
	uint8_t rid[256];
	size_t rid_len;
	int delim;  /* the client sent an empty delimiter (REQ) */
	int acked;  /* 0: fire and forget, nobody to answer */
	int verb;
	uint64_t req_id;
	uint32_t n; /* pair rows */
	uint64_t client_seq;
	uint64_t stream_seq; /* once stored */
	int dup;
	uint64_t t0;
};

struct gw_msg {
	struct gw_to to;
	char id[128]; /* the message id: 32 hex digits, or the gateway's own */
	void *flat; /* the flattened frames (owned) */
	size_t flat_len;
	uint64_t arrival; /* the gateway's count of messages taken */
};

struct gw {
	struct cluster *c;
	sv_js *js;
	sv_js_pipe *pipe;
	void *pull, *router;
	struct sv_proto_msgbuf mb;
	struct gw_msg *m;    /* GW_WINDOW slots: in flight, or to go again */
	uint32_t *free;      /* the free slots (a stack) */
	size_t nfree;
	struct gw_retry {    /* fire-and-forget messages without PubAck */
		uint64_t arrival;
		uint32_t slot;
	} *retry;
	size_t nretry;
	uint64_t retry_at;   /* not before (monotonic ns) */
	int retrying;        /* logged; until a kept one is stored */
	struct gw_to *wait;  /* acked and stored, waiting for the local commit */
	size_t nwait, wait_cap;
	uint64_t own_seq, boot;
	uint64_t taken;
	uint64_t cut_done;
};

static void gw_send(struct gw *g, const struct gw_to *to)
{
	if (parts_send_routed(g->router, to->rid, to->rid_len, to->delim, &g->mb) < 0)
		atomic_fetch_add(&g->c->d->cnt.unroutable, 1);
}

/* The answer to a stored (and, under cluster.ack committed, applied) message. */
static void gw_answer(struct gw *g, const struct gw_to *m)
{
	if (!m->acked)
		return;
	if (m->verb == SV_PROTO_VERB_PAIR || m->verb == SV_PROTO_VERB_PAIR_BATCH) {
		struct sv_proto_ack ack = {.client_seq = m->client_seq, .n = m->n, .n_committed = m->n};
		struct sv_proto_ack_row *rows;

		if (m->dup) {
			reply_error(&g->mb, m->verb, m->req_id, SV_PROTO_STATUS_DUPLICATE, 0,
			            "already in the pair stream: the same (client id, seq) was stored "
			            "before");
		} else if ((rows = calloc(m->n ? m->n : 1, sizeof *rows)) == NULL) {
			reply_error(&g->mb, m->verb, m->req_id, SV_PROTO_STATUS_INTERNAL, 0,
			            "out of memory");
		} else { /* all zero: committed */
			if (sv_proto_encode_reply_ack(&g->mb, m->verb, m->req_id, SV_PROTO_STATUS_OK,
			                              NULL, &ack, rows) < 0)
				reply_error(&g->mb, m->verb, m->req_id, SV_PROTO_STATUS_INTERNAL, 0,
				            "cannot encode the ack");
			free(rows);
		}
	} else {
		reply_error(&g->mb, m->verb, m->req_id, SV_PROTO_STATUS_OK, 0, NULL);
	}
	/* where the message stands in the pair stream: a client that wrote an
	 * item asks a replica for this sequence or later (read-your-writes) */
	sv_proto_add_pos(&g->mb, 0, m->stream_seq);
	gw_send(g, m);
}

static void gw_refuse(struct gw *g, const struct gw_to *m, int status, const char *why)
{
	if (!m->acked)
		return;
	reply_error(&g->mb, m->verb, m->req_id, status, 0, why);
	gw_send(g, m);
}

static void gw_release(struct gw_msg *m)
{
	free(m->flat);
	m->flat = NULL;
}

/* Check one message p (env envelope parts; acked when from the ROUTER);
 * 1 when m is filled for publishing, else it was answered (malformed,
 * refused, CLIENT_STATE).  p stays the caller's. */
static int gw_take(struct gw *g, struct gw_msg *m, const struct parts *p, int env, int acked)
{
	struct sv_daemon *d = g->c->d;
	const struct sv_proto_frame *fr = p->fr + env;
	size_t nfr = (size_t)(p->n - env);
	struct sv_proto_request rq;
	struct sv_proto_error err;
	struct gw_to *to = &m->to;

	memset(m, 0, sizeof *m);
	to->acked = acked;
	if (acked) {
		to->rid_len = p->fr[0].len < sizeof to->rid ? p->fr[0].len : sizeof to->rid;
		memcpy(to->rid, p->fr[0].data, to->rid_len);
		to->delim = env == 2;
	}
	memset(&err, 0, sizeof err);
	if (p->over || sv_proto_decode_request(fr, nfr, &d->conf.live.lim, &rq, &err) < 0) {
		int reason = p->over ? SV_PROTO_REASON_FRAME_COUNT : (int)err.reason;

		reject_count(d, p->over ? SV_REJECT_TOOMANY_PARTS : reason);
		atomic_fetch_add(&d->cnt.pairs[SV_PAIR_OUTCOME_REJECTED], 1);
		log_msg(LOG_WARNING, "SV-INGEST-MALFORMED", "gateway: %s (%s); dropping message",
		        p->over ? "too many frames" : err.msg, sv_proto_reason_name(reason));
		if (acked) {
			to->verb = err.have_header ? err.header.verb : 0;
			to->req_id = err.have_header ? err.header.request_id : 0;
			reply_error(&g->mb, to->verb, to->req_id, SV_PROTO_STATUS_MALFORMED, reason,
			            p->over ? "too many frames" : err.msg);
			gw_send(g, to);
		}
		return 0;
	}
	to->verb = rq.hdr.verb;
	to->req_id = rq.hdr.request_id;
	to->n = (uint32_t)rq.n;
	to->client_seq = rq.has_client ? rq.client.seq : 0;
	switch (to->verb) {
	case SV_PROTO_VERB_PAIR:
	case SV_PROTO_VERB_PAIR_BATCH:
	case SV_PROTO_VERB_ITEM_PUT:
	case SV_PROTO_VERB_ITEM_DEL:
		break;
	case SV_PROTO_VERB_CLIENT_STATE:
		if (acked) {
			char json[INGEST_STATE_JSON_MAX];

			ingest_client_state(d, &rq, &g->mb, json);
			gw_send(g, to);
		}
		return 0;
	default:
		reject_count(d, SV_REJECT_REFUSED);
		gw_refuse(g, to, SV_PROTO_STATUS_REFUSED,
		          "not an ingest verb: send it to the query or admin socket");
		return 0;
	}
	if ((to->verb == SV_PROTO_VERB_ITEM_PUT || to->verb == SV_PROTO_VERB_ITEM_DEL) &&
	    sv_store_id_reserved(rq.item.id, rq.item.id_len)) {
		reject_count(d, SV_REJECT_RESERVED_ID);
		gw_refuse(g, to, SV_PROTO_STATUS_REFUSED, "ids starting with \"~v\" are reserved");
		return 0;
	}
	if (rq.has_client)
		sv_js_msgid(m->id, sv_journal_item_key(rq.client.id, rq.client.id_len),
		            rq.client.seq);
	else /* the gateway's own id: a resend after a lost PubAck stays one message */
		snprintf(m->id, sizeof m->id, "gw-%s-%" PRIx64 "-%" PRIu64, g->c->name, g->boot,
		         ++g->own_seq);
	m->flat_len = sv_proto_flatten(fr, nfr, NULL, 0);
	m->flat = malloc(m->flat_len);
	if (m->flat == NULL) {
		gw_refuse(g, to, SV_PROTO_STATUS_BUSY, "out of memory; retry");
		return 0;
	}
	sv_proto_flatten(fr, nfr, m->flat, m->flat_len);
	return 1;
}

static int gw_wait_add(struct gw *g, const struct gw_to *to)
{
	if (g->nwait == g->wait_cap) {
		size_t cap = g->wait_cap ? 2 * g->wait_cap : 256;
		struct gw_to *w = realloc(g->wait, cap * sizeof *w);

		if (w == NULL)
			return -ENOMEM;
		g->wait = w;
		g->wait_cap = cap;
	}
	g->wait[g->nwait] = *to;
	g->wait[g->nwait++].t0 = now_mono_ns();
	return 0;
}

/* cluster.ack committed: answer what this node's commits now hold. */
static void gw_wait_scan(struct gw *g)
{
	uint64_t done = atomic_load(&g->c->committed), now = now_mono_ns();
	size_t k = 0;

	for (size_t i = 0; i < g->nwait; i++) {
		const struct gw_to *to = &g->wait[i];

		if (to->stream_seq <= done)
			gw_answer(g, to);
		else if (now - to->t0 > (uint64_t)g->c->timeout_ms * 1000000ULL)
			gw_refuse(g, to, SV_PROTO_STATUS_BUSY,
			          "stored in the pair stream, but this node has not committed it "
			          "within cluster.timeout; it will be applied: resend with the same seq "
			          "to hear so");
		else
			g->wait[k++] = *to;
	}
	g->nwait = k;
}

/* One message's outcome: stored (answered now, or under cluster.ack
 * committed once this node commits it), or not: an acked one is told to
 * resend, a fire-and-forget one goes again, in order, and the sockets are
 * not read until it is stored. */
static void gw_outcome(struct gw *g, const struct sv_js_done *o)
{
	struct cluster *c = g->c;
	struct gw_msg *m = &g->m[o->tag];

	if (o->rc == 0) {
		atomic_fetch_add(&c->published, 1);
		if (!m->to.acked && g->retrying && g->nretry == 0) {
			g->retrying = 0; /* the next failure is logged again */
			log_msg(LOG_NOTICE, "SV-CLUSTER-PUBLISH",
			        "the kept fire-and-forget messages are stored");
		}
		m->to.stream_seq = o->stream_seq;
		m->to.dup = o->duplicate;
		/* a duplicate's sequence is the first copy's: under ack
		 * committed it too waits for this node's commit of it */
		if (!m->to.acked || c->d->conf.cfg.cluster_ack != SV_CONFIG_CLUSTER_ACK_COMMITTED ||
		    gw_wait_add(g, &m->to) < 0)
			gw_answer(g, &m->to);
	} else {
		atomic_fetch_add(&c->publish_failed, 1);
		if (!m->to.acked) {
			if (!g->retrying)
				log_msg(LOG_WARNING, "SV-CLUSTER-PUBLISH",
				        "fire-and-forget messages got no JetStream ack (%s%s%s); kept, "
				        "retrying",
				        sv_js_strerror(o->rc), *sv_js_detail(g->js) ? ": " : "",
				        sv_js_detail(g->js));
			g->retry[g->nretry++] = (struct gw_retry){m->arrival, (uint32_t)o->tag};
			g->retrying = 1;
			g->retry_at = now_mono_ns() + GW_RETRY_MS * 1000000ULL;
			return; /* the slot stays taken */
		}
		gw_refuse(g, &m->to, SV_PROTO_STATUS_BUSY,
		          "no JetStream ack: the pair stream may or may not hold this message; "
		          "resend it with the same seq (de-duplication makes that safe)");
	}
	gw_release(m);
	g->free[g->nfree++] = (uint32_t)o->tag;
}

/* Send slot i to the pair stream; its outcome comes through the pipe. */
static void gw_send_slot(struct gw *g, uint32_t i)
{
	struct gw_msg *m = &g->m[i];
	int rc = sv_js_pipe_send(g->pipe, PAIRS_SUBJECT, m->id, m->flat, m->flat_len, i);

	if (rc < 0)
		gw_outcome(g, &(struct sv_js_done){.tag = i, .rc = rc});
}

static int by_arrival(const void *a, const void *b)
{
	uint64_t x = ((const struct gw_retry *)a)->arrival, y = ((const struct gw_retry *)b)->arrival;

	return x < y ? -1 : x > y;
}

/* The outcomes that arrived; then, once nothing is in flight and the pause
 * is over, the fire-and-forget messages that need to go again. */
static void gw_reap(struct gw *g)
{
	struct sv_js_done d[64];
	size_t k;

	while ((k = sv_js_pipe_reap(g->pipe, d, sizeof d / sizeof *d, g->c->timeout_ms)) > 0)
		for (size_t i = 0; i < k; i++)
			gw_outcome(g, &d[i]);
	if (g->nretry > 0 && sv_js_pipe_inflight(g->pipe) == 0 && now_mono_ns() >= g->retry_at) {
		size_t n = g->nretry;

		/* in the order they came (a timeout reports them in any order) */
		qsort(g->retry, n, sizeof *g->retry, by_arrival);
		g->nretry = 0; /* a failure puts them back, in the same order */
		for (size_t i = 0; i < n; i++)
			gw_send_slot(g, g->retry[i].slot);
	}
}

/* Read and send what the sockets hold, the ROUTER and the PULL in turn,
 * while slots are free; neither while messages wait to go again (what is in
 * flight drains, then they go, first). */
static void gw_read(struct gw *g)
{
	int idle[2] = {0, 0};

	while (g->nfree > 0 && g->nretry == 0 && !(idle[0] && idle[1]))
		for (int sk = 0; sk < 2 && g->nfree > 0 && g->nretry == 0; sk++) {
			struct parts p;
			uint32_t i;

			if (idle[sk])
				continue;
			if (parts_recv(sk ? g->pull : g->router, &p, ZMQ_DONTWAIT) <= 0) {
				idle[sk] = 1;
				continue;
			}
			i = g->free[g->nfree - 1];
			if (gw_take(g, &g->m[i], &p, sk ? 0 : parts_envelope(&p), sk == 0)) {
				g->m[i].arrival = ++g->taken;
				g->nfree--;
				gw_send_slot(g, i);
			}
			parts_close(&p);
		}
}

static void gw_cut(struct gw *g)
{
	uint64_t want = atomic_load(&g->c->cut_req);
	char id[64];
	int rc;

	if (want == 0 || want == g->cut_done || !atomic_load(&g->c->leader))
		return;
	snprintf(id, sizeof id, "cut-%" PRIu64, want);
	rc = sv_js_publish(g->js, PAIRS_SUBJECT, id, CLUSTER_CUT, CLUSTER_CUT_LEN, g->c->timeout_ms,
	                   NULL, NULL);
	if (rc == 0) {
		g->cut_done = want;
		atomic_fetch_add(&g->c->cuts, 1);
	}
}

static void *gw_main(void *arg)
{
	struct cluster *c = arg;
	struct sv_daemon *d = c->d;
	struct gw g = {.c = c, .boot = now_real_ns()};
	int hwm = d->conf.ingest_hwm, one = 1, rc;

	pthread_setname_np(pthread_self(), "sv-gateway");
	sv_proto_msgbuf_init(&g.mb);
	g.m = calloc(GW_WINDOW, sizeof *g.m);
	g.free = calloc(GW_WINDOW, sizeof *g.free);
	g.retry = calloc(GW_WINDOW, sizeof *g.retry);
	g.pull = parts_socket(d->zctx, ZMQ_PULL);
	g.router = parts_socket(d->zctx, ZMQ_ROUTER);
	if (g.m == NULL || g.free == NULL || g.retry == NULL || g.pull == NULL || g.router == NULL)
		goto out;
	for (uint32_t i = 0; i < GW_WINDOW; i++)
		g.free[g.nfree++] = GW_WINDOW - 1 - i;
	zmq_setsockopt(g.pull, ZMQ_RCVHWM, &hwm, sizeof hwm);
	zmq_setsockopt(g.router, ZMQ_RCVHWM, &hwm, sizeof hwm);
	zmq_setsockopt(g.router, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
	if (curve_bind(g.pull, d->conf.ep_ingest, "ingest (PULL, gateway)") < 0 ||
	    curve_bind(g.router, d->conf.ep_ingest_ack, "ingest-ack (ROUTER, gateway)") < 0)
		goto out;
	if (js_connect(c, &g.js, "gateway", 0) < 0)
		goto out;
	if ((rc = sv_js_pipe_open(&g.pipe, g.js, GW_WINDOW)) < 0) {
		log_msg(LOG_ERR, "SV-CLUSTER-PUBLISH", "gateway: %s", sv_js_strerror(rc));
		goto out;
	}
	while (!atomic_load(&d->stopping)) {
		/* the sockets only while a slot is free and nothing waits to go
		 * again: the clients' messages wait in ZeroMQ (backpressure) */
		zmq_pollitem_t it[3] = {{NULL, sv_js_pipe_fd(g.pipe), ZMQ_POLLIN, 0},
		                        {g.router, 0, ZMQ_POLLIN, 0},
		                        {g.pull, 0, ZMQ_POLLIN, 0}};
		int nit = g.nfree == 0 || g.nretry > 0 ? 1 : 3;
		long ms = g.nwait || g.nretry || sv_js_pipe_inflight(g.pipe) ? 5 : 50;

		if (zmq_poll(it, nit, ms) < 0 && zmq_errno() == ETERM)
			break;
		gw_reap(&g);
		gw_read(&g);
		if (g.nwait)
			gw_wait_scan(&g);
		gw_cut(&g);
	}
out:
	sv_js_pipe_close(g.pipe); /* no outcome comes after this */
	if (g.m != NULL && g.nfree < GW_WINDOW) {
		size_t lost = 0;

		for (size_t i = 0; i < GW_WINDOW; i++)
			if (g.m[i].flat != NULL) {
				lost += !g.m[i].to.acked;
				gw_release(&g.m[i]);
			}
		if (lost)
			log_msg(LOG_WARNING, "SV-CLUSTER-PUBLISH",
			        "stopping with %zu fire-and-forget messages not known to be stored",
			        lost);
	}
	free(g.m);
	free(g.free);
	free(g.retry);
	free(g.wait);
	zmq_close(g.pull);
	zmq_close(g.router);
	sv_proto_msgbuf_free(&g.mb);
	sv_js_close(g.js);
	return NULL;
}

/* ---- sv-feed: the durable consumer, in stream order, into ingest.c ---- */

/* The leader's copy of an item change into the items stream. */
static void feed_item(struct cluster *c, sv_js *js, const struct sv_js_msg *msg)
{
	struct sv_proto_frame fr[SV_PROTO_MAX_FRAMES];
	struct sv_proto_limits any = {0};
	struct sv_proto_request rq;
	struct sv_proto_error err;
	char subject[64], id[32], last[64];
	long n = sv_proto_unflatten(msg->data, msg->len, fr, SV_PROTO_MAX_FRAMES);
	uint64_t newest = 0;
	int rc;

	if (n < 2 || fr[0].len < 4 || ((const uint8_t *)fr[0].data)[3] > SV_PROTO_VERB_ITEM_DEL ||
	    sv_proto_decode_request(fr, (size_t)n, &any, &rq, &err) < 0 ||
	    (rq.hdr.verb != SV_PROTO_VERB_ITEM_PUT && rq.hdr.verb != SV_PROTO_VERB_ITEM_DEL))
		return;
	snprintf(subject, sizeof subject, ITEMS_PREFIX "%016" PRIx64,
	         sv_journal_item_key(rq.item.id, rq.item.id_len));
	snprintf(id, sizeof id, "i-%" PRIu64, msg->stream_seq);
	/* never over a newer change of the id: after a takeover, and after a
	 * server restart forgot the ids of superseded messages, a copy of an old
	 * change would pass de-duplication and undo a later update or delete */
	if (sv_js_subject_last_id(js, c->items_stream, subject, last, sizeof last) == 0 &&
	    sscanf(last, "i-%" SCNu64, &newest) == 1 && newest >= msg->stream_seq)
		return;
	/* in order, so the replicas apply the changes of an id as written; an
	 * election of the items stream makes us wait, not skip */
	while ((rc = sv_js_publish(js, subject, id, msg->data, msg->len, c->timeout_ms, NULL,
	                           NULL)) < 0 &&
	       atomic_load(&c->leader) && !atomic_load(&c->d->stopping)) {
		log_msg(LOG_WARNING, "SV-CLUSTER-ITEMS",
		        "cannot copy stream message %" PRIu64 " to %s: %s (%s); retrying",
		        msg->stream_seq, c->items_stream, sv_js_strerror(rc), sv_js_detail(js));
		usleep(200000);
	}
	if (rc == 0)
		atomic_fetch_add(&c->items, 1);
}

/* A new leader copies the item changes between the last one the items
 * stream holds (its message id names its pair-stream sequence) and what
 * this node has fed, which an old leader may have died before copying; at
 * most ITEMS_CATCH_UP messages back.  Copies already there are dropped by
 * the stream's de-duplication (the same id). */
static void items_catch_up(struct cluster *c, sv_js *js, uint64_t upto)
{
	uint64_t last = 0, from = 0, n = 0;
	char id[64];
	void *data = NULL;
	size_t len;

	if (sv_js_stream_last_seq(js, c->items_stream, &last) == 0 && last > 0 &&
	    sv_js_stream_get(js, c->items_stream, last, &data, &len, id, sizeof id) == 0 &&
	    sscanf(id, "i-%" SCNu64, &from) != 1)
		from = 0;
	free(data);
	if (upto > ITEMS_CATCH_UP && from < upto - ITEMS_CATCH_UP)
		from = upto - ITEMS_CATCH_UP;
	for (uint64_t seq = from + 1;
	     seq <= upto && atomic_load(&c->leader) && !atomic_load(&c->d->stopping); seq++) {
		struct sv_js_msg m = {.stream_seq = seq};

		if (sv_js_stream_get(js, c->d->conf.cfg.cluster_stream, seq, &data, &len, id,
		                     sizeof id) < 0)
			continue;
		m.data = data;
		m.len = len;
		if (len > 4)
			feed_item(c, js, &m);
		free(data);
		n++;
	}
	log_msg(LOG_INFO, "SV-CLUSTER-ITEMS",
	        "took over the items stream: looked at pair-stream messages %" PRIu64 "..%" PRIu64
	        " (%" PRIu64 ") for changes not yet copied",
	        from + 1, upto, n);
}

/* One stream message to ingest: [u64 stream seq, u64 source seq][its
 * frames, or the raw payload as one frame when it is not a flattened
 * message (a CUT, or garbage that ingest rejects and counts)].  The source
 * sequence is, on the items stream, the pair-stream message the item change
 * came from (its id "i-N"); 0 on the pair stream. */
static int feed_send(void *push, const struct sv_js_msg *msg, uint64_t src)
{
	struct sv_proto_frame fr[SV_PROTO_MAX_FRAMES];
	long n = sv_proto_unflatten(msg->data, msg->len, fr, SV_PROTO_MAX_FRAMES);
	uint64_t pos[2] = {msg->stream_seq, src}; /* little-endian hosts only (sv/proto.h) */

	if (n <= 0) {
		fr[0].data = msg->data;
		fr[0].len = msg->len;
		n = 1;
	}
	if (zmq_send(push, pos, sizeof pos, ZMQ_SNDMORE) < 0)
		return -1;
	for (long i = 0; i < n; i++)
		if (zmq_send(push, fr[i].data, fr[i].len, i + 1 < n ? ZMQ_SNDMORE : 0) < 0)
			return -1;
	return 0;
}

/* The fetches handed to ingest and not yet acked: the last stream sequence
 * of each, oldest first.  The feed fetches on while up to FEED_DEPTH of
 * them wait for their commits, so that ingest always has the next one
 * queued while it commits (the server's round trips and the transfer
 * overlap the commit). */
#define FEED_DEPTH 3

struct feed_acks {
	uint64_t last[FEED_DEPTH];
	int n;
};

/* Ack the consumer up to the newest fetch the trainer's commits hold.  With
 * wait_all, or while FEED_DEPTH fetches are in hand, first wait for the
 * commits (of all, or of the oldest); gives up on stop, or when a failed
 * commit asks for a rewind (the flag stays for the caller). */
static void feed_ack(struct cluster *c, sv_js_consumer *con, struct feed_acks *fa, int wait_all)
{
	uint64_t want;
	int k = -1, rc;

	if (fa->n == 0)
		return;
	want = wait_all ? fa->last[fa->n - 1] : fa->n >= FEED_DEPTH ? fa->last[0] : 0;
	while (atomic_load(&c->committed) < want && !atomic_load(&c->d->stopping) &&
	       !atomic_load(&c->rewind))
		usleep(500);
	for (int i = 0; i < fa->n; i++)
		if (fa->last[i] <= atomic_load(&c->committed))
			k = i;
	if (k < 0)
		return;
	rc = sv_js_ack_upto(con, fa->last[k]);
	if (rc < 0)
		log_msg(LOG_WARNING, "SV-CLUSTER-FEED", "ack up to %" PRIu64 ": %s", fa->last[k],
		        sv_js_strerror(rc));
	fa->n -= k + 1;
	memmove(fa->last, fa->last + k + 1, (size_t)fa->n * sizeof *fa->last);
}

static uint64_t store_mark(struct sv_daemon *d, const char *name)
{
	sv_store_read *r = NULL;
	uint64_t v = 0;

	if (sv_store_read_begin(d->store, &r) == 0 && sv_store_mark_get(r, name, &v) < 0)
		v = 0;
	sv_store_read_end(r);
	return v;
}

/* A consumer that delivers nothing although the stream holds messages after
 * the last one fed (seen after a server's restart): empty fetches are
 * normal, so the stream's end is looked at once a second, and only a gap
 * that stays FEED_STALL_NS with nothing fed counts. */
#define FEED_STALL_NS (3 * 1000000000ULL)

struct feed_stall {
	uint64_t t0;      /* when the gap was first seen; 0: none */
	uint64_t fed;     /* what was fed then */
	uint64_t checked; /* the last look at the stream */
};

static int feed_stalled(struct cluster *c, sv_js *js, struct feed_stall *st, uint64_t fed)
{
	const char *stream = c->replica ? c->items_stream : c->d->conf.cfg.cluster_stream;
	uint64_t now = now_mono_ns(), last = 0;

	if (now - st->checked < 1000000000ULL)
		return 0;
	st->checked = now;
	if (sv_js_stream_last_seq(js, stream, &last) < 0 || last <= fed) {
		st->t0 = 0;
		return 0;
	}
	if (st->t0 == 0 || st->fed != fed) {
		st->t0 = now;
		st->fed = fed;
		return 0;
	}
	if (now - st->t0 < FEED_STALL_NS)
		return 0;
	st->t0 = 0;
	return 1;
}

static void *feed_main(void *arg)
{
	struct cluster *c = arg;
	struct sv_daemon *d = c->d;
	struct sv_js_msg *msgs = calloc(FEED_BATCH, sizeof *msgs);
	sv_js_consumer *con = NULL;
	sv_js *js = NULL;
	char durable[80];
	void *push = parts_socket(d->zctx, ZMQ_PUSH);
	uint64_t fed; /* the last stream sequence handed to ingest */
	struct feed_acks fa = {.n = 0};
	struct feed_stall stall = {0};
	int rc, was_leader = 0, rewound = 0;

	pthread_setname_np(pthread_self(), "sv-feed");
	snprintf(durable, sizeof durable, "sv-%s", c->name);
	if (msgs == NULL || push == NULL || zmq_connect(push, CLUSTER_FEED_ENDPOINT) < 0 ||
	    js_connect(c, &js, "feed", 0) < 0)
		goto out;
	fed = store_mark(d, c->mark);
	while (!atomic_load(&d->stopping)) {
		uint64_t last;
		int n = 0, lead = atomic_load(&c->leader);

		if (lead && !was_leader)
			items_catch_up(c, js, fed);
		was_leader = lead;
		if (atomic_exchange(&c->rewind, 0)) { /* a failed commit lost what it read */
			log_msg(LOG_WARNING, "SV-CLUSTER-FEED",
			        "a group commit failed: following %s again after stream sequence %" PRIu64,
			        durable, store_mark(d, c->mark));
			sv_js_consumer_close(con);
			con = NULL;
			fa.n = 0;
			rewound = 1;
		}
		if (con == NULL) {
			struct sv_js_consumer_cfg cc = {.stream = c->replica ? c->items_stream
			                                                     : d->conf.cfg.cluster_stream,
			                                .durable = durable,
			                                .resume_after = store_mark(d, c->mark),
			                                .reset = true,
			                                .max_ack_pending = 4 * FEED_BATCH};

			rc = sv_js_consumer_open(&con, js, &cc);
			if (rc < 0) {
				log_msg(LOG_WARNING, "SV-CLUSTER-FEED",
				        "cannot open the consumer %s on %s: %s (%s); retrying", durable,
				        cc.stream, sv_js_strerror(rc), sv_js_detail(js));
				sleep(1);
				continue;
			}
			log_msg(LOG_NOTICE, "SV-CLUSTER-FEED",
			        "following %s as %s after stream sequence %" PRIu64, cc.stream, durable,
			        cc.resume_after);
			if (rewound) { /* ingest skips what was queued before this */
				uint64_t pos[2] = {0, 0};

				if (zmq_send(push, pos, sizeof pos, ZMQ_SNDMORE) < 0 ||
				    zmq_send(push, CLUSTER_REWOUND, CLUSTER_CUT_LEN, 0) < 0)
					goto out;
				rewound = 0;
			}
		}
		rc = sv_js_fetch(con, msgs, FEED_BATCH, 100, &n);
		if (rc < 0) {
			log_msg(LOG_WARNING, "SV-CLUSTER-FEED", "fetch: %s (%s)", sv_js_strerror(rc),
			        sv_js_detail(js));
			feed_ack(c, con, &fa, 1); /* still ackable: the failed fetch brought nothing */
			fa.n = 0;
			usleep(200000);
			continue;
		}
		if (n == 0) {
			atomic_store(&c->lag, 0); /* nothing came within the wait */
			feed_ack(c, con, &fa, 1);
			fa.n = 0;
			if (feed_stalled(c, js, &stall, fed)) {
				log_msg(LOG_WARNING, "SV-CLUSTER-FEED",
				        "%s delivers nothing while the stream holds messages after "
				        "%" PRIu64 ": following it again from there",
				        durable, fed);
				sv_js_consumer_close(con);
				con = NULL;
			}
			continue;
		}
		stall.t0 = 0;
		for (int i = 0; i < n; i++) {
			uint64_t src = 0;

			if (c->replica && sscanf(msgs[i].msgid, "i-%" SCNu64, &src) != 1)
				src = 0;
			if (feed_send(push, &msgs[i], src) < 0)
				goto out; /* the context is ending */
			fed = msgs[i].stream_seq;
			if (was_leader && msgs[i].len > 4)
				feed_item(c, js, &msgs[i]);
		}
		last = msgs[n - 1].stream_seq;
		atomic_store(&c->lag, msgs[n - 1].pending);
		/* this fetch is with the trainer; earlier ones are acked once their
		 * commits hold them, and a full hand waits for the oldest */
		if (fa.n == FEED_DEPTH) /* only after a stop or rewind cut a wait short */
			fa.n = 0;
		fa.last[fa.n++] = last;
		feed_ack(c, con, &fa, 0);
	}
out:
	free(msgs);
	sv_js_consumer_close(con);
	zmq_close(push);
	sv_js_close(js);
	return NULL;
}

/* ---- sv-lease: the lease, and the leader's model versions ---- */

/* Publish checkpoint `version` from the store, taken when the stream was
 * committed up to seq; 0, SV_JS_ERR_STALE (fenced off: someone else
 * published since) or another failure. */
static int publish_model(struct cluster *c, sv_js_kv *kv, uint64_t version, uint64_t seq)
{
	struct sv_daemon *d = c->d;
	struct sv_journal_model jm = {.d_in = d->conf.d_in, .d_out = d->conf.d_out,
	                              .policy = d->live.threshold_policy, .version = version};
	struct sv_store_model m;
	struct sv_metrics_window *w = NULL;
	sv_store_read *r = NULL;
	float *W = malloc((size_t)jm.d_in * jm.d_out * sizeof *W);
	void *blob = NULL;
	size_t len = 0;
	uint64_t rev = 0;
	int rc = W ? sv_store_read_begin(d->store, &r) : -ENOMEM;

	if (rc == 0)
		rc = sv_store_model_get(r, version, &m);
	if (rc == 0) {
		sv_store_model_weights(d->store, &m, W);
		jm.steps = m.step;
		jm.threshold = d->live.threshold;
		if (m.calib_len && sv_journal_calib_decode(m.calib, m.calib_len, &jm.threshold, &w) == 0)
			sv_metrics_window_free(w);
		jm.stream_seq = seq;
	}
	sv_store_read_end(r);
	if (rc == 0) {
		len = sv_journal_model_encode(NULL, 0, &jm, W);
		blob = malloc(len);
		rc = blob ? 0 : -ENOMEM;
	}
	if (rc == 0) {
		sv_journal_model_encode(blob, len, &jm, W);
		rc = sv_js_model_put(kv, MODEL_KEY, blob, len, 0, atomic_load(&c->model_rev), &rev);
	}
	if (rc == 0) {
		atomic_store(&c->model_rev, rev);
		atomic_store(&c->model_version, version);
		atomic_fetch_add(&c->model_puts, 1);
	}
	free(blob);
	free(W);
	return rc;
}

/* A leader's publish of `version` was refused as stale while it still holds
 * the lease: the manifest it expected was a follower's old read, or its own
 * write landed and only the ack was lost (a retried publish then meets its
 * own revision).  Take the current revision; when that is this very model,
 * whole, count it published instead of writing it a second time. */
static void adopt_landed(struct cluster *c, sv_js_kv *kv, uint64_t version, uint64_t seq)
{
	struct sv_journal_model jm;
	const void *W;
	void *blob = NULL;
	size_t len = 0;
	uint64_t rev = 0;

	if (sv_js_model_get(kv, MODEL_KEY, &blob, &len, &rev) < 0) {
		free(blob);
		if (sv_js_model_rev(kv, MODEL_KEY, &rev) == 0)
			atomic_store(&c->model_rev, rev);
		return;
	}
	atomic_store(&c->model_rev, rev);
	if (sv_journal_model_decode(blob, len, &jm, &W) == 0 && jm.version == version &&
	    jm.stream_seq == seq) {
		atomic_store(&c->model_version, version);
		atomic_fetch_add(&c->model_puts, 1);
		log_msg(LOG_INFO, "SV-CLUSTER-MODEL",
		        "model version %" PRIu64 " had landed as revision %" PRIu64
		        " (its ack was lost)",
		        version, rev);
	}
	free(blob);
}

static void lose_lease(struct cluster *c, const char *why)
{
	if (!atomic_exchange(&c->leader, 0))
		return;
	atomic_fetch_add(&c->lease_lost, 1);
	log_msg(LOG_WARNING, "SV-CLUSTER-LEASE",
	        "%s: no longer the leader; training on in lockstep as a standby, publishing nothing",
	        why);
}

/* ---- lockstep settings ---- */

/* The settings W depends on besides the stream: every trainer of a cluster
 * must give each the same value, or a standby's W is not the leader's
 * (train.threads too: sv/blas.h splits products by it, and the sums with
 * it).  The SIGHUP changes a cluster node takes leave them all alone. */
static const char *const LOCKSTEP_KEYS[] = {
    "model.d_in",     "model.d_out",       "model.init",       "model.seed",
    "train.loss",     "train.temperature", "train.pos_margin", "train.neg_margin",
    "train.mode",     "train.batch_pairs", "train.optimizer",  "train.lr",
    "train.momentum", "train.dampening",   "train.nesterov",   "train.weight_decay",
    "train.beta1",    "train.beta2",       "train.eps",        "train.threads"};

/* The lease's value: the node's name, then "key=value" a line for each
 * lockstep key.  A standby reads the leader's and compares. */
static void lockstep_value(struct cluster *c)
{
	size_t n = (size_t)snprintf(c->lease_val, sizeof c->lease_val, "%s\n", c->name);

	for (size_t i = 0; i < sizeof LOCKSTEP_KEYS / sizeof *LOCKSTEP_KEYS; i++) {
		char v[256];

		if (sv_config_get(&c->d->conf.cfg, LOCKSTEP_KEYS[i], v, sizeof v) < 0)
			snprintf(v, sizeof v, "?");
		if (n < sizeof c->lease_val)
			n += (size_t)snprintf(c->lease_val + n, sizeof c->lease_val - n, "%s=%s\n",
			                      LOCKSTEP_KEYS[i], v);
	}
}

/* The value of key in lines ("key=value\n" each) into v, or -1 if they
 * have none. */
static int lockstep_get(const char *lines, const char *key, char *v, size_t cap)
{
	size_t kl = strlen(key);

	for (const char *l = lines; l != NULL && *l;) {
		const char *e = strchr(l, '\n');

		if (strncmp(l, key, kl) == 0 && l[kl] == '=') {
			size_t len = e ? (size_t)(e - (l + kl + 1)) : strlen(l + kl + 1);

			snprintf(v, cap, "%.*s", (int)len, l + kl + 1);
			return 0;
		}
		l = e ? e + 1 : NULL;
	}
	return -1;
}

/* Whether the lease's holder, if another node, trains in lockstep with this
 * one: 0 when it does (or the lease is free or ours; only the keys both
 * name are compared, so a leader of an earlier build passes), SV_ERR_CONFIG
 * after logging each setting that differs, or the lookup's error (nothing
 * judged). */
static int lockstep_check(struct cluster *c, sv_js_kv *lease)
{
	char held[LEASE_VAL_MAX], diff[1024] = "", *nl;
	const char *own = strchr(c->lease_val, '\n') + 1;
	size_t n = 0, nl_len = strlen(c->name);
	uint64_t rev;
	int rc = sv_js_lease_holder(lease, LEASE_KEY, held, sizeof held, &rev);

	if (rc == SV_ERR_NOTFOUND || rc == SV_ERR_TOOBIG)
		return 0;
	if (rc < 0)
		return rc;
	if ((nl = strchr(held, '\n')) == NULL ||
	    (strncmp(held, c->name, nl_len) == 0 && held[nl_len] == '\n'))
		return 0;
	*nl = '\0'; /* held: the leader's name */
	for (size_t i = 0; i < sizeof LOCKSTEP_KEYS / sizeof *LOCKSTEP_KEYS; i++) {
		char mine[256], theirs[256];

		if (lockstep_get(own, LOCKSTEP_KEYS[i], mine, sizeof mine) < 0)
			continue;
		if (lockstep_get(nl + 1, LOCKSTEP_KEYS[i], theirs, sizeof theirs) < 0)
			continue; /* a key the leader's build does not name */
		if (strcmp(mine, theirs) != 0 && n < sizeof diff)
			n += (size_t)snprintf(diff + n, sizeof diff - n, "%s%s %s here, %s there",
			                      n ? "; " : "", LOCKSTEP_KEYS[i], mine, theirs);
	}
	if (n == 0)
		return 0;
	log_msg(LOG_ERR, "SV-CLUSTER-LOCKSTEP",
	        "the leader %s trains with other settings, so this node's W would not be its "
	        "W: %s; give every trainer of stream %s the same values; exiting",
	        held, diff, c->d->conf.cfg.cluster_stream);
	return SV_ERR_CONFIG;
}

static void *lease_main(void *arg)
{
	struct cluster *c = arg;
	struct sv_daemon *d = c->d;
	uint64_t ttl = d->conf.cfg.cluster_lease_ttl_ms, rev = 0, renewed = 0, floor = 0;
	int64_t period_ms = (int64_t)ttl / 4;
	sv_js_kv *lease = NULL, *models = NULL;
	sv_js *js = NULL;
	int rc, replicas = (int)d->conf.cfg.cluster_replicas;

	pthread_setname_np(pthread_self(), "sv-lease");
	if (js_connect(c, &js, "lease", 0) < 0)
		goto out;
	while (!atomic_load(&d->stopping) &&
	       ((rc = sv_js_kv_open(&lease, js, c->lease, replicas, (int64_t)ttl, false)) < 0 ||
	        (rc = sv_js_kv_open(&models, js, c->models, replicas, 0, false)) < 0)) {
		log_msg(LOG_WARNING, "SV-CLUSTER-LEASE", "cannot open the buckets: %s (%s); retrying",
		        sv_js_strerror(rc), sv_js_detail(js));
		sv_js_kv_close(lease);
		lease = NULL;
		sleep(1);
	}
	while (!atomic_load(&d->stopping)) {
		uint64_t now = now_mono_ns(), want;

		/* a leader's pending model version first: the compare-and-set on
		 * the models bucket is the fence, not our view of the lease */
		want = atomic_load(&c->ckpt_version);
		if (atomic_load(&c->leader) && want && want != atomic_load(&c->model_version) &&
		    atomic_load(&c->ckpt_seq) < floor) {
			/* a standby that took over behind the last published model:
			 * nothing older goes out; its next checkpoint will be newer */
			atomic_store(&c->model_version, want);
		} else if (atomic_load(&c->leader) && want && want != atomic_load(&c->model_version)) {
			uint64_t seq = atomic_load(&c->ckpt_seq);

			debug_publish_delay();
			rc = publish_model(c, models, want, seq);
			if (rc == 0)
				floor = seq;
			if (rc == SV_JS_ERR_STALE &&
			    sv_js_lease_renew(lease, LEASE_KEY, c->lease_val, rev, &rev) == 0) {
				/* still ours: the revision we had was a follower's stale
				 * read, or our own write whose ack was lost; go on from the
				 * current one (the lease is the fence: nobody else took it) */
				renewed = now;
				adopt_landed(c, models, want, seq);
			} else if (rc == SV_JS_ERR_STALE) {
				atomic_fetch_add(&c->model_refused, 1);
				log_msg(LOG_WARNING, "SV-CLUSTER-FENCED",
				        "model version %" PRIu64 " refused: the models bucket moved on "
				        "(another trainer leads)",
				        want);
				lose_lease(c, "fenced off");
			} else if (rc < 0) {
				log_msg(LOG_WARNING, "SV-CLUSTER-MODEL",
				        "cannot publish model version %" PRIu64 ": %s (%s); retrying", want,
				        sv_js_strerror(rc), sv_js_detail(js));
			}
		}
		if (atomic_load(&c->leader)) {
			rc = sv_js_lease_renew(lease, LEASE_KEY, c->lease_val, rev, &rev);
			if (rc == 0)
				renewed = now;
			else if (rc == SV_JS_ERR_STALE)
				lose_lease(c, "lease taken over");
			else if (now - renewed >= ttl * 1000000ULL * 3 / 4)
				lose_lease(c, "cannot renew the lease within 3/4 of its TTL");
		} else if ((rc = sv_js_lease_acquire(lease, LEASE_KEY, c->lease_val, &rev)) < 0) {
			if (rc != SV_JS_ERR_HELD)
				log_msg(LOG_INFO, "SV-CLUSTER-LEASE", "cannot take the lease: %s (%s)",
				        sv_js_strerror(rc), sv_js_detail(js));
			else if (lockstep_check(c, lease) == SV_ERR_CONFIG) { /* another leader's */
				atomic_store(&d->failed, 1);
				atomic_store(&d->stopping, 1);
			}
		} else {
			uint64_t mrev = 0;
			void *blob = NULL;
			size_t len = 0;
			struct sv_journal_model jm;
			const void *W;

			rc = sv_js_model_get(models, MODEL_KEY, &blob, &len, &mrev);
			/* what the last leader published: publish nothing older, and
			 * not again what is there already (our own, before a lapse) */
			if (rc == 0 && sv_journal_model_decode(blob, len, &jm, &W) == 0) {
				floor = jm.stream_seq;
				want = jm.version == atomic_load(&c->ckpt_version) &&
				               jm.stream_seq == atomic_load(&c->ckpt_seq)
				           ? jm.version : 0;
			} else {
				floor = want = 0;
			}
			free(blob);
			if (rc == 0 || rc == SV_ERR_NOTFOUND) {
				atomic_store(&c->model_rev, mrev);
				atomic_store(&c->model_version, want); /* 0: publish the next one */
				renewed = now;
				atomic_fetch_add(&c->lease_gained, 1);
				atomic_store(&c->leader, 1);
				log_msg(LOG_NOTICE, "SV-CLUSTER-LEASE",
				        "%s leads: trains, cuts batches and publishes models (models "
				        "revision %" PRIu64 ")",
				        c->name, mrev);
			}
		}
		for (int64_t t = 0; t < period_ms && !atomic_load(&d->stopping); t += 20)
			usleep(20000);
	}
out:
	/* a graceful stop hands the lease over at once: the standby leads
	 * within its next try instead of after the TTL */
	if (atomic_exchange(&c->leader, 0) && lease != NULL) {
		rc = sv_js_lease_release(lease, LEASE_KEY, c->lease_val, rev);
		if (rc == 0)
			log_msg(LOG_NOTICE, "SV-CLUSTER-LEASE", "stopping: the lease is released");
		else
			log_msg(LOG_WARNING, "SV-CLUSTER-LEASE",
			        "stopping: cannot release the lease: %s (%s); the standby takes "
			        "over once it lapses",
			        sv_js_strerror(rc), sv_js_detail(js));
	}
	sv_js_kv_close(lease);
	sv_js_kv_close(models);
	sv_js_close(js);
	return NULL;
}

/* ---- sv-follow: a replica's model, from the models bucket ---- */

/* Install the bucket's model of revision rev: a snapshot the queries (and
 * the top-k cache, which follows snapshots) take at once, its version the
 * revision, so every replica names the same version for the same W. */
static int follow_install(struct cluster *c, const void *blob, size_t len, uint64_t rev)
{
	struct sv_daemon *d = c->d;
	struct sv_journal_model jm;
	const void *W;
	struct sv_snap *snap;
	int rc = sv_journal_model_decode(blob, len, &jm, &W);

	if (rc == 0 && (jm.d_in != d->conf.d_in || jm.d_out != d->conf.d_out))
		rc = SV_ERR_SHAPE;
	if (rc < 0)
		return rc;
	snap = snap_new(jm.d_in, jm.d_out, NULL);
	if (snap == NULL)
		return -ENOMEM;
	memcpy(snap->W, W, (size_t)jm.d_in * jm.d_out * sizeof(float));
	snap->version = rev;
	snap->steps = jm.steps;
	snap->applied_seq = jm.stream_seq;
	snap->threshold = jm.threshold;
	snap->policy = jm.policy;
	snap_publish(&d->snap, snap);
	atomic_store(&d->prog.model_version, rev);
	atomic_store(&d->prog.steps, jm.steps);
	atomic_store(&d->prog.threshold, jm.threshold);
	atomic_store(&c->model_rev, rev);
	atomic_store(&c->model_version, jm.version);
	return 0;
}

/* A replica is ready (GET /readyz, STATUS) once it has read the models
 * bucket and applied the items stream as far as it reached at the start:
 * before that it would answer with the seed's W or without recent items. */
static void follow_ready(struct cluster *c)
{
	struct sv_daemon *d = c->d;
	int following = SV_READY_FOLLOWING;

	if (c->model_read && atomic_load(&c->committed) >= c->items_at_start &&
	    atomic_compare_exchange_strong(&d->prog.not_ready, &following, SV_READY_OK))
		log_msg(LOG_NOTICE, "SV-CLUSTER-READY",
		        "caught up: model revision %" PRIu64 ", items stream sequence %" PRIu64
		        " (it was at %" PRIu64 " when this replica started); ready",
		        atomic_load(&c->model_rev), atomic_load(&c->committed), c->items_at_start);
}

static void *follow_main(void *arg)
{
	struct cluster *c = arg;
	struct sv_daemon *d = c->d;
	sv_js_kv *models = NULL;
	sv_js *js = NULL;
	int rc;

	pthread_setname_np(pthread_self(), "sv-follow");
	if (js_connect(c, &js, "follow", 0) < 0)
		goto out;
	while (!atomic_load(&d->stopping) &&
	       (rc = sv_js_kv_open(&models, js, c->models, (int)d->conf.cfg.cluster_replicas, 0,
	                           false)) < 0) {
		log_msg(LOG_WARNING, "SV-CLUSTER-FOLLOW", "cannot open %s: %s (%s); retrying",
		        c->models, sv_js_strerror(rc), sv_js_detail(js));
		sleep(1);
	}
	while (!atomic_load(&d->stopping)) {
		uint64_t rev = 0;
		void *blob = NULL;
		size_t len = 0;

		/* a cheap poll of the manifest's revision; the blob only when it moved */
		rc = sv_js_model_rev(models, MODEL_KEY, &rev);
		if (rc == SV_ERR_NOTFOUND) /* no trainer has published yet: the seed's W stands */
			c->model_read = 1;
		if (rc == 0 && rev > atomic_load(&c->model_rev)) {
			rc = sv_js_model_get(models, MODEL_KEY, &blob, &len, &rev);
			if (rc == 0 && rev <= atomic_load(&c->model_rev)) { /* a follower's older copy */
				free(blob);
				usleep(FOLLOW_POLL_US);
				continue;
			}
			if (rc == 0)
				rc = follow_install(c, blob, len, rev);
			c->model_read |= rc == 0;
			if (rc == 0)
				log_msg(LOG_INFO, "SV-CLUSTER-FOLLOW",
				        "model revision %" PRIu64 " (the trainer's v%" PRIu64 ") installed",
				        rev, atomic_load(&c->model_version));
			else
				log_msg(LOG_WARNING, "SV-CLUSTER-FOLLOW",
				        "cannot install model revision %" PRIu64 ": %s (%s); retrying", rev,
				        sv_js_strerror(rc), sv_js_detail(js));
			free(blob);
		} else if (rc == 0) {
			c->model_read = 1; /* the bucket's model is the one installed */
		}
		follow_ready(c);
		usleep(FOLLOW_POLL_US);
	}
out:
	sv_js_kv_close(models);
	sv_js_close(js);
	return NULL;
}

/* ---- start, stop, the trainer's calls ---- */

static int ensure_streams(struct cluster *c)
{
	struct sv_daemon *d = c->d;
	struct sv_js_stream_cfg pairs = {
	    .name = d->conf.cfg.cluster_stream,
	    .subjects = PAIRS_SUBJECT,
	    .replicas = (int)d->conf.cfg.cluster_replicas,
	    .duplicates_ns = (int64_t)d->conf.cfg.cluster_duplicate_window_ms * 1000000LL};
	struct sv_js_stream_cfg items = {.name = c->items_stream,
	                                 .subjects = ITEMS_PREFIX ">",
	                                 .replicas = pairs.replicas,
	                                 .duplicates_ns = pairs.duplicates_ns,
	                                 .max_msgs_per_subject = 1};
	uint64_t deadline = now_mono_ns() + SETUP_WAIT_NS;
	sv_js *js = NULL;
	int rc = js_connect(c, &js, "setup", deadline);

	while (rc == 0) {
		rc = sv_js_stream_ensure(js, &pairs);
		if (rc == 0)
			rc = sv_js_stream_ensure(js, &items);
		if (rc == 0 && c->replica) /* what it must have read before it is ready */
			rc = sv_js_stream_last_seq(js, c->items_stream, &c->items_at_start);
		if (rc == 0 && !c->replica) { /* a standby must train as the leader does */
			sv_js_kv *lease = NULL;

			rc = sv_js_kv_open(&lease, js, c->lease, pairs.replicas,
			                   (int64_t)d->conf.cfg.cluster_lease_ttl_ms, false);
			if (rc == 0)
				rc = lockstep_check(c, lease);
			sv_js_kv_close(lease);
		}
		if (rc == 0 || rc == SV_ERR_CONFIG || rc == SV_JS_ERR_API ||
		    now_mono_ns() >= deadline)
			break;
		log_msg(LOG_WARNING, "SV-CLUSTER-STREAM", "cannot set up %s: %s (%s); retrying",
		        pairs.name, sv_js_strerror(rc), sv_js_detail(js));
		rc = 0;
		sleep(1);
	}
	if (rc < 0 && rc != SV_ERR_CONFIG) /* that one is logged */
		log_msg(LOG_ERR, "SV-CLUSTER-STREAM",
		        "cannot set up the streams %s and %s on %s: %s (%s); exiting", pairs.name,
		        items.name, d->conf.cfg.cluster_urls, sv_js_strerror(rc), sv_js_detail(js));
	sv_js_close(js);
	return rc;
}

int cluster_start(struct cluster **out, struct sv_daemon *d)
{
	void *(*mains[3])(void *) = {feed_main, gw_main, lease_main};
	struct cluster *c;
	int rc;

	*out = NULL;
	if (d->conf.cfg.cluster_role == SV_CONFIG_ROLE_OFF)
		return 0;
	c = calloc(1, sizeof *c);
	if (c == NULL)
		return -ENOMEM;
	c->d = d;
	c->replica = d->conf.cfg.cluster_role == SV_CONFIG_ROLE_REPLICA;
	c->mark = c->replica ? CLUSTER_MARK_ITEMS : CLUSTER_MARK;
	if (c->replica) { /* the feed follows the items stream; the models bucket */
		mains[1] = follow_main;
		mains[2] = NULL;
	}
	c->timeout_ms = (int64_t)d->conf.cfg.cluster_timeout_ms;
	if (d->conf.cfg.cluster_name[0])
		snprintf(c->name, sizeof c->name, "%.48s", d->conf.cfg.cluster_name);
	else if (gethostname(c->name, sizeof c->name - 1) < 0)
		snprintf(c->name, sizeof c->name, "simverifyd");
	for (char *p = c->name; *p; p++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-", *p))
			*p = '_';
	lockstep_value(c);
	snprintf(c->items_stream, sizeof c->items_stream, "%s_ITEMS", d->conf.cfg.cluster_stream);
	snprintf(c->models, sizeof c->models, "%s_models", d->conf.cfg.cluster_stream);
	snprintf(c->lease, sizeof c->lease, "%s_lease", d->conf.cfg.cluster_stream);
	atomic_store(&c->committed, store_mark(d, c->mark));
	atomic_store(&c->items_src, store_mark(d, CLUSTER_MARK_SRC));
	rc = ensure_streams(c);
	if (rc == 0 && c->replica) /* until follow_ready; main.c leaves it so */
		atomic_store(&d->prog.not_ready, SV_READY_FOLLOWING);
	if (rc == 0)
		atomic_store(&d->cluster, c); /* the trainer's calls find it from now on */
	for (int i = 0; rc == 0 && i < 3 && mains[i]; i++) {
		c->started[i] = pthread_create(&c->th[i], NULL, mains[i], c) == 0;
		if (!c->started[i])
			rc = -EAGAIN;
	}
	if (rc < 0) {
		atomic_store(&d->stopping, 1);
		cluster_stop(c);
		return rc;
	}
	*out = c;
	if (c->replica)
		log_msg(LOG_NOTICE, "SV-CLUSTER-START",
		        "replica %s on %s: follows %s and %s from stream sequence %" PRIu64
		        " (item changes through pair-stream sequence %" PRIu64 ")",
		        c->name, d->conf.cfg.cluster_urls, c->items_stream, c->models,
		        atomic_load(&c->committed), atomic_load(&c->items_src));
	else
	log_msg(LOG_NOTICE, "SV-CLUSTER-START",
	        "node %s on %s: stream %s (R%llu), ack %s, lease TTL %llu ms", c->name,
	        d->conf.cfg.cluster_urls, d->conf.cfg.cluster_stream,
	        (unsigned long long)d->conf.cfg.cluster_replicas,
	        d->conf.cfg.cluster_ack == SV_CONFIG_CLUSTER_ACK_COMMITTED ? "committed" : "stored",
	        (unsigned long long)d->conf.cfg.cluster_lease_ttl_ms);
	return 0;
}

void cluster_stop(struct cluster *c)
{
	if (c == NULL)
		return;
	for (int i = 0; i < 3; i++)
		if (c->started[i])
			pthread_join(c->th[i], NULL);
	atomic_store(&c->d->cluster, NULL);
	free(c);
}

int cluster_leader(const struct cluster *c)
{
	return c != NULL && atomic_load(&c->leader);
}

void cluster_note_commit(struct cluster *c, uint64_t seq, uint64_t src)
{
	if (c == NULL)
		return;
	if (src > atomic_load(&c->items_src)) /* first: a waiting query sees both */
		atomic_store(&c->items_src, src);
	if (seq > atomic_load(&c->committed))
		atomic_store(&c->committed, seq);
}

void cluster_note_failed(struct cluster *c)
{
	if (c != NULL)
		atomic_store(&c->rewind, 1);
}

int cluster_replica(const struct cluster *c)
{
	return c != NULL && c->replica;
}

uint64_t cluster_items_seq(const struct cluster *c)
{
	return c != NULL ? atomic_load(&c->items_src) : 0;
}

uint64_t cluster_read_wait_ms(const struct cluster *c)
{
	return c != NULL ? c->d->conf.cfg.cluster_read_wait_ms : 0;
}

void cluster_request_cut(struct cluster *c, uint64_t batch_first)
{
	if (c != NULL)
		atomic_store(&c->cut_req, batch_first + 1);
}

void cluster_note_checkpoint(struct cluster *c, uint64_t version)
{
	if (c == NULL)
		return;
	atomic_store(&c->ckpt_seq, atomic_load(&c->committed)); /* W trained on at most that */
	atomic_store(&c->ckpt_version, version);
}

int cluster_status(const struct cluster *c, struct cluster_status *o)
{
	if (c == NULL)
		return -1;
	*o = (struct cluster_status){
	    .role = c->replica ? "replica" : atomic_load(&c->leader) ? "leader" : "standby",
	    .items_seq = atomic_load(&c->items_src),
	    .name = c->name,
	    .applied_seq = atomic_load(&c->committed),
	    .lag = atomic_load(&c->lag),
	    .model_rev = atomic_load(&c->model_rev),
	    .model_version = atomic_load(&c->model_version),
	    .published = atomic_load(&c->published),
	    .publish_failed = atomic_load(&c->publish_failed),
	    .cuts = atomic_load(&c->cuts),
	    .items = atomic_load(&c->items),
	    .model_puts = atomic_load(&c->model_puts),
	    .model_refused = atomic_load(&c->model_refused),
	    .lease_gained = atomic_load(&c->lease_gained),
	    .lease_lost = atomic_load(&c->lease_lost)};
	return 0;
}

#endif
