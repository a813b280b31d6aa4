/* topk_cache.c - the top-k cache service: the holder, the first build at
 * start, background rebuilds, mutations after commit, answers (see
 * topk_cache.h).
 * Leaves out: the search itself (lib/topk.c), SCORE (query.c: it projects
 * both sides under the snapshot).
 */
#include "topk_cache.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon.h"
#include "log.h"
#include "reply.h"
#include "sv/error.h"
#include "sv/proto.h"
#include "sv/store.h"
#include "sv/topk.h"
#include "util.h"

#define POLL_MS 5  /* how often the thread looks for a new snapshot */

/* One noted mutation of the group in hand: a put (vec != NULL) or a delete. */
struct note {
	uint8_t id[SV_TOPK_ID_MAX];
	size_t len;
	float *vec; /* d_in floats, owned; NULL: delete */
};

struct topk_cache {
	struct sv_daemon *d;
	struct sv_topk_holder *h;
	uint32_t d_in;
	pthread_t th;
	int started;
	pthread_mutex_t mu; /* stop flag + cond */
	pthread_cond_t cv;
	int stop;
	uint64_t delay_ms; /* SV_TOPK_TEST_DELAY_MS */
	/* what the live cache was built from (written by the thread) */
	_Atomic uint64_t built_version, built_steps, rebuilds;
	atomic_int ready;
	/* products answered, by queries (topk_cache_batches) */
	_Atomic uint64_t batches[TOPK_CACHE_BATCH_MAX + 1];
	/* trainer-only: the group's mutations */
	struct note *notes;
	size_t n_notes, cap_notes;
};

/* ---- mutations (trainer thread) ---------------------------------------- */

static struct note *note_new(struct topk_cache *g, const void *id, size_t len)
{
	struct note *n;

	if (len == 0 || len > SV_TOPK_ID_MAX)
		return NULL;
	if (g->n_notes == g->cap_notes) {
		size_t c = g->cap_notes ? 2 * g->cap_notes : 64;
		struct note *p = realloc(g->notes, c * sizeof(*p));

		if (p == NULL)
			return NULL;
		g->notes = p;
		g->cap_notes = c;
	}
	n = &g->notes[g->n_notes++];
	memcpy(n->id, id, len);
	n->len = len;
	n->vec = NULL;
	return n;
}

static void note_lost(struct topk_cache *g)
{
	/* Only on allocation failure: the cache would miss a mutation, so
	 * stop answering from it until a rebuild from the store. */
	atomic_store(&g->ready, 0);
	atomic_store(&g->built_steps, UINT64_MAX);
	log_msg(LOG_ERR, "SV-TOPK-NOMEM",
	       "no memory to note an item change; TOPK falls back to brute force until the next "
	       "cache rebuild");
}

void topk_cache_note_put(struct topk_cache *g, const void *id, size_t len, const float *vec)
{
	struct note *n;

	if (g == NULL)
		return;
	n = note_new(g, id, len);
	if (n != NULL) {
		n->vec = malloc(g->d_in * sizeof(float));
		if (n->vec == NULL)
			g->n_notes--;
		else
			memcpy(n->vec, vec, g->d_in * sizeof(float));
	}
	if (n == NULL || n->vec == NULL)
		note_lost(g);
}

void topk_cache_note_del(struct topk_cache *g, const void *id, size_t len)
{
	if (g != NULL && note_new(g, id, len) == NULL)
		note_lost(g);
}

void topk_cache_commit(struct topk_cache *g, int ok)
{
	if (g == NULL)
		return;
	for (size_t i = 0; i < g->n_notes; i++) {
		struct note *n = &g->notes[i];
		int rc = 0;

		if (ok && n->vec != NULL)
			rc = sv_topk_holder_upsert(g->h, n->id, n->len, n->vec);
		else if (ok)
			(void)sv_topk_holder_delete(g->h, n->id, n->len); /* NOTFOUND is fine */
		if (rc < 0) {
			log_msg(LOG_WARNING, "SV-TOPK-UPSERT", "cache upsert failed: %s",
			       sv_strerror(rc));
			note_lost(g);
		}
		free(n->vec);
	}
	g->n_notes = 0;
}

/* ---- rebuilds (the service's thread) ------------------------------------ */

/* Sleep ms unless told to stop; returns the stop flag. */
static int nap(struct topk_cache *g, uint64_t ms)
{
	struct timespec ts;
	int stop;

	ts = deadline_ms(ms);
	pthread_mutex_lock(&g->mu);
	if (!g->stop)
		pthread_cond_timedwait(&g->cv, &g->mu, &ts);
	stop = g->stop;
	pthread_mutex_unlock(&g->mu);
	return stop;
}

static int rebuild(struct topk_cache *g, const struct sv_snap *s)
{
	struct sv_topk_cache *next = NULL;
	sv_store_read *r = NULL;
	int rc;

	rc = sv_topk_holder_begin_rebuild(g->h, s->W, s->version, &next);
	if (rc < 0)
		return rc;
	/* the store snapshot is taken AFTER begin_rebuild (sv/topk.h) */
	rc = sv_store_read_begin(g->d->store, &r);
	if (rc == 0)
		rc = sv_topk_cache_load(next, r);
	sv_store_read_end(r);
	if (rc == 0 && g->delay_ms > 0 && nap(g, g->delay_ms))
		rc = -ECANCELED;
	if (rc == 0) {
		/* labels first: a reader that sees the new cache finds them set */
		atomic_store(&g->built_version, s->version);
		atomic_store(&g->built_steps, s->steps);
		rc = sv_topk_holder_publish(g->h);
		if (rc < 0)
			atomic_store(&g->built_steps, UINT64_MAX);
	} else {
		sv_topk_holder_abort(g->h);
	}
	return rc;
}

/* The live cache holds no item (a store of pair vectors only).  Its W may
 * then lag: it only projects queries, and with no rows no query finds
 * anything; the first upsert makes it non-empty and the next look rebuilds. */
static int live_empty(struct topk_cache *g)
{
	struct sv_topk_cache *c = sv_topk_holder_acquire(g->h);
	int empty = sv_topk_cache_count(c) == 0;

	sv_topk_cache_release(c);
	return empty;
}

static void *cache_main(void *arg)
{
	struct topk_cache *g = arg;
	uint64_t wait_ms = 0, last_t0 = 0;

	pthread_setname_np(pthread_self(), "sv-topk-cache");
	while (!nap(g, wait_ms > POLL_MS ? wait_ms : POLL_MS)) {
		struct sv_snap *s = snap_get(&g->d->snap);
		uint64_t t0, refresh_ns;
		int rc;

		wait_ms = 0;
		if (s == NULL)
			continue;
		pthread_mutex_lock(&g->d->live_mu);
		refresh_ns = g->d->live.topk_refresh_ms * 1000000ULL;
		pthread_mutex_unlock(&g->d->live_mu);
		/* a new version (checkpoint, rollback) at once; new steps of the
		 * same version at most every query.topk_refresh */
		if (atomic_load(&g->ready) &&
		    ((s->version == atomic_load(&g->built_version) &&
		      (s->steps == atomic_load(&g->built_steps) ||
		       now_mono_ns() - last_t0 < refresh_ns)) ||
		     live_empty(g))) {
			/* up to date, or nothing to search (only inline pair
			 * vectors stored): no walk; looked at again next time */
			snap_unref(s);
			continue;
		}
		t0 = last_t0 = now_mono_ns();
		rc = rebuild(g, s);
		if (rc == 0) {
			atomic_fetch_add(&g->rebuilds, 1);
			atomic_store(&g->ready, 1);
		}
		if (rc == 0) {
			/* duty cycle: idle at least as long as the build took */
			struct sv_topk_cache *c = sv_topk_holder_acquire(g->h);

			wait_ms = (now_mono_ns() - t0) / 1000000ULL;
			log_msg(LOG_DEBUG, "SV-TOPK-REBUILD",
			       "projection cache v%llu step %llu: %zu items in %llu ms",
			       (unsigned long long)s->version, (unsigned long long)s->steps,
			       sv_topk_cache_count(c), (unsigned long long)wait_ms);
			sv_topk_cache_release(c);
		} else if (rc != -ECANCELED) {
			log_msg(LOG_ERR, "SV-TOPK-REBUILD",
			       "projection cache rebuild failed: %s; queries keep the previous one",
			       sv_strerror(rc));
			wait_ms = 1000;
		}
		snap_unref(s);
	}
	return NULL;
}

