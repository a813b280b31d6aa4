/* sv/optim.h - SGD, Adam and AdamW with torch's update rules (LOSSES.md 10).
 *
 * The optimizer updates one float32 parameter array in place (W, n = d_in*d_out
 * elements) from its gradient.  Its whole state is a plain struct plus two
 * arrays of n floats; sv_optim_save/sv_optim_load turn it into bytes and back
 * bit-exactly, so the store can checkpoint it and recovery continues the same
 * trajectory.
 *
 * SGD (torch.optim.SGD):   g += wd*W;  b = g (t=1) or momentum*b + (1-dampening)*g;
 *                          step = nesterov ? g + momentum*b : b;  W -= lr*step
 *                          (momentum 0: step = g, no buffer)
 * Adam (torch.optim.Adam): g += wd*W; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 *                          W -= (lr/bc1) * m / (sqrt(v)/sqrt(bc2) + eps)
 * AdamW:                   W *= 1 - lr*wd first, then Adam without the g += wd*W.
 */
#ifndef SV_OPTIM_H
#define SV_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum sv_optim_kind {
	SV_OPTIM_KIND_SGD = 0,
	SV_OPTIM_KIND_ADAM = 1,
	SV_OPTIM_KIND_ADAMW = 2,
};

struct sv_optim_params {
	enum sv_optim_kind kind;
	double lr;           /* > 0 */
	double momentum;     /* SGD, [0, 1) */
	double dampening;    /* SGD, [0, 1] */
	int nesterov;        /* SGD, needs momentum > 0 and dampening 0 */
	double weight_decay; /* >= 0 */
	double beta1, beta2; /* Adam/AdamW, [0, 1) */
	double eps;          /* Adam/AdamW, > 0 */
};

/* torch's defaults for kind (SGD lr 0.01 with no momentum; Adam lr 1e-3,
 * betas 0.9/0.999, eps 1e-8; AdamW the same with weight_decay 1e-2). */
void sv_optim_params_default(struct sv_optim_params *p, enum sv_optim_kind kind);

/* Returns 0 or SV_ERR_RANGE naming nothing more: the caller knows the fields. */
int sv_optim_params_check(const struct sv_optim_params *p);

/* The state.  buf1 is the SGD momentum buffer or Adam's exp_avg, buf2 Adam's
 * exp_avg_sq (NULL for SGD); both n floats, owned by the struct.  Element
 * updates are computed in double from the float32 values and rounded once. */
struct sv_optim {
	struct sv_optim_params p;
	uint64_t t;       /* steps taken */
	size_t n;         /* parameter count */
	float *buf1;
	float *buf2;
	int buf1_init;    /* SGD: buf1 holds a momentum buffer (torch's
			   * "momentum_buffer is not None"); Adam: unused */
};

/* Allocate the state for n parameters.  Returns 0, SV_ERR_RANGE or -ENOMEM. */
int sv_optim_new(struct sv_optim **out, const struct sv_optim_params *p, size_t n);
void sv_optim_free(struct sv_optim *o);

/* One update of W (n floats) from grad (n floats; may be modified as scratch). */
void sv_optim_step(struct sv_optim *o, float *W, float *grad);

/* Change the hyperparameters live (learning rate etc.); kind must not change.
 * Returns 0, SV_ERR_RANGE, or SV_ERR_STATE when kind differs. */
int sv_optim_set_params(struct sv_optim *o, const struct sv_optim_params *p);

/* Serialized size, save into buf (cap bytes), and load.  The format is
 * versioned, little-endian and self-describing (kind, n, t, params, buffers).
 * Version 1: "SVOP", u32 version, u32 kind, u32 flags (bit 0 nesterov, bit 1
 * buf1_init), u64 n, u64 t, f64 lr momentum dampening weight_decay beta1
 * beta2 eps, then buf1 (n f32) and for Adam/AdamW buf2 (n f32), then a u64
 * FNV-1a hash of every byte before it.  A bad magic, hash, kind, size or
 * out-of-range parameter is SV_ERR_CORRUPT.
 * save returns the byte count or SV_ERR_TOOBIG; load returns 0, SV_ERR_TRUNCATED,
 * SV_ERR_VERSION, SV_ERR_CORRUPT or -ENOMEM, and makes a new state in *out. */
size_t sv_optim_saved_size(const struct sv_optim *o);
long sv_optim_save(const struct sv_optim *o, void *buf, size_t cap);
int sv_optim_load(struct sv_optim **out, const void *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif
