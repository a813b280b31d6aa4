/* test_store.c - the LMDB store: round trips of every record type,
 * idempotency, version retention and rollback, map growth, refusal on
 * mismatched dims / schema / settings, hot backup under writes.
 *
 * Every test makes its own store in a fresh temporary directory (Criterion
 * forks each test).  The crash test lives in test_store_crash.c.
 */
#define _XOPEN_SOURCE 700
#include <criterion/criterion.h>
#include <errno.h>
#include <lmdb.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tmpdir.h"
#include "sv/batch.h"
#include "sv/blas.h"
#include "sv/error.h"
#include "sv/optim.h"
#include "sv/store.h"
#include "sv/train.h"

#define D_IN 784
#define D_OUT 16

static char dir[64];
static char path[192];

static void setup(void)
{
	tmpdir_make(dir, sizeof dir, "store-test");
	snprintf(path, sizeof path, "%s/st", dir);
}

static void teardown(void)
{
	tmpdir_remove(dir);
}

TestSuite(store, .init = setup, .fini = teardown, .timeout = 60);

static struct sv_store_opts opts(uint32_t d_in, uint32_t d_out)
{
	struct sv_store_opts o;
	sv_store_opts_default(&o);
	o.path = path;
	o.d_in = d_in;
	o.d_out = d_out;
	o.settings_fp = 0x1234abcdull;
	o.sync = SV_STORE_SYNC_NONE;
	return o;
}

static sv_store *open_ok(const struct sv_store_opts *o)
{
	sv_store *st = NULL;
	char err[SV_STORE_ERRMSG_MAX];
	int rc = sv_store_open(&st, o, err, sizeof err);
	cr_assert_eq(rc, 0, "open: %s (%s)", sv_strerror(rc), err);
	return st;
}

/* A vector that depends only on (k, j). */
static void fill(float *x, size_t n, uint32_t k)
{
	uint32_t s = k * 2654435761u + 1;
	for (size_t j = 0; j < n; j++) {
		s = s * 1664525u + 1013904223u;
		x[j] = (float)(s >> 8) / (float)(1u << 24) - 0.5f;
	}
}

static int item_id(char *buf, uint32_t k)
{
	return snprintf(buf, 32, "item-%u", k);
}

static void put_items(sv_store *st, uint32_t from, uint32_t n)
{
	float x[D_IN];
	char id[32];
	sv_store_txn *t;
	cr_assert_eq(sv_store_txn_begin(st, &t), 0);
	for (uint32_t k = from; k < from + n; k++) {
		fill(x, D_IN, k);
		int rc = sv_store_item_put(t, id, (size_t)item_id(id, k), x, (uint16_t)k);
		cr_assert_eq(rc, 0, "item_put %u: %s / %s", k, sv_strerror(rc),
		             sv_store_errmsg(st));
	}
	int rc = sv_store_txn_commit(t);
	cr_assert_eq(rc, 0, "commit: %s / %s", sv_strerror(rc), sv_store_errmsg(st));
}

static void check_item(sv_store_read *r, uint32_t k)
{
	float x[D_IN], y[D_IN];
	char id[32];
	int rc = sv_store_item_get(r, id, (size_t)item_id(id, k), y);
	cr_assert_eq(rc, 0, "item %u: %s", k, sv_strerror(rc));
	fill(x, D_IN, k);
	cr_assert_eq(memcmp(x, y, sizeof x), 0, "item %u differs", k);
}

/* Items and vector records agree: every item's vector whole, no vector
 * left behind by a replace or a delete; n items. */
/* The closed store at `path`, opened with raw LMDB to look at: *txn a read
 * transaction (the caller aborts it and closes the environment). */
static MDB_env *raw_read(MDB_txn **txn)
{
	MDB_env *env;

	cr_assert_eq(mdb_env_create(&env), 0);
	mdb_env_set_maxdbs(env, 16);
	cr_assert_eq(mdb_env_open(env, path, MDB_RDONLY, 0600), 0);
	cr_assert_eq(mdb_txn_begin(env, NULL, MDB_RDONLY, txn), 0);
	return env;
}

static void vecs_agree(sv_store *st, uint64_t n)
{
	struct sv_store_vec_check ck;
	sv_store_read *r;
	cr_assert_eq(sv_store_read_begin(st, &r), 0);
	cr_assert_eq(sv_store_vec_check(r, &ck), 0);
	sv_store_read_end(r);
	cr_assert_eq(ck.items, n, "items %llu, expected %llu", (unsigned long long)ck.items,
	             (unsigned long long)n);
	cr_assert_eq(ck.vectors, n, "vectors %llu for %llu items", (unsigned long long)ck.vectors,
	             (unsigned long long)n);
	cr_assert_eq(ck.bad_items + ck.shared + ck.missing + ck.orphans + ck.bad_vectors +
	                 ck.bad_records,
	             0, "bad items %llu, shared %llu, missing %llu, orphans %llu, bad %llu/%llu",
	             (unsigned long long)ck.bad_items, (unsigned long long)ck.shared,
	             (unsigned long long)ck.missing, (unsigned long long)ck.orphans,
	             (unsigned long long)ck.bad_vectors, (unsigned long long)ck.bad_records);
}

Test(store, item_put_get_delete_roundtrip)
{
	struct sv_store_opts o = opts(D_IN, D_OUT);
	sv_store *st = open_ok(&o);
	sv_store_read *r;
	sv_store_txn *t;
	struct sv_store_item it;
	float x[D_IN], y[D_IN];
	unsigned char id255[255];

	put_items(st, 0, 10);
	cr_assert_eq(sv_store_read_begin(st, &r), 0);
	for (uint32_t k = 0; k < 10; k++)
		check_item(r, k);
	cr_assert_eq(sv_store_item_read(r, "item-3", 6, NULL, &it), 0);
	cr_assert_eq(it.dim, D_IN);
	cr_assert_eq(it.flags, 3);
	cr_assert_null(it.vec);
	cr_assert_eq(sv_store_item_read(r, "item-4", 6, y, &it), 0);
	cr_assert_eq(it.flags, 4);
	cr_assert_eq(it.vec, y);
	fill(x, D_IN, 4);
	cr_assert_eq(memcmp(x, y, sizeof x), 0);
	cr_assert_eq(sv_store_item_read(r, "item-4", 6, NULL, NULL), -EINVAL);
	cr_assert_eq(sv_store_item_read(r, "nope", 4, y, &it), SV_ERR_NOTFOUND);
	cr_assert_eq(sv_store_item_get(r, "item-4", 6, NULL), -EINVAL);
	cr_assert_eq(sv_store_item_get(r, "nope", 4, y), SV_ERR_NOTFOUND);
	cr_assert_eq(sv_store_item_get(r, "item-1", 0, y), -EINVAL);
	cr_assert_eq(sv_store_item_get(r, NULL, 3, y), -EINVAL);
	sv_store_read_end(r);

	/* overwrite, delete, binary 255-byte id, bad lengths */
	memset(id255, 0, sizeof id255);
	id255[254] = 0xff;
	fill(x, D_IN, 99);
	cr_assert_eq(sv_store_txn_begin(st, &t), 0);
	cr_assert_eq(sv_store_txn_begin(st, &(sv_store_txn *){NULL}), SV_ERR_STATE);
	cr_assert_eq(sv_store_item_put(t, "item-1", 6, x, 7), 0);
	cr_assert_eq(sv_store_item_del(t, "item-2", 6), 0);
	cr_assert_eq(sv_store_item_del(t, "item-2", 6), SV_ERR_NOTFOUND);
	cr_assert_eq(sv_store_item_put(t, id255, 255, x, 0), 0);
	cr_assert_eq(sv_store_item_put(t, id255, 256, x, 0), -EINVAL);
	cr_assert_eq(sv_store_item_put(t, id255, 0, x, 0), -EINVAL);
	cr_assert_eq(sv_store_item_put(t, id255, 1, NULL, 0), -EINVAL);
	cr_assert_eq(sv_store_txn_commit(t), 0);

	cr_assert_eq(sv_store_read_begin(st, &r), 0);
	cr_assert_eq(sv_store_item_get(r, "item-1", 6, y), 0);
	cr_assert_eq(memcmp(x, y, sizeof x), 0);
	cr_assert_eq(sv_store_item_read(r, "item-1", 6, NULL, &it), 0);
	cr_assert_eq(it.flags, 7);
	cr_assert_eq(sv_store_item_get(r, "item-2", 6, y), SV_ERR_NOTFOUND);
	cr_assert_eq(sv_store_item_get(r, id255, 255, y), 0);
	sv_store_read_end(r);
	vecs_agree(st, 10); /* item-1's old vector and item-2's went */
	sv_store_close(st);

	/* survives reopen; aborted group leaves nothing */
	st = open_ok(&o);
	cr_assert_eq(sv_store_txn_begin(st, &t), 0);
	cr_assert_eq(sv_store_item_put(t, "gone", 4, x, 0), 0);
	sv_store_txn_abort(t);
	cr_assert_eq(sv_store_read_begin(st, &r), 0);
	check_item(r, 5);
	cr_assert_eq(sv_store_item_get(r, "gone", 4, y), SV_ERR_NOTFOUND);
	sv_store_read_end(r);
	sv_store_close(st);
	sv_store_close(NULL);
	sv_store_txn_abort(NULL);
	sv_store_read_end(NULL);
}

/* Content-addressed inserts: only a new id is written, in the store or
 * earlier in the group; a delete in the group makes room again; a group
 * that outgrows the map is replayed with the same outcomes. */
Test(store, item_put_new_writes_only_new_ids)
{
	struct sv_store_opts o = opts(D_IN, D_OUT);
	sv_store *st;
	sv_store_read *r;
	sv_store_txn *t;
	struct sv_store_item it;
	struct sv_store_stat stat;
	float x[D_IN], z[D_IN], y[D_IN];

	o.map_size = 64 << 10;
	o.max_map_size = 64 << 20;
	st = open_ok(&o);

	fill(x, D_IN, 1);
	fill(z, D_IN, 2);
	cr_assert_eq(sv_store_txn_begin(st, &t), 0);
	cr_assert_eq(sv_store_item_put_new(t, "~v1", 3, x, 1), 0);
	cr_assert_eq(sv_store_item_put_new(t, "~v1", 3, z, 1), SV_ERR_DUPLICATE);
	cr_assert_eq(sv_store_item_put_new(t, "~v2", 3, z, 1), 0); /* the group lives on */
	cr_assert_eq(sv_store_item_put_new(t, "~v3", 0, z, 1), -EINVAL);
	cr_assert_eq(sv_store_txn_commit(t), 0);

	cr_assert_eq(sv_store_txn_begin(st, &t), 0);
	cr_assert_eq(sv_store_item_put_new(t, "~v1", 3, z, 5), SV_ERR_DUPLICATE);
	cr_assert_eq(sv_store_item_del(t, "~v2", 3), 0);
	cr_assert_eq(sv_store_item_put_new(t, "~v2", 3, x, 6), 0);
	cr_assert_eq(sv_store_txn_commit(t), 0);

	cr_assert_eq(sv_store_read_begin(st, &r), 0);
	cr_assert_eq(sv_store_item_get(r, "~v1", 3, y), 0);
	cr_assert_eq(memcmp(x, y, sizeof x), 0, "an existing id was overwritten");
	cr_assert_eq(sv_store_item_read(r, "~v1", 3, NULL, &it), 0);
	cr_assert_eq(it.flags, 1);
	cr_assert_eq(sv_store_item_get(r, "~v2", 3, y), 0);
	cr_assert_eq(memcmp(x, y, sizeof x), 0);
	sv_store_read_end(r);

	/* ~1.5 MB in one group: the map grows mid-group and the ops replay */
	cr_assert_eq(sv_store_txn_begin(st, &t), 0);
	for (uint32_t k = 0; k < 400; k++) {
		char id[32];
		int len = item_id(id, k);

		fill(z, D_IN, k);
		cr_assert_eq(sv_store_item_put_new(t, id, (size_t)len, z, 0), 0, "item %u", k);
		cr_assert_eq(sv_store_item_put_new(t, "~v1", 3, z, 0), SV_ERR_DUPLICATE);
		cr_assert_eq(sv_store_item_put_new(t, id, (size_t)len, x, 0), SV_ERR_DUPLICATE);
	}
	cr_assert_eq(sv_store_txn_commit(t), 0);
	cr_assert_gt(sv_store_map_size(st), 64u << 10);
	cr_assert_eq(sv_store_read_begin(st, &r), 0);
	cr_assert_eq(sv_store_stat(r, &stat), 0);
	cr_assert_eq(stat.items, 402);
	for (uint32_t k = 0; k < 400; k += 13)
		check_item(r, k);
	cr_assert_eq(sv_store_item_get(r, "~v1", 3, y), 0);
	cr_assert_eq(memcmp(x, y, sizeof x), 0);
	sv_store_read_end(r);
	vecs_agree(st, 402);
	sv_store_close(st);
}

/* Replacing and deleting in a group that outgrows the map: the group is
 * applied again on a grown map and gives out the same vector ids, so what
 * is committed is what the calls saw; the vectors replaced go. */
