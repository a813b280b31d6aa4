/* trainer.c - the trainer thread: recovery (load + replay), batching,
 * training, snapshots, checkpoints, the control verbs and the loop (see
 * trainer.h).
 *
 * Leaves out: reading and committing ingest messages (ingest.c), queries
 * (query.c), the admin verbs that need no writer (admin.c).
 */
#include "trainer_int.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "curve.h"
#include "debug.h"
#include "log.h"
#include "metrics_glue.h"
#include "sv/batch.h"
#include "sv/blas.h"
#include "sv/error.h"
#include "sv/proto.h"
#include "sv/store.h"
#include "sv/train.h"
#include "reply.h"
#include "util.h"

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* ---- training ----------------------------------------------------------- */

static void publish(struct dtrainer *t)
{
	struct sv_daemon *d = t->d;
	struct sv_snap *s = sv_snap_new(d->conf.d_in, d->conf.d_out, sv_trainer_weights(t->tr));

	atomic_store(&d->prog.steps, t->base_steps + sv_trainer_steps(t->tr));
	atomic_store(&d->prog.applied_seq, t->applied_seq);
	atomic_store(&d->prog.pairs_seen, t->pairs_seen);
	atomic_store(&d->prog.model_version, t->version);
	if (s == NULL) {
		sv_log(LOG_ERR, "SV-TRAIN-NOMEM",
		       "no memory for a model snapshot; queries keep the previous one");
		return;
	}
	s->version = t->version;
	s->steps = t->base_steps + sv_trainer_steps(t->tr);
	s->applied_seq = t->applied_seq;
	s->threshold = sv_metrics_glue_threshold(t->mg);
	s->policy = sv_metrics_glue_policy(t->mg);
	atomic_store(&d->prog.threshold, s->threshold);
	sv_snap_publish(&d->snap, s);
}

/* Train on batch b (if not empty) and clear it; then, unless replaying,
 * publish a snapshot.  Runs on the trainer thread (replay, or no runner) or
 * on the runner. */
static void train_batch(struct dtrainer *t, sv_batch *b, int replay)
{
	struct sv_step_stats st;
	struct sv_pair_labels lab;
	size_t n = sv_batch_len(b);
	uint64_t last;
	int rc;

	if (n == 0)
		return;
	last = sv_batch_last_seq(b);
	sv_batch_labels(b, &lab);
	debug_step_delay();
	rc = sv_trainer_step(t->tr, b, t->scores, &st);
	if (rc < 0) {
		atomic_fetch_add(&t->d->cnt.step_failures, 1);
		sv_log(LOG_WARNING, "SV-TRAIN-STEP",
		       "step on %zu pairs (seq ..%llu) failed: %s; W unchanged, batch dropped", n,
		       (unsigned long long)last, sv_strerror(rc));
	} else {
		sv_metrics_glue_add(t->mg, t->d, t->scores, lab.y, n, st.loss.loss);
		t->last_loss = st.loss.loss;
		atomic_store(&t->d->prog.loss, st.loss.loss);
		atomic_fetch_add(&t->d->cnt.steps, 1);
		t->pairs_seen += n;
	}
	if (last > t->applied_seq)
		t->applied_seq = last;
	sv_batch_clear(b);
	if (!replay) {
		atomic_fetch_sub(&t->d->prog.backlog, n);
		publish(t);
	}
}

static void *runner_main(void *arg)
{
	struct dtrainer *t = arg;

	pthread_mutex_lock(&t->run_mu);
	for (;;) {
		while (!t->run_busy && !t->run_quit)
			pthread_cond_wait(&t->run_cv, &t->run_mu);
		if (!t->run_busy)
			break;
		pthread_mutex_unlock(&t->run_mu);
		train_batch(t, t->batch_run, 0);
		pthread_mutex_lock(&t->run_mu);
		t->run_busy = 0;
		pthread_cond_broadcast(&t->run_cv);
	}
	pthread_mutex_unlock(&t->run_mu);
	return NULL;
}

/* Wait until the runner has finished the batch it holds (if any): then the
 * trainer thread owns every piece of training state again. */
