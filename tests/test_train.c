/* test_train.c - the training step: equal to the manual composition of the
 * model, loss and optimizer calls; bit-for-bit deterministic; the
 * non-finite guard; learning on a synthetic clustered dataset (loss falls,
 * held-out AUC rises); the golden SGD trajectory; setters and errors.
 * Everything random comes from a fixed-seed generator in this file. */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sv/error.h"
#include "sv/model.h"
#include "sv/train.h"

/* xorshift64* and Box-Muller: a fixed, platform-independent stream. */
static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ULL;
}

static double rng_unif(uint64_t *s)
{
	return ((double)(rng_next(s) >> 11) + 0.5) / 9007199254740992.0;
}

static float rng_gauss(uint64_t *s)
{
	double u = rng_unif(s), v = rng_unif(s);

	return (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
}

static void default_params(struct sv_train_params *p, uint32_t d_in, uint32_t d_out,
			   size_t max_pairs, enum sv_loss_kind kind)
{
	memset(p, 0, sizeof(*p));
	p->d_in = d_in;
	p->d_out = d_out;
	p->seed = 7;
	p->max_pairs = max_pairs;
	sv_loss_params_default(&p->loss, kind);
	sv_optim_params_default(&p->optim, SV_OPTIM_KIND_ADAM);
}

/* A batch of n random pairs (Gaussian rows, every third pair different). */
static void fill_random(sv_batch *b, size_t n, uint32_t d_in, uint64_t *s)
{
	float xa[64], xb[64];

	cr_assert_leq(d_in, 64);
	sv_batch_clear(b);
	for (size_t i = 0; i < n; i++) {
		for (uint32_t j = 0; j < d_in; j++) {
			xa[j] = rng_gauss(s);
			xb[j] = xa[j] + 0.5f * rng_gauss(s);
		}
		cr_assert_eq(sv_batch_add(b, xa, 2 * i, xb, 2 * i + 1, i % 3 != 0, i + 1), 0);
	}
}

Test(train, new_rejects_bad_params)
{
	struct sv_train_params p;
	sv_trainer *t = (sv_trainer *)0x1;

	default_params(&p, 6, 3, 4, SV_LOSS_KIND_NTXENT);
	cr_assert_eq(sv_trainer_new(NULL, &p, NULL), -EINVAL);
	cr_assert_eq(sv_trainer_new(&t, NULL, NULL), -EINVAL);
	p.d_in = 0;
	cr_assert_eq(sv_trainer_new(&t, &p, NULL), -EINVAL);
	p.d_in = 6;
	p.max_pairs = 0;
	cr_assert_eq(sv_trainer_new(&t, &p, NULL), -EINVAL);
	p.max_pairs = 4;
	p.loss.temperature = 0.0f;
	cr_assert_eq(sv_trainer_new(&t, &p, NULL), SV_ERR_RANGE);
	p.loss.temperature = 0.07f;
	p.loss.kind = (enum sv_loss_kind)9;
	cr_assert_eq(sv_trainer_new(&t, &p, NULL), SV_ERR_RANGE);
	p.loss.kind = SV_LOSS_KIND_NTXENT;
	p.optim.lr = -1.0;
	cr_assert_eq(sv_trainer_new(&t, &p, NULL), SV_ERR_RANGE);
	cr_assert_eq(t, (sv_trainer *)0x1, "out written on failure");
	sv_trainer_free(NULL);
}

Test(train, init_from_seed_or_copy)
{
	struct sv_train_params p;
	sv_trainer *t, *u;
	float W[6 * 3];

	default_params(&p, 6, 3, 4, SV_LOSS_KIND_CONTRASTIVE);
	cr_assert_eq(sv_trainer_new(&t, &p, NULL), 0);
	cr_assert_eq(sv_model_init_orthogonal(W, 6, 3, 7), 0);
	cr_assert_arr_eq(sv_trainer_weights(t), W, sizeof(W));
	for (size_t k = 0; k < 18; k++)
		W[k] = (float)k * 0.25f;
	cr_assert_eq(sv_trainer_new(&u, &p, W), 0);
	cr_assert_arr_eq(sv_trainer_weights(u), W, sizeof(W));
	cr_assert_eq(sv_trainer_steps(u), 0);
	cr_assert_eq(sv_trainer_params(u)->d_in, 6);
	cr_assert_eq(sv_trainer_optim(u)->n, 18);
	sv_trainer_free(t);
	sv_trainer_free(u);
}

Test(train, init_kind_from_params)
{
	struct sv_train_params p;
	sv_trainer *t = (sv_trainer *)0x1;
	float W[6 * 3];

	default_params(&p, 6, 3, 4, SV_LOSS_KIND_NTXENT);
	p.init = SV_MODEL_INIT_UNIFORM;
	cr_assert_eq(sv_trainer_new(&t, &p, NULL), 0);
	cr_assert_eq(sv_model_init_uniform(W, 6, 3, 7), 0);
	cr_assert_arr_eq(sv_trainer_weights(t), W, sizeof(W));
	sv_trainer_free(t);
	t = (sv_trainer *)0x1;
	p.init = (enum sv_model_init)2;
	cr_assert_eq(sv_trainer_new(&t, &p, NULL), -EINVAL);
	cr_assert_eq(t, (sv_trainer *)0x1, "out written on failure");
}

/* step == forward, loss, backward, optimizer called by hand. */
static void check_manual(enum sv_loss_kind kind, enum sv_label_mode mode)
{
	enum { DI = 12, DO = 5, N = 9 };
	struct sv_train_params p;
	struct sv_step_stats st;
	struct sv_loss_stats ls;
	struct sv_pair_labels lab;
	struct sv_optim *o;
	sv_loss_ws *ws;
	sv_trainer *t;
	sv_batch *b;
	uint64_t s = 42;
	float W[DI * DO], dW[DI * DO], E[2 * N * DO], G[2 * N * DO], nr[2 * N], sc[N];
	const float *X;

	default_params(&p, DI, DO, N + 3, kind);
	p.loss.mode = mode;
	cr_assert_eq(sv_trainer_new(&t, &p, NULL), 0);
	cr_assert_eq(sv_batch_new(&b, N + 1, DI), 0);
	memcpy(W, sv_trainer_weights(t), sizeof(W));
	cr_assert_eq(sv_optim_new(&o, &p.optim, DI * DO), 0);
	cr_assert_eq(sv_loss_ws_new(&ws, N + 3, DO), 0);

	for (int step = 0; step < 3; step++) {
		fill_random(b, N, DI, &s);
		X = sv_batch_rows(b);
		sv_batch_labels(b, &lab);
		cr_assert_eq(sv_model_forward(X, 2 * N, W, DI, DO, E, nr), 0);
		cr_assert_eq(sv_loss_eval(ws, &p.loss, &lab, E, DO, G, &ls), 0);
		cr_assert_eq(sv_model_backward(X, 2 * N, E, nr, G, DI, DO, dW), 0);
		double ss = 0;
		for (size_t k = 0; k < DI * DO; k++)
			ss += (double)dW[k] * dW[k];
		sv_optim_step(o, W, dW);

		cr_assert_eq(sv_trainer_step(t, b, sc, &st), 0);
		cr_assert_arr_eq(sv_trainer_weights(t), W, sizeof(W), "W differs at step %d", step);
		cr_assert_eq(st.loss.loss, ls.loss);
		cr_assert_eq(st.loss.n_pos_pairs, ls.n_pos_pairs);
		cr_assert_eq(st.n_pairs, N);
		cr_assert_float_eq(st.grad_norm, sqrt(ss), 1e-12 * (1 + sqrt(ss)));
		for (size_t i = 0; i < N; i++) {
			double c = 0;
			for (size_t j = 0; j < DO; j++)
				c += (double)E[i * DO + j] * E[(N + i) * DO + j];
			cr_assert_float_eq(sc[i], c, 1e-5, "score %zu", i);
		}
	}
	cr_assert_eq(sv_trainer_steps(t), 3);
	cr_assert_eq(sv_trainer_optim(t)->t, o->t);
	sv_optim_free(o);
	sv_loss_ws_free(ws);
	sv_batch_free(b);
	sv_trainer_free(t);
}

Test(train, step_equals_manual_composition_ntxent)
{
	check_manual(SV_LOSS_KIND_NTXENT, SV_LABEL_MODE_BATCH);
}

Test(train, step_equals_manual_composition_contrastive)
{
	check_manual(SV_LOSS_KIND_CONTRASTIVE, SV_LABEL_MODE_BATCH);
}

Test(train, step_equals_manual_composition_graph)
{
	check_manual(SV_LOSS_KIND_NTXENT, SV_LABEL_MODE_GRAPH);
}

Test(train, deterministic_bit_for_bit)
{
	enum { DI = 40, DO = 8, N = 64 };
	struct sv_train_params p;
	sv_trainer *t1, *t2;
	sv_batch *b;
	uint64_t s1 = 5, s2 = 5;

	default_params(&p, DI, DO, N, SV_LOSS_KIND_NTXENT);
	cr_assert_eq(sv_trainer_new(&t1, &p, NULL), 0);
	cr_assert_eq(sv_trainer_new(&t2, &p, NULL), 0);
	cr_assert_eq(sv_batch_new(&b, N, DI), 0);
	for (int step = 0; step < 10; step++) {
		fill_random(b, N - (size_t)step, DI, &s1);
		cr_assert_eq(sv_trainer_step(t1, b, NULL, NULL), 0);
	}
	for (int step = 0; step < 10; step++) {
		fill_random(b, N - (size_t)step, DI, &s2);
		cr_assert_eq(sv_trainer_step(t2, b, NULL, NULL), 0);
	}
	cr_assert_arr_eq(sv_trainer_weights(t1), sv_trainer_weights(t2), sizeof(float) * DI * DO);
	cr_assert_arr_eq(sv_trainer_optim(t1)->buf1, sv_trainer_optim(t2)->buf1,
			 sizeof(float) * DI * DO);
	sv_batch_free(b);
	sv_trainer_free(t1);
	sv_trainer_free(t2);
}

Test(train, nonfinite_input_leaves_w_unchanged)
{
	enum { DI = 6, DO = 3, N = 4 };
	struct sv_train_params p;
	struct sv_step_stats st = {.n_pairs = 77};
	sv_trainer *t;
	sv_batch *b;
	uint64_t s = 9;
	float W[DI * DO], x[DI], sc[N] = {-3, -3, -3, -3};

	default_params(&p, DI, DO, N, SV_LOSS_KIND_NTXENT);
	cr_assert_eq(sv_trainer_new(&t, &p, NULL), 0);
	cr_assert_eq(sv_batch_new(&b, N, DI), 0);
	fill_random(b, N - 1, DI, &s);
	for (size_t j = 0; j < DI; j++)
		x[j] = 1.0f;
	x[2] = NAN;
	cr_assert_eq(sv_batch_add(b, x, 100, x, 101, 1, 9), 0);
	memcpy(W, sv_trainer_weights(t), sizeof(W));
	cr_assert_eq(sv_trainer_step(t, b, sc, &st), SV_ERR_NONFINITE);
	cr_assert_arr_eq(sv_trainer_weights(t), W, sizeof(W));
	cr_assert_eq(sv_trainer_steps(t), 0);
	cr_assert_eq(sv_trainer_optim(t)->t, 0);
	cr_assert_eq(st.n_pairs, 77);
	cr_assert_eq(sc[0], -3);
	x[2] = INFINITY;
	sv_batch_clear(b);
	fill_random(b, N - 1, DI, &s);
	cr_assert_eq(sv_batch_add(b, x, 100, x, 101, 0, 9), 0);
	cr_assert_eq(sv_trainer_step(t, b, sc, &st), SV_ERR_NONFINITE);
	cr_assert_arr_eq(sv_trainer_weights(t), W, sizeof(W));
	/* and the trainer still works afterwards */
	fill_random(b, N, DI, &s);
	cr_assert_eq(sv_trainer_step(t, b, sc, &st), 0);
	cr_assert_eq(sv_trainer_steps(t), 1);
	sv_batch_free(b);
	sv_trainer_free(t);
}

Test(train, empty_oversized_and_wrong_width_batches)
{
	struct sv_train_params p;
	sv_trainer *t;
	sv_batch *b, *wide;
	uint64_t s = 3;

	default_params(&p, 6, 3, 4, SV_LOSS_KIND_CONTRASTIVE);
	cr_assert_eq(sv_trainer_new(&t, &p, NULL), 0);
	cr_assert_eq(sv_batch_new(&b, 8, 6), 0);
	cr_assert_eq(sv_batch_new(&wide, 4, 7), 0);
	cr_assert_eq(sv_trainer_step(t, b, NULL, NULL), SV_ERR_SHAPE);
	fill_random(b, 5, 6, &s);
	cr_assert_eq(sv_trainer_step(t, b, NULL, NULL), SV_ERR_SHAPE);
	fill_random(wide, 2, 7, &s);
	cr_assert_eq(sv_trainer_step(t, wide, NULL, NULL), SV_ERR_SHAPE);
	fill_random(b, 4, 6, &s);
	cr_assert_eq(sv_trainer_step(t, b, NULL, NULL), 0);
	cr_assert_eq(sv_trainer_steps(t), 1);
	sv_batch_free(b);
	sv_batch_free(wide);
	sv_trainer_free(t);
}

Test(train, set_weights_and_set_optim)
{
	enum { DI = 6, DO = 3, N = 4 };
	struct sv_train_params p;
	struct sv_optim_params op;
	struct sv_optim *o, *bad;
	sv_trainer *t, *ref;
	sv_batch *b;
	uint64_t s = 11, s2 = 11;
	float W[DI * DO];

	default_params(&p, DI, DO, N, SV_LOSS_KIND_NTXENT);
	cr_assert_eq(sv_trainer_new(&t, &p, NULL), 0);
	for (size_t k = 0; k < DI * DO; k++)
		W[k] = (float)((k * 7) % 5) - 2.0f;
	sv_trainer_set_weights(t, W);
	cr_assert_arr_eq(sv_trainer_weights(t), W, sizeof(W));

	sv_optim_params_default(&op, SV_OPTIM_KIND_SGD);
	op.lr = 0.05;
	op.momentum = 0.9;
	cr_assert_eq(sv_optim_new(&bad, &op, DI * DO + 1), 0);
	cr_assert_eq(sv_trainer_set_optim(t, bad), SV_ERR_SHAPE);
	sv_optim_free(bad);
	cr_assert_eq(sv_trainer_set_optim(t, NULL), -EINVAL);
	cr_assert_eq(sv_optim_new(&o, &op, DI * DO), 0);
	cr_assert_eq(sv_trainer_set_optim(t, o), 0);
	cr_assert_eq(sv_trainer_optim(t), o);
	cr_assert_eq(sv_trainer_params(t)->optim.kind, SV_OPTIM_KIND_SGD);

	/* Same start and SGD params as a fresh trainer: same trajectory. */
	p.optim = op;
	cr_assert_eq(sv_trainer_new(&ref, &p, W), 0);
	cr_assert_eq(sv_batch_new(&b, N, DI), 0);
	for (int k = 0; k < 3; k++) {
		fill_random(b, N, DI, &s);
		cr_assert_eq(sv_trainer_step(t, b, NULL, NULL), 0);
	}
	for (int k = 0; k < 3; k++) {
		fill_random(b, N, DI, &s2);
		cr_assert_eq(sv_trainer_step(ref, b, NULL, NULL), 0);
	}
	cr_assert_arr_eq(sv_trainer_weights(t), sv_trainer_weights(ref), sizeof(W));

	/* live hyperparameter changes */
	op.lr = 0.001;
	cr_assert_eq(sv_trainer_set_optim_params(t, &op), 0);
	cr_assert_float_eq(sv_trainer_params(t)->optim.lr, 0.001, 1e-15);
	cr_assert_float_eq(sv_trainer_optim(t)->p.lr, 0.001, 1e-15);
	op.kind = SV_OPTIM_KIND_ADAM;
	cr_assert_eq(sv_trainer_set_optim_params(t, &op), SV_ERR_STATE);
	cr_assert_eq(sv_trainer_params(t)->optim.kind, SV_OPTIM_KIND_SGD);
	sv_batch_free(b);
	sv_trainer_free(t);
	sv_trainer_free(ref);
}

/* --- learning on clustered data ------------------------------------------ */

enum { L_DI = 24, L_DO = 4, L_K = 8, L_INFO = 4 };

/* Cluster c lives in the first L_INFO coordinates (unit-ish separation);
 * the remaining coordinates are loud noise shared by every class, so a
 * random projection mixes the classes and a learned one must ignore them. */
static void sample(const float *centers, int c, uint64_t *s, float *x)
{
	for (size_t j = 0; j < L_DI; j++)
		x[j] = j < L_INFO ? centers[c * L_INFO + j] + 0.15f * rng_gauss(s)
				  : 1.0f * rng_gauss(s);
}

static void make_pair(const float *centers, uint64_t *s, float *xa, float *xb, uint8_t *y)
{
	int ca = (int)(rng_next(s) % L_K), cb;

	*y = rng_next(s) % 2;
	cb = *y ? ca : (ca + 1 + (int)(rng_next(s) % (L_K - 1))) % L_K;
	sample(centers, ca, s, xa);
	sample(centers, cb, s, xb);
}

/* AUC of cos(W^T a, W^T b) for y=1 above y=0, the naive O(P*N) way. */
static double auc(const float *W, const float *A, const float *B, const uint8_t *y, size_t n)
{
	double *sc = malloc(n * sizeof(double)), win = 0;
	size_t np = 0, nn = 0;

	cr_assert_not_null(sc);
	for (size_t i = 0; i < n; i++) {
		double za[L_DO] = {0}, zb[L_DO] = {0}, d = 0, na = 0, nb = 0;
		for (size_t k = 0; k < L_DO; k++) {
			for (size_t j = 0; j < L_DI; j++) {
				za[k] += (double)A[i * L_DI + j] * W[j * L_DO + k];
				zb[k] += (double)B[i * L_DI + j] * W[j * L_DO + k];
			}
			d += za[k] * zb[k];
			na += za[k] * za[k];
			nb += zb[k] * zb[k];
		}
		sc[i] = d / sqrt(na * nb);
	}
	for (size_t i = 0; i < n; i++) {
		if (!y[i])
			continue;
		np++;
		for (size_t k = 0; k < n; k++) {
			if (y[k])
				continue;
			win += sc[i] > sc[k] ? 1.0 : sc[i] == sc[k] ? 0.5 : 0.0;
		}
	}
	for (size_t k = 0; k < n; k++)
		nn += !y[k];
	free(sc);
	return win / ((double)np * (double)nn);
}

static void check_learns(enum sv_loss_kind kind)
{
	enum { N = 32, STEPS = 300, HELD = 400 };
	struct sv_train_params p;
	struct sv_step_stats st;
	sv_trainer *t;
	sv_batch *b;
	uint64_t s = 2024;
	float centers[L_K * L_INFO], xa[L_DI], xb[L_DI];
	float *A = malloc(HELD * L_DI * sizeof(float)), *B = malloc(HELD * L_DI * sizeof(float));
	uint8_t hy[HELD], y;
	double first = 0, last = 0, auc0, auc1;

	cr_assert(A && B);
	for (size_t k = 0; k < L_K * L_INFO; k++)
		centers[k] = rng_gauss(&s);
	for (size_t i = 0; i < HELD; i++)
		make_pair(centers, &s, A + i * L_DI, B + i * L_DI, &hy[i]);

	default_params(&p, L_DI, L_DO, N, kind);
	if (kind == SV_LOSS_KIND_NTXENT)
		p.loss.temperature = 0.1f;
	p.optim.lr = 0.01;
	cr_assert_eq(sv_trainer_new(&t, &p, NULL), 0);
	cr_assert_eq(sv_batch_new(&b, N, L_DI), 0);
	auc0 = auc(sv_trainer_weights(t), A, B, hy, HELD);
	for (int step = 0; step < STEPS; step++) {
		sv_batch_clear(b);
		for (size_t i = 0; i < N; i++) {
			make_pair(centers, &s, xa, xb, &y);
			cr_assert_eq(sv_batch_add(b, xa, 2 * i, xb, 2 * i + 1, y, 0), 0);
		}
		cr_assert_eq(sv_trainer_step(t, b, NULL, &st), 0);
		if (step < 30)
			first += st.loss.loss / 30;
		if (step >= STEPS - 30)
			last += st.loss.loss / 30;
	}
	auc1 = auc(sv_trainer_weights(t), A, B, hy, HELD);
	cr_log_info("loss %.4f -> %.4f, held-out AUC %.4f -> %.4f", first, last, auc0, auc1);
	cr_assert_lt(last, 0.8 * first, "loss %.4f -> %.4f", first, last);
	cr_assert_gt(auc1, auc0 + 0.1, "AUC %.4f -> %.4f", auc0, auc1);
	cr_assert_gt(auc1, 0.9, "AUC %.4f -> %.4f", auc0, auc1);
	free(A);
	free(B);
	sv_batch_free(b);
	sv_trainer_free(t);
}

Test(train, ntxent_learns_clusters)
{
	check_learns(SV_LOSS_KIND_NTXENT);
}

Test(train, contrastive_learns_clusters)
{
	check_learns(SV_LOSS_KIND_CONTRASTIVE);
}

/* --- the golden SGD trajectory (LOSSES.md 10) ----------------------------- */

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long len;

	cr_assert_not_null(f, "%s", path);
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)len + 1);
	cr_assert_not_null(buf);
	cr_assert_eq(fread(buf, 1, (size_t)len, f), (size_t)len);
	buf[len] = 0;
	fclose(f);
	return buf;
}

