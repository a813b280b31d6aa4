/* test_blas.c - sv/blas.h against naive loops (float32 row-major, all four
 * transpose combinations, leading dimensions larger than the width), GEMV, SYRK's
 * upper triangle, and the thread-count setter. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

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
