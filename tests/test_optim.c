/* test_optim.c - sv/optim.h: the golden optimizer cases fed the recorded
 * gradients s<t>.dW reproduce s<t>.W (within 1e-5 * max|W| + 1e-6, float32
 * storage), update rules against a double loop (SGD variants, AdamW's decay),
 * save/load bit-exact and continuing identically, parameter checks and
 * load errors. */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "golden.h" /* tools/refcheck/golden.c, linked in */
#include "sv/error.h"
#include "sv/optim.h"

static struct golden_case *load_case(const char *name)
{
	const char *dir = getenv("SV_SHARED_DIR");
	cr_assert(dir, "SV_SHARED_DIR not set");
	char path[1024];
	snprintf(path, sizeof(path), "%s/reference/golden/%s.txt", dir, name);
	struct golden_case *c;
	cr_assert_eq(golden_load(path, &c, NULL), 0, "cannot read %s", path);
	return c;
}

static void replay_golden(const char *name, struct sv_optim_params *p)
{
	struct golden_case *c = load_case(name);
	size_t di = (size_t)golden_real(c, "d_in", 0), dd = (size_t)golden_real(c, "d_out", 0);
	int steps = (int)golden_real(c, "steps", 0);
	cr_assert_gt(steps, 0);
	size_t nw = di * dd;
	float *W = malloc(nw * sizeof(float)), *g = malloc(nw * sizeof(float));
	const double *w0 = golden_mat(c, "W0", di, dd);
	cr_assert(w0);
	for (size_t i = 0; i < nw; i++)
		W[i] = (float)w0[i];
	struct sv_optim *o;
	cr_assert_eq(sv_optim_new(&o, p, nw), 0);
	for (int t = 1; t <= steps; t++) {
		char k[32];
		snprintf(k, sizeof(k), "s%d.dW", t);
		const double *dw = golden_mat(c, k, di, dd);
		snprintf(k, sizeof(k), "s%d.W", t);
		const double *wt = golden_mat(c, k, di, dd);
		cr_assert(dw && wt);
		for (size_t i = 0; i < nw; i++)
			g[i] = (float)dw[i];
		sv_optim_step(o, W, g);
		double maxw = 0;
		for (size_t i = 0; i < nw; i++)
			maxw = fmax(maxw, fabs(wt[i]));
		for (size_t i = 0; i < nw; i++)
			cr_assert(fabs(W[i] - wt[i]) <= 1e-5 * maxw + 1e-6,
			          "%s step %d W[%zu]: %.9g vs %.9g", name, t, i, W[i], wt[i]);
	}
	cr_assert_eq(o->t, (uint64_t)steps);
	sv_optim_free(o);
	free(W);
	free(g);
	golden_free(c);
}

Test(optim, golden_sgd_momentum_replays_recorded_gradients)
{
	struct sv_optim_params p;
	sv_optim_params_default(&p, SV_OPTIM_KIND_SGD);
	p.lr = 0.1;
	p.momentum = 0.9;
	replay_golden("optim_sgd_contrastive", &p);
}

Test(optim, golden_adam_replays_recorded_gradients)
{
	struct sv_optim_params p;
	sv_optim_params_default(&p, SV_OPTIM_KIND_ADAM);
	replay_golden("optim_adam_ntxent_t0.07", &p);
}

/* The torch rules written out in double for one element sequence. */
static double ref_sgd(const struct sv_optim_params *p, double w, const double *g, int steps)
{
	double b = 0;
	for (int t = 0; t < steps; t++) {
		double gi = g[t] + p->weight_decay * w;
		if (p->momentum != 0) {
			b = t == 0 ? gi : p->momentum * b + (1 - p->dampening) * gi;
			gi = p->nesterov ? gi + p->momentum * b : b;
		}
		w -= p->lr * gi;
	}
	return w;
}

static double ref_adam(const struct sv_optim_params *p, double w, const double *g, int steps)
{
	double m = 0, v = 0;
	for (int t = 1; t <= steps; t++) {
		double gi = g[t - 1];
		if (p->kind == SV_OPTIM_KIND_ADAMW)
			w *= 1 - p->lr * p->weight_decay;
		else
			gi += p->weight_decay * w;
		m = p->beta1 * m + (1 - p->beta1) * gi;
		v = p->beta2 * v + (1 - p->beta2) * gi * gi;
		double bc1 = 1 - pow(p->beta1, t), bc2 = 1 - pow(p->beta2, t);
		w -= p->lr / bc1 * m / (sqrt(v) / sqrt(bc2) + p->eps);
	}
	return w;
}

