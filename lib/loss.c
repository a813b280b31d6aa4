/* loss.c - ContrastiveLoss and NTXentLoss forward and backward
 * (sv/loss.h, ../shared/reference/LOSSES.md sections 3-5 and 7).
 *
 * BATCH and GRAPH modes use the label-vector formulation: every row r gets a
 * label c_r; (r, s) is a positive when r != s, c_r == c_s and s is not r's
 * excluded partner (graph contradictions), a negative when c_r != c_s.  The
 * work is O(m^2) in time and memory (m = 2n): S = E E^T through sv/blas.h,
 * one m x m coefficient matrix, then one GEMM for G.  PAIRS mode is O(n).
 * The m x m passes run in row parts on sv_blas's threads; each part keeps
 * its own column sums, added in part order, so results depend on the thread
 * count (to float rounding) but never on timing.
 *
 * Precision: matrices are float32; per-row and global reductions in double.
 * Contrastive distances come from the expanded form 2 - 2 s on unit rows, and
 * are recomputed directly (in double, from E) when the expanded d^2 is below
 * NEAR_D2; those near pairs also get their gradient accumulated directly, so
 * duplicate rows give d = 0 exactly and no cancellation error.
 *
 * Leaves out: the normalization Jacobian and dW (model.c), pair selection
 * beyond the three label modes (no miners, no cross-batch memory).
 */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3", "-fno-trapping-math")
#endif
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sv/blas.h"
#include "sv/error.h"
#include "sv/loss.h"

/* Expanded squared distances below this are recomputed directly. */
#define NEAR_D2 0.05f
/* finfo(float32).tiny, added inside NT-Xent's log (LOSSES.md 5.1). */
#define TINY32 1.1754943508222875e-38
/* NT-Xent: largest spread of logits (over tau) the shared-reference path
 * of ntxent_upper / ntxent_labels accepts before exp would underflow. */
#define SPREAD_MAX 60.0f
/* The m x m passes of ntxent_upper and contrastive_labels run in up to
 * this many row parts (at most sv_blas_threads()), in one below
 * PARTS_MIN_ROWS rows. */
#define PARTS_MAX 8
#define PARTS_MIN_ROWS 128

/* The m x m row passes are built for AVX2 as well as the baseline ISA where
 * GCC can dispatch at load time (ifunc); fp contraction stays off (ISO C
 * mode), so both clones round identically except for the lane count. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define HOT_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define HOT_CLONES
#endif

struct keyrow {
	uint64_t key;
	int32_t row;
};

struct sv_loss_ws {
	size_t max_pairs;
	uint32_t d_out;
	float *S;          /* m x m: E E^T, then contrastive distances (upper) */
	float *C;          /* m x m: gradient coefficients */
	int32_t *lab;      /* m labels */
	int32_t *excl;     /* m: excluded partner row or -1 */
	int32_t *gsz;      /* m: group size by label */
	int32_t *uf;       /* m: union-find parents / sort scratch */
	struct keyrow *kr; /* m: rows sorted by key (graph mode) */
	double *rsum;      /* m: row sums of C, squared row norms */
	float *nf;         /* m: squared row norms in float; ntxent row maxima */
	int32_t *gst;      /* m + 1: group starts in uf (which then lists members) */
	float *wv;         /* m: ntxent per-row coefficients */
	int32_t *nearc;    /* m: per row, near pairs found in pass 1 */
	float *zcp;        /* PARTS_MAX x 2m: per part column sums, column maxima */
	double *rz;        /* m: ntxent_upper row sums */
	float *rmx;        /* m: ntxent_upper row maxima */
};

void sv_loss_params_default(struct sv_loss_params *p, enum sv_loss_kind kind)
{
	if (!p)
		return;
	memset(p, 0, sizeof(*p));
	p->kind = kind;
	p->mode = SV_LABEL_MODE_BATCH;
	p->pos_margin = 0.0f;
	p->neg_margin = 1.0f;
	p->temperature = 0.07f;
}

size_t sv_loss_ws_bytes(size_t max_pairs, uint32_t d_out)
{
	(void)d_out;
	if (max_pairs == 0 || max_pairs > ((size_t)1 << 28))
		return 0;
	size_t m = 2 * max_pairs;
	if (m > SIZE_MAX / m / (2 * sizeof(float)))
		return 0;
	return sizeof(struct sv_loss_ws) + 2 * m * m * sizeof(float) +
	       (6 * m + 1) * sizeof(int32_t) +
	       m * (2 * sizeof(double) + 3 * sizeof(float) + sizeof(struct keyrow)) +
	       PARTS_MAX * 2 * m * sizeof(float);
}

int sv_loss_ws_new(sv_loss_ws **out, size_t max_pairs, uint32_t d_out)
{
	if (!out || max_pairs == 0 || d_out == 0 || max_pairs > INT32_MAX / 4)
		return -EINVAL;
	if (sv_loss_ws_bytes(max_pairs, d_out) == 0)
		return -ENOMEM;
	size_t m = 2 * max_pairs;
	sv_loss_ws *ws = calloc(1, sizeof(*ws));
	if (!ws)
		return -ENOMEM;
	ws->max_pairs = max_pairs;
	ws->d_out = d_out;
	ws->S = malloc(m * m * sizeof(float));
	ws->C = malloc(m * m * sizeof(float));
	ws->lab = malloc(m * sizeof(int32_t));
	ws->excl = malloc(m * sizeof(int32_t));
	ws->gsz = malloc(m * sizeof(int32_t));
	ws->uf = malloc(m * sizeof(int32_t));
	ws->kr = malloc(m * sizeof(*ws->kr));
	ws->rsum = malloc(m * sizeof(double));
	ws->nf = malloc(m * sizeof(float));
	ws->gst = malloc((m + 1) * sizeof(int32_t));
	ws->wv = malloc(m * sizeof(float));
	ws->zcp = malloc(PARTS_MAX * 2 * m * sizeof(float));
	ws->rz = malloc(m * sizeof(double));
	ws->rmx = malloc(m * sizeof(float));
	ws->nearc = malloc(m * sizeof(int32_t));
	if (!ws->S || !ws->C || !ws->lab || !ws->excl || !ws->gsz || !ws->uf || !ws->kr ||
	    !ws->rsum || !ws->nf || !ws->gst || !ws->wv || !ws->nearc || !ws->zcp ||
	    !ws->rz || !ws->rmx) {
		sv_loss_ws_free(ws);
		return -ENOMEM;
	}
	*out = ws;
	return 0;
}