static void step_wait(struct dtrainer *t)
{
	if (!t->run_started)
		return;
	pthread_mutex_lock(&t->run_mu);
	while (t->run_busy)
		pthread_cond_wait(&t->run_cv, &t->run_mu);
	pthread_mutex_unlock(&t->run_mu);
}

/* Start the runner (thread_main does; replay trains inline).  Without it
 * every step runs on the trainer thread. */
static void runner_start(struct dtrainer *t)
{
	if (sv_batch_new(&t->batch_run, t->max_pairs, t->d->conf.d_in) < 0) {
		sv_log(LOG_WARNING, "SV-TRAIN-RUNNER",
		       "no memory for a second batch; training on the trainer thread");
		return;
	}
	pthread_mutex_init(&t->run_mu, NULL);
	pthread_cond_init(&t->run_cv, NULL);
	t->run_busy = t->run_quit = 0;
	if (pthread_create(&t->run_th, NULL, runner_main, t) != 0) {
		sv_log(LOG_WARNING, "SV-TRAIN-RUNNER",
		       "cannot start the step runner; training on the trainer thread");
		pthread_mutex_destroy(&t->run_mu);
		pthread_cond_destroy(&t->run_cv);
		return;
	}
	t->run_started = 1;
}

static void runner_stop(struct dtrainer *t)
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

/* Train on the batch in hand (if any): hand it to the runner (after the
 * previous one is done) and go on with an empty one, or train it here when
 * replaying or without a runner. */
static void step(struct dtrainer *t, int replay)
{
	if (sv_batch_len(t->batch) == 0)
		return;
	if (replay || !t->run_started) {
		train_batch(t, t->batch, replay);
	} else {
		sv_batch *b;

		step_wait(t);
		b = t->batch_run;
		t->batch_run = t->batch;
		t->batch = b;
		pthread_mutex_lock(&t->run_mu);
		t->run_busy = 1;
		pthread_cond_signal(&t->run_cv);
		pthread_mutex_unlock(&t->run_mu);
	}
}

int trainer_batch_add(struct dtrainer *t, const float *xa, uint64_t ka, const float *xb,
                      uint64_t kb, uint8_t y, uint64_t seq, int replay)
{
	int rc;

	if (sv_batch_len(t->batch) == 0)
		t->batch_t0 = now_mono_ns();
	rc = sv_batch_add(t->batch, xa, ka, xb, kb, y, seq);
	if (rc < 0)
		return rc;
	if (!replay)
		atomic_fetch_add(&t->d->prog.backlog, 1);
	if (sv_batch_len(t->batch) >= t->B)
		step(t, replay);
	return 0;
}

/* Settings blob (control records and checkpoints): u8 version 1,
 * u8 nesterov, u16 0, u32 batch size, then f64 lr, momentum, dampening,
 * weight_decay, beta1, beta2, eps (host order: little-endian only); a
 * checkpoint's blob adds u64 pairs_seen. */
static void settings_enc(uint8_t out[CTL_LEN], uint32_t B, const struct sv_optim_params *o)
{
	double f[7] = {o->lr,    o->momentum, o->dampening, o->weight_decay,
	               o->beta1, o->beta2,    o->eps};

	memset(out, 0, CTL_LEN);
	out[0] = 1;
	out[1] = (uint8_t)(o->nesterov != 0);
	put_le32(out + 4, B);
	memcpy(out + 8, f, sizeof(f));
}

static int settings_dec(const uint8_t *in, size_t len, uint32_t *B, struct sv_optim_params *o)
{
	double f[7];

	if (len < CTL_LEN || in[0] != 1)
		return -1;
	*B = get_le32(in + 4);
	memcpy(f, in + 8, sizeof(f));
	o->nesterov = in[1];
	o->lr = f[0];
	o->momentum = f[1];
	o->dampening = f[2];
	o->weight_decay = f[3];
	o->beta1 = f[4];
	o->beta2 = f[5];
	o->eps = f[6];
	return 0;
}

static int same_params(const struct sv_optim_params *a, const struct sv_optim_params *b)
{
	return a->lr == b->lr && a->momentum == b->momentum && a->dampening == b->dampening &&
	       a->nesterov == b->nesterov && a->weight_decay == b->weight_decay &&
	       a->beta1 == b->beta1 && a->beta2 == b->beta2 && a->eps == b->eps;
}

