/* test_metrics.c - exact ROC metrics against naive references (O(P*N) pair
 * counting for AUC, brute-force threshold scans for EER / TAR@FAR / accuracy),
 * the histogram window against the exact ROC of the same pairs, eviction,
 * threshold policies, the window's serialization, and the raw-cosine AUC of
 * the reference evaluation set (../shared/data/README.md quotes 0.826). */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <stdio.h>
#include <sys/stat.h>

#include "tmpdir.h"
#include "sv/error.h"
#include "sv/metrics.h"
#include "sv/pairfile.h"

/* ------------------------------------------------------------ references */

static double naive_auc(const float *s, const uint8_t *l, size_t n)
{
	double num = 0, np = 0, nn = 0;

	for (size_t i = 0; i < n; i++) {
		np += l[i];
		nn += !l[i];
		if (!l[i])
			continue;
		for (size_t j = 0; j < n; j++) {
			if (l[j])
				continue;
			num += s[i] > s[j] ? 1.0 : s[i] == s[j] ? 0.5 : 0.0;
		}
	}
	return num / (np * nn);
}

/* FPR / TPR at threshold t by counting. */
static void naive_rates(const float *s, const uint8_t *l, size_t n, double t, double *fpr,
                        double *tpr)
{
	double tp = 0, fp = 0, np = 0, nn = 0;

	for (size_t i = 0; i < n; i++) {
		np += l[i];
		nn += !l[i];
		if (s[i] >= t) {
			tp += l[i];
			fp += !l[i];
		}
	}
	*fpr = fp / nn;
	*tpr = tp / np;
}

static int cmp_desc(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;

	return (x < y) - (x > y);
}

/* Candidate thresholds: +inf and every distinct score, decreasing. */
static size_t candidates(const float *s, size_t n, double *t)
{
	float *c = malloc(n * sizeof *c);
	size_t k = 0;

	memcpy(c, s, n * sizeof *c);
	qsort(c, n, sizeof *c, cmp_desc);
	t[k++] = INFINITY;
	for (size_t i = 0; i < n; i++)
		if (i == 0 || c[i] != c[i - 1])
			t[k++] = c[i];
	free(c);
	return k;
}

/* EER by scanning every candidate threshold for the sign change of FPR-FNR. */
static double naive_eer(const float *s, const uint8_t *l, size_t n)
{
	double *t = malloc((n + 1) * sizeof *t);
	size_t k = candidates(s, n, t);
	double pf = 0, pn = 1, eer = NAN;

	for (size_t i = 1; i < k; i++) {
		double f, tp;

		naive_rates(s, l, n, t[i], &f, &tp);
		if (f - (1 - tp) >= 0) {
			double d0 = pf - pn, d1 = f - (1 - tp);
			double a = -d0 / (d1 - d0);

			eer = pf + a * (f - pf);
			break;
		}
		pf = f;
		pn = 1 - tp;
	}
	free(t);
	return eer;
}

static double naive_tar_at_far(const float *s, const uint8_t *l, size_t n, double far)
{
	double *t = malloc((n + 1) * sizeof *t);
	size_t k = candidates(s, n, t);
	double best = 0;

	for (size_t i = 1; i < k; i++) {
		double f, tp;

		naive_rates(s, l, n, t[i], &f, &tp);
		if (f <= far && tp > best)
			best = tp;
	}
	free(t);
	return best;
}

static double naive_best_accuracy(const float *s, const uint8_t *l, size_t n)
{
	double *t = malloc((n + 1) * sizeof *t);
	size_t k = candidates(s, n, t);
	double best = 0;

	for (size_t i = 0; i < k; i++) {
		double acc;

		cr_assert_eq(sv_metrics_accuracy(s, l, n, (float)t[i], &acc), 0);
		if (acc > best)
			best = acc;
	}
	free(t);
	return best;
}

/* Fixed-seed generator: positives ~ N(mu, 0.25), negatives ~ N(0, 0.25),
 * clamped to [-1, 1], optionally quantized to make ties. */
static uint64_t rng_state;

static double unif(void)
{
	rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
	return ((double)(rng_state >> 11) + 0.5) / 9007199254740992.0;
}

static double gauss(void)
{
	return sqrt(-2 * log(unif())) * cos(6.283185307179586 * unif());
}

