/* sv/metrics.h - verification metrics: ROC, AUC, EER, TAR@FAR, thresholds.
 *
 * Two sources of scores, one representation:
 *
 *   exact    sv_metrics_roc_new() from arrays of (score, label), following the
 *            evaluation protocol of ../shared/data/README.md;
 *   window   struct sv_metrics_window, the last W scored pairs in a ring
 *            buffer plus positive / negative histograms of fixed bins over
 *            [-1, 1], updated in O(1) per pair; sv_metrics_window_roc() turns
 *            the histograms (or, exactly, the ring) into the same ROC.
 *
 * The ROC (struct sv_metrics_roc) is a list of points in decreasing threshold
 * order.  A pair is accepted when score >= threshold.  Point i says: tp
 * positives and fp negatives have score >= points[i].threshold.  There is one
 * point per distinct score (exact) or per non-empty bin (window, threshold =
 * the bin's lower edge, so a histogram threshold accepts whole bins).  The
 * origin (nothing accepted, TPR = FPR = 0) comes implicitly before point 0;
 * the last point accepts everything (tp = n_pos, fp = n_neg).
 *   TPR = TAR = tp / n_pos          FPR = FAR = fp / n_neg       FNR = 1 - TPR
 *
 *   AUC        trapezoidal area under origin + points (ties count 1/2, equal
 *              to the Mann-Whitney statistic).
 *   EER        walking from the origin, the first point k with FPR >= FNR and
 *              the point k-1 before it; the crossing of FPR and FNR linearly
 *              interpolated on that segment.  Its threshold is the threshold
 *              of whichever of k-1, k is nearer the crossing.
 *   TAR@FAR=f  the largest TPR among origin + points with FPR <= f; its
 *              threshold is the lowest threshold that reaches it.
 *
 * Thresholds handed out are always finite: where the origin is chosen (accept
 * nothing) the threshold is nextafterf(highest score threshold, +inf).  Scores
 * must be finite; the window clamps them to [-1, 1] (cosines) before binning.
 *
 * Ownership: an sv_metrics_roc and an sv_metrics_window are owned by the
 * caller of their constructor; each has one destructor that accepts NULL.
 * Nothing here keeps a pointer to caller arrays after returning.
 * Threading: none inside; a window is not safe for concurrent use.
 * Left out: confidence intervals, per-class breakdowns, plots (sv/svg.h).
 */
#ifndef SV_METRICS_H
#define SV_METRICS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SV_METRICS_DEFAULT_BINS 2048u

struct sv_metrics_roc_point {
	float threshold; /* accepted: score >= threshold */
	uint64_t tp, fp; /* positives / negatives accepted at this threshold */
};

struct sv_metrics_roc {
	uint64_t n_pos, n_neg;               /* both > 0 */
	size_t n_points;                     /* >= 1 */
	struct sv_metrics_roc_point *points; /* owned by the roc; decreasing threshold */
};

/* An operating point: a threshold and what it does. */
struct sv_metrics_op {
	float threshold;
	double far;      /* fp / n_neg */
	double tar;      /* tp / n_pos */
	double accuracy; /* (tp + n_neg - fp) / (n_pos + n_neg) */
};

struct sv_metrics_summary {
	uint64_t n_pos, n_neg;
	double auc;
	double eer;
	float eer_threshold;
	struct sv_metrics_op far_1e2; /* TAR@FAR=1e-2 and its threshold */
	struct sv_metrics_op far_1e3; /* TAR@FAR=1e-3 and its threshold */
	double loss;                  /* running loss (window only; NaN when none was pushed) */
	uint64_t n_loss;              /* losses pushed so far (window only) */
};

/* ------------------------------------------------------------ exact ROC */

/* Build the exact ROC of n pairs (scores[i], labels[i]); labels are 0 / 1.
 * The arrays are only read during the call.  O(n log n), one allocation.
 * Returns 0, -EINVAL (NULL pointers with n > 0, or out NULL), -ENOMEM,
 * SV_ERR_NONFINITE (a NaN or infinite score), SV_ERR_RANGE (a label > 1),
 * SV_ERR_METRICS_ONECLASS (no positives or no negatives, including n == 0). */
int sv_metrics_roc_new(struct sv_metrics_roc **out, const float *scores, const uint8_t *labels,
                       size_t n);

