/* sv-refcheck - run golden cases (../shared/reference/golden) through
 * libsimverify and compare with PML's float64 results.
 *
 *   sv-refcheck [-v] DIR_OR_FILE...
 *
 * Every *.txt file in each DIR (or each FILE given) is one case.  Prints
 * `ok NAME` or `FAIL NAME: QUANTITY MAX-ABS-ERR MAX-REL-ERR` per case, then
 * `N passed, N failed`; exits 1 if any case failed or could not be read.
 * With -v, ok lines also list every quantity's errors.
 *
 * Loss cases: E, loss (and pos_loss/neg_loss), dZ, dW and the pair counts.
 * Optimizer cases: the whole step pipeline at the current W (forward, loss,
 * backward, sv_optim_step), comparing loss, dW and W after every step.
 *
 * Errors: abs = max |got - ref| over the elements, rel = abs / max(1e-300,
 * max |ref|).  Tolerances (float32 implementation vs float64 goldens,
 * LOSSES.md section 9):
 *   loss, pos_loss, neg_loss   abs <= 1e-5 * max(1, |L|)
 *   E                          abs <= 1e-6
 *   dW                         abs <= 1e-5 * max|dW| + 1e-6
 *   dZ                         abs <= 1e-5 * max|dZ| + 1e-6  (same bound as dW:
 *                              dW = X^T dZ is linear in dZ, so dZ can be no
 *                              looser than dW allows for well-scaled X)
 *   optimizer W_t              abs <= 1e-5 * max|W_t| + 1e-6  (float32
 *                              storage of W costs ~6e-8 relative per step;
 *                              the rest covers the float32 gradients carried
 *                              through lr and Adam's normalized steps).
 *                              Adam/AdamW only: an element whose recorded
 *                              gradient was, at some step so far, within the
 *                              dW tolerance of 0 is left out, because there
 *                              float32 cannot fix the sign of g and Adam's
 *                              first steps move by about lr * sign(g); the
 *                              count left out is shown with -v.
 *   counts                     exact
 * Leaves out: graph mode (the golden format has no keys).
 */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "golden.h"
#include "sv/error.h"
#include "sv/loss.h"
#include "sv/model.h"
#include "sv/optim.h"

struct verdict {
	int failed;
	char what[96];
	double abs, rel;
	char detail[1024];
	int verbose;
};

static void note(struct verdict *v, const char *what, double abs, double rel, double tol)
{
	int bad = !(abs <= tol);
	if (v->verbose) {
		size_t len = strlen(v->detail);
		snprintf(v->detail + len, sizeof(v->detail) - len, " %s %.2g/%.2g", what, abs, rel);
	}
	if (bad && !v->failed) {
		v->failed = 1;
		snprintf(v->what, sizeof(v->what), "%s", what);
		v->abs = abs;
		v->rel = rel;
	}
}

static void fail_msg(struct verdict *v, const char *what)
{
	if (!v->failed) {
		v->failed = 1;
		snprintf(v->what, sizeof(v->what), "%s", what);
		v->abs = NAN;
		v->rel = NAN;
	}
}

/* skip (may be NULL): elements left out of the error (see run_optim_case) */
static void cmp_array_skip(struct verdict *v, const char *what, const float *got, const double *ref,
                           const unsigned char *skip, size_t cnt, double rel_tol, double abs_tol)
{
	double maxref = 0.0, maxerr = 0.0;
	for (size_t i = 0; i < cnt; i++) {
		double r = fabs(ref[i]), e = fabs((double)got[i] - ref[i]);
		if (r > maxref)
			maxref = r;
		if (skip && skip[i])
			continue;
		if (!(e <= maxerr))
			maxerr = e; /* NaN sticks */
	}
	note(v, what, maxerr, maxerr / (maxref > 1e-300 ? maxref : 1e-300),
	     rel_tol * maxref + abs_tol);
}

static void cmp_array(struct verdict *v, const char *what, const float *got, const double *ref,
                      size_t cnt, double rel_tol, double abs_tol)
{
	cmp_array_skip(v, what, got, ref, NULL, cnt, rel_tol, abs_tol);
}

static void cmp_scalar(struct verdict *v, const char *what, double got, double ref)
{
	double e = fabs(got - ref);
	note(v, what, e, e / (fabs(ref) > 1e-300 ? fabs(ref) : 1e-300),
	     1e-5 * (fabs(ref) > 1.0 ? fabs(ref) : 1.0));
}

static void cmp_count(struct verdict *v, const struct golden_case *c, const char *key, size_t got)
{
	const struct golden_entry *e = golden_find(c, key);
	if (!e || e->type != GOLDEN_TYPE_INT)
		return;
	double err = fabs((double)got - e->v[0]);
	note(v, key, err, e->v[0] != 0.0 ? err / fabs(e->v[0]) : err, 0.0);
}