Test(store, replayed_group_replaces_and_deletes_vectors_alike)
{
	struct sv_store_opts o = opts(D_IN, D_OUT);
	sv_store *st;
	sv_store_read *r;
	sv_store_txn *t;
	float x[D_IN];
	char id[32];

	o.map_size = 64 << 10;
	st = open_ok(&o);
	put_items(st, 0, 10);
	cr_assert_eq(sv_store_txn_begin(st, &t), 0);
	for (uint32_t k = 0; k < 600; k++) { /* several growths */
		uint32_t j = k % 40; /* each of 40 ids put 15 times */
		fill(x, D_IN, 1000 + k);
		cr_assert_eq(sv_store_item_put(t, id, (size_t)item_id(id, j), x, 0), 0);
		if (k % 7 == 0)
			cr_assert_eq(sv_store_item_del(t, id, (size_t)item_id(id, j)), 0);
	}
	cr_assert_eq(sv_store_txn_commit(t), 0, "%s", sv_store_errmsg(st));
	cr_assert_gt(sv_store_map_size(st), 64u << 10);
	cr_assert_eq(sv_store_read_begin(st, &r), 0);
	for (uint32_t j = 0; j < 40; j++) {
		uint32_t last = 560 + j; /* the last k with k % 40 == j */
		float y[D_IN];
		int rc = sv_store_item_get(r, id, (size_t)item_id(id, j), y);
		if (last % 7 == 0) {
			cr_assert_eq(rc, SV_ERR_NOTFOUND, "item %u", j);
			continue;
		}
		cr_assert_eq(rc, 0, "item %u", j);
		fill(x, D_IN, 1000 + last);
		cr_assert_eq(memcmp(x, y, sizeof x), 0, "item %u", j);
	}
	sv_store_read_end(r);
	vecs_agree(st, 40 - 6); /* 560..599 holds 6 multiples of 7 */
	sv_store_close(st);
}

struct walk_dims {
	uint32_t d, seen, n;
	int reverse; /* expect the items from n - 1 down */
	float *row;  /* where sv_store_stored_walk_to copies to */
};

static float *walk_dims_row(void *ctx)
{
	return ((struct walk_dims *)ctx)->row;
}

static int walk_dims_one(void *ctx, const void *id, size_t len, const struct sv_store_item *it)
{
	struct walk_dims *w = ctx;
	uint32_t k = (uint32_t)strtoul((const char *)id + 1, NULL, 10);
	float *x = malloc(w->d * sizeof(float));
	int same;
	cr_assert_eq(len, 7);
	cr_assert_eq(k, w->reverse ? w->n - 1 - w->seen : w->seen, "walk order");
	cr_assert_eq(it->dim, w->d);
	cr_assert_eq(it->flags, (uint16_t)k);
	if (w->row)
		cr_assert_eq(it->vec, w->row, "copied where the walk was told");
	fill(x, w->d, k);
	same = memcmp(x, it->vec, w->d * sizeof(float)) == 0;
	free(x);
	cr_assert(same, "d %u item %u", w->d, k);
	w->seen++;
	return 0;
}

/* Vectors of any d_in: one record when small, several when large, each
 * read back bit for bit, by id and by a walk, whatever order they were
 * written in; and 784 floats take within 1.1x of their bytes. */
static void roundtrip_dims(uint32_t d, uint32_t n, int reverse)
{
	struct sv_store_opts o = opts(d, 1);
	struct sv_store_stat s;
	float *x = malloc(d * sizeof(float)), *y = malloc(d * sizeof(float));
	sv_store *st;
	sv_store_read *r;
	sv_store_txn *t;
	char id[32];
	uint32_t seen = 0;

	cr_assert(x && y);
	tmpdir_remove(dir);
	setup();
	st = open_ok(&o);
	cr_assert_eq(sv_store_txn_begin(st, &t), 0);
	for (uint32_t i = 0; i < n; i++) {
		uint32_t k = reverse ? n - 1 - i : i;
		fill(x, d, k);
		cr_assert_eq(sv_store_item_put(t, id, (size_t)snprintf(id, sizeof id, "i%06u", k), x,
		                               (uint16_t)k),
		             0);
	}
	cr_assert_eq(sv_store_txn_commit(t), 0, "%s", sv_store_errmsg(st));
	cr_assert_eq(sv_store_read_begin(st, &r), 0);
	/* out of order, and each twice: the reader's cursor is never stale */
	for (uint32_t i = 0; i < n; i += 1 + i % 3) {
		uint32_t k = (i * 7919u) % n;
		for (int twice = 0; twice < 2; twice++) {
			cr_assert_eq(sv_store_item_get(r, id, (size_t)snprintf(id, sizeof id, "i%06u", k),
			                               y),
			             0);
			fill(x, d, k);
			cr_assert_eq(memcmp(x, y, d * sizeof(float)), 0, "d %u item %u", d, k);
		}
	}
	cr_assert_eq(sv_store_stat(r, &s), 0);
	sv_store_read_end(r);
	cr_assert_eq(sv_store_read_begin(st, &r), 0);
	{
		struct walk_dims w = {d, 0, n, 0, NULL}, ws = {d, 0, n, reverse, NULL};
		cr_assert_eq(sv_store_item_walk(r, walk_dims_one, &w), 0); /* id order */
		cr_assert_eq(sv_store_stored_walk(r, walk_dims_one, &ws), 0); /* write order */
		cr_assert_eq(ws.seen, n);
		ws.seen = 0;
		ws.row = malloc(d * sizeof(float));
		cr_assert_eq(sv_store_stored_walk_to(r, walk_dims_row, walk_dims_one, &ws), 0);
		cr_assert_eq(ws.seen, n);
		free(ws.row);
		ws.row = NULL;
		if (n > 0)
			cr_assert_eq(sv_store_stored_walk_to(r, walk_dims_row, walk_dims_one, &ws),
			             -EINVAL, "a NULL destination stops the walk");
		seen = w.seen;
	}
	sv_store_read_end(r);
	cr_assert_eq(seen, n);
	vecs_agree(st, n);
	if (d == D_IN && n >= 2000) {
		double per = (double)s.used_bytes / n, raw = d * 4.0;
		cr_assert_leq(per, 1.1 * raw, "%.0f bytes a vector of %.0f", per, raw);
	}
	sv_store_close(st);
	free(x);
	free(y);
}

struct walk_ctx {
	int n, stop_at;
	char last[32];
};

static int walk_one(void *ctx, const void *id, size_t len, const struct sv_store_item *it)
{
	struct walk_ctx *w = ctx;
	char want[32];
	float x[D_IN], y[D_IN];
	uint32_t k = (uint32_t)strtoul((const char *)id + 5, NULL, 10);
	cr_assert_lt(len, sizeof w->last);
	cr_assert_eq(it->dim, D_IN);
	cr_assert_eq((size_t)item_id(want, k), len);
	cr_assert_eq(memcmp(want, id, len), 0);
	memcpy(y, it->vec, sizeof y);
	fill(x, D_IN, k);
	cr_assert_eq(memcmp(x, y, sizeof x), 0);
	if (w->n)
		cr_assert_lt(strcmp(w->last, want), 0, "walk not in id order");
	memcpy(w->last, want, len + 1);
	return ++w->n == w->stop_at ? 42 : 0;
}

Test(store, vectors_of_any_dim_roundtrip)
{
	roundtrip_dims(1, 300, 0);
	roundtrip_dims(64, 2000, 1);
	roundtrip_dims(D_IN, 2000, 0);
	roundtrip_dims(D_IN, 500, 1);
	roundtrip_dims(1000, 300, 1); /* 4,000 bytes: in pieces of another size */
	roundtrip_dims(40000, 20, 0); /* 160 KB a vector */
}

struct walk_check {
	uint32_t n;
	uint64_t mask; /* bit k: item k seen */
};

static int walk_check_one(void *ctx, const void *id, size_t len, const struct sv_store_item *it)
{
	struct walk_check *w = ctx;
	float x[D_IN];
	char want[32];
	uint32_t k = (uint32_t)strtoul((const char *)id + 5, NULL, 10);
	cr_assert_lt(k, 64);
	cr_assert_eq((size_t)item_id(want, k), len);
	cr_assert_eq(w->mask >> k & 1, 0, "item %u twice", k);
	w->mask |= (uint64_t)1 << k;
	fill(x, D_IN, 100 * k + it->flags); /* the last put of k had flags = its round */
	cr_assert_eq(memcmp(x, it->vec, sizeof x), 0, "item %u", k);
	w->n++;
	return 0;
}

/* Vector ids left sparse by replaced items (the walk sorts them by a table
 * when dense, by comparison when not): each item once, its last vector. */
Test(store, stored_walk_after_replacing_items)
{
	struct sv_store_opts o = opts(D_IN, D_OUT);
	sv_store *st = open_ok(&o);
	sv_store_read *r;
	sv_store_txn *t;
	float x[D_IN];
	char id[32];
	struct walk_check w = {0, 0};

	cr_assert_eq(sv_store_txn_begin(st, &t), 0);
	for (uint32_t round = 0; round < 8; round++)
		for (uint32_t k = 0; k < 64; k++) {
			uint32_t kk = (k * 37 + round * 11) % 64; /* a scattered order each round */
			if (round > 0 && kk % 8 != 0)
				continue; /* later rounds replace every 8th item only */
			fill(x, D_IN, 100 * kk + round);
			cr_assert_eq(sv_store_item_put(t, id, (size_t)item_id(id, kk), x, (uint16_t)round),
			             0);
		}
	cr_assert_eq(sv_store_txn_commit(t), 0);
	cr_assert_eq(sv_store_read_begin(st, &r), 0);
	cr_assert_eq(sv_store_stored_walk(r, walk_check_one, &w), 0);
	sv_store_read_end(r);
	cr_assert_eq(w.n, 64);
	cr_assert_eq(w.mask, UINT64_MAX);
	vecs_agree(st, 64);
	/* now sparse beyond twice the count: 64 items over ids up to 120 */
	cr_assert_eq(sv_store_txn_begin(st, &t), 0);
	for (uint32_t k = 8; k < 64; k += 8) {
		fill(x, D_IN, 100 * k + 9);
		cr_assert_eq(sv_store_item_put(t, id, (size_t)item_id(id, k), x, 9), 0);
	}
	for (uint32_t k = 0; k < 64; k++)
		if (k % 8 != 0 && k % 3 == 0)
			cr_assert_eq(sv_store_item_del(t, id, (size_t)item_id(id, k)), 0);
	cr_assert_eq(sv_store_txn_commit(t), 0);
	memset(&w, 0, sizeof w);
	cr_assert_eq(sv_store_read_begin(st, &r), 0);
	cr_assert_eq(sv_store_stored_walk(r, walk_check_one, &w), 0);
	sv_store_read_end(r);
	cr_assert_eq(w.n, 64 - 19); /* 19 deleted */
	vecs_agree(st, 64 - 19);
	sv_store_close(st);
}

/* A stored walk's vectors as items put by put_items (item k: fill(k),
 * flags k), each once; with a nested reader, the first item also runs a
 * whole walk of it, expecting `expect` items (it walks without the store's
 * trail, which the outer walk holds). */
struct walk_all {
	uint32_t n;
	unsigned char *seen; /* by item number */
	uint32_t cap, expect;
	sv_store_read *nested;
};

static int walk_all_one(void *ctx, const void *id, size_t len, const struct sv_store_item *it)
{
	struct walk_all *w = ctx;
	float x[D_IN];
	char want[32];
	uint32_t k = (uint32_t)strtoul((const char *)id + 5, NULL, 10);
	cr_assert_lt(k, w->cap);
	cr_assert_eq((size_t)item_id(want, k), len);
	cr_assert_eq(w->seen[k], 0, "item %u twice", k);
	w->seen[k] = 1;
	fill(x, D_IN, k);
	cr_assert_eq(memcmp(x, it->vec, sizeof x), 0, "item %u", k);
	cr_assert_eq(it->flags, (uint16_t)k);
	if (w->nested) { /* once */
		struct walk_all in = {0, calloc(w->cap, 1), w->cap, 0, NULL};
		cr_assert_eq(sv_store_stored_walk(w->nested, walk_all_one, &in), 0);
		cr_assert_eq(in.n, w->expect);
		free(in.seen);
		w->nested = NULL;
	}
	w->n++;
	return 0;
}

/* Walk st once and count; nested_expect > 0: with a nested walk of a
 * second reader, which must see that many items. */
static uint32_t walk_all(sv_store *st, uint32_t cap, uint32_t nested_expect)
{
	struct walk_all w = {0, calloc(cap, 1), cap, nested_expect, NULL};
	sv_store_read *r, *r2 = NULL;
	cr_assert_eq(sv_store_read_begin(st, &r), 0);
	if (nested_expect)
		cr_assert_eq(sv_store_read_begin(st, &r2), 0);
	w.nested = r2;
	cr_assert_eq(sv_store_stored_walk(r, walk_all_one, &w), 0);
	sv_store_read_end(r2);
	sv_store_read_end(r);
	free(w.seen);
	return w.n;
}

/* Each stored walk leaves where the vectors lay for the next to prefetch
 * from (store.c's trail): walks stay exact as items are added, replaced
 * and deleted between them, after the map grows (and moves), and when two
 * readers walk at once.  The trail is only a prefetch hint, so what can
 * fail here is what it breaks: the walk's results, and (under ASan and
 * valgrind in CI) its indexing and its release at close.  Its speed is
 * sv-bench rebuild's. */