static void make_scores(float *s, uint8_t *l, size_t n, double mu, double quant, uint64_t seed)
{
	rng_state = seed;
	for (size_t i = 0; i < n; i++) {
		double x;

		l[i] = unif() < 0.45;
		x = (l[i] ? mu : 0.0) + 0.25 * gauss();
		x = x < -1 ? -1 : x > 1 ? 1 : x;
		if (quant > 0)
			x = round(x / quant) * quant;
		s[i] = (float)x;
	}
}

/* ------------------------------------------------------------ exact ROC */

Test(metrics, hand_computed_case)
{
	const float s[6] = {0.9f, 0.8f, 0.7f, 0.4f, 0.3f, 0.2f};
	const uint8_t l[6] = {1, 1, 0, 1, 0, 0};
	struct sv_metrics_roc *roc = NULL;
	struct sv_metrics_op op;
	double eer;
	float thr;

	cr_assert_eq(sv_metrics_roc_new(&roc, s, l, 6), 0);
	cr_assert_eq(roc->n_points, 6);
	cr_assert_eq(roc->n_pos, 3);
	cr_assert_float_eq(sv_metrics_roc_auc(roc), 8.0 / 9.0, 1e-12);
	cr_assert_eq(sv_metrics_roc_eer(roc, &eer, &thr), 0);
	cr_assert_float_eq(eer, 1.0 / 3.0, 1e-12);
	cr_assert_eq(thr, 0.7f);
	cr_assert_eq(sv_metrics_roc_tar_at_far(roc, 0.0, &op), 0);
	cr_assert_float_eq(op.tar, 2.0 / 3.0, 1e-12);
	cr_assert_eq(op.far, 0.0);
	cr_assert_eq(op.threshold, 0.8f);
	cr_assert_eq(sv_metrics_roc_tar_at_far(roc, 0.5, &op), 0);
	cr_assert_float_eq(op.tar, 1.0, 1e-12);
	cr_assert_eq(op.threshold, 0.4f);
	cr_assert_eq(sv_metrics_roc_at(roc, 0.75f, &op), 0);
	cr_assert_float_eq(op.tar, 2.0 / 3.0, 1e-12);
	cr_assert_float_eq(op.accuracy, 5.0 / 6.0, 1e-12);
	cr_assert_eq(sv_metrics_roc_at(roc, 2.0f, &op), 0);
	cr_assert_eq(op.tar, 0.0);
	cr_assert_float_eq(op.accuracy, 0.5, 1e-12);
	cr_assert_eq(sv_metrics_roc_max_accuracy(roc, &op), 0);
	cr_assert_float_eq(op.accuracy, 5.0 / 6.0, 1e-12);
	cr_assert_eq(op.threshold, 0.8f, "highest threshold among ties");
	sv_metrics_roc_free(roc);
}

Test(metrics, all_equal_scores)
{
	const float s[5] = {0.3f, 0.3f, 0.3f, 0.3f, 0.3f};
	const uint8_t l[5] = {1, 0, 1, 0, 0};
	struct sv_metrics_roc *roc = NULL;
	struct sv_metrics_op op;
	double eer;
	float thr;

	cr_assert_eq(sv_metrics_roc_new(&roc, s, l, 5), 0);
	cr_assert_eq(roc->n_points, 1);
	cr_assert_float_eq(sv_metrics_roc_auc(roc), 0.5, 1e-12);
	cr_assert_float_eq(naive_auc(s, l, 5), 0.5, 1e-12);
	cr_assert_eq(sv_metrics_roc_eer(roc, &eer, &thr), 0);
	cr_assert_float_eq(eer, 0.5, 1e-12);
	cr_assert_float_eq(eer, naive_eer(s, l, 5), 1e-12);
	cr_assert(isfinite(thr) && thr > 0.3f, "origin threshold %g", thr);
	cr_assert_eq(sv_metrics_roc_tar_at_far(roc, 0.5, &op), 0);
	cr_assert_eq(op.tar, 0.0);
	cr_assert_eq(op.threshold, nextafterf(0.3f, INFINITY));
	sv_metrics_roc_free(roc);
}

