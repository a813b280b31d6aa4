/* trainer.c - the trainer thread: recovery (load + replay), batching,
 * training, snapshots, checkpoints, the control verbs and the loop (see
 * trainer.h).
 *
 * Leaves out: reading and committing ingest messages (ingest.c), the
 * recovery format (sv/journal.h), queries (query.c), the admin verbs that
 * need no writer (admin.c).
 */
#include "trainer.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "cluster.h"
#include "debug.h"
#include "ingest.h"
#include "log.h"
#include "monitor.h"
#include "parts.h"
#include "replay.h"
#include "reply.h"
#include "sv/batch.h"
#include "sv/blas.h"
#include "sv/error.h"
#include "sv/journal.h"
#include "sv/proto.h"
#include "sv/store.h"
#include "sv/train.h"
#include "topk_cache.h"
#include "util.h"

/* The step runner's queue: at most RUN_DEPTH batches, and no more than
 * RUN_BYTES of their vectors (big batches get a shorter queue).  Four batches
 * of 256 pairs are a group of 1024: the trainer commits the next group while
 * the runner trains the last one's. */
#define RUN_DEPTH 4
#define RUN_BYTES ((size_t)64 << 20)

struct trainer {
	struct sv_daemon *d;
	sv_trainer *learner; /* W, the optimizer, the step (sv/train.h) */
	sv_batch *batch;     /* the batch being filled (trainer thread) */
	size_t n_fill;       /* replayed pairs at its end (replay.h: fill) */
	uint64_t batch_first; /* log seq of its first pair */
	struct replay *rp;   /* fill, idle rounds, the gate (replay.h) */
	uint64_t fresh_ns;   /* monotonic ns of the last ingest group with input */
	uint64_t replay_after_ns; /* no idle replay before (a failed commit) */
	struct ingest *ing;       /* the ingest pipeline and the group in hand */
	struct monitor *mon; /* prequential metrics and the threshold */

	/* The step runner: trains the handed-over batches (a queue of up to
	 * run_depth, in order) while the trainer thread goes on reading,
	 * committing and filling the next one.  While run_n > 0 the runner owns
	 * learner, mon, scores, applied_seq, pairs_seen and last_loss; the
	 * trainer thread calls step_wait() before touching them.  Slot
	 * run_head is the one training; the slots past the queued ones hold
	 * empty batches to swap with. */
	sv_batch *run_q[RUN_DEPTH];
	size_t run_fill[RUN_DEPTH];
	unsigned run_depth, run_head, run_n;
	pthread_t run_th;
	int run_started, run_quit;
	pthread_mutex_t run_mu;
	pthread_cond_t run_cv;

	size_t max_pairs;
	uint32_t B;                /* batch size in force */
	struct sv_optim_params op; /* optimizer parameters in force */
	uint32_t ckpt_steps;       /* live copies of the checkpoint intervals */
	uint64_t ckpt_ms;
	uint32_t wait_ms;          /* live train.max_wait_ms */
	unsigned live_gen;
	uint64_t base_steps;  /* steps of the loaded checkpoint */
	uint64_t version;     /* active checkpoint version (0: none) */
	uint64_t applied_seq; /* last log record whose effect is in W */
	uint64_t pairs_seen;
	uint64_t batch_t0; /* monotonic ns of the batch's first pair */
	uint64_t rate_t, rate_pairs; /* pairs_per_second: last tick (ns), logged then */
	uint64_t last_ckpt_ns, ckpt_steps_at;
	double last_loss;
	float *scores;

	void *ctl; /* REP on SV_CTL_ENDPOINT: admin verbs that need the writer */
	pthread_t th;
	int started;
	struct sv_proto_limits lim;
	struct sv_proto_msgbuf mb;
};

/* ---- training ----------------------------------------------------------- */

static void publish(struct trainer *t)
{
	struct sv_daemon *d = t->d;
	struct sv_snap *s;

	if (d->conf.cfg.cluster_role == SV_CONFIG_ROLE_REPLICA && (s = snap_get(&d->snap)) != NULL) {
		snap_unref(s); /* a replica's model comes from the models bucket (cluster.c) */
		return;
	}
	s = snap_new(d->conf.d_in, d->conf.d_out, sv_trainer_weights(t->learner));

	atomic_store(&d->prog.steps, t->base_steps + sv_trainer_steps(t->learner));
	atomic_store(&d->prog.applied_seq, t->applied_seq);
	atomic_store(&d->prog.pairs_seen, t->pairs_seen);
	atomic_store(&d->prog.model_version, t->version);
	if (s == NULL) {
		log_msg(LOG_ERR, "SV-TRAIN-NOMEM",
		       "no memory for a model snapshot; queries keep the previous one");
		return;
	}
	s->version = t->version;
	s->steps = t->base_steps + sv_trainer_steps(t->learner);
	s->applied_seq = t->applied_seq;
	s->threshold = monitor_threshold(t->mon);
	s->policy = monitor_policy(t->mon);
	atomic_store(&d->prog.threshold, s->threshold);
	snap_publish(&d->snap, s);
}

/* Train on batch b (if not empty; its last n_fill pairs replayed, the rest
 * fresh) and clear it; then, unless recovering, publish a snapshot.  Runs
 * on the trainer thread (recovery, or no runner) or on the runner. */
static void train_batch(struct trainer *t, sv_batch *b, size_t n_fill, int replay)
{
	struct sv_step_stats st;
	struct sv_pair_labels lab;
	size_t n = sv_batch_len(b), fresh = n - n_fill;
	uint64_t last;
	int rc;

	if (n == 0)
		return;
	last = sv_batch_last_seq(b);
	sv_batch_labels(b, &lab);
	debug_step_delay();
	rc = sv_trainer_step(t->learner, b, t->scores, &st);
	if (rc < 0) {
		atomic_fetch_add(&t->d->cnt.step_failures, 1);
		log_msg(LOG_WARNING, "SV-TRAIN-STEP",
		       "step on %zu pairs (seq ..%llu) failed: %s; W unchanged, batch dropped", n,
		       (unsigned long long)last, sv_strerror(rc));
	} else {
		monitor_add(t->mon, t->d, t->scores, lab.y, fresh, st.loss.loss); /* fresh only */
		t->last_loss = st.loss.loss;
		atomic_store(&t->d->prog.loss, st.loss.loss);
		atomic_store(&t->d->prog.grad_norm, st.grad_norm);
		atomic_fetch_add(&t->d->cnt.steps, 1);
		atomic_fetch_add(&t->d->cnt.contradictions, st.loss.contradictions);
		if (st.grad_norm == 0.0)
			atomic_fetch_add(&t->d->cnt.zero_grad_steps, 1);
		t->pairs_seen += fresh;
	}
	if (last > t->applied_seq)
		t->applied_seq = last;
	if (rc >= 0)
		replay_fresh(t->rp, t->applied_seq);
	sv_batch_clear(b);
	if (!replay) {
		atomic_fetch_sub(&t->d->prog.backlog, fresh);
		publish(t);
	}
}

static void *runner_main(void *arg)
{
	struct trainer *t = arg;

	pthread_setname_np(pthread_self(), "sv-step-runner");
	pthread_mutex_lock(&t->run_mu);
	for (;;) {
		unsigned h;

		while (t->run_n == 0 && !t->run_quit)
			pthread_cond_wait(&t->run_cv, &t->run_mu);
		if (t->run_n == 0)
			break;
		h = t->run_head;
		pthread_mutex_unlock(&t->run_mu);
		train_batch(t, t->run_q[h], t->run_fill[h], 0);
		pthread_mutex_lock(&t->run_mu);
		t->run_head = (h + 1) % t->run_depth;
		t->run_n--;
		pthread_cond_broadcast(&t->run_cv);
	}
	pthread_mutex_unlock(&t->run_mu);
	return NULL;
}

/* Wait until the runner has trained every batch handed to it: then the
 * trainer thread owns every piece of training state again. */
static void step_wait(struct trainer *t)
{
	if (!t->run_started)
		return;
	pthread_mutex_lock(&t->run_mu);
	while (t->run_n > 0)
		pthread_cond_wait(&t->run_cv, &t->run_mu);
	pthread_mutex_unlock(&t->run_mu);
}

/* Start the runner (thread_main does; replay trains inline).  Without it
 * every step runs on the trainer thread. */
static void runner_start(struct trainer *t)
{
	size_t bytes = t->max_pairs * 2 * (size_t)t->d->conf.d_in * sizeof(float);

	/* as deep as a group of 1024 pairs needs, within RUN_BYTES of vectors */
	t->run_depth = RUN_DEPTH;
	while (t->run_depth > 1 && t->run_depth * bytes > RUN_BYTES)
		t->run_depth--;
	for (unsigned i = 0; i < t->run_depth; i++)
		if (sv_batch_new(&t->run_q[i], t->max_pairs, t->d->conf.d_in) < 0) {
			log_msg(LOG_WARNING, "SV-TRAIN-RUNNER",
			       "no memory for the runner's batches; training on the trainer thread");
			for (unsigned j = 0; j < i; j++)
				sv_batch_free(t->run_q[j]);
			t->run_depth = 0;
			return;
		}
	pthread_mutex_init(&t->run_mu, NULL);
	pthread_cond_init(&t->run_cv, NULL);
	t->run_head = t->run_n = 0;
	t->run_quit = 0;
	if (pthread_create(&t->run_th, NULL, runner_main, t) != 0) {
		log_msg(LOG_WARNING, "SV-TRAIN-RUNNER",
		       "cannot start the step runner; training on the trainer thread");
		pthread_mutex_destroy(&t->run_mu);
		pthread_cond_destroy(&t->run_cv);
		return;
	}
	t->run_started = 1;
}

static void runner_stop(struct trainer *t)
{
	if (!t->run_started)
		return;
	pthread_mutex_lock(&t->run_mu);
	t->run_quit = 1;
	pthread_cond_broadcast(&t->run_cv);
	pthread_mutex_unlock(&t->run_mu);
	pthread_join(t->run_th, NULL);
	pthread_mutex_destroy(&t->run_mu);
	pthread_cond_destroy(&t->run_cv);
	t->run_started = 0;
}

/* Train on the batch in hand (if any): queue it for the runner (waiting
 * while its queue is full, which is what passes backpressure on) and go on
 * with an empty one, or train it here when replaying or without a runner. */
static void step(struct trainer *t, int replay)
{
	if (sv_batch_len(t->batch) == 0)
		return;
	if (replay || !t->run_started) {
		train_batch(t, t->batch, t->n_fill, replay);
	} else {
		sv_batch *b;
		unsigned slot;

		pthread_mutex_lock(&t->run_mu);
		while (t->run_n == t->run_depth)
			pthread_cond_wait(&t->run_cv, &t->run_mu);
		slot = (t->run_head + t->run_n) % t->run_depth;
		b = t->run_q[slot];
		t->run_q[slot] = t->batch;
		t->batch = b;
		t->run_fill[slot] = t->n_fill;
		t->run_n++;
		pthread_cond_signal(&t->run_cv);
		pthread_mutex_unlock(&t->run_mu);
	}
	t->n_fill = 0;
}

/* Add a committed pair to the batch; a full batch (B pairs) trains at once.
 * replay: during recovery (no snapshot per step). */
static int batch_add(struct trainer *t, const float *xa, uint64_t ka, const float *xb,
                     uint64_t kb, uint8_t y, uint64_t seq, int replay)
{
	int rc;

	if (sv_batch_len(t->batch) == 0) {
		t->batch_t0 = now_mono_ns();
		t->batch_first = seq;
	}
	rc = sv_batch_add(t->batch, xa, ka, xb, kb, y, seq);
	if (rc < 0)
		return rc;
	if (!replay)
		atomic_fetch_add(&t->d->prog.backlog, 1);
	if (sv_batch_len(t->batch) >= t->B)
		step(t, replay);
	return 0;
}

static int same_params(const struct sv_optim_params *a, const struct sv_optim_params *b)
{
	return a->lr == b->lr && a->momentum == b->momentum && a->dampening == b->dampening &&
	       a->nesterov == b->nesterov && a->weight_decay == b->weight_decay &&
	       a->beta1 == b->beta1 && a->beta2 == b->beta2 && a->eps == b->eps;
}

/* Optimizer hyperparameters (the kind stays). */
static void set_params(struct trainer *t, const struct sv_optim_params *p)
{
	struct sv_optim_params q = *p;
	int rc;

	q.kind = sv_trainer_optim(t->learner)->p.kind;
	if (same_params(&q, &t->op))
		return;
	rc = sv_trainer_set_optim_params(t->learner, &q);
	if (rc < 0) {
		log_msg(LOG_ERR, "SV-TRAIN-PARAMS",
		       "optimizer parameters (lr %g) refused: %s; keeping lr %g", q.lr,
		       sv_strerror(rc), t->op.lr);
		return;
	}
	t->op = q;
}

static uint32_t clamp_batch(struct trainer *t, uint32_t B)
{
	if (B == 0)
		B = 1;
	if (B > t->max_pairs) {
		log_msg(
		    LOG_WARNING, "SV-TRAIN-BATCHMAX",
		    "batch size %u above the largest this daemon was started for (%zu); using %zu",
		    B, t->max_pairs, t->max_pairs);
		B = (uint32_t)t->max_pairs;
	}
	return B;
}

/* A control record: train what is accumulated, then take its settings. */
static void apply_ctl(struct trainer *t, const struct sv_journal_settings *s, uint64_t seq,
                      int replay)
{
	step(t, replay);
	step_wait(t);
	t->B = clamp_batch(t, s->batch_size);
	set_params(t, &s->optim);
	if (seq > t->applied_seq)
		t->applied_seq = seq;
	/* the step published the batch's last pair, which for a filled batch is
	 * an old one: STATUS shows the cut */
	if (!replay)
		atomic_store(&t->d->prog.applied_seq, t->applied_seq);
}