void sv_loss_ws_free(sv_loss_ws *ws)
{
	if (!ws)
		return;
	free(ws->S);
	free(ws->C);
	free(ws->lab);
	free(ws->excl);
	free(ws->gsz);
	free(ws->uf);
	free(ws->kr);
	free(ws->rsum);
	free(ws->nf);
	free(ws->gst);
	free(ws->wv);
	free(ws->nearc);
	free(ws->zcp);
	free(ws->rz);
	free(ws->rmx);
	free(ws);
}

/* ---- fast exp --------------------------------------------------------- */

union fbits {
	float f;
	int32_t i;
};

/* exp by x = k ln2 + r, |r| <= ln2/2, degree-7 Taylor polynomial for e^r,
 * 2^k built from the exponent bits.  Branch-free so loops vectorize. */
static inline float fast_exp(float x)
{
	const float log2e = 1.44269504088896341f;
	const float ln2_hi = 0.693359375f, ln2_lo = -2.12194440e-4f;
	const float shifter = 12582912.0f; /* 1.5 * 2^23: round to nearest */
	/* NaN fails both tests and lands on -86.5: no undefined int conversion */
	float xc = x > -86.5f ? (x < 88.7f ? x : 88.7f) : -86.5f;
	float k = (xc * log2e + shifter) - shifter;
	float r = (xc - k * ln2_hi) - k * ln2_lo;
	float p = 1.0f / 5040.0f;
	p = p * r + 1.0f / 720.0f;
	p = p * r + 1.0f / 120.0f;
	p = p * r + 1.0f / 24.0f;
	p = p * r + 1.0f / 6.0f;
	p = p * r + 0.5f;
	p = p * r + 1.0f;
	p = p * r + 1.0f;
	union fbits sc;
	sc.i = (int32_t)((uint32_t)((int32_t)k + 126) << 23); /* 2^(k-1), k in [-125, 128] */
	float y = p * sc.f * 2.0f;
	y = x > 88.72283f ? INFINITY : y;
	y = x < -86.5f ? 0.0f : y;
	return x == x ? y : x; /* NaN in, NaN out */
}

/* sqrt(x) for x >= 0 without libm (whose errno path blocks vectorizing):
 * the bit-trick reciprocal square root (relative error up to ~3.4e-2)
 * refined by three Newton steps, then x * rsqrt(x): within 2e-7 relative
 * (tested against sqrt over [0.05, 4]).
 * Within a few ulp for normal x; 0 gives 0. */
static inline float fast_sqrt(float x)
{
	union fbits u;
	u.f = x;
	u.i = 0x5f3759df - (u.i >> 1);
	float y = u.f, hx = 0.5f * x;
	y = y * (1.5f - hx * y * y);
	y = y * (1.5f - hx * y * y);
	y = y * (1.5f - hx * y * y);
	return x * y;
}

void sv_loss_exp(float *x, size_t cnt)
{
	for (size_t i = 0; i < cnt; i++)
		x[i] = fast_exp(x[i]);
}

/* ---- labels ------------------------------------------------------------ */

static int32_t uf_find(int32_t *uf, int32_t x)
{
	while (uf[x] != x) {
		uf[x] = uf[uf[x]];
		x = uf[x];
	}
	return x;
}

static void uf_union(int32_t *uf, int32_t a, int32_t b)
{
	a = uf_find(uf, a);
	b = uf_find(uf, b);
	if (a == b)
		return;
	if (a < b)
		uf[b] = a;
	else
		uf[a] = b;
}

static int cmp_keyrow(const void *pa, const void *pb)
{
	const struct keyrow *a = pa, *b = pb;
	if (a->key != b->key)
		return a->key < b->key ? -1 : 1;
	return a->row < b->row ? -1 : (a->row > b->row);
}

/* Fill ws->lab, ws->excl and ws->gsz for BATCH or GRAPH mode; counts the
 * ordered positive and negative entries and the contradictions. */
static void build_labels(sv_loss_ws *ws, const struct sv_pair_labels *lab, int graph, size_t *n_pos,
                         size_t *n_neg, size_t *contra)
{
	size_t n = lab->n, m = 2 * n;
	int32_t *c = ws->lab, *ex = ws->excl, *gs = ws->gsz;
	*contra = 0;
	for (size_t r = 0; r < m; r++)
		ex[r] = -1;
	if (!graph) {
		for (size_t r = 0; r < m; r++)
			c[r] = (int32_t)r;
		for (size_t i = 0; i < n; i++)
			if (lab->y[i])
				c[n + i] = (int32_t)i;
	} else {
		int32_t *uf = ws->uf;
		struct keyrow *kr = ws->kr;
		for (size_t r = 0; r < m; r++) {
			uf[r] = (int32_t)r;
			kr[r].key = lab->keys[r];
			kr[r].row = (int32_t)r;
		}
		qsort(kr, m, sizeof(*kr), cmp_keyrow);
		for (size_t k = 1; k < m; k++)
			if (kr[k].key == kr[k - 1].key)
				uf_union(uf, kr[k].row, kr[k - 1].row);
		for (size_t i = 0; i < n; i++)
			if (lab->y[i])
				uf_union(uf, (int32_t)i, (int32_t)(n + i));
		for (size_t r = 0; r < m; r++)
			c[r] = uf_find(uf, (int32_t)r);
		for (size_t i = 0; i < n; i++)
			if (!lab->y[i] && c[i] == c[n + i]) {
				ex[i] = (int32_t)(n + i);
				ex[n + i] = (int32_t)i;
				(*contra)++;
			}
	}
	memset(gs, 0, m * sizeof(*gs));
	for (size_t r = 0; r < m; r++)
		gs[c[r]]++;
	size_t same = 0;
	for (size_t r = 0; r < m; r++)
		same += (size_t)(gs[c[r]] - 1);
	*n_pos = same - 2 * *contra;
	*n_neg = m * (m - 1) - same;
	/* rows grouped by label: members of label l are mem[gst[l] .. gst[l+1]) */
	int32_t *gst = ws->gst, *mem = ws->uf;
	gst[0] = 0;
	for (size_t l = 0; l < m; l++)
		gst[l + 1] = gst[l] + gs[l];
	for (size_t l = 0; l < m; l++)
		gs[l] = gst[l]; /* fill cursor; restored below */
	for (size_t r = 0; r < m; r++)
		mem[gs[c[r]]++] = (int32_t)r;
	for (size_t l = 0; l < m; l++)
		gs[l] = gst[l + 1] - gst[l];
}