static void check_rule(struct sv_optim_params *p)
{
	const int steps = 5;
	const size_t n = 7;
	double g[7][5];
	float W[7], w0[7];
	for (size_t i = 0; i < n; i++) {
		w0[i] = W[i] = (float)(0.3 * (double)i - 1.0);
		for (int t = 0; t < steps; t++)
			g[i][t] = sin(1.0 + (double)i * 0.7 + (double)t * 1.3);
	}
	struct sv_optim *o;
	cr_assert_eq(sv_optim_new(&o, p, n), 0);
	for (int t = 0; t < steps; t++) {
		float gr[7];
		for (size_t i = 0; i < n; i++)
			gr[i] = (float)g[i][t];
		sv_optim_step(o, W, gr);
	}
	for (size_t i = 0; i < n; i++) {
		double want = p->kind == SV_OPTIM_KIND_SGD ? ref_sgd(p, w0[i], g[i], steps)
		                                           : ref_adam(p, w0[i], g[i], steps);
		cr_assert(fabs(W[i] - want) < 1e-5, "kind %d W[%zu] %.9g vs %.9g", p->kind, i, W[i],
		          want);
	}
	sv_optim_free(o);
}

Test(optim, sgd_variants_follow_torch_rules)
{
	struct sv_optim_params p;
	sv_optim_params_default(&p, SV_OPTIM_KIND_SGD);
	check_rule(&p);
	p.momentum = 0.9;
	p.dampening = 0.3;
	p.weight_decay = 0.01;
	check_rule(&p);
	p.dampening = 0;
	p.nesterov = 1;
	check_rule(&p);
}

Test(optim, adam_and_adamw_follow_torch_rules)
{
	struct sv_optim_params p;
	sv_optim_params_default(&p, SV_OPTIM_KIND_ADAM);
	p.lr = 0.05;
	check_rule(&p);
	p.weight_decay = 0.1;
	check_rule(&p);
	sv_optim_params_default(&p, SV_OPTIM_KIND_ADAMW);
	p.lr = 0.05;
	p.weight_decay = 0.5;
	check_rule(&p);
}

Test(optim, adamw_decay_is_decoupled)
{
	/* zero gradient: Adam's update is 0, only W *= 1 - lr*wd remains */
	struct sv_optim_params p;
	sv_optim_params_default(&p, SV_OPTIM_KIND_ADAMW);
	p.lr = 0.1;
	p.weight_decay = 0.5;
	struct sv_optim *o;
	cr_assert_eq(sv_optim_new(&o, &p, 2), 0);
	float W[2] = {2.0f, -4.0f}, g[2] = {0, 0};
	sv_optim_step(o, W, g);
	cr_assert_float_eq(W[0], 2.0f * 0.95f, 1e-7);
	cr_assert_float_eq(W[1], -4.0f * 0.95f, 1e-7);
	sv_optim_free(o);
	/* plain Adam with the same weight decay moves by ~lr instead */
	p.kind = SV_OPTIM_KIND_ADAM;
	cr_assert_eq(sv_optim_new(&o, &p, 2), 0);
	W[0] = 2.0f;
	g[0] = 0;
	sv_optim_step(o, W, g);
	cr_assert(fabs(W[0] - 1.9) < 1e-6);
	sv_optim_free(o);
}