static float *to_float(const double *src, size_t cnt)
{
	float *f = malloc((cnt ? cnt : 1) * sizeof(*f));
	if (f)
		for (size_t i = 0; i < cnt; i++)
			f[i] = (float)src[i];
	return f;
}

static int loss_params(const struct golden_case *c, struct sv_loss_params *p)
{
	const char *fn = golden_str(c, "loss_fn"), *mode = golden_str(c, "mode");
	if (!fn || !mode)
		return -1;
	if (!strcmp(fn, "contrastive"))
		sv_loss_params_default(p, SV_LOSS_KIND_CONTRASTIVE);
	else if (!strcmp(fn, "ntxent"))
		sv_loss_params_default(p, SV_LOSS_KIND_NTXENT);
	else
		return -1;
	if (!strcmp(mode, "batch"))
		p->mode = SV_LABEL_MODE_BATCH;
	else if (!strcmp(mode, "pairs"))
		p->mode = SV_LABEL_MODE_PAIRS;
	else
		return -1;
	p->pos_margin = (float)golden_real(c, "pos_margin", p->pos_margin);
	p->neg_margin = (float)golden_real(c, "neg_margin", p->neg_margin);
	p->temperature = (float)golden_real(c, "temperature", p->temperature);
	return 0;
}

/* Forward, loss and backward at W for one batch (prefix "" or "s<t>.").
 * On success X, E, G (= dZ) and dW hold the results. */
struct pipe {
	size_t n;
	uint32_t d_in, d_out;
	float *X, *E, *norms, *G, *dW;
	uint8_t *y;
	sv_loss_ws *ws;
	struct sv_loss_stats st;
};

static int pipe_run(struct pipe *pp, const struct golden_case *c, const char *prefix,
                    const struct sv_loss_params *lp, const float *W)
{
	char k1[64], k2[64], ky[64];
	snprintf(k1, sizeof(k1), "%sX1", prefix);
	snprintf(k2, sizeof(k2), "%sX2", prefix);
	snprintf(ky, sizeof(ky), "%sy", prefix);
	size_t n = pp->n;
	const double *x1 = golden_mat(c, k1, n, pp->d_in), *x2 = golden_mat(c, k2, n, pp->d_in);
	const double *y = golden_mat(c, ky, 1, n);
	if (!x1 || !x2 || !y)
		return -1;
	for (size_t i = 0; i < n * pp->d_in; i++) {
		pp->X[i] = (float)x1[i];
		pp->X[n * pp->d_in + i] = (float)x2[i];
	}
	for (size_t i = 0; i < n; i++)
		pp->y[i] = y[i] != 0.0;
	struct sv_pair_labels lab = {.n = n, .y = pp->y, .keys = NULL};
	if (sv_model_forward(pp->X, 2 * n, W, pp->d_in, pp->d_out, pp->E, pp->norms))
		return -1;
	if (sv_loss_eval(pp->ws, lp, &lab, pp->E, pp->d_out, pp->G, &pp->st))
		return -1;
	if (sv_model_backward(pp->X, 2 * n, pp->E, pp->norms, pp->G, pp->d_in, pp->d_out, pp->dW))
		return -1;
	return 0;
}

static int pipe_new(struct pipe *pp, size_t n, uint32_t d_in, uint32_t d_out)
{
	memset(pp, 0, sizeof(*pp));
	pp->n = n;
	pp->d_in = d_in;
	pp->d_out = d_out;
	size_t m = 2 * n;
	pp->X = malloc(m * d_in * sizeof(float));
	pp->E = malloc(m * d_out * sizeof(float));
	pp->G = malloc(m * d_out * sizeof(float));
	pp->norms = malloc(m * sizeof(float));
	pp->dW = malloc((size_t)d_in * d_out * sizeof(float));
	pp->y = malloc(n);
	if (!pp->X || !pp->E || !pp->G || !pp->norms || !pp->dW || !pp->y)
		return -ENOMEM;
	return sv_loss_ws_new(&pp->ws, n, d_out);
}

static void pipe_free(struct pipe *pp)
{
	free(pp->X);
	free(pp->E);
	free(pp->G);
	free(pp->norms);
	free(pp->dW);
	free(pp->y);
	sv_loss_ws_free(pp->ws);
}

static int dims(const struct golden_case *c, size_t *n, uint32_t *d_in, uint32_t *d_out)
{
	double dn = golden_real(c, "n", -1), di = golden_real(c, "d_in", -1);
	double dd = golden_real(c, "d_out", -1);
	if (!(dn >= 1 && dn < 1e7 && di >= 1 && di < 1e7 && dd >= 1 && dd < 1e7))
		return -1;
	*n = (size_t)dn;
	*d_in = (uint32_t)di;
	*d_out = (uint32_t)dd;
	return 0;
}