/* Free.  Accepts NULL. */
void sv_metrics_roc_free(struct sv_metrics_roc *roc);

/* AUC (see above).  roc must not be NULL. */
double sv_metrics_roc_auc(const struct sv_metrics_roc *roc);

/* EER and its threshold (see above).  Returns 0 or -EINVAL (NULL). */
int sv_metrics_roc_eer(const struct sv_metrics_roc *roc, double *eer, float *threshold);

/* TAR@FAR=far as an operating point.  far in [0, 1] else SV_ERR_RANGE.
 * Returns 0, -EINVAL or SV_ERR_RANGE. */
int sv_metrics_roc_tar_at_far(const struct sv_metrics_roc *roc, double far,
                              struct sv_metrics_op *op);

/* The operating point of an arbitrary threshold (for the histogram ROC it is
 * the point of the lowest bin edge >= threshold).  Returns 0, -EINVAL, or
 * SV_ERR_NONFINITE for a NaN threshold. */
int sv_metrics_roc_at(const struct sv_metrics_roc *roc, float threshold, struct sv_metrics_op *op);

/* The point of highest accuracy (the highest threshold among ties; the
 * origin counts).  Returns 0 or -EINVAL. */
int sv_metrics_roc_max_accuracy(const struct sv_metrics_roc *roc, struct sv_metrics_op *op);

/* AUC, EER, TAR@FAR 1e-2 and 1e-3 at once (loss = NaN, n_loss = 0).
 * Returns 0 or -EINVAL. */
int sv_metrics_roc_summary(const struct sv_metrics_roc *roc, struct sv_metrics_summary *s);

/* Accuracy of threshold t directly on arrays: (#pos >= t + #neg < t) / n.
 * Returns 0, -EINVAL (NULL, n == 0), SV_ERR_NONFINITE, SV_ERR_RANGE (label). */
int sv_metrics_accuracy(const float *scores, const uint8_t *labels, size_t n, float t,
                        double *accuracy);

/* ------------------------------------------------------ threshold policy */

/* The operating point of the match decision: query.threshold_policy, and
 * the `policy` byte of a SCORE reply (sv/proto.h); the values are stable. */
enum sv_metrics_policy {
	SV_METRICS_POLICY_FIXED = 0,        /* always the initial threshold */
	SV_METRICS_POLICY_TARGET_FAR = 1,   /* the TAR@FAR=target_far threshold */
	SV_METRICS_POLICY_EER = 2,          /* the EER threshold */
	SV_METRICS_POLICY_MAX_ACCURACY = 3, /* the highest-accuracy threshold */
	SV_METRICS_POLICY_COUNT
};

/* The policies' names, index = enum value, NULL-terminated: "fixed",
 * "target_far", "eer", "max_accuracy" (the config file's words). */
extern const char *const sv_metrics_policy_names[SV_METRICS_POLICY_COUNT + 1];
/* The name of policy, or "unknown". */
const char *sv_metrics_policy_name(int policy);

struct sv_metrics_policy_cfg {
	enum sv_metrics_policy policy;
	float initial;      /* used by FIXED, and until the window is ready */
	double target_far;  /* TARGET_FAR only, in [0, 1] */
	uint64_t min_pairs; /* window pairs needed before the policy applies */
};

/* The policy's threshold on an ROC (min_pairs ignored).  op gets the
 * threshold and its operating point.  Returns 0, -EINVAL, SV_ERR_RANGE (an
 * unknown policy, target_far outside [0, 1], a non-finite initial). */
int sv_metrics_roc_threshold(const struct sv_metrics_roc *roc,
                             const struct sv_metrics_policy_cfg *cfg, struct sv_metrics_op *op);

/* ---------------------------------------------------------------- window */

/* The last `capacity` scored pairs, histograms of n_bins bins over [-1, 1]
 * (bin b covers [-1 + 2b/n_bins, -1 + 2(b+1)/n_bins); 1.0 falls in the last
 * bin), and a running loss: an exponential moving average
 *     loss = loss + alpha * (x - loss), the first x taken as is. */
struct sv_metrics_window;

/* Returns 0, -EINVAL (out NULL, capacity 0, n_bins 0 or > 1<<20, alpha
 * outside (0, 1]) or -ENOMEM. */
