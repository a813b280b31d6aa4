/* bench_train.c - `sv-bench train`: whole training steps against the raw
 * OpenBLAS GEMMs the same step needs.
 *
 * A step here is what the daemon does per minibatch: gather B random pairs
 * from an in-memory dataset into an sv_batch, then sv_trainer_step (forward,
 * pre-step scores, loss, backward, optimizer).  The reference, timed in the
 * same run and interleaved step by step so both see the same machine load,
 * is the four GEMMs of that step called straight on cblas_sgemm with the
 * same shapes, threaded by OpenBLAS itself with the same thread count
 * (m = 2B rows):
 *     Z = X W          m x d_out,  K = d_in
 *     S = E E^T        m x m,      K = d_out
 *     G = C E          m x d_out,  K = m      ((C+C^T)E, or Omega's for contrastive)
 *     dW = X^T dZ      d_in x d_out, K = m
 * GFLOP/s counts 2*M*N*K for each of the four, for every line.  A second
 * reference runs the same four GEMMs through sv_blas_gemm, which splits each
 * product across the threads itself (sv/blas.h): the step's overhead over
 * the GEMMs it actually runs.
 * A third timing, in the same loop, runs the step's calls one by one (as sv_trainer_step makes
 * them, on copies of its state) to report where the step's time goes.
 * Leaves out: the store, the pair log and the network (other benchmarks).
 */
#include <cblas.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "sv/blas.h"
#include "sv/error.h"
#include "sv/model.h"
#include "sv/train.h"

#define N_ROWS 8192   /* dataset rows the pairs are drawn from */
#define N_CLASS 10

struct opts {
	long d_in, d_out, batch, steps, threads;
	enum sv_loss_kind kind;
	enum sv_label_mode mode;
	int json;
};

struct ctx {
	const struct opts *o;
	uint64_t rng;
	float *data;      /* N_ROWS x d_in */
	sv_batch *b;
	sv_trainer *t;
	float *scores;
	double gather_s;  /* last gather's seconds */
	int rc;           /* first failing step's code */
	/* GEMM-only buffers */
	float *X, *W, *Z, *S, *G, *dW;
	/* phase breakdown: its own copies of the trainer's work state */
	sv_loss_ws *ws;
	struct sv_optim *opt;
	float *pW, *pE, *pG, *pdW, *pnorms;
	struct sv_train_params p;
	double ph[5];     /* gather, forward, loss, backward, optimizer seconds */
};

static void help(FILE *f)
{
	fprintf(f,
		"usage: sv-bench train [--d-in N] [--d-out N] [--batch PAIRS]\n"
		"                      [--loss ntxent|contrastive] [--mode batch|pairs|graph]\n"
		"                      [--steps N] [--threads T] [--json]\n"
		"Times whole training steps (gather, forward, loss, backward, Adam) and,\n"
		"interleaved in the same run, the four OpenBLAS GEMMs of the same step.\n"
		"Prints the medians, pairs/s, GFLOP/s and the ratio step / GEMM-only.\n"
		"Defaults: --d-in 784 --d-out 64 --batch 256 --loss ntxent --mode batch\n"
		"          --steps 50 --threads 1\n");
}

static int parse(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{"d-in", required_argument, NULL, 'i'},
		{"d-out", required_argument, NULL, 'o'},
		{"batch", required_argument, NULL, 'b'},
		{"loss", required_argument, NULL, 'l'},
		{"mode", required_argument, NULL, 'm'},
		{"steps", required_argument, NULL, 's'},
		{"threads", required_argument, NULL, 't'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;

	*o = (struct opts){.d_in = 784, .d_out = 64, .batch = 256, .steps = 50, .threads = 1,
			   .kind = SV_LOSS_KIND_NTXENT, .mode = SV_LABEL_MODE_BATCH};
	optind = 1;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		int bad = 0;

		switch (c) {
		case 'i': bad = bench_parse_long(optarg, 1, 1 << 16, &o->d_in); break;
		case 'o': bad = bench_parse_long(optarg, 1, 1 << 12, &o->d_out); break;
		case 'b': bad = bench_parse_long(optarg, 1, 1 << 14, &o->batch); break;
		case 's': bad = bench_parse_long(optarg, 1, 1 << 20, &o->steps); break;
		case 't': bad = bench_parse_long(optarg, 1, 256, &o->threads); break;
		case 'l':
			if (!strcmp(optarg, "ntxent"))
				o->kind = SV_LOSS_KIND_NTXENT;
			else if (!strcmp(optarg, "contrastive"))
				o->kind = SV_LOSS_KIND_CONTRASTIVE;
			else
				bad = -1;
			break;
		case 'm':
			if (!strcmp(optarg, "batch"))
				o->mode = SV_LABEL_MODE_BATCH;
			else if (!strcmp(optarg, "pairs"))
				o->mode = SV_LABEL_MODE_PAIRS;
			else if (!strcmp(optarg, "graph"))
				o->mode = SV_LABEL_MODE_GRAPH;
			else
				bad = -1;
			break;
		case 'j': o->json = 1; break;
		case 'h': help(stdout); return 1;
		default: help(stderr); return -1;
		}
		if (bad) {
			fprintf(stderr, "sv-bench train: bad value '%s' for --%s\n", optarg,
				lo[c == 'i' ? 0 : c == 'o' ? 1 : c == 'b' ? 2 : c == 'l' ? 3 :
				   c == 'm' ? 4 : c == 's' ? 5 : 6].name);
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "sv-bench train: unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	return 0;
}

static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ULL;
}

static float rng_sym(uint64_t *s)
{
	return (float)((double)(rng_next(s) >> 11) / 4503599627370496.0 - 1.0);
}

/* Gather B pairs: row a random, y a coin, row b of a's class (r % N_CLASS) or not. */
static void gather(struct ctx *c)
{
	const size_t d = (size_t)c->o->d_in;
	uint64_t t0 = bench_now_ns();

	sv_batch_clear(c->b);
	for (long i = 0; i < c->o->batch; i++) {
		size_t a = rng_next(&c->rng) % N_ROWS, bi;
		uint8_t y = rng_next(&c->rng) & 1;
		size_t off = 1 + rng_next(&c->rng) % (N_ROWS / N_CLASS - 1);

		if (y)
			bi = (a + N_CLASS * off) % (N_ROWS - N_ROWS % N_CLASS);
		else
			bi = (a + 1 + rng_next(&c->rng) % (N_CLASS - 1)) % N_ROWS;
		sv_batch_add(c->b, c->data + a * d, a, c->data + bi * d, bi, y, (uint64_t)i);
	}
	c->gather_s = (double)(bench_now_ns() - t0) * 1e-9;
}

static void run_step(void *arg)
{
	struct ctx *c = arg;
	int rc;

	gather(c);
	rc = sv_trainer_step(c->t, c->b, c->scores, NULL);
	if (rc < 0 && c->rc == 0)
		c->rc = rc;
}

/* The reference: OpenBLAS threading the four GEMMs with o->threads threads
 * (sv_blas_set_threads leaves OpenBLAS single-threaded; set it back after). */
static void run_gemms(void *arg)
{
	struct ctx *c = arg;
	const int m = (int)(2 * c->o->batch), di = (int)c->o->d_in, dout = (int)c->o->d_out;

	openblas_set_num_threads((int)c->o->threads);
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, dout, di, 1.0f, c->X, di,
		    c->W, dout, 0.0f, c->Z, dout);
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, m, dout, 1.0f, c->Z, dout,
		    c->Z, dout, 0.0f, c->S, m);
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, dout, m, 1.0f, c->S, m,
		    c->Z, dout, 0.0f, c->G, dout);
	cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, di, dout, m, 1.0f, c->X, di,
		    c->G, dout, 0.0f, c->dW, dout);
	openblas_set_num_threads(1);
}