static void roundtrip(enum sv_optim_kind kind)
{
	struct sv_optim_params p;
	sv_optim_params_default(&p, kind);
	if (kind == SV_OPTIM_KIND_SGD)
		p.momentum = 0.9;
	const size_t n = 33;
	float Wa[33], Wb[33], g[33];
	for (size_t i = 0; i < n; i++)
		Wa[i] = (float)cos((double)i);
	struct sv_optim *a, *b;
	cr_assert_eq(sv_optim_new(&a, &p, n), 0);
	for (int t = 0; t < 3; t++) {
		for (size_t i = 0; i < n; i++)
			g[i] = (float)sin((double)(i * 3 + t));
		sv_optim_step(a, Wa, g);
	}
	size_t sz = sv_optim_saved_size(a);
	unsigned char *buf = malloc(sz), *buf2 = malloc(sz);
	cr_assert_eq(sv_optim_save(a, buf, sz - 1), SV_ERR_TOOBIG);
	cr_assert_eq(sv_optim_save(a, buf, sz), (long)sz);
	cr_assert_eq(sv_optim_load(&b, buf, sz), 0);
	cr_assert_eq(b->t, a->t);
	cr_assert_eq(memcmp(&b->p, &a->p, sizeof(a->p)), 0);
	cr_assert_eq(memcmp(b->buf1, a->buf1, n * sizeof(float)), 0);
	if (kind != SV_OPTIM_KIND_SGD)
		cr_assert_eq(memcmp(b->buf2, a->buf2, n * sizeof(float)), 0);
	cr_assert_eq(sv_optim_save(b, buf2, sz), (long)sz);
	cr_assert_eq(memcmp(buf, buf2, sz), 0);
	memcpy(Wb, Wa, sizeof(Wa));
	for (int t = 3; t < 6; t++) {
		float ga[33], gb[33];
		for (size_t i = 0; i < n; i++)
			ga[i] = gb[i] = (float)sin((double)(i * 3 + t));
		sv_optim_step(a, Wa, ga);
		sv_optim_step(b, Wb, gb);
	}
	cr_assert_eq(memcmp(Wa, Wb, sizeof(Wa)), 0);
	/* load errors */
	struct sv_optim *c;
	cr_assert_eq(sv_optim_load(&c, buf, 4), SV_ERR_TRUNCATED);
	cr_assert_eq(sv_optim_load(&c, buf, sz - 1), SV_ERR_TRUNCATED);
	buf[sz / 2] ^= 1;
	cr_assert_eq(sv_optim_load(&c, buf, sz), SV_ERR_CORRUPT);
	buf[sz / 2] ^= 1;
	buf[4] = 99;
	cr_assert_eq(sv_optim_load(&c, buf, sz), SV_ERR_VERSION);
	buf[4] = 1;
	buf[0] = 'X';
	cr_assert_eq(sv_optim_load(&c, buf, sz), SV_ERR_CORRUPT);
	sv_optim_free(a);
	sv_optim_free(b);
	free(buf);
	free(buf2);
}

Test(optim, save_load_is_bit_exact_and_continues_identically)
{
	roundtrip(SV_OPTIM_KIND_SGD);
	roundtrip(SV_OPTIM_KIND_ADAM);
	roundtrip(SV_OPTIM_KIND_ADAMW);
}

Test(optim, params_check_rejects_out_of_range)
{
	struct sv_optim_params p;
	sv_optim_params_default(&p, SV_OPTIM_KIND_SGD);
	cr_assert_eq(sv_optim_params_check(&p), 0);
	cr_assert_eq(p.lr, 0.01);
	p.lr = 0;
	cr_assert_eq(sv_optim_params_check(&p), SV_ERR_RANGE);
	p.lr = 0.1;
	p.momentum = 1.0;
	cr_assert_eq(sv_optim_params_check(&p), SV_ERR_RANGE);
	p.momentum = 0;
	p.nesterov = 1; /* needs momentum */
	cr_assert_eq(sv_optim_params_check(&p), SV_ERR_RANGE);
	p.momentum = 0.9;
	p.dampening = 0.1; /* nesterov needs dampening 0 */
	cr_assert_eq(sv_optim_params_check(&p), SV_ERR_RANGE);
	p.dampening = 0;
	cr_assert_eq(sv_optim_params_check(&p), 0);
	p.weight_decay = -1;
	cr_assert_eq(sv_optim_params_check(&p), SV_ERR_RANGE);
	cr_assert_eq(sv_optim_params_check(NULL), SV_ERR_RANGE);
	sv_optim_params_default(&p, SV_OPTIM_KIND_ADAMW);
	cr_assert_eq(p.weight_decay, 1e-2);
	cr_assert_eq(sv_optim_params_check(&p), 0);
	p.beta2 = 1.0;
	cr_assert_eq(sv_optim_params_check(&p), SV_ERR_RANGE);
	p.beta2 = 0.999;
	p.eps = 0;
	cr_assert_eq(sv_optim_params_check(&p), SV_ERR_RANGE);
	p.eps = 1e-8;
	p.kind = 9;
	cr_assert_eq(sv_optim_params_check(&p), SV_ERR_RANGE);
	struct sv_optim *o;
	cr_assert_eq(sv_optim_new(&o, &p, 4), SV_ERR_RANGE);
	/* set_params: same kind only */
	sv_optim_params_default(&p, SV_OPTIM_KIND_ADAM);
	cr_assert_eq(sv_optim_new(&o, &p, 4), 0);
	p.lr = 0.5;
	cr_assert_eq(sv_optim_set_params(o, &p), 0);
	cr_assert_eq(o->p.lr, 0.5);
	p.lr = -1;
	cr_assert_eq(sv_optim_set_params(o, &p), SV_ERR_RANGE);
	sv_optim_params_default(&p, SV_OPTIM_KIND_SGD);
	cr_assert_eq(sv_optim_set_params(o, &p), SV_ERR_STATE);
	sv_optim_free(o);
	sv_optim_free(NULL);
}
