/* replay.c - fill, idle rounds, the gate's slice score and the replay
 * state of a checkpoint, on the store (see replay.h).
 *
 * Leaves out: the planner and the gate's rules (lib/replay.c), when the
 * trainer is idle and what it commits (trainer.c).
 */
#include "replay.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "sv/error.h"
#include "sv/metrics.h"
#include "sv/model.h"
#include "sv/optim.h"
#include "sv/replay.h"
#include "sv/store.h"
#include "util.h"

/* best_version meaning "the checkpoint this state is saved in" (a KEEP's
 * best W is the W of that very checkpoint). */
#define BEST_SELF UINT64_MAX
/* Slice pairs scored per forward pass. */
#define SLICE_CHUNK 512

struct replay {
	struct sv_daemon *d;
	struct sv_replay_params p;
	int on;            /* train.replay: off keeps only what recovery needs */
	uint32_t fill_to;  /* train.replay_fill, capped at the batch capacity */
	int gate_on;       /* train.replay_gate */
	struct sv_journal_replay s; /* what a checkpoint carries */
	uint64_t fill_pin; /* lowest window start of fill records since the checkpoint */
	uint64_t judged_at; /* log position of the last WAIT judgement */
	int dirty;          /* idle steps not in a checkpoint */
	sv_batch *b;        /* a replay step's batch */
	uint64_t *seqs;
	float *x, *e, *cos; /* slice scoring: 2 * SLICE_CHUNK rows in, out; scores */
	uint8_t *y;
	size_t cos_cap;
	/* the averaged last refit round (sv_replay_params.refit_average): the
	 * mean of its iterates, and what it started from, to start it over */
	float *avg, *snap_w;
	void *snap_opt;
	size_t snap_opt_len;
	uint64_t navg;
	struct sv_journal_replay snap_s;
	int snap_dirty;
};

static void view(struct replay *rp)
{
	struct sv_progress *pg = &rp->d->prog;

	/* the state as committed: a reader that sees "stopped" must find the
	 * final W published (save_checkpoint publishes, then replay_committed) */
	if (!rp->dirty)
		atomic_store(&pg->replay_state, (int)rp->s.gate.state);
	atomic_store(&pg->replay_decision, (int)rp->s.gate.last);
	atomic_store(&pg->replay_rounds, rp->s.gate.rounds);
	atomic_store(&pg->replay_steps, rp->s.steps);
	atomic_store(&pg->replay_fill_pairs, rp->s.fill_pairs);
	atomic_store(&pg->replay_undos, rp->s.gate.n_undo);
	atomic_store(&pg->replay_best_auc, rp->s.gate.has_best ? rp->s.gate.best_auc : NAN);
	atomic_store(&pg->replay_last_auc, rp->s.gate.last_auc);
	atomic_store(&pg->replay_idle_s, rp->s.idle_s);
}

static void pins(struct replay *rp)
{
	uint64_t trim = rp->fill_pin;

	if (rp->s.round_last && (trim == 0 || rp->s.round_first < trim))
		trim = rp->s.round_first;
	sv_store_set_pins(rp->d->store, trim,
	                  rp->s.best_version == BEST_SELF ? 0 : rp->s.best_version,
	                  rp->s.base_version == BEST_SELF ? 0 : rp->s.base_version);
}

static void state_init(struct replay *rp)
{
	memset(&rp->s, 0, sizeof(rp->s));
	sv_replay_gate_init(&rp->s.gate);
	rp->s.gate.last_auc = NAN;
}

