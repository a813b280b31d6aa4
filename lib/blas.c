/* blas.c - every cblas call of libsimverify (see sv/blas.h): float32
 * row-major GEMM, GEMV, SYRK and SYMM, and the threads they run on.
 *
 * Threading.  OpenBLAS's own threads split the step's small, skinny products
 * (512 x 64 x 784 and the like) poorly: on two cores they reach about 1.2x
 * one core, while two single-threaded calls on halves of the output run at
 * 2x.  So once sv_blas_set_threads(n) is called, OpenBLAS runs
 * single-threaded and this file splits each large product into n parts of
 * the output itself, on a fixed pool of n - 1 workers plus the caller.
 *
 * The partition depends only on the shape and n, never on timing: when the
 * pool is busy (another thread is in the middle of a split product), the
 * caller runs the very same parts one after another.  So results are
 * bit-identical from run to run and between concurrent callers.
 *
 * Workers wait for work by polling for up to YIELD_NS (the gaps between the
 * products of one training step are shorter), yielding the CPU to any other
 * runnable thread after SPIN_NS, and then sleep on a condition variable.
 */
#include <assert.h>
#include <cblas.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "sv/blas.h"

/* A product with fewer multiply-adds than this runs in one piece. */
#define SPLIT_MIN_MADDS (1u << 20)
/* Part boundaries are multiples of this many rows or columns. */
#define ALIGN 16
#define MAX_PARTS 64
/* An idle worker spins on the CPU for SPIN_NS, then keeps polling but
 * yields to any other runnable thread until YIELD_NS, then sleeps. */
#define SPIN_NS 20000
#define YIELD_NS 500000

static struct {
	pthread_mutex_t use;   /* held by the caller running a split job */
	pthread_mutex_t mu;    /* guards sleepers, with cv */
	pthread_cond_t cv;
	_Atomic int parts;     /* 0 until sv_blas_set_threads: OpenBLAS threads itself */
	int nworkers;          /* under use */
	pthread_t tid[MAX_PARTS];
	int sleepers;
	_Atomic int quit;
	_Atomic uint64_t gen;  /* bumped once per job */
	_Atomic int pending;   /* workers still running the current job */
	sv_blas_part_fn fn;    /* the current job: fn(arg, part) for part < job_parts */
	void *arg;
	int job_parts;
	uint64_t start_gen;    /* gen when the workers were started */
	int atfork;            /* the fork handler is registered */
} pool = {
	.use = PTHREAD_MUTEX_INITIALIZER,
	.mu = PTHREAD_MUTEX_INITIALIZER,
	.cv = PTHREAD_COND_INITIALIZER,
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

static void *worker(void *p)
{
	const int part = (int)(intptr_t)p;
	uint64_t seen = pool.start_gen;

	pthread_setname_np(pthread_self(), "sv-math");
	for (;;) {
		uint64_t t0 = now_ns(), g;
		unsigned spins = 0;

		while ((g = atomic_load_explicit(&pool.gen, memory_order_acquire)) == seen) {
			if (++spins % 64 != 0) {
				cpu_relax();
				continue;
			}
			uint64_t dt = now_ns() - t0;
			if (dt > YIELD_NS)
				break;
			if (dt > SPIN_NS)
				sched_yield();
		}
		if (g == seen) {
			pthread_mutex_lock(&pool.mu);
			pool.sleepers++;
			while ((g = atomic_load(&pool.gen)) == seen)
				pthread_cond_wait(&pool.cv, &pool.mu);
			pool.sleepers--;
			pthread_mutex_unlock(&pool.mu);
		}
		if (atomic_load(&pool.quit))
			return NULL;
		seen = g;
		if (part < pool.job_parts)
			pool.fn(pool.arg, part);
		atomic_fetch_sub_explicit(&pool.pending, 1, memory_order_acq_rel);
	}
}

/* fn(arg, 0) .. fn(arg, parts - 1): in parallel when the pool is free,
 * one after another in this thread otherwise (sv/blas.h). */
void sv_blas_run_parts(int parts, sv_blas_part_fn fn, void *arg)
{
	int pooled = parts > 1 && pthread_mutex_trylock(&pool.use) == 0;

	if (pooled && pool.nworkers + 1 < parts) {
		pthread_mutex_unlock(&pool.use);
		pooled = 0;
	}
	if (!pooled) {
		for (int k = 0; k < parts; k++)
			fn(arg, k);
		return;
	}
	pool.fn = fn;
	pool.arg = arg;
	pool.job_parts = parts;
	atomic_store_explicit(&pool.pending, pool.nworkers, memory_order_relaxed);
	atomic_fetch_add_explicit(&pool.gen, 1, memory_order_release);
	pthread_mutex_lock(&pool.mu);
	if (pool.sleepers)
		pthread_cond_broadcast(&pool.cv);
	pthread_mutex_unlock(&pool.mu);
	fn(arg, 0);
	for (unsigned spins = 0; atomic_load_explicit(&pool.pending, memory_order_acquire);)
		if (++spins % 1024 == 0)
			sched_yield();
		else
			cpu_relax();
	pthread_mutex_unlock(&pool.use);
}

/* Bounds of part k of [0, n) in P equal parts, at multiples of ALIGN. */
static size_t cut(size_t n, int k, int P)
{
	size_t b = n * (size_t)k / (size_t)P;

	b = (b + ALIGN / 2) / ALIGN * ALIGN;
	return k == P || b > n ? n : b;
}

/* How many parts an m x n x k product gets. */
static int nparts(size_t M, size_t N, size_t K)
{
	int P = atomic_load_explicit(&pool.parts, memory_order_relaxed);
	size_t wide = M > N ? M : N;

	if (P <= 1 || (double)M * N * K < SPLIT_MIN_MADDS)
		return 1;
	while (P > 1 && wide / (size_t)P < ALIGN)
		P--;
	return P;
}

static void gemm1(int transA, int transB, size_t M, size_t N, size_t K, float alpha, const float *A,
                  size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc)
{
	if (M == 0 || N == 0)
		return;
	cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans,
	            transB ? CblasTrans : CblasNoTrans, (blasint)M, (blasint)N, (blasint)K, alpha,
	            A, (blasint)lda, B, (blasint)ldb, beta, C, (blasint)ldc);
}

