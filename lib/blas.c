/* blas.c - every cblas call of libsimverify (see sv/blas.h): float32
 * row-major GEMM, GEMV, SYRK and SYMM, and OpenBLAS's thread count.  Nothing else. */
#include <assert.h>
#include <cblas.h>

#include "sv/blas.h"

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
	cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans,
	            transB ? CblasTrans : CblasNoTrans, (blasint)M, (blasint)N, (blasint)K, alpha,
	            A, (blasint)lda, B, (blasint)ldb, beta, C, (blasint)ldc);
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
	cblas_ssyrk(CblasRowMajor, CblasUpper, CblasNoTrans, (blasint)N, (blasint)K, alpha, A,
	            (blasint)lda, beta, C, (blasint)ldc);
}

void sv_blas_symm_upper(size_t M, size_t N, float alpha, const float *A, size_t lda, const float *B,
                        size_t ldb, float beta, float *C, size_t ldc)
{
	if (M == 0 || N == 0)
		return;
	assert(lda >= M && ldb >= N && ldc >= N);
	cblas_ssymm(CblasRowMajor, CblasLeft, CblasUpper, (blasint)M, (blasint)N, alpha, A,
	            (blasint)lda, B, (blasint)ldb, beta, C, (blasint)ldc);
}

void sv_blas_set_threads(int n)
{
	openblas_set_num_threads(n < 1 ? 1 : n);
}

int sv_blas_threads(void)
{
	int n = openblas_get_num_threads();
	return n < 1 ? 1 : n;
}