#define TILE 16

/* Over the m x m matrix A: add = 0 copies the upper triangle onto the lower
 * one (A = triu(A) mirrored); add = 1 makes A + A^T in place.  Works on
 * 16 x 16 tile pairs through local buffers, so every memory access runs
 * along rows (column walks with a power-of-two stride thrash the cache). */
static void tile_sym(float *A, size_t m, int add)
{
	float q[TILE][TILE], t[TILE][TILE];
	for (size_t i0 = 0; i0 < m; i0 += TILE) {
		size_t ni = m - i0 < TILE ? m - i0 : TILE;
		/* diagonal tile */
		for (size_t i = 0; i < ni; i++)
			for (size_t j = i; j < ni; j++) {
				float *u = &A[(i0 + i) * m + i0 + j],
				      *l = &A[(i0 + j) * m + i0 + i];
				float v = add ? *u + *l : *u;
				*u = v;
				*l = v;
			}
		for (size_t j0 = i0 + TILE; j0 < m; j0 += TILE) {
			size_t nj = m - j0 < TILE ? m - j0 : TILE;
			/* P = A[i0.., j0..] (upper), Q = A[j0.., i0..] (lower) */
			if (add)
				for (size_t j = 0; j < nj; j++)
					for (size_t i = 0; i < ni; i++)
						q[j][i] = A[(j0 + j) * m + i0 + i];
			for (size_t i = 0; i < ni; i++) {
				float *prow = &A[(i0 + i) * m + j0];
				for (size_t j = 0; j < nj; j++) {
					float v = add ? prow[j] + q[j][i] : prow[j];
					prow[j] = v;
					t[j][i] = v;
				}
			}
			for (size_t j = 0; j < nj; j++) {
				float *qrow = &A[(j0 + j) * m + i0];
				for (size_t i = 0; i < ni; i++)
					qrow[i] = t[j][i];
			}
		}
	}
}

static double direct_dist(const float *a, const float *b, uint32_t d)
{
	double ss = 0.0;
	for (uint32_t j = 0; j < d; j++) {
		double t = (double)a[j] - (double)b[j];
		ss += t * t;
	}
	return sqrt(ss);
}

/* g_r += w (e_r - e_s) / d and g_s -= the same, for one near pair. */
static void add_direct(float *G, const float *E, size_t r, size_t s, double wd, uint32_t d)
{
	const float *er = E + r * d, *es = E + s * d;
	float *gr = G + r * d, *gs = G + s * d;
	for (uint32_t j = 0; j < d; j++) {
		double u = wd * ((double)er[j] - (double)es[j]);
		gr[j] = (float)(gr[j] + u);
		gs[j] = (float)(gs[j] - u);
	}
}

static void row_sqnorms(double *out, const float *E, size_t m, uint32_t d)
{
	for (size_t r = 0; r < m; r++) {
		double ss = 0.0;
		for (uint32_t j = 0; j < d; j++)
			ss += (double)E[r * d + j] * E[r * d + j];
		out[r] = ss;
	}
}

/* ---- ContrastiveLoss ---------------------------------------------------- */

static void contrastive_pairs(const struct sv_loss_params *p, const struct sv_pair_labels *lab,
                              const float *E, uint32_t d, float *G, struct sv_loss_stats *st)
{
	size_t n = lab->n;
	double sp = 0.0, sn = 0.0;
	size_t ap = 0, an = 0;
	for (size_t i = 0; i < n; i++) {
		double dist = direct_dist(E + i * d, E + (n + i) * d, d);
		if (lab->y[i]) {
			if (dist > p->pos_margin) {
				sp += dist - p->pos_margin;
				ap++;
			}
		} else if (dist < p->neg_margin) {
			sn += p->neg_margin - dist;
			an++;
		}
	}
	st->pos_loss = ap ? sp / (double)ap : 0.0;
	st->neg_loss = an ? sn / (double)an : 0.0;
	st->loss = st->pos_loss + st->neg_loss;
	st->n_pos_active = ap;
	st->n_neg_active = an;
	if (!G)
		return;
	for (size_t i = 0; i < n; i++) {
		double dist = direct_dist(E + i * d, E + (n + i) * d, d);
		double w = 0.0;
		if (lab->y[i] && dist > p->pos_margin)
			w = 1.0 / (double)ap;
		else if (!lab->y[i] && dist < p->neg_margin)
			w = -1.0 / (double)an;
		if (w != 0.0 && dist > 0.0)
			add_direct(G, E, i, n + i, w / dist, d);
	}
}

/* Pass 2 of one row over columns s0..m-1 (the upper triangle): the
 * coefficient w / d of every far active entry into crow (0 elsewhere), its
 * column into colsum; returns the row's sum. */
HOT_CLONES static float contrastive_row2(float *restrict crow, const float *restrict row,
                                         const int32_t *restrict c, int32_t cr, int32_t xr,
                                         size_t s0, size_t m, float pm, float nm, float wp,
                                         float wn, float dnear, float *restrict colsum)
{
	float lane[8] = {0};
	size_t s = s0;
	for (; s + 8 <= m; s += 8)
		for (int l = 0; l < 8; l++) {
			float dist = row[s + l];
			int neg = c[s + l] != cr;
			float w = neg ? (dist < nm ? wn : 0.0f)
			              : ((int32_t)(s + l) != xr && dist > pm ? wp : 0.0f);
			float v = dist >= dnear ? w / dist : 0.0f;
			crow[s + l] = v;
			colsum[s + l] += v;
			lane[l] += v;
		}
	for (; s < m; s++) {
		float dist = row[s];
		int neg = c[s] != cr;
		float w =
		    neg ? (dist < nm ? wn : 0.0f) : ((int32_t)s != xr && dist > pm ? wp : 0.0f);
		float v = dist >= dnear ? w / dist : 0.0f;
		crow[s] = v;
		colsum[s] += v;
		lane[0] += v;
	}
	float sum = 0.0f;
	for (int l = 0; l < 8; l++)
		sum += lane[l];
	return sum;
}