/* Optimizer hyperparameters (the kind stays). */
static void set_params(struct dtrainer *t, const struct sv_optim_params *p)
{
	struct sv_optim_params q = *p;
	int rc;

	q.kind = sv_trainer_optim(t->tr)->p.kind;
	if (same_params(&q, &t->op))
		return;
	rc = sv_trainer_set_optim_params(t->tr, &q);
	if (rc < 0) {
		sv_log(LOG_ERR, "SV-TRAIN-PARAMS",
		       "optimizer parameters (lr %g) refused: %s; keeping lr %g", q.lr,
		       sv_strerror(rc), t->op.lr);
		return;
	}
	t->op = q;
}

static uint32_t clamp_batch(struct dtrainer *t, uint32_t B)
{
	if (B == 0)
		B = 1;
	if (B > t->max_pairs) {
		sv_log(
		    LOG_WARNING, "SV-TRAIN-BATCHMAX",
		    "batch size %u above the largest this daemon was started for (%zu); using %zu",
		    B, t->max_pairs, t->max_pairs);
		B = (uint32_t)t->max_pairs;
	}
	return B;
}

/* A control record: train what is accumulated, then take its settings. */
static void apply_ctl(struct dtrainer *t, const uint8_t *blob, size_t len, uint64_t seq, int replay)
{
	struct sv_optim_params op = t->op;
	uint32_t B;

	step(t, replay);
	step_wait(t);
	if (settings_dec(blob, len, &B, &op) == 0) {
		t->B = clamp_batch(t, B);
		set_params(t, &op);
	}
	if (seq > t->applied_seq)
		t->applied_seq = seq;
}

/* Log a control record (own group) and apply it: cut the batch, then B and
 * the optimizer parameters op. */
static int cut(struct dtrainer *t, uint32_t B, const struct sv_optim_params *op, const char *why)
{
	struct sv_store_pair p = {0};
	uint8_t blob[CTL_LEN];
	sv_store_txn *txn = NULL;
	uint64_t seq = 0;
	int rc;

	settings_enc(blob, B, op);
	p.id_a = CUT_ID;
	p.len_a = CUT_ID_LEN;
	p.id_b = blob;
	p.len_b = CTL_LEN;
	p.label = 0;
	rc = sv_store_txn_begin(t->d->store, &txn);
	if (rc == 0)
		rc = sv_store_pair_append(txn, &p, &seq);
	if (rc == 0) {
		rc = sv_store_txn_commit(txn);
		txn = NULL;
	}
	sv_store_txn_abort(txn);
	if (rc < 0) {
		/* W stays a function of the log: without the record, no cut. */
		sv_log(LOG_ERR, "SV-STORE-CUT", "cannot log the batch cut (%s): %s; batch kept",
		       why, sv_strerror(rc));
		return rc;
	}
	atomic_store(&t->d->prog.last_seq, seq);
	apply_ctl(t, blob, CTL_LEN, seq, 0);
	return 0;
}

/* ---- checkpoints -------------------------------------------------------- */

static int save_checkpoint(struct dtrainer *t, const char *why, uint64_t *version_out)
{
	struct sv_daemon *d = t->d;
	struct sv_store_model m = {0};
	const struct sv_optim *o = sv_trainer_optim(t->tr);
	size_t olen = sv_optim_saved_size(o);
	uint8_t settings[CTL_LEN + 8]; /* + u64 pairs_seen in checkpoints */
	size_t clen = sv_metrics_glue_calib_size(t->mg);
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
	settings_enc(settings, t->B, &t->op);
	memcpy(settings + CTL_LEN, &t->pairs_seen, sizeof(t->pairs_seen));
	w = sv_metrics_glue_calib_save(t->mg, calib, clen);
	if (w < 0) {
		rc = (int)w;
		goto out;
	}
	m.calib_len = (size_t)w;
	m.step = t->base_steps + sv_trainer_steps(t->tr);
	m.applied_seq = t->applied_seq;
	m.loss = t->last_loss;
	m.auc = atomic_load(&d->prog.auc);
	m.eer = atomic_load(&d->prog.eer);
	m.W = sv_trainer_weights(t->tr);
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
		sv_log(LOG_ERR, "SV-CKPT-FAIL", "checkpoint (%s) failed: %s; training continues",
		       why, sv_strerror(rc));
		return rc;
	}
	t->version = v;
	t->last_ckpt_ns = now_mono_ns();
	t->ckpt_steps_at = t->base_steps + sv_trainer_steps(t->tr);
	atomic_fetch_add(&d->cnt.checkpoints, 1);
	atomic_store(&d->prog.model_version, v);
	sv_log(LOG_INFO, "SV-CKPT-SAVED", "checkpoint v%llu (%s): step %llu, applied_seq %llu",
	       (unsigned long long)v, why, (unsigned long long)m.step,
	       (unsigned long long)m.applied_seq);
	if (version_out)
		*version_out = v;
	publish(t);
	return 0;
}

