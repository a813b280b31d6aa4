/* test_model.c - sv/model.h: orthogonal init (W^T W = I or W W^T = I to 1e-5,
 * seeded and reproducible), uniform init (torch.nn.Linear's bounds, mean and
 * variance, column norms, seeded and reproducible), forward against a naive double loop (1e-6),
 * backward against central finite differences in double (relative 1e-3 of
 * max |dW|, float32 forward noise dominates), argument errors. */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sv/model.h"

static uint64_t rng = 777;

static double drand_sym(void)
{
	rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
	return (double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

static void check_orthonormal(const float *W, uint32_t d_in, uint32_t d_out)
{
	int cols = d_out <= d_in; /* orthonormal columns, else rows */
	uint32_t k = cols ? d_out : d_in, len = cols ? d_in : d_out;
	for (uint32_t a = 0; a < k; a++)
		for (uint32_t b = 0; b < k; b++) {
			double acc = 0.0;
			for (uint32_t i = 0; i < len; i++) {
				double x = cols ? W[i * d_out + a] : W[a * d_out + i];
				double y = cols ? W[i * d_out + b] : W[b * d_out + i];
				acc += x * y;
			}
			cr_assert(fabs(acc - (a == b)) < 1e-5, "(%u,%u) %g", a, b, acc);
		}
}

Test(model, orthogonal_init_is_orthonormal)
{
	const uint32_t shapes[][2] = {{784, 64}, {32, 16}, {6, 4}, {8, 8}, {1, 1}, {4, 9}, {3, 50}};
	for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
		uint32_t di = shapes[s][0], dd = shapes[s][1];
		float *W = malloc((size_t)di * dd * sizeof(float));
		cr_assert_eq(sv_model_init_orthogonal(W, di, dd, 42 + s), 0);
		check_orthonormal(W, di, dd);
		free(W);
	}
}

Test(model, orthogonal_init_same_seed_same_bits)
{
	float A[50 * 10], B[50 * 10], C[50 * 10];
	cr_assert_eq(sv_model_init_orthogonal(A, 50, 10, 7), 0);
	cr_assert_eq(sv_model_init_orthogonal(B, 50, 10, 7), 0);
	cr_assert_eq(sv_model_init_orthogonal(C, 50, 10, 8), 0);
	cr_assert_eq(memcmp(A, B, sizeof(A)), 0);
	cr_assert_neq(memcmp(A, C, sizeof(A)), 0);
	/* sign fix: each column's first Householder step gives R_jj > 0, so
	 * the matrix is not just a sign flip of another seed's */
	size_t same = 0;
	for (size_t i = 0; i < 500; i++)
		same += fabsf(A[i]) == fabsf(C[i]);
	cr_assert_lt(same, 10);
}

Test(model, orthogonal_init_rejects_zero_dims)
{
	float W[4];
	cr_assert_eq(sv_model_init_orthogonal(W, 0, 4, 1), -EINVAL);
	cr_assert_eq(sv_model_init_orthogonal(W, 4, 0, 1), -EINVAL);
	cr_assert_eq(sv_model_init_orthogonal(NULL, 2, 2, 1), -EINVAL);
}

Test(model, uniform_init_within_linear_bounds_and_spread)
{
	/* torch.nn.Linear's default: U(-1/sqrt(d_in), 1/sqrt(d_in)).  Each
	 * entry within the bound; with 1,000 entries or more, the mean is 0
	 * and the variance b^2/3 within 4 standard errors (b/sqrt(3n) and, for
	 * the variance, relative sqrt(0.8/n)), and both ends of the range are
	 * reached. */
	const uint32_t shapes[][2] = {{784, 64}, {64, 16}, {3, 50}, {1, 1}};
	for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
		uint32_t di = shapes[s][0], dd = shapes[s][1];
		size_t n = (size_t)di * dd;
		float *W = malloc(n * sizeof(float));
		cr_assert_eq(sv_model_init_uniform(W, di, dd, 11 + s), 0);
		float b = (float)(1.0 / sqrt((double)di));
		double sum = 0.0, sq = 0.0, lo = 0.0, hi = 0.0;
		for (size_t i = 0; i < n; i++) {
			cr_assert(isfinite(W[i]) && fabsf(W[i]) <= b, "W[%zu] = %g, b %g", i, W[i],
			          b);
			sum += W[i];
			sq += (double)W[i] * W[i];
			lo = W[i] < lo ? W[i] : lo;
			hi = W[i] > hi ? W[i] : hi;
		}
		if (n >= 1000) {
			double mean = sum / (double)n, var = sq / (double)n - mean * mean;
			cr_assert_lt(fabs(mean), 4.0 * b / sqrt(3.0 * (double)n), "mean %g", mean);
			cr_assert_lt(fabs(var / ((double)b * b / 3.0) - 1.0),
			             4.0 * sqrt(0.8 / (double)n), "var %g", var);
			cr_assert_gt(hi, 0.99 * b);
			cr_assert_lt(lo, -0.99 * b);
		}
		free(W);
	}
}

Test(model, uniform_init_column_norms_near_sqrt_third)
{
	/* what makes it train faster than the orthogonal init under Adam: its
	 * columns have squared norm 1/3 on average (d_in * b^2 / 3), not 1 */
	enum { DI = 784, DO = 64 };
	float *W = malloc((size_t)DI * DO * sizeof(float));
	cr_assert_eq(sv_model_init_uniform(W, DI, DO, 3), 0);
	for (uint32_t j = 0; j < DO; j++) {
		double c = 0.0;
		for (uint32_t i = 0; i < DI; i++)
			c += (double)W[i * DO + j] * W[i * DO + j];
		cr_assert(fabs(c - 1.0 / 3.0) < 0.05, "column %u: %g", j, c);
	}
	free(W);
}

Test(model, uniform_init_same_seed_same_bits)
{
	float A[50 * 10], B[50 * 10], C[50 * 10], O[50 * 10];
	cr_assert_eq(sv_model_init_uniform(A, 50, 10, 7), 0);
	cr_assert_eq(sv_model_init_uniform(B, 50, 10, 7), 0);
	cr_assert_eq(sv_model_init_uniform(C, 50, 10, 8), 0);
	cr_assert_eq(memcmp(A, B, sizeof(A)), 0);
	size_t same = 0;
	for (size_t i = 0; i < 500; i++)
		same += A[i] == C[i];
	cr_assert_lt(same, 5, "seeds 7 and 8 share %zu entries", same);
	/* the seed's first draws are the same stream as the Gaussian's, but
	 * mapped otherwise: not a scaled orthogonal W */
	cr_assert_eq(sv_model_init_orthogonal(O, 50, 10, 7), 0);
	same = 0;
	for (size_t i = 0; i < 500; i++)
		same += A[i] == O[i];
	cr_assert_lt(same, 5);
}

Test(model, init_dispatches_by_kind)
{
	float A[6 * 4], B[6 * 4];
	cr_assert_eq(sv_model_init(A, 6, 4, SV_MODEL_INIT_ORTHOGONAL, 5), 0);
	cr_assert_eq(sv_model_init_orthogonal(B, 6, 4, 5), 0);
	cr_assert_eq(memcmp(A, B, sizeof(A)), 0);
	cr_assert_eq(sv_model_init(A, 6, 4, SV_MODEL_INIT_UNIFORM, 5), 0);
	cr_assert_eq(sv_model_init_uniform(B, 6, 4, 5), 0);
	cr_assert_eq(memcmp(A, B, sizeof(A)), 0);
	cr_assert_eq(sv_model_init(A, 6, 4, (enum sv_model_init)7, 5), -EINVAL);
	cr_assert_eq(sv_model_init_uniform(NULL, 6, 4, 5), -EINVAL);
	cr_assert_eq(sv_model_init_uniform(A, 0, 4, 5), -EINVAL);
	cr_assert_eq(sv_model_init_uniform(A, 6, 0, 5), -EINVAL);
}

