/* query.c - the query front thread, its TOPK batch thread and its workers
 * (see query.h).
 *
 * front:   ROUTER (clients)  <->  DEALER inproc://sv-query-workers
 *                            <->  PAIR inproc://sv-query-topk
 * worker:  DEALER connected to the inproc endpoint; gets
 *          [routing id][optional empty delimiter][request frames] and sends
 *          back the same envelope with the reply frames.
 * batch:   PAIR; gets a pointer to a set of decoded TOPK requests (struct
 *          tbatch), answers them as one product, sends the pointer back;
 *          the front sends the replies.
 * Leaves out: the top-k cache itself (topk_cache.c answers TOPK).
 */
#include "query.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "cluster.h"
#include "curve.h"
#include "log.h"
#include "parts.h"
#include "sv/error.h"
#include "sv/model.h"
#include "sv/proto.h"
#include "sv/store.h"
#include "reply.h"
#include "topk_cache.h"
#include "util.h"

#define WORKERS_EP "inproc://sv-query-workers"
#define BATCH_EP "inproc://sv-query-topk"
#define MAX_WORKERS 64
/* Requests a worker takes at once when they are already waiting (the TOPK
 * ones among them are ranked in one product over the cache). */
#define TOPK_BATCH 16
/* The most requests of one of the front's TOPK sets (struct tbatch): at 16
 * in flight two sets alternate, one ranked while the other's replies go out
 * and its requests come back (with sets of up to 16 one set often held them
 * all, and the batch thread waited for each round trip). */
#define SET_MAX 8
/* A set's reply buffer that grew beyond this is let go once sent. */
#define REPLY_KEEP ((size_t)256 << 10)

struct worker {
	struct dquery *q;
	struct sv_ratelimit rl; /* SV-QUERY-MALFORMED lines of this worker */
	pthread_t th;
	int started;
	void *sock;
	struct sv_proto_limits lim; /* live_limits */
	unsigned lim_gen;
	struct sv_proto_msgbuf mb;
	struct sv_proto_msgbuf bmb[TOPK_BATCH]; /* the replies of a TOPK batch */
	struct topk_scratch ts;                 /* topk_cache_answer's buffers */
	float *X, *E; /* 2 * cap rows of d_in / d_out */
	size_t cap;
	struct sv_proto_score *scores;
	size_t scores_cap;
};

/* TOPK requests answered as one product, by the batch thread (batch_main)
 * or the front (front_topk).  A set is free (n 0), the one the front fills
 * (dquery.fill), the one the batch thread answers (dquery.work), or one
 * the batch thread handed back whose replies the front sends; n and the
 * roles change under dquery.bmu only. */
struct tbatch {
	size_t n;                   /* requests held */
	uint64_t work;              /* multiply-adds of their product */
	uint64_t t0;                /* when it was handed on */
	struct parts p[SET_MAX];            /* the messages: their frames back rq */
	struct sv_proto_request rq[SET_MAX];
	const struct sv_proto_request *tq[SET_MAX];
	struct sv_proto_msgbuf mb[SET_MAX]; /* the replies */
};

struct dquery {
	struct sv_daemon *d;
	void *front, *back;
	pthread_t th;
	int started;
	size_t n_workers;
	struct worker w[MAX_WORKERS];
	struct worker fw; /* the front thread's own buffers for cheap requests */
	size_t at_workers; /* requests forwarded and not yet answered (front only) */
	/* small TOPKs: the front fills one set while the batch thread answers
	 * another and the front sends a third's replies */
	struct tbatch tb[3];
	struct tbatch *fill, *work; /* work: NULL while the batch thread waits */
	pthread_mutex_t bmu;        /* the sets' n and roles, stop */
	pthread_cond_t bcv;         /* the batch thread waits here */
	int bstop;
	void *bfront, *bsock; /* PAIR ends: the front's, the batch thread's */
	pthread_t bth;
	int bstarted;
	struct topk_scratch bts; /* the batch thread's */
};