static void run_loss_case(const struct golden_case *c, struct verdict *v)
{
	struct sv_loss_params lp;
	size_t n;
	uint32_t d_in, d_out;
	struct pipe pp;
	float *W = NULL;
	if (loss_params(c, &lp) || dims(c, &n, &d_in, &d_out)) {
		fail_msg(v, "unsupported-or-missing-params");
		return;
	}
	if (pipe_new(&pp, n, d_in, d_out)) {
		fail_msg(v, "out-of-memory");
		goto out;
	}
	const double *w = golden_mat(c, "W", d_in, d_out);
	if (!w || !(W = to_float(w, (size_t)d_in * d_out)) || pipe_run(&pp, c, "", &lp, W)) {
		fail_msg(v, "missing-input-or-eval-error");
		goto out;
	}
	size_t m = 2 * n;
	const double *ref;
	cmp_scalar(v, "loss", pp.st.loss, golden_real(c, "loss", NAN));
	if (golden_find(c, "pos_loss"))
		cmp_scalar(v, "pos_loss", pp.st.pos_loss, golden_real(c, "pos_loss", NAN));
	if (golden_find(c, "neg_loss"))
		cmp_scalar(v, "neg_loss", pp.st.neg_loss, golden_real(c, "neg_loss", NAN));
	if ((ref = golden_mat(c, "E", m, d_out)))
		cmp_array(v, "E", pp.E, ref, m * d_out, 0.0, 1e-6);
	if ((ref = golden_mat(c, "dZ", m, d_out)))
		cmp_array(v, "dZ", pp.G, ref, m * d_out, 1e-5, 1e-6);
	if ((ref = golden_mat(c, "dW", d_in, d_out)))
		cmp_array(v, "dW", pp.dW, ref, (size_t)d_in * d_out, 1e-5, 1e-6);
	else
		fail_msg(v, "dW-missing");
	cmp_count(v, c, "n_pos_pairs", pp.st.n_pos_pairs);
	cmp_count(v, c, "n_neg_pairs", pp.st.n_neg_pairs);
	cmp_count(v, c, "n_pos_active", pp.st.n_pos_active);
	cmp_count(v, c, "n_neg_active", pp.st.n_neg_active);
out:
	free(W);
	pipe_free(&pp);
}

static int optim_params(const struct golden_case *c, struct sv_optim_params *op)
{
	const char *name = golden_str(c, "optimizer");
	if (!name)
		return -1;
	if (!strcmp(name, "sgd"))
		sv_optim_params_default(op, SV_OPTIM_KIND_SGD);
	else if (!strcmp(name, "adam"))
		sv_optim_params_default(op, SV_OPTIM_KIND_ADAM);
	else if (!strcmp(name, "adamw"))
		sv_optim_params_default(op, SV_OPTIM_KIND_ADAMW);
	else
		return -1;
	if (golden_real(c, "amsgrad", 0) != 0 || golden_real(c, "maximize", 0) != 0)
		return -1;
	op->lr = golden_real(c, "lr", op->lr);
	op->momentum = golden_real(c, "momentum", op->momentum);
	op->dampening = golden_real(c, "dampening", op->dampening);
	op->nesterov = golden_real(c, "nesterov", 0) != 0;
	op->weight_decay = golden_real(c, "weight_decay", op->weight_decay);
	op->beta1 = golden_real(c, "beta1", op->beta1);
	op->beta2 = golden_real(c, "beta2", op->beta2);
	op->eps = golden_real(c, "eps", op->eps);
	return sv_optim_params_check(op) ? -1 : 0;
}