/* Checkpoint once the runner's batch (if any) is trained. */
static int checkpoint(struct dtrainer *t, const char *why, uint64_t *version_out)
{
	step_wait(t);
	return save_checkpoint(t, why, version_out);
}

/* Load checkpoint m into the trainer (W, optimizer, settings, calibration). */
static int load_model(struct dtrainer *t, const struct sv_store_model *m)
{
	size_t n = (size_t)t->d->conf.d_in * t->d->conf.d_out;
	float *W = malloc(n * sizeof(float));
	struct sv_optim *o = NULL;
	int rc;

	if (W == NULL)
		return -ENOMEM;
	sv_store_model_weights(t->d->store, m, W);
	sv_trainer_set_weights(t->tr, W);
	free(W);
	rc = sv_optim_load(&o, m->optim, m->optim_len);
	if (rc == 0 && o->p.kind != sv_trainer_optim(t->tr)->p.kind) {
		sv_log(LOG_WARNING, "SV-RECOVER-OPTIM",
		       "checkpoint optimizer kind %d differs from train.optimizer; starting a "
		       "fresh optimizer state",
		       (int)o->p.kind);
		sv_optim_free(o);
		o = NULL;
	}
	if (rc == 0 && o != NULL) {
		struct sv_optim_params op = o->p;

		rc = sv_trainer_set_optim(t->tr, o);
		if (rc < 0)
			sv_optim_free(o);
		else
			t->op = op;
	}
	if (rc < 0)
		return rc;
	{
		struct sv_optim_params op = t->op;
		uint32_t B;

		if (settings_dec(m->settings, m->settings_len, &B, &op) == 0) {
			t->B = clamp_batch(t, B);
			set_params(t, &op);
		}
		if (m->settings_len >= CTL_LEN + sizeof(t->pairs_seen))
			memcpy(&t->pairs_seen, (const uint8_t *)m->settings + CTL_LEN,
			       sizeof(t->pairs_seen));
	}
	if (m->calib_len > 0 && sv_metrics_glue_calib_load(t->mg, t->d, m->calib, m->calib_len) < 0)
		sv_log(LOG_WARNING, "SV-RECOVER-CALIB",
		       "checkpoint v%llu has an unreadable calibration; starting an empty metrics "
		       "window",
		       (unsigned long long)m->version);
	t->base_steps = m->step - sv_trainer_steps(t->tr);
	t->version = m->version;
	t->applied_seq = m->applied_seq;
	return 0;
}

/* ---- recovery ----------------------------------------------------------- */

