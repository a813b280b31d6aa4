/* metrics.c - exact and windowed ROC metrics and threshold policies.
 *
 * See sv/metrics.h for the definitions (ROC points, AUC, EER, TAR@FAR) and
 * the window.  All metric functions work on struct sv_metrics_roc, whichever
 * source built it.  Leaves out plotting (svg.c) and any I/O.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sv/error.h"
#include "sv/metrics.h"

/* ------------------------------------------------------------ ROC walk */

/* Point k of origin + points: k == 0 is the origin. */
static void point(const struct sv_metrics_roc *roc, size_t k, uint64_t *tp, uint64_t *fp)
{
	if (k == 0) {
		*tp = 0;
		*fp = 0;
		return;
	}
	*tp = roc->points[k - 1].tp;
	*fp = roc->points[k - 1].fp;
}

static float point_threshold(const struct sv_metrics_roc *roc, size_t k)
{
	if (k == 0)
		return nextafterf(roc->points[0].threshold, INFINITY);
	return roc->points[k - 1].threshold;
}

static void make_op(const struct sv_metrics_roc *roc, float thr, uint64_t tp, uint64_t fp,
                    struct sv_metrics_op *op)
{
	op->threshold = thr;
	op->far = (double)fp / (double)roc->n_neg;
	op->tar = (double)tp / (double)roc->n_pos;
	op->accuracy = (double)(tp + roc->n_neg - fp) / (double)(roc->n_pos + roc->n_neg);
}

static void op_at_point(const struct sv_metrics_roc *roc, size_t k, struct sv_metrics_op *op)
{
	uint64_t tp, fp;

	point(roc, k, &tp, &fp);
	make_op(roc, point_threshold(roc, k), tp, fp, op);
}

double sv_metrics_roc_auc(const struct sv_metrics_roc *roc)
{
	double area = 0; /* in units of tp * fp, exact in double up to 2^53 */
	uint64_t tp0 = 0, fp0 = 0;

	for (size_t i = 0; i < roc->n_points; i++) {
		uint64_t tp = roc->points[i].tp, fp = roc->points[i].fp;

		area += (double)(fp - fp0) * (double)(tp + tp0);
		tp0 = tp;
		fp0 = fp;
	}
	return area / 2.0 / ((double)roc->n_pos * (double)roc->n_neg);
}

/* The crossing segment: first k >= 1 with FPR_k >= FNR_k; alpha along k-1 -> k. */
static void eer_segment(const struct sv_metrics_roc *roc, size_t *kk, double *alpha, double *eer)
{
	double dprev = -1.0, fprev = 0.0;

	for (size_t k = 1; k <= roc->n_points; k++) {
		uint64_t tp, fp;
		double fpr, fnr, d;

		point(roc, k, &tp, &fp);
		fpr = (double)fp / (double)roc->n_neg;
		fnr = 1.0 - (double)tp / (double)roc->n_pos;
		d = fpr - fnr;
		if (d >= 0) {
			double a = -dprev / (d - dprev);

			*kk = k;
			*alpha = a;
			*eer = fprev + a * (fpr - fprev);
			return;
		}
		dprev = d;
		fprev = fpr;
	}
	/* unreachable: the last point has FPR 1, FNR 0 */
	*kk = roc->n_points;
	*alpha = 1.0;
	*eer = 1.0;
}

int sv_metrics_roc_eer(const struct sv_metrics_roc *roc, double *eer, float *threshold)
{
	size_t k;
	double a, e;

	if (!roc || !eer || !threshold)
		return -EINVAL;
	eer_segment(roc, &k, &a, &e);
	*eer = e;
	*threshold = point_threshold(roc, a <= 0.5 ? k - 1 : k);
	return 0;
}

int sv_metrics_roc_tar_at_far(const struct sv_metrics_roc *roc, double far,
                              struct sv_metrics_op *op)
{
	size_t best = 0;

