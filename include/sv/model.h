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

/* How the initial W is drawn (model.init). */
enum sv_model_init {
	SV_MODEL_INIT_ORTHOGONAL = 0, /* sv_model_init_orthogonal: column norms 1 */
	SV_MODEL_INIT_UNIFORM = 1,    /* sv_model_init_uniform: column norms about 0.58 */
};

/* Fill W (d_in x d_out, caller-owned) with independent draws from
 * U(-b, b), b = 1/sqrt(d_in): the default init of torch.nn.Linear(d_in,
 * d_out) (kaiming_uniform_ with a = sqrt(5)), whose weight is W^T.  Every
 * entry lies in [-b, b] after rounding to float; each column's expected
 * squared norm is 1/3 whatever the shape.  The loss sees only the direction
 * of each row of X W, but Adam's steps have a size set by lr alone, so a W of
 * smaller norm turns faster: this init trains like the orthogonal one at
 * about sqrt(3) times the rate.  The same seed gives bit-identical W on every run
 * (splitmix64, one draw per entry in row-major order).  Returns 0 or -EINVAL
 * (NULL W or a zero dimension). */
int sv_model_init_uniform(float *W, uint32_t d_in, uint32_t d_out, uint64_t seed);

/* The init of the given kind with the given seed.  Returns what that init
 * returns, or -EINVAL for an unknown kind. */
int sv_model_init(float *W, uint32_t d_in, uint32_t d_out, enum sv_model_init kind, uint64_t seed);

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