static int replay(struct dtrainer *t)
{
	struct sv_daemon *d = t->d;
	sv_store_read *r = NULL;
	sv_store_cursor *c = NULL;
	struct sv_store_pair p;
	float *xa = malloc(d->conf.d_in * sizeof(float) * 2);
	float *xb = xa ? xa + d->conf.d_in : NULL;
	uint64_t n = 0, skipped = 0, from = t->applied_seq + 1;
	int rc;

	if (xa == NULL)
		return -ENOMEM;
	rc = sv_store_read_begin(d->store, &r);
	if (rc == 0)
		rc = sv_store_cursor_open(r, from, &c);
	while (rc == 0 && (rc = sv_store_cursor_next(c, &p)) == 0) {
		if (p.len_a == CUT_ID_LEN && memcmp(p.id_a, CUT_ID, CUT_ID_LEN) == 0) {
			apply_ctl(t, p.id_b, p.len_b, p.seq, 1);
			continue;
		}
		if (sv_store_item_get(r, p.id_a, p.len_a, xa) < 0 ||
		    sv_store_item_get(r, p.id_b, p.len_b, xb) < 0) {
			skipped++;
			continue;
		}
		rc = trainer_batch_add(t, xa, ingest_id_key(p.id_a, p.len_a), xb,
		                       ingest_id_key(p.id_b, p.len_b), p.label, p.seq, 1);
		n++;
	}
	if (rc == SV_ERR_NOTFOUND)
		rc = 0;
	sv_store_cursor_close(c);
	sv_store_read_end(r);
	free(xa);
	if (rc < 0) {
		sv_log(LOG_ERR, "SV-RECOVER-REPLAY",
		       "replay of the pair log from seq %llu failed: %s", (unsigned long long)from,
		       sv_strerror(rc));
		return rc;
	}
	if (skipped)
		sv_log(LOG_WARNING, "SV-RECOVER-NOITEM",
		       "%llu logged pairs name items that no longer exist; skipped in replay",
		       (unsigned long long)skipped);
	sv_log(LOG_INFO, "SV-RECOVER-REPLAY",
	       "replayed %llu pairs after seq %llu: %llu steps total, applied_seq %llu, %zu pairs "
	       "in the open batch",
	       (unsigned long long)n, (unsigned long long)(from - 1),
	       (unsigned long long)(t->base_steps + sv_trainer_steps(t->tr)),
	       (unsigned long long)t->applied_seq, sv_batch_len(t->batch));
	return 0;
}

int trainer_open(struct dtrainer **out, struct sv_daemon *d)
{
	struct dtrainer *t = calloc(1, sizeof(*t));
	struct sv_train_params tp = {0};
	struct sv_store_model m;
	sv_store_read *r = NULL;
	uint64_t last = 0;
	int rc, have_model = 0;

	if (t == NULL)
		return -ENOMEM;
	t->d = d;
	t->max_pairs =
	    d->conf.batch_max > d->conf.batch_size ? d->conf.batch_max : d->conf.batch_size;
	t->B = d->conf.batch_size;
	t->op = d->conf.optim;
	t->ckpt_steps = d->conf.ckpt_steps;
	t->ckpt_ms = d->conf.ckpt_ms;
	t->last_loss = NAN;
	t->live_gen = atomic_load(&d->live_gen);
	/* BLAS threads of the trainer (train.threads); queries share the pool */
	sv_blas_set_threads((int)d->conf.cfg.train_threads);
	tp.d_in = d->conf.d_in;
	tp.d_out = d->conf.d_out;
	tp.seed = d->conf.seed;
	tp.max_pairs = t->max_pairs;
	tp.loss = d->conf.loss;
	tp.optim = d->conf.optim;
	t->lim = d->conf.lim;
	sv_proto_msgbuf_init(&t->mb);
	rc = sv_trainer_new(&t->tr, &tp, NULL);
	if (rc == 0)
		rc = sv_batch_new(&t->batch, t->max_pairs, d->conf.d_in);
	if (rc == 0)
		rc = -ENOMEM * ((t->scores = malloc(t->max_pairs * sizeof(float))) == NULL);
	if (rc == 0)
		rc = sv_metrics_glue_new(&t->mg, &d->conf);
	if (rc < 0) {
		sv_log(LOG_ERR, "SV-TRAIN-INIT", "cannot set up the trainer: %s", sv_strerror(rc));
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
		sv_log(LOG_ERR, "SV-RECOVER-LOAD", "cannot load the active model: %s",
		       sv_strerror(rc));
		goto fail;
	}
	atomic_store(&d->prog.last_seq, last);
	if (have_model)
		sv_log(LOG_INFO, "SV-RECOVER-LOAD",
		       "loaded model v%llu: step %llu, applied_seq %llu, log ends at %llu",
		       (unsigned long long)t->version, (unsigned long long)t->base_steps,
		       (unsigned long long)t->applied_seq, (unsigned long long)last);
	else
		sv_log(LOG_INFO, "SV-RECOVER-NEW",
		       "no model in the store: W from seed %llu, log ends at %llu",
		       (unsigned long long)d->conf.seed, (unsigned long long)last);
	rc = replay(t);
	if (rc < 0)
		goto fail;
	atomic_store(&d->prog.backlog, sv_batch_len(t->batch)); /* replay leaves a partial batch */
	/* The configuration may have changed B or the optimizer parameters
	 * while we were down: log it, so a later replay changes them at the same
	 * point. */
	{
		struct sv_optim_params want = d->conf.optim;

		want.kind = t->op.kind;
		if (t->B != clamp_batch(t, d->conf.batch_size) || !same_params(&want, &t->op))
			rc = cut(t, clamp_batch(t, d->conf.batch_size), &want, "configuration");
		if (rc < 0)
			goto fail;
	}
	t->last_ckpt_ns = now_mono_ns();
	t->ckpt_steps_at = t->base_steps + sv_trainer_steps(t->tr);
	publish(t);
	*out = t;
	return 0;
fail:
	trainer_close(t);
	return rc;
}

