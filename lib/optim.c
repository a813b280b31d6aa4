/* optim.c - SGD, Adam and AdamW updates with torch's rules, and the
 * bit-exact byte format of the state (sv/optim.h, LOSSES.md section 10).
 * Leaves out: learning-rate schedules, amsgrad, maximize, parameter groups. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3", "-fno-trapping-math")
#endif
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "sv/error.h"
#include "sv/optim.h"

#define MAGIC "SVOP"
#define FORMAT_VERSION 1u
#define HEADER_BYTES 88u

/* The element loops are also built for AVX2 where GCC can dispatch at load
 * time; fp contraction stays off (ISO C mode), so results do not depend on
 * the clone taken. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define HOT_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define HOT_CLONES
#endif

void sv_optim_params_default(struct sv_optim_params *p, enum sv_optim_kind kind)
{
	if (!p)
		return;
	memset(p, 0, sizeof(*p));
	p->kind = kind;
	p->beta1 = 0.9;
	p->beta2 = 0.999;
	p->eps = 1e-8;
	if (kind == SV_OPTIM_KIND_SGD) {
		p->lr = 0.01;
	} else {
		p->lr = 1e-3;
		p->weight_decay = kind == SV_OPTIM_KIND_ADAMW ? 1e-2 : 0.0;
	}
}

int sv_optim_params_check(const struct sv_optim_params *p)
{
	if (!p)
		return SV_ERR_RANGE;
	if (p->kind != SV_OPTIM_KIND_SGD && p->kind != SV_OPTIM_KIND_ADAM &&
	    p->kind != SV_OPTIM_KIND_ADAMW)
		return SV_ERR_RANGE;
	if (!(p->lr > 0.0 && isfinite(p->lr)))
		return SV_ERR_RANGE;
	if (!(p->weight_decay >= 0.0 && isfinite(p->weight_decay)))
		return SV_ERR_RANGE;
	if (p->kind == SV_OPTIM_KIND_SGD) {
		if (!(p->momentum >= 0.0 && p->momentum < 1.0))
			return SV_ERR_RANGE;
		if (!(p->dampening >= 0.0 && p->dampening <= 1.0))
			return SV_ERR_RANGE;
		if (p->nesterov && !(p->momentum > 0.0 && p->dampening == 0.0))
			return SV_ERR_RANGE;
	} else {
		if (!(p->beta1 >= 0.0 && p->beta1 < 1.0 && p->beta2 >= 0.0 && p->beta2 < 1.0))
			return SV_ERR_RANGE;
		if (!(p->eps > 0.0 && isfinite(p->eps)))
			return SV_ERR_RANGE;
	}
	return 0;
}

static int alloc_bufs(struct sv_optim *o)
{
	size_t n = o->n ? o->n : 1;
	o->buf1 = calloc(n, sizeof(float));
	if (!o->buf1)
		return -ENOMEM;
	if (o->p.kind != SV_OPTIM_KIND_SGD) {
		o->buf2 = calloc(n, sizeof(float));
		if (!o->buf2)
			return -ENOMEM;
	}
	return 0;
}

int sv_optim_new(struct sv_optim **out, const struct sv_optim_params *p, size_t n)
{
	int rc = sv_optim_params_check(p);
	if (rc)
		return rc;
	if (!out)
		return -EINVAL;
	struct sv_optim *o = calloc(1, sizeof(*o));
	if (!o)
		return -ENOMEM;
	o->p = *p;
	o->n = n;
	rc = alloc_bufs(o);
	if (rc) {
		sv_optim_free(o);
		return rc;
	}
	*out = o;
	return 0;
}

void sv_optim_free(struct sv_optim *o)
{
	if (!o)
		return;
	free(o->buf1);
	free(o->buf2);
	free(o);
}

int sv_optim_set_params(struct sv_optim *o, const struct sv_optim_params *p)
{
	int rc = sv_optim_params_check(p);
	if (rc)
		return rc;
	if (p->kind != o->p.kind)
		return SV_ERR_STATE;
	o->p = *p;
	return 0;
}

static void step_sgd(struct sv_optim *o, float *W, const float *grad)
{
	const double lr = o->p.lr, wd = o->p.weight_decay, mom = o->p.momentum;
	const double damp = o->p.dampening;
	const int nest = o->p.nesterov, first = !o->buf1_init;
	float *b = o->buf1;
	for (size_t i = 0; i < o->n; i++) {
		double g = (double)grad[i];
		if (wd != 0.0)
			g += wd * (double)W[i];
		if (mom != 0.0) {
			double bi = first ? g : mom * (double)b[i] + (1.0 - damp) * g;
			b[i] = (float)bi;
			g = nest ? g + mom * bi : bi;
		}
		W[i] = (float)((double)W[i] - lr * g);
	}
	if (mom != 0.0)
		o->buf1_init = 1;
}

/* Adam / AdamW in float32, operation by operation as torch 1.13's
 * single-tensor Adam does it on float tensors (its scalars rounded to
 * float): g += wd W (Adam); W *= 1 - lr wd (AdamW); m = m b1 + (1 - b1) g;
 * v = v b2 + ((1 - b2) g) g; W += -step (m / (sqrt(v) / sqrt(bc2) + eps)).
 * sqrtf is the correctly rounded square root, inline and vectorized: the
 * library is built with -fno-math-errno (lib/meson.build). */
HOT_CLONES static void adam_loop(float *restrict W, const float *restrict grad, float *restrict m,
                                 float *restrict v, size_t n, float decay, float l2, float b1,
                                 float omb1, float b2, float omb2, float eps, float nstep,
                                 float bc2s)
{
	for (size_t i = 0; i < n; i++) {
		float w = W[i];
		float g = grad[i] + l2 * w;
		float mi = m[i] * b1 + omb1 * g;
		float vi = v[i] * b2 + omb2 * g * g;
		m[i] = mi;
		v[i] = vi;
		W[i] = w * decay + nstep * (mi / (sqrtf(vi) / bc2s + eps));
	}
}

static void step_adam(struct sv_optim *o, float *W, const float *grad)
{
	const double b1 = o->p.beta1, b2 = o->p.beta2, t = (double)o->t;
	const double bc1 = 1.0 - pow(b1, t), bc2 = 1.0 - pow(b2, t);
	const int decoupled = o->p.kind == SV_OPTIM_KIND_ADAMW;
	const double wd = o->p.weight_decay;
	adam_loop(W, grad, o->buf1, o->buf2, o->n, decoupled ? (float)(1.0 - o->p.lr * wd) : 1.0f,
	          decoupled ? 0.0f : (float)wd, (float)b1, (float)(1.0 - b1), (float)b2,
	          (float)(1.0 - b2), (float)o->p.eps, (float)(-(o->p.lr / bc1)), (float)sqrt(bc2));
}

void sv_optim_step(struct sv_optim *o, float *W, float *grad)
{
	o->t++;
	if (o->p.kind == SV_OPTIM_KIND_SGD)
		step_sgd(o, W, grad);
	else
		step_adam(o, W, grad);
}

/* ---- byte format ----------------------------------------------------------- */

static size_t nbufs(enum sv_optim_kind k)
{
	return k == SV_OPTIM_KIND_SGD ? 1 : 2;
}

size_t sv_optim_saved_size(const struct sv_optim *o)
{
	return HEADER_BYTES + nbufs(o->p.kind) * o->n * 4 + 8;
}

static void put_floats(unsigned char *b, const float *f, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint32_t v;
		memcpy(&v, &f[i], 4);
		sv_put32(b + 4 * i, v);
	}
}

static void get_floats(float *f, const unsigned char *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint32_t v = sv_get32(b + 4 * i);
		memcpy(&f[i], &v, 4);
	}
}