int replay_new(struct replay **out, struct sv_daemon *d, size_t max_pairs)
{
	const struct sv_config *c = &d->conf.cfg;
	struct replay *rp;
	size_t cap;

	*out = NULL;
	rp = calloc(1, sizeof(*rp));
	if (rp == NULL)
		return -ENOMEM;
	rp->d = d;
	rp->on = c->train_replay;
	sv_config_replay_params(c, &rp->p);
	rp->fill_to = (uint32_t)(c->train_replay_fill < max_pairs ? c->train_replay_fill : max_pairs);
	rp->gate_on = c->train_replay_gate;
	state_init(rp);
	cap = rp->p.batch_pairs > max_pairs ? rp->p.batch_pairs : max_pairs;
	rp->seqs = malloc(cap * sizeof(uint64_t));
	rp->x = malloc((size_t)2 * SLICE_CHUNK * d->conf.d_in * sizeof(float));
	rp->e = malloc((size_t)2 * SLICE_CHUNK * d->conf.d_out * sizeof(float));
	if (rp->seqs == NULL || rp->x == NULL || rp->e == NULL ||
	    sv_batch_new(&rp->b, rp->p.batch_pairs, d->conf.d_in) < 0) {
		replay_free(rp);
		return -ENOMEM;
	}
	view(rp);
	*out = rp;
	return 0;
}

void replay_free(struct replay *rp)
{
	if (rp == NULL)
		return;
	sv_batch_free(rp->b);
	free(rp->seqs);
	free(rp->x);
	free(rp->e);
	free(rp->cos);
	free(rp->y);
	free(rp->avg);
	free(rp->snap_w);
	free(rp->snap_opt);
	free(rp);
}

void replay_encode(const struct replay *rp, uint8_t *out)
{
	sv_journal_replay_encode(out, &rp->s);
}

void replay_load(struct replay *rp, const void *blob, size_t len, uint64_t version)
{
	if (rp == NULL)
		return;
	state_init(rp);
	if (blob != NULL && len >= SV_JOURNAL_REPLAY_LEN &&
	    sv_journal_replay_decode(blob, len, &rp->s) < 0) {
		log_msg(LOG_WARNING, "SV-REPLAY-STATE",
		       "checkpoint v%llu: replay state unreadable; replay starts over",
		       (unsigned long long)version);
		state_init(rp);
	}
	replay_committed(rp, version);
}

void replay_committed(struct replay *rp, uint64_t v)
{
	if (rp == NULL)
		return;
	if (rp->s.best_version == BEST_SELF)
		rp->s.best_version = v;
	if (rp->s.base_version == BEST_SELF)
		rp->s.base_version = v;
	rp->fill_pin = 0;
	rp->dirty = 0;
	pins(rp);
	view(rp);
}

void replay_reset(struct replay *rp)
{
	struct sv_journal_replay keep;

	if (rp == NULL)
		return;
	keep = rp->s;
	state_init(rp);
	/* the planner's counters and the lifetime counters go on */
	rp->s.r_idle = keep.r_idle;
	rp->s.r_fill = keep.r_fill;
	rp->s.fill_used = keep.fill_used;
	rp->s.steps = keep.steps;
	rp->s.pairs = keep.pairs;
	rp->s.fill_pairs = keep.fill_pairs;
	rp->s.zero_grad = keep.zero_grad;
	rp->s.idle_s = keep.idle_s;
	rp->s.gate.n_keep = keep.gate.n_keep; /* counters in the exposition stay monotonic */
	rp->s.gate.n_go = keep.gate.n_go;
	rp->s.gate.n_undo = keep.gate.n_undo;
	rp->s.gate.n_stop = keep.gate.n_stop;
	pins(rp);
	view(rp);
}

void replay_fresh(struct replay *rp, uint64_t pos)
{
	if (rp == NULL)
		return;
	sv_replay_gate_fresh(&rp->s.gate, &rp->p, pos);
	view(rp);
}

int replay_dirty(const struct replay *rp)
{
	return rp != NULL && rp->dirty;
}

/* The oldest log sequence kept (0: empty log). */
static uint64_t log_first(sv_store_read *r)
{
	sv_store_cursor *c = NULL;
	struct sv_store_pair p;
	uint64_t first = 0;

	if (sv_store_cursor_open(r, 1, &c) == 0 && sv_store_cursor_next(c, &p) == 0)
		first = p.seq;
	sv_store_cursor_close(c);
	return first;
}

/* Add logged pair seq to b; 0 when it is a control record, gone, or names
 * an item that no longer exists. */
static int add_logged(sv_store_read *r, uint64_t seq, sv_batch *b, float *xa, float *xb)
{
	struct sv_store_pair p;

	if (sv_store_pair_get(r, seq, &p) < 0 || p.len_a == 0 ||
	    ((const char *)p.id_a)[0] == '\0')
		return 0;
	if (sv_store_item_get(r, p.id_a, p.len_a, xa) < 0 ||
	    sv_store_item_get(r, p.id_b, p.len_b, xb) < 0)
		return 0;
	return sv_batch_add(b, xa, sv_journal_item_key(p.id_a, p.len_a), xb,
	                    sv_journal_item_key(p.id_b, p.len_b), p.label, seq) == 0;
}

/* Add the n logged pairs of seqs to b. */
static size_t add_seqs(struct replay *rp, sv_store_read *r, const uint64_t *seqs, size_t n,
                       sv_batch *b)
{
	size_t d_in = rp->d->conf.d_in, got = 0;

	for (size_t i = 0; i < n; i++)
		got += (size_t)add_logged(r, seqs[i], b, rp->x, rp->x + d_in);
	return got;
}

int replay_fill_plan(struct replay *rp, uint64_t first_fresh, size_t fresh, size_t room,
                     struct sv_journal_fill *f)
{
	sv_store_read *r = NULL;
	uint64_t first = 0;
	size_t want;

	if (!rp->on || fresh >= rp->fill_to || first_fresh < 2)
		return 0;
	if (room > rp->fill_to - fresh)
		room = rp->fill_to - fresh;
	if (sv_store_read_begin(rp->d->store, &r) == 0)
		first = log_first(r);
	sv_store_read_end(r);
	if (first == 0 || first >= first_fresh)
		return 0;
	want = sv_replay_fill_count(&rp->p, first_fresh - first, rp->s.fill_used, fresh, room);
	if (want == 0)
		return 0;
	f->count = (uint32_t)want;
	f->batch_pairs = rp->p.batch_pairs;
	f->slice_every = rp->p.slice_every;
	f->seed = rp->p.seed;
	f->r = rp->s.r_fill;
	f->first = first;
	f->last = first_fresh - 1;
	return 1;
}

size_t replay_fill_take(struct replay *rp, const struct sv_journal_fill *f, sv_batch *b)
{
	struct sv_replay_params p;
	sv_store_read *r = NULL;
	size_t n = 0, got = 0, room = sv_batch_cap(b) - sv_batch_len(b);

	rp->s.r_fill = f->r + 1;
	rp->s.fill_used += f->count;
	if (rp->fill_pin == 0 || f->first < rp->fill_pin)
		rp->fill_pin = f->first;
	pins(rp);
	sv_journal_fill_params(f, &p);
	if (sv_replay_plan(&p, f->first, f->last, f->r, 0, rp->seqs, f->count < room ? f->count : room,
	                   &n) == 0 &&
	    sv_store_read_begin(rp->d->store, &r) == 0)
		got = add_seqs(rp, r, rp->seqs, n, b);
	sv_store_read_end(r);
	rp->s.fill_pairs += got;
	view(rp);
	return got;
}

/* The slice's AUC under W over the log window [first, last]
 * (sv_replay_in_slice).  *np / *nn get the class counts. */
static int slice_auc(struct replay *rp, sv_store_read *r, const float *W, uint64_t first,
                     uint64_t last, double *auc, uint64_t *np, uint64_t *nn)
{
	uint32_t d_in = rp->d->conf.d_in, d_out = rp->d->conf.d_out;
	uint64_t seq = first;
	size_t n = 0, m;
	struct sv_metrics_roc *roc = NULL;
	int rc;

	*np = *nn = 0;
	*auc = NAN;
	while (seq <= last) {
		m = 0;
		/* rp->x holds rows A then B of up to SLICE_CHUNK pairs */
		for (; seq <= last && m < SLICE_CHUNK; seq++) {
			float *xa = rp->x + m * d_in, *xb = rp->x + ((size_t)SLICE_CHUNK + m) * d_in;
			struct sv_store_pair p;

			if (!sv_replay_in_slice(&rp->p, seq) || sv_store_pair_get(r, seq, &p) < 0 || ((const char *)p.id_a)[0] == '\0' ||
			    sv_store_item_get(r, p.id_a, p.len_a, xa) < 0 ||
			    sv_store_item_get(r, p.id_b, p.len_b, xb) < 0)
				continue;
			if (n + m >= rp->cos_cap) {
				size_t cap = rp->cos_cap ? 2 * rp->cos_cap : 4096;
				float *c2 = realloc(rp->cos, cap * sizeof(float));
				uint8_t *y2;

				if (c2 == NULL)
					return -ENOMEM;
				rp->cos = c2;
				y2 = realloc(rp->y, cap);
				if (y2 == NULL)
					return -ENOMEM;
				rp->y = y2;
				rp->cos_cap = cap;
			}
			rp->y[n + m] = p.label;
			m++;
		}
		if (m == 0)
			continue;
		if (m < SLICE_CHUNK) /* close the gap: rows A then B contiguous */
			memmove(rp->x + m * d_in, rp->x + (size_t)SLICE_CHUNK * d_in,
			        m * d_in * sizeof(float));
		rc = sv_model_forward(rp->x, 2 * m, W, d_in, d_out, rp->e, NULL);
		if (rc < 0)
			return rc;
		for (size_t i = 0; i < m; i++) {
			const float *u = rp->e + i * d_out, *v = rp->e + (m + i) * d_out;
			float s = 0;

			for (uint32_t j = 0; j < d_out; j++)
				s += u[j] * v[j];
			rp->cos[n + i] = s;
		}
		n += m;
	}
	for (size_t i = 0; i < n; i++)
		*np += rp->y[i];
	*nn = n - *np;
	if (*np == 0 || *nn == 0)
		return 0;
	rc = sv_metrics_roc_new(&roc, rp->cos, rp->y, n);
	if (rc < 0)
		return rc;
	*auc = sv_metrics_roc_auc(roc);
	sv_metrics_roc_free(roc);
	return 0;
}

/* W and the optimizer state of checkpoint version (the gate's best or its
 * baseline), keeping the optimizer parameters op. */
static int restore(struct replay *rp, uint64_t version, sv_trainer *learner,
                   const struct sv_optim_params *op)
{
	size_t n = (size_t)rp->d->conf.d_in * rp->d->conf.d_out;
	struct sv_store_model m;
	sv_store_read *r = NULL;
	struct sv_optim *o = NULL;
	float *W = malloc(n * sizeof(float));
	int rc = W ? sv_store_read_begin(rp->d->store, &r) : -ENOMEM;

	if (rc == 0)
		rc = sv_store_model_get(r, version, &m);
	if (rc == 0)
		rc = sv_optim_load(&o, m.optim, m.optim_len);
	if (rc == 0) {
		sv_store_model_weights(rp->d->store, &m, W);
		rc = sv_trainer_set_optim(learner, o);
		if (rc < 0)
			sv_optim_free(o);
	}
	if (rc == 0) {
		sv_trainer_set_weights(learner, W);
		rc = sv_trainer_set_optim_params(learner, op);
	}
	sv_store_read_end(r);
	free(W);
	return rc;
}

static int set_lr(sv_trainer *learner, const struct sv_optim_params *op, double lr)
{
	struct sv_optim_params q = *op;

	q.lr = lr;
	return sv_trainer_set_optim_params(learner, &q);
}

/* Judge the slice under the current W.  Returns 2 (checkpoint) after a
 * decision that changed the state, 0 after a WAIT, or a negative code. */