/* Pass 1 of one row over columns s0..m-1 (the upper triangle): the
 * expanded-form distance sqrt(|e_r|^2 + |e_s|^2 - 2 S_rs) in place of S_rs.
 * Returns how many negatives came out near (d^2 < NEAR_D2). */
HOT_CLONES static int32_t contrastive_row1(float *restrict row, const float *restrict nf, float nr,
                                           const int32_t *restrict c, int32_t cr, size_t s0,
                                           size_t m)
{
	int32_t near = 0;
	for (size_t s = s0; s < m; s++) {
		float d2 = nr + nf[s] - 2.0f * row[s];
		near += d2 < NEAR_D2 && c[s] != cr;
		row[s] = fast_sqrt(d2 > 0.0f ? d2 : 0.0f);
	}
	return near;
}

/* The active entries of one row (columns s0..m-1): sums of d - pm over
 * active positives and nm - d over active negatives, and their counts,
 * added to the totals.  8 lanes so the loop vectorizes. */
HOT_CLONES static void contrastive_row_sums(const float *restrict row, const int32_t *restrict c,
                                            int32_t cr, int32_t xr, size_t s0, size_t m, float pm,
                                            float nm, double *sp, double *sn, size_t *ap,
                                            size_t *an)
{
	float lsp[8] = {0}, lsn[8] = {0};
	int32_t lap[8] = {0}, lan[8] = {0};
	size_t s = s0;
	for (; s + 8 <= m; s += 8)
		for (int l = 0; l < 8; l++) {
			float dist = row[s + l];
			int neg = c[s + l] != cr;
			int pos = (!neg) & ((int32_t)(s + l) != xr) & (dist > pm);
			neg = neg & (dist < nm);
			lsp[l] += pos ? dist - pm : 0.0f;
			lsn[l] += neg ? nm - dist : 0.0f;
			lap[l] += pos;
			lan[l] += neg;
		}
	for (; s < m; s++) {
		float dist = row[s];
		int neg = c[s] != cr;
		int pos = (!neg) & ((int32_t)s != xr) & (dist > pm);
		neg = neg & (dist < nm);
		lsp[0] += pos ? dist - pm : 0.0f;
		lsn[0] += neg ? nm - dist : 0.0f;
		lap[0] += pos;
		lan[0] += neg;
	}
	for (int l = 0; l < 8; l++) {
		*sp += lsp[l];
		*sn += lsn[l];
		*ap += (size_t)lap[l];
		*an += (size_t)lan[l];
	}
}

/* First row of part k when rows 0..m-1 are cut into P slices of about
 * equal upper-triangle area: (m - r_k)^2 = m^2 (1 - k / P). */
static size_t tri_row(size_t m, int k, int P)
{
	if (k >= P)
		return m;
	return (size_t)((double)m * (1.0 - sqrt(1.0 - (double)k / (double)P)));
}

/* How many parts the m x m passes get: fixed by m and the thread count. */
static int pass_parts(size_t m)
{
	int P = sv_blas_threads();

	if (m < PARTS_MIN_ROWS)
		return 1;
	return P < 1 ? 1 : P > PARTS_MAX ? PARTS_MAX : P;
}

/* One m x m pass in row parts (sv_blas_run_parts). */
struct pass_job {
	sv_loss_ws *ws;
	const struct sv_loss_params *p;
	const float *E;
	size_t m;
	uint32_t d;
	int P;
	float R, inv_tau;  /* NT-Xent */
	float wp, wn;      /* contrastive pass 2 */
	struct part_sums {
		double sp, sn;
		size_t ap, an;
	} sums[PARTS_MAX]; /* contrastive pass 1 */
};

/* Column entries from the rows of parts before row a's own: sum (first m
 * floats of each part's zcp slice) and, with mx, maximum (the next m). */
static double parts_col(const struct pass_job *j, size_t a, double z, float *mx)
{
	for (int k = 0; k < j->P && tri_row(j->m, k, j->P) < a; k++) {
		const float *zc = j->ws->zcp + (size_t)k * 2 * j->m;
		z += zc[a];
		if (mx)
			*mx = zc[j->m + a] > *mx ? zc[j->m + a] : *mx;
	}
	return z;
}

/* Pass 1, part k: distances into the upper triangle of its rows of S,
 * sums over active unordered entries (each stands for two ordered ones)
 * into j->sums[k]. */
static void contrastive_pass1(void *arg, int k)
{
	struct pass_job *j = arg;
	sv_loss_ws *ws = j->ws;
	const size_t m = j->m, r0 = tri_row(m, k, j->P), r1 = tri_row(m, k + 1, j->P);
	const uint32_t d = j->d;
	const float *E = j->E, *nf = ws->nf;
	const int32_t *c = ws->lab, *ex = ws->excl, *gst = ws->gst, *mem = ws->uf;
	struct part_sums *ps = &j->sums[k];

	memset(ps, 0, sizeof(*ps));
	for (size_t r = r0; r < r1; r++) {
		float *row = ws->S + r * m;
		const int32_t cr = c[r], xr = ex[r];
		int32_t near = contrastive_row1(row, nf, nf[r], c, cr, r + 1, m);
		ws->nearc[r] = near;
		/* near negatives (rare: duplicates) and every positive (few, and
		 * near once trained) get the direct distance */
		if (near)
			for (size_t s = r + 1; s < m; s++)
				if (c[s] != cr && row[s] * row[s] < NEAR_D2)
					row[s] = (float)direct_dist(E + r * d, E + s * d, d);
		for (int32_t q = gst[cr]; q < gst[cr + 1]; q++) {
			size_t s = (size_t)mem[q];
			if (s > r && (int32_t)s != xr)
				row[s] = (float)direct_dist(E + r * d, E + s * d, d);
		}
		contrastive_row_sums(row, c, cr, xr, r + 1, m, j->p->pos_margin, j->p->neg_margin,
		                     &ps->sp, &ps->sn, &ps->ap, &ps->an);
	}
}

