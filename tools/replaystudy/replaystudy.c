/* replaystudy.c - the daemon's training path simulated offline, with replay.
 *
 * Fresh pairs of a .pairs stream arrive in log order (sequence = record
 * index + 1) and are trained once in batches of --fresh-batch pairs (the
 * daemon's B, or 1 for a slow feed), each batch scored first (prequential,
 * fresh pairs only).  A fresh batch shorter than --fill pairs is filled up
 * with replayed pairs (sv_replay_plan over the log before it).  Optionally
 * --idle replay steps follow every fresh batch while the stream runs.  After
 * the stream, idle time replays in rounds: gated (sv/replay.h: slice score,
 * keep / go / undo / stop), or ungated for exactly --rounds rounds.  At the
 * end W is scored on the evaluation pairs, which nothing else reads.
 *
 * One line per replay seed, then the median line.  Single-threaded BLAS.
 * Left out: sockets, the store, the log itself (the record array stands in
 * for the retained log window).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sv/batch.h"
#include "sv/blas.h"
#include "sv/error.h"
#include "sv/metrics.h"
#include "sv/model.h"
#include "sv/pairfile.h"
#include "sv/replay.h"
#include "sv/train.h"

struct opts {
	const char *vec, *pairs, *evec, *epairs;
	uint32_t n, d_out, fresh_b, fill, idle, rounds, seeds;
	double tau, lr;
	int gate, replay, vary_init, avg, trace;
	int plateau_avg;   /* no refit: W := the mean of the rounds judged keep or go */
	int plateau_round; /* no refit: one averaged round from the best W (2: slice too) */
	double plateau_lr; /* ... at the gate's last rate times this (0: the best round's) */
	double avg_tail; /* the averaged refit round: the mean of its last avg_tail of the steps */
	double soup;     /* after the refit W := (1 - soup) W + soup * the gate's best W */
	uint64_t init_seed;
	enum sv_model_init init;
	double init_scale; /* W0 times this: what the init's scale does, alone */
	struct sv_replay_params rp;
};

struct run {
	double eval_auc, slice_auc, preq_auc, idle_s, total_s;
	uint64_t replay_steps, zero_grad, rounds, refit_rounds, fill_used;
	struct sv_replay_gate g;
};

struct ctx {
	const struct opts *o;
	struct sv_vecfile *vf, *evf;
	const struct sv_pair_rec *rec, *erec;
	uint32_t n_eval;
	uint32_t d_in;
	/* the slice: its pairs' rows and labels, filled in log order */
	float *xs, *es;
	uint8_t *ys;
	uint32_t ns;
	float *cos;
	/* --avg: running mean of W over the steps since avg_reset */
	float *avg;
	uint64_t navg, avg_skip; /* avg_skip: steps left before the mean starts */
	int avg_on;
	size_t nw;
};

static void avg_reset(struct ctx *c, int on)
{
	c->navg = 0;
	c->avg_skip = 0;
	c->avg_on = on;
}

/* W := the mean of the iterates since avg_reset (when there were any). */
static void avg_apply(struct ctx *c, sv_trainer *t)
{
	if (c->avg_on && c->navg)
		sv_trainer_set_weights(t, c->avg);
	c->avg_on = 0;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void die(const char *what, int rc)
{
	fprintf(stderr, "replaystudy: %s: %s\n", what, sv_strerror(rc));
	exit(1);
}

static void add_pair(struct ctx *c, sv_batch *b, const struct sv_pair_rec *r, uint64_t seq)
{
	int rc = sv_batch_add(b, sv_vecfile_row(c->vf, r->a), r->a, sv_vecfile_row(c->vf, r->b),
			      r->b, r->label, seq);
	if (rc)
		die("batch_add", rc);
}

/* AUC of the cosines of m pairs whose rows are X (2m x d_in, lefts then rights). */
static double pairs_auc(struct ctx *c, const float *W, const float *X, float *E, const uint8_t *y,
			uint32_t m)
{
	uint32_t d = c->o->d_out;
	int rc = sv_model_forward(X, 2 * (size_t)m, W, c->d_in, d, E, NULL);
	if (rc)
		die("forward", rc);
	for (uint32_t i = 0; i < m; i++) {
		const float *u = E + (size_t)i * d, *v = E + ((size_t)m + i) * d;
		float s = 0;
		for (uint32_t k = 0; k < d; k++)
			s += u[k] * v[k];
		c->cos[i] = s;
	}
	struct sv_metrics_roc *roc;
	rc = sv_metrics_roc_new(&roc, c->cos, y, m);
	if (rc)
		die("roc", rc);
	double a = sv_metrics_roc_auc(roc);
	sv_metrics_roc_free(roc);
	return a;
}

static double eval_auc(struct ctx *c, const float *W)
{
	const struct sv_vec_header *h = sv_vecfile_header(c->evf);
	uint32_t d = c->o->d_out;
	float *E = malloc((size_t)h->n_rows * d * sizeof(float));
	uint8_t *y = malloc(c->n_eval);
	if (!E || !y)
		die("eval", -ENOMEM);
	int rc = sv_model_forward(sv_vecfile_data(c->evf), h->n_rows, W, c->d_in, d, E, NULL);
	if (rc)
		die("forward", rc);
	for (uint32_t i = 0; i < c->n_eval; i++) {
		const float *u = E + (size_t)(c->erec[i].a - h->id_base) * d;
		const float *v = E + (size_t)(c->erec[i].b - h->id_base) * d;
		float s = 0;
		for (uint32_t k = 0; k < d; k++)
			s += u[k] * v[k];
		c->cos[i] = s;
		y[i] = c->erec[i].label;
	}
	struct sv_metrics_roc *roc;
	rc = sv_metrics_roc_new(&roc, c->cos, y, c->n_eval);
	if (rc)
		die("roc", rc);
	double a = sv_metrics_roc_auc(roc);
	sv_metrics_roc_free(roc);
	free(E);
	free(y);
	return a;
}

/* Slice rows are copied left block / right block; the right block is at
 * xs + n_slice_cap * d_in, compacted before scoring. */
static double slice_auc(struct ctx *c, const float *W, uint32_t cap, uint64_t *np, uint64_t *nn)
{
	uint64_t p = 0;
	for (uint32_t i = 0; i < c->ns; i++)
		p += c->ys[i];
	*np = p;
	*nn = c->ns - p;
	if (p == 0 || p == c->ns)
		return 0.5;
	if (c->ns < cap)
		memmove(c->xs + (size_t)c->ns * c->d_in, c->xs + (size_t)cap * c->d_in,
			(size_t)c->ns * c->d_in * sizeof(float));
	double a = pairs_auc(c, W, c->xs, c->es, c->ys, c->ns);
	if (c->ns < cap)
		memmove(c->xs + (size_t)cap * c->d_in, c->xs + (size_t)c->ns * c->d_in,
			(size_t)c->ns * c->d_in * sizeof(float));
	return a;
}

struct snap {
	float *W;
	void *opt;
	size_t opt_len;
};

static void snap_take(struct snap *s, sv_trainer *t, size_t nw)
{
	memcpy(s->W, sv_trainer_weights(t), nw * sizeof(float));
	long len = sv_optim_save(sv_trainer_optim(t), s->opt, s->opt_len);
	if (len < 0)
		die("optim_save", (int)len);
}

static void snap_restore(struct snap *s, sv_trainer *t)
{
	struct sv_optim *o;
	int rc = sv_optim_load(&o, s->opt, s->opt_len);
	if (rc)
		die("optim_load", rc);
	sv_trainer_set_weights(t, s->W);
	rc = sv_trainer_set_optim(t, o);
	if (rc)
		die("set_optim", rc);
}

/* One replay step over the log window [1, last]; 0 when nothing to replay. */
static int replay_step(struct ctx *c, sv_trainer *t, sv_batch *b, uint64_t last, uint64_t r,
		       unsigned flags, uint64_t *seqs, struct run *res)
{
	size_t n;
	int rc = sv_replay_plan(&c->o->rp, 1, last, r, flags, seqs, c->o->rp.batch_pairs, &n);
	if (rc)
		die("plan", rc);
	if (n < 2)
		return 0;
	sv_batch_clear(b);
	for (size_t i = 0; i < n; i++)
		add_pair(c, b, &c->rec[seqs[i] - 1], seqs[i]);
	struct sv_step_stats st;
	rc = sv_trainer_step(t, b, NULL, &st);
	if (rc)
		die("step", rc);
	res->replay_steps++;
	res->zero_grad += st.grad_norm == 0.0;
	if (c->avg_on && c->avg_skip) {
		c->avg_skip--;
	} else if (c->avg_on) {
		const float *w = sv_trainer_weights(t);
		if (++c->navg == 1)
			memcpy(c->avg, w, c->nw * sizeof(float));
		else
			for (size_t z = 0; z < c->nw; z++)
				c->avg[z] += (w[z] - c->avg[z]) / (float)c->navg;
	}
	return 1;
}

static void set_lr(sv_trainer *t, double lr)
{
	struct sv_optim_params op = sv_trainer_params(t)->optim;
	op.lr = lr;
	int rc = sv_trainer_set_optim_params(t, &op);
	if (rc)
		die("set_optim_params", rc);
}

static void run_one(struct ctx *c, uint64_t rseed, struct run *res)
{
	const struct opts *o = c->o;
	struct sv_train_params tp;
	memset(&tp, 0, sizeof(tp));
	tp.d_in = c->d_in;
	tp.d_out = o->d_out;
	tp.init = o->init;
	tp.seed = o->init_seed + (o->vary_init ? rseed - 1000 : 0);
	tp.max_pairs = o->rp.batch_pairs > o->fresh_b ? o->rp.batch_pairs : o->fresh_b;
	if (tp.max_pairs < o->fill)
		tp.max_pairs = o->fill;
	sv_loss_params_default(&tp.loss, SV_LOSS_KIND_NTXENT);
	tp.loss.temperature = (float)o->tau;
	sv_optim_params_default(&tp.optim, SV_OPTIM_KIND_ADAM);
	tp.optim.lr = o->lr;
	sv_trainer *t;
	int rc = sv_trainer_new(&t, &tp, NULL);
	if (rc)
		die("trainer_new", rc);
	if (o->init_scale != 1.0) {
		size_t nw0 = (size_t)c->d_in * o->d_out;
		float *w0 = malloc(nw0 * sizeof(float));
		if (!w0)
			die("alloc", -ENOMEM);
		memcpy(w0, sv_trainer_weights(t), nw0 * sizeof(float));
		for (size_t i = 0; i < nw0; i++)
			w0[i] = (float)(w0[i] * o->init_scale);
		sv_trainer_set_weights(t, w0);
		free(w0);
	}
	sv_batch *b;
	rc = sv_batch_new(&b, tp.max_pairs, c->d_in);
	if (rc)
		die("batch_new", rc);
	struct sv_replay_params rp = o->rp;
	rp.seed = rseed;
	struct opts o2 = *o;
	o2.rp = rp;
	c->o = &o2;
	size_t nw = (size_t)c->d_in * o->d_out;
	struct snap s = {malloc(nw * sizeof(float)), NULL, sv_optim_saved_size(sv_trainer_optim(t))};
	s.opt = malloc(s.opt_len);
	struct snap base = {malloc(nw * sizeof(float)), malloc(s.opt_len), s.opt_len};
	if (!base.W || !base.opt)
		die("alloc", -ENOMEM);
	uint64_t *seqs = malloc(tp.max_pairs * sizeof(uint64_t));
	float *pmean = calloc(nw, sizeof(float));
	uint64_t npmean = 0;
	float *scores = malloc(tp.max_pairs * sizeof(float));
	float *pscore = malloc((size_t)o->n * sizeof(float));
	uint8_t *plab = malloc(o->n);
	if (!s.W || !s.opt || !seqs || !pmean || !scores || !pscore || !plab)
		die("alloc", -ENOMEM);
	memset(res, 0, sizeof(*res));
	sv_replay_gate_init(&res->g);
	c->ns = 0;
	uint32_t cap = o->n; /* slice capacity in pairs (upper bound) */
	uint64_t r = 0, np_ = 0;
	double t0 = now();

	/* the stream */
	for (uint32_t i = 0; i < o->n;) {
		uint32_t k = o->fresh_b;
		if (k > o->n - i)
			k = o->n - i;
		sv_batch_clear(b);
		for (uint32_t j = 0; j < k; j++)
			add_pair(c, b, &c->rec[i + j], i + j + 1);
		size_t nf = k;
		if (o->replay && o->fill > k && i > 0) {
			size_t n;
			size_t want = sv_replay_fill_count(&rp, i, res->fill_used, k, o->fill - k);
			n = 0;
			if (want)
				rc = sv_replay_plan(&rp, 1, i, r++, 0, seqs, want, &n);
			if (rc)
				die("plan", rc);
			res->fill_used += n;
			for (size_t j = 0; j < n; j++)
				add_pair(c, b, &c->rec[seqs[j] - 1], seqs[j]);
		}
		struct sv_step_stats st;
		rc = sv_trainer_step(t, b, scores, &st);
		if (rc)
			die("step", rc);
		res->zero_grad += st.grad_norm == 0.0;
		for (size_t j = 0; j < nf; j++) {
			pscore[np_] = scores[j];
			plab[np_++] = c->rec[i + j].label;
			uint64_t seq = i + j + 1;
			if (sv_replay_in_slice(&rp, seq)) {
				const struct sv_pair_rec *pr = &c->rec[i + j];
				memcpy(c->xs + (size_t)c->ns * c->d_in, sv_vecfile_row(c->vf, pr->a),
				       c->d_in * sizeof(float));
				memcpy(c->xs + ((size_t)cap + c->ns) * c->d_in,
				       sv_vecfile_row(c->vf, pr->b), c->d_in * sizeof(float));
				c->ys[c->ns++] = pr->label;
			}
		}
		i += k;
		sv_replay_gate_fresh(&res->g, &rp, i);
		if (o->replay)
			for (uint32_t q = 0; q < o->idle; q++)
				replay_step(c, t, b, i, r++, 0, seqs, res);
	}
	double t1 = now();

	/* idle time after the stream: rounds over the whole window */
	uint64_t per_round = sv_replay_round_steps(&rp, 1, o->n);
	uint64_t npos, nneg;
	if (o->replay && o->gate) {
		double a = slice_auc(c, sv_trainer_weights(t), cap, &npos, &nneg);
		int d = sv_replay_gate_judge(&res->g, &rp, a, npos, nneg);
		if (d == SV_REPLAY_DECISION_KEEP) {
			snap_take(&s, t, nw);
			snap_take(&base, t, nw);
		}
		while (sv_replay_gate_running(&res->g)) {
			set_lr(t, sv_replay_gate_lr(&res->g, &rp, o->lr));
			avg_reset(c, o->avg == 1);
			for (uint64_t q = 0; q < per_round; q++)
				replay_step(c, t, b, o->n, r++, 0, seqs, res);
			avg_apply(c, t);
			res->rounds++;
			a = slice_auc(c, sv_trainer_weights(t), cap, &npos, &nneg);
			d = sv_replay_gate_judge(&res->g, &rp, a, npos, nneg);
			if (o->trace)
				fprintf(stderr, "  round %u slice %.4f eval %.4f -> %s lr %.2g\n",
					res->g.rounds, a, eval_auc(c, sv_trainer_weights(t)),
					sv_replay_decision_name((enum sv_replay_decision)d),
					sv_trainer_params(t)->optim.lr);
			if (o->plateau_avg && (d == SV_REPLAY_DECISION_KEEP || d == SV_REPLAY_DECISION_GO)) {
				const float *w = sv_trainer_weights(t);
				for (size_t z = 0; z < nw; z++)
					pmean[z] += w[z];
				npmean++;
			}
			if (d == SV_REPLAY_DECISION_KEEP)
				snap_take(&s, t, nw);
			else if (d == SV_REPLAY_DECISION_UNDO && res->g.state != SV_REPLAY_STATE_REFIT)
				snap_restore(&s, t);
		}
		if (o->plateau_round && res->g.state == SV_REPLAY_STATE_STOPPED && res->g.best_path) {
			/* one averaged round from the best W at the gate's last rate */
			unsigned fl = o->plateau_round == 2 ? SV_REPLAY_PLAN_WITH_SLICE : 0;
			uint64_t all = sv_replay_round_steps_of(&rp, 1, o->n, fl);
			set_lr(t, o->plateau_lr > 0.0
					  ? sv_replay_gate_lr(&res->g, &rp, o->lr) * o->plateau_lr
					  : sv_replay_gate_refit_lr(&res->g, &rp, o->lr,
								    res->g.best_path - 1));
			r = (r + all - 1) / all * all;
			avg_reset(c, 1);
			for (uint64_t z = 0; z < all; z++)
				replay_step(c, t, b, o->n, r++, fl, seqs, res);
			avg_apply(c, t);
		}
		if (o->plateau_avg && npmean && res->g.state == SV_REPLAY_STATE_STOPPED) {
			for (size_t z = 0; z < nw; z++)
				pmean[z] /= (float)npmean;
			sv_trainer_set_weights(t, pmean);
		}
		if (res->g.state == SV_REPLAY_STATE_REFIT) {
			/* from the baseline, the best path's rounds over every pair */
			uint64_t all = sv_replay_round_steps_of(&rp, 1, o->n, SV_REPLAY_PLAN_WITH_SLICE);
			snap_restore(&base, t);
			r = (r + all - 1) / all * all;
			for (uint32_t q = 0; q < res->g.best_path; q++) {
				set_lr(t, sv_replay_gate_refit_lr(&res->g, &rp, o->lr, q));
				avg_reset(c, o->avg == 1 ||
					      (rp.refit_average && q + 1 == res->g.best_path));
				if (rp.refit_average && q + 1 == res->g.best_path)
					c->avg_skip = (uint64_t)((double)all * (1.0 - o->avg_tail));
				for (uint64_t z = 0; z < all; z++)
					replay_step(c, t, b, o->n, r++, SV_REPLAY_PLAN_WITH_SLICE,
						    seqs, res);
				avg_apply(c, t);
			}
			if (o->soup > 0.0) {
				float *w = malloc(nw * sizeof(float));
				if (!w)
					die("alloc", -ENOMEM);
				memcpy(w, sv_trainer_weights(t), nw * sizeof(float));
				for (size_t z = 0; z < nw; z++)
					w[z] = (float)((1.0 - o->soup) * w[z] + o->soup * s.W[z]);
				sv_trainer_set_weights(t, w);
				free(w);
			}
			res->refit_rounds = res->g.best_path;
			sv_replay_gate_refit_done(&res->g);
		}
	} else if (o->replay) {
		for (uint32_t q = 0; q < o->rounds; q++) {
			set_lr(t, sv_replay_round_lr(&rp, o->lr, q + 1));
			for (uint64_t z = 0; z < per_round; z++)
				replay_step(c, t, b, o->n, r++, 0, seqs, res);
			res->rounds++;
		}
	}
	set_lr(t, o->lr);
	double t2 = now();
	res->idle_s = t2 - t1;
	res->total_s = t2 - t0;
	res->slice_auc = c->ns ? slice_auc(c, sv_trainer_weights(t), cap, &npos, &nneg) : NAN;
	res->eval_auc = eval_auc(c, sv_trainer_weights(t));
	struct sv_metrics_roc *roc;
	res->preq_auc = NAN;
	if (sv_metrics_roc_new(&roc, pscore, plab, np_) == 0) {
		res->preq_auc = sv_metrics_roc_auc(roc);
		sv_metrics_roc_free(roc);
	}
	c->o = o;
	free(base.W);
	free(base.opt);
	free(s.W);
	free(s.opt);
	free(seqs);
	free(pmean);
	free(scores);
	free(pscore);
	free(plab);
	sv_batch_free(b);
	sv_trainer_free(t);
}

static int cmpd(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: replaystudy --vec F --pairs F --eval-vec F --eval-pairs F --n N\n"
		"  [--d-out 64] [--tau 0.2] [--lr 1e-3] [--batch 256] [--fresh-batch B]\n"
		"  [--replay off|on] [--gate on|off] [--rounds R (ungated) | --max-rounds R]\n"
		"  [--idle K] [--fill F] [--slice-every K] [--min-slice M] [--tol-z Z]\n"
		"  [--patience P] [--lr-decay D] [--decay round|go] [--retries N] [--slice-flat K] [--init-seed S] [--init orthogonal|uniform] [--init-scale S] [--refit on|off] [--refit-average on|off] [--avg-rounds on|off] [--refit-share S] [--avg-tail F] [--soup S] [--plateau-avg on|off] [--plateau-round 0|1|2] [--plateau-lr F (0: the best round's)] [--trace on|off] [--fill-uses U] [--vary-init on|off] [--seeds S] [--label TEXT]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct opts o;
	memset(&o, 0, sizeof(o));
	o.d_out = 64;
	o.tau = 0.2;
	o.lr = 1e-3;
	o.seeds = 1;
	o.gate = 1;
	o.init_seed = 1;
	o.init_scale = 1.0;
	o.avg_tail = 1.0;
	o.plateau_lr = 1.0;
	sv_replay_params_default(&o.rp);
	o.fresh_b = 256;
	const char *label = "";
	for (int i = 1; i < argc; i++) {
		const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!v)
			usage();
		i++;
		if (!strcmp(k, "--vec"))
			o.vec = v;
		else if (!strcmp(k, "--pairs"))
			o.pairs = v;
		else if (!strcmp(k, "--eval-vec"))
			o.evec = v;
		else if (!strcmp(k, "--eval-pairs"))
			o.epairs = v;
		else if (!strcmp(k, "--n"))
			o.n = (uint32_t)strtoul(v, NULL, 10);
		else if (!strcmp(k, "--d-out"))
			o.d_out = (uint32_t)strtoul(v, NULL, 10);
		else if (!strcmp(k, "--tau"))
			o.tau = strtod(v, NULL);
		else if (!strcmp(k, "--lr"))
			o.lr = strtod(v, NULL);
		else if (!strcmp(k, "--batch"))
			o.rp.batch_pairs = (uint32_t)strtoul(v, NULL, 10);
		else if (!strcmp(k, "--fresh-batch"))
			o.fresh_b = (uint32_t)strtoul(v, NULL, 10);
		else if (!strcmp(k, "--replay"))
			o.replay = !strcmp(v, "on");
		else if (!strcmp(k, "--gate"))
			o.gate = !strcmp(v, "on");
		else if (!strcmp(k, "--rounds"))
			o.rounds = (uint32_t)strtoul(v, NULL, 10);
		else if (!strcmp(k, "--max-rounds"))
			o.rp.max_rounds = (uint32_t)strtoul(v, NULL, 10);
		else if (!strcmp(k, "--idle"))
			o.idle = (uint32_t)strtoul(v, NULL, 10);
		else if (!strcmp(k, "--fill"))
			o.fill = (uint32_t)strtoul(v, NULL, 10);
		else if (!strcmp(k, "--slice-every"))
			sv_replay_params_slice(&o.rp, (uint32_t)strtoul(v, NULL, 10));
		else if (!strcmp(k, "--min-slice"))
			o.rp.min_slice = (uint32_t)strtoul(v, NULL, 10);
		else if (!strcmp(k, "--tol-z"))
			o.rp.tol_z = strtod(v, NULL);
		else if (!strcmp(k, "--slice-flat")) { /* phase 1: every k-th, no denser start */
			sv_replay_params_slice(&o.rp, (uint32_t)strtoul(v, NULL, 10));
			o.rp.slice_dense_every = o.rp.slice_every;
		} else if (!strcmp(k, "--retries"))
			o.rp.retries = (uint32_t)strtoul(v, NULL, 10);
		else if (!strcmp(k, "--patience"))
			o.rp.patience = (uint32_t)strtoul(v, NULL, 10);
		else if (!strcmp(k, "--vary-init"))
			o.vary_init = !strcmp(v, "on");
		else if (!strcmp(k, "--avg-rounds")) /* every round's W := its iterates' mean */
			o.avg = !strcmp(v, "on");
		else if (!strcmp(k, "--refit-share"))
			o.rp.refit_share = strtod(v, NULL);
		else if (!strcmp(k, "--trace")) /* each judged round's scores on stderr */
			o.trace = !strcmp(v, "on");
		else if (!strcmp(k, "--plateau-round")) /* 1: without the slice, 2: with it */
			o.plateau_round = atoi(v);
		else if (!strcmp(k, "--plateau-lr"))
			o.plateau_lr = strtod(v, NULL);
		else if (!strcmp(k, "--plateau-avg"))
			o.plateau_avg = !strcmp(v, "on");
		else if (!strcmp(k, "--soup"))
			o.soup = strtod(v, NULL);
		else if (!strcmp(k, "--avg-tail"))
			o.avg_tail = strtod(v, NULL);
		else if (!strcmp(k, "--refit-average"))
			o.rp.refit_average = !strcmp(v, "on");
		else if (!strcmp(k, "--refit"))
			o.rp.refit = !strcmp(v, "on");
		else if (!strcmp(k, "--fill-uses"))
			o.rp.fill_uses = strtod(v, NULL);
		else if (!strcmp(k, "--lr-decay"))
			o.rp.lr_decay = strtod(v, NULL);
		else if (!strcmp(k, "--decay"))
			o.rp.decay_mode = !strcmp(v, "go") ? SV_REPLAY_DECAY_GO : SV_REPLAY_DECAY_ROUND;
		else if (!strcmp(k, "--init"))
			o.init = !strcmp(v, "uniform") ? SV_MODEL_INIT_UNIFORM : SV_MODEL_INIT_ORTHOGONAL;
		else if (!strcmp(k, "--init-scale"))
			o.init_scale = strtod(v, NULL);
		else if (!strcmp(k, "--init-seed"))
			o.init_seed = strtoull(v, NULL, 10);
		else if (!strcmp(k, "--seeds"))
			o.seeds = (uint32_t)strtoul(v, NULL, 10);
		else if (!strcmp(k, "--label"))
			label = v;
		else
			usage();
	}
	if (!o.vec || !o.pairs || !o.evec || !o.epairs || o.seeds == 0 || o.seeds > 64)
		usage();
	if (sv_replay_params_check(&o.rp))
		usage();
	sv_blas_set_threads(1);

	struct ctx c;
	memset(&c, 0, sizeof(c));
	c.o = &o;
	char err[SV_PAIRFILE_ERRLEN];
	struct sv_pairfile *pf, *epf;
	int rc;
	if ((rc = sv_vecfile_open(&c.vf, o.vec, err, sizeof(err))) ||
	    (rc = sv_pairfile_open(&pf, o.pairs, err, sizeof(err))) ||
	    (rc = sv_vecfile_open(&c.evf, o.evec, err, sizeof(err))) ||
	    (rc = sv_pairfile_open(&epf, o.epairs, err, sizeof(err)))) {
		fprintf(stderr, "replaystudy: %s\n", err);
		return 1;
	}
	if ((rc = sv_pairfile_check_vec(pf, c.vf, err, sizeof(err))) ||
	    (rc = sv_pairfile_check_vec(epf, c.evf, err, sizeof(err)))) {
		fprintf(stderr, "replaystudy: %s\n", err);
		return 1;
	}
	c.rec = sv_pairfile_records(pf);
	c.erec = sv_pairfile_records(epf);
	c.n_eval = sv_pairfile_header(epf)->n_pairs;
	c.d_in = sv_vecfile_header(c.vf)->dim;
	if (o.n == 0 || o.n > sv_pairfile_header(pf)->n_pairs)
		o.n = sv_pairfile_header(pf)->n_pairs;
	c.xs = malloc((size_t)2 * o.n * c.d_in * sizeof(float));
	c.es = malloc((size_t)2 * o.n * o.d_out * sizeof(float));
	c.ys = malloc(o.n);
	c.nw = (size_t)c.d_in * o.d_out;
	c.avg = calloc(c.nw, sizeof(float));
	size_t ncos = o.n > c.n_eval ? o.n : c.n_eval;
	c.cos = malloc(ncos * sizeof(float));
	if (!c.xs || !c.es || !c.ys || !c.cos)
		die("alloc", -ENOMEM);

	double ev[64], sl[64], pq[64], idle[64];
	for (uint32_t s = 0; s < o.seeds; s++) {
		struct run res;
		run_one(&c, 1000 + s, &res);
		ev[s] = res.eval_auc;
		sl[s] = res.slice_auc;
		pq[s] = res.preq_auc;
		idle[s] = res.idle_s;
		printf("%-14s n=%-6u seed=%-4u eval=%.4f slice=%.4f preq=%.4f rounds=%-3llu "
		       "best=%-3u refit=%llu gate=%s/%s keep=%llu go=%llu undo=%llu stop=%llu "
		       "fill_used=%llu replay_steps=%llu zero_grad=%llu idle_s=%.1f total_s=%.1f\n",
		       label, o.n, 1000 + s, res.eval_auc, res.slice_auc, res.preq_auc,
		       (unsigned long long)res.rounds, res.g.best_round,
		       (unsigned long long)res.refit_rounds, sv_replay_state_name(res.g.state), sv_replay_decision_name(res.g.last),
		       (unsigned long long)res.g.n_keep, (unsigned long long)res.g.n_go,
		       (unsigned long long)res.g.n_undo, (unsigned long long)res.g.n_stop,
		       (unsigned long long)res.fill_used, (unsigned long long)res.replay_steps, (unsigned long long)res.zero_grad,
		       res.idle_s, res.total_s);
		fflush(stdout);
	}
	qsort(ev, o.seeds, sizeof(double), cmpd);
	qsort(sl, o.seeds, sizeof(double), cmpd);
	qsort(pq, o.seeds, sizeof(double), cmpd);
	qsort(idle, o.seeds, sizeof(double), cmpd);
	printf("MEDIAN %-14s n=%-6u seeds=%u eval=%.4f (min %.4f max %.4f) slice=%.4f preq=%.4f "
	       "idle_s=%.1f\n",
	       label, o.n, o.seeds, ev[o.seeds / 2], ev[0], ev[o.seeds - 1], sl[o.seeds / 2],
	       pq[o.seeds / 2], idle[o.seeds / 2]);
	free(c.xs);
	free(c.es);
	free(c.ys);
	free(c.cos);
	sv_pairfile_close(pf);
	sv_pairfile_close(epf);
	sv_vecfile_close(c.vf);
	sv_vecfile_close(c.evf);
	return 0;
}