Test(store, stored_walks_stay_exact_as_the_store_changes)
{
	struct sv_store_opts o = opts(D_IN, D_OUT);
	sv_store *st;
	sv_store_txn *t;
	char id[32];
	size_t map0;
	o.map_size = 1u << 20;
	st = open_ok(&o);
	map0 = sv_store_map_size(st);
	put_items(st, 0, 300);
	cr_assert_eq(walk_all(st, 2000, 0), 300);
	cr_assert_eq(walk_all(st, 2000, 0), 300);
	put_items(st, 300, 900); /* the map grows: the trail's pages moved */
	cr_assert_gt(sv_store_map_size(st), map0);
	cr_assert_eq(walk_all(st, 2000, 0), 1200);
	cr_assert_eq(sv_store_txn_begin(st, &t), 0);
	for (uint32_t k = 0; k < 1200; k += 3)
		cr_assert_eq(sv_store_item_del(t, id, (size_t)item_id(id, k)), 0);
	cr_assert_eq(sv_store_txn_commit(t), 0);
	put_items(st, 1, 100); /* 67 replaced, 33 back: new vector ids, above the rest */
	cr_assert_eq(walk_all(st, 2000, 0), 833);
	cr_assert_eq(walk_all(st, 2000, 833), 833);
	cr_assert_eq(walk_all(st, 2000, 0), 833);
	vecs_agree(st, 833);
	sv_store_close(st);
}

Test(store, item_walk_in_id_order)
{
	struct sv_store_opts o = opts(D_IN, D_OUT);
	sv_store *st = open_ok(&o);
	struct walk_ctx w;
	sv_store_read *r;

	cr_assert_eq(sv_store_read_begin(st, &r), 0);
	memset(&w, 0, sizeof w);
	cr_assert_eq(sv_store_item_walk(r, walk_one, &w), 0);
	cr_assert_eq(w.n, 0);
	sv_store_read_end(r);
	put_items(st, 0, 25);
	cr_assert_eq(sv_store_read_begin(st, &r), 0);
	memset(&w, 0, sizeof w);
	cr_assert_eq(sv_store_item_walk(r, walk_one, &w), 0);
	cr_assert_eq(w.n, 25);
	memset(&w, 0, sizeof w);
	w.stop_at = 7;
	cr_assert_eq(sv_store_item_walk(r, walk_one, &w), 42);
	cr_assert_eq(w.n, 7);
	cr_assert_eq(sv_store_item_walk(r, NULL, &w), -EINVAL);
	sv_store_read_end(r);
	sv_store_close(st);
}

static int walk_names(void *ctx, const void *id, size_t len, const struct sv_store_item *it)
{
	char *out = ctx;

	(void)it;
	strncat(out, id, len);
	strcat(out, " ");
	return 0;
}

/* The stored-items walk passes over the inline namespace, and only it: ids
 * just before and just after "~v..." in byte order are still visited. */
Test(store, stored_walk_skips_inline_ids)
{
	struct sv_store_opts o = opts(D_IN, D_OUT);
	sv_store *st = open_ok(&o);
	const char *ids[] = {"a", "~u9", "~v", "~vzz", "~w", "~~", "~v0"};
	const uint16_t fl[] = {0, 0, 0, 0, 0, 0, SV_STORE_ITEM_INLINE};
	sv_store_txn *t;
	sv_store_read *r;
	float x[D_IN];
	char all[128] = "", stored[128] = "";

	fill(x, D_IN, 3);
	cr_assert_eq(sv_store_txn_begin(st, &t), 0);
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
		cr_assert_eq(sv_store_item_put(t, ids[i], strlen(ids[i]), x, fl[i]), 0, "%s", ids[i]);
	cr_assert_eq(sv_store_txn_commit(t), 0);
	cr_assert_eq(sv_store_read_begin(st, &r), 0);
	cr_assert_eq(sv_store_item_walk(r, walk_names, all), 0);
	cr_assert_eq(sv_store_stored_walk(r, walk_names, stored), 0);
	cr_assert_eq(sv_store_stored_walk(r, NULL, stored), -EINVAL);
	sv_store_read_end(r);
	cr_assert_str_eq(all, "a ~u9 ~v ~v0 ~vzz ~w ~~ ");
	cr_assert_str_eq(stored, "a ~u9 ~w ~~ ");
	sv_store_close(st);
}

static int append(sv_store_txn *t, const char *a, const char *b, uint8_t label, const char *client,
                  uint64_t cseq, uint64_t *seq)
{
	struct sv_store_pair p = {0};
	p.id_a = a;
	p.len_a = strlen(a);
	p.id_b = b;
	p.len_b = strlen(b);
	p.label = label;
	p.client = client;
	p.client_len = client ? strlen(client) : 0;
	p.client_seq = cseq;
	p.recv_ns = 1000 + cseq;
	return sv_store_pair_append(t, &p, seq);
}

Test(store, pair_log_roundtrip_and_cursor)
{
	struct sv_store_opts o = opts(8, 4);
	sv_store *st = open_ok(&o);
	sv_store_txn *t;
	sv_store_read *r;
	sv_store_cursor *c;
	struct sv_store_pair p;
	uint64_t seq = 0, last = 99;
	char a[16], b[16];

	cr_assert_eq(sv_store_read_begin(st, &r), 0);
	cr_assert_eq(sv_store_last_seq(r, &last), 0);
	cr_assert_eq(last, 0);
	cr_assert_eq(sv_store_pair_get(r, 1, &p), SV_ERR_NOTFOUND);
	sv_store_read_end(r);

	for (int g = 0; g < 3; g++) {
		cr_assert_eq(sv_store_txn_begin(st, &t), 0);
		for (int i = 0; i < 100; i++) {
			int n = g * 100 + i;
			snprintf(a, sizeof a, "a%d", n);
			snprintf(b, sizeof b, "bb%d", n);
			cr_assert_eq(append(t, a, b, (uint8_t)(n & 1), n % 3 ? "svc" : NULL,
			                    (uint64_t)n, &seq),
			             0);
			cr_assert_eq(seq, (uint64_t)n + 1);
		}
		cr_assert_eq(sv_store_txn_commit(t), 0);
	}
	cr_assert_eq(sv_store_txn_begin(st, &t), 0);
	cr_assert_eq(append(t, "x", "", 1, NULL, 0, &seq), -EINVAL);
	cr_assert_eq(append(t, "x", "y", 2, NULL, 0, &seq), -EINVAL);
	cr_assert_eq(sv_store_pair_append(t, NULL, &seq), -EINVAL);
	sv_store_txn_abort(t);

	sv_store_close(st);
	st = open_ok(&o);
	cr_assert_eq(sv_store_read_begin(st, &r), 0);
	cr_assert_eq(sv_store_last_seq(r, &last), 0);
	cr_assert_eq(last, 300);
	cr_assert_eq(sv_store_pair_get(r, 42, &p), 0);
	cr_assert_eq(p.seq, 42);
	cr_assert_eq(p.len_a, 3);
	cr_assert_eq(memcmp(p.id_a, "a41", 3), 0);
	cr_assert_eq(memcmp(p.id_b, "bb41", 4), 0);
	cr_assert_eq(p.label, 1);
	cr_assert_eq(p.client_len, 3);
	cr_assert_eq(memcmp(p.client, "svc", 3), 0);
	cr_assert_eq(p.client_seq, 41);
	cr_assert_eq(p.recv_ns, 1041);
	cr_assert_eq(sv_store_pair_get(r, 43, &p), 0);
	cr_assert_eq(p.client_len, 0);
	cr_assert_null(p.client);

	cr_assert_eq(sv_store_cursor_open(r, 251, &c), 0);
	for (uint64_t s = 251; s <= 300; s++) {
		cr_assert_eq(sv_store_cursor_next(c, &p), 0);
		cr_assert_eq(p.seq, s);
		snprintf(a, sizeof a, "a%d", (int)s - 1);
		cr_assert_eq(p.len_a, strlen(a));
		cr_assert_eq(memcmp(p.id_a, a, p.len_a), 0);
	}
	cr_assert_eq(sv_store_cursor_next(c, &p), SV_ERR_NOTFOUND);
	sv_store_cursor_close(c);
	cr_assert_eq(sv_store_cursor_open(r, 301, &c), 0);
	cr_assert_eq(sv_store_cursor_next(c, &p), SV_ERR_NOTFOUND);
	sv_store_cursor_close(c);
	sv_store_cursor_close(NULL);
	sv_store_read_end(r);
	sv_store_close(st);
}

Test(store, idempotent_delivery)
{
	struct sv_store_opts o = opts(8, 4);
	sv_store *st = open_ok(&o);
	sv_store_txn *t;
	sv_store_read *r;
	uint64_t seq = 0, last;

	cr_assert_eq(sv_store_txn_begin(st, &t), 0);
	cr_assert_eq(append(t, "a", "b", 1, "cam-1", 7, &seq), 0);
	cr_assert_eq(seq, 1);
	cr_assert_eq(append(t, "a", "b", 1, "cam-2", 7, &seq), 0);
	cr_assert_eq(seq, 2);
	seq = 0;
	/* duplicate inside the same group */
	cr_assert_eq(append(t, "c", "d", 0, "cam-1", 7, &seq), SV_ERR_DUPLICATE);
	cr_assert_eq(seq, 1);
	/* no client id: never a duplicate */
	cr_assert_eq(append(t, "a", "b", 1, NULL, 7, &seq), 0);
	cr_assert_eq(append(t, "a", "b", 1, NULL, 7, &seq), 0);
	cr_assert_eq(seq, 4);
	cr_assert_eq(sv_store_txn_commit(t), 0);

	sv_store_close(st);
	st = open_ok(&o);
	cr_assert_eq(sv_store_txn_begin(st, &t), 0);
	/* duplicate of a committed pair, group stays usable */
	cr_assert_eq(append(t, "a", "b", 1, "cam-2", 7, &seq), SV_ERR_DUPLICATE);
	cr_assert_eq(seq, 2);
	cr_assert_eq(append(t, "a", "b", 1, "cam-2", 8, &seq), 0);
	cr_assert_eq(seq, 5);
	cr_assert_eq(sv_store_txn_commit(t), 0);

	/* an aborted group's client keys are not remembered */
	cr_assert_eq(sv_store_txn_begin(st, &t), 0);
	cr_assert_eq(append(t, "a", "b", 1, "cam-3", 1, &seq), 0);
	sv_store_txn_abort(t);
	cr_assert_eq(sv_store_txn_begin(st, &t), 0);
	cr_assert_eq(append(t, "a", "b", 1, "cam-3", 1, &seq), 0);
	cr_assert_eq(seq, 6);
	cr_assert_eq(sv_store_txn_commit(t), 0);

	cr_assert_eq(sv_store_read_begin(st, &r), 0);
	cr_assert_eq(sv_store_last_seq(r, &last), 0);
	cr_assert_eq(last, 6);
	sv_store_read_end(r);
	sv_store_close(st);
}

static void make_model(struct sv_store_model *m, float *W, size_t n, uint32_t k)
{
	static const char optim[] = "optim-state";
	static const char settings[] = "settings";
	memset(m, 0, sizeof *m);
	fill(W, n, k);
	m->W = W;
	m->step = 10 * k;
	m->applied_seq = 100 * k;
	m->time_ns = 5000 + k;
	m->loss = 0.5 / (k + 1);
	m->auc = 0.9;
	m->eer = NAN;
	m->optim = optim;
	m->optim_len = sizeof optim;
	m->settings = settings;
	m->settings_len = sizeof settings;
}

static uint64_t checkpoint(sv_store *st, uint32_t k, int activate)
{
	float W[D_IN * D_OUT];
	struct sv_store_model m;
	sv_store_txn *t;
	uint64_t v = 0;
	make_model(&m, W, D_IN * D_OUT, k);
	cr_assert_eq(sv_store_txn_begin(st, &t), 0);
	cr_assert_eq(sv_store_checkpoint_put(t, &m, &v), 0);
	if (activate)
		cr_assert_eq(sv_store_set_active(t, v), 0);
	cr_assert_eq(sv_store_txn_commit(t), 0);
	return v;
}

Test(store, checkpoint_roundtrip)
{
	struct sv_store_opts o = opts(D_IN, D_OUT);
	sv_store *st = open_ok(&o);
	sv_store_read *r;
	struct sv_store_model m;
	float W[D_IN * D_OUT], got[D_IN * D_OUT];
	uint64_t v;
	static const char calib[] = {1, 2, 3};
	sv_store_txn *t;

	cr_assert_eq(sv_store_read_begin(st, &r), 0);
	cr_assert_eq(sv_store_active(r, &v), SV_ERR_NOTFOUND);
	cr_assert_eq(sv_store_model_get(r, 0, &m), SV_ERR_NOTFOUND);
	sv_store_read_end(r);

	cr_assert_eq(checkpoint(st, 1, 1), 1);
	make_model(&m, W, D_IN * D_OUT, 2);
	m.calib = calib;
	m.calib_len = sizeof calib;
	cr_assert_eq(sv_store_txn_begin(st, &t), 0);
	cr_assert_eq(sv_store_checkpoint_put(t, &m, &v), 0);
	cr_assert_eq(v, 2);
	m.W = NULL;
	cr_assert_eq(sv_store_checkpoint_put(t, &m, &v), -EINVAL);
	cr_assert_eq(sv_store_txn_commit(t), 0);
	sv_store_close(st);

	st = open_ok(&o);
	cr_assert_eq(sv_store_read_begin(st, &r), 0);
	cr_assert_eq(sv_store_active(r, &v), 0);
	cr_assert_eq(v, 1);
	cr_assert_eq(sv_store_model_get(r, 0, &m), 0);
	cr_assert_eq(m.version, 1);
	cr_assert_eq(m.applied_seq, 100);
	cr_assert_eq(sv_store_model_get(r, 2, &m), 0);
	cr_assert_eq(m.version, 2);
	cr_assert_eq(m.step, 20);
	cr_assert_eq(m.applied_seq, 200);
	cr_assert_eq(m.time_ns, 5002);
	cr_assert_eq(m.loss, 0.5 / 3);
	cr_assert_eq(m.auc, 0.9);
	cr_assert(isnan(m.eer));
	cr_assert_eq(m.optim_len, sizeof "optim-state");
	cr_assert_eq(memcmp(m.optim, "optim-state", m.optim_len), 0);
	cr_assert_eq(m.settings_len, sizeof "settings");
	cr_assert_eq(memcmp(m.settings, "settings", m.settings_len), 0);
	cr_assert_eq(m.calib_len, 3);
	cr_assert_eq(memcmp(m.calib, calib, 3), 0);
	sv_store_model_weights(st, &m, got);
	fill(W, D_IN * D_OUT, 2);
	cr_assert_eq(memcmp(W, got, sizeof W), 0);
	cr_assert_eq(sv_store_model_get(r, 3, &m), SV_ERR_NOTFOUND);
	sv_store_read_end(r);
	sv_store_close(st);
}