static int judge(struct replay *rp, sv_store_read *r, sv_trainer *learner,
                 const struct sv_optim_params *op, uint64_t first, uint64_t last)
{
	double auc;
	uint64_t np, nn;
	int d, rc = slice_auc(rp, r, sv_trainer_weights(learner), first, last, &auc, &np, &nn);

	if (rc < 0)
		return rc;
	if (np == 0 || nn == 0)
		auc = 0.5; /* one class: WAIT below (min_slice >= 1) */
	d = sv_replay_gate_judge(&rp->s.gate, &rp->p, auc, np, nn);
	if (d < 0)
		return d;
	log_msg(LOG_INFO, "SV-REPLAY-GATE",
	       "round %u: slice AUC %.4f (%llu+/%llu-, best %.4f at round %u): %s, now %s",
	       rp->s.gate.rounds, auc, (unsigned long long)np, (unsigned long long)nn,
	       rp->s.gate.best_auc, rp->s.gate.best_round, sv_replay_decision_name(d),
	       sv_replay_state_name(rp->s.gate.state));
	if (rp->s.gate.state == SV_REPLAY_STATE_REFIT) {
		/* back to the baseline; the refit replays the best path over every pair */
		rc = restore(rp, rp->s.base_version, learner, op);
		if (rc < 0) {
			log_msg(LOG_ERR, "SV-REPLAY-REFIT",
			       "cannot restore the baseline W (v%llu): %s; replay stops with the "
			       "current W",
			       (unsigned long long)rp->s.base_version, sv_strerror(rc));
			return rc;
		}
		log_msg(LOG_INFO, "SV-REPLAY-REFIT",
		       "refit from the baseline (v%llu): %u rounds over every pair",
		       (unsigned long long)rp->s.base_version, rp->s.gate.best_path);
		rp->s.refit_round = 0;
		rp->s.best_version = 0;
		rp->s.base_version = 0;
		rp->dirty = 1;
		return 2;
	}
	switch (d) {
	case SV_REPLAY_DECISION_WAIT:
		return 0;
	case SV_REPLAY_DECISION_KEEP:
		rp->s.best_version = BEST_SELF;
		if (rp->s.gate.rounds == 0) /* the baseline: a refit starts from it */
			rp->s.base_version = BEST_SELF;
		break;
	case SV_REPLAY_DECISION_UNDO:
		rc = restore(rp, rp->s.best_version, learner, op);
		if (rc < 0) {
			log_msg(LOG_ERR, "SV-REPLAY-UNDO",
			       "cannot restore the best W (v%llu): %s; replay stops with the "
			       "current W",
			       (unsigned long long)rp->s.best_version, sv_strerror(rc));
			return rc;
		}
		break;
	default:
		break;
	}
	if (rp->s.gate.state != SV_REPLAY_STATE_RUN)
		rp->s.best_version = rp->s.base_version = 0;
	/* commit the decision now: a KEEP's BEST_SELF must name the checkpoint
	 * of this very W, not one taken after the next round's steps */
	rp->dirty = 1;
	return 2;
}

/* A refit round is done: the next, or the end of the refit. */
static void refit_round_done(struct replay *rp)
{
	struct sv_replay_gate *g = &rp->s.gate;

	rp->s.refit_round++;
	log_msg(LOG_INFO, "SV-REPLAY-REFIT", "refit round %llu of %u done",
	       (unsigned long long)rp->s.refit_round, g->best_path);
	if (rp->s.refit_round >= g->best_path)
		sv_replay_gate_refit_done(g);
}

/* Ungated (train.replay_gate off): exactly max_rounds rounds, then stop. */
static void ungated_round_done(struct replay *rp)
{
	struct sv_replay_gate *g = &rp->s.gate;

	g->rounds++;
	g->last = SV_REPLAY_DECISION_GO;
	if (g->rounds >= rp->p.max_rounds) {
		g->state = SV_REPLAY_STATE_STOPPED;
		g->last = SV_REPLAY_DECISION_STOP;
		g->window = 0;
	}
}

/* Before the averaged round: keep the state, W and the optimizer it starts
 * from, and start the mean. */
static int avg_begin(struct replay *rp, sv_trainer *learner)
{
	size_t nw = (size_t)rp->d->conf.d_in * rp->d->conf.d_out;
	size_t olen = sv_optim_saved_size(sv_trainer_optim(learner));
	long w;

	if (rp->avg == NULL)
		rp->avg = malloc(nw * sizeof(float));
	if (rp->snap_w == NULL)
		rp->snap_w = malloc(nw * sizeof(float));
	if (rp->snap_opt_len < olen) {
		free(rp->snap_opt);
		rp->snap_opt = malloc(olen);
		rp->snap_opt_len = rp->snap_opt ? olen : 0;
	}
	if (rp->avg == NULL || rp->snap_w == NULL || rp->snap_opt == NULL)
		return -ENOMEM;
	w = sv_optim_save(sv_trainer_optim(learner), rp->snap_opt, rp->snap_opt_len);
	if (w < 0)
		return (int)w;
	memcpy(rp->snap_w, sv_trainer_weights(learner), nw * sizeof(float));
	rp->snap_s = rp->s;
	rp->snap_dirty = rp->dirty;
	rp->navg = 0;
	return 0;
}

/* One more iterate in the mean (the same float operations every time). */
static void avg_add(struct replay *rp, const float *W)
{
	size_t nw = (size_t)rp->d->conf.d_in * rp->d->conf.d_out;

	rp->navg++;
	if (rp->navg == 1) {
		memcpy(rp->avg, W, nw * sizeof(float));
		return;
	}
	for (size_t i = 0; i < nw; i++)
		rp->avg[i] += (W[i] - rp->avg[i]) / (float)rp->navg;
}

/* The averaged round was interrupted: back to where it started, as if it
 * had not begun (it is redone whole later, from the same state). */
static int avg_abandon(struct replay *rp, sv_trainer *learner)
{
	struct sv_optim *o = NULL;
	double idle_s = rp->s.idle_s;
	int rc = sv_optim_load(&o, rp->snap_opt, rp->snap_opt_len);

	if (rc == 0) {
		rc = sv_trainer_set_optim(learner, o);
		if (rc < 0)
			sv_optim_free(o);
	}
	if (rc < 0)
		return rc;
	sv_trainer_set_weights(learner, rp->snap_w);
	rp->s = rp->snap_s;
	rp->s.idle_s = idle_s; /* the time was spent all the same */
	rp->dirty = rp->snap_dirty;
	return 0;
}