/* Pass 2, part k: C_rs = w / d for far active entries of its rows (upper
 * triangle), the row sums into rz and the column sums into its zcp slice. */
static void contrastive_pass2(void *arg, int k)
{
	struct pass_job *j = arg;
	sv_loss_ws *ws = j->ws;
	const size_t m = j->m, r0 = tri_row(m, k, j->P), r1 = tri_row(m, k + 1, j->P);
	float *colsum = ws->zcp + (size_t)k * 2 * m;
	const float dnear = sqrtf(NEAR_D2);

	for (size_t s = r0; s < m; s++)
		colsum[s] = 0.0f;
	for (size_t r = r0; r < r1; r++) {
		ws->C[r * m + r] = 0.0f;
		ws->rz[r] = contrastive_row2(ws->C + r * m, ws->S + r * m, ws->lab, ws->lab[r],
		                             ws->excl[r], r + 1, m, j->p->pos_margin,
		                             j->p->neg_margin, j->wp, j->wn, dnear, colsum);
	}
}

/* ContrastiveLoss in BATCH/GRAPH mode on the upper triangle of S, both
 * m x m passes in row parts on sv_blas's threads. */
static void contrastive_labels(sv_loss_ws *ws, const struct sv_loss_params *p, size_t m,
                               const float *E, uint32_t d, float *G, struct sv_loss_stats *st)
{
	float *nf = ws->nf;
	const int32_t *c = ws->lab, *ex = ws->excl, *gst = ws->gst, *mem = ws->uf;
	const float pm = p->pos_margin, nm = p->neg_margin;
	struct pass_job job = {.ws = ws, .p = p, .E = E, .m = m, .d = d, .P = pass_parts(m)};

	sv_blas_syrk_upper(m, d, 1.0f, E, d, 0.0f, ws->S, m);
	row_sqnorms(ws->rsum, E, m, d);
	for (size_t r = 0; r < m; r++)
		nf[r] = (float)ws->rsum[r];
	sv_blas_run_parts(job.P, contrastive_pass1, &job);
	double sp = 0.0, sn = 0.0;
	size_t ap = 0, an = 0;
	for (int k = 0; k < job.P; k++) {
		sp += job.sums[k].sp;
		sn += job.sums[k].sn;
		ap += job.sums[k].ap;
		an += job.sums[k].an;
	}
	st->pos_loss = ap ? sp / (double)ap : 0.0;
	st->neg_loss = an ? sn / (double)an : 0.0;
	st->loss = st->pos_loss + st->neg_loss;
	st->n_pos_active = 2 * ap;
	st->n_neg_active = 2 * an;
	if (!G)
		return;
	/* near active entries go straight into G after the SYMM */
	job.wp = ap ? (float)(1.0 / (double)ap) : 0.0f;
	job.wn = an ? (float)(-1.0 / (double)an) : 0.0f;
	const float dnear = sqrtf(NEAR_D2);
	float *S = ws->S, *C = ws->C;
	sv_blas_run_parts(job.P, contrastive_pass2, &job);
	for (size_t r = 0; r < m; r++)
		ws->rsum[r] = parts_col(&job, r, ws->rz[r], NULL);
	/* G = diag(C 1) E - C E, C symmetric from its upper triangle */
	sv_blas_symm_upper(m, d, -1.0f, C, m, E, d, 0.0f, G, d);
	for (size_t r = 0; r < m; r++) {
		float rs = (float)ws->rsum[r];
		for (uint32_t j = 0; j < d; j++)
			G[r * d + j] += rs * E[r * d + j];
	}
	/* Near pairs, directly (d = 0 gives the zero subgradient): positives
	 * from the group lists, negatives from the rows that have any. */
	const double dwp = ap ? 1.0 / (double)ap : 0.0, dwn = an ? -1.0 / (double)an : 0.0;
	for (size_t r = 0; r < m; r++) {
		const float *row = S + r * m;
		const int32_t cr = c[r], xr = ex[r];
		for (int32_t k = gst[cr]; k < gst[cr + 1]; k++) {
			size_t q = (size_t)mem[k];
			if (q <= r || (int32_t)q == xr)
				continue;
			float dist = row[q];
			if (dist < dnear && dist > 0.0f && dist > pm)
				add_direct(G, E, r, q, dwp / dist, d);
		}
		if (!ws->nearc[r])
			continue;
		for (size_t s = r + 1; s < m; s++) {
			float dist = row[s];
			if (c[s] != cr && dist < dnear && dist > 0.0f && dist < nm)
				add_direct(G, E, r, s, dwn / dist, d);
		}
	}
}

/* ---- NTXentLoss ---------------------------------------------------------- */

/* Row maximum of S over the negatives of row a (label != ca). */
HOT_CLONES static float neg_row_max(const float *row, const int32_t *c, int32_t ca, size_t m)
{
	float lmax[8] = {-FLT_MAX, -FLT_MAX, -FLT_MAX, -FLT_MAX,
	                 -FLT_MAX, -FLT_MAX, -FLT_MAX, -FLT_MAX};
	size_t s = 0;
	for (; s + 8 <= m; s += 8)
		for (int l = 0; l < 8; l++) {
			float v = c[s + l] != ca ? row[s + l] : -FLT_MAX;
			lmax[l] = v > lmax[l] ? v : lmax[l];
		}
	for (; s < m; s++) {
		float v = c[s] != ca ? row[s] : -FLT_MAX;
		lmax[0] = v > lmax[0] ? v : lmax[0];
	}
	float smax = lmax[0];
	for (int l = 1; l < 8; l++)
		smax = lmax[l] > smax ? lmax[l] : smax;
	return smax;
}

