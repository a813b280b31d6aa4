/* sv/loss.h - ContrastiveLoss and NTXentLoss exactly as pytorch-metric-learning
 * 2.8.1 computes them (../shared/reference/LOSSES.md), forward and backward.
 *
 * A minibatch of n labeled pairs has m = 2n rows of normalized embeddings E
 * (m x d_out, float32, row-major): row i is the left side of pair i, row n+i
 * its right side.  The loss sees E and the labels and returns the scalar loss
 * and G = dL/dE (m x d_out).  Turning G into dL/dW is sv/model.h's job.
 *
 * Label modes (which ordered row pairs are positives and negatives):
 *   SV_LABEL_MODE_BATCH  LOSSES.md 3.1: rows of a same pair share a label, every
 *                        other ordered pair of distinct rows is a negative.
 *   SV_LABEL_MODE_PAIRS  LOSSES.md 3.2: only the n labeled pairs, anchor left.
 *   SV_LABEL_MODE_GRAPH  beyond PML: rows carry item keys; rows with one key are
 *                        one item, union-find over the positive pairs makes the
 *                        label groups (A=B, B=C gives A=C), every row pair in
 *                        different groups is a negative, and a y=0 pair whose rows
 *                        fall in one group is a contradiction: it is counted and
 *                        its two rows are neither positive nor negative of each
 *                        other.  With no repeated key and no transitive link the
 *                        result equals BATCH exactly.
 *
 * Memory is O(n^2): a workspace sized once for the largest batch holds the
 * m x m similarity matrix and its gradient coefficients; NT-Xent at n = 1024
 * uses about 2 x 2048^2 x 4 bytes = 32 MiB (sv_loss_ws_bytes tells exactly).
 *
 * Precision: E, G and the m x m matrices are float32; sums over rows and
 * the loss are accumulated in double.  Against PML in float64 the golden
 * cases agree to ~1e-7 relative (LOSSES.md 9 asks for 1e-5).  Contrastive
 * distances of positives and of near negatives (d < ~0.22) are computed
 * directly, not by the expanded form, so duplicate rows give d = 0 exactly.
 *
 * Threads: a workspace serves one evaluation at a time; separate workspaces
 * may be used from separate threads.  The matrix products go through
 * sv/blas.h and use its thread count.
 */
#ifndef SV_LOSS_H
#define SV_LOSS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum sv_loss_kind {
	SV_LOSS_KIND_CONTRASTIVE = 0,
	SV_LOSS_KIND_NTXENT = 1,
};

enum sv_label_mode {
	SV_LABEL_MODE_BATCH = 0,
	SV_LABEL_MODE_PAIRS = 1,
	SV_LABEL_MODE_GRAPH = 2,
};

struct sv_loss_params {
	enum sv_loss_kind kind;
	enum sv_label_mode mode;
	float pos_margin;   /* contrastive, distance units [0, 2]; PML default 0 */
	float neg_margin;   /* contrastive; PML default 1 */
	float temperature;  /* ntxent, > 0; PML default 0.07 */
};

/* PML's defaults: contrastive margins 0 and 1, temperature 0.07, batch mode. */
void sv_loss_params_default(struct sv_loss_params *p, enum sv_loss_kind kind);

/* The labels of one minibatch.  y has n entries (1 same, 0 different).  keys
 * has 2n entries (row r's item key; rows with equal keys are one item) and is
 * read only in GRAPH mode, where it must not be NULL.  Borrowed for the call. */
struct sv_pair_labels {
	size_t n;
	const uint8_t *y;
	const uint64_t *keys;
};

/* What one evaluation found (LOSSES.md names). */
struct sv_loss_stats {
	double loss;            /* the scalar loss */
	double pos_loss, neg_loss; /* contrastive sub-losses (0 for ntxent) */
	size_t n_pos_pairs;     /* ordered positive entries |P| */
	size_t n_neg_pairs;     /* ordered negative entries |N| */
	size_t n_pos_active;    /* contrastive: entries with loss > 0 */
	size_t n_neg_active;
	size_t contradictions;  /* graph mode: y=0 pairs inside one group */
	int guard;              /* 1 when the too-few-indices guard fired */
};

typedef struct sv_loss_ws sv_loss_ws;

/* A workspace for batches of up to max_pairs pairs and d_out columns.
 * Returns 0, -EINVAL or -ENOMEM; *out is owned by the caller, freed with
 * sv_loss_ws_free (which accepts NULL). */
int sv_loss_ws_new(sv_loss_ws **out, size_t max_pairs, uint32_t d_out);
void sv_loss_ws_free(sv_loss_ws *ws);

/* The bytes sv_loss_ws_new allocates for max_pairs and d_out (0 on size
 * overflow).  Two m x m float matrices plus O(m) bookkeeping, m = 2 max_pairs. */
size_t sv_loss_ws_bytes(size_t max_pairs, uint32_t d_out);

/* x[i] = exp(x[i]) for cnt floats in place, the vectorizable exp the NT-Xent
 * pass uses (exposed so tests can hold it against expf).  Within 2 ulp of
 * expf for x in [-87, 88]; 0 below about -87.3, +Inf above about 88.7. */
void sv_loss_exp(float *x, size_t cnt);

/* Evaluate the loss on E (2n x d_out) and, when G is not NULL, write
 * G = dL/dE (2n x d_out, caller-owned).  st may be NULL.
 * Returns 0; -EINVAL for bad params or NULL keys in graph mode;
 * SV_ERR_SHAPE when n exceeds the workspace's max_pairs or d_out differs. */
int sv_loss_eval(sv_loss_ws *ws, const struct sv_loss_params *p,
		 const struct sv_pair_labels *lab, const float *E, uint32_t d_out,
		 float *G, struct sv_loss_stats *st);

#ifdef __cplusplus
}
#endif
#endif