int replay_idle(struct replay *rp, sv_trainer *learner, const struct sv_optim_params *op,
                uint64_t applied, uint64_t deadline_ns, int (*stop)(void *), void *arg)
{
	struct sv_replay_gate *g;
	sv_store_read *r = NULL;
	uint64_t t0 = now_mono_ns(), first, steps;
	unsigned flags;
	int rc = 0, out = 0, refit, averaged, abandoned = 0;

	if (!rp->on)
		return 0;
	g = &rp->s.gate;
	if (g->state == SV_REPLAY_STATE_STOPPED)
		return 0;
	if (sv_store_read_begin(rp->d->store, &r) < 0)
		return 0;
	first = log_first(r);
	refit = g->state == SV_REPLAY_STATE_REFIT;
	flags = refit ? SV_REPLAY_PLAN_WITH_SLICE : 0;
	/* the last refit round runs whole, in this call, or is started over */
	averaged = refit && rp->p.refit_average && rp->s.refit_round + 1 >= g->best_path &&
	           rp->s.round_last == 0; /* (a round begun elsewhere goes on unaveraged) */
	if (rp->s.round_last == 0) {
		/* between rounds: judge (or, ungated, start) */
		if (first == 0 || applied <= first)
			goto out;
		if (refit) {
			if (rp->s.refit_round >= g->best_path) { /* nothing left (a restart) */
				sv_replay_gate_refit_done(g);
				rp->dirty = 1;
				out = 2;
				goto out;
			}
		} else if (!rp->gate_on) {
			if (g->state == SV_REPLAY_STATE_WAIT) {
				g->state = SV_REPLAY_STATE_RUN;
				g->rounds = 0;
			}
		} else if (g->state == SV_REPLAY_STATE_WAIT || !g->has_best) {
			if (rp->judged_at == applied)
				goto out;
			rp->judged_at = applied;
			out = rc = judge(rp, r, learner, op, first, applied);
			if (rc != 0 || g->state != SV_REPLAY_STATE_RUN)
				goto out;
		}
		if (averaged) {
			rc = avg_begin(rp, learner);
			if (rc < 0)
				goto out;
		}
		rp->s.round_first = first;
		rp->s.round_last = applied;
		rp->s.round_done = 0;
		/* the planner's round e is r / S: start on a round of this window */
		steps = sv_replay_round_steps_of(&rp->p, first, applied, flags);
		rp->s.r_idle = (rp->s.r_idle + steps - 1) / steps * steps;
	}
	steps = sv_replay_round_steps_of(&rp->p, rp->s.round_first, rp->s.round_last, flags);
	rc = set_lr(learner, op,
	            refit ? sv_replay_gate_refit_lr(g, &rp->p, op->lr, (uint32_t)rp->s.refit_round)
	                  : sv_replay_gate_lr(g, &rp->p, op->lr));
	while (rc == 0 && rp->s.round_done < steps) {
		size_t n = 0, got;
		struct sv_step_stats st;

		rc = sv_replay_plan(&rp->p, rp->s.round_first, rp->s.round_last, rp->s.r_idle, flags,
		                    rp->seqs, rp->p.batch_pairs, &n);
		if (rc < 0)
			break;
		rp->s.r_idle++;
		rp->s.round_done++;
		sv_batch_clear(rp->b);
		got = add_seqs(rp, r, rp->seqs, n, rp->b);
		if (got >= 2) {
			rc = sv_trainer_step(learner, rp->b, NULL, &st);
			if (rc < 0)
				break;
			rp->s.steps++;
			rp->s.pairs += got;
			rp->s.zero_grad += st.grad_norm == 0.0;
			if (averaged)
				avg_add(rp, sv_trainer_weights(learner));
			atomic_fetch_add(&rp->d->cnt.steps, 1);
			if (st.grad_norm == 0.0)
				atomic_fetch_add(&rp->d->cnt.zero_grad_steps, 1);
		}
		rp->dirty = 1;
		out = 1;
		if ((!averaged && now_mono_ns() >= deadline_ns) || (stop && stop(arg)) ||
		    atomic_load(&rp->d->stopping))
			break;
	}
	if (rc == 0 && averaged && rp->s.round_done < steps) {
		rc = avg_abandon(rp, learner);
		abandoned = 1;
		if (rc == 0) {
			log_msg(LOG_INFO, "SV-REPLAY-REFIT",
			       "the averaged last refit round was interrupted; it starts over");
			out = 1;
		}
	}
	if (rc == 0)
		rc = sv_trainer_set_optim_params(learner, op);
	else
		sv_trainer_set_optim_params(learner, op);
	if (rc == 0 && !abandoned && rp->s.round_done >= steps) {
		rp->s.round_last = 0;
		if (refit) {
			if (averaged && rp->navg > 0)
				sv_trainer_set_weights(learner, rp->avg);
			refit_round_done(rp);
		} else if (rp->gate_on) {
			rc = judge(rp, r, learner, op, rp->s.round_first, applied);
		} else {
			ungated_round_done(rp);
			log_msg(LOG_INFO, "SV-REPLAY-ROUND", "ungated round %u of %u done", g->rounds,
			       rp->p.max_rounds);
		}
		if (rc >= 0)
			out = rc = 2;
	}
out:
	sv_store_read_end(r);
	rp->s.idle_s += (double)(now_mono_ns() - t0) * 1e-9;
	if (rc < 0) {
		log_msg(LOG_ERR, "SV-REPLAY-FAIL", "idle replay failed: %s; stopped until fresh pairs",
		       sv_strerror(rc));
		g->state = SV_REPLAY_STATE_STOPPED;
		g->window = 0;
		rp->s.round_last = 0;
		out = rp->dirty ? 2 : rc;
	}
	pins(rp);
	view(rp);
	return out;
}