Test(store, version_retention_and_rollback)
{
	struct sv_store_opts o = opts(D_IN, D_OUT);
	struct sv_store_version vs[8];
	struct sv_store_model m;
	sv_store_read *r;
	sv_store_txn *t;
	size_t n;
	uint64_t v;
	sv_store *st;

	o.keep_versions = 3;
	st = open_ok(&o);
	for (uint32_t k = 1; k <= 6; k++)
		cr_assert_eq(checkpoint(st, k, 1), k);
	cr_assert_eq(sv_store_read_begin(st, &r), 0);
	cr_assert_eq(sv_store_versions(r, vs, 8, &n), 0);
	cr_assert_eq(n, 3);
	for (size_t i = 0; i < 3; i++) {
		cr_assert_eq(vs[i].version, 4 + i);
		cr_assert_eq(vs[i].step, 10 * (4 + i));
		cr_assert_eq(vs[i].applied_seq, 100 * (4 + i));
		cr_assert_eq(vs[i].active, i == 2);
	}
	cr_assert_eq(sv_store_versions(r, vs, 1, &n), 0);
	cr_assert_eq(n, 3);
	cr_assert_eq(sv_store_versions(r, NULL, 1, &n), -EINVAL);
	sv_store_read_end(r);

	/* roll back to 4: active and its applied_seq move together */
	cr_assert_eq(sv_store_txn_begin(st, &t), 0);
	cr_assert_eq(sv_store_set_active(t, 2), SV_ERR_NOTFOUND);
	cr_assert_eq(sv_store_set_active(t, 4), 0);
	cr_assert_eq(sv_store_txn_commit(t), 0);
	cr_assert_eq(sv_store_read_begin(st, &r), 0);
	cr_assert_eq(sv_store_model_get(r, 0, &m), 0);
	cr_assert_eq(m.version, 4);
	cr_assert_eq(m.applied_seq, 400);
	sv_store_read_end(r);

	/* new checkpoints, not activated: the active 4 is never pruned */
	cr_assert_eq(checkpoint(st, 7, 0), 7);
	cr_assert_eq(checkpoint(st, 8, 0), 8);
	cr_assert_eq(checkpoint(st, 9, 0), 9);
	cr_assert_eq(sv_store_read_begin(st, &r), 0);
	cr_assert_eq(sv_store_versions(r, vs, 8, &n), 0);
	cr_assert_eq(n, 3);
	cr_assert_eq(vs[0].version, 4);
	cr_assert(vs[0].active);
	cr_assert_eq(vs[1].version, 8);
	cr_assert_eq(vs[2].version, 9);
	cr_assert_eq(sv_store_active(r, &v), 0);
	cr_assert_eq(v, 4);
	sv_store_read_end(r);
	sv_store_close(st);
}

Test(store, map_grows_from_tiny_initial_size)
{
	struct sv_store_opts o = opts(D_IN, D_OUT);
	sv_store_read *r;
	struct sv_store_stat s;
	sv_store *st;

	o.map_size = 64 << 10;
	o.max_map_size = 64 << 20;
	st = open_ok(&o);
	cr_assert_eq(sv_store_map_size(st), 64 << 10);
	for (uint32_t g = 0; g < 4; g++)
		put_items(st, g * 300, 300); /* 3.8 MB of floats in all */
	checkpoint(st, 1, 1);
	cr_assert_gt(sv_store_map_size(st), 2u << 20);
	cr_assert_leq(sv_store_map_size(st), 64u << 20);
	cr_assert_eq(sv_store_read_begin(st, &r), 0);
	for (uint32_t k = 0; k < 1200; k += 7)
		check_item(r, k);
	cr_assert_eq(sv_store_stat(r, &s), 0);
	cr_assert_eq(s.items, 1200);
	cr_assert_eq(s.models, 1);
	sv_store_read_end(r);
	sv_store_close(st);

	/* reopening with the tiny initial size maps at least the data, grows on */
	st = open_ok(&o);
	cr_assert_geq(sv_store_map_size(st), s.map_used);
	put_items(st, 1200, 300);
	cr_assert_eq(sv_store_read_begin(st, &r), 0);
	check_item(r, 3);
	check_item(r, 1499);
	sv_store_read_end(r);
	sv_store_close(st);
}

Test(store, map_full_at_limit_names_the_key_and_drops_the_group)
{
	struct sv_store_opts o = opts(D_IN, D_OUT);
	sv_store_read *r;
	struct sv_store_stat s;
	sv_store_txn *t;
	float x[D_IN];
	char id[32];
	sv_store *st;
	int rc = 0;

	o.map_size = 64 << 10;
	o.max_map_size = 512 << 10;
	st = open_ok(&o);
	put_items(st, 0, 20);
	fill(x, D_IN, 1);
	cr_assert_eq(sv_store_txn_begin(st, &t), 0);
	for (uint32_t k = 100; k < 400 && rc == 0; k++)
		rc = sv_store_item_put(t, id, (size_t)item_id(id, k), x, 0);
	cr_assert_eq(rc, SV_ERR_STORE_FULL);
	cr_assert_not_null(strstr(sv_store_errmsg(st), "store.max_map_size"), "%s",
	                   sv_store_errmsg(st));
	cr_assert_eq(sv_store_item_put(t, "z", 1, x, 0), SV_ERR_STATE);
	cr_assert_eq(sv_store_txn_commit(t), SV_ERR_STORE_FULL);
	cr_assert_eq(sv_store_read_begin(st, &r), 0);
	cr_assert_eq(sv_store_stat(r, &s), 0);
	cr_assert_eq(s.items, 20);
	cr_assert_eq(sv_store_item_get(r, "item-100", 8, x), SV_ERR_NOTFOUND);
	check_item(r, 19);
	sv_store_read_end(r);
	/* a smaller group still fits */
	put_items(st, 20, 5);
	sv_store_close(st);
}

