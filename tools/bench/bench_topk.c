/* bench_topk.c - `sv-bench topk`: the 1:N top-k engine (sv/topk.h) against
 * its lower bound measured in the same run.
 *
 * For each N (default 100000 and 1000000) it fills a projection cache with N
 * random items (d_in -> d_out), then times
 *   build:   sv_topk_cache_reserve() + sv_topk_cache_add() over all items in
 *            batches, against the same batches through a raw cblas_sgemm
 *            (the projection alone, into a reused buffer: the engine also
 *            normalizes, indexes ids and first-touches N x d_out fresh floats);
 *   single:  one query at a time, against a raw cblas_sgemv of the N x d_out
 *            matrix plus a plain k-heap selection over the score row;
 *   batched: --batch queries per call, against one raw cblas_sgemm of shape
 *            Q x N x d_out plus the same selection over each score row.
 * The reference scores the very same embeddings (copied out of the cache into
 * one contiguous N x d_out matrix), and the run checks that both agree.
 * Every figure is printed as a ratio to its reference; the reference's own
 * time is shown as context.  BLAS threads: --threads (default 1) for both;
 * with one thread the clock is the thread's CPU time (robust to the other
 * processes of a shared machine), else wall time.
 *
 * Leaves out: the daemon and the wire (sv-bench query), rebuild concurrency.
 */
#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "sv/blas.h"
#include "sv/error.h"
#include "sv/topk.h"

#define BUILD_BATCH 8192
#define ID_LEN 12

struct opts {
	long n; /* 0: both default sizes */
	long d_in, d_out, k, batch, reps, threads;
	int json;
};

/* With one BLAS thread all the work runs on this thread, so its CPU time
 * is the figure least disturbed by other processes on a shared machine;
 * with more, wall time (bench_now_ns). */
static int use_cpu_clock;