/* Read the numbers of "mat KEY r c" (or "ivec KEY n") into out (count values). */
static void golden_vals(const char *text, const char *tag, const char *key, double *out,
			size_t count)
{
	char pat[64];
	const char *p;
	char *end;

	snprintf(pat, sizeof(pat), "\n%s %s ", tag, key);
	p = strstr(text, pat);
	cr_assert_not_null(p, "golden key %s", key);
	p = strchr(p + 1, '\n');
	for (size_t k = 0; k < count; k++) {
		out[k] = strtod(p, &end);
		cr_assert_neq(end, p, "golden %s value %zu", key, k);
		p = end;
	}
}

/* The value of "real KEY value". */
static double golden_real(const char *text, const char *key)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\nreal %s ", key);
	p = strstr(text, pat);
	cr_assert_not_null(p, "golden key %s", key);
	return strtod(p + strlen(pat), NULL);
}

Test(train, golden_sgd_contrastive_trajectory)
{
	enum { DI = 6, DO = 4, N = 8 };
	const char *dir = getenv("SV_SHARED_DIR");
	char path[4096], key[32];
	char *text;
	double v[N * DI], w[DI * DO], yv[N], x2[N * DI], loss;
	float W[DI * DO], xa[DI], xb[DI];
	struct sv_train_params p;
	struct sv_step_stats st;
	sv_trainer *t;
	sv_batch *b;

	cr_assert_not_null(dir, "SV_SHARED_DIR not set");
	snprintf(path, sizeof(path), "%s/reference/golden/optim_sgd_contrastive.txt", dir);
	text = slurp(path);
	golden_vals(text, "mat", "W0", w, DI * DO);
	for (size_t k = 0; k < DI * DO; k++)
		W[k] = (float)w[k];
	default_params(&p, DI, DO, N, SV_LOSS_KIND_CONTRASTIVE);
	sv_optim_params_default(&p.optim, SV_OPTIM_KIND_SGD);
	p.optim.lr = 0.1;
	p.optim.momentum = 0.9;
	cr_assert_eq(sv_trainer_new(&t, &p, W), 0);
	cr_assert_eq(sv_batch_new(&b, N, DI), 0);
	for (int s = 1; s <= 3; s++) {
		snprintf(key, sizeof(key), "s%d.X1", s);
		golden_vals(text, "mat", key, v, N * DI);
		snprintf(key, sizeof(key), "s%d.X2", s);
		golden_vals(text, "mat", key, x2, N * DI);
		snprintf(key, sizeof(key), "s%d.y", s);
		golden_vals(text, "ivec", key, yv, N);
		sv_batch_clear(b);
		for (size_t i = 0; i < N; i++) {
			for (size_t j = 0; j < DI; j++) {
				xa[j] = (float)v[i * DI + j];
				xb[j] = (float)x2[i * DI + j];
			}
			cr_assert_eq(sv_batch_add(b, xa, 2 * i, xb, 2 * i + 1, (uint8_t)yv[i], 0), 0);
		}
		cr_assert_eq(sv_trainer_step(t, b, NULL, &st), 0);
		snprintf(key, sizeof(key), "s%d.loss", s);
		loss = golden_real(text, key);
		cr_assert_float_eq(st.loss.loss, loss, 1e-5 * fmax(1.0, fabs(loss)), "step %d loss", s);
		snprintf(key, sizeof(key), "s%d.W", s);
		golden_vals(text, "mat", key, w, DI * DO);
		for (size_t k = 0; k < DI * DO; k++)
			cr_assert_float_eq(sv_trainer_weights(t)[k], w[k], 1e-5,
					   "step %d W[%zu] %.8g vs %.8g", s, k,
					   sv_trainer_weights(t)[k], w[k]);
	}
	sv_batch_free(b);
	sv_trainer_free(t);
	free(text);
}