int sv_metrics_window_new(struct sv_metrics_window **out, uint32_t capacity, uint32_t n_bins,
                          double loss_alpha);

/* Free.  Accepts NULL. */
void sv_metrics_window_free(struct sv_metrics_window *w);

/* Add one scored pair, evicting the oldest when full.  O(1).
 * Returns 0, -EINVAL, SV_ERR_NONFINITE (NaN/Inf score), SV_ERR_RANGE (label > 1). */
/* Change the capacity (query.window_pairs reloaded): the newest
 * min(count, capacity) pairs are kept, in order; seen and the running loss
 * stay.  Returns 0, -EINVAL (w NULL, capacity 0) or -ENOMEM (w unchanged). */
int sv_metrics_window_resize(struct sv_metrics_window *w, uint32_t capacity);

int sv_metrics_window_push(struct sv_metrics_window *w, float score, uint8_t label);

/* Add one loss value to the running loss.  Returns 0, -EINVAL, SV_ERR_NONFINITE. */
int sv_metrics_window_push_loss(struct sv_metrics_window *w, double loss);

/* Pairs in the window now, and of them positives; any pointer may be NULL. */
void sv_metrics_window_counts(const struct sv_metrics_window *w, uint64_t *n, uint64_t *n_pos);

/* Total pairs ever pushed (evicted ones included). */
uint64_t sv_metrics_window_seen(const struct sv_metrics_window *w);

/* The running loss (NaN before the first push_loss) and how many were pushed;
 * either pointer may be NULL. */
void sv_metrics_window_loss(const struct sv_metrics_window *w, double *loss, uint64_t *n_loss);

/* The window's ROC: exact = 0 from the histograms (at most n_bins points,
 * O(n_bins)), exact = 1 from the ring (O(W log W)).  Caller frees *out with
 * sv_metrics_roc_free().  Returns 0, -EINVAL, -ENOMEM, SV_ERR_METRICS_ONECLASS. */
int sv_metrics_window_roc(const struct sv_metrics_window *w, int exact,
                          struct sv_metrics_roc **out);

/* Histogram summary plus the running loss.  Errors as sv_metrics_window_roc(). */
int sv_metrics_window_summary(const struct sv_metrics_window *w, struct sv_metrics_summary *s);

/* The policy's threshold on the histogram ROC once the window holds at least
 * cfg->min_pairs pairs of both classes; before that cfg->initial, with its
 * operating point on the window when both classes are present (NaN fields
 * otherwise).  *from_window (may be NULL) says which.  Returns 0, -EINVAL,
 * SV_ERR_RANGE (as sv_metrics_roc_threshold()), -ENOMEM. */
int sv_metrics_window_threshold(const struct sv_metrics_window *w,
                                const struct sv_metrics_policy_cfg *cfg, struct sv_metrics_op *op,
                                int *from_window);

/* Serialization (saved with each checkpoint).  The image holds the settings,
 * the running loss and the ring oldest-first; the histograms are rebuilt
 * from the ring on load, so load(save(w)) behaves exactly as w and
 * save(load(save(w))) == save(w) byte for byte.  Host byte order
 * (little-endian hosts only).  Layout:
 *   char[8] "SVMWIN01", u32 version 1, u32 capacity, u32 n_bins, u32 count,
 *   f64 alpha, f64 loss, u64 n_loss, u64 seen,
 *   f32 score[count], u8 label[count]                 (56 + 5 * count bytes) */
size_t sv_metrics_window_serialized_size(const struct sv_metrics_window *w);

/* Write the image into buf (cap bytes).  *len gets its size.
 * Returns 0, -EINVAL, or -ENOSPC (cap too small; nothing written). */
int sv_metrics_window_serialize(const struct sv_metrics_window *w, void *buf, size_t cap,
                                size_t *len);

/* Make a new window from an image.  Returns 0, -EINVAL, -ENOMEM,
 * SV_ERR_TRUNCATED (len shorter than the image), SV_ERR_MAGIC,
 * SV_ERR_VERSION, SV_ERR_CORRUPT (bad settings, count > capacity, a length
 * that disagrees with count, a NaN score or a label > 1). */
int sv_metrics_window_deserialize(struct sv_metrics_window **out, const void *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif
