/* bench_rebuild.c - `sv-bench rebuild`: one top-k cache rebuild from a real
 * store, against the bare sgemm of the same projection, in the same run.
 *
 * It writes --items N random d_in-float items into a fresh store under --dir
 * (SYNC_NONE, groups of 8192, progress on stderr), keeping the same vectors
 * as one contiguous N x d_in matrix in memory.  Then, --reps times,
 * alternating:
 *   rebuild: what the daemon's cache thread does (daemon/topk_cache.c):
 *            sv_topk_cache_new, a store read transaction, sv_topk_cache_load
 *            (walk, copy out of the map, one GEMM per 1024 rows, normalize,
 *            index the ids), end of the read, release;
 *   sgemm:   one cblas_sgemm of the N x d_in matrix by W (d_in x d_out) into
 *            an N x d_out buffer: the projection alone, from memory.
 *   read:    the rebuild's store part alone: the same walk and copies.
 * The first rebuild warms up, untimed in those figures: it has no earlier
 * walk's trail to prefetch from (lib/store.c) and no released cache's rows
 * to reuse (lib/topk.c), as a daemon's first rebuild after its start; it
 * is printed on its own.
 * Printed: the median and range of each, and rebuild/sgemm (target <= 1.5),
 * both in this thread's CPU time (robust to the other processes of a
 * shared machine: BLAS runs single-threaded here, as in the daemon's cache
 * thread) and in wall time.  Also printed: data.mdb bytes per vector
 * (items and inline vectors; the pair log's own rows left out) against the
 * raw d_in * 4 bytes (the vector records of sv/store.h; docs/DAEMON.md).
 *
 * Options: --items N (1000000), --inline N (0: inline pair vectors stored
 * beside the items, as a pair log leaves them, a row naming each two; the
 * rebuild must pass them over), --inline-group P (1024: pairs a commit, as
 * the daemon's group commits at full speed and sv-bench ingest's storage
 * bound: each commit copies the items leaves it touches, so the pages LMDB
 * keeps free grow with it), --shuffle (write the items in a scattered id order, as clients
 * do, instead of in id order: a walk then seeks each vector instead of
 * stepping through them), --d-in N (784), --d-out N (64), --reps R (3),
 * --dir DIR (/tmp), --json.  Memory: about N * d_in * 4 bytes for the matrix
 * plus the store in the page cache (3.1 GB and 4.1 GB at the defaults).
 */
#include <cblas.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "sv/blas.h"
#include "sv/error.h"
#include "sv/store.h"
#include "sv/topk.h"

#define GROUP 8192
#define MAX_REPS 15

struct opts {
	long items, d_in, d_out, reps, inl, inl_group;
	const char *dir;
	int json, shuffle;
};

static uint64_t gcd(uint64_t a, uint64_t b)
{
	while (b) {
		uint64_t t = a % b;
		a = b;
		b = t;
	}
	return a;
}

struct times {
	double cpu, wall;
};

static uint64_t cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static float urand(uint64_t *s)
{
	*s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
	return (float)(*s >> 40) / (float)(1 << 24) - 0.5f;
}

static int fail(const char *what, int rc)
{
	fprintf(stderr, "sv-bench rebuild: %s: %s\n", what, sv_strerror(rc));
	return 1;
}

/* The store of o->items items, their vectors also in X (N x d_in). */
static int make_store(const struct opts *o, const char *path, float *X, sv_store **out)
{
	struct sv_store_opts so;
	sv_store *st = NULL;
	char err[SV_STORE_ERRMSG_MAX];
	uint64_t s = 1;
	size_t n = (size_t)o->items, d = (size_t)o->d_in;
	uint64_t step = 1;
	int rc;

	if (o->shuffle) { /* item i gets id number i * step mod n: a permutation */
		step = 2654435761u % n;
		while (n > 1 && gcd(step, n) != 1)
			step++;
	}
	sv_store_opts_default(&so);
	so.path = path;
	so.d_in = (uint32_t)o->d_in;
	so.d_out = (uint32_t)o->d_out;
	so.sync = SV_STORE_SYNC_NONE;
	so.map_size = (size_t)1 << 30;
	rc = sv_store_open(&st, &so, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "sv-bench rebuild: %s: %s\n", path, err);
		return rc;
	}
	for (size_t base = 0; base < n && rc == 0; base += GROUP) {
		size_t m = n - base < GROUP ? n - base : GROUP;
		sv_store_txn *t = NULL;

		rc = sv_store_txn_begin(st, &t);
		for (size_t i = 0; i < m && rc == 0; i++) {
			float *x = X + (base + i) * d;
			char id[32];
			int len = snprintf(id, sizeof(id), "item-%09zu",
			                   (size_t)((base + i) * step % n));

			for (size_t j = 0; j < d; j++)
				x[j] = urand(&s);
			rc = sv_store_item_put(t, id, (size_t)len, x, 0);
		}
		if (t != NULL) {
			int rc2 = sv_store_txn_commit(t);
			if (rc == 0)
				rc = rc2;
		}
		if (base / GROUP % 16 == 15 || base + m == n)
			fprintf(stderr, "\rsv-bench rebuild: stored %zu of %zu items", base + m, n);
	}
	fprintf(stderr, "\n");
	/* inline pair vectors, which a rebuild must pass over, as a pair log
	 * leaves them: a row naming each two, appended before their puts (as
	 * the daemon does), so they carry their reference counts */
	for (long base = 0; base < o->inl && rc == 0; base += 2 * o->inl_group) {
		sv_store_txn *t = NULL;
		float *x = malloc(2 * d * sizeof(float));

		rc = x == NULL ? -ENOMEM : sv_store_txn_begin(st, &t);
		for (long i = base; i < base + 2 * o->inl_group && i < o->inl && rc == 0; i += 2) {
			char id[2][SV_STORE_INLINE_ID_LEN + 1];
			struct sv_store_pair p = {.len_a = SV_STORE_INLINE_ID_LEN,
			                          .len_b = SV_STORE_INLINE_ID_LEN,
			                          .label = (uint8_t)((i / 2) & 1)};
			uint64_t seq;
			int two = i + 1 < o->inl;

			for (int k = 0; k < 1 + two; k++) {
				for (size_t j = 0; j < d; j++)
					x[k * d + j] = urand(&s);
				sv_store_inline_id(x + k * d, (uint32_t)d, id[k]);
			}
			p.id_a = id[0];
			p.id_b = id[two];
			rc = sv_store_pair_append(t, &p, &seq);
			for (int k = 0; k < 1 + two && rc == 0; k++)
				rc = sv_store_item_put(t, id[k], SV_STORE_INLINE_ID_LEN, x + k * d,
				                       SV_STORE_ITEM_INLINE);
		}
		if (t != NULL) {
			int rc2 = sv_store_txn_commit(t);
			if (rc == 0)
				rc = rc2;
		}
		free(x);
		if (base / (2 * o->inl_group) % 16 == 15 || base + 2 * o->inl_group >= o->inl)
			fprintf(stderr, "\rsv-bench rebuild: stored %ld of %ld inline vectors",
			        base + 2 * o->inl_group < o->inl ? base + 2 * o->inl_group : o->inl,
			        o->inl);
	}
	if (o->inl > 0)
		fprintf(stderr, "\n");
	if (rc == 0)
		rc = sv_store_sync(st);
	if (rc < 0) {
		sv_store_close(st);
		return rc;
	}
	*out = st;
	return 0;
}

static int rebuild_once(sv_store *st, const float *W, const struct opts *o, struct times *t)
{
	struct sv_topk_cache *c = NULL;
	sv_store_read *r = NULL;
	uint64_t c0 = cpu_ns(), w0 = bench_now_ns();
	int rc;

	rc = sv_topk_cache_new(W, (uint32_t)o->d_in, (uint32_t)o->d_out, 1, &c);
	if (rc == 0)
		rc = sv_store_read_begin(st, &r);
	if (rc == 0)
		rc = sv_topk_cache_load(c, r);
	sv_store_read_end(r);
	if (rc == 0 && sv_topk_cache_count(c) != (size_t)o->items)
		rc = SV_ERR_CORRUPT;
	sv_topk_cache_release(c);
	t->cpu = (double)(cpu_ns() - c0) * 1e-9;
	t->wall = (double)(bench_now_ns() - w0) * 1e-9;
	return rc;
}

struct walk {
	float *buf;
	size_t d, n;
};

/* As the rebuild's load: each vector copied by the walk into the next row. */
static float *walk_row(void *ctx)
{
	struct walk *w = ctx;

	return w->buf + (w->n % SV_TOPK_LOAD_ROWS) * w->d;
}

static int walk_item(void *ctx, const void *id, size_t len, const struct sv_store_item *it)
{
	struct walk *w = ctx;

	(void)id;
	(void)len;
	(void)it;
	w->n++;
	return 0;
}

/* The store's part alone: the same walk and copies. */
static int read_once(sv_store *st, const struct opts *o, float *buf, struct times *t)
{
	struct walk w = {.buf = buf, .d = (size_t)o->d_in};
	sv_store_read *r = NULL;
	uint64_t c0 = cpu_ns(), w0 = bench_now_ns();
	int rc = sv_store_read_begin(st, &r);

	if (rc == 0)
		rc = sv_store_stored_walk_to(r, walk_row, walk_item, &w);
	sv_store_read_end(r);
	t->cpu = (double)(cpu_ns() - c0) * 1e-9;
	t->wall = (double)(bench_now_ns() - w0) * 1e-9;
	return rc == 0 && w.n != (size_t)o->items ? SV_ERR_CORRUPT : rc;
}