/* crow[s] = exp((row[s] - ref) / tau) on negatives, 0 elsewhere; returns
 * the sum (8 float lanes, added in double). */
HOT_CLONES static double neg_row_exp(float *crow, const float *row, const int32_t *c, int32_t ca,
                                     size_t m, float ref, float inv_tau)
{
	float part[8] = {0};
	size_t s = 0;
	for (; s + 8 <= m; s += 8)
		for (int l = 0; l < 8; l++) {
			float ev = fast_exp((row[s + l] - ref) * inv_tau);
			ev = c[s + l] != ca ? ev : 0.0f;
			crow[s + l] = ev;
			part[l] += ev;
		}
	double z = 0.0;
	for (; s < m; s++) {
		float ev = fast_exp((row[s] - ref) * inv_tau);
		ev = c[s] != ca ? ev : 0.0f;
		crow[s] = ev;
		z += ev;
	}
	for (int l = 0; l < 8; l++)
		z += part[l];
	return z;
}

/* crow[s] *= wa + w[s] (w NULL: wa); entries that are not negatives hold 0
 * and stay 0. */
HOT_CLONES static void scale_row(float *restrict crow, const float *restrict w, float wa, size_t m)
{
	if (w) {
		for (size_t s = 0; s < m; s++)
			crow[s] *= wa + w[s];
	} else {
		for (size_t s = 0; s < m; s++)
			crow[s] *= wa;
	}
}

/* One positive entry (anchor logit t0, max negative logit tn, negatives'
 * sum zneg relative to tn): adds l_k to *loss, returns rho exp(tn - M)/den
 * (its share of the negatives' coefficient) and sets *dt0 = dl/dt0. */
static double pos_entry(double t0, double tn, double zneg, double *loss, double *dt0)
{
	double M = t0 > tn ? t0 : tn;
	double num = exp(t0 - M), en = exp(tn - M), negs = zneg * en;
	double den = num + negs;
	double q0 = num / den;
	double rho = q0 / (q0 + TINY32);
	*loss += -log(q0 + TINY32);
	*dt0 = -rho * (negs / den); /* 1 - q0 = negs / den */
	return rho * en / den;
}

/* One row of the NT-Xent upper-triangle pass over columns s0..m-1:
 * crow[s] = exp((row[s] - R) / tau) on negatives (0 elsewhere), added to
 * the column sums zc, and the negatives' similarities folded into the column
 * maxima cmax.  Returns the row's sum; *rmax gets the row's maximum. */
HOT_CLONES static double upper_row_exp(float *restrict crow, const float *restrict row,
                                       const int32_t *restrict c, int32_t ca, size_t s0, size_t m,
                                       float R, float inv_tau, float *restrict zc,
                                       float *restrict cmax, float *rmax)
{
	float lsum[8] = {0};
	float lmax[8] = {-FLT_MAX, -FLT_MAX, -FLT_MAX, -FLT_MAX,
	                 -FLT_MAX, -FLT_MAX, -FLT_MAX, -FLT_MAX};
	size_t s = s0;
	for (; s + 8 <= m; s += 8)
		for (int l = 0; l < 8; l++) {
			int neg = c[s + l] != ca;
			float x = row[s + l];
			float ev = fast_exp((x - R) * inv_tau);
			ev = neg ? ev : 0.0f;
			float v = neg ? x : -FLT_MAX;
			crow[s + l] = ev;
			zc[s + l] += ev;
			cmax[s + l] = v > cmax[s + l] ? v : cmax[s + l];
			lsum[l] += ev;
			lmax[l] = v > lmax[l] ? v : lmax[l];
		}
	for (; s < m; s++) {
		int neg = c[s] != ca;
		float x = row[s];
		float ev = fast_exp((x - R) * inv_tau);
		ev = neg ? ev : 0.0f;
		float v = neg ? x : -FLT_MAX;
		crow[s] = ev;
		zc[s] += ev;
		cmax[s] = v > cmax[s] ? v : cmax[s];
		lsum[0] += ev;
		lmax[0] = v > lmax[0] ? v : lmax[0];
	}
	double z = 0.0;
	float mx = -FLT_MAX;
	for (int l = 0; l < 8; l++) {
		z += lsum[l];
		mx = lmax[l] > mx ? lmax[l] : mx;
	}
	*rmax = mx;
	return z;
}

/* Part k of the exp pass: its rows' C entries, row sums (rz) and row maxima
 * (rmx), and its own column sums and maxima (zcp slice k). */
static void upper_exp_part(void *arg, int k)
{
	const struct pass_job *j = arg;
	sv_loss_ws *ws = j->ws;
	const size_t m = j->m, a0 = tri_row(m, k, j->P), a1 = tri_row(m, k + 1, j->P);
	float *zc = ws->zcp + (size_t)k * 2 * m, *cmax = zc + m;

	for (size_t s = a0; s < m; s++) {
		zc[s] = 0.0f;
		cmax[s] = -FLT_MAX;
	}
	for (size_t a = a0; a < a1; a++) {
		ws->C[a * m + a] = 0.0f;
		ws->rz[a] = upper_row_exp(ws->C + a * m, ws->S + a * m, ws->lab, ws->lab[a], a + 1,
		                          m, j->R, j->inv_tau, zc, cmax, &ws->rmx[a]);
	}
}

/* Part k of the scaling pass: C_as *= w_a + w_s on its rows (s > a). */
static void upper_scale_part(void *arg, int k)
{
	const struct pass_job *j = arg;
	sv_loss_ws *ws = j->ws;
	const size_t m = j->m, a0 = tri_row(m, k, j->P), a1 = tri_row(m, k + 1, j->P);

	for (size_t a = a0; a < a1; a++)
		scale_row(ws->C + a * m + a + 1, ws->wv + a + 1, ws->wv[a], m - a - 1);
}