static uint64_t clock_ns(void)
{
	struct timespec ts;

	if (!use_cpu_clock)
		return bench_now_ns();
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t rng(uint64_t *s)
{
	*s += 0x9e3779b97f4a7c15ull;
	uint64_t z = *s;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void fill(float *a, size_t n, uint64_t *s)
{
	for (size_t i = 0; i < n; i++)
		a[i] = (float)((double)(rng(s) >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static void make_id(uint8_t *id, size_t i)
{
	snprintf((char *)id, ID_LEN + 1, "item%08u", (unsigned)(i % 100000000u));
}

/* ---- the reference: raw sgemm + plain heap selection ------------------------ */

struct cand {
	float s;
	uint32_t row;
};

static int worse(struct cand a, struct cand b)
{
	return a.s < b.s || (a.s == b.s && a.row > b.row);
}

static void sift_down(struct cand *h, size_t n, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, w = i;
		if (l < n && worse(h[l], h[w]))
			w = l;
		if (l + 1 < n && worse(h[l + 1], h[w]))
			w = l + 1;
		if (w == i)
			return;
		struct cand t = h[i];
		h[i] = h[w];
		h[w] = t;
		i = w;
	}
}

static int cmp_best(const void *pa, const void *pb)
{
	struct cand a = *(const struct cand *)pa, b = *(const struct cand *)pb;
	return worse(b, a) ? -1 : worse(a, b);
}

/* Top-k of one score row: heapify the first k, then replace the weakest. */
static void heap_select(const float *S, size_t n, size_t k, struct cand *h)
{
	for (size_t j = 0; j < k; j++)
		h[j] = (struct cand){S[j], (uint32_t)j};
	for (size_t i = k / 2; i-- > 0;)
		sift_down(h, k, i);
	for (size_t j = k; j < n; j++)
		if (S[j] > h[0].s) {
			h[0] = (struct cand){S[j], (uint32_t)j};
			sift_down(h, k, 0);
		}
	qsort(h, k, sizeof(*h), cmp_best);
}

struct ref_ctx {
	const float *E;   /* N x d */
	const float *Qe;  /* Q x d */
	float *S;         /* Q x N */
	struct cand *out; /* Q x k */
	size_t n, d, q, k, calls;
};

static void run_ref(void *arg)
{
	struct ref_ctx *r = arg;
	for (size_t c = 0; c < r->calls; c++) {
		const float *Qe = r->Qe + c * r->q * r->d;
		if (r->q == 1) /* the cheapest raw kernel for one query */
			cblas_sgemv(CblasRowMajor, CblasNoTrans, (blasint)r->n, (blasint)r->d, 1.0f,
			            r->E, (blasint)r->d, Qe, 1, 0.0f, r->S, 1);
		else
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)r->q,
			            (blasint)r->n, (blasint)r->d, 1.0f, Qe, (blasint)r->d, r->E,
			            (blasint)r->d, 0.0f, r->S, (blasint)r->n);
		for (size_t i = 0; i < r->q; i++)
			heap_select(r->S + i * r->n, r->n, r->k, r->out + i * r->k);
	}
}

struct topk_ctx {
	struct sv_topk_cache *c;
	const float *Qe;
	struct sv_topk_hit *hits;
	size_t *counts;
	size_t d, q, k, calls;
	int rc;
};

static void run_topk(void *arg)
{
	struct topk_ctx *t = arg;
	for (size_t c = 0; c < t->calls; c++) {
		int rc = sv_topk_cache_query(t->c, t->Qe + c * t->q * t->d, t->q, t->k, t->hits,
		                             t->counts);
		if (rc < 0)
			t->rc = rc;
	}
}

/* ---- one size --------------------------------------------------------------- */

struct result {
	double build_ratio, build_ref_s;
	double single_ratio, single_ref_s;
	double batch_ratio, batch_ref_s;
};

static int fail(const char *what, int rc)
{
	fprintf(stderr, "sv-bench topk: %s: %s\n", what, sv_strerror(rc));
	return 1;
}

/* Build the cache of n items; time it against the bare projection GEMMs. */
static int build(const struct opts *o, size_t n, struct sv_topk_cache **out, struct result *res)
{
	size_t din = (size_t)o->d_in, dout = (size_t)o->d_out;
	uint64_t s = 42;
	float *W = malloc(din * dout * sizeof(float));
	float *X = malloc(BUILD_BATCH * din * sizeof(float));
	float *Z = malloc(BUILD_BATCH * dout * sizeof(float));
	uint8_t *idbuf = malloc((size_t)BUILD_BATCH * (ID_LEN + 1));
	const uint8_t **ids = malloc(BUILD_BATCH * sizeof(*ids));
	size_t *lens = malloc(BUILD_BATCH * sizeof(*lens));
	struct sv_topk_cache *c = NULL;
	double t_add = 0, t_ref = 0;
	int rc = -1;

	if (!W || !X || !Z || !idbuf || !ids || !lens)
		goto out;
	fill(W, din * dout, &s);
	rc = sv_topk_cache_new(W, (uint32_t)din, (uint32_t)dout, 1, &c);
	if (rc < 0)
		goto out;
	/* warm OpenBLAS up (its buffers) outside the timed reference */
	fill(X, BUILD_BATCH * din, &s);
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, BUILD_BATCH, (blasint)dout,
	            (blasint)din, 1.0f, X, (blasint)din, W, (blasint)dout, 0.0f, Z, (blasint)dout);
	/* a rebuild knows N from the store: size the id index once (timed) */
	uint64_t r0 = clock_ns();
	rc = sv_topk_cache_reserve(c, n);
	t_add += (double)(clock_ns() - r0) * 1e-9;
	if (rc < 0)
		goto out;
	for (size_t base = 0; base < n; base += BUILD_BATCH) {
		size_t m = n - base < BUILD_BATCH ? n - base : BUILD_BATCH;
		fill(X, m * din, &s);
		for (size_t i = 0; i < m; i++) {
			ids[i] = idbuf + i * (ID_LEN + 1);
			make_id(idbuf + i * (ID_LEN + 1), base + i);
			lens[i] = ID_LEN;
		}
		uint64_t t0 = clock_ns();
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)m, (blasint)dout,
		            (blasint)din, 1.0f, X, (blasint)din, W, (blasint)dout, 0.0f, Z,
		            (blasint)dout);
		uint64_t t1 = clock_ns();
		rc = sv_topk_cache_add(c, X, m, ids, lens);
		uint64_t t2 = clock_ns();
		if (rc < 0)
			goto out;
		t_ref += (double)(t1 - t0) * 1e-9;
		t_add += (double)(t2 - t1) * 1e-9;
	}
	res->build_ref_s = t_ref;
	res->build_ratio = t_add / t_ref;
	*out = c;
	c = NULL;
	rc = 0;
out:
	sv_topk_cache_release(c);
	free(lens);
	free(ids);
	free(idbuf);
	free(Z);
	free(X);
	free(W);
	return rc;
}

/* Check that the engine and the reference agree on every query of one call. */
static int agree(const struct sv_topk_hit *hits, const size_t *counts, const struct cand *ref,
                 size_t q, size_t k)
{
	for (size_t i = 0; i < q; i++) {
		if (counts[i] != k)
			return 0;
		for (size_t j = 0; j < k; j++) {
			const struct sv_topk_hit *h = &hits[i * k + j];
			const struct cand *r = &ref[i * k + j];
			if (fabsf(h->score - r->s) > 1e-5f)
				return 0;
			if (h->row != r->row && fabsf(h->score - r->s) > 0.0f)
				return 0;
		}
	}
	return 1;
}

/* Time `q` queries per call (calls chosen to last a few ms) both ways. */
static int time_queries(const struct opts *o, struct sv_topk_cache *c, const float *E, size_t n,
                        size_t q, double *ratio, double *ref_per_call)
{
	size_t d = (size_t)o->d_out, k = (size_t)o->k;
	size_t calls = q == 1 ? (n >= 1000000 ? 4 : 16) : 1;
	uint64_t s = 7 + q;
	float *Qe = malloc(calls * q * d * sizeof(float));
	float *S = malloc(q * n * sizeof(float));
	struct cand *out = malloc(q * k * sizeof(*out));
	struct sv_topk_hit *hits = malloc(q * k * sizeof(*hits));
	size_t *counts = malloc(q * sizeof(*counts));
	double *ref_s = malloc((size_t)o->reps * sizeof(double));
	double *ratios = malloc((size_t)o->reps * sizeof(double));
	int rc = 1;

	if (!Qe || !S || !out || !hits || !counts || !ref_s || !ratios) {
		fprintf(stderr, "sv-bench topk: out of memory\n");
		goto done;
	}
	fill(Qe, calls * q * d, &s);
	for (size_t i = 0; i < calls * q; i++) {
		float ss = 0;
		for (size_t j = 0; j < d; j++)
			ss += Qe[i * d + j] * Qe[i * d + j];
		for (size_t j = 0; j < d; j++)
			Qe[i * d + j] /= sqrtf(ss);
	}
	struct ref_ctx r = {E, Qe, S, out, n, d, q, k, calls};
	struct topk_ctx t = {c, Qe, hits, counts, d, q, k, calls, 0};
	/* Alternate the two, one timed run each per rep, so that the load of
	 * this shared machine hits both alike; the ratio is the median of the
	 * per-rep ratios. */
	run_ref(&r);
	run_topk(&t);
	for (long i = 0; i < o->reps; i++) {
		uint64_t t0 = clock_ns();
		run_ref(&r);
		uint64_t t1 = clock_ns();
		run_topk(&t);
		uint64_t t2 = clock_ns();
		ref_s[i] = (double)(t1 - t0) * 1e-9;
		ratios[i] = (double)(t2 - t1) / (double)(t1 - t0);
	}
	if (t.rc < 0) {
		rc = fail("query", t.rc);
		goto done;
	}
	/* the last call of each ran on the same queries */
	if (!agree(hits, counts, out, q, k)) {
		fprintf(stderr, "sv-bench topk: engine and reference disagree (N=%zu, Q=%zu)\n", n,
		        q);
		goto done;
	}
	*ratio = bench_median(ratios, (size_t)o->reps);
	*ref_per_call = bench_median(ref_s, (size_t)o->reps) / (double)calls;
	rc = 0;
done:
	free(ratios);
	free(ref_s);
	free(counts);
	free(hits);
	free(out);
	free(S);
	free(Qe);
	return rc;
}

static int run_size(const struct opts *o, size_t n, struct result *res)
{
	size_t d = (size_t)o->d_out;
	struct sv_topk_cache *c = NULL;
	float *E = NULL;
	int rc = build(o, n, &c, res);

	if (rc != 0)
		return fail("building the cache", rc);
	/* the reference scores the cache's own embeddings, rows in the same order */
	E = malloc(n * d * sizeof(float));
	if (E == NULL) {
		sv_topk_cache_release(c);
		return fail("reference matrix", -ENOMEM);
	}
	for (size_t i = 0; i < n; i++) {
		uint8_t id[ID_LEN + 1];
		make_id(id, i);
		rc = sv_topk_cache_get(c, id, ID_LEN, E + i * d);
		if (rc < 0)
			break;
	}
	if (rc < 0)
		rc = fail("reading embeddings back", rc);
	if (rc == 0)
		rc = time_queries(o, c, E, n, 1, &res->single_ratio, &res->single_ref_s);
	if (rc == 0)
		rc = time_queries(o, c, E, n, (size_t)o->batch, &res->batch_ratio,
		                  &res->batch_ref_s);
	free(E);
	sv_topk_cache_release(c);
	return rc;
}