	if (!roc || !op)
		return -EINVAL;
	if (!(far >= 0.0 && far <= 1.0))
		return SV_ERR_RANGE;
	/* FPR and TPR never decrease along the points: the last point with
	 * FPR <= far has the largest TPR and the lowest threshold. */
	for (size_t k = 1; k <= roc->n_points; k++) {
		if ((double)roc->points[k - 1].fp / (double)roc->n_neg > far)
			break;
		best = k;
	}
	op_at_point(roc, best, op);
	return 0;
}

int sv_metrics_roc_at(const struct sv_metrics_roc *roc, float threshold, struct sv_metrics_op *op)
{
	size_t lo = 0, hi;
	uint64_t tp, fp;

	if (!roc || !op)
		return -EINVAL;
	if (isnan(threshold))
		return SV_ERR_NONFINITE;
	/* number of points with threshold >= t (thresholds decrease) */
	hi = roc->n_points;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (roc->points[mid].threshold >= threshold)
			lo = mid + 1;
		else
			hi = mid;
	}
	point(roc, lo, &tp, &fp);
	make_op(roc, threshold, tp, fp, op);
	return 0;
}

int sv_metrics_roc_max_accuracy(const struct sv_metrics_roc *roc, struct sv_metrics_op *op)
{
	size_t best = 0;
	uint64_t best_right = roc ? roc->n_neg : 0;

	if (!roc || !op)
		return -EINVAL;
	for (size_t k = 1; k <= roc->n_points; k++) {
		uint64_t right = roc->points[k - 1].tp + roc->n_neg - roc->points[k - 1].fp;

		if (right > best_right) {
			best_right = right;
			best = k;
		}
	}
	op_at_point(roc, best, op);
	return 0;
}

int sv_metrics_roc_summary(const struct sv_metrics_roc *roc, struct sv_metrics_summary *s)
{
	struct sv_metrics_summary r;

	if (!roc || !s)
		return -EINVAL;
	memset(&r, 0, sizeof r);
	r.n_pos = roc->n_pos;
	r.n_neg = roc->n_neg;
	r.auc = sv_metrics_roc_auc(roc);
	sv_metrics_roc_eer(roc, &r.eer, &r.eer_threshold);
	sv_metrics_roc_tar_at_far(roc, 1e-2, &r.far_1e2);
	sv_metrics_roc_tar_at_far(roc, 1e-3, &r.far_1e3);
	r.loss = NAN;
	r.n_loss = 0;
	*s = r;
	return 0;
}

int sv_metrics_roc_threshold(const struct sv_metrics_roc *roc,
                             const struct sv_metrics_policy_cfg *cfg, struct sv_metrics_op *op)
{
	struct sv_metrics_op r;
	double eer;
	float thr;
	int rc;

	if (!roc || !cfg || !op)
		return -EINVAL;
	if (!isfinite(cfg->initial))
		return SV_ERR_RANGE;
	switch (cfg->policy) {
	case SV_METRICS_POLICY_FIXED:
		rc = sv_metrics_roc_at(roc, cfg->initial, &r);
		break;
	case SV_METRICS_POLICY_TARGET_FAR:
		rc = sv_metrics_roc_tar_at_far(roc, cfg->target_far, &r);
		break;
	case SV_METRICS_POLICY_EER:
		sv_metrics_roc_eer(roc, &eer, &thr);
		rc = sv_metrics_roc_at(roc, thr, &r);
		break;
	case SV_METRICS_POLICY_MAX_ACCURACY:
		rc = sv_metrics_roc_max_accuracy(roc, &r);
		break;
	default:
		return SV_ERR_RANGE;
	}
	if (rc)
		return rc;
	*op = r;
	return 0;
}

int sv_metrics_accuracy(const float *scores, const uint8_t *labels, size_t n, float t,
                        double *accuracy)
{
	size_t right = 0;

	if (!scores || !labels || n == 0 || !accuracy)
		return -EINVAL;
	if (isnan(t))
		return SV_ERR_NONFINITE;
	for (size_t i = 0; i < n; i++) {
		if (!isfinite(scores[i]))
			return SV_ERR_NONFINITE;
		if (labels[i] > 1)
			return SV_ERR_RANGE;
		right += (scores[i] >= t) == (labels[i] == 1);
	}
	*accuracy = (double)right / (double)n;
	return 0;
}

/* ------------------------------------------------------------ exact ROC */

struct scored {
	float s;
	uint8_t l;
};

static int by_score_desc(const void *pa, const void *pb)
{
	float a = ((const struct scored *)pa)->s, b = ((const struct scored *)pb)->s;

	return (a < b) - (a > b);
}

static struct sv_metrics_roc *roc_alloc(size_t max_points)
{
	struct sv_metrics_roc *roc = calloc(1, sizeof *roc);

	if (!roc)
		return NULL;
	roc->points = malloc((max_points ? max_points : 1) * sizeof *roc->points);
	if (!roc->points) {
		free(roc);
		return NULL;
	}
	return roc;
}

int sv_metrics_roc_new(struct sv_metrics_roc **out, const float *scores, const uint8_t *labels,
                       size_t n)
{
	struct scored *v = NULL;
	struct sv_metrics_roc *roc = NULL;
	uint64_t tp = 0, fp = 0;
	int rc = 0;

	if (!out || (n && (!scores || !labels)))
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (!isfinite(scores[i]))
			return SV_ERR_NONFINITE;
		if (labels[i] > 1)
			return SV_ERR_RANGE;
		tp += labels[i];
	}
	if (tp == 0 || tp == n)
		return SV_ERR_METRICS_ONECLASS;
	v = malloc(n * sizeof *v);
	roc = roc_alloc(n);
	if (!v || !roc) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		v[i].s = scores[i];
		v[i].l = labels[i];
	}
	qsort(v, n, sizeof *v, by_score_desc);
	roc->n_pos = tp;
	roc->n_neg = n - tp;
	tp = 0;
	for (size_t i = 0; i < n; i++) {
		tp += v[i].l;
		fp += !v[i].l;
		if (i + 1 == n || v[i + 1].s != v[i].s) {
			struct sv_metrics_roc_point *p = &roc->points[roc->n_points++];

			p->threshold = v[i].s;
			p->tp = tp;
			p->fp = fp;
		}
	}
	*out = roc;
	roc = NULL;
out:
	free(v);
	sv_metrics_roc_free(roc);
	return rc;
}

void sv_metrics_roc_free(struct sv_metrics_roc *roc)
{
	if (!roc)
		return;
	free(roc->points);
	free(roc);
}

/* ---------------------------------------------------------------- window */

struct sv_metrics_window {
	uint32_t capacity, n_bins;
	uint32_t head, count; /* ring: oldest at head */
	float *score;
	uint8_t *label;
	uint32_t *hpos, *hneg;
	uint64_t n_pos;
	uint64_t seen;
	double alpha, loss;
	uint64_t n_loss;
};

static float bin_edge(const struct sv_metrics_window *w, uint32_t b)
{
	return (float)(-1.0 + 2.0 * (double)b / (double)w->n_bins);
}

/* The bin of a finite score, consistent with the float edges: every score in
 * bin b is >= bin_edge(b) and < bin_edge(b + 1). */
static uint32_t bin_of(const struct sv_metrics_window *w, float s)
{
	double x;
	int64_t b;

	if (s < -1.0f)
		s = -1.0f;
	if (s > 1.0f)
		s = 1.0f;
	x = ((double)s + 1.0) * 0.5 * (double)w->n_bins;
	b = (int64_t)floor(x);
	if (b >= (int64_t)w->n_bins)
		b = w->n_bins - 1;
	if (b < 0)
		b = 0;
	if (b > 0 && s < bin_edge(w, (uint32_t)b))
		b--;
	if (b + 1 < (int64_t)w->n_bins && s >= bin_edge(w, (uint32_t)b + 1))
		b++;
	return (uint32_t)b;
}

int sv_metrics_window_new(struct sv_metrics_window **out, uint32_t capacity, uint32_t n_bins,
                          double loss_alpha)
{
	struct sv_metrics_window *w;

	if (!out || capacity == 0 || n_bins == 0 || n_bins > (1u << 20) ||
	    !(loss_alpha > 0.0 && loss_alpha <= 1.0))
		return -EINVAL;
	w = calloc(1, sizeof *w);
	if (!w)
		return -ENOMEM;
	w->capacity = capacity;
	w->n_bins = n_bins;
	w->alpha = loss_alpha;
	w->loss = NAN;
	w->score = malloc((size_t)capacity * sizeof *w->score);
	w->label = malloc(capacity);
	w->hpos = calloc(n_bins, sizeof *w->hpos);
	w->hneg = calloc(n_bins, sizeof *w->hneg);
	if (!w->score || !w->label || !w->hpos || !w->hneg) {
		sv_metrics_window_free(w);
		return -ENOMEM;
	}
	*out = w;
	return 0;
}

void sv_metrics_window_free(struct sv_metrics_window *w)
{
	if (!w)
		return;
	free(w->score);
	free(w->label);
	free(w->hpos);
	free(w->hneg);
	free(w);
}

const char *const sv_metrics_policy_names[SV_METRICS_POLICY_COUNT + 1] = {
    "fixed", "target_far", "eer", "max_accuracy", NULL};

const char *sv_metrics_policy_name(int policy)
{
	return policy >= 0 && policy < SV_METRICS_POLICY_COUNT ? sv_metrics_policy_names[policy]
	                                                       : "unknown";
}

int sv_metrics_window_resize(struct sv_metrics_window *w, uint32_t capacity)
{
	struct sv_metrics_window *nw = NULL, t;
	uint32_t skip;
	int rc;

	if (!w || capacity == 0)
		return -EINVAL;
	rc = sv_metrics_window_new(&nw, capacity, w->n_bins, w->alpha);
	if (rc < 0)
		return rc;
	/* the newest min(count, capacity) pairs, oldest first */
	skip = w->count > capacity ? w->count - capacity : 0;
	for (uint32_t i = skip; i < w->count; i++) {
		uint32_t at = (w->head + i) % w->capacity;

		sv_metrics_window_push(nw, w->score[at], w->label[at]);
	}
	nw->seen = w->seen;
	nw->loss = w->loss;
	nw->n_loss = w->n_loss;
	t = *w; /* swap, so w keeps its address and nw takes the old buffers */
	*w = *nw;
	*nw = t;
	sv_metrics_window_free(nw);
	return 0;
}

int sv_metrics_window_push(struct sv_metrics_window *w, float score, uint8_t label)
{
	uint32_t slot;

	if (!w)
		return -EINVAL;
	if (!isfinite(score))
		return SV_ERR_NONFINITE;
	if (label > 1)
		return SV_ERR_RANGE;
	if (w->count == w->capacity) {
		uint32_t ob = bin_of(w, w->score[w->head]);

		if (w->label[w->head]) {
			w->hpos[ob]--;
			w->n_pos--;
		} else {
			w->hneg[ob]--;
		}
		w->head = (w->head + 1) % w->capacity;
		w->count--;
	}
	slot = (uint32_t)(((uint64_t)w->head + w->count) % w->capacity);
	w->score[slot] = score;
	w->label[slot] = label;
	w->count++;
	w->seen++;
	if (label) {
		w->hpos[bin_of(w, score)]++;
		w->n_pos++;
	} else {
		w->hneg[bin_of(w, score)]++;
	}
	return 0;
}

int sv_metrics_window_push_loss(struct sv_metrics_window *w, double loss)
{
	if (!w)
		return -EINVAL;
	if (!isfinite(loss))
		return SV_ERR_NONFINITE;
	if (w->n_loss == 0)
		w->loss = loss;
	else
		w->loss += w->alpha * (loss - w->loss);
	w->n_loss++;
	return 0;
}

void sv_metrics_window_counts(const struct sv_metrics_window *w, uint64_t *n, uint64_t *n_pos)
{
	if (n)
		*n = w->count;
	if (n_pos)
		*n_pos = w->n_pos;
}

uint64_t sv_metrics_window_seen(const struct sv_metrics_window *w)
{
	return w->seen;
}

void sv_metrics_window_loss(const struct sv_metrics_window *w, double *loss, uint64_t *n_loss)
{
	if (loss)
		*loss = w->loss;
	if (n_loss)
		*n_loss = w->n_loss;
}

static int window_roc_exact(const struct sv_metrics_window *w, struct sv_metrics_roc **out)
{
	float *s = malloc((size_t)w->count * sizeof *s + 1);
	uint8_t *l = malloc((size_t)w->count + 1);
	int rc = -ENOMEM;

	if (s && l) {
		for (uint32_t i = 0; i < w->count; i++) {
			uint32_t k = (uint32_t)(((uint64_t)w->head + i) % w->capacity);

			s[i] = w->score[k];
			l[i] = w->label[k];
		}
		rc = sv_metrics_roc_new(out, s, l, w->count);
	}
	free(s);
	free(l);
	return rc;
}

int sv_metrics_window_roc(const struct sv_metrics_window *w, int exact, struct sv_metrics_roc **out)
{
	struct sv_metrics_roc *roc;
	uint64_t tp = 0, fp = 0;

	if (!w || !out)
		return -EINVAL;
	if (w->n_pos == 0 || w->n_pos == w->count)
		return SV_ERR_METRICS_ONECLASS;
	if (exact)
		return window_roc_exact(w, out);
	roc = roc_alloc(w->n_bins);
	if (!roc)
		return -ENOMEM;
	roc->n_pos = w->n_pos;
	roc->n_neg = w->count - w->n_pos;
	for (uint32_t b = w->n_bins; b-- > 0;) {
		struct sv_metrics_roc_point *p;

		if (w->hpos[b] == 0 && w->hneg[b] == 0)
			continue;
		tp += w->hpos[b];
		fp += w->hneg[b];
		p = &roc->points[roc->n_points++];
		p->threshold = bin_edge(w, b);
		p->tp = tp;
		p->fp = fp;
	}
	*out = roc;
	return 0;
}

int sv_metrics_window_summary(const struct sv_metrics_window *w, struct sv_metrics_summary *s)
{
	struct sv_metrics_roc *roc = NULL;
	struct sv_metrics_summary r;
	int rc;

	if (!w || !s)
		return -EINVAL;
	rc = sv_metrics_window_roc(w, 0, &roc);
	if (rc)
		return rc;
	sv_metrics_roc_summary(roc, &r);
	sv_metrics_roc_free(roc);
	r.loss = w->loss;
	r.n_loss = w->n_loss;
	*s = r;
	return 0;
}

int sv_metrics_window_threshold(const struct sv_metrics_window *w,
                                const struct sv_metrics_policy_cfg *cfg, struct sv_metrics_op *op,
                                int *from_window)
{
	struct sv_metrics_roc *roc = NULL;
	struct sv_metrics_policy_cfg fixed;
	struct sv_metrics_op r;
	int ready, rc;

	if (!w || !cfg || !op)
		return -EINVAL;
	if (!isfinite(cfg->initial) || (unsigned)cfg->policy > SV_METRICS_POLICY_MAX_ACCURACY ||
	    (cfg->policy == SV_METRICS_POLICY_TARGET_FAR &&
	     !(cfg->target_far >= 0.0 && cfg->target_far <= 1.0)))
		return SV_ERR_RANGE;
	rc = sv_metrics_window_roc(w, 0, &roc);
	if (rc == SV_ERR_METRICS_ONECLASS) {
		r.threshold = cfg->initial;
		r.far = r.tar = r.accuracy = NAN;
		ready = 0;
		goto done;
	}
	if (rc)
		return rc;
	ready = w->count >= cfg->min_pairs;
	fixed = *cfg;
	if (!ready)
		fixed.policy = SV_METRICS_POLICY_FIXED;
	rc = sv_metrics_roc_threshold(roc, &fixed, &r);
	sv_metrics_roc_free(roc);
	if (rc)
		return rc;
done:
	*op = r;
	if (from_window)
		*from_window = ready;
	return 0;
}