/* NT-Xent in BATCH/GRAPH mode on the upper triangle only.  With one shared
 * reference R >= every similarity, exp((S_as - R)/tau) is symmetric, so a
 * single pass over s > a gives both row a's and column s's sums and maxima,
 * and the symmetric coefficient matrix C + C^T (LOSSES.md 7.2) of a
 * negative entry is exp((S_as - R)/tau) (w_a + w_s) with
 * w_a = k_a exp((R - smax_a)/tau).  G comes from SYMM on the upper triangle.
 * The two m x m passes run in row parts on sv_blas's threads (each part
 * with its own column sums, added in part order); the per-anchor work
 * between them is O(m) plus the positives.
 * Needs 2 R / tau <= SPREAD_MAX so that nothing that matters underflows; the
 * caller falls back to ntxent_labels otherwise. */
static void ntxent_upper(sv_loss_ws *ws, const struct sv_loss_params *p, size_t m, size_t n_pos,
                         const float *E, uint32_t d, float R, float *G, struct sv_loss_stats *st)
{
	float *S = ws->S, *C = ws->C, *smax = ws->nf, *w = ws->wv;
	const int32_t *c = ws->lab, *ex = ws->excl, *gs = ws->gsz, *gst = ws->gst, *mem = ws->uf;
	const double tau = p->temperature;
	const float inv_tau = (float)(1.0 / tau);
	const double scale = 1.0 / ((double)n_pos * tau);
	struct pass_job job = {.ws = ws, .m = m, .P = pass_parts(m), .R = R, .inv_tau = inv_tau};

	sv_blas_syrk_upper(m, d, 1.0f, E, d, 0.0f, S, m);
	sv_blas_run_parts(job.P, upper_exp_part, &job);
	double loss = 0.0;
	for (size_t a = 0; a < m; a++) {
		const float *row = S + a * m;
		const int32_t ca = c[a], xa = ex[a];
		/* column a's entries come from rows < a, in parts <= a's own */
		float mx = ws->rmx[a];
		double z = parts_col(&job, a, ws->rz[a], &mx);
		smax[a] = mx;
		w[a] = 0.0f;
		const int32_t npos = gs[ca] - 1 - (xa >= 0);
		if (npos <= 0 || (size_t)gs[ca] == m)
			continue;
		const double shift = exp(((double)R - smax[a]) * inv_tau);
		const double zneg = z * shift, tn = (double)smax[a] * inv_tau;
		double coef = 0.0, dt0;
		for (int32_t k = gst[ca]; k < gst[ca + 1]; k++) {
			size_t q = (size_t)mem[k];
			if (q == a || (int32_t)q == xa)
				continue;
			float sq = q > a ? row[q] : S[q * m + a];
			coef += pos_entry((double)sq * inv_tau, tn, zneg, &loss, &dt0);
		}
		w[a] = (float)(coef * scale * shift);
		ws->rsum[a] = zneg;
	}
	st->loss = loss / (double)n_pos;
	if (!G)
		return;
	sv_blas_run_parts(job.P, upper_scale_part, &job);
	/* positive entries (same label): dl/dt0 of (a, q) plus that of (q, a) */
	for (size_t l = 0; l < m; l++)
		for (int32_t i = gst[l]; i < gst[l + 1]; i++)
			for (int32_t j = i + 1; j < gst[l + 1]; j++) {
				size_t ra = (size_t)mem[i], rb = (size_t)mem[j];
				if (ex[ra] == (int32_t)rb)
					continue;
				size_t lo = ra < rb ? ra : rb, hi = ra < rb ? rb : ra;
				double t = (double)S[lo * m + hi] * inv_tau, dummy = 0.0, d1, d2;
				pos_entry(t, (double)smax[ra] * inv_tau, ws->rsum[ra], &dummy, &d1);
				pos_entry(t, (double)smax[rb] * inv_tau, ws->rsum[rb], &dummy, &d2);
				C[lo * m + hi] = (float)((d1 + d2) * scale);
			}
	sv_blas_symm_upper(m, d, 1.0f, C, m, E, d, 0.0f, G, d);
}

/* NT-Xent in BATCH/GRAPH mode, general path.  C gets the symmetric coefficient matrix
 * C + C^T of LOSSES.md 7.2 directly: a negative entry (a, s) of row a is
 *     k_a exp((S_as - smax_a)/tau) + k_s exp((S_as - smax_s)/tau)
 *   = exp((S_as - R)/tau) (w_a + w_s),  w_a = k_a exp((R - smax_a)/tau),
 * with one shared reference R = max_a smax_a, so no transpose pass is
 * needed.  That is safe while the spread of the row maxima over tau stays
 * below SPREAD_MAX; otherwise each row uses its own smax_a and C is
 * symmetrized afterwards.  Positive entries (few) are scattered in. */