static int commit_replay(struct trainer *t);

/* Log a control record (own group) and apply it: cut the batch, then B and
 * the optimizer parameters op.  A batch cut short is filled with replayed
 * pairs first (replay.h), with the fill record in the same group. */
static int cut(struct trainer *t, uint32_t B, const struct sv_optim_params *op, const char *why)
{
	struct sv_journal_settings s = {.batch_size = B, .optim = *op};
	struct sv_journal_fill f;
	sv_store_txn *txn = NULL;
	uint64_t seq = 0, fseq = 0;
	size_t k = sv_batch_len(t->batch);
	int rc, fill = 0;

	rc = commit_replay(t);
	if (rc < 0)
		return rc;
	if (k > 0) {
		step_wait(t); /* the runner's step may move the gate */
		fill = replay_fill_plan(t->rp, t->batch_first, k, sv_batch_cap(t->batch) - k, &f);
	}
	rc = sv_store_txn_begin(t->d->store, &txn);
	if (rc == 0 && fill)
		rc = sv_journal_fill_append(txn, &f, &fseq);
	if (rc == 0)
		rc = sv_journal_cut_append(txn, &s, &seq);
	if (rc == 0) {
		rc = sv_store_txn_commit(txn);
		txn = NULL;
	}
	sv_store_txn_abort(txn);
	if (rc < 0) {
		/* W stays a function of the log: without the record, no cut. */
		log_msg(LOG_ERR, "SV-STORE-CUT", "cannot log the batch cut (%s): %s; batch kept",
		       why, sv_strerror(rc));
		return rc;
	}
	atomic_store(&t->d->prog.last_seq, seq);
	if (fill)
		t->n_fill = replay_fill_take(t->rp, &f, t->batch);
	apply_ctl(t, &s, seq, 0);
	return 0;
}

/* ---- checkpoints -------------------------------------------------------- */

static int save_checkpoint(struct trainer *t, const char *why, uint64_t *version_out)
{
	struct sv_daemon *d = t->d;
	struct sv_store_model m = {0};
	const struct sv_optim *o = sv_trainer_optim(t->learner);
	size_t olen = sv_optim_saved_size(o);
	struct sv_journal_settings cur = {.batch_size = t->B, .optim = t->op};
	uint8_t settings[SV_JOURNAL_CKPT_LEN + SV_JOURNAL_REPLAY_LEN];
	size_t clen = monitor_calib_size(t->mon);
	void *obuf = malloc(olen + clen);
	void *calib = (char *)obuf + olen;
	sv_store_txn *txn = NULL;
	uint64_t v = 0;
	long w;
	int rc;

	if (obuf == NULL)
		return -ENOMEM;
	w = sv_optim_save(o, obuf, olen);
	if (w < 0) {
		rc = (int)w;
		goto out;
	}
	olen = (size_t)w;
	sv_journal_ckpt_encode(settings, &cur, t->pairs_seen);
	replay_encode(t->rp, settings + SV_JOURNAL_CKPT_LEN);
	w = monitor_calib_save(t->mon, calib, clen);
	if (w < 0) {
		rc = (int)w;
		goto out;
	}
	m.calib_len = (size_t)w;
	m.step = t->base_steps + sv_trainer_steps(t->learner);
	m.applied_seq = t->applied_seq;
	m.loss = t->last_loss;
	m.auc = atomic_load(&d->prog.auc);
	m.eer = atomic_load(&d->prog.eer);
	m.W = sv_trainer_weights(t->learner);
	m.optim = obuf;
	m.optim_len = olen;
	m.settings = settings;
	m.settings_len = sizeof(settings);
	m.calib = calib;
	rc = sv_store_txn_begin(d->store, &txn);
	if (rc == 0)
		rc = sv_store_checkpoint_put(txn, &m, &v);
	if (rc == 0)
		rc = sv_store_set_active(txn, v);
	if (rc == 0) {
		rc = sv_store_txn_commit(txn);
		txn = NULL;
	}
	sv_store_txn_abort(txn);
out:
	free(obuf);
	if (rc < 0) {
		log_msg(LOG_ERR, "SV-CKPT-FAIL", "checkpoint (%s) failed: %s; training continues",
		       why, sv_strerror(rc));
		return rc;
	}
	t->version = v;
	t->last_ckpt_ns = now_mono_ns();
	atomic_store(&d->prog.ckpt_unix_ns, now_real_ns());
	t->ckpt_steps_at = t->base_steps + sv_trainer_steps(t->learner);
	atomic_fetch_add(&d->cnt.checkpoints, 1);
	atomic_store(&d->prog.model_version, v);
	log_msg(LOG_INFO, "SV-CKPT-SAVED", "checkpoint v%llu (%s): step %llu, applied_seq %llu",
	       (unsigned long long)v, why, (unsigned long long)m.step,
	       (unsigned long long)m.applied_seq);
	if (version_out)
		*version_out = v;
	publish(t);
	replay_committed(t->rp, v); /* after the snapshot: STATUS then shows W's replay state */
	cluster_note_checkpoint(atomic_load(&d->cluster), v);
	return 0;
}

/* Checkpoint once the runner's batch (if any) is trained. */
static int checkpoint(struct trainer *t, const char *why, uint64_t *version_out)
{
	if (t->d->conf.cfg.cluster_role == SV_CONFIG_ROLE_REPLICA)
		return 0; /* a replica trains nothing; its models live in the bucket */
	step_wait(t);
	return save_checkpoint(t, why, version_out);
}

static int load_model(struct trainer *t, const struct sv_store_model *m);
static int recover_log(struct trainer *t);

/* Idle replay steps are in W but not in the store: checkpoint them before
 * anything is logged or trained on top (replay.h).  When that checkpoint
 * cannot be written (a full store), the steps are dropped instead: W is
 * recovered as at start (the active checkpoint, then the log after it), and
 * idle replay waits REPLAY_BACKOFF_NS. */
#define REPLAY_BACKOFF_NS 10000000000ULL

static int commit_replay(struct trainer *t)
{
	struct sv_store_model m;
	sv_store_read *r = NULL;
	int rc;

	if (!replay_dirty(t->rp))
		return 0;
	if (!debug_replay_commit_fail() && save_checkpoint(t, "replay", NULL) == 0)
		return 0;
	t->replay_after_ns = now_mono_ns() + REPLAY_BACKOFF_NS;
	rc = sv_store_read_begin(t->d->store, &r);
	if (rc == 0)
		rc = sv_store_model_get(r, 0, &m);
	if (rc == 0)
		rc = load_model(t, &m);
	sv_store_read_end(r);
	if (rc == 0)
		rc = recover_log(t); /* the batch is empty: idle replay needs it so */
	log_msg(rc == 0 ? LOG_WARNING : LOG_ERR, "SV-REPLAY-DROP",
	       rc == 0 ? "idle replay steps dropped: W recovered from v%llu and the log"
	               : "idle replay steps cannot be dropped (v%llu and the log unreadable); "
	                 "ingest waits",
	       (unsigned long long)t->version);
	if (rc == 0)
		publish(t);
	return rc;
}