struct gemm_job {
	int transA, transB, P, by_rows;
	size_t M, N, K, lda, ldb, ldc;
	float alpha, beta;
	const float *A, *B;
	float *C;
};

/* Part k: a block of C's rows (op(A)'s rows) or of its columns (op(B)'s). */
static void gemm_part(void *p, int k)
{
	const struct gemm_job *j = p;

	if (j->by_rows) {
		size_t r0 = cut(j->M, k, j->P), r1 = cut(j->M, k + 1, j->P);
		const float *A = j->transA ? j->A + r0 : j->A + r0 * j->lda;
		gemm1(j->transA, j->transB, r1 - r0, j->N, j->K, j->alpha, A, j->lda, j->B, j->ldb,
		      j->beta, j->C + r0 * j->ldc, j->ldc);
	} else {
		size_t c0 = cut(j->N, k, j->P), c1 = cut(j->N, k + 1, j->P);
		const float *B = j->transB ? j->B + c0 * j->ldb : j->B + c0;
		gemm1(j->transA, j->transB, j->M, c1 - c0, j->K, j->alpha, j->A, j->lda, B, j->ldb,
		      j->beta, j->C + c0, j->ldc);
	}
}

void sv_blas_gemm(int transA, int transB, size_t M, size_t N, size_t K, float alpha, const float *A,
                  size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc)
{
	if (M == 0 || N == 0)
		return;
	if (K == 0) {
		for (size_t i = 0; i < M; i++)
			for (size_t j = 0; j < N; j++)
				C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
		return;
	}
	assert(lda >= (transA ? M : K) && ldb >= (transB ? K : N) && ldc >= N);
	struct gemm_job j = {transA, transB, nparts(M, N, K), M >= N, M, N, K, lda, ldb, ldc,
	                     alpha, beta, A, B, C};
	sv_blas_run_parts(j.P, gemm_part, &j);
}

void sv_blas_gemv(size_t M, size_t N, float alpha, const float *A, size_t lda, const float *x,
                  float beta, float *y)
{
	if (M == 0)
		return;
	assert(lda >= N);
	cblas_sgemv(CblasRowMajor, CblasNoTrans, (blasint)M, (blasint)N, alpha, A, (blasint)lda, x,
	            1, beta, y, 1);
}

/* Row r_k of an upper-triangle split into P slices of equal area:
 * (N - r_k)^2 = N^2 (1 - k / P). */
static size_t tri_cut(size_t n, int k, int P)
{
	if (k >= P)
		return n;
	double r = (double)n * (1.0 - __builtin_sqrt(1.0 - (double)k / P));
	size_t b = ((size_t)r + ALIGN / 2) / ALIGN * ALIGN;
	return b > n ? n : b;
}

/* For SYRK: A is n x w (C = A A^T is n x n); for SYMM: A is the n x n
 * symmetric matrix and B, C are n x w. */
struct sym_job {
	int P;
	size_t n, w, lda, ldb, ldc;
	float alpha, beta;
	const float *A, *B;
	float *C;
};

/* SYRK part k: rows [a, b) of the upper triangle, that is the diagonal
 * block (SYRK) and the block right of it (GEMM with A's rows b.. ). */