static void ntxent_labels(sv_loss_ws *ws, const struct sv_loss_params *p, size_t m, size_t n_pos,
                          const float *E, uint32_t d, float *G, struct sv_loss_stats *st)
{
	float *S = ws->S, *C = ws->C, *smax = ws->nf, *w = ws->wv;
	const int32_t *c = ws->lab, *ex = ws->excl, *gs = ws->gsz, *gst = ws->gst, *mem = ws->uf;
	const double tau = p->temperature;
	const float inv_tau = (float)(1.0 / tau);
	const double scale = 1.0 / ((double)n_pos * tau);
	sv_blas_syrk_upper(m, d, 1.0f, E, d, 0.0f, S, m);
	tile_sym(S, m, 0);
	float rmax = -FLT_MAX, rmin = FLT_MAX;
	for (size_t a = 0; a < m; a++) {
		if ((size_t)gs[c[a]] == m) {
			smax[a] = 0.0f; /* no negatives */
			continue;
		}
		smax[a] = neg_row_max(S + a * m, c, c[a], m);
		rmax = smax[a] > rmax ? smax[a] : rmax;
		rmin = smax[a] < rmin ? smax[a] : rmin;
	}
	const int shared = (rmax - rmin) * inv_tau <= SPREAD_MAX;
	double loss = 0.0;
	for (size_t a = 0; a < m; a++) {
		const float *row = S + a * m;
		float *crow = C + a * m;
		const int32_t ca = c[a], xa = ex[a];
		const int32_t npos = gs[ca] - 1 - (xa >= 0);
		w[a] = 0.0f;
		if ((size_t)gs[ca] == m) {
			if (G)
				memset(crow, 0, m * sizeof(*crow));
			continue; /* no negatives: l_k = 0, still counted in |P| */
		}
		const float ref = shared ? rmax : smax[a];
		if (!G && npos <= 0)
			continue;
		double zref = neg_row_exp(crow, row, c, ca, m, ref, inv_tau);
		if (npos <= 0)
			continue; /* not an anchor; its row still carries w_s terms */
		/* zneg relative to smax_a */
		const double shift = exp(((double)ref - smax[a]) * inv_tau);
		const double zneg = zref * shift;
		const double tn = (double)smax[a] * inv_tau;
		double coef = 0.0, dt0;
		for (int32_t k = gst[ca]; k < gst[ca + 1]; k++) {
			int32_t q = mem[k];
			if (q != (int32_t)a && q != xa)
				coef += pos_entry((double)row[q] * inv_tau, tn, zneg, &loss, &dt0);
		}
		w[a] = (float)(coef * scale * shift);
		ws->rsum[a] = zneg;
	}
	st->loss = loss / (double)n_pos;
	if (!G)
		return;
	for (size_t a = 0; a < m; a++)
		if ((size_t)gs[c[a]] != m)
			scale_row(C + a * m, shared ? w : NULL, w[a], m);
	/* positive entries: dl/dt0 / (|P| tau), recomputed per entry */
	for (size_t a = 0; a < m; a++) {
		const int32_t ca = c[a], xa = ex[a];
		if ((size_t)gs[ca] == m || gs[ca] - 1 - (xa >= 0) <= 0)
			continue;
		const float *row = S + a * m;
		const double tn = (double)smax[a] * inv_tau;
		double dummy = 0.0, dt0;
		for (int32_t k = gst[ca]; k < gst[ca + 1]; k++) {
			int32_t q = mem[k];
			if (q == (int32_t)a || q == xa)
				continue;
			pos_entry((double)row[q] * inv_tau, tn, ws->rsum[a], &dummy, &dt0);
			C[a * m + (size_t)q] = (float)(dt0 * scale);
		}
	}
	if (shared) {
		/* symmetrize the positive entries only, group by group */
		for (size_t l = 0; l < m; l++)
			for (int32_t i = gst[l]; i < gst[l + 1]; i++)
				for (int32_t j = i + 1; j < gst[l + 1]; j++) {
					size_t ra = (size_t)mem[i], rb = (size_t)mem[j];
					float v = C[ra * m + rb] + C[rb * m + ra];
					C[ra * m + rb] = v;
					C[rb * m + ra] = v;
				}
	}
	if (!shared)
		tile_sym(C, m, 1);
	sv_blas_gemm(0, 0, m, d, m, 1.0f, C, m, E, d, 0.0f, G, d);
}

/* ---- entry point --------------------------------------------------------- */

int sv_loss_eval(sv_loss_ws *ws, const struct sv_loss_params *p, const struct sv_pair_labels *lab,
                 const float *E, uint32_t d_out, float *G, struct sv_loss_stats *st)
{
	if (!ws || !p || !lab || (lab->n && (!lab->y || !E)))
		return -EINVAL;
	if (p->kind != SV_LOSS_KIND_CONTRASTIVE && p->kind != SV_LOSS_KIND_NTXENT)
		return -EINVAL;
	if (p->mode != SV_LABEL_MODE_BATCH && p->mode != SV_LABEL_MODE_PAIRS &&
	    p->mode != SV_LABEL_MODE_GRAPH)
		return -EINVAL;
	if (p->kind == SV_LOSS_KIND_NTXENT && !(p->temperature > 0.0f))
		return -EINVAL;
	if (p->kind == SV_LOSS_KIND_CONTRASTIVE &&
	    !(isfinite(p->pos_margin) && isfinite(p->neg_margin)))
		return -EINVAL;
	if (p->mode == SV_LABEL_MODE_GRAPH && lab->n && !lab->keys)
		return -EINVAL;
	if (lab->n > ws->max_pairs || d_out != ws->d_out)
		return SV_ERR_SHAPE;

	struct sv_loss_stats s;
	memset(&s, 0, sizeof(s));
	size_t n = lab->n, m = 2 * n;
	if (G)
		memset(G, 0, m * d_out * sizeof(*G));
	if (p->mode == SV_LABEL_MODE_PAIRS) {
		for (size_t i = 0; i < n; i++)
			s.n_pos_pairs += lab->y[i] != 0;
		s.n_neg_pairs = n - s.n_pos_pairs;
	} else if (n) {
		build_labels(ws, lab, p->mode == SV_LABEL_MODE_GRAPH, &s.n_pos_pairs,
		             &s.n_neg_pairs, &s.contradictions);
	}
	if (s.n_pos_pairs <= 1 && s.n_neg_pairs <= 1) {
		s.guard = 1; /* LOSSES.md 3.3: loss and gradient exactly 0 */
		goto done;
	}
	if (p->kind == SV_LOSS_KIND_CONTRASTIVE) {
		if (p->mode == SV_LABEL_MODE_PAIRS)
			contrastive_pairs(p, lab, E, d_out, G, &s);
		else
			contrastive_labels(ws, p, m, E, d_out, G, &s);
	} else {
		/* pairs mode: no anchor has both a positive and a negative, so
		 * every entry is 0 (LOSSES.md 5.3); no positives or no negatives
		 * at all: the loss is the constant 0. */
		if (p->mode != SV_LABEL_MODE_PAIRS && s.n_pos_pairs && s.n_neg_pairs) {
			/* R: a bound on every similarity, max ||e||^2 */
			float R = 0.0f;
			for (size_t i = 0; i < m * d_out; i += d_out) {
				float ss = 0.0f;
				for (uint32_t j = 0; j < d_out; j++)
					ss += E[i + j] * E[i + j];
				R = ss > R ? ss : R;
			}
			R = R * 1.0001f + 1e-6f;
			if (2.0f * R / p->temperature <= SPREAD_MAX)
				ntxent_upper(ws, p, m, s.n_pos_pairs, E, d_out, R, G, &s);
			else
				ntxent_labels(ws, p, m, s.n_pos_pairs, E, d_out, G, &s);
		}
	}
done:
	if (st)
		*st = s;
	return 0;
}