int topk_cache_start(struct topk_cache **out, struct sv_daemon *d)
{
	struct topk_cache *g = calloc(1, sizeof(*g));
	struct sv_snap *s = snap_get(&d->snap);
	const char *delay = getenv("SV_TOPK_TEST_DELAY_MS");
	int rc;

	if (g == NULL || s == NULL) {
		free(g);
		snap_unref(s);
		return g == NULL ? -ENOMEM : SV_ERR_STATE;
	}
	g->d = d;
	g->d_in = d->conf.d_in;
	if (delay != NULL)
		g->delay_ms = strtoull(delay, NULL, 10);
	pthread_mutex_init(&g->mu, NULL);
	pthread_cond_init(&g->cv, NULL);
	rc = sv_topk_holder_new(s->W, s->d_in, s->d_out, s->version, &g->h);
	if (rc == 0) {
		/* the first build before READY: every TOPK has a cache to answer from */
		uint64_t delay_ms = g->delay_ms, t0 = now_mono_ns();

		g->delay_ms = 0;
		rc = rebuild(g, s);
		g->delay_ms = delay_ms;
		if (rc == 0) {
			atomic_fetch_add(&g->rebuilds, 1);
			atomic_store(&g->ready, 1);
			log_msg(LOG_INFO, "SV-TOPK-BUILT", "projection cache v%llu: first build in %llu ms",
			       (unsigned long long)s->version,
			       (unsigned long long)((now_mono_ns() - t0) / 1000000ULL));
		}
	}
	snap_unref(s);
	if (rc == 0) {
		rc = -pthread_create(&g->th, NULL, cache_main, g);
		g->started = rc == 0;
	}
	if (rc < 0) {
		log_msg(LOG_ERR, "SV-TOPK-START", "cannot start the projection cache: %s",
		       sv_strerror(rc));
		topk_cache_stop(g);
		return rc;
	}
	*out = g;
	return 0;
}

void topk_cache_stop(struct topk_cache *g)
{
	if (g == NULL)
		return;
	pthread_mutex_lock(&g->mu);
	g->stop = 1;
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
	if (g->started)
		pthread_join(g->th, NULL);
	topk_cache_commit(g, 0);
	free(g->notes);
	sv_topk_holder_free(g->h);
	pthread_cond_destroy(&g->cv);
	pthread_mutex_destroy(&g->mu);
	free(g);
}

size_t topk_cache_rows(struct topk_cache *g)
{
	struct sv_topk_cache *c;
	size_t n;

	if (g == NULL)
		return 0;
	c = sv_topk_holder_acquire(g->h);
	n = sv_topk_cache_rows(c);
	sv_topk_cache_release(c);
	return n;
}

void topk_cache_batches(struct topk_cache *g, uint64_t counts[TOPK_CACHE_BATCH_MAX + 1])
{
	for (int q = 0; q <= TOPK_CACHE_BATCH_MAX; q++)
		counts[q] = g ? atomic_load_explicit(&g->batches[q], memory_order_relaxed) : 0;
}

void topk_cache_info(struct topk_cache *g, uint64_t *version, uint64_t *steps, uint64_t *rebuilds)
{
	if (version)
		*version = g ? atomic_load(&g->built_version) : 0;
	if (steps)
		*steps = g ? atomic_load(&g->built_steps) : 0;
	if (rebuilds)
		*rebuilds = g ? atomic_load(&g->rebuilds) : 0;
}

/* ---- answers (query workers) -------------------------------------------- */

/* An id query's embedding into e: the cached row, or (an item the cache
 * leaves out, e.g. an inline pair vector) the stored vector projected with
 * c's W.  Returns 0, SV_ERR_NOTFOUND or another negative code. */
static int query_row(struct topk_cache *g, struct sv_topk_cache *c, sv_store_read **r,
                     const struct sv_proto_side *q, float *x, float *e)
{
	int rc;

	if (q->id_len == 0 || q->id_len > SV_TOPK_ID_MAX)
		return SV_ERR_NOTFOUND;
	rc = sv_topk_cache_get(c, (const uint8_t *)q->id, q->id_len, e);
	if (rc != SV_ERR_NOTFOUND)
		return rc;
	if (*r == NULL && (rc = sv_store_read_begin(g->d->store, r)) < 0)
		return rc;
	rc = sv_store_item_get(*r, q->id, q->id_len, x);
	if (rc == 0)
		rc = sv_topk_cache_project(c, x, 1, e);
	return rc;
}

/* Make the array *p hold exactly `need` elements of elem bytes when it
 * holds fewer (*cap counts them).  Not grow_array's doubling: a scratch is
 * as large as the limits let an answer be (max_topk_hits), and no larger. */
static int fit(void **p, size_t *cap, size_t need, size_t elem)
{
	void *q;

	if (need <= *cap)
		return 0;
	q = realloc(*p, need * elem);
	if (q == NULL)
		return -ENOMEM;
	*p = q;
	*cap = need;
	return 0;
}

/* The scratch for Q queries of k hits at most (kk with the id queries'
 * extra one), dims d_in / d_out. */
static int scratch_fit(struct topk_scratch *s, size_t Q, size_t kmax, size_t kk, uint32_t din,
                       uint32_t dout)
{
	/* the per-query arrays share q_cap (counted in queries): grown together */
	void **per[] = {(void **)&s->qs, (void **)&s->qr, (void **)&s->st, (void **)&s->counts,
	                (void **)&s->E,  (void **)&s->EX, (void **)&s->X,  (void **)&s->xrow};
	const size_t elem[] = {sizeof(*s->qs),      sizeof(*s->qr),       1,
	                       sizeof(*s->counts),  dout * sizeof(float), dout * sizeof(float),
	                       din * sizeof(float), sizeof(*s->xrow)};
	size_t need = Q ? Q : 1, cap = s->q_cap;

	for (size_t i = 0; i < sizeof(per) / sizeof(per[0]); i++) {
		cap = s->q_cap;
		if (fit(per[i], &cap, need, elem[i]) < 0)
			return -ENOMEM;
	}
	s->q_cap = cap;
	if (fit((void **)&s->hits, &s->hit_cap, need * kk, sizeof(*s->hits)) < 0 ||
	    fit((void **)&s->out, &s->out_cap, need * (kmax ? kmax : 1), sizeof(*s->out)) < 0 ||
	    fit((void **)&s->x, &s->x_cap, din, sizeof(float)) < 0)
		return -ENOMEM;
	return 0;
}

void topk_scratch_free(struct topk_scratch *s)
{
	if (s == NULL)
		return;
	free(s->qs);
	free(s->qr);
	free(s->st);
	free(s->counts);
	free(s->E);
	free(s->X);
	free(s->EX);
	free(s->xrow);
	free(s->hits);
	free(s->out);
	free(s->x);
	memset(s, 0, sizeof(*s));
}

void topk_cache_answer(struct topk_cache *g, const struct sv_proto_request *const *rqs, size_t n,
                       struct sv_proto_msgbuf *mbs, struct topk_scratch *sc)
{
	struct sv_topk_cache *c;
	sv_store_read *r = NULL;
	size_t Q = 0, kmax = 0, kk, i, b, q0, nx = 0;
	uint32_t dout;
	int rc, any_id = 0;