static void syrk_part(void *p, int k)
{
	const struct sym_job *j = p;
	size_t a = tri_cut(j->n, k, j->P), b = tri_cut(j->n, k + 1, j->P);

	if (b == a)
		return;
	cblas_ssyrk(CblasRowMajor, CblasUpper, CblasNoTrans, (blasint)(b - a), (blasint)j->w,
	            j->alpha, j->A + a * j->lda, (blasint)j->lda, j->beta, j->C + a * j->ldc + a,
	            (blasint)j->ldc);
	gemm1(0, 1, b - a, j->n - b, j->w, j->alpha, j->A + a * j->lda, j->lda, j->A + b * j->lda,
	      j->lda, j->beta, j->C + a * j->ldc + b, j->ldc);
}

void sv_blas_syrk_upper(size_t N, size_t K, float alpha, const float *A, size_t lda, float beta,
                        float *C, size_t ldc)
{
	if (N == 0)
		return;
	if (K == 0) {
		for (size_t i = 0; i < N; i++)
			for (size_t j = i; j < N; j++)
				C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
		return;
	}
	assert(lda >= K && ldc >= N);
	struct sym_job j = {nparts(N, N, K / 2 + 1), N, K, lda, 0, ldc, alpha, beta, A, NULL, C};
	sv_blas_run_parts(j.P, syrk_part, &j);
}

/* SYMM part k: rows [a, b) of C, from the three blocks of A's rows a..b-1
 * as the upper triangle stores them: columns < a (read as A[0..a, a..b]^T),
 * the symmetric diagonal block, and columns >= b. */
static void symm_part(void *p, int k)
{
	const struct sym_job *j = p;
	size_t a = cut(j->n, k, j->P), b = cut(j->n, k + 1, j->P), w = j->w;
	float *C = j->C + a * j->ldc;
	float beta = j->beta;

	if (b == a)
		return;
	if (a > 0) {
		gemm1(1, 0, b - a, w, a, j->alpha, j->A + a, j->lda, j->B, j->ldb, beta, C, j->ldc);
		beta = 1.0f;
	}
	cblas_ssymm(CblasRowMajor, CblasLeft, CblasUpper, (blasint)(b - a), (blasint)w, j->alpha,
	            j->A + a * j->lda + a, (blasint)j->lda, j->B + a * j->ldb, (blasint)j->ldb, beta,
	            C, (blasint)j->ldc);
	if (j->n > b)
		gemm1(0, 0, b - a, w, j->n - b, j->alpha, j->A + a * j->lda + b, j->lda,
		      j->B + b * j->ldb, j->ldb, 1.0f, C, j->ldc);
}

void sv_blas_symm_upper(size_t M, size_t N, float alpha, const float *A, size_t lda, const float *B,
                        size_t ldb, float beta, float *C, size_t ldc)
{
	if (M == 0 || N == 0)
		return;
	assert(lda >= M && ldb >= N && ldc >= N);
	struct sym_job j = {nparts(M, M, N), M, N, lda, ldb, ldc, alpha, beta, A, B, C};
	sv_blas_run_parts(j.P, symm_part, &j);
}

/* Stop and join the workers; pool.use is held. */
static void stop_workers(void)
{
	atomic_store(&pool.quit, 1);
	atomic_fetch_add(&pool.gen, 1); /* ends the spinning */
	pthread_mutex_lock(&pool.mu);
	pthread_cond_broadcast(&pool.cv); /* and the sleeping */
	pthread_mutex_unlock(&pool.mu);
	for (int i = 0; i < pool.nworkers; i++)
		pthread_join(pool.tid[i], NULL);
	pool.nworkers = 0;
	atomic_store(&pool.quit, 0);
}

/* A forked child has no workers: it runs the same parts inline. */
static void atfork_child(void)
{
	pool.nworkers = 0;
	pthread_mutex_init(&pool.use, NULL);
	pthread_mutex_init(&pool.mu, NULL);
	pthread_cond_init(&pool.cv, NULL);
}

void sv_blas_set_threads(int n)
{
	n = n < 1 ? 1 : n > MAX_PARTS ? MAX_PARTS : n;
	pthread_mutex_lock(&pool.use);
	if (!pool.atfork)
		pool.atfork = pthread_atfork(NULL, NULL, atfork_child) == 0;
	if (pool.parts != n) {
		stop_workers();
		openblas_set_num_threads(1);
		pool.parts = n;
		pool.start_gen = atomic_load(&pool.gen);
		for (int i = 1; i < n; i++) {
			if (pthread_create(&pool.tid[pool.nworkers], NULL, worker,
			                   (void *)(intptr_t)i) != 0)
				break; /* fewer workers: sv_blas_run_parts runs parts inline */
			pool.nworkers++;
		}
	}
	pthread_mutex_unlock(&pool.use);
}

int sv_blas_threads(void)
{
	int parts = atomic_load_explicit(&pool.parts, memory_order_relaxed);

	if (parts)
		return parts;
	int n = openblas_get_num_threads();
	return n < 1 ? 1 : n;
}