static void sgemm_once(const float *X, const float *W, float *Z, const struct opts *o,
                       struct times *t)
{
	uint64_t c0 = cpu_ns(), w0 = bench_now_ns();

	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)o->items,
	            (blasint)o->d_out, (blasint)o->d_in, 1.0f, X, (blasint)o->d_in, W,
	            (blasint)o->d_out, 0.0f, Z, (blasint)o->d_out);
	t->cpu = (double)(cpu_ns() - c0) * 1e-9;
	t->wall = (double)(bench_now_ns() - w0) * 1e-9;
}

static int usage(void)
{
	fprintf(stderr, "usage: sv-bench rebuild [--items N] [--inline N] [--inline-group P] "
	                "[--shuffle]\n"
	                "                        [--d-in N] [--d-out N] [--reps R] [--dir DIR] "
	                "[--json]\n");
	return 2;
}

int bench_rebuild(int argc, char **argv)
{
	struct opts o = {.items = 1000000,
	                 .d_in = 784,
	                 .d_out = 64,
	                 .reps = 3,
	                 .inl_group = 1024,
	                 .dir = "/tmp"};
	char path[4096], mdb[4200];
	struct times rb[MAX_REPS], sg[MAX_REPS], rd[MAX_REPS], first;
	double v[8][MAX_REPS];
	struct bench_stat st6[8];
	sv_store *st = NULL;
	float *X = NULL, *W = NULL, *Z = NULL, *buf = NULL;
	struct stat sb;
	size_t log_bytes = 0;
	uint64_t s = 99;
	int rc;

	for (int i = 1; i < argc; i++) {
		long *dst = NULL, lo_ = 1, hi_ = 0;
		if (!strcmp(argv[i], "--json")) {
			o.json = 1;
			continue;
		}
		if (!strcmp(argv[i], "--shuffle")) {
			o.shuffle = 1;
			continue;
		}
		if (!strcmp(argv[i], "--dir") && i + 1 < argc) {
			o.dir = argv[++i];
			continue;
		}
		if (!strcmp(argv[i], "--items"))
			dst = &o.items, hi_ = 100000000;
		else if (!strcmp(argv[i], "--inline"))
			dst = &o.inl, lo_ = 0, hi_ = 100000000;
		else if (!strcmp(argv[i], "--inline-group"))
			dst = &o.inl_group, hi_ = 1000000;
		else if (!strcmp(argv[i], "--d-in"))
			dst = &o.d_in, hi_ = 65536;
		else if (!strcmp(argv[i], "--d-out"))
			dst = &o.d_out, hi_ = 4096;
		else if (!strcmp(argv[i], "--reps"))
			dst = &o.reps, hi_ = MAX_REPS;
		if (dst == NULL || i + 1 >= argc || bench_parse_long(argv[++i], lo_, hi_, dst) < 0)
			return usage();
	}
	sv_blas_set_threads(1);
	snprintf(path, sizeof(path), "%s/sv-bench-rebuild.%ld", o.dir, (long)getpid());
	X = malloc((size_t)o.items * (size_t)o.d_in * sizeof(float));
	W = malloc((size_t)o.d_in * (size_t)o.d_out * sizeof(float));
	Z = malloc((size_t)o.items * (size_t)o.d_out * sizeof(float));
	buf = malloc((size_t)SV_TOPK_LOAD_ROWS * (size_t)o.d_in * sizeof(float));
	if (X == NULL || W == NULL || Z == NULL || buf == NULL) {
		rc = fail("matrices", -ENOMEM);
		goto out;
	}
	for (long i = 0; i < o.d_in * o.d_out; i++)
		W[i] = urand(&s) * 0.1f;
	rc = make_store(&o, path, X, &st);
	if (rc < 0) {
		rc = fail("store", rc);
		goto out;
	}
	snprintf(mdb, sizeof(mdb), "%s/data.mdb", path);
	if (stat(mdb, &sb) != 0)
		sb.st_blocks = 0;
	{ /* the vectors' bytes: the pair log's own rows left out */
		struct sv_store_stat ss;
		sv_store_read *rd0;

		if (sv_store_read_begin(st, &rd0) == 0) {
			if (sv_store_stat(rd0, &ss) == 0)
				log_bytes = ss.log_bytes;
			sv_store_read_end(rd0);
		}
	}
	/* warm OpenBLAS and the page cache outside the timed runs; this first
	 * rebuild also has no store trail and no spare cache rows yet, as a
	 * daemon's first after its start: printed on its own */
	if (rebuild_once(st, W, &o, &first) < 0) {
		rc = fail("rebuild", SV_ERR_CORRUPT);
		goto out;
	}
	sgemm_once(X, W, Z, &o, &sg[0]);
	for (long r = 0; r < o.reps; r++) {
		fprintf(stderr, "\rsv-bench rebuild: repetition %ld of %ld", r + 1, o.reps);
		rc = rebuild_once(st, W, &o, &rb[r]);
		if (rc < 0) {
			rc = fail("rebuild", rc);
			goto out;
		}
		sgemm_once(X, W, Z, &o, &sg[r]);
		rc = read_once(st, &o, buf, &rd[r]);
		if (rc < 0) {
			rc = fail("read", rc);
			goto out;
		}
		v[6][r] = rd[r].cpu / sg[r].cpu;
		v[7][r] = rd[r].wall / sg[r].wall;
		v[0][r] = rb[r].cpu;
		v[1][r] = sg[r].cpu;
		v[2][r] = rb[r].cpu / sg[r].cpu;
		v[3][r] = rb[r].wall;
		v[4][r] = sg[r].wall;
		v[5][r] = rb[r].wall / sg[r].wall;
	}
	fprintf(stderr, "\n");
	for (int k = 0; k < 8; k++)
		bench_stat_of(v[k], (size_t)o.reps, &st6[k]);
	double per_item =
	    ((double)sb.st_blocks * 512.0 - (double)log_bytes) / (double)(o.items + o.inl);
	double raw = (double)o.d_in * 4.0;
	if (o.json) {
		struct bench_json j;
		bench_json_begin(&j);
		bench_json_int(&j, "items", o.items);
		bench_json_int(&j, "d_in", o.d_in);
		bench_json_int(&j, "d_out", o.d_out);
		bench_json_num(&j, "rebuild_cpu_s", st6[0].med);
		bench_json_num(&j, "sgemm_cpu_s", st6[1].med);
		bench_json_num(&j, "ratio_cpu", st6[2].med);
		bench_json_num(&j, "ratio_cpu_lo", st6[2].lo);
		bench_json_num(&j, "ratio_cpu_hi", st6[2].hi);
		bench_json_num(&j, "rebuild_wall_s", st6[3].med);
		bench_json_num(&j, "sgemm_wall_s", st6[4].med);
		bench_json_num(&j, "ratio_wall", st6[5].med);
		bench_json_num(&j, "read_over_sgemm_cpu", st6[6].med);
		bench_json_num(&j, "first_rebuild_cpu_s", first.cpu);
		bench_json_num(&j, "store_bytes_per_item", per_item);
		bench_json_num(&j, "raw_bytes_per_item", raw);
		bench_json_end(&j);
	} else {
		printf("rebuild of %ld items written %s (and %ld inline vectors beside them, %ld "
		       "pairs a commit), %ld -> %ld, 1 BLAS thread, median of %ld [range]\n",
		       o.items, o.shuffle ? "in scattered id order" : "in id order", o.inl,
		       o.inl_group, o.d_in, o.d_out, o.reps);
		printf("  %-5s %-24s %-24s %s\n", "clock", "rebuild s", "bare sgemm s",
		       "rebuild/sgemm (target <= 1.5)");
		for (int k = 0; k < 2; k++) {
			const struct bench_stat *m = st6 + 3 * k;
			printf("  %-5s %6.3f [%6.3f-%6.3f]  %6.3f [%6.3f-%6.3f]  %5.2f [%4.2f-%4.2f]\n",
			       k ? "wall" : "cpu", m[0].med, m[0].lo, m[0].hi, m[1].med, m[1].lo,
			       m[1].hi, m[2].med, m[2].lo, m[2].hi);
		}
		printf("of which the store's walk and copies alone: %.2f [%.2f-%.2f] of the sgemm "
		       "(cpu), %.2f (wall)\n",
		       st6[6].med, st6[6].lo, st6[6].hi, st6[7].med);
		printf("the first rebuild (untimed above: no walk before it to prefetch from, no "
		       "released cache's rows to reuse): %.3f s cpu, %.2f of the median sgemm\n",
		       first.cpu, first.cpu / st6[1].med);
		printf("store: %.0f bytes of data.mdb per vector, raw %.0f: %.3fx (the pair log's "
		       "%zu bytes left out)\n",
		       per_item, raw, per_item / raw, log_bytes);
	}
	rc = 0;
out:
	sv_store_close(st);
	bench_rm_tree(path);
	free(buf);
	free(Z);
	free(W);
	free(X);
	return rc;
}