Test(store, refuses_other_dims_schema_and_settings)
{
	struct sv_store_opts o = opts(D_IN, D_OUT);
	char err[SV_STORE_ERRMSG_MAX];
	sv_store *st = open_ok(&o), *st2 = NULL;
	uint32_t di, dd;
	sv_store_close(st);

	o.d_in = 512;
	cr_assert_eq(sv_store_open(&st2, &o, err, sizeof err), SV_ERR_STORE_DIMS);
	cr_assert_null(st2);
	cr_assert_not_null(strstr(err, "d_in=784"), "%s", err);
	cr_assert_not_null(strstr(err, "d_in=512"), "%s", err);

	o = opts(D_IN, D_OUT);
	o.settings_fp = 77;
	cr_assert_eq(sv_store_open(&st2, &o, err, sizeof err), SV_ERR_STORE_SETTINGS);
	cr_assert_not_null(strstr(err, "1234abcd"), "%s", err);

	/* dims 0/0 adopt the store's */
	o = opts(0, 0);
	st = open_ok(&o);
	sv_store_dims(st, &di, &dd);
	cr_assert_eq(di, D_IN);
	cr_assert_eq(dd, D_OUT);
	sv_store_close(st);

	/* bump the schema behind the store's back */
	{
		MDB_env *env;
		MDB_txn *txn;
		MDB_dbi dbi;
		MDB_val k = {4, "meta"}, v;
		unsigned char rec[32];
		uint32_t schema = 99;
		cr_assert_eq(mdb_env_create(&env), 0);
		mdb_env_set_maxdbs(env, 8);
		cr_assert_eq(mdb_env_open(env, path, 0, 0600), 0);
		cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
		cr_assert_eq(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
		cr_assert_eq(mdb_get(txn, dbi, &k, &v), 0);
		memcpy(rec, v.mv_data, sizeof rec);
		memcpy(rec + 4, &schema, 4);
		v.mv_data = rec;
		cr_assert_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
		cr_assert_eq(mdb_txn_commit(txn), 0);
		mdb_env_close(env);
	}
	o = opts(D_IN, D_OUT);
	cr_assert_eq(sv_store_open(&st2, &o, err, sizeof err), SV_ERR_STORE_SCHEMA);
	cr_assert_not_null(strstr(err, "schema 99"), "%s", err);
	cr_assert_not_null(strstr(err, "schema 4"), "%s", err);
}

Test(store, bad_options_and_new_store_without_dims)
{
	struct sv_store_opts o = opts(D_IN, D_OUT);
	char err[SV_STORE_ERRMSG_MAX];
	sv_store *st = NULL;
	cr_assert_eq(sv_store_open(NULL, &o, err, sizeof err), -EINVAL);
	cr_assert_eq(sv_store_open(&st, NULL, err, sizeof err), -EINVAL);
	o.keep_versions = 0;
	cr_assert_eq(sv_store_open(&st, &o, NULL, 0), -EINVAL);
	o = opts(D_IN, 0);
	cr_assert_eq(sv_store_open(&st, &o, err, sizeof err), -EINVAL);
	o = opts(D_IN, D_OUT);
	o.map_size = o.max_map_size + 1;
	cr_assert_eq(sv_store_open(&st, &o, err, sizeof err), -EINVAL);
	o = opts(0, 0);
	cr_assert_eq(sv_store_open(&st, &o, err, sizeof err), SV_ERR_RANGE);
	cr_assert_null(st);
	cr_assert_str_eq(sv_strerror(MDB_MAP_FULL), mdb_strerror(MDB_MAP_FULL));
}

Test(store, open_clears_stale_readers)
{
	/* With one reader slot, a process that died inside a read transaction
	 * blocks every reader until someone clears its slot.  A keeps the
	 * environment open meanwhile (the last process out resets the table). */
	struct sv_store_opts o = opts(8, 4);
	sv_store *st;
	sv_store_read *r;
	int status, fds[2];
	char ch;
	pid_t a, b;

	o.max_readers = 1;
	st = open_ok(&o);
	sv_store_close(st);
	cr_assert_eq(pipe(fds), 0);
	a = fork();
	cr_assert_neq(a, -1);
	if (a == 0) {
		if (sv_store_open(&st, &o, NULL, 0))
			_exit(1);
		if (write(fds[1], "a", 1) != 1)
			_exit(2);
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive a failed test */
		alarm(30);
		pause();
		_exit(0);
	}
	cr_assert_eq(read(fds[0], &ch, 1), 1);
	b = fork();
	cr_assert_neq(b, -1);
	if (b == 0) {
		if (sv_store_open(&st, &o, NULL, 0) || sv_store_read_begin(st, &r))
			_exit(1);
		_exit(0); /* dies holding the slot */
	}
	cr_assert_eq(waitpid(b, &status, 0), b);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	st = open_ok(&o);
	cr_assert_eq(sv_store_read_begin(st, &r), 0);
	sv_store_read_end(r);
	sv_store_close(st);
	kill(a, SIGKILL);
	waitpid(a, &status, 0);
}

struct reader {
	sv_store *st;
	atomic_int stop;
	atomic_int rc;
	atomic_long reads;
};

/* Reads item-0 .. item-9 (committed before the thread starts) in fresh read
 * transactions until told to stop. */
static void *read_loop(void *arg)
{
	struct reader *rd = arg;
	float x[D_IN], y[D_IN];
	char id[32];
	for (uint32_t k = 0; !atomic_load(&rd->stop); k = (k + 1) % 10) {
		sv_store_read *r;
		int rc = sv_store_read_begin(rd->st, &r);
		if (rc == 0) {
			rc = sv_store_item_get(r, id, (size_t)item_id(id, k), y);
			sv_store_read_end(r);
		}
		fill(x, D_IN, k);
		if (rc == 0 && memcmp(x, y, sizeof x))
			rc = SV_ERR_CORRUPT;
		if (rc) {
			atomic_store(&rd->rc, rc);
			break;
		}
		atomic_fetch_add(&rd->reads, 1);
	}
	return NULL;
}

Test(store, map_grows_under_concurrent_readers)
{
	struct sv_store_opts o = opts(D_IN, D_OUT);
	struct reader rd[2];
	pthread_t th[2];
	sv_store *st;
	size_t first;

	o.map_size = 64 << 10;
	st = open_ok(&o);
	put_items(st, 0, 10);
	first = sv_store_map_size(st);
	for (int i = 0; i < 2; i++) {
		memset(&rd[i], 0, sizeof rd[i]);
		rd[i].st = st;
		cr_assert_eq(pthread_create(&th[i], NULL, read_loop, &rd[i]), 0);
	}
	for (uint32_t g = 1; g < 40; g++)
		put_items(st, g * 50, 50);
	for (int i = 0; i < 2; i++) {
		atomic_store(&rd[i].stop, 1);
		pthread_join(th[i], NULL);
		cr_assert_eq(atomic_load(&rd[i].rc), 0, "reader %d: %s", i,
		             sv_strerror(atomic_load(&rd[i].rc)));
		cr_assert_gt(atomic_load(&rd[i].reads), 0);
	}
	cr_assert_gt(sv_store_map_size(st), first * 8);
	sv_store_close(st);
}

struct writer {
	sv_store *st;
	atomic_int stop;
	atomic_ullong committed; /* last seq committed */
	atomic_int rc;
};

static void *write_loop(void *arg)
{
	struct writer *w = arg;
	float x[D_IN];
	char id[32];
	uint32_t k = 0;
	while (!atomic_load(&w->stop)) {
		sv_store_txn *t;
		uint64_t seq = 0;
		int rc = sv_store_txn_begin(w->st, &t);
		for (int i = 0; rc == 0 && i < 16; i++, k++) {
			fill(x, D_IN, k);
			rc = sv_store_item_put(t, id, (size_t)item_id(id, k), x, 0);
			if (rc == 0)
				rc = append(t, id, "item-0", 1, NULL, 0, &seq);
		}
		if (rc == 0)
			rc = sv_store_txn_commit(t);
		else
			sv_store_txn_abort(t);
		if (rc) {
			atomic_store(&w->rc, rc);
			break;
		}
		atomic_store(&w->committed, seq);
	}
	return NULL;
}

Test(store, backup_during_writes_holds_every_earlier_commit)
{
	struct sv_store_opts o = opts(D_IN, D_OUT);
	struct writer w = {0};
	pthread_t th;
	sv_store_read *r;
	sv_store_cursor *c;
	struct sv_store_pair p;
	char bdir[160];
	uint64_t before, last, expect;
	sv_store *st, *bk;

	o.map_size = 1 << 20;
	st = open_ok(&o);
	checkpoint(st, 3, 1);
	w.st = st;
	cr_assert_eq(pthread_create(&th, NULL, write_loop, &w), 0);
	while (atomic_load(&w.committed) < 400 && !atomic_load(&w.rc))
		;
	before = atomic_load(&w.committed);
	snprintf(bdir, sizeof bdir, "%s/backup", dir);
	cr_assert_eq(sv_store_backup(st, bdir), 0);
	cr_assert_eq(sv_store_backup(st, bdir), -EEXIST);
	atomic_store(&w.stop, 1);
	pthread_join(th, NULL);
	cr_assert_eq(atomic_load(&w.rc), 0, "writer: %s", sv_strerror(atomic_load(&w.rc)));
	cr_assert_gt(atomic_load(&w.committed), before);
	sv_store_close(st);

	snprintf(path, sizeof path, "%s", bdir);
	bk = open_ok(&o);
	cr_assert_eq(sv_store_read_begin(bk, &r), 0);
	cr_assert_eq(sv_store_last_seq(r, &last), 0);
	cr_assert_geq(last, before);
	cr_assert_eq(sv_store_cursor_open(r, 1, &c), 0);
	expect = 1;
	while (sv_store_cursor_next(c, &p) == 0) {
		cr_assert_eq(p.seq, expect);
		expect++;
	}
	cr_assert_eq(expect, last + 1);
	sv_store_cursor_close(c);
	for (uint32_t k = 0; k < last; k++)
		check_item(r, k);
	{
		struct sv_store_model m;
		cr_assert_eq(sv_store_model_get(r, 0, &m), 0);
		cr_assert_eq(m.applied_seq, 300);
	}
	sv_store_read_end(r);
	sv_store_close(bk);
}

/* ---- crash test ----
 *
 * A child process ingests items and pairs in groups, trains on every B
 * committed pairs in log order, and checkpoints (W + optimizer state + the
 * applied_seq) every CK steps, making each checkpoint active.  The parent kills
 * it with SIGKILL after a random delay, then checks the store: it opens, the log
 * is 1..L with every pair as generated, every item is whole, the active model
 * loads, and replaying the log after its applied_seq through the same batching
 * gives bit for bit the W of an uninterrupted run (kept by the parent) at the
 * same sequence.  The next child recovers the same way and also re-sends its
 * last pairs to check that they come back as duplicates.
 *
 * The learner is the real trainer (sv/train.h: ContrastiveLoss, batch mode,
 * Adam) with its optimizer state checkpointed through sv_optim_save and
 * restored through sv_optim_load, BLAS on one thread.
 */
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CR_D_IN 32
#define CR_D_OUT 8
#define CR_B 16 /* pairs per training batch */
#define CR_CK 4 /* steps per checkpoint */
#define CR_KEEP 3

struct learner {
	sv_trainer *tr;
	sv_batch *b;
};

static int learner_new(struct learner *l, const float *W0, const void *optim, size_t optim_len)
{
	struct sv_train_params p;
	struct sv_optim *o = NULL;
	int rc;
	memset(&p, 0, sizeof p);
	p.d_in = CR_D_IN;
	p.d_out = CR_D_OUT;
	p.seed = 7;
	p.max_pairs = CR_B;
	sv_loss_params_default(&p.loss, SV_LOSS_KIND_CONTRASTIVE);
	sv_optim_params_default(&p.optim, SV_OPTIM_KIND_ADAM);
	p.optim.lr = 0.01;
	sv_blas_set_threads(1);
	rc = sv_trainer_new(&l->tr, &p, W0);
	if (rc)
		return rc;
	rc = sv_batch_new(&l->b, CR_B, CR_D_IN);
	if (rc == 0 && optim) {
		rc = sv_optim_load(&o, optim, optim_len);
		if (rc == 0)
			rc = sv_trainer_set_optim(l->tr, o);
		if (rc)
			sv_optim_free(o);
	}
	return rc;
}

static void learner_free(struct learner *l)
{
	sv_trainer_free(l->tr);
	sv_batch_free(l->b);
}

static uint64_t learner_steps(const struct learner *l)
{
	return sv_trainer_optim(l->tr)->t;
}

/* One step on B pairs: xa, xb are B rows of CR_D_IN floats. */
static int learner_step(struct learner *l, const float *xa, const float *xb, const uint8_t *y,
                        const uint64_t *ka, const uint64_t *kb, uint64_t first_seq)
{
	int rc;
	sv_batch_clear(l->b);
	for (int p = 0; p < CR_B; p++) {
		rc = sv_batch_add(l->b, xa + p * CR_D_IN, ka[p], xb + p * CR_D_IN, kb[p], y[p],
		                  first_seq + (uint64_t)p);
		if (rc)
			return rc;
	}
	rc = sv_trainer_step(l->tr, l->b, NULL, NULL);
	return rc == SV_ERR_NONFINITE ? 0 : rc; /* W unchanged, as in the daemon */
}

static size_t learner_save_optim(const struct learner *l, unsigned char *buf, size_t cap)
{
	long n = sv_optim_save(sv_trainer_optim(l->tr), buf, cap);
	return n < 0 ? 0 : (size_t)n;
}

/* Two learners hold the same W and optimizer state, bit for bit. */
static int learner_same(const struct learner *a, const struct learner *b)
{
	static unsigned char sa[1 << 16], sb[1 << 16];
	size_t na = learner_save_optim(a, sa, sizeof sa), nb = learner_save_optim(b, sb, sizeof sb);
	return na && na == nb && !memcmp(sa, sb, na) &&
	       !memcmp(sv_trainer_weights(a->tr), sv_trainer_weights(b->tr),
	               CR_D_IN * CR_D_OUT * sizeof(float));
}

/* The generated world: pair s brings item s and refers to item b(s) <= s. */
static uint64_t mix(uint64_t s)
{
	s ^= s >> 33;
	s *= 0xff51afd7ed558ccdull;
	s ^= s >> 33;
	return s;
}

static uint64_t pair_b(uint64_t s)
{
	return 1 + mix(s) % s;
}
static uint8_t pair_label(uint64_t s)
{
	return (uint8_t)(mix(s + 7) >> 40 & 1);
}

static int cr_id(char *buf, uint64_t k)
{
	return snprintf(buf, 32, "i%llu", (unsigned long long)k);
}

/* Train the batch ending at seq last (B pairs, last % B == 0), vectors from
 * the generator (ref) or from the store (r != NULL). */
static int train_batch(struct learner *l, sv_store_read *r, uint64_t last)
{
	float xa[CR_B * CR_D_IN], xb[CR_B * CR_D_IN];
	uint64_t ka[CR_B], kb[CR_B];
	uint8_t y[CR_B];
	char id[32];
	for (int p = 0; p < CR_B; p++) {
		uint64_t s = last - CR_B + 1 + (uint64_t)p;
		if (r) {
			struct sv_store_pair pr;
			if (sv_store_pair_get(r, s, &pr))
				return -1;
			if (sv_store_item_get(r, pr.id_a, pr.len_a, xa + p * CR_D_IN) ||
			    sv_store_item_get(r, pr.id_b, pr.len_b, xb + p * CR_D_IN))
				return -2;
			y[p] = pr.label;
			memcpy(id, pr.id_a, pr.len_a);
			id[pr.len_a] = 0;
			ka[p] = strtoull(id + 1, NULL, 10);
			memcpy(id, pr.id_b, pr.len_b);
			id[pr.len_b] = 0;
			kb[p] = strtoull(id + 1, NULL, 10);
		} else {
			fill(xa + p * CR_D_IN, CR_D_IN, (uint32_t)s);
			fill(xb + p * CR_D_IN, CR_D_IN, (uint32_t)pair_b(s));
			y[p] = pair_label(s);
			ka[p] = s;
			kb[p] = pair_b(s);
		}
	}
	return learner_step(l, xa, xb, y, ka, kb, last - CR_B + 1);
}

/* Recovery as the daemon does it: load the active model and replay every
 * full batch after its applied_seq.  *trained gets the last seq trained. */
static int recover(sv_store *st, struct learner *l, uint64_t *trained, uint64_t *last)
{
	sv_store_read *r;
	struct sv_store_model m;
	uint64_t s;
	int rc = sv_store_read_begin(st, &r);
	if (rc)
		return rc;
	*trained = 0;
	rc = sv_store_model_get(r, 0, &m);
	if (rc == 0) {
		float W[CR_D_IN * CR_D_OUT];
		sv_store_model_weights(st, &m, W);
		rc = learner_new(l, W, m.optim, m.optim_len);
		if (rc)
			goto out;
		if (learner_steps(l) != m.step || m.applied_seq % CR_B) {
			rc = -1000;
			goto out;
		}
		*trained = m.applied_seq;
	} else if (rc == SV_ERR_NOTFOUND) {
		rc = learner_new(l, NULL, NULL, 0);
		if (rc)
			goto out;
	} else {
		goto out;
	}
	rc = sv_store_last_seq(r, last);
	if (rc)
		goto out;
	if (*last < *trained) {
		rc = -1001;
		goto out;
	}
	for (s = *trained + CR_B; s <= *last; s += CR_B) {
		rc = train_batch(l, r, s);
		if (rc)
			goto out;
		*trained = s;
	}
out:
	sv_store_read_end(r);
	return rc;
}

static struct sv_store_opts crash_opts(int mode)
{
	struct sv_store_opts o = opts(CR_D_IN, CR_D_OUT);
	o.sync = (enum sv_store_sync)(mode % 3);
	o.keep_versions = CR_KEEP;
	o.map_size = 256 << 10; /* grows under the kills too */
	return o;
}

/* The child: recover, check re-sent pairs are duplicates, then ingest and
 * train until killed.  Exit codes name the failure. */
static void __attribute__((noreturn)) crash_child(int mode, int ready)
{
	struct sv_store_opts o = crash_opts(mode);
	struct learner l;
	static unsigned char optim[1 << 16];
	float x[CR_D_IN];
	char id[32], idb[32];
	sv_store *st;
	uint64_t trained, last, s, seq, rng = (uint64_t)mode * 7919 + 1;

	if (sv_store_open(&st, &o, NULL, 0))
		_exit(10);
	if (recover(st, &l, &trained, &last))
		_exit(11);
	/* a client that never saw its last acks sends them again */
	if (last) {
		sv_store_txn *t;
		if (sv_store_txn_begin(st, &t))
			_exit(12);
		for (s = last > 20 ? last - 20 : 1; s <= last; s++) {
			struct sv_store_pair p = {0};
			int n = cr_id(id, s), nb = cr_id(idb, pair_b(s));
			p.id_a = id, p.len_a = (size_t)n, p.id_b = idb, p.len_b = (size_t)nb;
			p.label = pair_label(s), p.client = "crash", p.client_len = 5;
			p.client_seq = s;
			if (sv_store_pair_append(t, &p, &seq) != SV_ERR_DUPLICATE || seq != s)
				_exit(13);
		}
		if (sv_store_txn_commit(t))
			_exit(14);
	}
	/* the parent's clock starts now: a loaded machine may take long to get here */
	if (write(ready, "r", 1) != 1)
		_exit(21);
	close(ready);
	s = last + 1;
	for (;;) {
		sv_store_txn *t;
		int g;
		rng = rng * 6364136223846793005ull + 1442695040888963407ull;
		g = 1 + (int)(rng >> 59); /* 1..32 pairs per group */
		if (sv_store_txn_begin(st, &t))
			_exit(15);
		for (int i = 0; i < g; i++, s++) {
			struct sv_store_pair p = {0};
			int n = cr_id(id, s), nb = cr_id(idb, pair_b(s));
			fill(x, CR_D_IN, (uint32_t)s);
			if (sv_store_item_put(t, id, (size_t)n, x, 0))
				_exit(16);
			p.id_a = id, p.len_a = (size_t)n, p.id_b = idb, p.len_b = (size_t)nb;
			p.label = pair_label(s), p.client = "crash", p.client_len = 5;
			p.client_seq = s;
			if (sv_store_pair_append(t, &p, &seq) || seq != s)
				_exit(17);
		}
		if (sv_store_txn_commit(t))
			_exit(18);
		last = s - 1;
		while (trained + CR_B <= last) {
			if (train_batch(&l, NULL, trained + CR_B))
				_exit(19);
			trained += CR_B;
			if (learner_steps(&l) % CR_CK == 0) {
				struct sv_store_model m = {0};
				uint64_t v;
				m.W = sv_trainer_weights(l.tr);
				m.step = learner_steps(&l);
				m.applied_seq = trained;
				m.loss = m.auc = m.eer = NAN;
				m.optim = optim;
				m.optim_len = learner_save_optim(&l, optim, sizeof optim);
				if (!m.optim_len)
					_exit(22);
				if (sv_store_txn_begin(st, &t) ||
				    sv_store_checkpoint_put(t, &m, &v) ||
				    sv_store_set_active(t, v) || sv_store_txn_commit(t))
					_exit(20);
			}
		}
		if (mode % 3 == SV_STORE_SYNC_NONE)
			usleep(100);
	}
}

Test(store, crash_kill_reopen_replay, .timeout = 280)
{
	int kills = getenv("CI") ? 15 : 50;
	struct learner ref;

	if (getenv("SV_UNDER_VALGRIND"))
		cr_skip_test("timing-driven kills: too slow under valgrind (the sanitizer build runs it)");
	uint64_t ref_seq = 0, rng = 12345, total = 0;
	char id[32];
	float x[CR_D_IN], y[CR_D_IN];

	cr_assert_eq(learner_new(&ref, NULL, NULL, 0), 0);
	for (int it = 0; it < kills; it++) {
		struct sv_store_opts o = crash_opts(it);
		struct timespec d;
		struct learner l;
		sv_store *st;
		sv_store_read *r;
		sv_store_cursor *c;
		struct sv_store_pair p;
		struct sv_store_stat ss;
		uint64_t trained, last, expect;
		int status, fds[2];
		char ch = 0;
		pid_t pid;
		cr_assert_eq(pipe(fds), 0);
		pid = fork();
		cr_assert_neq(pid, -1);
		if (pid == 0) {
			close(fds[0]);
			crash_child(it, fds[1]);
		}
		close(fds[1]);
		if (read(fds[0], &ch, 1) != 1) {
			waitpid(pid, &status, 0);
			cr_assert_fail("kill %d: child died before it was ready (exit %d)", it,
			               WIFEXITED(status) ? WEXITSTATUS(status) : -1);
		}
		close(fds[0]);
		rng = rng * 6364136223846793005ull + 1442695040888963407ull;
		d.tv_sec = 0;
		d.tv_nsec = (long)(1 + (rng >> 33) % 40) * 1000000L;
		nanosleep(&d, NULL);
		kill(pid, SIGKILL);
		cr_assert_eq(waitpid(pid, &status, 0), pid);
		cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
		          "kill %d: child exited early with %d", it,
		          WIFEXITED(status) ? WEXITSTATUS(status) : -1);

		st = open_ok(&o);
		cr_assert_eq(sv_store_read_begin(st, &r), 0);
		cr_assert_eq(sv_store_last_seq(r, &last), 0);
		cr_assert_geq(last, total, "kill %d: log shrank from %llu to %llu", it,
		              (unsigned long long)total, (unsigned long long)last);
		/* the log is 1..last, each pair as generated */
		cr_assert_eq(sv_store_cursor_open(r, 1, &c), 0);
		for (expect = 1; sv_store_cursor_next(c, &p) == 0; expect++) {
			int n = cr_id(id, pair_b(p.seq));
			cr_assert_eq(p.seq, expect, "kill %d: gap at %llu", it,
			             (unsigned long long)expect);
			cr_assert_eq(p.label, pair_label(p.seq));
			cr_assert_eq(p.client_seq, p.seq);
			cr_assert_eq(p.len_b, (size_t)n);
			cr_assert_eq(memcmp(p.id_b, id, (size_t)n), 0);
		}
		cr_assert_eq(expect, last + 1);
		sv_store_cursor_close(c);
		/* every committed item whole */
		cr_assert_eq(sv_store_stat(r, &ss), 0);
		cr_assert_eq(ss.items, last);
		cr_assert_leq(ss.models, CR_KEEP);
		for (uint64_t s = 1; s <= last; s++) {
			int n = cr_id(id, s);
			cr_assert_eq(sv_store_item_get(r, id, (size_t)n, y), 0);
			fill(x, CR_D_IN, (uint32_t)s);
			cr_assert_eq(memcmp(x, y, sizeof x), 0, "kill %d: item %llu torn", it,
			             (unsigned long long)s);
		}
		sv_store_read_end(r);
		/* the active model loads; replay equals the uninterrupted run */
		cr_assert_eq(recover(st, &l, &trained, &last), 0, "kill %d", it);
		sv_store_close(st);
		while (ref_seq < trained) {
			ref_seq += CR_B;
			cr_assert_eq(train_batch(&ref, NULL, ref_seq), 0);
		}
		cr_assert_eq(ref_seq, trained);
		cr_assert(learner_same(&ref, &l),
		          "kill %d: replayed W or optimizer differs at seq %llu", it,
		          (unsigned long long)trained);
		cr_assert_eq(learner_steps(&ref), learner_steps(&l));
		learner_free(&l);
		total = last;
	}
	cr_assert_gt(total, (uint64_t)CR_B * CR_CK, "the children wrote too little to test");
	{
		struct sv_store_opts o = crash_opts(0);
		sv_store *st = open_ok(&o);
		sv_store_read *r;
		uint64_t v;
		cr_assert_eq(sv_store_read_begin(st, &r), 0);
		cr_assert_eq(sv_store_active(r, &v), 0, "no checkpoint was ever made");
		sv_store_read_end(r);
		sv_store_close(st);
	}
	cr_log_info("%d kills, %llu pairs logged, %llu steps", kills, (unsigned long long)total,
	            (unsigned long long)learner_steps(&ref));
	learner_free(&ref);
}

