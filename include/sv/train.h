/* sv/train.h - one training step: gather, forward, loss, backward, optimizer.
 *
 * A trainer owns W (d_in x d_out float32), the optimizer state and every work
 * buffer, all sized once at creation for batches of up to max_pairs pairs.  A
 * step takes an assembled sv_batch, scores its pairs with the current W
 * (test-then-train: cosine of the two embeddings, before the update), computes
 * the loss and dL/dW and applies the optimizer.  Steps allocate nothing.
 *
 * Determinism: the same W, optimizer state, batches and thread count give the
 * same W bit for bit (this is what recovery by replay relies on).
 */
#ifndef SV_TRAIN_H
#define SV_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "sv/batch.h"
#include "sv/loss.h"
#include "sv/model.h"
#include "sv/optim.h"

#ifdef __cplusplus
extern "C" {
#endif

struct sv_train_params {
	uint32_t d_in, d_out;
	enum sv_model_init init;  /* how W is drawn (sv/model.h); 0 is orthogonal,
	                           * model.init's default is uniform */
	uint64_t seed;            /* the init's seed */
	size_t max_pairs;         /* largest batch */
	struct sv_loss_params loss;
	struct sv_optim_params optim;
};

/* What one step did. */
struct sv_step_stats {
	struct sv_loss_stats loss;  /* at W before the update */
	size_t n_pairs;
	double grad_norm;           /* Frobenius norm of dL/dW */
};

typedef struct sv_trainer sv_trainer;

/* A trainer with W drawn by p->init from p->seed (W0 == NULL) or a copy of W0
 * (d_in*d_out floats) and a fresh optimizer state.  Returns 0, -EINVAL (NULL
 * pointer, a zero dimension / max_pairs or an unknown init), SV_ERR_RANGE
 * (loss kind, mode, temperature or margins, or optimizer parameters out of
 * range) or -ENOMEM. */
int sv_trainer_new(sv_trainer **out, const struct sv_train_params *p, const float *W0);
void sv_trainer_free(sv_trainer *t);

/* Replace the optimizer state (e.g. from a checkpoint; ownership passes to the
 * trainer, which frees the old one).  The trainer's params.optim becomes
 * o->p.  -EINVAL for NULL, SV_ERR_SHAPE when its n differs from d_in*d_out;
 * on failure o stays the caller's. */
int sv_trainer_set_optim(sv_trainer *t, struct sv_optim *o);

/* Overwrite W with a copy of W (d_in*d_out floats). */
void sv_trainer_set_weights(sv_trainer *t, const float *W);

/* One step on the batch (1..max_pairs pairs).  scores, when not NULL, gets n
 * floats: the cosine of each pair's embeddings under W before the update.
 * st may be NULL.  The batch is packed (sv_batch_rows) but not cleared.
 * Returns 0, SV_ERR_SHAPE for an empty or oversized batch or one whose d_in
 * differs, SV_ERR_NONFINITE if the loss or gradient is not finite, or what
 * sv_model_forward / sv_loss_eval / sv_model_backward return.  On any failure
 * W, the optimizer state, the step count, scores and st are left unchanged. */
int sv_trainer_step(sv_trainer *t, sv_batch *b, float *scores, struct sv_step_stats *st);

/* Borrowed views, valid until the next step or set call. */
const float *sv_trainer_weights(const sv_trainer *t);
const struct sv_optim *sv_trainer_optim(const sv_trainer *t);
const struct sv_train_params *sv_trainer_params(const sv_trainer *t);
uint64_t sv_trainer_steps(const sv_trainer *t);

/* Live changes (SIGHUP): learning rate and the other optimizer hyperparameters
 * of the same kind.  Returns what sv_optim_set_params returns. */
int sv_trainer_set_optim_params(sv_trainer *t, const struct sv_optim_params *p);

#ifdef __cplusplus
}
#endif
#endif