/* The initial W is a function of model.init and model.seed, and a log
 * replayed without a checkpoint starts from it: the store keeps both (the
 * marks below, written by the first start without a model) and a start
 * that gives others before any checkpoint is refused.  A store written
 * before the marks existed is not checked. */
#define MARK_INIT "model.init"
#define MARK_SEED "model.seed"

static int pin_initial_w(struct trainer *t)
{
	struct sv_daemon *d = t->d;
	uint64_t init = 0, seed = 0, want_init = (uint64_t)d->conf.cfg.model_init;
	sv_store_read *r = NULL;
	sv_store_txn *w = NULL;
	int rc = sv_store_read_begin(d->store, &r), have;

	if (rc == 0)
		rc = sv_store_mark_get(r, MARK_INIT, &init);
	have = rc == 0;
	if (rc == 0)
		rc = sv_store_mark_get(r, MARK_SEED, &seed);
	sv_store_read_end(r);
	if (have && rc == 0 && (init != want_init || seed != d->conf.seed)) {
		const char *const *name = sv_config_find(MARK_INIT)->words, *was = "?";

		for (uint64_t k = 0; name[k]; k++)
			was = k == init ? name[k] : was;

		log_msg(LOG_ERR, "SV-RECOVER-INIT",
		        "the store's log starts from the W of model.init %s, model.seed %llu, and "
		        "has no checkpoint yet; the configuration gives model.init %s, model.seed "
		        "%llu: put those back, see simverifyd.yaml(5)",
		        was, (unsigned long long)seed, name[want_init],
		        (unsigned long long)d->conf.seed);
		return SV_ERR_STATE;
	}
	if (rc != SV_ERR_NOTFOUND)
		return rc;
	rc = sv_store_txn_begin(d->store, &w);
	if (rc == 0)
		rc = sv_store_mark_put(w, MARK_INIT, want_init);
	if (rc == 0)
		rc = sv_store_mark_put(w, MARK_SEED, d->conf.seed);
	if (rc == 0)
		return sv_store_txn_commit(w);
	if (w != NULL)
		sv_store_txn_abort(w);
	return rc;
}

/* Load checkpoint m into the trainer (W, optimizer, settings, calibration). */
static int load_model(struct trainer *t, const struct sv_store_model *m)
{
	size_t n = (size_t)t->d->conf.d_in * t->d->conf.d_out;
	float *W = malloc(n * sizeof(float));
	struct sv_optim *o = NULL;
	int rc;

	if (W == NULL)
		return -ENOMEM;
	sv_store_model_weights(t->d->store, m, W);
	sv_trainer_set_weights(t->learner, W);
	free(W);
	rc = sv_optim_load(&o, m->optim, m->optim_len);
	if (rc == 0 && o->p.kind != sv_trainer_optim(t->learner)->p.kind) {
		log_msg(LOG_WARNING, "SV-RECOVER-OPTIM",
		       "checkpoint optimizer kind %d differs from train.optimizer; starting a "
		       "fresh optimizer state",
		       (int)o->p.kind);
		sv_optim_free(o);
		o = NULL;
	}
	if (rc == 0 && o != NULL) {
		struct sv_optim_params op = o->p;

		rc = sv_trainer_set_optim(t->learner, o);
		if (rc < 0)
			sv_optim_free(o);
		else
			t->op = op;
	}
	if (rc < 0)
		return rc;
	{
		struct sv_journal_settings s = {.batch_size = t->B, .optim = t->op};

		rc = sv_journal_ckpt_decode(m->settings, m->settings_len, &s, &t->pairs_seen);
		if (rc < 0) {
			log_msg(LOG_ERR, "SV-RECOVER-SETTINGS",
			       "checkpoint v%llu: settings blob of %zu bytes unreadable: %s",
			       (unsigned long long)m->version, m->settings_len, sv_strerror(rc));
			return rc;
		}
		t->B = clamp_batch(t, s.batch_size);
		set_params(t, &s.optim);
		if (m->settings_len > SV_JOURNAL_CKPT_LEN)
			replay_load(t->rp, (const uint8_t *)m->settings + SV_JOURNAL_CKPT_LEN,
			            m->settings_len - SV_JOURNAL_CKPT_LEN, m->version);
		else
			replay_load(t->rp, NULL, 0, m->version);
	}
	if (m->calib_len > 0 && monitor_calib_load(t->mon, t->d, m->calib, m->calib_len) < 0)
		log_msg(LOG_WARNING, "SV-RECOVER-CALIB",
		       "checkpoint v%llu has an unreadable calibration; starting an empty metrics "
		       "window",
		       (unsigned long long)m->version);
	t->base_steps = m->step - sv_trainer_steps(t->learner);
	t->version = m->version;
	atomic_store(&t->d->prog.ckpt_unix_ns, m->time_ns);
	t->applied_seq = m->applied_seq;
	return 0;
}

/* ---- recovery ----------------------------------------------------------- */

static int recover_pair(void *arg, const float *xa, uint64_t ka, const float *xb, uint64_t kb,
                        uint8_t y, uint64_t seq)
{
	return batch_add(arg, xa, ka, xb, kb, y, seq, 1);
}

static int recover_cut(void *arg, const struct sv_journal_settings *s, uint64_t seq)
{
	apply_ctl(arg, s, seq, 1);
	return 0;
}

static int recover_fill(void *arg, const struct sv_journal_fill *f, uint64_t seq)
{
	struct trainer *t = arg;

	(void)seq;
	t->n_fill += replay_fill_take(t->rp, f, t->batch);
	return 0;
}

/* Replay the log after the checkpoint through the same batching. */
static int recover_log(struct trainer *t)
{
	struct sv_journal_sink sink = {
	    .arg = t, .pair = recover_pair, .cut = recover_cut, .fill = recover_fill};
	struct sv_journal_stats st;
	uint64_t from = t->applied_seq + 1;
	int rc = sv_journal_replay(t->d->store, from, &sink, &st);

	if (rc < 0) {
		if (st.bad_seq)
			log_msg(LOG_ERR, "SV-RECOVER-JOURNAL",
			       "control record at seq %llu of the pair log is unreadable: %s; "
			       "the store is damaged (restore a backup)",
			       (unsigned long long)st.bad_seq, sv_strerror(rc));
		else
			log_msg(LOG_ERR, "SV-RECOVER-REPLAY",
			       "replay of the pair log from seq %llu failed: %s",
			       (unsigned long long)from, sv_strerror(rc));
		return rc;
	}
	if (st.skipped)
		log_msg(LOG_WARNING, "SV-RECOVER-NOITEM",
		       "%llu logged pairs name items that no longer exist; skipped in replay",
		       (unsigned long long)st.skipped);
	log_msg(LOG_INFO, "SV-RECOVER-REPLAY",
	       "replayed %llu pairs after seq %llu: %llu steps total, applied_seq %llu, %zu pairs "
	       "in the open batch",
	       (unsigned long long)st.pairs, (unsigned long long)(from - 1),
	       (unsigned long long)(t->base_steps + sv_trainer_steps(t->learner)),
	       (unsigned long long)t->applied_seq, sv_batch_len(t->batch));
	return 0;
}