/* The content id and the settings fingerprint are part of every existing
 * store: their values may never change (computed by the daemon's code before
 * they moved here). */
Test(store, inline_id_and_settings_fp_are_stable)
{
	float x[4] = {1, 2, 3, 4};
	char id[SV_STORE_INLINE_ID_LEN + 1];

	sv_store_inline_id(x, 4, id);
	cr_assert_str_eq(id, "~ve2bc4a6a85695b42f1eaf2589f8b46df");
	cr_assert_eq(strlen(id), SV_STORE_INLINE_ID_LEN);
	cr_assert(sv_store_id_reserved(id, strlen(id)));
	cr_assert(sv_store_id_reserved("~v", 2));
	cr_assert_not(sv_store_id_reserved("~", 1));
	cr_assert_not(sv_store_id_reserved("v~x", 3));
	cr_assert_not(sv_store_id_reserved(NULL, 0));
	cr_assert_eq(sv_store_settings_fp(1, 0, 2), 0x9f19854a6eada506ull);
	cr_assert_neq(sv_store_settings_fp(1, 0, 2), sv_store_settings_fp(1, 1, 2));
}

/* ---- bounded growth: retention, reference counts, windows, erasure ---- */

/* Pair k names inline ids ~v<k> and ~v<k+1>, logged at recv_ns 1000 + k. */
static void inline_pairs(sv_store *st, uint32_t from, uint32_t n)
{
	float x[D_IN];
	sv_store_txn *t;
	uint64_t seq;
	cr_assert_eq(sv_store_txn_begin(st, &t), 0);
	for (uint32_t k = from; k < from + n; k++) {
		char a[32], b[32];
		struct sv_store_pair p = {0};
		snprintf(a, sizeof a, "~v%u", k);
		snprintf(b, sizeof b, "~v%u", k + 1);
		p.id_a = a;
		p.len_a = strlen(a);
		p.id_b = b;
		p.len_b = strlen(b);
		p.label = k & 1;
		p.recv_ns = 1000 + k;
		cr_assert_eq(sv_store_pair_append(t, &p, &seq), 0);
		fill(x, D_IN, k);
		int rc = sv_store_item_put_new(t, a, strlen(a), x, SV_STORE_ITEM_INLINE);
		cr_assert(rc == 0 || rc == SV_ERR_DUPLICATE);
		fill(x, D_IN, k + 1);
		rc = sv_store_item_put_new(t, b, strlen(b), x, SV_STORE_ITEM_INLINE);
		cr_assert(rc == 0 || rc == SV_ERR_DUPLICATE);
	}
	cr_assert_eq(sv_store_txn_commit(t), 0);
}

static void activate_at(sv_store *st, uint64_t applied_seq)
{
	float W[8 * 4] = {0};
	struct sv_store_model m = {0};
	sv_store_txn *t;
	uint64_t v;
	m.W = W;
	m.applied_seq = applied_seq;
	cr_assert_eq(sv_store_txn_begin(st, &t), 0);
	cr_assert_eq(sv_store_checkpoint_put(t, &m, &v), 0);
	cr_assert_eq(sv_store_set_active(t, v), 0);
	cr_assert_eq(sv_store_txn_commit(t), 0);
}

static size_t trim(sv_store *st, uint64_t keep_from, uint64_t before_ns, size_t max)
{
	sv_store_txn *t;
	size_t n = 99;
	cr_assert_eq(sv_store_txn_begin(st, &t), 0);
	cr_assert_eq(sv_store_log_trim(t, keep_from, before_ns, max, &n), 0);
	cr_assert_eq(sv_store_txn_commit(t), 0);
	return n;
}

static struct sv_store_stat stat_of(sv_store *st)
{
	sv_store_read *r;
	struct sv_store_stat s;
	cr_assert_eq(sv_store_read_begin(st, &r), 0);
	cr_assert_eq(sv_store_stat(r, &s), 0);
	sv_store_read_end(r);
	return s;
}

static int has_item(sv_store *st, const char *id)
{
	sv_store_read *r;
	struct sv_store_item it;
	int rc;
	cr_assert_eq(sv_store_read_begin(st, &r), 0);
	rc = sv_store_item_read(r, id, strlen(id), NULL, &it);
	sv_store_read_end(r);
	return rc == 0;
}

Test(store, retention_keeps_what_recovery_needs_and_frees_inline_vectors)
{
	struct sv_store_opts o = opts(8, 4);
	sv_store *st = open_ok(&o);
	struct sv_store_stat s;

	inline_pairs(st, 1, 100); /* seqs 1..100 name ~v1..~v101 */
	cr_assert_eq(trim(st, 81, 0, 1000), 0, "no model: recovery needs every row");
	activate_at(st, 60);
	cr_assert_eq(trim(st, 81, 0, 10), 10, "bounded by max_rows");
	cr_assert_eq(trim(st, 81, 0, 1000), 50, "stops after applied_seq 60");
	s = stat_of(st);
	cr_assert_eq(s.first_seq, 61);
	cr_assert_eq(s.last_seq, 100);
	cr_assert_eq(s.pairs, 40);
	/* ~v60 was named by rows 59 and 60 only; ~v61 by row 61 too */
	cr_assert(!has_item(st, "~v1"));
	cr_assert(!has_item(st, "~v60"));
	cr_assert(has_item(st, "~v61"));
	cr_assert_eq(s.items, 41);
	cr_assert_eq(s.inline_items, 41, "every item here is an inline one the log names");
	/* by age: rows received before 1000 + 71 */
	activate_at(st, 100);
	cr_assert_eq(trim(st, 0, 1071, 1000), 10);
	cr_assert_eq(stat_of(st).first_seq, 71);
	cr_assert(has_item(st, "~v71") && !has_item(st, "~v70"));
	/* a vector named again after it was freed is stored again */
	inline_pairs(st, 1, 1);
	cr_assert(has_item(st, "~v1"));
	cr_assert_eq(trim(st, 101, 0, 1000), 30);
	cr_assert(has_item(st, "~v1") && has_item(st, "~v2"), "row 101 still names them");
	s = stat_of(st);
	cr_assert_eq(s.pairs, 1);
	cr_assert_eq(s.items, 2);
	cr_assert_gt(s.used_bytes, 0);
	cr_assert_leq(s.used_bytes, s.map_used);
	vecs_agree(st, 2); /* the inline vectors freed went with their items */
	sv_store_close(st);
}

static int capp(sv_store *st, const char *client, uint64_t cseq, uint64_t recv_ns, uint64_t *seq)
{
	sv_store_txn *t;
	struct sv_store_pair p = {0};
	int rc;
	p.id_a = "a";
	p.len_a = 1;
	p.id_b = "b";
	p.len_b = 1;
	p.client = client;
	p.client_len = strlen(client);
	p.client_seq = cseq;
	p.recv_ns = recv_ns;
	cr_assert_eq(sv_store_txn_begin(st, &t), 0);
	rc = sv_store_pair_append(t, &p, seq);
	cr_assert_eq(sv_store_txn_commit(t), 0);
	return rc;
}

Test(store, dedup_window_is_bounded_and_expires)
{
	struct sv_store_opts o = opts(8, 4);
	struct sv_store_producer pr;
	sv_store_read *r;
	sv_store_txn *t;
	sv_store *st;
	uint64_t seq = 0;
	size_t n;

	o.dedup_depth = 8;
	st = open_ok(&o);
	cr_assert_eq(sv_store_read_begin(st, &r), 0);
	cr_assert_eq(sv_store_producer_get(r, "cam", 3, &pr), SV_ERR_NOTFOUND);
	sv_store_read_end(r);
	for (uint64_t k = 1; k <= 20; k++)
		cr_assert_eq(capp(st, "cam", k, 5000, &seq), 0);
	cr_assert_eq(capp(st, "cam", 15, 5000, &seq), SV_ERR_DUPLICATE);
	cr_assert_eq(seq, 15);
	cr_assert_eq(capp(st, "cam", 13, 5000, &seq), SV_ERR_DUPLICATE);
	cr_assert_eq(capp(st, "cam", 12, 5000, &seq), SV_ERR_STALE, "hwm 20, depth 8");
	cr_assert_eq(seq, 20);
	/* a gap, then the missing seqs out of order: new once, then duplicates */
	cr_assert_eq(capp(st, "cam", 25, 5000, &seq), 0);
	cr_assert_eq(capp(st, "cam", 22, 5000, &seq), 0);
	cr_assert_eq(capp(st, "cam", 22, 5000, &seq), SV_ERR_DUPLICATE);
	cr_assert_eq(capp(st, "cam", 17, 5000, &seq), SV_ERR_STALE);
	cr_assert_eq(capp(st, "old", 1, 100, &seq), 0);
	cr_assert_eq(sv_store_read_begin(st, &r), 0);
	cr_assert_eq(sv_store_producer_get(r, "cam", 3, &pr), 0);
	cr_assert_eq(pr.hwm, 25);
	cr_assert_eq(pr.last_ns, 5000);
	cr_assert_eq(pr.depth, 8);
	sv_store_read_end(r);
	/* expiry forgets "old" only; its seq 1 is new again */
	cr_assert_eq(sv_store_txn_begin(st, &t), 0);
	cr_assert_eq(sv_store_dedup_expire(t, 1000, 1000, &n), 0);
	cr_assert_eq(n, 1);
	cr_assert_eq(sv_store_txn_commit(t), 0);
	cr_assert_eq(stat_of(st).producers, 1);
	cr_assert_eq(capp(st, "old", 1, 6000, &seq), 0);
	cr_assert_eq(capp(st, "cam", 25, 6000, &seq), SV_ERR_DUPLICATE);
	/* a bounded expiry: a budget of 3 entries leaves "cam" for the next call */
	cr_assert_eq(sv_store_txn_begin(st, &t), 0);
	cr_assert_eq(sv_store_dedup_expire(t, 10000, 3, &n), 0);
	cr_assert_eq(n, 0);
	cr_assert_eq(sv_store_dedup_expire(t, 10000, 1000, &n), 0);
	cr_assert_eq(n, 2);
	cr_assert_eq(sv_store_txn_commit(t), 0);
	cr_assert_eq(stat_of(st).producers, 0);
	sv_store_close(st);
}

Test(store, window_entries_stay_bounded)
{
	struct sv_store_opts o = opts(8, 4);
	sv_store *st;
	sv_store_txn *t;
	uint64_t seq;
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_stat ms;

	o.dedup_depth = 16;
	st = open_ok(&o);
	cr_assert_eq(sv_store_txn_begin(st, &t), 0);
	for (uint64_t k = 1; k <= 5000; k++) {
		struct sv_store_pair p = {.id_a = "a", .len_a = 1, .id_b = "b", .len_b = 1,
		                          .client = "c", .client_len = 1, .client_seq = k};
		cr_assert_eq(sv_store_pair_append(t, &p, &seq), 0);
	}
	cr_assert_eq(sv_store_txn_commit(t), 0);
	sv_store_close(st);
	env = raw_read(&txn);
	cr_assert_eq(mdb_dbi_open(txn, "clients", 0, &dbi), 0);
	cr_assert_eq(mdb_stat(txn, dbi, &ms), 0);
	cr_assert_leq(ms.ms_entries, 17, "%zu window entries for depth 16", ms.ms_entries);
	mdb_txn_abort(txn);
	mdb_env_close(env);
}

Test(store, purge_deletes_every_row_naming_an_item)
{
	struct sv_store_opts o = opts(8, 4);
	sv_store *st = open_ok(&o);
	sv_store_txn *t;
	uint64_t seq, next = 1;
	size_t n, total = 0;

	inline_pairs(st, 1, 10);
	cr_assert_eq(sv_store_txn_begin(st, &t), 0);
	for (int k = 0; k < 5; k++) {
		struct sv_store_pair p = {.id_a = "alice", .len_a = 5, .id_b = "~v3", .len_b = 3};
		cr_assert_eq(sv_store_pair_append(t, &p, &seq), 0);
	}
	cr_assert_eq(sv_store_txn_commit(t), 0);
	/* ~v3 is named by rows 2, 3 and 11..15; purge it 4 rows at a time */
	while (next) {
		cr_assert_eq(sv_store_txn_begin(st, &t), 0);
		cr_assert_eq(sv_store_purge(t, "~v3", 3, next, 4, &next, &n), 0);
		cr_assert_eq(sv_store_txn_commit(t), 0);
		total += n;
	}
	cr_assert_eq(total, 7);
	cr_assert_eq(stat_of(st).pairs, 8);
	cr_assert(!has_item(st, "~v3"), "its last reference went with the rows");
	cr_assert(has_item(st, "~v2") && has_item(st, "~v4"));
	vecs_agree(st, 10);
	cr_assert_eq(sv_store_txn_begin(st, &t), 0);
	cr_assert_eq(sv_store_purge(t, "nobody", 6, 1, 100, &next, &n), 0);
	cr_assert_eq(n, 0);
	cr_assert_eq(next, 0);
	cr_assert_eq(sv_store_txn_commit(t), 0);
	sv_store_close(st);
}

Test(store, a_full_map_can_still_be_trimmed)
{
	struct sv_store_opts o = opts(D_IN, D_OUT);
	float x[D_IN];
	sv_store *st;
	sv_store_txn *t;
	uint32_t k = 0, logged;
	size_t n;
	int rc = 0;

	o.map_size = 1 << 20;
	o.max_map_size = 2 << 20;
	st = open_ok(&o);
	checkpoint(st, 1000000, 1); /* applied_seq 1e8: every row may go */
	/* fill it with inline pairs, one per group, to the last page */
	while (rc == 0) {
		char a[32];
		struct sv_store_pair p = {0};
		uint64_t seq;
		snprintf(a, sizeof a, "~v%u", k);
		p.id_a = p.id_b = a;
		p.len_a = p.len_b = strlen(a);
		fill(x, D_IN, k);
		cr_assert_eq(sv_store_txn_begin(st, &t), 0);
		rc = sv_store_pair_append(t, &p, &seq);
		if (rc == 0)
			rc = sv_store_item_put_new(t, a, strlen(a), x, SV_STORE_ITEM_INLINE);
		if (rc == 0)
			rc = sv_store_txn_commit(t);
		else
			sv_store_txn_abort(t);
		if (rc == 0)
			k++;
	}
	cr_assert_eq(rc, SV_ERR_STORE_FULL);
	logged = k;
	cr_assert_gt(logged, 100);
	/* deleting needs fresh pages too: the reserve has them */
	cr_assert_eq(sv_store_txn_begin(st, &t), 0);
	cr_assert_eq(sv_store_log_trim(t, logged / 2, 0, 100000, &n), 0);
	cr_assert_eq(sv_store_txn_commit(t), 0);
	cr_assert_eq(n, logged / 2 - 1);
	/* and the freed pages take new data */
	inline_pairs(st, 1000000, 10);
	sv_store_close(st);
}

/* The items (id and value) whose values are `size` bytes, copied out in id
 * order; every other value must be `other` bytes.  Returns how many. */
static struct raw_item {
	unsigned char id[SV_STORE_ID_MAX];
	size_t len;
	unsigned char val[24];
} raw_it[20000];

static size_t raw_items(MDB_txn *txn, MDB_dbi items, size_t size, size_t other)
{
	size_t n = 0;
	MDB_cursor *c;
	MDB_val k, v;
	int rc;

	cr_assert_eq(mdb_cursor_open(txn, items, &c), 0);
	while ((rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) == 0) {
		cr_assert(v.mv_size == size || v.mv_size == other, "a value of %zu bytes", v.mv_size);
		if (v.mv_size != size)
			continue;
		cr_assert_lt(n, sizeof raw_it / sizeof raw_it[0]);
		memcpy(raw_it[n].id, k.mv_data, k.mv_size);
		raw_it[n].len = k.mv_size;
		memcpy(raw_it[n].val, v.mv_data, size);
		n++;
	}
	cr_assert_eq(rc, MDB_NOTFOUND);
	mdb_cursor_close(c);
	return n;
}

/* Put the inline items of a schema-4 store back in the schema-3 layout
 * (store.h): each value u16 fmt=2, u16 flags, u32 dim, u64 vector id, and
 * its count, when not 0, in refs.  Returns how many items it rewrote. */
static size_t inline_to_schema_3(MDB_txn *txn)
{
	struct raw_item *it = raw_it;
	size_t n_it;
	MDB_dbi items, refs;
	MDB_val k, v;

	cr_assert_eq(mdb_dbi_open(txn, "items", 0, &items), 0);
	cr_assert_eq(mdb_dbi_open(txn, "refs", 0, &refs), 0);
	n_it = raw_items(txn, items, 24, 16);
	for (size_t i = 0; i < n_it; i++) {
		uint16_t fmt;
		memcpy(&fmt, it[i].val, 2);
		cr_assert_eq(fmt, 3);
		cr_assert(sv_store_id_reserved(it[i].id, it[i].len));
	}
	for (size_t i = 0; i < n_it; i++) {
		uint16_t fmt = 2;
		uint64_t count;
		memcpy(it[i].val, &fmt, 2);
		memcpy(&count, it[i].val + 16, 8);
		k.mv_size = it[i].len;
		k.mv_data = it[i].id;
		v.mv_size = 16;
		v.mv_data = it[i].val;
		cr_assert_eq(mdb_put(txn, items, &k, &v, 0), 0);
		v.mv_size = 8;
		v.mv_data = &count;
		if (count)
			cr_assert_eq(mdb_put(txn, refs, &k, &v, 0), 0);
	}
	return n_it;
}

/* Put the items of a schema-4 store back in the schema-2 layout (store.h):
 * each items value u16 fmt=1, u16 flags, u32 dim, float32[dim], built
 * from its vector's records; the vecs and ivecs databases dropped, the
 * counts in refs. */
static void items_to_schema_2(MDB_txn *txn)
{
	static unsigned char rec[8 + 4 * 40000];
	struct raw_item *it = raw_it;
	size_t n_it;
	MDB_dbi items, vecs[2];
	MDB_cursor *vc[2];
	MDB_val k, v;
	int rc;

	inline_to_schema_3(txn);
	cr_assert_eq(mdb_dbi_open(txn, "items", 0, &items), 0);
	cr_assert_eq(mdb_dbi_open(txn, "vecs", 0, &vecs[0]), 0);
	cr_assert_eq(mdb_dbi_open(txn, "ivecs", 0, &vecs[1]), 0);
	n_it = raw_items(txn, items, 16, 16);
	cr_assert_eq(mdb_cursor_open(txn, vecs[0], &vc[0]), 0);
	cr_assert_eq(mdb_cursor_open(txn, vecs[1], &vc[1]), 0);
	for (size_t i = 0; i < n_it; i++) {
		int sp = sv_store_id_reserved(it[i].id, it[i].len); /* content ids: ivecs */
		uint16_t fmt, flags;
		uint32_t dim;
		uint64_t vid, first;
		unsigned char kb[8];
		MDB_val vk = {8, kb}, vv;
		size_t n = 8;

		memcpy(&fmt, it[i].val, 2);
		memcpy(&flags, it[i].val + 2, 2);
		memcpy(&dim, it[i].val + 4, 4);
		memcpy(&vid, it[i].val + 8, 8);
		cr_assert_eq(fmt, 2);
		cr_assert_leq(dim, 40000);
		first = __builtin_bswap64(vid << 16);
		memcpy(kb, &first, 8);
		for (rc = mdb_cursor_get(vc[sp], &vk, &vv, MDB_SET_KEY); rc == 0;
		     rc = mdb_cursor_get(vc[sp], &vk, &vv, MDB_NEXT)) {
			uint64_t key;
			memcpy(&key, vk.mv_data, 8);
			if (__builtin_bswap64(key) >> 16 != vid)
				break;
			cr_assert_leq(n + vv.mv_size, 8 + 4 * (size_t)dim);
			memcpy(rec + n, vv.mv_data, vv.mv_size);
			n += vv.mv_size;
		}
		cr_assert_eq(n, 8 + 4 * (size_t)dim);
		fmt = 1;
		memcpy(rec, &fmt, 2);
		memcpy(rec + 2, &flags, 2);
		memcpy(rec + 4, &dim, 4);
		k.mv_size = it[i].len;
		k.mv_data = it[i].id;
		v.mv_size = n;
		v.mv_data = rec;
		cr_assert_eq(mdb_put(txn, items, &k, &v, 0), 0);
	}
	mdb_cursor_close(vc[1]);
	mdb_cursor_close(vc[0]);
	cr_assert_eq(mdb_drop(txn, vecs[0], 1), 0);
	cr_assert_eq(mdb_drop(txn, vecs[1], 1), 0);
}