static int ensure(struct worker *w, size_t pairs)
{
	uint32_t din = w->q->d->conf.d_in, dout = w->q->d->conf.d_out;
	float *X, *E;
	struct sv_proto_score *s;

	if (pairs <= w->cap)
		return 0;
	X = realloc(w->X, 2 * pairs * din * sizeof(float));
	if (X == NULL)
		return -ENOMEM;
	w->X = X;
	E = realloc(w->E, 2 * pairs * dout * sizeof(float));
	if (E == NULL)
		return -ENOMEM;
	w->E = E;
	s = realloc(w->scores, pairs * sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	w->scores = s;
	w->cap = pairs;
	return 0;
}

/* Input row for one side: the vector, or the stored item. */
static int side_row(sv_store *st, sv_store_read **r, const struct sv_proto_side *s, float *row,
                    uint32_t d_in)
{
	int rc;

	if (s->vec != NULL) {
		sv_proto_vec_copy(row, s->vec, d_in);
		return 0;
	}
	/* the read transaction only when an id is looked up */
	if (*r == NULL && (rc = sv_store_read_begin(st, r)) < 0)
		return rc;
	return sv_store_item_get(*r, s->id, s->id_len, row);
}

static float dot(const float *a, const float *b, uint32_t n)
{
	double s = 0.0;

	for (uint32_t i = 0; i < n; i++)
		s += (double)a[i] * b[i];
	return (float)s;
}

/* SCORE / SCORE_BATCH: cosine of the normalized projections under one
 * snapshot, decision against its threshold. */
static void do_score(struct worker *w, const struct sv_proto_request *rq)
{
	struct sv_daemon *d = w->q->d;
	uint32_t din = d->conf.d_in, dout = d->conf.d_out;
	struct sv_snap *snap = snap_get(&d->snap);
	struct sv_proto_iter it = {0};
	struct sv_proto_pair pr;
	sv_store_read *r = NULL;
	size_t n = rq->n, i = 0, missing = 0;
	int rc = ensure(w, n);

	if (rc < 0 || snap == NULL) {
		sv_store_read_end(r);
		snap_unref(snap);
		atomic_fetch_add(&d->cnt.query_errors, 1);
		reply_error(&w->mb, rq->hdr.verb, rq->hdr.request_id, SV_PROTO_STATUS_INTERNAL, 0,
		            "no model or no memory");
		return;
	}
	while (i < n && sv_proto_next_pair(rq, &it, &pr)) {
		float *xa = w->X + 2 * i * din, *xb = xa + din;
		struct sv_proto_score *s = &w->scores[i];

		memset(s, 0, sizeof(*s));
		s->model_version = snap->version;
		s->threshold = snap->threshold;
		s->policy = (uint8_t)snap->policy;
		if (side_row(d->store, &r, &pr.a, xa, din) < 0 ||
		    side_row(d->store, &r, &pr.b, xb, din) < 0) {
			s->status = SV_PROTO_STATUS_NOT_FOUND;
			memset(xa, 0, 2 * din * sizeof(float));
			missing++;
		} else {
			s->status = SV_PROTO_STATUS_OK;
		}
		i++;
	}
	sv_store_read_end(r);
	n = i;
	/* rows a0 b0 a1 b1 ...: one forward pass for all of them */
	sv_model_forward(w->X, 2 * n, snap->W, din, dout, w->E, NULL);
	for (i = 0; i < n; i++) {
		struct sv_proto_score *s = &w->scores[i];

		if (s->status != SV_PROTO_STATUS_OK)
			continue;
		s->score = dot(w->E + 2 * i * dout, w->E + (2 * i + 1) * dout, dout);
		s->margin = s->score - s->threshold;
		s->match = s->score >= s->threshold;
	}
	snap_unref(snap);
	if (missing == n)
		reply_error(&w->mb, rq->hdr.verb, rq->hdr.request_id, SV_PROTO_STATUS_NOT_FOUND, 0,
		            "no such item");
	else if (sv_proto_encode_reply_scores(
	             &w->mb, rq->hdr.verb, rq->hdr.request_id,
	             missing ? SV_PROTO_STATUS_PARTIAL : SV_PROTO_STATUS_OK,
	             missing ? "some ids are not stored items" : NULL, w->scores, n) < 0)
		reply_error(&w->mb, rq->hdr.verb, rq->hdr.request_id, SV_PROTO_STATUS_INTERNAL, 0,
		            "cannot encode the scores");
}

static void do_item_get(struct worker *w, const struct sv_proto_request *rq)
{
	struct sv_daemon *d = w->q->d;
	sv_store_read *r = NULL;
	int rc = ensure(w, 1);

	if (rc == 0)
		rc = sv_store_read_begin(d->store, &r);
	if (rc == 0)
		rc = sv_store_item_get(r, rq->item.id, rq->item.id_len, w->X);
	sv_store_read_end(r);
	if (rc == 0)
		rc =
		    sv_proto_encode_reply_vec(&w->mb, rq->hdr.request_id, NULL, w->X, d->conf.d_in);
	if (rc < 0)
		reply_error(&w->mb, rq->hdr.verb, rq->hdr.request_id,
		            rc == SV_ERR_NOTFOUND ? SV_PROTO_STATUS_NOT_FOUND
		                                  : SV_PROTO_STATUS_INTERNAL,
		            0, rc == SV_ERR_NOTFOUND ? "no such item" : sv_strerror(rc));
}

/* ---- cluster.role replica: positions (docs/PROTOCOL.md, flag POS) ---- */

/* The model version a query would use now: the top-k cache's for TOPK, the
 * snapshot's for SCORE. */
static uint64_t version_now(struct sv_daemon *d, int verb)
{
	uint64_t v = 0, steps, rebuilds;
	struct sv_snap *s;

	if (verb == SV_PROTO_VERB_TOPK) {
		topk_cache_info(d->topk, &v, &steps, &rebuilds);
		return v;
	}
	s = snap_get(&d->snap);
	v = s ? s->version : 0;
	snap_unref(s);
	return v;
}

/* A replica answers a query that names a least position once it stands
 * there, waiting up to cluster.read_wait; 1 when it does, 0 when not. */
static int position_reached(struct sv_daemon *d, const struct sv_proto_request *rq)
{
	struct cluster *c = atomic_load(&d->cluster);
	uint64_t end;

	if (!rq->has_pos || !cluster_replica(c))
		return 1;
	end = now_mono_ns() + cluster_read_wait_ms(c) * 1000000ULL;
	while (version_now(d, rq->hdr.verb) < rq->pos_version ||
	       cluster_items_seq(c) < rq->pos_seq) {
		if (now_mono_ns() >= end)
			return 0;
		usleep(2000);
	}
	return 1;
}

/* A replica names where it stood on each SCORE and TOPK reply: the model
 * version the answer used (its first row's) and the items sequence. */
static void add_position(struct sv_daemon *d, struct sv_proto_msgbuf *mb)
{
	struct cluster *c = atomic_load(&d->cluster);
	int verb = mb->n ? ((const uint8_t *)mb->frames[0].data)[3] : 0;
	uint64_t v;

	if (!cluster_replica(c) || (verb != SV_PROTO_VERB_SCORE &&
	                            verb != SV_PROTO_VERB_SCORE_BATCH && verb != SV_PROTO_VERB_TOPK))
		return;
	if (mb->n > 2 && mb->frames[2].len >= SV_PROTO_SCORE_ROW && verb != SV_PROTO_VERB_TOPK)
		memcpy(&v, (const uint8_t *)mb->frames[2].data + 16, 8);
	else if (mb->n > 2 && mb->frames[2].len >= SV_PROTO_TOPKQ_ROW && verb == SV_PROTO_VERB_TOPK)
		memcpy(&v, mb->frames[2].data, 8);
	else
		v = version_now(d, verb);
	sv_proto_add_pos(mb, v, cluster_items_seq(c));
}

static void handle(struct worker *w, const struct sv_proto_frame *fr, size_t n)
{
	struct sv_daemon *d = w->q->d;
	struct sv_proto_request rq;
	/* static per thread: the error reply in w->mb points at err.msg until
	 * worker_main sends it, after this function has returned */
	static _Thread_local struct sv_proto_error err;
	unsigned long long sup = 0;
	char sbuf[64];
	uint64_t t0 = now_mono_ns();

	atomic_fetch_add(&d->cnt.queries, 1);
	live_limits(d, &w->lim_gen, &w->lim);
	memset(&err, 0, sizeof(err));
	if (sv_proto_decode_request(fr, n, &w->lim, &rq, &err) < 0) {
		reject_count(d, (int)err.reason);
		atomic_fetch_add(&d->cnt.query_errors, 1);
		if (log_ratelimit(&w->rl, LOG_BURST, &sup))
			log_msg(LOG_INFO, "SV-QUERY-MALFORMED", "query: %s (%s); error reply sent%s",
			       err.msg, sv_proto_reason_name((int)err.reason),
			       log_suppressed(sup, sbuf, sizeof(sbuf)));
		reply_error(&w->mb, err.have_header ? err.header.verb : 0,
		            err.have_header ? err.header.request_id : 0, SV_PROTO_STATUS_MALFORMED,
		            (int)err.reason, err.msg);
		return;
	}
	if (!position_reached(d, &rq)) {
		reply_error(&w->mb, rq.hdr.verb, rq.hdr.request_id, SV_PROTO_STATUS_BEHIND, 0,
		            "this replica has not reached the model version and items sequence "
		            "asked for within cluster.read_wait: ask again, or another replica");
		add_position(d, &w->mb);
		return;
	}
	switch (rq.hdr.verb) {
	case SV_PROTO_VERB_SCORE:
	case SV_PROTO_VERB_SCORE_BATCH:
		do_score(w, &rq);
		break;
	case SV_PROTO_VERB_TOPK: {
		const struct sv_proto_request *one = &rq;

		topk_cache_answer(d->topk, &one, 1, &w->mb, &w->ts);
		break;
	}
	case SV_PROTO_VERB_ITEM_GET:
		do_item_get(w, &rq);
		break;
	default:
		reject_count(d, SV_REJECT_REFUSED);
		atomic_fetch_add(&d->cnt.query_errors, 1);
		reply_error(&w->mb, rq.hdr.verb, rq.hdr.request_id, SV_PROTO_STATUS_REFUSED, 0,
		            "not a query verb: ingest and admin verbs have their own sockets");
		break;
	}
	add_position(d, &w->mb);
	latency_note(d, rq.hdr.verb, now_mono_ns() - t0);
}

/* A well-formed TOPK request, decoded into *rq and counted (1), or
 * anything else (0: handle() answers it, errors included). */
static int topk_decoded(struct worker *w, const struct parts *p, int env,
                        struct sv_proto_request *rq)
{
	const struct sv_proto_frame *h = &p->fr[env];
	struct sv_proto_error err;

	if (p->over || p->n <= env || h->len != SV_PROTO_HEADER_SIZE ||
	    ((const uint8_t *)h->data)[3] != SV_PROTO_VERB_TOPK)
		return 0;
	live_limits(w->q->d, &w->lim_gen, &w->lim);
	if (sv_proto_decode_request(p->fr + env, (size_t)(p->n - env), &w->lim, rq, &err) < 0 ||
	    rq->has_pos) /* handle() waits for its position */
		return 0;
	atomic_fetch_add(&w->q->d->cnt.queries, 1);
	return 1;
}

static void worker_reply(struct worker *w, const struct parts *p, int env,
                         const struct sv_proto_msgbuf *mb)
{
	for (int i = 0; i < env && i < p->n; i++)
		zmq_send(w->sock, p->fr[i].data, p->fr[i].len, ZMQ_SNDMORE);
	for (size_t i = 0; i < mb->n; i++)
		zmq_send(w->sock, mb->frames[i].data, mb->frames[i].len,
		         i + 1 < mb->n ? ZMQ_SNDMORE : 0);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct parts p[TOPK_BATCH];
	struct sv_proto_request rq[TOPK_BATCH];
	const struct sv_proto_request *tq[TOPK_BATCH];
	size_t ti[TOPK_BATCH];
	uint64_t t0 = 0;

	pthread_setname_np(pthread_self(), "sv-query-work");
	for (;;) {
		size_t n = 1, tn = 0;

		if (parts_recv(w->sock, &p[0], 0) < 0)
			return NULL; /* ETERM */
		while (n < TOPK_BATCH && parts_recv(w->sock, &p[n], ZMQ_DONTWAIT) > 0)
			n++;
		for (size_t i = 0; i < n; i++) {
			int env = parts_envelope(&p[i]);

			if (topk_decoded(w, &p[i], env, &rq[tn])) {
				if (tn == 0)
					t0 = now_mono_ns();
				tq[tn] = &rq[tn];
				ti[tn++] = i;
				continue;
			}
			if (p[i].over || p[i].n <= env)
				reply_bad_envelope(w->q->d, &w->mb, p[i].over);
			else
				handle(w, p[i].fr + env, (size_t)(p[i].n - env));
			worker_reply(w, &p[i], env, &w->mb);
		}
		if (tn > 0) {
			topk_cache_answer(w->q->d->topk, tq, tn, w->bmb, &w->ts);
			for (size_t j = 0; j < tn; j++) {
				add_position(w->q->d, &w->bmb[j]);
				worker_reply(w, &p[ti[j]], parts_envelope(&p[ti[j]]), &w->bmb[j]);
				latency_note(w->q->d, SV_PROTO_VERB_TOPK, now_mono_ns() - t0);
			}
		}
		for (size_t i = 0; i < n; i++)
			parts_close(&p[i]);
	}
}

/* SV-QUERY-UNROUTABLE lines: the front thread only. */
static struct sv_ratelimit rl_unroutable;

/* Move one whole message from src to dst.  to_client: ROUTER_MANDATORY may
 * refuse (client gone, or its queue full): the rest is dropped and counted. */
static void forward(struct dquery *q, void *src, void *dst, int to_client)
{
	unsigned long long sup = 0;
	char sbuf[64];
	int more = 1, ok = 1;

	while (more) {
		zmq_msg_t m;

		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, src, 0) < 0) {
			zmq_msg_close(&m);
			return;
		}
		more = zmq_msg_more(&m);
		if (ok &&
		    zmq_msg_send(&m, dst,
		                 (more ? ZMQ_SNDMORE : 0) | (to_client ? ZMQ_DONTWAIT : 0)) < 0) {
			ok = 0;
			atomic_fetch_add(&q->d->cnt.unroutable, 1);
			if (log_ratelimit(&rl_unroutable, LOG_BURST, &sup))
				log_msg(LOG_INFO, "SV-QUERY-UNROUTABLE",
				       "reply dropped: %s (client gone or not reading)%s",
				       zmq_strerror(zmq_errno()),
				       log_suppressed(sup, sbuf, sizeof(sbuf)));
		}
		zmq_msg_close(&m); /* empty after a successful send */
	}
}