/* ---- control (admin verbs that must run on the writer) ------------------ */

static void ctl_reply(struct dtrainer *t, const struct sv_proto_request *rq, int status,
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

static int rollback(struct dtrainer *t, uint64_t version, char *msg, size_t cap)
{
	struct sv_store_model m;
	sv_store_read *r = NULL;
	uint64_t last = atomic_load(&t->d->prog.last_seq), v = 0;
	int rc;

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
	/* A new version with W of `version` and the log up to now applied:
	 * a restart must not replay the pairs rolled back over. */
	t->applied_seq = last;
	rc = checkpoint(t, "rollback", &v);
	snprintf(msg, cap, rc == 0 ? "rolled back to v%llu as v%llu" : "rollback to v%llu failed",
	         (unsigned long long)version, (unsigned long long)v);
	if (rc == 0)
		sv_log(LOG_NOTICE, "SV-ADMIN-ROLLBACK", "%s", msg);
	return rc;
}

/* FLUSH: read, commit and stage every message already waiting on the two
 * ingest sockets (groups until both answer EAGAIN), then wait FLUSH_GRACE_MS
 * for stragglers still in the I/O thread (a client may send its pairs and
 * its FLUSH on different sockets, and ZeroMQ orders only within one socket).
 * Bounded by FLUSH_MAX_GROUPS so a publisher that never stops cannot hold
 * the flush for ever. */
#define FLUSH_GRACE_MS 50
#define FLUSH_MAX_GROUPS 4096

static void flush_drain(struct dtrainer *t)
{
	for (int k = 0; k < FLUSH_MAX_GROUPS; k++) {
		zmq_pollitem_t it[2] = {
		    {t->router, 0, ZMQ_POLLIN, 0},
		    {t->pull, 0, ZMQ_POLLIN, 0},
		};

		if (ingest_group(t) > 0)
			continue;
		if (zmq_poll(it, 2, FLUSH_GRACE_MS) <= 0)
			break;
	}
}

/* MODEL_PUT: W (already checked: d_in x d_out, finite) becomes the live
 * model as a new version, like ROLLBACK: the batch in hand is dropped (its
 * pairs stay logged), the optimizer state, settings and metrics window stay,
 * and applied_seq moves to the end of the log so a restart does not replay
 * older pairs onto it. */
static int model_put(struct dtrainer *t, const struct sv_proto_request *rq, char *msg, size_t cap)
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
	sv_trainer_set_weights(t->tr, W);
	free(W);
	t->applied_seq = atomic_load(&t->d->prog.last_seq);
	rc = checkpoint(t, "model_put", &v);
	snprintf(msg, cap, rc == 0 ? "model stored as v%llu" : "model_put failed",
	         (unsigned long long)v);
	if (rc == 0)
		sv_log(LOG_NOTICE, "SV-ADMIN-MODELPUT", "%s", msg);
	return rc;
}