/* Make the store at path a schema-2 store as a schema-2 build left it. */
/* The closed store at `path`, opened with raw LMDB, its meta record saying
 * `schema`: the caller rewrites the rest in *txn, commits and closes. */
static MDB_env *raw_with_schema(MDB_txn **txn, unsigned char schema)
{
	MDB_env *env;
	MDB_dbi meta;
	MDB_val k = {4, "meta"}, v;
	unsigned char rec[64];

	cr_assert_eq(mdb_env_create(&env), 0);
	mdb_env_set_maxdbs(env, 8);
	mdb_env_set_mapsize(env, (size_t)1 << 30);
	cr_assert_eq(mdb_env_open(env, path, 0, 0600), 0);
	cr_assert_eq(mdb_txn_begin(env, NULL, 0, txn), 0);
	cr_assert_eq(mdb_dbi_open(*txn, "meta", 0, &meta), 0);
	cr_assert_eq(mdb_get(*txn, meta, &k, &v), 0);
	cr_assert_leq(v.mv_size, sizeof rec);
	memcpy(rec, v.mv_data, v.mv_size);
	rec[4] = schema;
	v.mv_data = rec;
	cr_assert_eq(mdb_put(*txn, meta, &k, &v, 0), 0);
	return env;
}

static void downgrade_to_schema_2(void)
{
	MDB_txn *txn;
	MDB_env *env = raw_with_schema(&txn, 2);

	items_to_schema_2(txn);
	cr_assert_eq(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

/* A schema-2 store (vectors inside the items values) opens as schema 3,
 * in several commits, every vector and flag as it was; then it behaves as
 * any: replacing, deleting and trimming free their vectors. */
Test(store, schema_2_store_moves_its_vectors_at_open)
{
	struct sv_store_opts o = opts(D_IN, D_OUT);
	sv_store *st = open_ok(&o);
	sv_store_read *r;
	sv_store_txn *t;
	struct sv_store_item it;
	float x[D_IN], y[D_IN];
	uint32_t n = 9000; /* more than two migration commits */

	for (uint32_t k = 0; k < n; k += 1000)
		put_items(st, k, 1000);
	inline_pairs(st, 1, 20);
	sv_store_close(st);
	downgrade_to_schema_2();
	{
		/* the fixture is what a schema-2 build reads: one value an item */
		MDB_env *env;
		MDB_txn *txn;
		MDB_dbi dbi;
		env = raw_read(&txn);
		cr_assert_eq(mdb_dbi_open(txn, "vecs", 0, &dbi), MDB_NOTFOUND);
		mdb_txn_abort(txn);
		mdb_env_close(env);
	}

	st = open_ok(&o);
	cr_assert_eq(sv_store_read_begin(st, &r), 0);
	for (uint32_t k = 0; k < n; k++) {
		char id[32];
		cr_assert_eq(sv_store_item_read(r, id, (size_t)item_id(id, k), y, &it), 0, "%u", k);
		fill(x, D_IN, k);
		cr_assert_eq(memcmp(x, y, sizeof x), 0, "item %u differs", k);
		cr_assert_eq(it.flags, (uint16_t)k);
	}
	cr_assert_eq(sv_store_item_read(r, "~v5", 3, y, &it), 0);
	cr_assert_eq(it.flags, SV_STORE_ITEM_INLINE);
	sv_store_read_end(r);
	vecs_agree(st, n + 21);
	put_items(st, 0, 10);   /* replaced */
	put_items(st, n, 10);   /* new, after the migrated ids */
	cr_assert_eq(sv_store_txn_begin(st, &t), 0);
	cr_assert_eq(sv_store_item_del(t, "item-20", 7), 0);
	cr_assert_eq(sv_store_txn_commit(t), 0);
	checkpoint(st, 1000, 1); /* applied_seq 100000: the rows may go */
	cr_assert_eq(trim(st, 11, 0, 100), 10);
	vecs_agree(st, n + 10 - 1 + 21 - 10);
	sv_store_close(st);
	st = open_ok(&o); /* now schema 4: opens without migrating */
	cr_assert_eq(sv_store_read_begin(st, &r), 0);
	check_item(r, n + 5);
	check_item(r, 8999);
	cr_assert_eq(sv_store_item_get(r, "item-20", 7, y), SV_ERR_NOTFOUND);
	sv_store_read_end(r);
	sv_store_close(st);
}

Test(store, schema_1_store_gets_counts_and_windows_at_open)
{
	struct sv_store_opts o = opts(D_IN, D_OUT);
	sv_store *st = open_ok(&o);
	struct sv_store_producer pr;
	sv_store_read *r;
	uint64_t seq;
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;

	inline_pairs(st, 1, 30);
	for (uint64_t c = 1; c <= 5; c++)
		cr_assert_eq(capp(st, "cam", 10 * c, 7000, &seq), 0);
	checkpoint(st, 1000, 1);
	sv_store_close(st);
	/* back to schema 1: no refs, no producers */
	env = raw_with_schema(&txn, 1);
	items_to_schema_2(txn); /* schema 1 kept vectors in the items values too */
	cr_assert_eq(mdb_dbi_open(txn, "refs", 0, &dbi), 0);
	cr_assert_eq(mdb_drop(txn, dbi, 0), 0);
	cr_assert_eq(mdb_dbi_open(txn, "producers", 0, &dbi), 0);
	cr_assert_eq(mdb_drop(txn, dbi, 0), 0);
	{
		/* and the checkpoint as one whole record under an 8-byte key */
		static unsigned char whole[1 << 17];
		size_t n = 0;
		uint64_t ver = 0;
		MDB_cursor *c;
		MDB_val mk, mv;
		cr_assert_eq(mdb_dbi_open(txn, "models", 0, &dbi), 0);
		cr_assert_eq(mdb_cursor_open(txn, dbi, &c), 0);
		while (mdb_cursor_get(c, &mk, &mv, MDB_NEXT) == 0) {
			cr_assert_eq(mk.mv_size, 12);
			cr_assert_leq(n + mv.mv_size, sizeof whole);
			memcpy(&ver, mk.mv_data, 8);
			memcpy(whole + n, mv.mv_data, mv.mv_size);
			n += mv.mv_size;
		}
		mdb_cursor_close(c);
		cr_assert_gt(n, 2000, "the record came in chunks");
		cr_assert_eq(mdb_drop(txn, dbi, 0), 0);
		mk.mv_size = 8;
		mk.mv_data = &ver;
		mv.mv_size = n;
		mv.mv_data = whole;
		cr_assert_eq(mdb_put(txn, dbi, &mk, &mv, 0), 0);
	}
	cr_assert_eq(mdb_txn_commit(txn), 0);
	mdb_env_close(env);

	st = open_ok(&o);
	cr_assert_eq(sv_store_read_begin(st, &r), 0);
	cr_assert_eq(sv_store_producer_get(r, "cam", 3, &pr), 0);
	cr_assert_eq(pr.hwm, 50);
	{
		struct sv_store_model m;
		float W[D_IN * D_OUT], want[D_IN * D_OUT];
		cr_assert_eq(sv_store_model_get(r, 0, &m), 0, "a whole record reads too");
		sv_store_model_weights(st, &m, W);
		fill(want, D_IN * D_OUT, 1000);
		cr_assert_eq(memcmp(W, want, sizeof W), 0);
		cr_assert_eq(m.applied_seq, 100000);
	}
	sv_store_read_end(r);
	cr_assert_eq(capp(st, "cam", 40, 8000, &seq), SV_ERR_DUPLICATE);
	cr_assert_eq(capp(st, "cam", 41, 8000, &seq), 0);
	/* the counts came back: trimming frees exactly the unreferenced */
	cr_assert_eq(trim(st, 11, 0, 1000), 10);
	cr_assert(!has_item(st, "~v10") && has_item(st, "~v11"));
	vecs_agree(st, 21);
	sv_store_close(st);
	st = open_ok(&o); /* now schema 4: opens without migrating */
	sv_store_close(st);
}

/* A schema-3 store (inline items' counts in refs) opens as schema 4 in
 * several commits: each inline item's value carries its count, refs is
 * empty, and trimming frees exactly the items no retained row names. */
Test(store, schema_3_store_moves_its_counts_at_open)
{
	struct sv_store_opts o = opts(D_IN, D_OUT);
	sv_store *st = open_ok(&o);
	sv_store_read *r;
	struct sv_store_stat s;
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_stat ms;
	float x[D_IN], y[D_IN];
	uint32_t n = 9000; /* inline items ~v1..~v9001: three migration commits */

	put_items(st, 0, 100);
	inline_pairs(st, 1, n);
	checkpoint(st, 1000, 1); /* applied_seq 100000: the rows may go */
	sv_store_close(st);
	env = raw_with_schema(&txn, 3);
	cr_assert_eq(inline_to_schema_3(txn), n + 1);
	cr_assert_eq(mdb_txn_commit(txn), 0);
	mdb_env_close(env);

	st = open_ok(&o);
	sv_store_close(st);
	env = raw_read(&txn);
	cr_assert_eq(mdb_dbi_open(txn, "refs", 0, &dbi), 0);
	cr_assert_eq(mdb_stat(txn, dbi, &ms), 0);
	cr_assert_eq(ms.ms_entries, 0, "the counts left refs");
	{
		MDB_val k = {5, "~v123"}, v;
		uint64_t count;
		cr_assert_eq(mdb_dbi_open(txn, "items", 0, &dbi), 0);
		cr_assert_eq(mdb_get(txn, dbi, &k, &v), 0);
		cr_assert_eq(v.mv_size, 24);
		memcpy(&count, (const char *)v.mv_data + 16, 8);
		cr_assert_eq(count, 2, "rows 122 and 123 name ~v123");
	}
	mdb_txn_abort(txn);
	mdb_env_close(env);

	st = open_ok(&o); /* now schema 4: opens without migrating */
	s = stat_of(st);
	cr_assert_eq(s.items, 100 + n + 1);
	cr_assert_eq(s.inline_items, n + 1);
	cr_assert_eq(sv_store_read_begin(st, &r), 0);
	cr_assert_eq(sv_store_item_get(r, "~v4000", 6, y), 0);
	fill(x, D_IN, 4000);
	cr_assert_eq(memcmp(x, y, sizeof x), 0);
	sv_store_read_end(r);
	/* rows 1..4000 go: ~v1..~v4000 with them, ~v4001 (row 4001) stays */
	cr_assert_eq(trim(st, 4001, 0, 100000), 4000);
	cr_assert(!has_item(st, "~v4000") && has_item(st, "~v4001"));
	cr_assert(has_item(st, "item-5"));
	cr_assert_eq(stat_of(st).inline_items, n + 1 - 4000);
	/* a new row (9001) naming two migrated items keeps them past their old rows */
	inline_pairs(st, 5000, 1);
	cr_assert_eq(trim(st, n + 1, 0, 100000), n - 4000);
	cr_assert(has_item(st, "~v5000") && has_item(st, "~v5001") && !has_item(st, "~v9001"));
	vecs_agree(st, 100 + 2);
	sv_store_close(st);
}

/* A mark commits with its group, an aborted group leaves the old value, and
 * a group replayed after the map grew keeps it. */
Test(store, mark_commits_with_its_group)
{
	struct sv_store_opts o = opts(D_IN, D_OUT);
	sv_store_read *r;
	sv_store_txn *t;
	uint64_t v = 0;
	float x[D_IN];
	char id[32];
	sv_store *st;

	o.map_size = 1 << 20; /* the items below grow it, replaying the group */
	st = open_ok(&o);
	cr_assert_eq(sv_store_read_begin(st, &r), 0);
	cr_assert_eq(sv_store_mark_get(r, "js.pairs", &v), SV_ERR_NOTFOUND);
	cr_assert_eq(sv_store_mark_get(r, "", &v), -EINVAL);
	sv_store_read_end(r);

	cr_assert_eq(sv_store_txn_begin(st, &t), 0);
	cr_assert_eq(sv_store_mark_put(t, "js.pairs", 41), 0);
	cr_assert_eq(sv_store_mark_put(t, "js.pairs", 42), 0);
	for (uint32_t k = 0; k < 600; k++) { /* 1.9 MB: at least one growth */
		fill(x, D_IN, k);
		cr_assert_eq(sv_store_item_put(t, id, (size_t)item_id(id, k), x, 0), 0);
	}
	cr_assert_eq(sv_store_txn_commit(t), 0, "%s", sv_store_errmsg(st));
	cr_assert_gt(sv_store_map_size(st), (size_t)1 << 20);

	cr_assert_eq(sv_store_txn_begin(st, &t), 0);
	cr_assert_eq(sv_store_mark_put(t, "js.pairs", 99), 0);
	sv_store_txn_abort(t);

	cr_assert_eq(sv_store_read_begin(st, &r), 0);
	cr_assert_eq(sv_store_mark_get(r, "js.pairs", &v), 0);
	cr_assert_eq(v, 42);
	cr_assert_eq(sv_store_mark_get(r, "other", &v), SV_ERR_NOTFOUND);
	sv_store_read_end(r);
	sv_store_close(st);

	st = open_ok(&o); /* durable */
	cr_assert_eq(sv_store_read_begin(st, &r), 0);
	cr_assert_eq(sv_store_mark_get(r, "js.pairs", &v), 0);
	cr_assert_eq(v, 42);
	sv_store_read_end(r);
	sv_store_close(st);
}