/* Cheap requests (one SCORE, a SCORE_BATCH of a few pairs, ITEM_GET) are
 * answered by the front thread itself: handing them to a worker would add two
 * thread hops (most of a small query's latency) for ~15 us of work (measured
 * at 784 -> 64; handing them to the workers only while more requests were
 * queued measured no better on 2 cores).  A TOPK whose product is small
 * (queries x cache rows x d_out at most FRONT_TOPK_WORK multiply-adds: 1
 * query over 32k items at d_out 64) and whose answer is small (queries x k
 * at most FRONT_TOPK_HITS: a large ranking and reply stay with the workers,
 * whose memory the limits bound) joins the front's set (topk_dispatch says
 * who answers it); a set holds at most SET_MAX requests and
 * FRONT_BATCH_WORK multiply-adds (about half a millisecond on one core).
 * Handed to the workers one by one instead, each such request cost two
 * thread hops, and the two workers split what was waiting between them
 * (README, Speed: 0.52 of the bound at 16 in flight).  Everything else goes
 * to the workers: a longer product there leaves the front free for the
 * cheap requests. */
#define INLINE_MAX_PAIRS 4
#define FRONT_TOPK_WORK ((uint64_t)1 << 21)
#define FRONT_BATCH_WORK ((uint64_t)1 << 24)
#define FRONT_TOPK_HITS 1024

