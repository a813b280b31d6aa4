/* test_blas.c - sv/blas.h against naive loops (float32 row-major, all four
 * transpose combinations, leading dimensions larger than the width), GEMV, SYRK's
 * upper triangle, and the thread-count setter; then the same three with
 * sv_blas_set_threads(3), large enough to be split across the pool, against
 * naive loops and bit for bit against the same parts run inline (in a forked
 * child, which has no workers). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sv/blas.h"

static uint64_t rng = 12345;

static float frand(void)
{
	rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
	return (float)((double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static void fill(float *a, size_t cnt)
{
	for (size_t i = 0; i < cnt; i++)
		a[i] = frand();
}

/* Relative tolerance: K products of values in [-1, 1] in float32. */
#define TOL(K) (1e-6 * (double)(K) + 1e-6)

Test(blas, gemv_matches_naive_loop)
{
	const size_t M = 300, N = 64, lda = N + 5;
	float *A = malloc(M * lda * sizeof(float)), x[64], y[300], y0[300];

	fill(A, M * lda);
	fill(x, N);
	fill(y, M);
	for (size_t i = 0; i < M; i++)
		y0[i] = y[i];
	sv_blas_gemv(M, N, 2.0f, A, lda, x, 0.5f, y);
	for (size_t i = 0; i < M; i++) {
		double acc = 0.0;
		for (size_t j = 0; j < N; j++)
			acc += (double)A[i * lda + j] * x[j];
		double want = 2.0 * acc + 0.5 * y0[i];
		cr_assert(fabs(y[i] - want) < 2 * TOL(N), "row %zu: %g vs %g", i, y[i], want);
	}
	free(A);
}

Test(blas, gemm_matches_naive_loop_all_transposes)
{
	const size_t M = 37, N = 23, K = 41, pad = 3;
	for (int ta = 0; ta < 2; ta++)
		for (int tb = 0; tb < 2; tb++) {
			size_t lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
			float *A = malloc((ta ? K : M) * lda * sizeof(float));
			float *B = malloc((tb ? N : K) * ldb * sizeof(float));
			float *C = malloc(M * ldc * sizeof(float));
			fill(A, (ta ? K : M) * lda);
			fill(B, (tb ? N : K) * ldb);
			fill(C, M * ldc);
			float *C0 = malloc(M * ldc * sizeof(float));
			for (size_t i = 0; i < M * ldc; i++)
				C0[i] = C[i];
			sv_blas_gemm(ta, tb, M, N, K, 0.5f, A, lda, B, ldb, -2.0f, C, ldc);
			for (size_t i = 0; i < M; i++)
				for (size_t j = 0; j < N; j++) {
					double acc = 0.0;
					for (size_t k = 0; k < K; k++) {
						double a = ta ? A[k * lda + i] : A[i * lda + k];
						double b = tb ? B[j * ldb + k] : B[k * ldb + j];
						acc += a * b;
					}
					double want = 0.5 * acc - 2.0 * C0[i * ldc + j];
					cr_assert(fabs(C[i * ldc + j] - want) < TOL(K),
					          "ta=%d tb=%d (%zu,%zu): %g vs %g", ta, tb, i, j,
					          C[i * ldc + j], want);
				}
			/* padding columns untouched */
			for (size_t i = 0; i < M; i++)
				for (size_t j = N; j < ldc; j++)
					cr_assert_eq(C[i * ldc + j], C0[i * ldc + j]);
			free(A);
			free(B);
			free(C);
			free(C0);
		}
}

Test(blas, gemm_with_zero_k_scales_c)
{
	float C[4] = {1, 2, 3, 4};
	sv_blas_gemm(0, 0, 2, 2, 0, 1.0f, NULL, 1, NULL, 2, 0.0f, C, 2);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(C[i], 0.0f);
	float D[4] = {1, 2, 3, 4};
	sv_blas_gemm(0, 0, 2, 2, 0, 1.0f, NULL, 1, NULL, 2, 2.0f, D, 2);
	cr_assert_eq(D[3], 8.0f);
}

Test(blas, syrk_upper_matches_naive_and_keeps_lower)
{
	const size_t N = 29, K = 13;
	float A[29 * 13], C[29 * 29];
	fill(A, N * K);
	for (size_t i = 0; i < N * N; i++)
		C[i] = 42.0f;
	sv_blas_syrk_upper(N, K, 1.0f, A, K, 0.0f, C, N);
	for (size_t i = 0; i < N; i++)
		for (size_t j = 0; j < N; j++) {
			if (j < i) {
				cr_assert_eq(C[i * N + j], 42.0f);
				continue;
			}
			double acc = 0.0;
			for (size_t k = 0; k < K; k++)
				acc += (double)A[i * K + k] * A[j * K + k];
			cr_assert(fabs(C[i * N + j] - acc) < TOL(K));
		}
}

Test(blas, thread_count_setter_round_trips)
{
	sv_blas_set_threads(1);
	cr_assert_eq(sv_blas_threads(), 1);
	sv_blas_set_threads(2);
	cr_assert_eq(sv_blas_threads(), 2);
	sv_blas_set_threads(0);
	cr_assert_eq(sv_blas_threads(), 1);
	sv_blas_set_threads(-5);
	cr_assert_eq(sv_blas_threads(), 1);
}