Test(model, forward_matches_naive_double_loop)
{
	const size_t m = 19;
	const uint32_t di = 13, dd = 7;
	float X[19 * 13], W[13 * 7], E[19 * 7], nr[19];
	for (size_t i = 0; i < m * di; i++)
		X[i] = (float)drand_sym();
	for (size_t i = 0; i < di * dd; i++)
		W[i] = (float)drand_sym();
	memset(X + 5 * di, 0, di * sizeof(float)); /* a zero row stays zero */
	cr_assert_eq(sv_model_forward(X, m, W, di, dd, E, nr), 0);
	for (size_t r = 0; r < m; r++) {
		double z[7], ss = 0.0;
		for (uint32_t j = 0; j < dd; j++) {
			z[j] = 0.0;
			for (uint32_t k = 0; k < di; k++)
				z[j] += (double)X[r * di + k] * W[k * dd + j];
			ss += z[j] * z[j];
		}
		double n = sqrt(ss);
		cr_assert(fabs(nr[r] - n) <= 1e-6 * (n + 1e-30));
		for (uint32_t j = 0; j < dd; j++) {
			double want = z[j] / (n > 1e-12 ? n : 1e-12);
			cr_assert(fabs(E[r * dd + j] - want) < 1e-6, "E[%zu,%u]", r, j);
		}
	}
	for (uint32_t j = 0; j < dd; j++)
		cr_assert_eq(E[5 * dd + j], 0.0f);
	cr_assert_eq(sv_model_forward(X, m, W, di, dd, E, NULL), 0);
	cr_assert_eq(sv_model_forward(X, m, NULL, di, dd, E, NULL), -EINVAL);
	cr_assert_eq(sv_model_forward(X, m, W, 0, dd, E, NULL), -EINVAL);
}

/* L(W) = sum_r c_r . e_r(W) for a fixed random C, so dL/dE = C. */
static double objective(const double *X, size_t m, const double *W, uint32_t di, uint32_t dd,
                        const double *Cm)
{
	double L = 0.0;
	for (size_t r = 0; r < m; r++) {
		double z[8], ss = 0.0;
		for (uint32_t j = 0; j < dd; j++) {
			z[j] = 0.0;
			for (uint32_t k = 0; k < di; k++)
				z[j] += X[r * di + k] * W[k * dd + j];
			ss += z[j] * z[j];
		}
		double n = sqrt(ss);
		for (uint32_t j = 0; j < dd; j++)
			L += Cm[r * dd + j] * z[j] / n;
	}
	return L;
}

Test(model, backward_matches_finite_differences)
{
	const size_t m = 11;
	const uint32_t di = 9, dd = 5;
	float X[11 * 9], W[9 * 5], E[11 * 5], nr[11], G[11 * 5], dW[9 * 5];
	double Xd[11 * 9], Wd[9 * 5], Cd[11 * 5];
	for (size_t i = 0; i < m * di; i++)
		Xd[i] = X[i] = (float)drand_sym();
	for (size_t i = 0; i < di * dd; i++)
		Wd[i] = W[i] = (float)drand_sym();
	for (size_t i = 0; i < m * dd; i++)
		Cd[i] = G[i] = (float)drand_sym();
	cr_assert_eq(sv_model_forward(X, m, W, di, dd, E, nr), 0);
	cr_assert_eq(sv_model_backward(X, m, E, nr, G, di, dd, dW), 0);
	double maxg = 0.0;
	for (size_t i = 0; i < di * dd; i++)
		maxg = fmax(maxg, fabs(dW[i]));
	const double h = 1e-6;
	for (size_t i = 0; i < di * dd; i++) {
		double keep = Wd[i];
		Wd[i] = keep + h;
		double lp = objective(Xd, m, Wd, di, dd, Cd);
		Wd[i] = keep - h;
		double lm = objective(Xd, m, Wd, di, dd, Cd);
		Wd[i] = keep;
		double fd = (lp - lm) / (2 * h);
		cr_assert(fabs(fd - dW[i]) < 1e-4 * maxg + 1e-6, "dW[%zu] %g vs fd %g", i, dW[i],
		          fd);
	}
	/* scale invariance: <W, dW> = 0 */
	double dot = 0.0;
	for (size_t i = 0; i < di * dd; i++)
		dot += (double)W[i] * dW[i];
	cr_assert(fabs(dot) < 1e-5 * maxg);
	cr_assert_eq(sv_model_backward(X, m, E, NULL, G, di, dd, dW), -EINVAL);
}