enum route { ROUTE_FRONT, ROUTE_TOPK, ROUTE_WORKER };

/* Where the request with header h goes; for ROUTE_TOPK *work is its
 * product's multiply-adds over a cache of `rows` rows. */
static enum route route_of(struct dquery *q, const struct sv_proto_frame *h, size_t rows,
                           uint64_t *work)
{
	const uint8_t *b = h->data;
	uint32_t count, k;

	if (h->len != SV_PROTO_HEADER_SIZE || (b[4] & SV_PROTO_FLAG_POS))
		return ROUTE_WORKER; /* a query that may wait for its position: not here */
	memcpy(&count, b + 16, 4); /* little-endian hosts, as the codec */
	memcpy(&k, b + 24, 4);
	if (b[3] == SV_PROTO_VERB_SCORE || b[3] == SV_PROTO_VERB_ITEM_GET ||
	    (b[3] == SV_PROTO_VERB_SCORE_BATCH && count <= INLINE_MAX_PAIRS))
		return ROUTE_FRONT;
	*work = (uint64_t)count * rows * q->d->conf.d_out;
	if (b[3] == SV_PROTO_VERB_TOPK && count >= 1 && *work <= FRONT_TOPK_WORK &&
	    (uint64_t)count * k <= FRONT_TOPK_HITS)
		return ROUTE_TOPK;
	return ROUTE_WORKER;
}

