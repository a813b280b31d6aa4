/* test_topk.c - the projection cache and holder against a naive brute force.
 *
 * The brute force projects every live item and the query in double precision
 * (z = W^T x, e = z / ||z||), scores all items and sorts them; top-k must give
 * the same ranking with scores within TOL (float32 GEMM against double).
 * Also covered: argument errors, ties (by insertion row), k > N, upserts,
 * deletes, batched = single, chunk and block boundaries, rebuilds with
 * mutations in flight, and readers racing a rebuilding thread.
 * Leaves out: timing (sv-bench topk).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sv/error.h"
#include "sv/model.h"
#include "sv/store.h"
#include "sv/topk.h"
#include "tmpdir.h"

#define TOL 2e-5

/* ---- deterministic data -------------------------------------------------- */

static uint64_t rng_next(uint64_t *s)
{
	*s += 0x9e3779b97f4a7c15ull;
	uint64_t z = *s;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static float rng_float(uint64_t *s)
{
	return (float)((double)(rng_next(s) >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static void fill(float *a, size_t n, uint64_t seed)
{
	uint64_t s = seed;
	for (size_t i = 0; i < n; i++)
		a[i] = rng_float(&s);
}

/* A test item: id "it<n>", its input row, alive or deleted. */
struct item {
	char id[16];
	size_t len;
	float *x;
	int alive;
};

static struct item *make_items(size_t n, uint32_t d_in, uint64_t seed)
{
	struct item *it = calloc(n, sizeof(*it));
	cr_assert_not_null(it);
	for (size_t i = 0; i < n; i++) {
		it[i].len = (size_t)snprintf(it[i].id, sizeof(it[i].id), "it%zu", i);
		it[i].x = malloc(d_in * sizeof(float));
		cr_assert_not_null(it[i].x);
		fill(it[i].x, d_in, seed * 1000003u + i);
		it[i].alive = 1;
	}
	return it;
}

static void free_items(struct item *it, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(it[i].x);
	free(it);
}

static const uint8_t *idp(const struct item *it)
{
	return (const uint8_t *)it->id;
}

/* Add all live items in batches of `batch` (one GEMM each). */
static void add_items(struct sv_topk_cache *c, const struct item *it, size_t n, uint32_t d_in,
                      size_t batch)
{
	float *X = malloc(batch * d_in * sizeof(float));
	const uint8_t **ids = malloc(batch * sizeof(*ids));
	size_t *lens = malloc(batch * sizeof(*lens));
	cr_assert(X && ids && lens);
	size_t m = 0;
	for (size_t i = 0; i <= n; i++) {
		if (m == batch || (i == n && m > 0)) {
			cr_assert_eq(sv_topk_cache_add(c, X, m, ids, lens), 0);
			m = 0;
		}
		if (i == n || !it[i].alive)
			continue;
		memcpy(X + m * d_in, it[i].x, d_in * sizeof(float));
		ids[m] = idp(&it[i]);
		lens[m] = it[i].len;
		m++;
	}
	free(lens);
	free(ids);
	free(X);
}

/* ---- the brute force ----------------------------------------------------- */

static void embed_d(const float *W, uint32_t d_in, uint32_t d_out, const float *x, double *e)
{
	double ss = 0;
	for (uint32_t j = 0; j < d_out; j++) {
		double z = 0;
		for (uint32_t i = 0; i < d_in; i++)
			z += (double)x[i] * W[(size_t)i * d_out + j];
		e[j] = z;
		ss += z * z;
	}
	double nrm = sqrt(ss) > 1e-12 ? sqrt(ss) : 1e-12;
	for (uint32_t j = 0; j < d_out; j++)
		e[j] /= nrm;
}

static double score_d(const float *W, uint32_t d_in, uint32_t d_out, const float *q, const float *x)
{
	double eq[256], ex[256];
	embed_d(W, d_in, d_out, q, eq);
	embed_d(W, d_in, d_out, x, ex);
	double s = 0;
	for (uint32_t j = 0; j < d_out; j++)
		s += eq[j] * ex[j];
	return s;
}

struct scored {
	double s;
	size_t i;
};

static int cmp_scored(const void *pa, const void *pb)
{
	const struct scored *a = pa, *b = pb;
	if (a->s != b->s)
		return a->s > b->s ? -1 : 1;
	return a->i < b->i ? -1 : a->i > b->i;
}

static const struct item *find_item(const struct item *it, size_t n, const struct sv_topk_hit *h)
{
	for (size_t i = 0; i < n; i++)
		if (it[i].len == h->id_len && memcmp(it[i].id, h->id, h->id_len) == 0)
			return &it[i];
	return NULL;
}

/* Check one query's hits against the brute force over the live items. */
static void check_hits(const float *W, uint32_t d_in, uint32_t d_out, const struct item *it,
                       size_t n, const float *q, size_t k, const struct sv_topk_hit *hits,
                       size_t count)
{
	struct scored *all = malloc(n * sizeof(*all));
	cr_assert_not_null(all);
	size_t live = 0;
	for (size_t i = 0; i < n; i++)
		if (it[i].alive)
			all[live++] = (struct scored){score_d(W, d_in, d_out, q, it[i].x), i};
	qsort(all, live, sizeof(*all), cmp_scored);
	cr_assert_eq(count, k < live ? k : live, "count %zu, k %zu, live %zu", count, k, live);
	for (size_t j = 0; j < count; j++) {
		const struct item *got = find_item(it, n, &hits[j]);
		cr_assert_not_null(got, "hit %zu names no known item", j);
		cr_assert(got->alive, "hit %zu is the deleted item %s", j, got->id);
		for (size_t j2 = 0; j2 < j; j2++)
			cr_assert(hits[j2].id != hits[j].id, "item %s returned twice", got->id);
		double own = score_d(W, d_in, d_out, q, got->x);
		cr_assert(fabs(hits[j].score - own) <= TOL, "hit %zu: score %g, brute %g", j,
		          hits[j].score, own);
		cr_assert(fabs(hits[j].score - all[j].s) <= TOL, "rank %zu: score %g, brute %g", j,
		          hits[j].score, all[j].s);
		/* where the brute-force ranking is not a near tie, the item must match */
		int clear = (j == 0 || all[j - 1].s - all[j].s > 2 * TOL) &&
		            (j + 1 >= live || all[j].s - all[j + 1].s > 2 * TOL);
		if (clear)
			cr_assert_eq(got, &it[all[j].i], "rank %zu: got %s, brute %s", j, got->id,
			             it[all[j].i].id);
		if (j > 0)
			cr_assert(hits[j - 1].score > hits[j].score ||
			              (hits[j - 1].score == hits[j].score &&
			               hits[j - 1].row < hits[j].row),
			          "hits %zu, %zu out of order", j - 1, j);
	}
	free(all);
}

/* ---- fixture: one cache with N random items ------------------------------ */

enum { D_IN = 24, D_OUT = 12 };

static float W1[D_IN * D_OUT], W2[D_IN * D_OUT];
static struct sv_topk_cache *cache;
static struct item *items;
static size_t n_items;

static void setup_small(void)
{
	fill(W1, D_IN * D_OUT, 11);
	fill(W2, D_IN * D_OUT, 22);
	n_items = 300;
	items = make_items(n_items, D_IN, 7);
	cr_assert_eq(sv_topk_cache_new(W1, D_IN, D_OUT, 1, &cache), 0);
	add_items(cache, items, n_items, D_IN, 64);
}

static void teardown_small(void)
{
	sv_topk_cache_release(cache);
	free_items(items, n_items);
}

static void query_and_check(size_t k, uint64_t seed)
{
	float q[D_IN];
	struct sv_topk_hit *hits = calloc(k, sizeof(*hits));
	size_t count = 0;
	fill(q, D_IN, seed);
	cr_assert_eq(sv_topk_cache_query_vec(cache, q, 1, k, hits, &count), 0);
	check_hits(W1, D_IN, D_OUT, items, n_items, q, k, hits, count);
	free(hits);
}

TestSuite(topk, .init = setup_small, .fini = teardown_small);

Test(topk, matches_brute_force)
{
	cr_assert_eq(sv_topk_cache_count(cache), n_items);
	cr_assert_eq(sv_topk_cache_version(cache), 1);
	for (uint64_t s = 0; s < 20; s++)
		query_and_check(1 + s % 12, 100 + s);
}

Test(topk, k_above_n_returns_every_live_item)
{
	query_and_check(n_items + 50, 5);
	query_and_check(n_items, 6);
}

Test(topk, argument_errors)
{
	float q[D_IN] = {0}, e[D_OUT] = {0};
	struct sv_topk_hit hits[4];
	size_t count = 99;
	const uint8_t *id = (const uint8_t *)"x";
	uint8_t long_id[SV_TOPK_ID_MAX + 1] = {0};
	size_t len = 1;

	cr_assert_eq(sv_topk_cache_query_vec(cache, q, 1, 0, hits, &count), SV_ERR_RANGE);
	cr_assert_eq(sv_topk_cache_query(cache, e, 1, 0, hits, &count), SV_ERR_RANGE);
	cr_assert_eq(sv_topk_cache_query(cache, e, 1, SV_TOPK_K_MAX + 1, hits, &count),
	             SV_ERR_RANGE);
	cr_assert_eq(count, 99, "out-param written on failure");
	cr_assert_eq(sv_topk_cache_query(cache, NULL, 1, 4, hits, &count), -EINVAL);
	cr_assert_eq(sv_topk_cache_query(cache, e, 1, 4, NULL, &count), -EINVAL);
	cr_assert_eq(sv_topk_cache_query(cache, e, 1, 4, hits, NULL), -EINVAL);
	cr_assert_eq(sv_topk_cache_query(NULL, e, 1, 4, hits, &count), -EINVAL);
	cr_assert_eq(sv_topk_cache_query(cache, NULL, 0, 4, NULL, NULL), 0);
	e[3] = NAN;
	cr_assert_eq(sv_topk_cache_query(cache, e, 1, 4, hits, &count), SV_ERR_NONFINITE);
	q[0] = INFINITY;
	cr_assert_eq(sv_topk_cache_query_vec(cache, q, 1, 4, hits, &count), SV_ERR_NONFINITE);
	cr_assert_eq(sv_topk_cache_upsert(cache, id, 1, q), SV_ERR_NONFINITE);
	q[0] = 0;
	cr_assert_eq(sv_topk_cache_upsert(cache, id, 0, q), SV_ERR_RANGE);
	cr_assert_eq(sv_topk_cache_upsert(cache, long_id, sizeof(long_id), q), SV_ERR_RANGE);
	cr_assert_eq(sv_topk_cache_upsert(cache, NULL, 1, q), -EINVAL);
	cr_assert_eq(sv_topk_cache_upsert(cache, id, 1, NULL), -EINVAL);
	cr_assert_eq(sv_topk_cache_add(cache, NULL, 0, NULL, NULL), 0);
	cr_assert_eq(sv_topk_cache_add(cache, q, 1, &id, NULL), -EINVAL);
	cr_assert_eq(sv_topk_cache_delete(cache, id, len), SV_ERR_NOTFOUND);
	cr_assert_eq(sv_topk_cache_delete(cache, id, 0), SV_ERR_RANGE);
	cr_assert_eq(sv_topk_cache_delete(cache, NULL, 1), -EINVAL);
	cr_assert_eq(sv_topk_cache_get(cache, id, len, e), SV_ERR_NOTFOUND);
	cr_assert_eq(sv_topk_cache_query_id(cache, id, len, 4, 0, hits, &count), SV_ERR_NOTFOUND);
	cr_assert_eq(sv_topk_cache_count(cache), n_items, "a failed call changed the cache");
	cr_assert_eq(sv_topk_cache_rows(cache), n_items);

	struct sv_topk_cache *c2 = NULL;
	float bad[4] = {1, NAN, 0, 0};
	cr_assert_eq(sv_topk_cache_new(NULL, 2, 2, 0, &c2), -EINVAL);
	cr_assert_eq(sv_topk_cache_new(bad, 0, 2, 0, &c2), -EINVAL);
	cr_assert_eq(sv_topk_cache_new(bad, 2, 2, 0, &c2), SV_ERR_NONFINITE);
	cr_assert_null(c2);
	sv_topk_cache_release(NULL);
	sv_topk_holder_free(NULL);
}

Test(topk, empty_cache_returns_nothing)
{
	struct sv_topk_cache *c;
	struct sv_topk_hit hits[3];
	size_t counts[2] = {7, 7};
	float q[2 * D_IN];
	fill(q, 2 * D_IN, 3);
	cr_assert_eq(sv_topk_cache_new(W1, D_IN, D_OUT, 9, &c), 0);
	cr_assert_eq(sv_topk_cache_query_vec(c, q, 2, 3, hits, counts), 0);
	cr_assert_eq(counts[0], 0);
	cr_assert_eq(counts[1], 0);
	sv_topk_cache_release(c);
}

Test(topk, deletes_never_return)
{
	for (size_t i = 0; i < n_items; i += 3) {
		cr_assert_eq(sv_topk_cache_delete(cache, idp(&items[i]), items[i].len), 0);
		items[i].alive = 0;
	}
	cr_assert_eq(sv_topk_cache_delete(cache, idp(&items[0]), items[0].len), SV_ERR_NOTFOUND);
	cr_assert_eq(sv_topk_cache_count(cache), n_items - 100);
	cr_assert_eq(sv_topk_cache_rows(cache), n_items);
	for (uint64_t s = 0; s < 10; s++)
		query_and_check(1 + s * 7, 200 + s);
	query_and_check(n_items, 300); /* every live one, none deleted */

	/* delete all: nothing comes back */
	for (size_t i = 0; i < n_items; i++)
		if (items[i].alive) {
			cr_assert_eq(sv_topk_cache_delete(cache, idp(&items[i]), items[i].len), 0);
			items[i].alive = 0;
		}
	query_and_check(5, 301);
	/* re-upsert one: it is back, alone */
	items[42].alive = 1;
	cr_assert_eq(sv_topk_cache_upsert(cache, idp(&items[42]), items[42].len, items[42].x), 0);
	query_and_check(5, 302);
}

Test(topk, upsert_overwrites_and_appends)
{
	/* new vector for an existing id: one live row, new score */
	fill(items[5].x, D_IN, 999);
	cr_assert_eq(sv_topk_cache_upsert(cache, idp(&items[5]), items[5].len, items[5].x), 0);
	cr_assert_eq(sv_topk_cache_count(cache), n_items);
	cr_assert_eq(sv_topk_cache_rows(cache), n_items + 1);
	struct sv_topk_hit hits[3];
	size_t count;
	cr_assert_eq(sv_topk_cache_query_vec(cache, items[5].x, 1, 3, hits, &count), 0);
	cr_assert_eq(find_item(items, n_items, &hits[0]), &items[5]);
	cr_assert(fabs(hits[0].score - 1.0) < 1e-5);
	for (uint64_t s = 0; s < 5; s++)
		query_and_check(10, 400 + s);

	/* a batch with a repeated id: the last one wins */
	float X[2 * D_IN];
	fill(X, 2 * D_IN, 555);
	const uint8_t *ids[2] = {(const uint8_t *)"dup", (const uint8_t *)"dup"};
	size_t lens[2] = {3, 3};
	cr_assert_eq(sv_topk_cache_add(cache, X, 2, ids, lens), 0);
	cr_assert_eq(sv_topk_cache_count(cache), n_items + 1);
	float e[D_OUT];
	double ed[D_OUT];
	cr_assert_eq(sv_topk_cache_get(cache, ids[0], 3, e), 0);
	embed_d(W1, D_IN, D_OUT, X + D_IN, ed);
	for (int j = 0; j < D_OUT; j++)
		cr_assert(fabs(e[j] - ed[j]) < 1e-5, "dup kept the first row");
}

Test(topk, ties_break_by_row)
{
	/* Five ids with the very same vector: equal scores, insertion order. */
	float x[D_IN];
	fill(x, D_IN, 4242);
	const char *names[5] = {"t-c", "t-a", "t-e", "t-b", "t-d"};
	for (int i = 0; i < 5; i++)
		cr_assert_eq(sv_topk_cache_upsert(cache, (const uint8_t *)names[i], 3, x), 0);
	struct sv_topk_hit hits[2 * 7];
	size_t counts[2];
	float X[2 * D_IN];
	memcpy(X, x, sizeof(x));
	memcpy(X + D_IN, x, sizeof(x));
	cr_assert_eq(sv_topk_cache_query_vec(cache, X, 2, 7, hits, counts), 0);
	for (int q = 0; q < 2; q++)
		for (int i = 0; i < 5; i++) {
			const struct sv_topk_hit *h = &hits[q * 7 + i];
			cr_assert_eq(h->id_len, 3);
			cr_assert_eq(memcmp(h->id, names[i], 3), 0, "rank %d is %.3s", i, h->id);
			cr_assert_eq(h->score, hits[q * 7].score);
			cr_assert_eq(h->row, n_items + (uint32_t)i);
		}
	/* deleting the first of the tied ones moves the rest up */
	cr_assert_eq(sv_topk_cache_delete(cache, (const uint8_t *)"t-c", 3), 0);
	cr_assert_eq(sv_topk_cache_query_vec(cache, x, 1, 4, hits, counts), 0);
	cr_assert_eq(memcmp(hits[0].id, "t-a", 3), 0);
	cr_assert_eq(memcmp(hits[3].id, "t-d", 3), 0);
}

Test(topk, batched_equals_single)
{
	enum { Q = 9, K = 6 };
	float X[Q * D_IN];
	struct sv_topk_hit hb[Q * K], hs[K];
	size_t cb[Q], cs;
	fill(X, Q * D_IN, 77);
	cr_assert_eq(sv_topk_cache_query_vec(cache, X, Q, K, hb, cb), 0);
	for (int q = 0; q < Q; q++) {
		cr_assert_eq(sv_topk_cache_query_vec(cache, X + q * D_IN, 1, K, hs, &cs), 0);
		cr_assert_eq(cb[q], cs);
		for (int j = 0; j < K; j++) {
			cr_assert_eq(hb[q * K + j].row, hs[j].row, "query %d rank %d", q, j);
			cr_assert_eq(hb[q * K + j].id, hs[j].id);
			cr_assert(fabsf(hb[q * K + j].score - hs[j].score) <= 1e-6f);
		}
		check_hits(W1, D_IN, D_OUT, items, n_items, X + q * D_IN, K, hb + q * K, cb[q]);
	}
}

Test(topk, embeddings_are_sv_model_forward)
{
	/* the same computation; GEMM rounding may vary with the batch shape */
	float e[D_OUT], ref[D_OUT], x[D_IN];
	for (size_t i = 0; i < n_items; i += 37) {
		cr_assert_eq(sv_topk_cache_get(cache, idp(&items[i]), items[i].len, e), 0);
		cr_assert_eq(sv_model_forward(items[i].x, 1, W1, D_IN, D_OUT, ref, NULL), 0);
		for (int j = 0; j < D_OUT; j++)
			cr_assert(fabsf(e[j] - ref[j]) <= 1e-6f, "item %zu [%d]", i, j);
	}
	/* one row at a time, the same shape: bit for bit */
	fill(x, D_IN, 5);
	cr_assert_eq(sv_topk_cache_project(cache, x, 1, e), 0);
	cr_assert_eq(sv_model_forward(x, 1, W1, D_IN, D_OUT, ref, NULL), 0);
	cr_assert_eq(memcmp(e, ref, sizeof(e)), 0);
	cr_assert_eq(sv_topk_cache_upsert(cache, (const uint8_t *)"one", 3, x), 0);
	cr_assert_eq(sv_topk_cache_get(cache, (const uint8_t *)"one", 3, e), 0);
	cr_assert_eq(memcmp(e, ref, sizeof(e)), 0);
}

Test(topk, mixed_batch_from_get_and_project)
{
	/* query 0: a stored id's embedding; query 1: a raw vector */
	float E[2 * D_OUT], x[D_IN];
	struct sv_topk_hit hits[2 * 4], single[4];
	size_t counts[2], count;
	fill(x, D_IN, 4711);
	cr_assert_eq(sv_topk_cache_get(cache, idp(&items[9]), items[9].len, E), 0);
	cr_assert_eq(sv_topk_cache_project(cache, x, 1, E + D_OUT), 0);
	cr_assert_eq(sv_topk_cache_query(cache, E, 2, 4, hits, counts), 0);
	check_hits(W1, D_IN, D_OUT, items, n_items, items[9].x, 4, hits, counts[0]);
	check_hits(W1, D_IN, D_OUT, items, n_items, x, 4, hits + 4, counts[1]);
	cr_assert_eq(sv_topk_cache_query_vec(cache, x, 1, 4, single, &count), 0);
	for (int j = 0; j < 4; j++)
		cr_assert_eq(single[j].row, hits[4 + j].row);
	x[2] = NAN;
	cr_assert_eq(sv_topk_cache_project(cache, x, 1, E), SV_ERR_NONFINITE);
	cr_assert_eq(sv_topk_cache_project(cache, NULL, 1, E), -EINVAL);
	cr_assert_eq(sv_topk_cache_project(cache, NULL, 0, NULL), 0);
}

Test(topk, query_by_id)
{
	struct sv_topk_hit hits[4];
	size_t count;
	cr_assert_eq(
	    sv_topk_cache_query_id(cache, idp(&items[17]), items[17].len, 4, 0, hits, &count), 0);
	cr_assert_eq(count, 4);
	cr_assert_eq(find_item(items, n_items, &hits[0]), &items[17]);
	check_hits(W1, D_IN, D_OUT, items, n_items, items[17].x, 4, hits, count);
	cr_assert_eq(
	    sv_topk_cache_query_id(cache, idp(&items[17]), items[17].len, 4, 1, hits, &count), 0);
	items[17].alive = 0; /* the brute force without itself */
	check_hits(W1, D_IN, D_OUT, items, n_items, items[17].x, 4, hits, count);
}

/* Many rows: chunk (8192) and score-block boundaries, batched. */
Test(topk, large_crosses_chunks)
{
	enum { N = 20000, Q = 5, K = 10 };
	struct item *big = make_items(N, D_IN, 31);
	struct sv_topk_cache *c;
	cr_assert_eq(sv_topk_cache_new(W1, D_IN, D_OUT, 3, &c), 0);
	cr_assert_eq(sv_topk_cache_reserve(c, N), 0);
	cr_assert_eq(sv_topk_cache_reserve(c, 10), 0); /* below the size: no-op */
	cr_assert_eq(sv_topk_cache_reserve(c, (size_t)SV_TOPK_ROWS_MAX + 1), SV_ERR_TOOBIG);
	cr_assert_eq(sv_topk_cache_reserve(NULL, 1), -EINVAL);
	add_items(c, big, N, D_IN, 3000);
	for (size_t i = 0; i < N; i += 7) {
		cr_assert_eq(sv_topk_cache_delete(c, idp(&big[i]), big[i].len), 0);
		big[i].alive = 0;
	}
	float X[Q * D_IN];
	struct sv_topk_hit hits[Q * K];
	size_t counts[Q];
	fill(X, Q * D_IN, 8);
	cr_assert_eq(sv_topk_cache_query_vec(c, X, Q, K, hits, counts), 0);
	for (int q = 0; q < Q; q++)
		check_hits(W1, D_IN, D_OUT, big, N, X + q * D_IN, K, hits + q * K, counts[q]);
	cr_assert_eq(sv_topk_cache_query_vec(c, X, 1, K, hits, counts), 0);
	check_hits(W1, D_IN, D_OUT, big, N, X, K, hits, counts[0]);
	sv_topk_cache_release(c);
	free_items(big, N);
}

/* A released cache's chunks go to the next cache of the same width: that
 * cache starts with no live row (every one of the old rows gone), and a
 * cache of another width takes none of them. */
Test(topk, new_cache_reuses_no_row_of_a_released_one)
{
	enum { N = 9000, K = 5 }; /* two chunks */
	struct item *big = make_items(N, D_IN, 41);
	struct sv_topk_cache *c;
	float W3[D_IN * (D_OUT + 1)], X[D_IN];
	struct sv_topk_hit hits[K];
	size_t count;
	cr_assert_eq(sv_topk_cache_new(W1, D_IN, D_OUT, 1, &c), 0);
	add_items(c, big, N, D_IN, 1000);
	sv_topk_cache_release(c);
	fill(X, D_IN, 9);

	cr_assert_eq(sv_topk_cache_new(W2, D_IN, D_OUT, 2, &c), 0);
	cr_assert_eq(sv_topk_cache_query_vec(c, X, 1, K, hits, &count), 0);
	cr_assert_eq(count, 0);
	add_items(c, big, 3, D_IN, 1000);
	cr_assert_eq(sv_topk_cache_count(c), 3);
	cr_assert_eq(sv_topk_cache_query_vec(c, X, 1, K, hits, &count), 0);
	check_hits(W2, D_IN, D_OUT, big, 3, X, K, hits, count);
	sv_topk_cache_release(c);

	fill(W3, D_IN * (D_OUT + 1), 12);
	cr_assert_eq(sv_topk_cache_new(W3, D_IN, D_OUT + 1, 3, &c), 0);
	add_items(c, big, N, D_IN, 1000);
	cr_assert_eq(sv_topk_cache_query_vec(c, X, 1, K, hits, &count), 0);
	check_hits(W3, D_IN, D_OUT + 1, big, N, X, K, hits, count);
	sv_topk_cache_release(c);
	free_items(big, N);
}

/* A rebuild's feed from a real store: every stored item (more than one
 * load chunk of them), none of the inline pair vectors, and the same
 * answers as items added by hand; a store read of the wrong dims adds
 * nothing. */
Test(topk, load_from_store_takes_items_not_inline_vectors)
{
	enum { N = SV_TOPK_LOAD_ROWS + 300, INL = 50, K = 7 };
	struct item *it = make_items(N, D_IN, 41), *inl = make_items(INL, D_IN, 42);
	struct sv_store_opts so;
	sv_store *st = NULL;
	sv_store_txn *t = NULL;
	sv_store_read *r = NULL;
	struct sv_topk_cache *c = NULL, *ref = NULL;
	char dir[64], err[SV_STORE_ERRMSG_MAX];

	tmpdir_make(dir, sizeof(dir), "topk-load");
	sv_store_opts_default(&so);
	so.path = dir;
	so.d_in = D_IN;
	so.d_out = D_OUT;
	so.sync = SV_STORE_SYNC_NONE;
	cr_assert_eq(sv_store_open(&st, &so, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(sv_store_txn_begin(st, &t), 0);
	for (size_t i = 0; i < N; i++)
		cr_assert_eq(sv_store_item_put(t, it[i].id, it[i].len, it[i].x, 0), 0);
	for (size_t i = 0; i < INL; i++) {
		char id[SV_STORE_INLINE_ID_LEN + 1];
		sv_store_inline_id(inl[i].x, D_IN, id);
		cr_assert_eq(sv_store_item_put(t, id, SV_STORE_INLINE_ID_LEN, inl[i].x,
		                               SV_STORE_ITEM_INLINE), 0);
	}
	cr_assert_eq(sv_store_txn_commit(t), 0);

	cr_assert_eq(sv_topk_cache_new(W1, D_IN, D_OUT, 5, &c), 0);
	cr_assert_eq(sv_store_read_begin(st, &r), 0);
	cr_assert_eq(sv_topk_cache_load(c, r), 0);
	sv_store_read_end(r);
	cr_assert_eq(sv_topk_cache_count(c), N);
	cr_assert_eq(sv_topk_cache_rows(c), N);
	cr_assert_eq(sv_topk_cache_load(NULL, r), -EINVAL);

	float q[D_IN];
	struct sv_topk_hit hits[K];
	size_t count = 0;
	for (uint64_t seed = 1; seed <= 5; seed++) {
		fill(q, D_IN, 900 + seed);
		cr_assert_eq(sv_topk_cache_query_vec(c, q, 1, K, hits, &count), 0);
		check_hits(W1, D_IN, D_OUT, it, N, q, K, hits, count);
	}
	/* an inline vector queried as a vector finds no inline row: its best
	 * match is a stored item, never itself at score 1 */
	cr_assert_eq(sv_topk_cache_query_vec(c, inl[0].x, 1, 1, hits, &count), 0);
	cr_assert_eq(count, 1);
	cr_assert_lt(hits[0].score, 0.9999f);
	/* a cache of other dims takes none of these vectors */
	float W3[(D_IN + 1) * D_OUT];
	fill(W3, (D_IN + 1) * D_OUT, 3);
	cr_assert_eq(sv_topk_cache_new(W3, D_IN + 1, D_OUT, 6, &ref), 0);
	cr_assert_eq(sv_store_read_begin(st, &r), 0);
	cr_assert_eq(sv_topk_cache_load(ref, r), 0);
	sv_store_read_end(r);
	cr_assert_eq(sv_topk_cache_count(ref), 0);
	sv_topk_cache_release(ref);
	sv_topk_cache_release(c);
	sv_store_close(st);
	tmpdir_remove(dir);
	free_items(it, N);
	free_items(inl, INL);
}

/* ---- the holder ------------------------------------------------------------ */

Test(topk, rebuild_replays_mutations_and_keeps_versions_apart)
{
	struct sv_topk_holder *h;
	struct sv_topk_cache *next, *c;
	struct sv_topk_hit hits[8];
	size_t count;
	float q[D_IN];
	fill(q, D_IN, 1234);

	cr_assert_eq(sv_topk_holder_new(W1, D_IN, D_OUT, 1, &h), 0);
	for (size_t i = 0; i < n_items; i++)
		cr_assert_eq(sv_topk_holder_upsert(h, idp(&items[i]), items[i].len, items[i].x), 0);
	cr_assert_eq(sv_topk_holder_publish(h), SV_ERR_STATE);

	cr_assert_eq(sv_topk_holder_begin_rebuild(h, W2, 2, &next), 0);
	cr_assert_eq(sv_topk_holder_begin_rebuild(h, W2, 3, &c), SV_ERR_STATE);
	/* the builder's snapshot: every item as of now */
	struct item *snap = make_items(n_items, D_IN, 7);
	/* mutations in flight: applied to the live cache at once... */
	for (size_t i = 0; i < 40; i++) {
		cr_assert_eq(sv_topk_holder_delete(h, idp(&items[i]), items[i].len), 0);
		items[i].alive = 0;
	}
	fill(items[50].x, D_IN, 4321);
	cr_assert_eq(sv_topk_holder_upsert(h, idp(&items[50]), items[50].len, items[50].x), 0);
	c = sv_topk_holder_acquire(h);
	cr_assert_eq(sv_topk_cache_version(c), 1);
	cr_assert_eq(sv_topk_cache_query_vec(c, q, 1, 8, hits, &count), 0);
	check_hits(W1, D_IN, D_OUT, items, n_items, q, 8, hits, count);
	/* ...while the builder fills the new cache from its older snapshot */
	add_items(next, snap, n_items, D_IN, 100);
	/* a mutation during the fill too */
	items[0].alive = 1;
	cr_assert_eq(sv_topk_holder_upsert(h, idp(&items[0]), items[0].len, items[0].x), 0);
	cr_assert_eq(sv_topk_holder_publish(h), 0);

	/* the old reference still answers with version 1, unchanged */
	cr_assert_eq(sv_topk_cache_version(c), 1);
	cr_assert_eq(sv_topk_cache_query_vec(c, q, 1, 8, hits, &count), 0);
	check_hits(W1, D_IN, D_OUT, items, n_items, q, 8, hits, count);
	sv_topk_cache_release(c);

	/* the published cache: version 2, W2, every mutation in it */
	c = sv_topk_holder_acquire(h);
	cr_assert_eq(sv_topk_cache_version(c), 2);
	cr_assert_eq(memcmp(sv_topk_cache_weights(c), W2, sizeof(W2)), 0);
	cr_assert_eq(sv_topk_cache_count(c), n_items - 39);
	cr_assert_eq(sv_topk_cache_query_vec(c, q, 1, 8, hits, &count), 0);
	cr_assert_eq(count, 8);
	check_hits(W2, D_IN, D_OUT, items, n_items, q, 8, hits, count);
	cr_assert_eq(sv_topk_cache_query_vec(c, items[50].x, 1, 1, hits, &count), 0);
	cr_assert_eq(find_item(items, n_items, &hits[0]), &items[50]);
	sv_topk_cache_release(c);

	/* abort: nothing changes */
	cr_assert_eq(sv_topk_holder_begin_rebuild(h, W1, 3, &next), 0);
	cr_assert_eq(sv_topk_holder_delete(h, idp(&items[60]), items[60].len), 0);
	items[60].alive = 0;
	sv_topk_holder_abort(h);
	cr_assert_eq(sv_topk_holder_publish(h), SV_ERR_STATE);
	c = sv_topk_holder_acquire(h);
	cr_assert_eq(sv_topk_cache_version(c), 2);
	cr_assert_eq(sv_topk_cache_query_vec(c, q, 1, 8, hits, &count), 0);
	check_hits(W2, D_IN, D_OUT, items, n_items, q, 8, hits, count);
	sv_topk_cache_release(c);

	free_items(snap, n_items);
	sv_topk_holder_free(h);
}

/* ---- readers racing a rebuilding thread and a writer ----------------------- */

enum { RN = 2000, RCHURN = 100, RVERSIONS = 8, RK = 20 };

struct race {
	struct sv_topk_holder *h;
	struct item *it;
	float W[RVERSIONS + 1][D_IN * D_OUT];
	atomic_int stop;
	atomic_int failures;
	atomic_long queries;
};

static void *builder(void *arg)
{
	struct race *r = arg;
	for (int v = 2; v <= RVERSIONS; v++) {
		struct sv_topk_cache *next;
		if (sv_topk_holder_begin_rebuild(r->h, r->W[v], (uint64_t)v, &next) != 0) {
			atomic_fetch_add(&r->failures, 1);
			break;
		}
		/* let mutations pile up in the log, as during a long rebuild */
		nanosleep(&(struct timespec){0, 2000000}, NULL);
		/* the source: every item (each one's x never changes) */
		add_items(next, r->it, RN, D_IN, 256);
		if (sv_topk_holder_publish(r->h) != 0)
			atomic_fetch_add(&r->failures, 1);
		/* readers query this version (with its replayed rows) a while */
		nanosleep(&(struct timespec){0, 3000000}, NULL);
	}
	atomic_store(&r->stop, 1);
	return NULL;
}

static void *writer(void *arg)
{
	struct race *r = arg;
	uint64_t s = 99;
	while (!atomic_load(&r->stop)) {
		size_t i = rng_next(&s) % RCHURN;
		/* delete and re-insert the same x: the set of vectors stays fixed */
		sv_topk_holder_delete(r->h, idp(&r->it[i]), r->it[i].len);
		if (sv_topk_holder_upsert(r->h, idp(&r->it[i]), r->it[i].len, r->it[i].x) != 0)
			atomic_fetch_add(&r->failures, 1);
		/* slow enough that rows replayed into a new version live a while */
		nanosleep(&(struct timespec){0, 50000}, NULL);
	}
	return NULL;
}

static void *reader(void *arg)
{
	struct race *r = arg;
	uint64_t s = (uint64_t)(uintptr_t)&s;
	float q[2 * D_IN];
	struct sv_topk_hit hits[2 * RK];
	size_t counts[2];
	while (!atomic_load(&r->stop)) {
		struct sv_topk_cache *c = sv_topk_holder_acquire(r->h);
		uint64_t v = sv_topk_cache_version(c);
		size_t Q = 1 + rng_next(&s) % 2;
		for (size_t i = 0; i < Q * D_IN; i++)
			q[i] = rng_float(&s);
		int bad = v < 1 || v > RVERSIONS ||
		          memcmp(sv_topk_cache_weights(c), r->W[v], sizeof(r->W[v])) != 0;
		bad = bad || sv_topk_cache_query_vec(c, q, Q, RK, hits, counts) != 0;
		for (size_t qq = 0; !bad && qq < Q; qq++) {
			/* the writer churns only RCHURN items: a query overlapping
			 * their delete + re-upsert may miss them, never the rest */
			bad |= counts[qq] != RK;
			for (size_t j = 0; !bad && j < counts[qq]; j++) {
				const struct sv_topk_hit *hh = &hits[qq * RK + j];
				const struct item *it = find_item(r->it, RN, hh);
				bad |= it == NULL ||
				       fabs(hh->score - score_d(r->W[v], D_IN, D_OUT, q + qq * D_IN,
				                                it->x)) > TOL;
			}
		}
		sv_topk_cache_release(c);
		if (bad)
			atomic_fetch_add(&r->failures, 1);
		atomic_fetch_add(&r->queries, 1);
	}
	return NULL;
}

Test(topk, readers_never_see_mixed_versions, .timeout = 60)
{
	struct race *r = calloc(1, sizeof(*r));
	cr_assert_not_null(r);
	for (int v = 1; v <= RVERSIONS; v++)
		fill(r->W[v], D_IN * D_OUT, 1000 + (uint64_t)v);
	r->it = make_items(RN, D_IN, 5);
	cr_assert_eq(sv_topk_holder_new(r->W[1], D_IN, D_OUT, 1, &r->h), 0);
	struct sv_topk_cache *c = sv_topk_holder_acquire(r->h);
	add_items(c, r->it, RN, D_IN, 500);
	sv_topk_cache_release(c);

	pthread_t tb, tw, tr[2];
	cr_assert_eq(pthread_create(&tr[0], NULL, reader, r), 0);
	cr_assert_eq(pthread_create(&tr[1], NULL, reader, r), 0);
	cr_assert_eq(pthread_create(&tw, NULL, writer, r), 0);
	cr_assert_eq(pthread_create(&tb, NULL, builder, r), 0);
	pthread_join(tb, NULL);
	pthread_join(tw, NULL);
	pthread_join(tr[0], NULL);
	pthread_join(tr[1], NULL);

	cr_assert_eq(atomic_load(&r->failures), 0, "%d of %ld queries failed",
	             atomic_load(&r->failures), atomic_load(&r->queries));
	cr_assert_gt(atomic_load(&r->queries), 0);
	c = sv_topk_holder_acquire(r->h);
	cr_assert_eq(sv_topk_cache_version(c), RVERSIONS);
	cr_assert_eq(sv_topk_cache_count(c), RN, "an item was lost in a rebuild");
	/* every row of the final version, replayed ones included, under its W */
	struct sv_topk_hit *all = malloc(RN * sizeof(*all));
	size_t count;
	float q[D_IN];
	fill(q, D_IN, 31337);
	cr_assert_eq(sv_topk_cache_query_vec(c, q, 1, RN, all, &count), 0);
	check_hits(r->W[RVERSIONS], D_IN, D_OUT, r->it, RN, q, RN, all, count);
	free(all);
	sv_topk_cache_release(c);
	sv_topk_holder_free(r->h);
	free_items(r->it, RN);
	free(r);
}
