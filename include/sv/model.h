/* sv/model.h - the linear projection W and the normalized embedding.
 *
 * simverify learns one matrix W (d_in x d_out, float32, row-major).  An input
 * row x (d_in floats) maps to z = W^T x and to the embedding
 *     e = z / max(||z||_2, 1e-12)            (LOSSES.md section 2)
 * In matrix form, for m input rows X (m x d_in, row-major):
 *     Z = X W        (m x d_out)     E = rownorm(Z)
 * The backward pass takes G = dL/dE (m x d_out) and produces
 *     dZ_r = (g_r - (e_r . g_r) e_r) / ||z_r||     (or g_r / 1e-12 when clamped)
 *     dW   = X^T dZ  (d_in x d_out)
 * Every matrix product goes through sv/blas.h.  Nothing here allocates per
 * call: the caller owns every buffer and passes its size in the shapes.
 */
#ifndef SV_MODEL_H
#define SV_MODEL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The norm clamp of torch.nn.functional.normalize. */
#define SV_NORM_EPS 1e-12f

/* Fill W (d_in x d_out, caller-owned) with a random matrix with orthonormal
 * columns (d_out <= d_in) or orthonormal rows (d_out > d_in), drawn from a
 * Gaussian with the given seed and orthonormalized (Householder QR, sign-fixed
 * so the result is unique for the seed).  The same seed gives bit-identical W
 * on every run.  Returns 0, -EINVAL for zero dims, -ENOMEM. */
int sv_model_init_orthogonal(float *W, uint32_t d_in, uint32_t d_out, uint64_t seed);

/* Forward: E = rownorm(X W).  X is m x d_in, W d_in x d_out, E m x d_out and
 * norms m (||z_r||, before the clamp); all caller-owned.  norms may be NULL
 * when no backward pass follows.  Returns 0 or -EINVAL. */
int sv_model_forward(const float *X, size_t m, const float *W, uint32_t d_in,
		     uint32_t d_out, float *E, float *norms);

/* Backward: given G = dL/dE (m x d_out), overwrite G with dL/dZ and write
 * dW = X^T dL/dZ (d_in x d_out, caller-owned).  E and norms are the forward
 * pass's outputs for the same X and W.  Returns 0 or -EINVAL. */
int sv_model_backward(const float *X, size_t m, const float *E, const float *norms,
		      float *G, uint32_t d_in, uint32_t d_out, float *dW);

#ifdef __cplusplus
}
#endif
#endif