static void check_against_naive(const float *s, const uint8_t *l, size_t n)
{
	struct sv_metrics_roc *roc = NULL;
	struct sv_metrics_op op;
	double eer;
	float thr;
	const double fars[] = {0.0, 1e-3, 1e-2, 0.05, 0.2, 1.0};

	cr_assert_eq(sv_metrics_roc_new(&roc, s, l, n), 0);
	cr_assert_float_eq(sv_metrics_roc_auc(roc), naive_auc(s, l, n), 1e-12);
	cr_assert_eq(sv_metrics_roc_eer(roc, &eer, &thr), 0);
	cr_assert_float_eq(eer, naive_eer(s, l, n), 1e-12);
	for (size_t i = 0; i < sizeof fars / sizeof fars[0]; i++) {
		double acc;

		cr_assert_eq(sv_metrics_roc_tar_at_far(roc, fars[i], &op), 0);
		cr_assert_float_eq(op.tar, naive_tar_at_far(s, l, n, fars[i]), 1e-12, "far %g",
		                   fars[i]);
		cr_assert_leq(op.far, fars[i]);
		/* the threshold it names gives that operating point */
		cr_assert_eq(sv_metrics_accuracy(s, l, n, op.threshold, &acc), 0);
		cr_assert_float_eq(acc, op.accuracy, 1e-12);
	}
	cr_assert_eq(sv_metrics_roc_max_accuracy(roc, &op), 0);
	cr_assert_float_eq(op.accuracy, naive_best_accuracy(s, l, n), 1e-12);
	sv_metrics_roc_free(roc);
}

Test(metrics, random_scores_match_naive)
{
	float s[700];
	uint8_t l[700];

	make_scores(s, l, 700, 0.4, 0.0, 12345);
	check_against_naive(s, l, 700);
}

Test(metrics, tied_scores_match_naive)
{
	float s[700];
	uint8_t l[700];

	make_scores(s, l, 700, 0.3, 0.05, 777); /* ~40 distinct values */
	check_against_naive(s, l, 700);
	make_scores(s, l, 50, -0.5, 0.5, 9); /* inverted, 5 values */
	check_against_naive(s, l, 50);
}

Test(metrics, one_class_missing_and_bad_input)
{
	const float s[3] = {0.1f, 0.2f, NAN};
	const uint8_t pos[3] = {1, 1, 1}, bad[3] = {0, 2, 1};
	struct sv_metrics_roc *roc = NULL;
	double acc;

	cr_assert_eq(sv_metrics_roc_new(&roc, s, pos, 2), SV_ERR_METRICS_ONECLASS);
	cr_assert_eq(sv_metrics_roc_new(&roc, s, pos, 0), SV_ERR_METRICS_ONECLASS);
	cr_assert_eq(sv_metrics_roc_new(&roc, s, bad, 2), SV_ERR_RANGE);
	cr_assert_eq(sv_metrics_roc_new(&roc, s, pos, 3), SV_ERR_NONFINITE);
	cr_assert_eq(sv_metrics_roc_new(&roc, NULL, pos, 2), -EINVAL);
	cr_assert_eq(sv_metrics_roc_new(NULL, s, pos, 2), -EINVAL);
	cr_assert_null(roc);
	cr_assert_eq(sv_metrics_accuracy(s, pos, 0, 0.f, &acc), -EINVAL);
	cr_assert_eq(sv_metrics_accuracy(s, bad, 3, 0.f, &acc), SV_ERR_RANGE);
	cr_assert_str_neq(sv_strerror(SV_ERR_METRICS_ONECLASS), "unknown error");
	sv_metrics_roc_free(NULL);
}

Test(metrics, policies_on_roc)
{
	float s[400];
	uint8_t l[400];
	struct sv_metrics_roc *roc = NULL;
	struct sv_metrics_op op, ref;
	struct sv_metrics_policy_cfg cfg = {SV_METRICS_POLICY_FIXED, 0.25f, 1e-2, 0};
	double eer;
	float thr;

	make_scores(s, l, 400, 0.5, 0.0, 42);
	cr_assert_eq(sv_metrics_roc_new(&roc, s, l, 400), 0);
	cr_assert_eq(sv_metrics_roc_threshold(roc, &cfg, &op), 0);
	cr_assert_eq(op.threshold, 0.25f);
	cfg.policy = SV_METRICS_POLICY_TARGET_FAR;
	cr_assert_eq(sv_metrics_roc_threshold(roc, &cfg, &op), 0);
	cr_assert_eq(sv_metrics_roc_tar_at_far(roc, 1e-2, &ref), 0);
	cr_assert_eq(op.threshold, ref.threshold);
	cr_assert_leq(op.far, 1e-2);
	cfg.policy = SV_METRICS_POLICY_EER;
	cr_assert_eq(sv_metrics_roc_threshold(roc, &cfg, &op), 0);
	cr_assert_eq(sv_metrics_roc_eer(roc, &eer, &thr), 0);
	cr_assert_eq(op.threshold, thr);
	cr_assert_lt(fabs(op.far - (1 - op.tar)), 0.02, "far %g frr %g", op.far, 1 - op.tar);
	cfg.policy = SV_METRICS_POLICY_MAX_ACCURACY;
	cr_assert_eq(sv_metrics_roc_threshold(roc, &cfg, &op), 0);
	cr_assert_float_eq(op.accuracy, naive_best_accuracy(s, l, 400), 1e-12);
	cfg.policy = (enum sv_metrics_policy)9;
	cr_assert_eq(sv_metrics_roc_threshold(roc, &cfg, &op), SV_ERR_RANGE);
	cfg.policy = SV_METRICS_POLICY_TARGET_FAR;
	cfg.target_far = 2.0;
	cr_assert_eq(sv_metrics_roc_threshold(roc, &cfg, &op), SV_ERR_RANGE);
	sv_metrics_roc_free(roc);
}

/* ---------------------------------------------------------------- window */

Test(metrics, window_histogram_matches_exact)
{
	enum { N = 6000 };
	float *s = malloc(N * sizeof *s);
	uint8_t *l = malloc(N);
	struct sv_metrics_window *w = NULL;
	struct sv_metrics_roc *ex = NULL;
	struct sv_metrics_summary hs, es;

	make_scores(s, l, N, 0.45, 0.0, 2024);
	cr_assert_eq(sv_metrics_window_new(&w, N, SV_METRICS_DEFAULT_BINS, 0.1), 0);
	for (size_t i = 0; i < N; i++)
		cr_assert_eq(sv_metrics_window_push(w, s[i], l[i]), 0);
	cr_assert_eq(sv_metrics_window_summary(w, &hs), 0);
	cr_assert_eq(sv_metrics_roc_new(&ex, s, l, N), 0);
	cr_assert_eq(sv_metrics_roc_summary(ex, &es), 0);
	cr_assert_eq(hs.n_pos, es.n_pos);
	cr_assert_eq(hs.n_neg, es.n_neg);
	/* bin width 2/2048 ~ 1e-3 in score; densities are < 2 per unit score */
	cr_assert_float_eq(hs.auc, es.auc, 1e-3, "hist %g exact %g", hs.auc, es.auc);
	cr_assert_float_eq(hs.eer, es.eer, 3e-3, "hist %g exact %g", hs.eer, es.eer);
	cr_assert_float_eq(hs.eer_threshold, es.eer_threshold, 4e-3);
	cr_assert_float_eq(hs.far_1e2.tar, es.far_1e2.tar, 1e-2);
	cr_assert_leq(hs.far_1e2.far, 1e-2);
	cr_assert_leq(hs.far_1e3.far, 1e-3);
	cr_assert(isnan(hs.loss));
	/* the exact window ROC is the exact ROC */
	struct sv_metrics_roc *wx = NULL;
	cr_assert_eq(sv_metrics_window_roc(w, 1, &wx), 0);
	cr_assert_eq(wx->n_points, ex->n_points);
	cr_assert_float_eq(sv_metrics_roc_auc(wx), es.auc, 1e-15);
	sv_metrics_roc_free(wx);
	sv_metrics_roc_free(ex);
	sv_metrics_window_free(w);
	free(s);
	free(l);
}

Test(metrics, window_bins_are_exact_on_bin_edges)
{
	/* scores on bin edges of a 8-bin window: the histogram ROC is exact */
	const float s[8] = {-1.0f, -0.5f, 0.0f, 0.25f, 0.5f, 0.75f, 1.0f, 0.25f};
	const uint8_t l[8] = {0, 0, 1, 0, 1, 1, 1, 1};
	struct sv_metrics_window *w = NULL;
	struct sv_metrics_roc *h = NULL, *e = NULL;

	cr_assert_eq(sv_metrics_window_new(&w, 8, 8, 1.0), 0);
	for (int i = 0; i < 8; i++)
		cr_assert_eq(sv_metrics_window_push(w, s[i], l[i]), 0);
	cr_assert_eq(sv_metrics_window_roc(w, 0, &h), 0);
	cr_assert_eq(sv_metrics_roc_new(&e, s, l, 8), 0);
	/* 1.0 shares the top bin [0.75, 1] with 0.75; both are positives */
	cr_assert_eq(h->n_points, e->n_points - 1);
	for (size_t i = 1; i < h->n_points; i++) {
		cr_assert_eq(h->points[i].threshold, e->points[i + 1].threshold);
		cr_assert_eq(h->points[i].tp, e->points[i + 1].tp);
		cr_assert_eq(h->points[i].fp, e->points[i + 1].fp);
	}
	cr_assert_float_eq(sv_metrics_roc_auc(h), naive_auc(s, l, 8), 1e-12);
	sv_metrics_roc_free(h);
	sv_metrics_roc_free(e);
	sv_metrics_window_free(w);
}

Test(metrics, window_eviction)
{
	const float s[7] = {0.9f, -0.9f, 0.1f, 0.2f, -0.3f, 0.6f, -0.7f};
	const uint8_t l[7] = {1, 1, 0, 1, 0, 1, 0};
	struct sv_metrics_window *w = NULL;
	struct sv_metrics_roc *a = NULL, *b = NULL;
	uint64_t n, np;

	cr_assert_eq(sv_metrics_window_new(&w, 4, 64, 0.5), 0);
	for (int i = 0; i < 7; i++)
		cr_assert_eq(sv_metrics_window_push(w, s[i], l[i]), 0);
	sv_metrics_window_counts(w, &n, &np);
	cr_assert_eq(n, 4);
	cr_assert_eq(np, 2); /* 0.2 and 0.6 of the last four */
	cr_assert_eq(sv_metrics_window_seen(w), 7);
	cr_assert_eq(sv_metrics_window_roc(w, 1, &a), 0);
	cr_assert_eq(sv_metrics_roc_new(&b, s + 3, l + 3, 4), 0);
	cr_assert_eq(a->n_points, b->n_points);
	for (size_t i = 0; i < a->n_points; i++) /* field by field: the struct has padding */
		cr_assert(a->points[i].threshold == b->points[i].threshold &&
		          a->points[i].tp == b->points[i].tp && a->points[i].fp == b->points[i].fp,
		          "point %zu", i);
	sv_metrics_roc_free(a);
	/* histogram agrees too (scores far apart in 64 bins): AUC 1 */
	cr_assert_eq(sv_metrics_window_roc(w, 0, &a), 0);
	cr_assert_eq(a->n_points, 4);
	cr_assert_float_eq(sv_metrics_roc_auc(a), sv_metrics_roc_auc(b), 1e-12);
	cr_assert_eq(a->points[3].tp, 2);
	cr_assert_eq(a->points[3].fp, 2);
	sv_metrics_roc_free(a);
	sv_metrics_roc_free(b);
	a = NULL;
	/* push four negatives: positives all evicted */
	for (int i = 0; i < 4; i++)
		cr_assert_eq(sv_metrics_window_push(w, 0.0f, 0), 0);
	cr_assert_eq(sv_metrics_window_roc(w, 0, &a), SV_ERR_METRICS_ONECLASS);
	cr_assert_null(a);
	sv_metrics_window_free(w);
}

Test(metrics, window_bad_input)
{
	struct sv_metrics_window *w = NULL;
	struct sv_metrics_summary sum;

	cr_assert_eq(sv_metrics_window_new(&w, 0, 16, 0.1), -EINVAL);
	cr_assert_eq(sv_metrics_window_new(&w, 4, 0, 0.1), -EINVAL);
	cr_assert_eq(sv_metrics_window_new(&w, 4, 16, 0.0), -EINVAL);
	cr_assert_eq(sv_metrics_window_new(&w, 4, 16, 1.5), -EINVAL);
	cr_assert_null(w);
	cr_assert_eq(sv_metrics_window_new(&w, 4, 16, 0.1), 0);
	cr_assert_eq(sv_metrics_window_push(w, NAN, 1), SV_ERR_NONFINITE);
	cr_assert_eq(sv_metrics_window_push(w, INFINITY, 1), SV_ERR_NONFINITE);
	cr_assert_eq(sv_metrics_window_push(w, 0.5f, 2), SV_ERR_RANGE);
	cr_assert_eq(sv_metrics_window_push_loss(w, NAN), SV_ERR_NONFINITE);
	cr_assert_eq(sv_metrics_window_summary(w, &sum), SV_ERR_METRICS_ONECLASS);
	cr_assert_eq(sv_metrics_window_push(w, 3.0f, 1), 0); /* clamped to 1 */
	cr_assert_eq(sv_metrics_window_summary(w, &sum), SV_ERR_METRICS_ONECLASS);
	cr_assert_eq(sv_metrics_window_push(w, -3.0f, 0), 0);
	cr_assert_eq(sv_metrics_window_summary(w, &sum), 0);
	cr_assert_float_eq(sum.auc, 1.0, 1e-12);
	sv_metrics_window_free(w);
	sv_metrics_window_free(NULL);
}

Test(metrics, window_loss_ema)
{
	struct sv_metrics_window *w = NULL;
	double loss;
	uint64_t n;

	cr_assert_eq(sv_metrics_window_new(&w, 4, 16, 0.5), 0);
	sv_metrics_window_loss(w, &loss, &n);
	cr_assert(isnan(loss));
	cr_assert_eq(n, 0);
	cr_assert_eq(sv_metrics_window_push_loss(w, 2.0), 0);
	cr_assert_eq(sv_metrics_window_push_loss(w, 4.0), 0);
	cr_assert_eq(sv_metrics_window_push_loss(w, 0.0), 0);
	sv_metrics_window_loss(w, &loss, &n);
	cr_assert_float_eq(loss, 1.5, 1e-15); /* 2 -> 3 -> 1.5 */
	cr_assert_eq(n, 3);
	sv_metrics_window_free(w);
}

Test(metrics, window_threshold_policy)
{
	struct sv_metrics_window *w = NULL;
	struct sv_metrics_policy_cfg cfg = {SV_METRICS_POLICY_TARGET_FAR, 0.4f, 1e-2, 100};
	struct sv_metrics_op op;
	int from = -1;
	float s[200];
	uint8_t l[200];

	cr_assert_eq(sv_metrics_window_new(&w, 1000, 2048, 0.1), 0);
	cr_assert_eq(sv_metrics_window_threshold(w, &cfg, &op, &from), 0);
	cr_assert_eq(op.threshold, 0.4f);
	cr_assert_eq(from, 0);
	cr_assert(isnan(op.far));
	make_scores(s, l, 200, 0.6, 0.0, 5);
	for (int i = 0; i < 50; i++)
		cr_assert_eq(sv_metrics_window_push(w, s[i], l[i]), 0);
	cr_assert_eq(sv_metrics_window_threshold(w, &cfg, &op, &from), 0);
	cr_assert_eq(op.threshold, 0.4f);
	cr_assert_eq(from, 0);
	cr_assert(isfinite(op.far), "op point on the window even before min_pairs");
	for (int i = 50; i < 200; i++)
		cr_assert_eq(sv_metrics_window_push(w, s[i], l[i]), 0);
	cr_assert_eq(sv_metrics_window_threshold(w, &cfg, &op, &from), 0);
	cr_assert_eq(from, 1);
	cr_assert_leq(op.far, 1e-2);
	cr_assert_neq(op.threshold, 0.4f);
	cfg.policy = SV_METRICS_POLICY_MAX_ACCURACY;
	cr_assert_eq(sv_metrics_window_threshold(w, &cfg, &op, NULL), 0);
	cr_assert_geq(op.accuracy, 0.8);
	cfg.target_far = -1;
	cfg.policy = SV_METRICS_POLICY_TARGET_FAR;
	cr_assert_eq(sv_metrics_window_threshold(w, &cfg, &op, NULL), SV_ERR_RANGE);
	sv_metrics_window_free(w);
}