	for (b = 0; b < n; b++) {
		Q += rqs[b]->n;
		kmax = rqs[b]->k > kmax ? rqs[b]->k : kmax;
	}
	c = sv_topk_holder_acquire(g->h);
	dout = sv_topk_cache_d_out(c);
	/* an id query leaves itself out: ask for one more */
	kk = kmax < SV_TOPK_K_MAX ? kmax + 1 : kmax;
	rc = scratch_fit(sc, Q, kmax, kk, g->d_in, dout);
	/* every query of every request, one row each */
	for (b = 0, i = 0; rc == 0 && b < n; b++) {
		struct sv_proto_iter it = {0};

		for (size_t j = 0;
		     rc == 0 && j < rqs[b]->n && sv_proto_next_query(rqs[b], &it, &sc->qs[i]);
		     j++, i++) {
			float *e = sc->E + i * dout;
			int q = 0;

			sc->st[i] = SV_PROTO_STATUS_OK;
			if (sc->qs[i].vec != NULL) { /* projected below, with the others */
				sv_proto_vec_copy(sc->X + nx * g->d_in, sc->qs[i].vec, g->d_in);
				sc->xrow[nx++] = i;
				continue;
			}
			any_id = 1;
			q = query_row(g, c, &r, &sc->qs[i], sc->x, e);
			if (q == SV_ERR_NOTFOUND) {
				sc->st[i] = SV_PROTO_STATUS_NOT_FOUND;
				memset(e, 0, dout * sizeof(float));
			} else if (q < 0) {
				rc = q;
			}
		}
	}
	sv_store_read_end(r);
	/* the query vectors: one GEMM (straight into E when there are only
	 * vectors, as queries come in order) */
	if (rc == 0 && nx > 0) {
		rc = sv_topk_cache_project(c, sc->X, nx, nx == Q ? sc->E : sc->EX);
		for (size_t j = 0; rc == 0 && nx < Q && j < nx; j++)
			memcpy(sc->E + sc->xrow[j] * dout, sc->EX + j * dout, dout * sizeof(float));
	}
	/* one product over the cache for all of them */
	if (rc == 0 && Q > 0) {
		rc = sv_topk_cache_query(c, sc->E, Q, any_id ? kk : kmax, sc->hits, sc->counts);
		atomic_fetch_add_explicit(
		    &g->batches[Q < TOPK_CACHE_BATCH_MAX ? Q : TOPK_CACHE_BATCH_MAX], 1,
		    memory_order_relaxed);
	}
	/* then one reply per request, each with its own k */
	for (b = 0, q0 = 0; b < n; q0 += rqs[b]->n, b++) {
		const struct sv_proto_request *rq = rqs[b];
		size_t stride = any_id ? kk : kmax, nh = 0, missing = 0, k = rq->k;

		for (i = q0; rc == 0 && i < q0 + rq->n; i++) {
			const struct sv_topk_hit *h = sc->hits + i * stride;
			const struct sv_proto_side *qs = &sc->qs[i];
			uint32_t m = 0;

			sc->qr[i].model_version = sv_topk_cache_version(c);
			sc->qr[i].status = sc->st[i];
			missing += sc->st[i] != SV_PROTO_STATUS_OK;
			for (size_t j = 0; sc->st[i] == SV_PROTO_STATUS_OK && j < sc->counts[i] && m < k;
			     j++) {
				if (qs->vec == NULL && h[j].id_len == qs->id_len &&
				    memcmp(h[j].id, qs->id, h[j].id_len) == 0)
					continue;
				sc->out[nh].id = (const char *)h[j].id;
				sc->out[nh].id_len = h[j].id_len;
				sc->out[nh].score = h[j].score;
				nh++;
				m++;
			}
			sc->qr[i].n_hits = m;
		}
		if (rc == 0 && missing == rq->n && rq->n > 0)
			reply_error(&mbs[b], rq->hdr.verb, rq->hdr.request_id,
			            SV_PROTO_STATUS_NOT_FOUND, 0, "no such item");
		else if (rc == 0 &&
		         sv_proto_encode_reply_topk(
		             &mbs[b], rq->hdr.request_id,
		             missing ? SV_PROTO_STATUS_PARTIAL : SV_PROTO_STATUS_OK,
		             missing ? "some query ids are not stored items" : NULL, (uint32_t)k,
		             sc->qr + q0, rq->n, sc->out) < 0)
			rc = -ENOMEM;
		if (rc < 0) {
			atomic_fetch_add(&g->d->cnt.query_errors, 1);
			reply_error(&mbs[b], rq->hdr.verb, rq->hdr.request_id,
			            SV_PROTO_STATUS_INTERNAL, 0, "topk failed (store or memory)");
		}
	}
	sv_topk_cache_release(c); /* after encoding: hit ids point into c */
	/* a rare large answer (k in the thousands) does not pin its memory */
	if (sc->hit_cap * sizeof(*sc->hits) + sc->out_cap * sizeof(*sc->out) +
	        sc->q_cap * (size_t)(g->d_in + 2 * dout) * sizeof(float) >
	    TOPK_SCRATCH_KEEP)
		topk_scratch_free(sc);
}