Test(blas, symm_upper_reads_only_the_upper_triangle)
{
	const size_t M = 21, N = 9;
	float A[21 * 21], B[21 * 9], C[21 * 9];
	fill(A, M * M);
	fill(B, M * N);
	float full[21 * 21];
	for (size_t i = 0; i < M; i++)
		for (size_t j = 0; j < M; j++)
			full[i * M + j] = j >= i ? A[i * M + j] : A[j * M + i];
	for (size_t i = 0; i < M; i++)
		for (size_t j = 0; j < i; j++)
			A[i * M + j] = 1e30f; /* must not be read */
	sv_blas_symm_upper(M, N, 1.0f, A, M, B, N, 0.0f, C, N);
	for (size_t i = 0; i < M; i++)
		for (size_t j = 0; j < N; j++) {
			double acc = 0.0;
			for (size_t k = 0; k < M; k++)
				acc += (double)full[i * M + k] * B[k * N + j];
			cr_assert(fabs(C[i * N + j] - acc) < TOL(M));
		}
}

/* Large enough to be split: M x K times K x N and friends. */
#define SM 333
#define SK 150
#define SN 40
#define SR 40
#define OUT_FLOATS (SM * SN + SR * SM + SM * SM + SM * SN)

/* C1 = A B (split by rows), C2 = A[0..SR) A^T (split by columns),
 * C3 = upper(A A^T) over a lower triangle of 42s, C4 = Sym C1. */
static void split_products(const float *A, const float *B, const float *Sym, float *out)
{
	float *C1 = out, *C2 = C1 + SM * SN, *C3 = C2 + SR * SM, *C4 = C3 + SM * SM;

	sv_blas_gemm(0, 0, SM, SN, SK, 1.0f, A, SK, B, SN, 0.0f, C1, SN);
	sv_blas_gemm(0, 1, SR, SM, SK, 1.0f, A, SK, A, SK, 0.0f, C2, SM);
	for (size_t i = 0; i < (size_t)SM * SM; i++)
		C3[i] = 42.0f;
	sv_blas_syrk_upper(SM, SK, 1.0f, A, SK, 0.0f, C3, SM);
	sv_blas_symm_upper(SM, SN, 1.0f, Sym, SM, C1, SN, 0.0f, C4, SN);
}

Test(blas, split_products_match_naive_and_inline)
{
	float *A = malloc(SM * SK * sizeof(float)), *B = malloc(SK * SN * sizeof(float));
	float *Sym = malloc(SM * SM * sizeof(float)), *out = malloc(OUT_FLOATS * sizeof(float));
	float *inl = malloc(OUT_FLOATS * sizeof(float));
	int fds[2];

	fill(A, SM * SK);
	fill(B, SK * SN);
	fill(Sym, SM * SM);
	for (size_t i = 0; i < SM; i++)
		for (size_t j = 0; j < i; j++)
			Sym[i * SM + j] = 1e30f; /* must not be read */
	sv_blas_set_threads(3);
	cr_assert_eq(sv_blas_threads(), 3);
	split_products(A, B, Sym, out);

	const float *C1 = out, *C2 = C1 + SM * SN, *C3 = C2 + SR * SM, *C4 = C3 + SM * SM;
	for (size_t i = 0; i < SM; i++)
		for (size_t j = 0; j < SN; j++) {
			double acc = 0.0, acc4 = 0.0;
			for (size_t k = 0; k < SK; k++)
				acc += (double)A[i * SK + k] * B[k * SN + j];
			cr_assert(fabs(C1[i * SN + j] - acc) < TOL(SK), "C1 (%zu,%zu)", i, j);
			for (size_t k = 0; k < SM; k++)
				acc4 += (double)(k >= i ? Sym[i * SM + k] : Sym[k * SM + i]) *
				        C1[k * SN + j];
			cr_assert(fabs(C4[i * SN + j] - acc4) < 8 * TOL(SM), "C4 (%zu,%zu)", i, j);
		}
	for (size_t i = 0; i < SM; i++)
		for (size_t j = 0; j < SM; j++) {
			double acc = 0.0;
			for (size_t k = 0; k < SK; k++)
				acc += (double)A[i * SK + k] * A[j * SK + k];
			if (i < SR)
				cr_assert(fabs(C2[i * SM + j] - acc) < TOL(SK), "C2 (%zu,%zu)", i, j);
			if (j < i)
				cr_assert_eq(C3[i * SM + j], 42.0f, "C3 lower (%zu,%zu)", i, j);
			else
				cr_assert(fabs(C3[i * SM + j] - acc) < TOL(SK), "C3 (%zu,%zu)", i, j);
		}

	/* a forked child has no pool workers: it runs every part inline */
	cr_assert_eq(pipe(fds), 0);
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		split_products(A, B, Sym, inl);
		size_t left = OUT_FLOATS * sizeof(float);
		const char *p = (const char *)inl;
		while (left) {
			ssize_t w = write(fds[1], p, left);
			if (w <= 0)
				_exit(1);
			p += w;
			left -= (size_t)w;
		}
		_exit(0);
	}
	close(fds[1]);
	size_t got = 0;
	for (ssize_t r; got < OUT_FLOATS * sizeof(float) &&
	                (r = read(fds[0], (char *)inl + got, OUT_FLOATS * sizeof(float) - got)) > 0;)
		got += (size_t)r;
	int status = 0;
	waitpid(pid, &status, 0);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	cr_assert_eq(got, OUT_FLOATS * sizeof(float));
	cr_assert(memcmp(out, inl, OUT_FLOATS * sizeof(float)) == 0,
	          "parallel and inline parts differ");
	sv_blas_set_threads(1);
	free(A);
	free(B);
	free(Sym);
	free(out);
	free(inl);
}