static void run_optim_case(const struct golden_case *c, struct verdict *v)
{
	struct sv_loss_params lp;
	struct sv_optim_params op;
	struct sv_optim *o = NULL;
	size_t n;
	uint32_t d_in, d_out;
	struct pipe pp;
	float *W = NULL;
	double steps = golden_real(c, "steps", -1);
	if (loss_params(c, &lp) || optim_params(c, &op) || dims(c, &n, &d_in, &d_out) ||
	    !(steps >= 1 && steps < 1e6)) {
		fail_msg(v, "unsupported-or-missing-params");
		return;
	}
	size_t nw = (size_t)d_in * d_out;
	unsigned char *skip = calloc(nw ? nw : 1, 1);
	size_t nskip = 0;
	if (!skip || pipe_new(&pp, n, d_in, d_out) || sv_optim_new(&o, &op, nw)) {
		fail_msg(v, "out-of-memory");
		goto out;
	}
	const double *w0 = golden_mat(c, "W0", d_in, d_out);
	if (!w0 || !(W = to_float(w0, nw))) {
		fail_msg(v, "W0-missing");
		goto out;
	}
	for (int t = 1; t <= (int)steps; t++) {
		char pre[32], key[64];
		snprintf(pre, sizeof(pre), "s%d.", t);
		if (pipe_run(&pp, c, pre, &lp, W)) {
			fail_msg(v, "missing-step-input-or-eval-error");
			goto out;
		}
		const double *ref;
		snprintf(key, sizeof(key), "s%d.loss", t);
		if (golden_find(c, key))
			cmp_scalar(v, key, pp.st.loss, golden_real(c, key, NAN));
		snprintf(key, sizeof(key), "s%d.dW", t);
		if ((ref = golden_mat(c, key, d_in, d_out))) {
			cmp_array(v, key, pp.dW, ref, nw, 1e-5, 1e-6);
			double mx = 0.0;
			for (size_t i = 0; i < nw; i++)
				mx = fmax(mx, fabs(ref[i]));
			for (size_t i = 0; i < nw; i++)
				if (op.kind != SV_OPTIM_KIND_SGD &&
				    fabs(ref[i]) <= 1e-5 * mx + 1e-6 && !skip[i]) {
					skip[i] = 1;
					nskip++;
				}
		}
		sv_optim_step(o, W, pp.dW);
		snprintf(key, sizeof(key), "s%d.W", t);
		if (!(ref = golden_mat(c, key, d_in, d_out))) {
			fail_msg(v, "step-W-missing");
			goto out;
		}
		cmp_array_skip(v, key, W, ref, skip, nw, 1e-5, 1e-6);
	}
	if (v->verbose && nskip) {
		size_t len = strlen(v->detail);
		snprintf(v->detail + len, sizeof(v->detail) - len,
		         " (W: %zu of %zu elements left out)", nskip, nw);
	}
out:
	free(skip);
	free(W);
	sv_optim_free(o);
	pipe_free(&pp);
}

static int run_file(const char *path, int verbose, int *passed, int *failed)
{
	struct golden_case *c;
	int line = 0;
	int rc = golden_load(path, &c, &line);
	if (rc) {
		printf("FAIL %s: unreadable (%s, line %d) nan nan\n", path, sv_strerror(rc), line);
		(*failed)++;
		return 0;
	}
	struct verdict v;
	memset(&v, 0, sizeof(v));
	v.verbose = verbose;
	const char *kind = golden_str(c, "kind");
	if (kind && !strcmp(kind, "loss"))
		run_loss_case(c, &v);
	else if (kind && !strcmp(kind, "optimizer"))
		run_optim_case(c, &v);
	else
		fail_msg(&v, "unknown-kind");
	if (v.failed) {
		printf("FAIL %s: %s %.3g %.3g\n", c->name, v.what, v.abs, v.rel);
		(*failed)++;
	} else {
		printf("ok %s%s%s\n", c->name, verbose ? " " : "", v.detail);
		(*passed)++;
	}
	golden_free(c);
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void run_dir(const char *dir, int verbose, int *passed, int *failed)
{
	DIR *d = opendir(dir);
	if (!d) {
		if (errno == ENOTDIR) {
			run_file(dir, verbose, passed, failed);
			return;
		}
		printf("FAIL %s: cannot open (%s) nan nan\n", dir, strerror(errno));
		(*failed)++;
		return;
	}
	char **names = NULL;
	size_t cnt = 0, cap = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);
		if (len < 5 || strcmp(de->d_name + len - 4, ".txt"))
			continue;
		if (cnt == cap) {
			cap = cap ? 2 * cap : 64;
			char **nn = realloc(names, cap * sizeof(*nn));
			if (!nn)
				break;
			names = nn;
		}
		size_t plen = strlen(dir) + len + 2;
		names[cnt] = malloc(plen);
		if (!names[cnt])
			break;
		snprintf(names[cnt], plen, "%s/%s", dir, de->d_name);
		cnt++;
	}
	closedir(d);
	qsort(names, cnt, sizeof(*names), cmp_str);
	for (size_t i = 0; i < cnt; i++) {
		run_file(names[i], verbose, passed, failed);
		free(names[i]);
	}
	free(names);
}

int main(int argc, char **argv)
{
	int verbose = 0, passed = 0, failed = 0, ndirs = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-v")) {
			verbose = 1;
			continue;
		}
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			printf("usage: sv-refcheck [-v] DIR_OR_FILE...\n");
			return 0;
		}
		ndirs++;
		run_dir(argv[i], verbose, &passed, &failed);
	}
	if (!ndirs) {
		fprintf(stderr, "usage: sv-refcheck [-v] DIR_OR_FILE...\n");
		return 2;
	}
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