/* ---- options and output --------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f, "usage: sv-bench topk [--n N] [--d-in D] [--d-out D] [--k K] [--batch Q]\n"
	           "                     [--reps R] [--threads T] [--json]\n"
	           "  --n N        items (default: 100000, then 1000000)\n"
	           "  --d-in D     input dims (default 128)\n"
	           "  --d-out D    embedding dims (default 64)\n"
	           "  --k K        results per query (default 10)\n"
	           "  --batch Q    queries per batched call (default 64)\n"
	           "  --reps R     timed repetitions, median taken (default 9)\n"
	           "  --threads T  BLAS threads for engine and reference alike (default 1)\n"
	           "Figures are ratios engine / reference (raw cblas_sgemv or sgemm + heap selection of\n"
	           "the same shape, same run); target: top-k within 1.2x.\n");
}

static int parse(int argc, char **argv, struct opts *o)
{
	*o = (struct opts){0, 128, 64, 10, 64, 9, 1, 0};
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		long *dst = NULL, lo = 1, hi = 0;
		if (!strcmp(a, "--json")) {
			o->json = 1;
			continue;
		}
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			exit(0);
		}
		if (!strcmp(a, "--n"))
			dst = &o->n, lo = 1000, hi = 100000000;
		else if (!strcmp(a, "--d-in"))
			dst = &o->d_in, hi = 4096;
		else if (!strcmp(a, "--d-out"))
			dst = &o->d_out, hi = 4096;
		else if (!strcmp(a, "--k"))
			dst = &o->k, hi = SV_TOPK_K_MAX;
		else if (!strcmp(a, "--batch"))
			dst = &o->batch, hi = 4096;
		else if (!strcmp(a, "--reps"))
			dst = &o->reps, hi = 1000;
		else if (!strcmp(a, "--threads"))
			dst = &o->threads, hi = 256;
		if (dst == NULL || i + 1 >= argc || bench_parse_long(argv[i + 1], lo, hi, dst)) {
			fprintf(stderr, "sv-bench topk: bad option '%s'\n", a);
			usage(stderr);
			return -1;
		}
		i++;
	}
	if (o->n != 0 && o->k > o->n) {
		fprintf(stderr, "sv-bench topk: --k exceeds --n\n");
		return -1;
	}
	return 0;
}

int bench_topk(int argc, char **argv)
{
	struct opts o;
	size_t sizes[2] = {100000, 1000000};
	size_t n_sizes = 2;
	struct result res[2];
	struct bench_json j;

	if (parse(argc, argv, &o) < 0)
		return 2;
	if (o.n) {
		sizes[0] = (size_t)o.n;
		n_sizes = 1;
	}
	sv_blas_set_threads((int)o.threads);
	use_cpu_clock = o.threads == 1;
	if (!o.json)
		printf("sv-bench topk: d_in %ld, d_out %ld, k %ld, batch %ld, %ld BLAS thread(s), "
		       "median of %ld paired runs, %s time\n"
		       "ratio = engine / reference; reference = raw cblas_sgemv/sgemm (+ k-heap "
		       "selection) of the same shape, same run; target <= 1.2\n",
		       o.d_in, o.d_out, o.k, o.batch, o.threads, o.reps,
		       use_cpu_clock ? "thread CPU" : "wall");
	for (size_t i = 0; i < n_sizes; i++) {
		if (run_size(&o, sizes[i], &res[i]) != 0)
			return 1;
		if (o.json)
			continue;
		printf("N %zu\n", sizes[i]);
		printf("  build   (all items, one GEMM pass)  ratio %5.2f   reference %9.3f ms\n",
		       res[i].build_ratio, res[i].build_ref_s * 1e3);
		printf("  single  (1 query per call)          ratio %5.2f   reference %9.3f ms "
		       "per query\n",
		       res[i].single_ratio, res[i].single_ref_s * 1e3);
		printf("  batched (%3ld queries per call)      ratio %5.2f   reference %9.3f ms "
		       "per call\n",
		       o.batch, res[i].batch_ratio, res[i].batch_ref_s * 1e3);
		fflush(stdout);
	}
	if (o.json) {
		char key[64];
		bench_json_begin(&j);
		bench_json_str(&j, "bench", "topk");
		bench_json_int(&j, "d_in", o.d_in);
		bench_json_int(&j, "d_out", o.d_out);
		bench_json_int(&j, "k", o.k);
		bench_json_int(&j, "batch", o.batch);
		bench_json_int(&j, "threads", o.threads);
		bench_json_str(&j, "clock", use_cpu_clock ? "thread_cpu" : "wall");
		for (size_t i = 0; i < n_sizes; i++) {
#define KEY(name) (snprintf(key, sizeof(key), "n%zu_%s", sizes[i], name), key)
			bench_json_num(&j, KEY("build_ratio"), res[i].build_ratio);
			bench_json_num(&j, KEY("build_ref_ms"), res[i].build_ref_s * 1e3);
			bench_json_num(&j, KEY("single_ratio"), res[i].single_ratio);
			bench_json_num(&j, KEY("single_ref_ms"), res[i].single_ref_s * 1e3);
			bench_json_num(&j, KEY("batch_ratio"), res[i].batch_ratio);
			bench_json_num(&j, KEY("batch_ref_ms"), res[i].batch_ref_s * 1e3);
#undef KEY
		}
		bench_json_end(&j);
	}
	return 0;
}