/* Send the envelope of p and the reply mb to the client (never blocks: a
 * client that does not read loses it, counted). */
static void front_reply(struct dquery *q, const struct parts *p, int env,
                        const struct sv_proto_msgbuf *mb)
{
	int ok = 1;

	for (int i = 0; i < env && ok; i++)
		ok = zmq_send(q->front, p->fr[i].data, p->fr[i].len, ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0;
	for (size_t i = 0; i < mb->n && ok; i++)
		ok = zmq_send(q->front, mb->frames[i].data, mb->frames[i].len,
		              (i + 1 < mb->n ? ZMQ_SNDMORE : 0) | ZMQ_DONTWAIT) >= 0;
	if (!ok) {
		unsigned long long sup = 0;
		char sbuf[64];

		atomic_fetch_add(&q->d->cnt.unroutable, 1);
		if (log_ratelimit(&rl_unroutable, LOG_BURST, &sup))
			log_msg(LOG_INFO, "SV-QUERY-UNROUTABLE",
			       "reply dropped: %s (client gone or not reading)%s",
			       zmq_strerror(zmq_errno()), log_suppressed(sup, sbuf, sizeof(sbuf)));
	}
}

/* Whether the front's socket has a message waiting. */
static int front_waiting(struct dquery *q)
{
	int ev = 0;
	size_t len = sizeof(ev);

	return zmq_getsockopt(q->front, ZMQ_EVENTS, &ev, &len) == 0 && (ev & ZMQ_POLLIN);
}

/* Hand message p to the workers (zero-copy: p's parts are empty after). */
static void to_workers(struct dquery *q, struct parts *p)
{
	q->at_workers++;
	for (int i = 0; i < p->n; i++)
		zmq_msg_send(&p->m[i], q->back, i + 1 < p->n ? ZMQ_SNDMORE : 0);
}

/* Send the replies of set b (answered), note their latency from t0, and
 * let its messages go; then b is free. */
static void batch_replies(struct dquery *q, struct tbatch *b, uint64_t t0)
{
	uint64_t ns = now_mono_ns() - t0;

	for (size_t j = 0; j < b->n; j++) {
		front_reply(q, &b->p[j], parts_envelope(&b->p[j]), &b->mb[j]);
		latency_note(q->d, SV_PROTO_VERB_TOPK, ns);
		parts_close(&b->p[j]);
		if (b->mb[j].heap_cap > REPLY_KEEP) /* a rare large reply: not kept */
			sv_proto_msgbuf_free(&b->mb[j]);
	}
	pthread_mutex_lock(&q->bmu);
	b->n = 0;
	b->work = 0;
	if (q->work == NULL && q->fill->n > 0) /* it may wait for a free set */
		pthread_cond_signal(&q->bcv);
	pthread_mutex_unlock(&q->bmu);
}

/* A free set other than fill (bmu held), or NULL. */
static struct tbatch *free_set(struct dquery *q)
{
	for (int i = 0; i < 3; i++)
		if (q->tb[i].n == 0 && &q->tb[i] != q->fill)
			return &q->tb[i];
	return NULL;
}

/* Answer set b here, as one product over the live cache, and reply. */
static void front_topk(struct dquery *q, struct tbatch *b)
{
	uint64_t t0 = now_mono_ns();

	topk_cache_answer(q->d->topk, b->tq, b->n, b->mb, &q->fw.ts);
	for (size_t j = 0; j < b->n; j++)
		add_position(q->d, &b->mb[j]);
	batch_replies(q, b, t0);
}

/* The batch thread: whenever the front's set holds requests and another set
 * is free, it takes the set, leaves the free one in its place, answers
 * the requests as one product and hands the set back over the pair for the
 * front to reply.  So the requests that arrive while it computes wait for
 * it together, and it goes from one set to the next without waiting for
 * the front (at 16 in flight the sets then alternate between two halves
 * of the requests). */
static void *batch_main(void *arg)
{
	struct dquery *q = arg;
	struct tbatch *b, *next;

	pthread_setname_np(pthread_self(), "sv-query-topk");
	pthread_mutex_lock(&q->bmu);
	for (;;) {
		while (!q->bstop && (q->fill->n == 0 || (next = free_set(q)) == NULL))
			pthread_cond_wait(&q->bcv, &q->bmu);
		if (q->bstop)
			break;
		b = q->work = q->fill;
		q->fill = next;
		pthread_mutex_unlock(&q->bmu);
		b->t0 = now_mono_ns();
		topk_cache_answer(q->d->topk, b->tq, b->n, b->mb, &q->bts);
		for (size_t j = 0; j < b->n; j++)
			add_position(q->d, &b->mb[j]);
		pthread_mutex_lock(&q->bmu);
		q->work = NULL;
		if (zmq_send(q->bsock, &b, sizeof(b), 0) != (int)sizeof(b))
			break; /* ETERM: query_stop lets the messages go */
	}
	pthread_mutex_unlock(&q->bmu);
	return NULL;
}

/* After a drain: the TOPKs the front collected.  While the batch thread
 * computes, they wait for it (it takes them when it is done).  When it
 * waits, a lone one is answered here (at depth 1 the two thread hops would
 * cost as much as the query) and a set is handed to it, so the front keeps
 * receiving and replying on the other core while the product runs. */
static void topk_dispatch(struct dquery *q, int drained)
{
	struct tbatch *b = NULL, *next;

	pthread_mutex_lock(&q->bmu);
	if (q->fill->n > 0 && q->work == NULL) {
		if (q->fill->n == 1 && drained && (next = free_set(q)) != NULL) {
			b = q->fill;
			q->fill = next;
		} else {
			pthread_cond_signal(&q->bcv);
		}
	}
	pthread_mutex_unlock(&q->bmu);
	if (b != NULL)
		front_topk(q, b);
}

/* The batch thread handed sets back: their replies. */
static void batch_back(struct dquery *q)
{
	struct tbatch *b;

	while (zmq_recv(q->bfront, &b, sizeof(b), ZMQ_DONTWAIT) == (int)sizeof(b))
		batch_replies(q, b, b->t0);
}

/* Add the TOPK request in p (its envelope env, its product qwork) to the
 * front's set: 1; 0 when the set is full (p untouched); -1 when the
 * request is malformed (p handed back for handle() to say why). */
static int topk_collect(struct dquery *q, struct parts *p, int env, uint64_t qwork)
{
	struct tbatch *b;
	int ok = 0;

	pthread_mutex_lock(&q->bmu);
	b = q->fill;
	if (b->n < SET_MAX && (b->n == 0 || b->work + qwork <= FRONT_BATCH_WORK)) {
		parts_move(&b->p[b->n], p);
		ok = topk_decoded(&q->fw, &b->p[b->n], env, &b->rq[b->n]);
		if (ok) {
			b->tq[b->n] = &b->rq[b->n];
			b->work += qwork;
			b->n++;
		} else {
			parts_move(p, &b->p[b->n]);
			ok = -1;
		}
	}
	pthread_mutex_unlock(&q->bmu);
	return ok;
}

/* Up to TOPK_BATCH waiting requests: the cheap ones answered here in order,
 * the small TOPKs collected into q->fill (topk_dispatch decides who
 * answers them), the rest forwarded to the workers.  Returns whether more
 * may be waiting. */
static int front_requests(struct dquery *q)
{
	struct worker *w = &q->fw;
	struct parts p;
	size_t got = 0, rows = topk_cache_rows(q->d->topk);
	uint64_t qwork = 0;

	/* at most TOPK_BATCH messages, so the workers' replies are forwarded in
	 * between however many requests keep coming */
	while (got < TOPK_BATCH && parts_recv(q->front, &p, ZMQ_DONTWAIT) > 0) {
		int env = parts_envelope(&p);
		enum route rt =
		    p.over || p.n <= env ? ROUTE_FRONT : route_of(q, &p.fr[env], rows, &qwork);

		got++;
		if (rt == ROUTE_TOPK) {
			int in = topk_collect(q, &p, env, qwork);

			if (in > 0)
				continue;
			/* malformed (handle() says why), or the set is full: the
			 * workers rank what they find waiting */
			rt = in == 0 ? ROUTE_WORKER : ROUTE_FRONT;
		}
		if (rt == ROUTE_WORKER) {
			to_workers(q, &p);
		} else {
			if (p.over || p.n <= env) /* a forwarded copy would lose over */
				reply_bad_envelope(q->d, &w->mb, p.over);
			else
				handle(w, p.fr + env, (size_t)(p.n - env));
			front_reply(q, &p, env, &w->mb);
		}
		parts_close(&p);
	}
	return got == TOPK_BATCH || front_waiting(q);
}

static void *front_main(void *arg)
{
	struct dquery *q = arg;

	pthread_setname_np(pthread_self(), "sv-query-front");
	for (;;) {
		zmq_pollitem_t it[3] = {
		    {q->front, 0, ZMQ_POLLIN, 0},
		    {q->back, 0, ZMQ_POLLIN, 0},
		    {q->bfront, 0, ZMQ_POLLIN, 0},
		};
		int more = 0;

		if (zmq_poll(it, 3, -1) < 0) {
			if (zmq_errno() == EINTR)
				continue;
			return NULL; /* ETERM */
		}
		if (it[2].revents & ZMQ_POLLIN)
			batch_back(q);
		/* drain what is queued (4 batches at most) before polling again */
		for (int k = 0; k < 4 && (it[0].revents & ZMQ_POLLIN); k++)
			if (!(more = front_requests(q)))
				break;
		topk_dispatch(q, !more);
		/* and every reply the workers have ready (64 at most), not one a
		 * poll: at 16 in flight the polls were most of the front's work */
		for (int k = 0; k < 64 && (it[1].revents & ZMQ_POLLIN); k++) {
			int ev = 0;
			size_t len = sizeof(ev);

			forward(q, q->back, q->front, 1);
			if (q->at_workers > 0)
				q->at_workers--; /* one reply per request */
			if (zmq_getsockopt(q->back, ZMQ_EVENTS, &ev, &len) < 0 || !(ev & ZMQ_POLLIN))
				break;
		}
	}
}

int query_start(struct dquery **out, struct sv_daemon *d)
{
	struct dquery *q = calloc(1, sizeof(*q));
	int one = 1, rc = 0, hwm;

	if (q == NULL)
		return -ENOMEM;
	q->d = d;
	pthread_mutex_init(&q->bmu, NULL);
	pthread_cond_init(&q->bcv, NULL);
	q->n_workers = d->conf.query_threads;
	if (q->n_workers < 1)
		q->n_workers = 1;
	if (q->n_workers > MAX_WORKERS)
		q->n_workers = MAX_WORKERS;
	q->front = parts_socket(d->zctx, ZMQ_ROUTER);
	q->back = parts_socket(d->zctx, ZMQ_DEALER);
	if (q->front == NULL || q->back == NULL) {
		rc = -zmq_errno();
		goto fail;
	}
	zmq_setsockopt(q->front, ZMQ_ROUTER_MANDATORY, &one, sizeof(one));
	/* a client that does not read holds at most this many replies */
	hwm = (int)d->conf.cfg.limits_max_queued_replies;
	zmq_setsockopt(q->front, ZMQ_SNDHWM, &hwm, sizeof(hwm));
	if (curve_socket_setup(q->front, d->conf.ep_query) < 0 || zmq_bind(q->front, d->conf.ep_query) < 0) {
		rc = -zmq_errno();
		log_msg(LOG_ERR, "SV-SOCKET-BIND", "cannot bind query socket to %s: %s",
		       d->conf.ep_query, zmq_strerror(-rc));
		goto fail;
	}
	log_msg(LOG_INFO, "SV-SOCKET-BIND", "query (ROUTER) socket on %s", d->conf.ep_query);
	if (zmq_bind(q->back, WORKERS_EP) < 0) {
		rc = -zmq_errno();
		goto fail;
	}
	for (size_t i = 0; i < q->n_workers; i++) {
		struct worker *w = &q->w[i];

		w->q = q;
		w->lim_gen = UINT_MAX;
		sv_proto_msgbuf_init(&w->mb);
		for (int j = 0; j < TOPK_BATCH; j++)
			sv_proto_msgbuf_init(&w->bmb[j]);
		w->sock = parts_socket(d->zctx, ZMQ_DEALER);
		if (w->sock == NULL || zmq_connect(w->sock, WORKERS_EP) < 0) {
			rc = -zmq_errno();
			goto fail;
		}
		rc = -pthread_create(&w->th, NULL, worker_main, w);
		if (rc < 0)
			goto fail;
		w->started = 1;
	}
	/* the batch thread and its pair */
	q->fill = &q->tb[0];
	for (int i = 0; i < 3; i++)
		for (int j = 0; j < SET_MAX; j++)
			sv_proto_msgbuf_init(&q->tb[i].mb[j]);
	q->bfront = parts_socket(d->zctx, ZMQ_PAIR);
	q->bsock = parts_socket(d->zctx, ZMQ_PAIR);
	if (q->bfront == NULL || q->bsock == NULL || zmq_bind(q->bfront, BATCH_EP) < 0 ||
	    zmq_connect(q->bsock, BATCH_EP) < 0) {
		rc = -zmq_errno();
		goto fail;
	}
	rc = -pthread_create(&q->bth, NULL, batch_main, q);
	if (rc < 0)
		goto fail;
	q->bstarted = 1;
	q->fw.q = q;
	q->fw.lim_gen = UINT_MAX;
	sv_proto_msgbuf_init(&q->fw.mb);
	rc = -pthread_create(&q->th, NULL, front_main, q);
	if (rc < 0)
		goto fail;
	q->started = 1;
fail:
	*out = q; /* on failure too: main stops it after zmq_ctx_shutdown */
	return rc;
}

void query_stop(struct dquery *q)
{
	int zero = 0;

	if (q == NULL)
		return;
	if (q->started)
		pthread_join(q->th, NULL);
	pthread_mutex_lock(&q->bmu);
	q->bstop = 1;
	pthread_cond_broadcast(&q->bcv);
	pthread_mutex_unlock(&q->bmu);
	if (q->bstarted)
		pthread_join(q->bth, NULL);
	pthread_cond_destroy(&q->bcv);
	pthread_mutex_destroy(&q->bmu);
	for (int i = 0; i < 3; i++) {
		for (size_t j = 0; j < q->tb[i].n; j++)
			parts_close(&q->tb[i].p[j]);
		for (int j = 0; j < SET_MAX; j++)
			sv_proto_msgbuf_free(&q->tb[i].mb[j]);
	}
	topk_scratch_free(&q->bts);
	if (q->bsock)
		zmq_close(q->bsock);
	if (q->bfront)
		zmq_close(q->bfront);
	for (size_t i = 0; i < q->n_workers; i++) {
		struct worker *w = &q->w[i];

		if (w->started)
			pthread_join(w->th, NULL);
		if (w->sock) {
			zmq_setsockopt(w->sock, ZMQ_LINGER, &zero, sizeof(zero));
			zmq_close(w->sock);
		}
		sv_proto_msgbuf_free(&w->mb);
		for (int j = 0; j < TOPK_BATCH; j++)
			sv_proto_msgbuf_free(&w->bmb[j]);
		free(w->X);
		free(w->E);
		free(w->scores);
		topk_scratch_free(&w->ts);
	}
	if (q->front) {
		zmq_setsockopt(q->front, ZMQ_LINGER, &zero, sizeof(zero));
		zmq_close(q->front);
	}
	if (q->back) {
		zmq_setsockopt(q->back, ZMQ_LINGER, &zero, sizeof(zero));
		zmq_close(q->back);
	}
	sv_proto_msgbuf_free(&q->fw.mb);
	topk_scratch_free(&q->fw.ts);
	free(q->fw.X);
	free(q->fw.E);
	free(q->fw.scores);
	free(q);
}
