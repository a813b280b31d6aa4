/* train.c - one training step (see sv/train.h).
 *
 * The trainer holds W, the optimizer state, the loss workspace and the
 * forward/backward buffers (E, norms, G, dW, scores), all sized at creation
 * for max_pairs pairs.  A step is a straight composition of the model, loss
 * and optimizer modules; this file adds the pre-step pair scores, the finite
 * check and the bookkeeping.  It does no matrix arithmetic of its own beyond
 * n dot products and one pass over dW, and never allocates in a step.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sv/error.h"
#include "sv/model.h"
#include "sv/train.h"

struct sv_trainer {
	struct sv_train_params p;
	uint64_t steps;
	struct sv_optim *optim;
	sv_loss_ws *ws;
	float *W;      /* d_in x d_out */
	float *dW;     /* d_in x d_out */
	float *E;      /* 2 max_pairs x d_out */
	float *G;      /* 2 max_pairs x d_out */
	float *norms;  /* 2 max_pairs */
	float *scores; /* max_pairs */
};

static float *alloc_floats(size_t n)
{
	void *p = NULL;

	if (posix_memalign(&p, 64, n * sizeof(float)) != 0)
		return NULL;
	return p;
}

static int loss_params_ok(const struct sv_loss_params *l)
{
	if (l->kind != SV_LOSS_KIND_CONTRASTIVE && l->kind != SV_LOSS_KIND_NTXENT)
		return 0;
	if (l->mode != SV_LABEL_MODE_BATCH && l->mode != SV_LABEL_MODE_PAIRS &&
	    l->mode != SV_LABEL_MODE_GRAPH)
		return 0;
	if (l->kind == SV_LOSS_KIND_NTXENT)
		return isfinite(l->temperature) && l->temperature > 0.0f;
	return isfinite(l->pos_margin) && isfinite(l->neg_margin);
}

int sv_trainer_new(sv_trainer **out, const struct sv_train_params *p, const float *W0)
{
	sv_trainer *t = NULL;
	size_t nw, rows;
	int rc;

	if (!out || !p || p->d_in == 0 || p->d_out == 0 || p->max_pairs == 0)
		return -EINVAL;
	if (p->init != SV_MODEL_INIT_ORTHOGONAL && p->init != SV_MODEL_INIT_UNIFORM)
		return -EINVAL;
	if (!loss_params_ok(&p->loss))
		return SV_ERR_RANGE;
	if (p->max_pairs > SIZE_MAX / 4 / p->d_out / sizeof(float) ||
	    (size_t)p->d_in > SIZE_MAX / p->d_out / sizeof(float))
		return -ENOMEM;
	nw = (size_t)p->d_in * p->d_out;
	rows = 2 * p->max_pairs;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->p = *p;
	rc = sv_optim_new(&t->optim, &p->optim, nw);
	if (rc < 0)
		goto fail;
	rc = sv_loss_ws_new(&t->ws, p->max_pairs, p->d_out);
	if (rc < 0)
		goto fail;
	rc = -ENOMEM;
	t->W = alloc_floats(nw);
	t->dW = alloc_floats(nw);
	t->E = alloc_floats(rows * p->d_out);
	t->G = alloc_floats(rows * p->d_out);
	t->norms = alloc_floats(rows);
	t->scores = alloc_floats(p->max_pairs);
	if (!t->W || !t->dW || !t->E || !t->G || !t->norms || !t->scores)
		goto fail;
	if (W0) {
		memcpy(t->W, W0, nw * sizeof(float));
	} else {
		rc = sv_model_init(t->W, p->d_in, p->d_out, p->init, p->seed);
		if (rc < 0)
			goto fail;
	}
	*out = t;
	return 0;
fail:
	sv_trainer_free(t);
	return rc;
}

void sv_trainer_free(sv_trainer *t)
{
	if (!t)
		return;
	sv_optim_free(t->optim);
	sv_loss_ws_free(t->ws);
	free(t->W);
	free(t->dW);
	free(t->E);
	free(t->G);
	free(t->norms);
	free(t->scores);
	free(t);
}

int sv_trainer_set_optim(sv_trainer *t, struct sv_optim *o)
{
	if (!t || !o)
		return -EINVAL;
	if (o->n != (size_t)t->p.d_in * t->p.d_out)
		return SV_ERR_SHAPE;
	sv_optim_free(t->optim);
	t->optim = o;
	t->p.optim = o->p;
	return 0;
}

void sv_trainer_set_weights(sv_trainer *t, const float *W)
{
	memcpy(t->W, W, (size_t)t->p.d_in * t->p.d_out * sizeof(float));
}

int sv_trainer_step(sv_trainer *t, sv_batch *b, float *scores, struct sv_step_stats *st)
{
	struct sv_pair_labels lab;
	struct sv_loss_stats ls;
	const uint32_t d_in = t->p.d_in, d_out = t->p.d_out;
	const size_t nw = (size_t)d_in * d_out;
	const float *X;
	size_t n = sv_batch_len(b);
	double ss = 0.0;
	int rc;

	if (n == 0 || n > t->p.max_pairs || sv_batch_d_in(b) != d_in)
		return SV_ERR_SHAPE;
	X = sv_batch_rows(b);
	sv_batch_labels(b, &lab);

	rc = sv_model_forward(X, 2 * n, t->W, d_in, d_out, t->E, t->norms);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < n; i++) {
		const float *ea = t->E + i * d_out, *eb = t->E + (n + i) * d_out;
		float s = 0.0f;

		for (uint32_t j = 0; j < d_out; j++)
			s += ea[j] * eb[j];
		t->scores[i] = s;
	}
	rc = sv_loss_eval(t->ws, &t->p.loss, &lab, t->E, d_out, t->G, &ls);
	if (rc < 0)
		return rc;
	if (!isfinite(ls.loss))
		return SV_ERR_NONFINITE;
	rc = sv_model_backward(X, 2 * n, t->E, t->norms, t->G, d_in, d_out, t->dW);
	if (rc < 0)
		return rc;
	for (size_t k = 0; k < nw; k++)
		ss += (double)t->dW[k] * t->dW[k];
	if (!isfinite(ss))
		return SV_ERR_NONFINITE;

	sv_optim_step(t->optim, t->W, t->dW);
	t->steps++;
	if (scores)
		memcpy(scores, t->scores, n * sizeof(float));
	if (st) {
		st->loss = ls;
		st->n_pairs = n;
		st->grad_norm = sqrt(ss);
	}
	return 0;
}

const float *sv_trainer_weights(const sv_trainer *t)
{
	return t->W;
}

const struct sv_optim *sv_trainer_optim(const sv_trainer *t)
{
	return t->optim;
}

const struct sv_train_params *sv_trainer_params(const sv_trainer *t)
{
	return &t->p;
}

uint64_t sv_trainer_steps(const sv_trainer *t)
{
	return t->steps;
}

int sv_trainer_set_optim_params(sv_trainer *t, const struct sv_optim_params *p)
{
	int rc = sv_optim_set_params(t->optim, p);

	if (rc == 0)
		t->p.optim = *p;
	return rc;
}