int trainer_open(struct trainer **out, struct sv_daemon *d)
{
	struct trainer *t = calloc(1, sizeof(*t));
	struct sv_train_params tp = {0};
	struct sv_store_model m;
	sv_store_read *r = NULL;
	uint64_t last = 0;
	int rc, have_model = 0;

	if (t == NULL)
		return -ENOMEM;
	t->d = d;
	t->max_pairs =
	    d->conf.batch_max > d->conf.live.batch_size ? d->conf.batch_max : d->conf.live.batch_size;
	t->B = d->conf.live.batch_size;
	t->op = d->conf.live.optim;
	t->ckpt_steps = d->conf.live.ckpt_steps;
	t->ckpt_ms = d->conf.live.ckpt_ms;
	t->wait_ms = d->conf.live.max_wait_ms;
	t->last_loss = NAN;
	t->live_gen = atomic_load(&d->live_gen);
	/* BLAS threads of the trainer (train.threads); queries share the pool */
	sv_blas_set_threads((int)d->conf.cfg.train_threads);
	tp.d_in = d->conf.d_in;
	tp.d_out = d->conf.d_out;
	tp.init = (enum sv_model_init)d->conf.cfg.model_init;
	tp.seed = d->conf.seed;
	tp.max_pairs = t->max_pairs;
	tp.loss = d->conf.loss;
	tp.optim = d->conf.live.optim;
	t->lim = d->conf.live.lim;
	sv_proto_msgbuf_init(&t->mb);
	rc = sv_trainer_new(&t->learner, &tp, NULL);
	if (rc == 0)
		rc = sv_batch_new(&t->batch, t->max_pairs, d->conf.d_in);
	if (rc == 0)
		rc = -ENOMEM * ((t->scores = malloc(t->max_pairs * sizeof(float))) == NULL);
	if (rc == 0)
		rc = monitor_new(&t->mon, &d->conf);
	if (rc == 0)
		rc = replay_new(&t->rp, d, t->max_pairs);
	if (rc == 0)
		rc = ingest_new(&t->ing, d);
	if (rc < 0) {
		log_msg(LOG_ERR, "SV-TRAIN-INIT", "cannot set up the trainer: %s", sv_strerror(rc));
		goto fail;
	}
	rc = sv_store_read_begin(d->store, &r);
	if (rc == 0) {
		rc = sv_store_model_get(r, 0, &m);
		if (rc == 0) {
			rc = load_model(t, &m);
			have_model = rc == 0;
		} else if (rc == SV_ERR_NOTFOUND) {
			rc = 0;
		}
		if (rc == 0)
			rc = sv_store_last_seq(r, &last);
	}
	sv_store_read_end(r);
	if (rc < 0) {
		log_msg(LOG_ERR, "SV-RECOVER-LOAD", "cannot load the active model: %s",
		       sv_strerror(rc));
		goto fail;
	}
	atomic_store(&d->prog.last_seq, last);
	if (have_model)
		log_msg(LOG_INFO, "SV-RECOVER-LOAD",
		       "loaded model v%llu: step %llu, applied_seq %llu, log ends at %llu",
		       (unsigned long long)t->version, (unsigned long long)t->base_steps,
		       (unsigned long long)t->applied_seq, (unsigned long long)last);
	else
		log_msg(LOG_INFO, "SV-RECOVER-NEW",
		       "no model in the store: W from seed %llu, log ends at %llu",
		       (unsigned long long)d->conf.seed, (unsigned long long)last);
	if (!have_model) {
		rc = pin_initial_w(t);
		if (rc < 0 && rc != SV_ERR_STATE)
			log_msg(LOG_ERR, "SV-RECOVER-INIT",
			        "cannot read or keep the initial W's settings: %s",
			        sv_strerror(rc));
		if (rc < 0)
			goto fail;
	}
	rc = recover_log(t);
	if (rc < 0)
		goto fail;
	atomic_store(&d->prog.backlog, sv_batch_len(t->batch)); /* replay leaves a partial batch */
	/* The configuration may have changed B or the optimizer parameters
	 * while we were down: log it, so a later replay changes them at the same
	 * point. */
	{
		struct sv_optim_params want = d->conf.live.optim;

		want.kind = t->op.kind;
		if (t->B != clamp_batch(t, d->conf.live.batch_size) || !same_params(&want, &t->op))
			rc = cut(t, clamp_batch(t, d->conf.live.batch_size), &want, "configuration");
		if (rc < 0)
			goto fail;
	}
	t->last_ckpt_ns = now_mono_ns();
	t->ckpt_steps_at = t->base_steps + sv_trainer_steps(t->learner);
	publish(t);
	*out = t;
	return 0;
fail:
	trainer_close(t);
	return rc;
}

/* ---- control (admin verbs that must run on the writer) ------------------ */

static void ctl_reply(struct trainer *t, const struct sv_proto_request *rq, int status,
                      const char *msg, const char *payload)
{
	if (status != SV_PROTO_STATUS_OK ||
	    sv_proto_encode_reply_admin(&t->mb, rq->hdr.verb, rq->hdr.request_id, status, msg,
	                                payload, payload ? strlen(payload) : 0) < 0)
		reply_error(&t->mb, rq->hdr.verb, rq->hdr.request_id,
		            status ? status : SV_PROTO_STATUS_INTERNAL, 0, msg);
	for (size_t i = 0; i < t->mb.n; i++)
		zmq_send(t->ctl, t->mb.frames[i].data, t->mb.frames[i].len,
		         i + 1 < t->mb.n ? ZMQ_SNDMORE : 0);
}

static int rollback(struct trainer *t, uint64_t version, char *msg, size_t cap)
{
	struct sv_store_model m;
	sv_store_read *r = NULL;
	uint64_t last = atomic_load(&t->d->prog.last_seq), v = 0;
	int rc;

	if (version == 0) { /* sv_store_model_get's 0 means "the active one" */
		snprintf(msg, cap, "rollback to v0: versions start at 1");
		return SV_ERR_NOTFOUND;
	}
	/* The batch in hand was trained under the old model; its pairs stay in
	 * the log and are not trained on the rolled-back model. */
	step_wait(t);
	atomic_fetch_sub(&t->d->prog.backlog, sv_batch_len(t->batch));
	sv_batch_clear(t->batch);
	rc = sv_store_read_begin(t->d->store, &r);
	if (rc == 0)
		rc = sv_store_model_get(r, version, &m);
	if (rc == 0)
		rc = load_model(t, &m);
	sv_store_read_end(r);
	if (rc < 0) {
		snprintf(msg, cap, "rollback to v%llu: %s", (unsigned long long)version,
		         sv_strerror(rc));
		return rc;
	}
	replay_reset(t->rp);
	/* A new version with W of `version` and the log up to now applied:
	 * a restart must not replay the pairs rolled back over. */
	t->applied_seq = last;
	rc = checkpoint(t, "rollback", &v);
	snprintf(msg, cap, rc == 0 ? "rolled back to v%llu as v%llu" : "rollback to v%llu failed",
	         (unsigned long long)version, (unsigned long long)v);
	if (rc == 0)
		log_msg(LOG_NOTICE, "SV-ADMIN-ROLLBACK", "%s", msg);
	return rc;
}