long sv_optim_save(const struct sv_optim *o, void *buf, size_t cap)
{
	size_t need = sv_optim_saved_size(o);
	if (cap < need || need > (size_t)0x7fffffffffffffffLL)
		return SV_ERR_TOOBIG;
	unsigned char *b = buf;
	memcpy(b, MAGIC, 4);
	sv_put32(b + 4, FORMAT_VERSION);
	sv_put32(b + 8, (uint32_t)o->p.kind);
	sv_put32(b + 12, (o->p.nesterov ? 1u : 0u) | (o->buf1_init ? 2u : 0u));
	sv_put64(b + 16, (uint64_t)o->n);
	sv_put64(b + 24, o->t);
	sv_putf64(b + 32, o->p.lr);
	sv_putf64(b + 40, o->p.momentum);
	sv_putf64(b + 48, o->p.dampening);
	sv_putf64(b + 56, o->p.weight_decay);
	sv_putf64(b + 64, o->p.beta1);
	sv_putf64(b + 72, o->p.beta2);
	sv_putf64(b + 80, o->p.eps);
	size_t off = HEADER_BYTES;
	put_floats(b + off, o->buf1, o->n);
	off += 4 * o->n;
	if (nbufs(o->p.kind) == 2) {
		put_floats(b + off, o->buf2, o->n);
		off += 4 * o->n;
	}
	sv_put64(b + off, sv_fnv1a64(SV_FNV1A64_INIT, b, off));
	return (long)need;
}

int sv_optim_load(struct sv_optim **out, const void *buf, size_t len)
{
	const unsigned char *b = buf;
	if (!out || (!buf && len))
		return -EINVAL;
	if (len < 8)
		return SV_ERR_TRUNCATED;
	if (memcmp(b, MAGIC, 4))
		return SV_ERR_CORRUPT;
	if (sv_get32(b + 4) != FORMAT_VERSION)
		return SV_ERR_VERSION;
	if (len < HEADER_BYTES)
		return SV_ERR_TRUNCATED;
	struct sv_optim_params p;
	memset(&p, 0, sizeof(p));
	uint32_t kind = sv_get32(b + 8), flags = sv_get32(b + 12);
	if (kind > SV_OPTIM_KIND_ADAMW || (flags & ~3u))
		return SV_ERR_CORRUPT;
	p.kind = (enum sv_optim_kind)kind;
	p.nesterov = (int)(flags & 1u);
	uint64_t n64 = sv_get64(b + 16);
	p.lr = sv_getf64(b + 32);
	p.momentum = sv_getf64(b + 40);
	p.dampening = sv_getf64(b + 48);
	p.weight_decay = sv_getf64(b + 56);
	p.beta1 = sv_getf64(b + 64);
	p.beta2 = sv_getf64(b + 72);
	p.eps = sv_getf64(b + 80);
	if (n64 > (SIZE_MAX - HEADER_BYTES - 8) / 8)
		return SV_ERR_CORRUPT;
	size_t n = (size_t)n64;
	size_t need = HEADER_BYTES + nbufs(p.kind) * n * 4 + 8;
	if (len < need)
		return SV_ERR_TRUNCATED;
	if (len != need || sv_get64(b + need - 8) != sv_fnv1a64(SV_FNV1A64_INIT, b, need - 8))
		return SV_ERR_CORRUPT;
	if (sv_optim_params_check(&p))
		return SV_ERR_CORRUPT;
	struct sv_optim *o;
	int rc = sv_optim_new(&o, &p, n);
	if (rc)
		return rc;
	o->t = sv_get64(b + 24);
	o->buf1_init = (flags & 2u) != 0;
	get_floats(o->buf1, b + HEADER_BYTES, n);
	if (nbufs(p.kind) == 2)
		get_floats(o->buf2, b + HEADER_BYTES + 4 * n, n);
	*out = o;
	return 0;
}