/* The same four GEMMs through sv_blas_gemm, split across the threads by simverify. */
static void run_gemms_split(void *arg)
{
	struct ctx *c = arg;
	const size_t m = 2 * (size_t)c->o->batch, di = (size_t)c->o->d_in, dout = (size_t)c->o->d_out;

	sv_blas_gemm(0, 0, m, dout, di, 1.0f, c->X, di, c->W, dout, 0.0f, c->Z, dout);
	sv_blas_gemm(0, 1, m, m, dout, 1.0f, c->Z, dout, c->Z, dout, 0.0f, c->S, m);
	sv_blas_gemm(0, 0, m, dout, m, 1.0f, c->S, m, c->Z, dout, 0.0f, c->G, dout);
	sv_blas_gemm(1, 0, di, dout, m, 1.0f, c->X, di, c->G, dout, 0.0f, c->dW, dout);
}

/* The step's calls one at a time, each timed (what sv_trainer_step does). */
static void run_phases(struct ctx *c)
{
	const uint32_t di = c->p.d_in, dout = c->p.d_out;
	const size_t m = 2 * (size_t)c->o->batch;
	struct sv_pair_labels lab;
	const float *X;
	uint64_t t0, t1, t2, t3, t4;

	gather(c);
	c->ph[0] = c->gather_s;
	t0 = bench_now_ns();
	X = sv_batch_rows(c->b);
	sv_batch_labels(c->b, &lab);
	sv_model_forward(X, m, c->pW, di, dout, c->pE, c->pnorms);
	t1 = bench_now_ns();
	sv_loss_eval(c->ws, &c->p.loss, &lab, c->pE, dout, c->pG, NULL);
	t2 = bench_now_ns();
	sv_model_backward(X, m, c->pE, c->pnorms, c->pG, di, dout, c->pdW);
	t3 = bench_now_ns();
	sv_optim_step(c->opt, c->pW, c->pdW);
	t4 = bench_now_ns();
	c->ph[1] = (double)(t1 - t0) * 1e-9;
	c->ph[2] = (double)(t2 - t1) * 1e-9;
	c->ph[3] = (double)(t3 - t2) * 1e-9;
	c->ph[4] = (double)(t4 - t3) * 1e-9;
}

static float *alloc_fill(size_t n, uint64_t *rng, float scale)
{
	float *p = malloc(n * sizeof(float));

	if (p)
		for (size_t k = 0; k < n; k++)
			p[k] = scale * rng_sym(rng);
	return p;
}

static const char *loss_name(enum sv_loss_kind k)
{
	return k == SV_LOSS_KIND_NTXENT ? "ntxent" : "contrastive";
}

static const char *mode_name(enum sv_label_mode m)
{
	return m == SV_LABEL_MODE_BATCH ? "batch" : m == SV_LABEL_MODE_PAIRS ? "pairs" : "graph";
}

int bench_train(int argc, char **argv)
{
	struct opts o;
	struct ctx c;
	struct sv_train_params p;
	struct bench_json j;
	double *ts = NULL, *tg = NULL, *tsp = NULL, *tgather = NULL, *tph = NULL;
	double step_s, gemm_s, split_s, gather_s, flops;
	double ph[5];
	int rc = parse(argc, argv, &o), ret = 1, warm;
	size_t m, di, dout;

	if (rc)
		return rc > 0 ? 0 : 2;
	memset(&c, 0, sizeof(c));
	c.o = &o;
	c.rng = 0x5eed;
	m = 2 * (size_t)o.batch;
	di = (size_t)o.d_in;
	dout = (size_t)o.d_out;
	sv_blas_set_threads((int)o.threads);

	memset(&p, 0, sizeof(p));
	p.d_in = (uint32_t)o.d_in;
	p.d_out = (uint32_t)o.d_out;
	p.seed = 1;
	p.max_pairs = (size_t)o.batch;
	sv_loss_params_default(&p.loss, o.kind);
	p.loss.mode = o.mode;
	sv_optim_params_default(&p.optim, SV_OPTIM_KIND_ADAM);
	c.p = p;

	c.data = alloc_fill(N_ROWS * di, &c.rng, 1.0f);
	c.X = alloc_fill(m * di, &c.rng, 1.0f);
	c.W = alloc_fill(di * dout, &c.rng, 0.1f);
	c.Z = alloc_fill(m * dout, &c.rng, 1.0f);
	c.S = alloc_fill(m * m, &c.rng, 1.0f);
	c.G = alloc_fill(m * dout, &c.rng, 1.0f);
	c.dW = alloc_fill(di * dout, &c.rng, 1.0f);
	c.scores = malloc((size_t)o.batch * sizeof(float));
	c.pW = malloc(di * dout * sizeof(float));
	c.pdW = malloc(di * dout * sizeof(float));
	c.pE = malloc(m * dout * sizeof(float));
	c.pG = malloc(m * dout * sizeof(float));
	c.pnorms = malloc(m * sizeof(float));
	tph = malloc(5 * (size_t)o.steps * sizeof(double));
	ts = malloc((size_t)o.steps * sizeof(double));
	tg = malloc((size_t)o.steps * sizeof(double));
	tsp = malloc((size_t)o.steps * sizeof(double));
	tgather = malloc((size_t)o.steps * sizeof(double));
	if (!c.data || !c.X || !c.W || !c.Z || !c.S || !c.G || !c.dW || !c.scores || !ts ||
	    !tg || !tsp || !tgather || !c.pW || !c.pdW || !c.pE || !c.pG || !c.pnorms || !tph) {
		fprintf(stderr, "sv-bench train: out of memory\n");
		goto out;
	}
	rc = sv_batch_new(&c.b, (size_t)o.batch, p.d_in);
	if (rc == 0)
		rc = sv_trainer_new(&c.t, &p, NULL);
	if (rc == 0)
		rc = sv_loss_ws_new(&c.ws, p.max_pairs, p.d_out);
	if (rc == 0)
		rc = sv_optim_new(&c.opt, &p.optim, di * dout);
	if (rc == 0)
		rc = sv_model_init_orthogonal(c.pW, p.d_in, p.d_out, p.seed);
	if (rc < 0) {
		fprintf(stderr, "sv-bench train: setup: %s\n", sv_strerror(rc));
		goto out;
	}

	/* warm up both (caches, BLAS thread pool, page faults), then interleave */
	warm = o.steps < 5 ? 2 : 5;
	bench_time(run_step, &c, warm, 0, ts);
	bench_time(run_gemms, &c, warm, 0, tg);
	bench_time(run_gemms_split, &c, warm, 0, tsp);
	for (int k = 0; k < warm; k++)
		run_phases(&c);
	for (long s = 0; s < o.steps; s++) {
		bench_time(run_step, &c, 0, 1, &ts[s]);
		tgather[s] = c.gather_s;
		bench_time(run_gemms, &c, 0, 1, &tg[s]);
		bench_time(run_gemms_split, &c, 0, 1, &tsp[s]);
		run_phases(&c);
		for (int k = 0; k < 5; k++)
			tph[k * o.steps + s] = c.ph[k];
	}
	for (int k = 0; k < 5; k++)
		ph[k] = bench_median(tph + k * o.steps, (size_t)o.steps);
	if (c.rc < 0) {
		fprintf(stderr, "sv-bench train: step failed: %s\n", sv_strerror(c.rc));
		goto out;
	}
	step_s = bench_median(ts, (size_t)o.steps);
	gemm_s = bench_median(tg, (size_t)o.steps);
	split_s = bench_median(tsp, (size_t)o.steps);
	gather_s = bench_median(tgather, (size_t)o.steps);
	flops = 2.0 * (2.0 * (double)m * (double)di * (double)dout +
		       2.0 * (double)m * (double)m * (double)dout);

	if (o.json) {
		bench_json_begin(&j);
		bench_json_str(&j, "bench", "train");
		bench_json_str(&j, "impl", "simverify");
		bench_json_str(&j, "loss", loss_name(o.kind));
		bench_json_str(&j, "mode", mode_name(o.mode));
		bench_json_int(&j, "d_in", o.d_in);
		bench_json_int(&j, "d_out", o.d_out);
		bench_json_int(&j, "batch", o.batch);
		bench_json_int(&j, "threads", o.threads);
		bench_json_int(&j, "steps", o.steps);
		bench_json_num(&j, "step_ms", step_s * 1e3);
		bench_json_num(&j, "gather_ms", gather_s * 1e3);
		bench_json_num(&j, "pairs_per_s", (double)o.batch / step_s);
		bench_json_num(&j, "step_gflops", flops / step_s * 1e-9);
		bench_json_num(&j, "gemm_ms", gemm_s * 1e3);
		bench_json_num(&j, "gemm_gflops", flops / gemm_s * 1e-9);
		bench_json_num(&j, "ratio_step_gemm", step_s / gemm_s);
		bench_json_num(&j, "split_gemm_ms", split_s * 1e3);
		bench_json_num(&j, "ratio_step_split_gemm", step_s / split_s);
		bench_json_num(&j, "phase_gather_ms", ph[0] * 1e3);
		bench_json_num(&j, "phase_forward_ms", ph[1] * 1e3);
		bench_json_num(&j, "phase_loss_ms", ph[2] * 1e3);
		bench_json_num(&j, "phase_backward_ms", ph[3] * 1e3);
		bench_json_num(&j, "phase_optim_ms", ph[4] * 1e3);
		bench_json_end(&j);
	} else {
		printf("train %s/%s %ld->%ld batch %ld pairs, %ld threads, median of %ld steps\n",
		       loss_name(o.kind), mode_name(o.mode), o.d_in, o.d_out, o.batch, o.threads,
		       o.steps);
		printf("  step (gather+fwd+loss+bwd+adam) %9.3f ms  %10.0f pairs/s  %7.2f GFLOP/s"
		       "  (gather %.3f ms)\n",
		       step_s * 1e3, (double)o.batch / step_s, flops / step_s * 1e-9,
		       gather_s * 1e3);
		printf("  OpenBLAS GEMMs only             %9.3f ms  %10.0f pairs/s  %7.2f GFLOP/s\n",
		       gemm_s * 1e3, (double)o.batch / gemm_s, flops / gemm_s * 1e-9);
		printf("  ratio step / GEMM-only          %9.3f\n", step_s / gemm_s);
		printf("  same GEMMs split by sv_blas     %9.3f ms  %10.0f pairs/s  %7.2f GFLOP/s\n",
		       split_s * 1e3, (double)o.batch / split_s, flops / split_s * 1e-9);
		printf("  ratio step / split GEMM-only    %9.3f\n", step_s / split_s);
		printf("  phases (ms): gather %.3f  forward %.3f  loss %.3f  backward %.3f"
		       "  optimizer %.3f\n",
		       ph[0] * 1e3, ph[1] * 1e3, ph[2] * 1e3, ph[3] * 1e3, ph[4] * 1e3);
	}
	ret = 0;
out:
	sv_trainer_free(c.t);
	sv_loss_ws_free(c.ws);
	sv_optim_free(c.opt);
	free(c.pW);
	free(c.pdW);
	free(c.pE);
	free(c.pG);
	free(c.pnorms);
	free(tph);
	sv_batch_free(c.b);
	free(c.data);
	free(c.X);
	free(c.W);
	free(c.Z);
	free(c.S);
	free(c.G);
	free(c.dW);
	free(c.scores);
	free(ts);
	free(tg);
	free(tsp);
	free(tgather);
	return ret;
}