Test(metrics, window_serialize_roundtrip)
{
	struct sv_metrics_window *w = NULL, *v = NULL;
	struct sv_metrics_summary a, b;
	uint8_t buf1[4096], buf2[4096];
	size_t n1, n2;
	float s[300];
	uint8_t l[300];

	make_scores(s, l, 300, 0.5, 0.0, 99);
	cr_assert_eq(sv_metrics_window_new(&w, 257, 512, 0.05), 0);
	for (int i = 0; i < 300; i++) /* wraps the ring */
		cr_assert_eq(sv_metrics_window_push(w, s[i], l[i]), 0);
	for (int i = 0; i < 5; i++)
		cr_assert_eq(sv_metrics_window_push_loss(w, 1.0 / (i + 1)), 0);
	cr_assert_eq(sv_metrics_window_serialized_size(w), 56 + 5 * 257);
	cr_assert_eq(sv_metrics_window_serialize(w, buf1, 100, &n1), -ENOSPC);
	cr_assert_eq(sv_metrics_window_serialize(w, buf1, sizeof buf1, &n1), 0);
	cr_assert_eq(n1, 56 + 5 * 257);
	cr_assert_eq(sv_metrics_window_deserialize(&v, buf1, n1), 0);
	cr_assert_eq(sv_metrics_window_serialize(v, buf2, sizeof buf2, &n2), 0);
	cr_assert_eq(n1, n2);
	cr_assert_eq(memcmp(buf1, buf2, n1), 0);
	cr_assert_eq(sv_metrics_window_summary(w, &a), 0);
	cr_assert_eq(sv_metrics_window_summary(v, &b), 0);
	cr_assert_eq(memcmp(&a, &b, sizeof a), 0);
	/* both evolve identically */
	cr_assert_eq(sv_metrics_window_push(w, 0.3f, 1), 0);
	cr_assert_eq(sv_metrics_window_push(v, 0.3f, 1), 0);
	cr_assert_eq(sv_metrics_window_push_loss(w, 0.7), 0);
	cr_assert_eq(sv_metrics_window_push_loss(v, 0.7), 0);
	cr_assert_eq(sv_metrics_window_serialize(w, buf1, sizeof buf1, &n1), 0);
	cr_assert_eq(sv_metrics_window_serialize(v, buf2, sizeof buf2, &n2), 0);
	cr_assert_eq(memcmp(buf1, buf2, n1), 0);
	sv_metrics_window_free(v);
	v = NULL;

	/* damaged images */
	cr_assert_eq(sv_metrics_window_deserialize(&v, buf1, n1 - 1), SV_ERR_TRUNCATED);
	cr_assert_eq(sv_metrics_window_deserialize(&v, buf1, 10), SV_ERR_TRUNCATED);
	buf2[0] = 'X';
	cr_assert_eq(sv_metrics_window_deserialize(&v, buf2, n2), SV_ERR_MAGIC);
	memcpy(buf2, buf1, n1);
	buf2[8] = 2;
	cr_assert_eq(sv_metrics_window_deserialize(&v, buf2, n2), SV_ERR_VERSION);
	memcpy(buf2, buf1, n1);
	buf2[n1 - 1] = 7; /* a label */
	cr_assert_eq(sv_metrics_window_deserialize(&v, buf2, n2), SV_ERR_CORRUPT);
	memcpy(buf2, buf1, n1);
	memset(buf2 + 16, 0, 4); /* n_bins 0 */
	cr_assert_eq(sv_metrics_window_deserialize(&v, buf2, n2), SV_ERR_CORRUPT);
	cr_assert_null(v);
	sv_metrics_window_free(w);

	/* an empty window round-trips too */
	cr_assert_eq(sv_metrics_window_new(&w, 3, 8, 1.0), 0);
	cr_assert_eq(sv_metrics_window_serialize(w, buf1, sizeof buf1, &n1), 0);
	cr_assert_eq(n1, 56);
	cr_assert_eq(sv_metrics_window_deserialize(&v, buf1, n1), 0);
	sv_metrics_window_free(v);
	sv_metrics_window_free(w);
}

/* ------------------------------------------------- reference evaluation */

/* The README's evaluation set (t10k, 20000 pairs, seed 1) scored by raw
 * cosine: AUC 0.826 at three digits.  Checks the protocol end to end, with
 * the histogram window within bin resolution of the exact figures. */