/* One ingest group: read, commit, answer; then batch what it logged.
 * Returns the number of messages read. */
static size_t take_group(struct trainer *t)
{
	const struct ingest_pair *p;
	size_t n = 0, got;

	if (commit_replay(t) < 0)
		return 0; /* nothing is read: W must stay a function of the store */
	got = ingest_group(t->ing, &p, &n);
	if (got > 0)
		t->fresh_ns = now_mono_ns();

	for (size_t i = 0; i < n; i++)
		batch_add(t, p[i].xa, p[i].key_a, p[i].xb, p[i].key_b, p[i].label, p[i].seq, 0);
	/* a cluster's batches end where the stream says, on every node alike */
	if (ingest_cut_taken(t->ing) && sv_batch_len(t->batch) > 0)
		cut(t, t->B, &t->op, "stream");
	return got;
}

/* FLUSH: commit and stage every message already waiting in the decode
 * stage's two queues (groups until both are empty), then wait FLUSH_GRACE_MS
 * for stragglers still in ZeroMQ or the stage (a client may send its pairs and
 * its FLUSH on different sockets, and ZeroMQ orders only within one socket).
 * Bounded by FLUSH_MAX_GROUPS so a publisher that never stops cannot hold
 * the flush for ever. */
#define FLUSH_GRACE_MS 50
#define FLUSH_MAX_GROUPS 4096

static void flush_drain(struct trainer *t)
{
	for (int k = 0; k < FLUSH_MAX_GROUPS; k++) {
		zmq_pollitem_t it[2];

		if (take_group(t) > 0)
			continue;
		ingest_pollitems(t->ing, it);
		if (zmq_poll(it, 2, FLUSH_GRACE_MS) <= 0)
			break;
	}
}

/* FLUSH on a cluster node: the leader asks for a CUT in the stream and
 * reads until it comes (at most cluster.timeout); a standby only reads.
 * Either way the batch ends where every node ends it. */
static int flush_cluster(struct trainer *t)
{
	uint64_t end = now_mono_ns() + t->d->conf.cfg.cluster_timeout_ms * 1000000ULL;
	struct cluster *c = atomic_load(&t->d->cluster);

	if (!cluster_leader(c))
		return 0;
	cluster_request_cut(c, t->batch_first);
	while (sv_batch_len(t->batch) > 0 && now_mono_ns() < end) {
		zmq_pollitem_t it[2];

		if (take_group(t) > 0)
			continue;
		ingest_pollitems(t->ing, it);
		zmq_poll(it + 1, 1, 10);
	}
	return 0;
}

/* MODEL_PUT: W (already checked: d_in x d_out, finite) becomes the live
 * model as a new version, like ROLLBACK: the batch in hand is dropped (its
 * pairs stay logged), the optimizer state, settings and metrics window stay,
 * and applied_seq moves to the end of the log so a restart does not replay
 * older pairs onto it. */
static int model_put(struct trainer *t, const struct sv_proto_request *rq, char *msg, size_t cap)
{
	size_t n = (size_t)t->d->conf.d_in * t->d->conf.d_out;
	float *W = malloc(n * sizeof(float));
	uint64_t v = 0;
	int rc;

	if (W == NULL)
		return -ENOMEM;
	sv_proto_vec_copy(W, rq->w, n);
	step_wait(t);
	atomic_fetch_sub(&t->d->prog.backlog, sv_batch_len(t->batch));
	sv_batch_clear(t->batch);
	sv_trainer_set_weights(t->learner, W);
	free(W);
	replay_reset(t->rp);
	t->applied_seq = atomic_load(&t->d->prog.last_seq);
	rc = checkpoint(t, "model_put", &v);
	snprintf(msg, cap, rc == 0 ? "model stored as v%llu" : "model_put failed",
	         (unsigned long long)v);
	if (rc == 0)
		log_msg(LOG_NOTICE, "SV-ADMIN-MODELPUT", "%s", msg);
	return rc;
}

/* PURGE: erase item id and every retained log row naming it (with the
 * inline vectors only those rows used), in bounded groups.  The batch in
 * hand is trained and checkpointed first, so recovery never needs a row
 * this deletes; what the model already learned from the rows stays in W
 * (docs/DAEMON.md says so). */
#define PURGE_CHUNK 65536

static int purge(struct trainer *t, const struct sv_proto_request *rq, char *msg, size_t cap)
{
	const void *id = rq->item.id;
	size_t len = rq->item.id_len, total = 0, n;
	uint64_t next = 1, v = 0;
	int rc = 0, found = 0;

	step_wait(t);
	if (sv_batch_len(t->batch) > 0)
		rc = cut(t, t->B, &t->op, "purge");
	if (rc == 0)
		rc = checkpoint(t, "purge", &v);
	while (rc == 0 && next != 0) {
		sv_store_txn *txn = NULL;

		rc = sv_store_txn_begin(t->d->store, &txn);
		if (rc == 0 && next == 1) {
			rc = sv_store_item_del(txn, id, len);
			found = rc == 0;
			if (rc == SV_ERR_NOTFOUND)
				rc = 0;
		}
		if (rc == 0)
			rc = sv_store_purge(txn, id, len, next, PURGE_CHUNK, &next, &n);
		if (rc == 0) {
			rc = sv_store_txn_commit(txn);
			txn = NULL;
		}
		sv_store_txn_abort(txn);
		if (rc == 0)
			total += n;
	}
	if (found) {
		topk_cache_note_del(t->d->topk, id, len);
		topk_cache_commit(t->d->topk, rc == 0);
	}
	if (rc == 0 && !found && total == 0) {
		snprintf(msg, cap, "no such item, and no log row names it");
		return SV_ERR_NOTFOUND;
	}
	snprintf(msg, cap,
	         rc == 0 ? "purged: item %s, %zu log rows; W keeps what it learned from them "
	                   "(checkpoint v%llu)"
	                 : "purge failed: %s",
	         rc == 0 ? (found ? "deleted" : "was not stored") : sv_strerror(rc), total,
	         (unsigned long long)v);
	if (rc == 0)
		log_msg(LOG_NOTICE, "SV-ADMIN-PURGE", "%.*s: %s", (int)len, (const char *)id, msg);
	return rc;
}

