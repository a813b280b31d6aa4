/* model.c - the projection W (sv/model.h): seeded initial W, orthogonal
 * (splitmix64 + Box-Muller, Householder QR in double, sign-fixed) or uniform
 * (splitmix64, torch.nn.Linear's bounds), the forward
 * pass E = rownorm(X W) and its backward pass.  Matrix products go through
 * sv/blas.h.  Leaves out: the loss (loss.c) and the optimizer (optim.c). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3", "-fno-trapping-math")
#endif
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sv/blas.h"
#include "sv/model.h"

/* Row loops are also built for AVX2 where GCC can dispatch at load time
 * (fp contraction stays off in ISO C mode, so clones round alike). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define HOT_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define HOT_CLONES
#endif

/* sum of a[j] * b[j] in double, 4 lanes so the loop vectorizes */
static inline double dot_d(const float *restrict a, const float *restrict b, uint32_t n)
{
	double l[4] = {0.0, 0.0, 0.0, 0.0};
	uint32_t j = 0;
	for (; j + 4 <= n; j += 4)
		for (int k = 0; k < 4; k++)
			l[k] += (double)a[j + k] * (double)b[j + k];
	for (; j < n; j++)
		l[0] += (double)a[j] * (double)b[j];
	return (l[0] + l[1]) + (l[2] + l[3]);
}

HOT_CLONES static void normalize_rows(float *restrict E, size_t m, uint32_t d,
                                      float *restrict norms)
{
	for (size_t r = 0; r < m; r++) {
		float *z = E + r * d;
		double nrm = sqrt(dot_d(z, z, d));
		if (norms)
			norms[r] = (float)nrm;
		double den = nrm > (double)SV_NORM_EPS ? nrm : (double)SV_NORM_EPS;
		for (uint32_t j = 0; j < d; j++)
			z[j] = (float)(z[j] / den);
	}
}

HOT_CLONES static void project_rows(const float *restrict E, const float *restrict norms,
                                    float *restrict G, size_t m, uint32_t d)
{
	for (size_t r = 0; r < m; r++) {
		const float *e = E + r * d;
		float *g = G + r * d;
		double nrm = norms[r];
		if (!(nrm > (double)SV_NORM_EPS)) {
			for (uint32_t j = 0; j < d; j++)
				g[j] = (float)(g[j] / (double)SV_NORM_EPS);
			continue;
		}
		double dot = dot_d(e, g, d);
		for (uint32_t j = 0; j < d; j++)
			g[j] = (float)((g[j] - dot * e[j]) / nrm);
	}
}

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Uniform in (0, 1), 53 bits. */
static double uniform01(uint64_t *s)
{
	return ((double)(splitmix64(s) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

/* Fill a with cnt standard normal draws (Box-Muller, both outputs used). */
static void gaussian_fill(double *a, size_t cnt, uint64_t seed)
{
	uint64_t s = seed;
	const double two_pi = 6.283185307179586476925286766559;
	for (size_t i = 0; i < cnt; i += 2) {
		double u1 = uniform01(&s), u2 = uniform01(&s);
		double r = sqrt(-2.0 * log(u1));
		a[i] = r * cos(two_pi * u2);
		if (i + 1 < cnt)
			a[i + 1] = r * sin(two_pi * u2);
	}
}

/* A (p x q, row-major, p >= q) -> Q (p x q) with orthonormal columns and
 * A = Q R, sign-fixed so diag(R) >= 0.  A is destroyed; v is p scratch
 * doubles per column (p*q), rdiag q doubles. */
static void householder_q(double *A, size_t p, size_t q, double *V, double *rdiag, double *Q)
{
	for (size_t k = 0; k < q; k++) {
		double *v = V + k * p;
		double nrm = 0.0;
		for (size_t i = k; i < p; i++)
			nrm += A[i * q + k] * A[i * q + k];
		nrm = sqrt(nrm);
		memset(v, 0, p * sizeof(*v));
		if (nrm == 0.0) {
			rdiag[k] = 0.0;
			continue; /* v = 0: the reflector is the identity */
		}
		double x0 = A[k * q + k];
		double alpha = x0 >= 0.0 ? -nrm : nrm;
		for (size_t i = k; i < p; i++)
			v[i] = A[i * q + k];
		v[k] -= alpha;
		double vn = 0.0;
		for (size_t i = k; i < p; i++)
			vn += v[i] * v[i];
		vn = sqrt(vn);
		for (size_t i = k; i < p; i++)
			v[i] /= vn;
		rdiag[k] = alpha;
		/* A[k:, k:] -= 2 v (v^T A[k:, k:]) */
		for (size_t j = k; j < q; j++) {
			double dot = 0.0;
			for (size_t i = k; i < p; i++)
				dot += v[i] * A[i * q + j];
			for (size_t i = k; i < p; i++)
				A[i * q + j] -= 2.0 * dot * v[i];
		}
	}
	/* Q = H_0 ... H_{q-1} I[:, :q], applied right to left. */
	memset(Q, 0, p * q * sizeof(*Q));
	for (size_t k = 0; k < q; k++)
		Q[k * q + k] = 1.0;
	for (size_t kk = q; kk-- > 0;) {
		const double *v = V + kk * p;
		for (size_t j = 0; j < q; j++) {
			double dot = 0.0;
			for (size_t i = kk; i < p; i++)
				dot += v[i] * Q[i * q + j];
			for (size_t i = kk; i < p; i++)
				Q[i * q + j] -= 2.0 * dot * v[i];
		}
	}
	for (size_t k = 0; k < q; k++) {
		if (rdiag[k] < 0.0)
			for (size_t i = 0; i < p; i++)
				Q[i * q + k] = -Q[i * q + k];
	}
}

int sv_model_init_orthogonal(float *W, uint32_t d_in, uint32_t d_out, uint64_t seed)
{
	if (!W || d_in == 0 || d_out == 0)
		return -EINVAL;
	int transposed = d_out > d_in;
	size_t p = transposed ? d_out : d_in, q = transposed ? d_in : d_out;
	double *buf = malloc((2 * p * q + p * q + q) * sizeof(*buf));
	if (!buf)
		return -ENOMEM;
	double *A = buf, *Q = buf + p * q, *V = buf + 2 * p * q, *rdiag = V + p * q;
	gaussian_fill(A, p * q, seed);
	householder_q(A, p, q, V, rdiag, Q);
	for (size_t i = 0; i < p; i++)
		for (size_t j = 0; j < q; j++) {
			if (transposed)
				W[j * d_out + i] = (float)Q[i * q + j];
			else
				W[i * d_out + j] = (float)Q[i * q + j];
		}
	free(buf);
	return 0;
}

int sv_model_init_uniform(float *W, uint32_t d_in, uint32_t d_out, uint64_t seed)
{
	if (!W || d_in == 0 || d_out == 0)
		return -EINVAL;
	uint64_t s = seed;
	double b = 1.0 / sqrt((double)d_in);
	size_t n = (size_t)d_in * d_out;
	for (size_t i = 0; i < n; i++)
		W[i] = (float)(b * (2.0 * uniform01(&s) - 1.0));
	return 0;
}

int sv_model_init(float *W, uint32_t d_in, uint32_t d_out, enum sv_model_init kind, uint64_t seed)
{
	switch (kind) {
	case SV_MODEL_INIT_ORTHOGONAL:
		return sv_model_init_orthogonal(W, d_in, d_out, seed);
	case SV_MODEL_INIT_UNIFORM:
		return sv_model_init_uniform(W, d_in, d_out, seed);
	}
	return -EINVAL;
}

int sv_model_forward(const float *X, size_t m, const float *W, uint32_t d_in, uint32_t d_out,
                     float *E, float *norms)
{
	if ((m && (!X || !E)) || !W || d_in == 0 || d_out == 0)
		return -EINVAL;
	sv_blas_gemm(0, 0, m, d_out, d_in, 1.0f, X, d_in, W, d_out, 0.0f, E, d_out);
	normalize_rows(E, m, d_out, norms);
	return 0;
}

int sv_model_backward(const float *X, size_t m, const float *E, const float *norms, float *G,
                      uint32_t d_in, uint32_t d_out, float *dW)
{
	if ((m && (!X || !E || !norms || !G)) || !dW || d_in == 0 || d_out == 0)
		return -EINVAL;
	project_rows(E, norms, G, m, d_out);
	sv_blas_gemm(1, 0, d_in, d_out, m, 1.0f, X, d_in, G, d_out, 0.0f, dW, d_out);
	return 0;
}