Test(metrics, reference_eval_set_raw_cosine, .timeout = 120)
{
	const char *shared = getenv("SV_SHARED_DIR");
	char dir[64], cmd[512], vp[128], pp[128];
	char err[SV_PAIRFILE_ERRLEN];
	struct sv_vecfile *vf = NULL;
	struct sv_pairfile *pf = NULL;
	struct sv_metrics_roc *roc = NULL;
	struct sv_metrics_window *w = NULL;
	struct sv_metrics_summary ex, hi;

	cr_assert_not_null(shared, "SV_SHARED_DIR not set (run through meson test)");
	tmpdir_make(dir, sizeof dir, "metrics");
	snprintf(cmd, sizeof cmd,
	         "/usr/bin/python3 %s/data/make_pairs.py --split t10k --n-pairs 20000 "
	         "--pos-frac 0.5 --seed 1 --out-dir %s >/dev/null",
	         shared, dir);
	cr_assert_eq(system(cmd), 0, "%s", cmd);
	snprintf(vp, sizeof vp, "%s/fmnist_t10k.vec", dir);
	snprintf(pp, sizeof pp, "%s/fmnist_t10k_n20000_p50_s1.pairs", dir);
	cr_assert_eq(sv_vecfile_open(&vf, vp, err, sizeof err), 0, "%s", err);
	cr_assert_eq(sv_pairfile_open(&pf, pp, err, sizeof err), 0, "%s", err);
	uint32_t n = sv_pairfile_header(pf)->n_pairs, dim = sv_vecfile_header(vf)->dim;
	const struct sv_pair_rec *r = sv_pairfile_records(pf);
	float *s = malloc(n * sizeof *s);
	uint8_t *l = malloc(n);
	cr_assert_eq(sv_metrics_window_new(&w, n, SV_METRICS_DEFAULT_BINS, 0.1), 0);
	for (uint32_t i = 0; i < n; i++) {
		const float *a = sv_vecfile_row(vf, r[i].a), *b = sv_vecfile_row(vf, r[i].b);
		double d = 0;

		for (uint32_t k = 0; k < dim; k++)
			d += (double)a[k] * b[k];
		s[i] = (float)d;
		l[i] = r[i].label;
		cr_assert_eq(sv_metrics_window_push(w, s[i], l[i]), 0);
	}
	cr_assert_eq(sv_metrics_roc_new(&roc, s, l, n), 0);
	cr_assert_eq(sv_metrics_roc_summary(roc, &ex), 0);
	cr_assert_eq(ex.n_pos, 10000);
	cr_assert_float_eq(ex.auc, 0.826, 5e-4, "AUC %.5f", ex.auc);
	cr_assert_eq(sv_metrics_window_summary(w, &hi), 0);
	cr_assert_float_eq(hi.auc, ex.auc, 1e-3);
	cr_assert_float_eq(hi.eer, ex.eer, 2e-3);
	cr_assert_float_eq(hi.far_1e2.tar, ex.far_1e2.tar, 1e-2);
	sv_metrics_roc_free(roc);
	sv_metrics_window_free(w);
	sv_pairfile_close(pf);
	sv_vecfile_close(vf);
	free(s);
	free(l);
	tmpdir_remove(dir);
}

Test(metrics, window_resize_keeps_the_newest_pairs)
{
	struct sv_metrics_window *w = NULL, *ref = NULL;
	struct sv_metrics_summary a, b;
	uint64_t n = 0, np = 0;

	cr_assert_eq(sv_metrics_window_new(&w, 100, 64, 0.01), 0);
	cr_assert_eq(sv_metrics_window_new(&ref, 6, 64, 0.01), 0);
	for (int i = 0; i < 40; i++) {
		float s = (float)((i * 37) % 19) / 19.0f - 0.3f;
		uint8_t y = (uint8_t)(i % 3 == 0);

		sv_metrics_window_push(w, s, y);
		sv_metrics_window_push(ref, s, y); /* a window of 6 all along */
	}
	cr_assert_eq(sv_metrics_window_resize(w, 6), 0);
	sv_metrics_window_counts(w, &n, &np);
	cr_assert_eq(n, 6);
	cr_assert_eq(sv_metrics_window_seen(w), 40);
	cr_assert_eq(sv_metrics_window_summary(w, &a), 0);
	cr_assert_eq(sv_metrics_window_summary(ref, &b), 0);
	cr_assert_eq(a.auc, b.auc);
	cr_assert_eq(a.eer, b.eer);
	/* growing keeps what is there; the new room fills */
	cr_assert_eq(sv_metrics_window_resize(w, 50), 0);
	sv_metrics_window_counts(w, &n, &np);
	cr_assert_eq(n, 6);
	sv_metrics_window_push(w, 0.5f, 1);
	sv_metrics_window_counts(w, &n, &np);
	cr_assert_eq(n, 7);
	cr_assert_eq(sv_metrics_window_resize(w, 0), -EINVAL);
	cr_assert_eq(sv_metrics_window_resize(NULL, 5), -EINVAL);
	sv_metrics_window_free(w);
	sv_metrics_window_free(ref);
}