static void ctl_handle(struct trainer *t)
{
	struct parts p;
	struct sv_proto_request rq;
	struct sv_proto_error err;
	char msg[256] = "";
	int rc = 0;

	if (parts_recv(t->ctl, &p, ZMQ_DONTWAIT) <= 0)
		return;
	commit_replay(t);
	if (p.over || sv_proto_decode_request(p.fr, (size_t)p.n, &t->lim, &rq, &err) < 0) {
		/* admin.c decoded it already; cannot happen */
		memset(&rq, 0, sizeof(rq));
		ctl_reply(t, &rq, SV_PROTO_STATUS_INTERNAL, "control decode failed", NULL);
		parts_close(&p);
		return;
	}
	if (t->d->conf.cfg.cluster_role != SV_CONFIG_ROLE_OFF &&
	    (rq.hdr.verb == SV_PROTO_VERB_ROLLBACK || rq.hdr.verb == SV_PROTO_VERB_MODEL_PUT ||
	     rq.hdr.verb == SV_PROTO_VERB_PURGE)) {
		/* each changes W or the log outside the stream: the standbys could
		 * not follow in lockstep */
		ctl_reply(t, &rq, SV_PROTO_STATUS_REFUSED,
		          "refused on a cluster node: it would change W outside the pair stream "
		          "(docs/SCALING.md)",
		          NULL);
		parts_close(&p);
		return;
	}
	switch (rq.hdr.verb) {
	case SV_PROTO_VERB_CHECKPOINT: {
		uint64_t v = 0;

		rc = checkpoint(t, "admin", &v);
		if (rc == 0)
			snprintf(msg, sizeof(msg), "checkpoint v%llu", (unsigned long long)v);
		else
			snprintf(msg, sizeof(msg), "checkpoint failed: %s", sv_strerror(rc));
		break;
	}
	case SV_PROTO_VERB_ROLLBACK:
		rc = rollback(t, rq.version, msg, sizeof(msg));
		break;
	case SV_PROTO_VERB_MODEL_PUT:
		rc = model_put(t, &rq, msg, sizeof(msg));
		break;
	case SV_PROTO_VERB_PURGE:
		rc = purge(t, &rq, msg, sizeof(msg));
		break;
	case SV_PROTO_VERB_PAUSE:
		atomic_store(&t->d->prog.paused, 1);
		log_msg(LOG_NOTICE, "SV-ADMIN-PAUSE",
		       "training paused: acked ingest answered PAUSED, fire-and-forget held back "
		       "until RESUME");
		snprintf(msg, sizeof(msg), "paused");
		break;
	case SV_PROTO_VERB_RESUME:
		atomic_store(&t->d->prog.paused, 0);
		log_msg(LOG_NOTICE, "SV-ADMIN-RESUME", "training resumed");
		snprintf(msg, sizeof(msg), "resumed");
		break;
	case SV_PROTO_VERB_FLUSH: {
		size_t n_b;
		uint64_t seen0;

		step_wait(t);
		seen0 = t->pairs_seen;

		if (!atomic_load(&t->d->prog.paused))
			flush_drain(t);
		n_b = sv_batch_len(t->batch);
		if (n_b > 0 && t->d->conf.cfg.cluster_role != SV_CONFIG_ROLE_OFF)
			rc = flush_cluster(t);
		else if (n_b > 0)
			rc = cut(t, t->B, &t->op, "flush");
		step_wait(t);
		if (rc == 0)
			rc = sv_store_sync(t->d->store);
		snprintf(msg, sizeof(msg),
		         rc == 0 ? "flushed: trained %llu pairs" : "flush failed",
		         (unsigned long long)(t->pairs_seen - seen0));
		break;
	}
	default:
		rc = SV_ERR_PROTO_VERB;
		snprintf(msg, sizeof(msg), "not a trainer verb");
		break;
	}
	ctl_reply(t, &rq,
	          rc == 0                 ? SV_PROTO_STATUS_OK
	          : rc == SV_ERR_NOTFOUND ? SV_PROTO_STATUS_NOT_FOUND
	                                  : SV_PROTO_STATUS_INTERNAL,
	          msg, NULL);
	parts_close(&p);
}

/* ---- the thread --------------------------------------------------------- */

static void apply_live(struct trainer *t)
{
	unsigned gen = atomic_load(&t->d->live_gen);
	struct sv_live lv;
	uint32_t B;

	if (gen == t->live_gen)
		return;
	step_wait(t);
	t->live_gen = gen;
	pthread_mutex_lock(&t->d->live_mu);
	lv = t->d->live;
	pthread_mutex_unlock(&t->d->live_mu);
	t->ckpt_steps = lv.ckpt_steps;
	t->ckpt_ms = lv.ckpt_ms;
	t->wait_ms = lv.max_wait_ms;
	t->lim = lv.lim;
	ingest_set_live(t->ing, &lv);
	sv_store_set_keep_versions(t->d->store, lv.keep_versions);
	if (monitor_set_window(t->mon, lv.window_pairs) < 0)
		log_msg(LOG_ERR, "SV-RELOAD-WINDOW",
		       "no memory for a window of %u pairs; keeping the old one", lv.window_pairs);
	else
		monitor_add(t->mon, t->d, NULL, NULL, 0, NAN); /* republish what it holds */
	if (monitor_set_policy(t->mon, lv.threshold_policy, lv.threshold, lv.target_far,
	                               lv.min_pairs) < 0)
		log_msg(LOG_ERR, "SV-RELOAD-POLICY",
		       "threshold policy %d refused; keeping the old one", lv.threshold_policy);
	else
		publish(t);
	B = clamp_batch(t, lv.batch_size);
	lv.optim.kind = t->op.kind;
	if (B == t->B && same_params(&lv.optim, &t->op))
		return;
	if (t->d->conf.cfg.cluster_role != SV_CONFIG_ROLE_OFF) {
		log_msg(LOG_WARNING, "SV-RELOAD-TRAIN",
		        "train.batch_pairs and the optimizer keys do not reload on a cluster node (the "
		        "standbys train in lockstep): stop every trainer to change them; keeping "
		        "batch size %u, learning rate %g",
		        t->B, t->op.lr);
		return;
	}
	if (cut(t, B, &lv.optim, "reload") == 0)
		log_msg(LOG_NOTICE, "SV-RELOAD-TRAIN", "now batch size %u, learning rate %g", t->B,
		       t->op.lr);
}

/* pairs_per_second: pairs committed to the log per second, an exponential
 * moving average (time constant RATE_TAU_S) updated every RATE_TICK_NS. */
#define RATE_TICK_NS 250000000ULL
#define RATE_TAU_S 2.0

static void rate_tick(struct trainer *t, uint64_t now)
{
	uint64_t logged = atomic_load(&t->d->cnt.pairs[SV_PAIR_OUTCOME_LOGGED]);
	double dt, inst, a, r;

	if (t->rate_t == 0) {
		t->rate_t = now;
		t->rate_pairs = logged;
		return;
	}
	if (now - t->rate_t < RATE_TICK_NS)
		return;
	dt = (double)(now - t->rate_t) * 1e-9;
	inst = (double)(logged - t->rate_pairs) / dt;
	a = 1.0 - exp(-dt / RATE_TAU_S);
	r = atomic_load(&t->d->prog.pairs_per_second);
	atomic_store(&t->d->prog.pairs_per_second, r + a * (inst - r));
	t->rate_t = now;
	t->rate_pairs = logged;
}