static void ctl_handle(struct dtrainer *t)
{
	zmq_msg_t msgs[MAX_PARTS];
	struct sv_proto_frame fr[MAX_PARTS];
	struct sv_proto_request rq;
	struct sv_proto_error err;
	char msg[256] = "";
	int n = ingest_recv_parts(t->ctl, msgs, MAX_PARTS), rc = 0;

	if (n <= 0)
		return;
	ingest_frames_of(msgs, n, fr);
	if (sv_proto_decode_request(fr, (size_t)n, &t->lim, &rq, &err) < 0) {
		/* admin.c decoded it already; cannot happen */
		memset(&rq, 0, sizeof(rq));
		ctl_reply(t, &rq, SV_PROTO_STATUS_INTERNAL, "control decode failed", NULL);
		ingest_close_parts(msgs, n);
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
	case SV_PROTO_VERB_PAUSE:
		atomic_store(&t->d->prog.paused, 1);
		sv_log(LOG_NOTICE, "SV-ADMIN-PAUSE",
		       "training paused: acked ingest answered PAUSED, fire-and-forget held back "
		       "until RESUME");
		snprintf(msg, sizeof(msg), "paused");
		break;
	case SV_PROTO_VERB_RESUME:
		atomic_store(&t->d->prog.paused, 0);
		sv_log(LOG_NOTICE, "SV-ADMIN-RESUME", "training resumed");
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
		if (n_b > 0)
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
	ingest_close_parts(msgs, n);
}

/* ---- the thread --------------------------------------------------------- */

static void apply_live(struct dtrainer *t)
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
	if (sv_metrics_glue_set_policy(t->mg, lv.threshold_policy, lv.threshold, lv.target_far,
	                               lv.min_pairs) < 0)
		sv_log(LOG_ERR, "SV-RELOAD-POLICY",
		       "threshold policy %d refused; keeping the old one", lv.threshold_policy);
	else
		publish(t);
	B = clamp_batch(t, lv.batch_size);
	lv.optim.kind = t->op.kind;
	if (B == t->B && same_params(&lv.optim, &t->op))
		return;
	if (cut(t, B, &lv.optim, "reload") == 0)
		sv_log(LOG_NOTICE, "SV-RELOAD-TRAIN", "now batch size %u, learning rate %g", t->B,
		       t->op.lr);
}

/* pairs_per_second: pairs committed to the log per second, an exponential
 * moving average (time constant RATE_TAU_S) updated every RATE_TICK_NS. */
#define RATE_TICK_NS 250000000ULL
#define RATE_TAU_S 2.0

static void rate_tick(struct dtrainer *t, uint64_t now)
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

static void *thread_main(void *arg)
{
	struct dtrainer *t = arg;
	struct sv_daemon *d = t->d;
	uint64_t wait_ns = (uint64_t)d->conf.max_wait_ms * 1000000ULL, steps;

	runner_start(t);
	while (!atomic_load(&d->stopping)) {
		zmq_pollitem_t it[3] = {
		    {t->ctl, 0, ZMQ_POLLIN, 0},
		    {t->router, 0, ZMQ_POLLIN, 0},
		    {t->pull, 0, ZMQ_POLLIN, 0}, /* not polled while paused: backpressure */
		};
		int paused = atomic_load(&d->prog.paused);
		long timeout = 100;
		uint64_t now = now_mono_ns();

		if (sv_batch_len(t->batch) > 0 && !paused) {
			uint64_t due = t->batch_t0 + wait_ns;

			timeout = due > now ? (long)((due - now) / 1000000ULL) : 0;
			if (timeout > 100)
				timeout = 100;
		}
		atomic_fetch_add(&d->prog.heartbeat, 1);
		if (zmq_poll(it, paused ? 2 : 3, timeout) < 0 && zmq_errno() == ETERM)
			break;
		if (it[0].revents & ZMQ_POLLIN)
			ctl_handle(t);
		apply_live(t);
		if (paused && (it[1].revents & ZMQ_POLLIN))
			ingest_refuse_paused(t);
		else if (!paused && ((it[1].revents | it[2].revents) & ZMQ_POLLIN))
			ingest_group(t);
		now = now_mono_ns();
		rate_tick(t, now);
		if (!paused && sv_batch_len(t->batch) > 0 && now - t->batch_t0 >= wait_ns)
			cut(t, t->B, &t->op, "max_wait_ms");
		steps = atomic_load(&d->prog.steps); /* the runner's, as of its last publish */
		if ((t->ckpt_steps && steps - t->ckpt_steps_at >= t->ckpt_steps) ||
		    (t->ckpt_ms && steps != t->ckpt_steps_at &&
		     now - t->last_ckpt_ns >= t->ckpt_ms * 1000000ULL))
			checkpoint(t, "periodic", NULL);
	}
	/* Stop: take what is already queued (a bounded number of groups, so a
	 * publisher that keeps sending cannot hold the shutdown), train the
	 * batch in hand, checkpoint.  Unread messages were never acked. */
	for (int k = 0; k < 8 && !atomic_load(&d->prog.paused) && ingest_group(t) > 0; k++)
		;
	if (sv_batch_len(t->batch) > 0)
		cut(t, t->B, &t->op, "shutdown");
	checkpoint(t, "shutdown", NULL);
	runner_stop(t);
	return NULL;
}

