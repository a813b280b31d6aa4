/* sv/blas.h - the only door to BLAS: thin float32 row-major wrappers.
 *
 * Every cblas call of libsimverify lives in lib/blas.c, so the thread count,
 * the layout convention and any future backend switch sit in one place.
 *
 * Threads: until sv_blas_set_threads is called, OpenBLAS threads each call
 * itself.  After sv_blas_set_threads(n), OpenBLAS runs single-threaded and
 * GEMM, SYRK and SYMM split each large product (about 10^6 multiply-adds
 * or more) into n blocks of the output, run on n - 1 pool threads and the
 * caller.  Any thread may call in at any time: while one caller uses the
 * pool, another runs the same blocks one after another itself.  The blocks
 * depend only on the shapes and n, so results are bit-identical between
 * runs and callers (not between different n).
 *
 * All matrices are float32, row-major, with an explicit leading dimension
 * (the distance in floats between the starts of two consecutive rows).
 * Buffers are owned by the caller; nothing here allocates or fails.
 *
 * Leaves out: double precision, column-major layouts, error reporting (the
 * caller passes consistent shapes; debug builds assert them).
 */
#ifndef SV_BLAS_H
#define SV_BLAS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* C = alpha * op(A) op(B) + beta * C.
 * op(A) is M x K: A itself (transA = 0, A is M x K, lda >= K) or A^T
 * (transA = 1, A is K x M, lda >= M).  op(B) is K x N: B (transB = 0, B is
 * K x N, ldb >= N) or B^T (transB = 1, B is N x K, ldb >= K).  C is M x N,
 * ldc >= N.  With beta = 0, C need not be initialized.  M, N or K of 0 is
 * allowed (K = 0 scales C by beta). */
void sv_blas_gemm(int transA, int transB, size_t M, size_t N, size_t K, float alpha, const float *A,
                  size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc);

/* y = alpha * A x + beta * y for A (M x N, lda >= N), x (N), y (M).  For a
 * few vectors against a large matrix: unlike a GEMM, A is not repacked. */
void sv_blas_gemv(size_t M, size_t N, float alpha, const float *A, size_t lda, const float *x,
                  float beta, float *y);

/* C = alpha * A A^T + beta * C for A (N x K, lda >= K): only the upper
 * triangle of C (N x N, ldc >= N; entries with column >= row) is written;
 * the strictly lower triangle is left untouched. */
void sv_blas_syrk_upper(size_t N, size_t K, float alpha, const float *A, size_t lda, float beta,
                        float *C, size_t ldc);

/* C = alpha * A B + beta * C with A symmetric (M x M, lda >= M), of which
 * only the upper triangle (column >= row) is read; B is M x N (ldb >= N),
 * C is M x N (ldc >= N). */
void sv_blas_symm_upper(size_t M, size_t N, float alpha, const float *A, size_t lda, const float *B,
                        size_t ldb, float beta, float *C, size_t ldc);

/* Work of the caller's own on the same threads: fn(arg, part) for every
 * part in [0, parts), in parallel on the pool when it is free and has
 * enough threads (parts <= sv_blas_threads()), one after another in the
 * calling thread otherwise.  Returns when all parts are done.  The caller
 * makes the parts independent and picks them from the data and
 * sv_blas_threads() only, so results do not depend on timing.  fn may call
 * the products above (they then run their blocks inline). */
typedef void (*sv_blas_part_fn)(void *arg, int part);
void sv_blas_run_parts(int parts, sv_blas_part_fn fn, void *arg);

/* Set the number of threads the products use (n >= 1; values < 1 mean 1,
 * at most 64): starts or stops pool threads, waiting for a product in
 * flight.  The setting is process-wide.  A child forked afterwards has no
 * pool threads and runs the same blocks inline. */
void sv_blas_set_threads(int n);

/* The number of threads the products use (>= 1): the last
 * sv_blas_set_threads, or OpenBLAS's own count before any. */
int sv_blas_threads(void);

#ifdef __cplusplus
}
#endif
#endif
