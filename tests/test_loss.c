/* test_loss.c - sv/loss.h against an independent double-precision
 * implementation that builds PML's explicit ordered index lists (LOSSES.md
 * 3-5) and against central finite differences of that reference.
 *
 * Tolerances: loss within 1e-5 * max(1, |L|) of the reference; each element
 * of G = dL/dE within 2e-5 * max|G_fd| + 1e-6 of the double finite
 * differences (h = 1e-6) of the reference loss.  Graph mode must equal batch
 * mode bit for bit when keys are distinct.  Fixed seeds throughout. */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sv/error.h"
#include "sv/blas.h"
#include "sv/loss.h"

static uint64_t rng;

static double urand(void)
{
	rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
	return (double)(rng >> 11) / 9007199254740992.0;
}

static double gauss(void)
{
	double u1 = urand() + 1e-300, u2 = urand();
	return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* ---- reference: explicit lists, double precision ---- */

struct lists {
	size_t np, nn;
	int a1[4096], p[4096], a2[4096], ng[4096];
};

static int find(int *uf, int x)
{
	while (uf[x] != x)
		x = uf[x];
	return x;
}

static void build_lists(struct lists *L, int mode, size_t n, const uint8_t *y, const uint64_t *keys)
{
	size_t m = 2 * n;
	int c[512], ex[512];
	L->np = L->nn = 0;
	if (mode == SV_LABEL_MODE_PAIRS) {
		for (size_t i = 0; i < n; i++)
			if (y[i]) {
				L->a1[L->np] = (int)i;
				L->p[L->np++] = (int)(n + i);
			}
		for (size_t i = 0; i < n; i++)
			if (!y[i]) {
				L->a2[L->nn] = (int)i;
				L->ng[L->nn++] = (int)(n + i);
			}
		return;
	}
	for (size_t r = 0; r < m; r++) {
		c[r] = (int)r;
		ex[r] = -1;
	}
	if (mode == SV_LABEL_MODE_BATCH) {
		for (size_t i = 0; i < n; i++)
			if (y[i])
				c[n + i] = (int)i;
	} else {
		int uf[512];
		for (size_t r = 0; r < m; r++)
			uf[r] = (int)r;
		for (size_t r = 0; r < m; r++)
			for (size_t s = 0; s < r; s++)
				if (keys[r] == keys[s])
					uf[find(uf, (int)r)] = find(uf, (int)s);
		for (size_t i = 0; i < n; i++)
			if (y[i])
				uf[find(uf, (int)(n + i))] = find(uf, (int)i);
		for (size_t r = 0; r < m; r++)
			c[r] = find(uf, (int)r);
		for (size_t i = 0; i < n; i++)
			if (!y[i] && c[i] == c[n + i]) {
				ex[i] = (int)(n + i);
				ex[n + i] = (int)i;
			}
	}
	for (size_t r = 0; r < m; r++)
		for (size_t s = 0; s < m; s++) {
			if (r == s || ex[r] == (int)s)
				continue;
			if (c[r] == c[s]) {
				L->a1[L->np] = (int)r;
				L->p[L->np++] = (int)s;
			} else {
				L->a2[L->nn] = (int)r;
				L->ng[L->nn++] = (int)s;
			}
		}
}

static double dist(const double *E, int r, int s, uint32_t d)
{
	double ss = 0.0;
	for (uint32_t j = 0; j < d; j++)
		ss += (E[r * d + j] - E[s * d + j]) * (E[r * d + j] - E[s * d + j]);
	return sqrt(ss);
}

static double dotp(const double *E, int r, int s, uint32_t d)
{
	double acc = 0.0;
	for (uint32_t j = 0; j < d; j++)
		acc += E[r * d + j] * E[s * d + j];
	return acc;
}

static double ref_loss(const struct sv_loss_params *p, const struct lists *L, const double *E,
                       uint32_t d)
{
	if (L->np <= 1 && L->nn <= 1)
		return 0.0;
	if (p->kind == SV_LOSS_KIND_CONTRASTIVE) {
		double sp = 0, sn = 0;
		size_t ap = 0, an = 0;
		for (size_t k = 0; k < L->np; k++) {
			double v = dist(E, L->a1[k], L->p[k], d) - p->pos_margin;
			if (v > 0) {
				sp += v;
				ap++;
			}
		}
		for (size_t k = 0; k < L->nn; k++) {
			double v = p->neg_margin - dist(E, L->a2[k], L->ng[k], d);
			if (v > 0) {
				sn += v;
				an++;
			}
		}
		return (ap ? sp / ap : 0) + (an ? sn / an : 0);
	}
	if (!L->np || !L->nn)
		return 0.0;
	double tau = p->temperature, tot = 0.0;
	for (size_t k = 0; k < L->np; k++) {
		int a = L->a1[k];
		double t0 = dotp(E, a, L->p[k], d) / tau, M = t0;
		for (size_t j = 0; j < L->nn; j++)
			if (L->a2[j] == a)
				M = fmax(M, dotp(E, a, L->ng[j], d) / tau);
		double num = exp(t0 - M), den = num;
		for (size_t j = 0; j < L->nn; j++)
			if (L->a2[j] == a)
				den += exp(dotp(E, a, L->ng[j], d) / tau - M);
		tot += -log(num / den + 1.1754943508222875e-38);
	}
	return tot / L->np;
}

/* ---- helpers ---- */

#define NMAX 16
#define DMAX 8

struct batch {
	size_t n;
	uint32_t d;
	uint8_t y[NMAX];
	uint64_t keys[2 * NMAX];
	float E[2 * NMAX * DMAX];
	double Ed[2 * NMAX * DMAX];
};

static void random_batch(struct batch *b, size_t n, uint32_t d, double same_frac)
{
	b->n = n;
	b->d = d;
	for (size_t i = 0; i < n; i++)
		b->y[i] = urand() < same_frac;
	for (size_t r = 0; r < 2 * n; r++) {
		double z[DMAX], ss = 0;
		for (uint32_t j = 0; j < d; j++) {
			z[j] = gauss();
			ss += z[j] * z[j];
		}
		for (uint32_t j = 0; j < d; j++) {
			b->E[r * d + j] = (float)(z[j] / sqrt(ss));
			b->Ed[r * d + j] = b->E[r * d + j];
		}
		b->keys[r] = 1000 + r;
	}
}

static int eval(const struct sv_loss_params *p, const struct batch *b, float *G,
                struct sv_loss_stats *st)
{
	sv_loss_ws *ws;
	cr_assert_eq(sv_loss_ws_new(&ws, NMAX, b->d), 0);
	struct sv_pair_labels lab = {.n = b->n, .y = b->y, .keys = b->keys};
	int rc = sv_loss_eval(ws, p, &lab, b->E, b->d, G, st);
	sv_loss_ws_free(ws);
	return rc;
}

/* Loss vs reference and G vs finite differences of the reference. */
static void check_fd(const struct sv_loss_params *p, struct batch *b)
{
	struct lists *L = malloc(sizeof(*L));
	build_lists(L, p->mode, b->n, b->y, b->keys);
	size_t cnt = 2 * b->n * b->d;
	float G[2 * NMAX * DMAX];
	struct sv_loss_stats st;
	cr_assert_eq(eval(p, b, G, &st), 0);
	cr_assert_eq(st.n_pos_pairs, L->np);
	cr_assert_eq(st.n_neg_pairs, L->nn);
	double ref = ref_loss(p, L, b->Ed, b->d);
	cr_assert(fabs(st.loss - ref) <= 1e-5 * fmax(1.0, fabs(ref)),
	          "kind %d mode %d: loss %.9g ref %.9g", p->kind, p->mode, st.loss, ref);
	double fd[2 * NMAX * DMAX], maxfd = 0;
	const double h = 1e-6;
	for (size_t i = 0; i < cnt; i++) {
		double keep = b->Ed[i];
		b->Ed[i] = keep + h;
		double lp = ref_loss(p, L, b->Ed, b->d);
		b->Ed[i] = keep - h;
		double lm = ref_loss(p, L, b->Ed, b->d);
		b->Ed[i] = keep;
		fd[i] = (lp - lm) / (2 * h);
		maxfd = fmax(maxfd, fabs(fd[i]));
	}
	for (size_t i = 0; i < cnt; i++)
		cr_assert(fabs(G[i] - fd[i]) <= 2e-5 * maxfd + 1e-6,
		          "kind %d mode %d: G[%zu] %.9g fd %.9g (max %.3g)", p->kind, p->mode, i,
		          G[i], fd[i], maxfd);
	free(L);
}

static void graph_keys_with_merges(struct batch *b)
{
	/* a few shared keys: rows 0 and 3 one item, rows n+1 and 5 one item */
	b->keys[3] = b->keys[0];
	b->keys[5] = b->keys[b->n + 1];
	/* a y = 0 pair made contradictory: pair 7's rows in one group */
	b->y[7] = 0;
	b->keys[b->n + 7] = b->keys[7];
}

Test(loss, contrastive_gradient_matches_finite_differences)
{
	const float margins[][2] = {{0.0f, 1.0f}, {0.1f, 0.8f}, {0.3f, 1.3f}};
	for (int mode = 0; mode < 3; mode++)
		for (int mg = 0; mg < 3; mg++)
			for (int rep = 0; rep < 3; rep++) {
				rng = 1000 + 100 * mode + 10 * mg + rep;
				struct batch b;
				random_batch(&b, 12, 5, 0.5);
				if (mode == SV_LABEL_MODE_GRAPH)
					graph_keys_with_merges(&b);
				struct sv_loss_params p;
				sv_loss_params_default(&p, SV_LOSS_KIND_CONTRASTIVE);
				p.mode = mode;
				p.pos_margin = margins[mg][0];
				p.neg_margin = margins[mg][1];
				check_fd(&p, &b);
			}
}

Test(loss, ntxent_gradient_matches_finite_differences)
{
	const float taus[] = {0.005f, 0.07f, 0.1f, 0.5f, 1.0f};
	for (int mode = 0; mode < 3; mode++)
		for (int ti = 0; ti < 5; ti++)
			for (int rep = 0; rep < 2; rep++) {
				rng = 2000 + 100 * mode + 10 * ti + rep;
				struct batch b;
				random_batch(&b, 13, 6, rep ? 1.0 : 0.5);
				if (mode == SV_LABEL_MODE_GRAPH)
					graph_keys_with_merges(&b);
				struct sv_loss_params p;
				sv_loss_params_default(&p, SV_LOSS_KIND_NTXENT);
				p.mode = mode;
				p.temperature = taus[ti];
				check_fd(&p, &b);
			}
}

Test(loss, graph_equals_batch_bitwise_with_distinct_keys)
{
	for (int kind = 0; kind < 2; kind++) {
		rng = 3000 + kind;
		struct batch b;
		random_batch(&b, 16, 8, 0.4);
		float Gb[2 * NMAX * DMAX], Gg[2 * NMAX * DMAX];
		struct sv_loss_stats sb, sg;
		struct sv_loss_params p;
		sv_loss_params_default(&p, kind);
		cr_assert_eq(eval(&p, &b, Gb, &sb), 0);
		p.mode = SV_LABEL_MODE_GRAPH;
		cr_assert_eq(eval(&p, &b, Gg, &sg), 0);
		cr_assert_eq(memcmp(Gb, Gg, 2 * 16 * 8 * sizeof(float)), 0);
		cr_assert_eq(memcmp(&sb.loss, &sg.loss, sizeof(double)), 0);
		cr_assert_eq(sb.n_pos_pairs, sg.n_pos_pairs);
		cr_assert_eq(sb.n_neg_pairs, sg.n_neg_pairs);
		cr_assert_eq(sg.contradictions, 0);
	}
}

Test(loss, graph_transitive_merge_and_contradiction_counts)
{
	/* pairs: (A,B) y1, (B,C) y1, (D,E) y0, (A,C) y0 -> groups
	 * {A,B,C rows} of 6 rows, {D}, {E}; pair 3 is a contradiction. */
	struct batch b;
	rng = 4000;
	random_batch(&b, 4, 4, 0.0);
	const uint64_t A = 1, B = 2, C = 3, D = 4, Ek = 5;
	uint64_t keys[8] = {A, B, D, A, B, C, Ek, C};
	memcpy(b.keys, keys, sizeof(keys));
	uint8_t y[4] = {1, 1, 0, 0};
	memcpy(b.y, y, sizeof(y));
	struct sv_loss_params p;
	sv_loss_params_default(&p, SV_LOSS_KIND_CONTRASTIVE);
	p.mode = SV_LABEL_MODE_GRAPH;
	struct sv_loss_stats st;
	float G[2 * NMAX * DMAX];
	cr_assert_eq(eval(&p, &b, G, &st), 0);
	cr_assert_eq(st.contradictions, 1);
	cr_assert_eq(st.n_pos_pairs, 6 * 5 - 2);
	cr_assert_eq(st.n_neg_pairs, 8 * 7 - 6 * 5);
	check_fd(&p, &b);
	/* without the contradictory pair: 3 pairs, groups of 4, 1, 1 */
	b.n = 3;
	uint64_t k3[6] = {A, B, D, B, C, Ek};
	memcpy(b.keys, k3, sizeof(k3));
	cr_assert_eq(eval(&p, &b, G, &st), 0);
	cr_assert_eq(st.contradictions, 0);
	cr_assert_eq(st.n_pos_pairs, 4 * 3);
	cr_assert_eq(st.n_neg_pairs, 6 * 5 - 12);
}

Test(loss, guard_gives_exact_zero)
{
	struct batch b;
	rng = 5000;
	random_batch(&b, 2, 4, 0.0);
	b.y[0] = 1;
	b.y[1] = 0;
	float G[2 * NMAX * DMAX];
	struct sv_loss_stats st;
	for (int kind = 0; kind < 2; kind++) {
		struct sv_loss_params p;
		sv_loss_params_default(&p, kind);
		p.mode = SV_LABEL_MODE_PAIRS;
		memset(G, 0xff, sizeof(G));
		cr_assert_eq(eval(&p, &b, G, &st), 0);
		cr_assert_eq(st.guard, 1);
		cr_assert_eq(st.loss, 0.0);
		for (size_t i = 0; i < 16; i++)
			cr_assert_eq(G[i], 0.0f);
		b.n = 1; /* a single pair, either label */
		cr_assert_eq(eval(&p, &b, G, &st), 0);
		cr_assert_eq(st.guard, 1);
		b.n = 2;
	}
	/* batch mode never guards for n >= 1 */
	struct sv_loss_params p;
	sv_loss_params_default(&p, SV_LOSS_KIND_CONTRASTIVE);
	b.n = 1;
	b.y[0] = 0;
	memcpy(b.E + 4, b.E, 4 * sizeof(float)); /* d = 0: active, no push */
	cr_assert_eq(eval(&p, &b, G, &st), 0);
	cr_assert_eq(st.guard, 0);
	cr_assert_eq(st.n_neg_pairs, 2);
	cr_assert_eq(st.n_neg_active, 2);
	cr_assert_eq(st.loss, 1.0);
	for (size_t i = 0; i < 8; i++)
		cr_assert_eq(G[i], 0.0f);
	/* graph: a lone contradictory pair leaves no entries at all */
	p.mode = SV_LABEL_MODE_GRAPH;
	b.keys[1] = b.keys[0];
	cr_assert_eq(eval(&p, &b, G, &st), 0);
	cr_assert_eq(st.guard, 1);
	cr_assert_eq(st.contradictions, 1);
}

Test(loss, ntxent_without_positives_or_negatives_is_zero)
{
	struct batch b;
	rng = 6000;
	random_batch(&b, 6, 4, 0.0); /* all y = 0: no positives */
	struct sv_loss_params p;
	sv_loss_params_default(&p, SV_LOSS_KIND_NTXENT);
	float G[2 * NMAX * DMAX];
	struct sv_loss_stats st;
	cr_assert_eq(eval(&p, &b, G, &st), 0);
	cr_assert_eq(st.loss, 0.0);
	cr_assert_eq(st.n_pos_pairs, 0);
	for (size_t i = 0; i < 48; i++)
		cr_assert_eq(G[i], 0.0f);
	b.n = 1;
	b.y[0] = 1; /* one same pair: no negatives */
	cr_assert_eq(eval(&p, &b, G, &st), 0);
	cr_assert_eq(st.loss, 0.0);
	cr_assert_eq(st.n_pos_pairs, 2);
	cr_assert_eq(st.n_neg_pairs, 0);
	/* pairs mode: every positive's anchor lacks negatives -> 0, counted */
	random_batch(&b, 8, 4, 0.5);
	p.mode = SV_LABEL_MODE_PAIRS;
	cr_assert_eq(eval(&p, &b, G, &st), 0);
	cr_assert_eq(st.loss, 0.0);
	cr_assert_eq(st.n_pos_pairs + st.n_neg_pairs, 8);
}

Test(loss, duplicate_rows_match_reference_with_zero_subgradient)
{
	/* rows 0 and 1 identical: in batch mode they are negatives with d = 0
	 * (active, counted, no push); central differences of |x| at 0 give
	 * exactly the zero subgradient, so check_fd applies unchanged. */
	for (int kind = 0; kind < 2; kind++)
		for (int mode = 0; mode < 3; mode++) {
			struct batch b;
			rng = 7000 + kind;
			random_batch(&b, 6, 4, 0.5);
			memcpy(b.E + 4, b.E, 4 * sizeof(float));
			memcpy(b.Ed + 4, b.Ed, 4 * sizeof(double));
			struct sv_loss_params p;
			sv_loss_params_default(&p, kind);
			p.mode = mode;
			check_fd(&p, &b);
		}
}

Test(loss, argument_errors)
{
	sv_loss_ws *ws;
	cr_assert_eq(sv_loss_ws_new(&ws, 0, 4), -EINVAL);
	cr_assert_eq(sv_loss_ws_new(&ws, 4, 0), -EINVAL);
	cr_assert_eq(sv_loss_ws_new(NULL, 4, 4), -EINVAL);
	cr_assert_eq(sv_loss_ws_new(&ws, 4, 4), 0);
	float E[10 * 4] = {0}, G[10 * 4];
	uint8_t y[5] = {1, 0, 1, 0, 1};
	struct sv_loss_params p;
	sv_loss_params_default(&p, SV_LOSS_KIND_NTXENT);
	struct sv_pair_labels lab = {.n = 4, .y = y, .keys = NULL};
	p.mode = SV_LABEL_MODE_GRAPH;
	cr_assert_eq(sv_loss_eval(ws, &p, &lab, E, 4, G, NULL), -EINVAL);
	p.mode = SV_LABEL_MODE_BATCH;
	cr_assert_eq(sv_loss_eval(ws, &p, &lab, E, 4, G, NULL), 0);
	lab.n = 5;
	cr_assert_eq(sv_loss_eval(ws, &p, &lab, E, 4, G, NULL), SV_ERR_SHAPE);
	lab.n = 4;
	cr_assert_eq(sv_loss_eval(ws, &p, &lab, E, 3, G, NULL), SV_ERR_SHAPE);
	p.temperature = 0.0f;
	cr_assert_eq(sv_loss_eval(ws, &p, &lab, E, 4, G, NULL), -EINVAL);
	p.temperature = 0.1f;
	p.kind = 7;
	cr_assert_eq(sv_loss_eval(ws, &p, &lab, E, 4, G, NULL), -EINVAL);
	cr_assert_eq(sv_loss_eval(NULL, &p, &lab, E, 4, G, NULL), -EINVAL);
	sv_loss_ws_free(ws);
	sv_loss_ws_free(NULL);
}

Test(loss, ntxent_workspace_at_1024_pairs_is_under_100mb)
{
	size_t bytes = sv_loss_ws_bytes(1024, 64);
	cr_assert_gt(bytes, 2 * 2048 * 2048 * 4 - 1);
	cr_assert_lt(bytes, 100u * 1000 * 1000);
	/* and it really runs at that size */
	sv_loss_ws *ws;
	cr_assert_eq(sv_loss_ws_new(&ws, 1024, 16), 0);
	size_t n = 1024, m = 2048;
	float *E = malloc(m * 16 * sizeof(float)), *G = malloc(m * 16 * sizeof(float));
	uint8_t *y = malloc(n);
	rng = 8000;
	for (size_t r = 0; r < m; r++) {
		double ss = 0;
		for (int j = 0; j < 16; j++) {
			E[r * 16 + j] = (float)gauss();
			ss += (double)E[r * 16 + j] * E[r * 16 + j];
		}
		for (int j = 0; j < 16; j++)
			E[r * 16 + j] = (float)(E[r * 16 + j] / sqrt(ss));
	}
	for (size_t i = 0; i < n; i++)
		y[i] = i % 2;
	struct sv_loss_params p;
	sv_loss_params_default(&p, SV_LOSS_KIND_NTXENT);
	struct sv_pair_labels lab = {.n = n, .y = y, .keys = NULL};
	struct sv_loss_stats st;
	cr_assert_eq(sv_loss_eval(ws, &p, &lab, E, 16, G, &st), 0);
	cr_assert(isfinite(st.loss) && st.loss > 0);
	cr_assert_eq(st.n_pos_pairs, 1024);
	sv_loss_ws_free(ws);
	free(E);
	free(G);
	free(y);
}

Test(loss, fast_exp_within_2_ulp_of_expf)
{
	size_t cnt = 200001;
	float *x = malloc(cnt * sizeof(float)), *y = malloc(cnt * sizeof(float));
	for (size_t i = 0; i < cnt; i++)
		x[i] = y[i] = -86.0f + 174.0f * (float)i / (float)(cnt - 1);
	sv_loss_exp(y, cnt);
	for (size_t i = 0; i < cnt; i++) {
		float want = expf(x[i]);
		float ulp = nextafterf(want, INFINITY) - want;
		cr_assert(fabsf(y[i] - want) <= 2.0f * ulp, "exp(%.9g) = %.9g, expf %.9g", x[i],
		          y[i], want);
	}
	float edge[4] = {-100.0f, -87.0f, 0.0f, 100.0f};
	sv_loss_exp(edge, 4);
	cr_assert_eq(edge[0], 0.0f);
	cr_assert_eq(edge[2], 1.0f);
	cr_assert(isinf(edge[3]));
	free(x);
	free(y);
}

Test(loss, loss_without_gradient_matches_loss_with_gradient)
{
	for (int kind = 0; kind < 2; kind++)
		for (int mode = 0; mode < 3; mode++) {
			struct batch b;
			rng = 9000 + 10 * kind + mode;
			random_batch(&b, 10, 5, 0.5);
			if (mode == SV_LABEL_MODE_GRAPH)
				graph_keys_with_merges(&b);
			struct sv_loss_params p;
			sv_loss_params_default(&p, kind);
			p.mode = mode;
			float G[2 * NMAX * DMAX];
			struct sv_loss_stats s1, s2;
			cr_assert_eq(eval(&p, &b, G, &s1), 0);
			cr_assert_eq(eval(&p, &b, NULL, &s2), 0);
			cr_assert_eq(s1.loss, s2.loss, "kind %d mode %d", kind, mode);
			cr_assert_eq(s1.n_pos_pairs, s2.n_pos_pairs);
			cr_assert_eq(s1.n_neg_active, s2.n_neg_active);
		}
}

Test(loss, contrastive_distances_are_float_accurate)
{
	/* the expanded-form distances and their sqrt must stay at float
	 * rounding level: the loss within 5e-7 relative of the double
	 * reference on batches with many active negatives */
	for (int rep = 0; rep < 4; rep++) {
		struct batch b;
		rng = 9500 + rep;
		random_batch(&b, 16, 3, 0.3);
		struct sv_loss_params p;
		sv_loss_params_default(&p, SV_LOSS_KIND_CONTRASTIVE);
		struct lists *L = malloc(sizeof(*L));
		build_lists(L, p.mode, b.n, b.y, b.keys);
		struct sv_loss_stats st;
		cr_assert_eq(eval(&p, &b, NULL, &st), 0);
		double ref = ref_loss(&p, L, b.Ed, b.d);
		cr_assert(fabs(st.loss - ref) <= 5e-7 * fabs(ref), "%.9g vs %.9g", st.loss, ref);
		free(L);
	}
}

/* The m x m passes of both losses split into row parts on sv_blas's
 * threads (m >= 128): loss and G at 3 parts (run on the pool) agree with 1
 * part to float rounding, in batch and graph mode, and are the same on
 * every run. */
Test(loss, pass_parts_agree_with_one_part)
{
	const size_t n = 150, m = 2 * n;
	const uint32_t d = 16;
	uint8_t y[150];
	uint64_t keys[300];
	float *E = malloc(m * d * sizeof(float)), *G1 = malloc(m * d * sizeof(float));
	float *G3 = malloc(m * d * sizeof(float)), *G3b = malloc(m * d * sizeof(float));
	sv_loss_ws *ws;

	rng = 4242;
	for (size_t i = 0; i < n; i++)
		y[i] = urand() < 0.5;
	for (size_t r = 0; r < m; r++) {
		double ss = 0.0;
		for (uint32_t j = 0; j < d; j++) {
			E[r * d + j] = (float)gauss();
			ss += (double)E[r * d + j] * E[r * d + j];
		}
		for (uint32_t j = 0; j < d; j++)
			E[r * d + j] = (float)(E[r * d + j] / sqrt(ss));
		keys[r] = r % 7 == 0 ? 5 : 100 + r; /* graph mode: one merged group */
	}
	cr_assert_eq(sv_loss_ws_new(&ws, n, d), 0);
	for (int run = 0; run < 4; run++) {
		const int mode = run & 1 ? SV_LABEL_MODE_GRAPH : SV_LABEL_MODE_BATCH;
		struct sv_loss_params p;
		struct sv_pair_labels lab = {.n = n, .y = y, .keys = keys};
		struct sv_loss_stats s1, s3, s3b;
		double gmax = 0.0;

		sv_loss_params_default(&p, run < 2 ? SV_LOSS_KIND_NTXENT : SV_LOSS_KIND_CONTRASTIVE);
		p.mode = mode;
		p.temperature = 0.1f;
		sv_blas_set_threads(1);
		cr_assert_eq(sv_loss_eval(ws, &p, &lab, E, d, G1, &s1), 0);
		sv_blas_set_threads(3);
		cr_assert_eq(sv_loss_eval(ws, &p, &lab, E, d, G3, &s3), 0);
		cr_assert_eq(sv_loss_eval(ws, &p, &lab, E, d, G3b, &s3b), 0);
		cr_assert(s1.loss > 0.0);
		cr_assert(fabs(s3.loss - s1.loss) <= 1e-6 * s1.loss, "mode %d: %.9g vs %.9g", mode,
		          s3.loss, s1.loss);
		cr_assert_eq(s3.loss, s3b.loss);
		cr_assert(memcmp(G3, G3b, m * d * sizeof(float)) == 0, "mode %d: G differs", mode);
		for (size_t i = 0; i < m * d; i++)
			gmax = fmax(gmax, fabs(G1[i]));
		for (size_t i = 0; i < m * d; i++)
			cr_assert(fabs(G3[i] - G1[i]) <= 1e-5 * gmax, "mode %d: G[%zu] %.9g vs %.9g",
			          mode, i, G3[i], G1[i]);
	}
	sv_blas_set_threads(1);
	sv_loss_ws_free(ws);
	free(E);
	free(G1);
	free(G3);
	free(G3b);
}