static int bind_one(void *s, const char *ep, const char *what)
{
	if (curve_socket_setup(s, ep) < 0 || zmq_bind(s, ep) < 0) {
		int e = zmq_errno();

		sv_log(LOG_ERR, "SV-SOCKET-BIND", "cannot bind %s socket to %s: %s", what, ep,
		       zmq_strerror(e));
		return -e;
	}
	sv_log(LOG_INFO, "SV-SOCKET-BIND", "%s socket on %s", what, ep);
	return 0;
}

int trainer_start(struct dtrainer *t)
{
	struct sv_daemon *d = t->d;
	int hwm = d->conf.ingest_hwm, one = 1, rc;

	t->pull = zmq_socket(d->zctx, ZMQ_PULL);
	t->router = zmq_socket(d->zctx, ZMQ_ROUTER);
	t->ctl = zmq_socket(d->zctx, ZMQ_REP);
	if (t->pull == NULL || t->router == NULL || t->ctl == NULL)
		return -zmq_errno();
	zmq_setsockopt(t->pull, ZMQ_RCVHWM, &hwm, sizeof(hwm));
	zmq_setsockopt(t->router, ZMQ_RCVHWM, &hwm, sizeof(hwm));
	zmq_setsockopt(t->router, ZMQ_SNDHWM, &hwm, sizeof(hwm));
	zmq_setsockopt(t->router, ZMQ_ROUTER_MANDATORY, &one, sizeof(one));
	rc = bind_one(t->pull, d->conf.ep_ingest, "ingest (PULL)");
	if (rc == 0)
		rc = bind_one(t->router, d->conf.ep_ingest_ack, "ingest-ack (ROUTER)");
	if (rc == 0 && zmq_bind(t->ctl, SV_CTL_ENDPOINT) < 0)
		rc = -zmq_errno();
	if (rc < 0)
		return rc;
	rc = -pthread_create(&t->th, NULL, thread_main, t);
	if (rc == 0)
		t->started = 1;
	return rc;
}

void trainer_join(struct dtrainer *t)
{
	if (t != NULL && t->started) {
		pthread_join(t->th, NULL);
		t->started = 0;
	}
}

void trainer_close(struct dtrainer *t)
{
	int zero = 0;

	if (t == NULL)
		return;
	trainer_join(t);
	if (t->pull)
		zmq_setsockopt(t->pull, ZMQ_LINGER, &zero, sizeof(zero));
	if (t->router)
		zmq_setsockopt(t->router, ZMQ_LINGER, &zero, sizeof(zero));
	if (t->ctl)
		zmq_setsockopt(t->ctl, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_close(t->pull);
	zmq_close(t->router);
	zmq_close(t->ctl);
	sv_store_txn_abort(t->txn);
	sv_trainer_free(t->tr);
	sv_batch_free(t->batch);
	sv_batch_free(t->batch_run);
	sv_metrics_glue_free(t->mg);
	sv_proto_msgbuf_free(&t->mb);
	free(t->scores);
	ingest_free(t);
	free(t);
}