/* ---------------------------------------------------------- serialization */

static const char WIN_MAGIC[8] = {'S', 'V', 'M', 'W', 'I', 'N', '0', '1'};
#define WIN_VERSION 1u
#define WIN_HEADER 56u

size_t sv_metrics_window_serialized_size(const struct sv_metrics_window *w)
{
	return WIN_HEADER + 5u * (size_t)w->count;
}

static uint8_t *put(uint8_t *p, const void *v, size_t n)
{
	memcpy(p, v, n);
	return p + n;
}

int sv_metrics_window_serialize(const struct sv_metrics_window *w, void *buf, size_t cap,
                                size_t *len)
{
	uint32_t version = WIN_VERSION;
	size_t need;
	uint8_t *p = buf;

	if (!w || !buf || !len)
		return -EINVAL;
	need = sv_metrics_window_serialized_size(w);
	if (cap < need)
		return -ENOSPC;
	p = put(p, WIN_MAGIC, 8);
	p = put(p, &version, 4);
	p = put(p, &w->capacity, 4);
	p = put(p, &w->n_bins, 4);
	p = put(p, &w->count, 4);
	p = put(p, &w->alpha, 8);
	p = put(p, &w->loss, 8);
	p = put(p, &w->n_loss, 8);
	p = put(p, &w->seen, 8);
	for (uint32_t i = 0; i < w->count; i++)
		p = put(p, &w->score[(uint32_t)(((uint64_t)w->head + i) % w->capacity)], 4);
	for (uint32_t i = 0; i < w->count; i++)
		*p++ = w->label[(uint32_t)(((uint64_t)w->head + i) % w->capacity)];
	*len = need;
	return 0;
}

int sv_metrics_window_deserialize(struct sv_metrics_window **out, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	struct sv_metrics_window *w = NULL;
	uint32_t version, capacity, n_bins, count;
	double alpha, loss;
	uint64_t n_loss, seen;
	int rc;

	if (!out || (!buf && len))
		return -EINVAL;
	if (len < WIN_HEADER)
		return SV_ERR_TRUNCATED;
	if (memcmp(p, WIN_MAGIC, 8) != 0)
		return SV_ERR_MAGIC;
	memcpy(&version, p + 8, 4);
	memcpy(&capacity, p + 12, 4);
	memcpy(&n_bins, p + 16, 4);
	memcpy(&count, p + 20, 4);
	memcpy(&alpha, p + 24, 8);
	memcpy(&loss, p + 32, 8);
	memcpy(&n_loss, p + 40, 8);
	memcpy(&seen, p + 48, 8);
	if (version != WIN_VERSION)
		return SV_ERR_VERSION;
	if (count > capacity || seen < count || (n_loss == 0) != (isnan(loss) != 0))
		return SV_ERR_CORRUPT;
	if (len < WIN_HEADER + 5ull * count)
		return SV_ERR_TRUNCATED;
	if (len > WIN_HEADER + 5ull * count)
		return SV_ERR_CORRUPT;
	rc = sv_metrics_window_new(&w, capacity, n_bins, alpha);
	if (rc == -EINVAL)
		return SV_ERR_CORRUPT;
	if (rc)
		return rc;
	p += WIN_HEADER;
	for (uint32_t i = 0; i < count; i++) {
		float s;

		memcpy(&s, p + 4 * (size_t)i, 4);
		rc = sv_metrics_window_push(w, s, p[4 * (size_t)count + i]);
		if (rc) {
			sv_metrics_window_free(w);
			return SV_ERR_CORRUPT;
		}
	}
	w->loss = loss;
	w->n_loss = n_loss;
	w->seen = seen;
	*out = w;
	return 0;
}