/* Input waiting on the control socket or in an ingest queue (replay stops
 * for it). */
static int input_waiting(void *arg)
{
	struct trainer *t = arg;
	zmq_pollitem_t it[3] = {{t->ctl, 0, ZMQ_POLLIN, 0}};

	ingest_pollitems(t->ing, it + 1);
	return zmq_poll(it, ingest_pull_open(t->ing) ? 3 : 2, 0) > 0;
}

/* Idle replay chunks run this long between looks at the loop's duties. */
#define REPLAY_CHUNK_NS 200000000ULL

/* Idle: replay for one chunk (replay.h).  Returns 1 when there is more. */
static int idle_replay(struct trainer *t, uint64_t now)
{
	int rc;

	step_wait(t);
	rc = replay_idle(t->rp, t->learner, &t->op, t->applied_seq, now + REPLAY_CHUNK_NS,
	                 input_waiting, t);
	if (rc == 2 || (rc == 1 && input_waiting(t)))
		commit_replay(t);
	return (rc == 1 || rc == 2) && now_mono_ns() >= t->replay_after_ns;
}

static void *thread_main(void *arg)
{
	struct trainer *t = arg;
	struct sv_daemon *d = t->d;
	uint64_t steps, idle_ns = d->conf.cfg.train_replay_idle_ms * 1000000ULL;
	int more = 0; /* idle replay has more to do: poll without waiting */

	pthread_setname_np(pthread_self(), "sv-trainer");

	runner_start(t);
	t->fresh_ns = now_mono_ns();
	while (!atomic_load(&d->stopping)) {
		/* ctl, the acked queue, the fire-and-forget queue (not polled
		 * while paused or full: backpressure) */
		zmq_pollitem_t it[3] = {{t->ctl, 0, ZMQ_POLLIN, 0}};
		int paused = atomic_load(&d->prog.paused);
		long timeout = 100;
		uint64_t now = now_mono_ns();

		if (sv_batch_len(t->batch) > 0 && !paused) {
			uint64_t due = t->batch_t0 + (uint64_t)t->wait_ms * 1000000ULL;

			timeout = due > now ? (long)((due - now) / 1000000ULL) : 0;
			if (timeout > 100)
				timeout = 100;
		}
		if (timeout == 0 && d->conf.cfg.cluster_role != SV_CONFIG_ROLE_OFF)
			timeout = 10; /* the CUT comes through the stream */
		if (more)
			timeout = 0;
		ingest_pollitems(t->ing, it + 1);
		atomic_fetch_add(&d->prog.heartbeat, 1);
		if (zmq_poll(it,
		             (paused && !ingest_hold_room(t->ing)) ||
		                     (!paused && !ingest_pull_open(t->ing))
		                 ? 2
		                 : 3,
		             timeout) < 0 &&
		    zmq_errno() == ETERM)
			break;
		if (it[0].revents & ZMQ_POLLIN)
			ctl_handle(t);
		apply_live(t);
		if (paused && (it[1].revents & ZMQ_POLLIN))
			ingest_refuse_paused(t->ing);
		if (paused && (it[2].revents & ZMQ_POLLIN))
			ingest_hold_paused(t->ing);
		else if (!paused && (((it[1].revents | it[2].revents) & ZMQ_POLLIN) ||
		                     (ingest_due(t->ing) && !replay_dirty(t->rp))))
			take_group(t);
		now = now_mono_ns();
		rate_tick(t, now);
		if (!paused && sv_batch_len(t->batch) > 0 &&
		    now - t->batch_t0 >= (uint64_t)t->wait_ms * 1000000ULL) {
			if (d->conf.cfg.cluster_role == SV_CONFIG_ROLE_OFF)
				cut(t, t->B, &t->op, "max_wait_ms");
			else if (cluster_leader(atomic_load(&d->cluster))) /* the CUT comes back */
				cluster_request_cut(atomic_load(&d->cluster), t->batch_first);
		}
		steps = atomic_load(&d->prog.steps); /* the runner's, as of its last publish */
		if ((t->ckpt_steps && steps - t->ckpt_steps_at >= t->ckpt_steps) ||
		    (t->ckpt_ms && steps != t->ckpt_steps_at &&
		     now - t->last_ckpt_ns >= t->ckpt_ms * 1000000ULL))
			checkpoint(t, "periodic", NULL);
		more = !paused && sv_batch_len(t->batch) == 0 && now - t->fresh_ns >= idle_ns &&
		       now >= t->replay_after_ns && idle_replay(t, now);
	}
	/* Stop: take what is already queued (a bounded number of groups, so a
	 * publisher that keeps sending cannot hold the shutdown), train the
	 * batch in hand, checkpoint.  Unread messages were never acked. */
	for (int k = 0; k < 8 && !atomic_load(&d->prog.paused) && take_group(t) > 0; k++)
		;
	if (sv_batch_len(t->batch) > 0 && d->conf.cfg.cluster_role == SV_CONFIG_ROLE_OFF)
		cut(t, t->B, &t->op, "shutdown"); /* a cluster node keeps it for the log replay */
	checkpoint(t, "shutdown", NULL);
	runner_stop(t);
	return NULL;
}

int trainer_start(struct trainer *t)
{
	int rc = ingest_bind(t->ing);

	if (rc < 0)
		return rc;
	t->ctl = parts_socket(t->d->zctx, ZMQ_REP);
	if (t->ctl == NULL || zmq_bind(t->ctl, SV_CTL_ENDPOINT) < 0)
		return -zmq_errno();
	rc = ingest_start(t->ing); /* the decode stage, in front of this thread */
	if (rc < 0)
		return rc;
	t->started = pthread_create(&t->th, NULL, thread_main, t) == 0;
	return t->started ? 0 : -EAGAIN;
}

void trainer_join(struct trainer *t)
{
	if (t != NULL && t->started) {
		pthread_join(t->th, NULL);
		t->started = 0;
	}
	if (t != NULL)
		ingest_stop(t->ing); /* after the writer's last ack */
}

void trainer_close(struct trainer *t)
{
	int zero = 0;

	if (t == NULL)
		return;
	trainer_join(t);
	if (t->ctl)
		zmq_setsockopt(t->ctl, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_close(t->ctl);
	sv_trainer_free(t->learner);
	sv_batch_free(t->batch);
	for (unsigned i = 0; i < t->run_depth; i++)
		sv_batch_free(t->run_q[i]);
	monitor_free(t->mon);
	replay_free(t->rp);
	sv_proto_msgbuf_free(&t->mb);
	free(t->scores);
	ingest_free(t->ing);
	free(t);
}
