/* trainer.c - the trainer thread: ingest, group commit, batching, training,
 * snapshots and checkpoints (see trainer.h).
 *
 * Leaves out: sockets other than ingest and control, queries (query.c), the
 * admin protocol beyond the verbs that must run here (admin.c forwards them).
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

#define MAX_PARTS 16            /* routing id, delimiter, SV_PROTO_MAX_FRAMES, spare */
#define CUT_ID "\0sv-cut"       /* control record marker (no client id starts with NUL) */
#define CUT_ID_LEN 7
#define CTL_LEN 64              /* settings blob, see settings_enc */
#define INLINE_ID_LEN 34        /* "~v" + 32 hex digits */

/* One item put or delete of the group in hand (visible to later messages of
 * the same group before the commit). */
struct pend_item {
	uint8_t id[SV_STORE_ID_MAX];
	size_t len;
	long row;                   /* row in pool, -1: deleted in this group */
	int stored;                 /* the put is in the group's transaction */
};

/* One pair staged for the batch, valid once the group commits. */
struct stage_pair {
	size_t row_a, row_b;        /* rows in pool */
	uint64_t key_a, key_b, seq;
	uint8_t label;
};

/* One reply owed once the group commits (acked ROUTER messages). */
struct pend_ack {
	uint8_t rid[256];
	size_t rid_len;
	int delim;                  /* the client sent an empty delimiter frame */
	uint8_t verb;
	uint64_t req_id;
	int status;                 /* reply status if not an ACK (item verbs) */
	struct sv_proto_ack ack;
	size_t row0, nrows;         /* rows in t->ack_rows */
	size_t stage0, nstage;      /* pairs it staged */
};

struct dtrainer {
	struct sv_daemon *d;
	sv_trainer *tr;
	sv_batch *batch;
	size_t max_pairs;
	uint32_t B;                 /* batch size in force */
	struct sv_optim_params op;  /* optimizer parameters in force */
	uint32_t ckpt_steps;        /* live copies of the checkpoint intervals */
	uint64_t ckpt_ms;
	unsigned live_gen;
	uint64_t base_steps;        /* steps of the loaded checkpoint */
	uint64_t version;           /* active checkpoint version (0: none) */
	uint64_t applied_seq;       /* last log record whose effect is in W */
	uint64_t pairs_seen;
	uint64_t batch_t0;          /* monotonic ns of the batch's first pair */
	uint64_t last_ckpt_ns, ckpt_steps_at;
	double last_loss;
	float *scores;
	struct sv_metrics_glue *mg;

	void *pull, *router, *ctl;
	pthread_t th;
	int started;
	struct sv_proto_limits lim;
	struct sv_proto_msgbuf mb;

	/* the group in hand */
	sv_store_txn *txn;
	int group_failed;
	float *pool;                /* rows of d_in floats */
	size_t pool_n, pool_cap;
	struct pend_item *pend;
	size_t pend_n, pend_cap;
	struct stage_pair *stage;
	size_t stage_n, stage_cap;
	struct pend_ack *acks;
	size_t ack_n, ack_cap;
	struct sv_proto_ack_row *ack_rows;
	size_t ack_rows_n, ack_rows_cap;
	uint64_t group_msgs, group_pairs;
	uint64_t group_pair_outcome[SV_PAIR_OUTCOME_COUNT];
};

/* ---- small helpers ------------------------------------------------------ */

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
	size_t c = *cap ? *cap : 64;
	void *q;

	if (need <= *cap)
		return 0;
	while (c < need)
		c *= 2;
	q = realloc(*p, c * elem);
	if (q == NULL)
		return -ENOMEM;
	*p = q;
	*cap = c;
	return 0;
}

static uint64_t fnv1a(const void *p, size_t n, uint64_t h)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

static uint64_t id_key(const void *id, size_t len)
{
	return fnv1a(id, len, 0xcbf29ce484222325ULL);
}

/* 128-bit content hash of an inline vector, 8 bytes at a time (two
 * multiply-xor lanes; not cryptographic: a collision would merge two
 * anonymous vectors). */
static void inline_id(const float *x, uint32_t d, char out[INLINE_ID_LEN + 1])
{
	const uint8_t *b = (const uint8_t *)x;
	size_t n = (size_t)d * sizeof(float), i;
	uint64_t h1 = 0x9e3779b97f4a7c15ULL ^ n, h2 = 0xc2b2ae3d27d4eb4fULL;

	for (i = 0; i + 8 <= n; i += 8) {
		uint64_t w;

		memcpy(&w, b + i, 8);
		h1 = (h1 ^ w) * 0xff51afd7ed558ccdULL;
		h1 ^= h1 >> 29;
		h2 = (h2 + w) * 0xc4ceb9fe1a85ec53ULL;
		h2 ^= h2 >> 31;
	}
	for (; i < n; i++) {
		h1 = (h1 ^ b[i]) * 0xff51afd7ed558ccdULL;
		h2 = (h2 + b[i]) * 0xc4ceb9fe1a85ec53ULL;
	}
	h1 ^= h2 >> 17;
	h2 ^= h1 >> 23;
	snprintf(out, INLINE_ID_LEN + 1, "~v%016llx%016llx", (unsigned long long)h1,
		 (unsigned long long)h2);
}

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
		sv_log(LOG_ERR, "SV-TRAIN-NOMEM", "no memory for a model snapshot; queries keep the previous one");
		return;
	}
	atomic_store(&d->prog.backlog, sv_batch_len(t->batch));
	s->version = t->version;
	s->steps = t->base_steps + sv_trainer_steps(t->tr);
	s->applied_seq = t->applied_seq;
	s->threshold = sv_metrics_glue_threshold(t->mg);
	s->policy = sv_metrics_glue_policy(t->mg);
	atomic_store(&d->prog.threshold, s->threshold);
	sv_snap_publish(&d->snap, s);
}

/* Train on the batch in hand (if any).  replay: no snapshot, quieter. */
static void step(struct dtrainer *t, int replay)
{
	struct sv_step_stats st;
	struct sv_pair_labels lab;
	size_t n = sv_batch_len(t->batch);
	uint64_t last;
	int rc;

	if (n == 0)
		return;
	last = sv_batch_last_seq(t->batch);
	sv_batch_labels(t->batch, &lab);
	debug_step_delay();
	rc = sv_trainer_step(t->tr, t->batch, t->scores, &st);
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
	sv_batch_clear(t->batch);
	if (!replay)
		publish(t);
}

static int batch_add(struct dtrainer *t, const float *xa, uint64_t ka, const float *xb,
		     uint64_t kb, uint8_t y, uint64_t seq, int replay)
{
	int rc;

	if (sv_batch_len(t->batch) == 0)
		t->batch_t0 = now_mono_ns();
	rc = sv_batch_add(t->batch, xa, ka, xb, kb, y, seq);
	if (rc < 0)
		return rc;
	if (sv_batch_len(t->batch) >= t->B)
		step(t, replay);
	return 0;
}

/* Settings blob (control records and checkpoints): u8 version 1,
 * u8 nesterov, u16 0, u32 batch size, then f64 lr, momentum, dampening,
 * weight_decay, beta1, beta2, eps (host order: little-endian only). */
static void settings_enc(uint8_t out[CTL_LEN], uint32_t B, const struct sv_optim_params *o)
{
	double f[7] = { o->lr, o->momentum, o->dampening, o->weight_decay, o->beta1, o->beta2, o->eps };

	memset(out, 0, CTL_LEN);
	out[0] = 1;
	out[1] = (uint8_t)(o->nesterov != 0);
	put_le32(out + 4, B);
	memcpy(out + 8, f, sizeof(f));
}

static int settings_dec(const uint8_t *in, size_t len, uint32_t *B, struct sv_optim_params *o)
{
	double f[7];

	if (len != CTL_LEN || in[0] != 1)
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
		sv_log(LOG_ERR, "SV-TRAIN-PARAMS", "optimizer parameters (lr %g) refused: %s; keeping lr %g",
		       q.lr, sv_strerror(rc), t->op.lr);
		return;
	}
	t->op = q;
}

static uint32_t clamp_batch(struct dtrainer *t, uint32_t B)
{
	if (B == 0)
		B = 1;
	if (B > t->max_pairs) {
		sv_log(LOG_WARNING, "SV-TRAIN-BATCHMAX",
		       "batch size %u above the largest this daemon was started for (%zu); using %zu", B,
		       t->max_pairs, t->max_pairs);
		B = (uint32_t)t->max_pairs;
	}
	return B;
}

/* A control record: train what is accumulated, then take its settings. */
static void apply_ctl(struct dtrainer *t, const uint8_t *blob, size_t len, uint64_t seq,
		      int replay)
{
	struct sv_optim_params op = t->op;
	uint32_t B;

	step(t, replay);
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
	struct sv_store_pair p = { 0 };
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

static int checkpoint(struct dtrainer *t, const char *why, uint64_t *version_out)
{
	struct sv_daemon *d = t->d;
	struct sv_store_model m = { 0 };
	const struct sv_optim *o = sv_trainer_optim(t->tr);
	size_t olen = sv_optim_saved_size(o);
	uint8_t settings[CTL_LEN];
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
		sv_log(LOG_ERR, "SV-CKPT-FAIL", "checkpoint (%s) failed: %s; training continues", why,
		       sv_strerror(rc));
		return rc;
	}
	t->version = v;
	t->last_ckpt_ns = now_mono_ns();
	t->ckpt_steps_at = sv_trainer_steps(t->tr);
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
	if (rc == 0 && o->p.kind != t->d->conf.optim.kind) {
		sv_log(LOG_WARNING, "SV-RECOVER-OPTIM",
		       "checkpoint optimizer kind %d differs from train.optimizer; starting a fresh optimizer state",
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
	}
	if (m->calib_len > 0 && sv_metrics_glue_calib_load(t->mg, t->d, m->calib, m->calib_len) < 0)
		sv_log(LOG_WARNING, "SV-RECOVER-CALIB",
		       "checkpoint v%llu has an unreadable calibration; starting an empty metrics window",
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
		rc = batch_add(t, xa, id_key(p.id_a, p.len_a), xb, id_key(p.id_b, p.len_b), p.label,
			       p.seq, 1);
		n++;
	}
	if (rc == SV_ERR_NOTFOUND)
		rc = 0;
	sv_store_cursor_close(c);
	sv_store_read_end(r);
	free(xa);
	if (rc < 0) {
		sv_log(LOG_ERR, "SV-RECOVER-REPLAY", "replay of the pair log from seq %llu failed: %s",
		       (unsigned long long)from, sv_strerror(rc));
		return rc;
	}
	if (skipped)
		sv_log(LOG_WARNING, "SV-RECOVER-NOITEM",
		       "%llu logged pairs name items that no longer exist; skipped in replay",
		       (unsigned long long)skipped);
	sv_log(LOG_INFO, "SV-RECOVER-REPLAY",
	       "replayed %llu pairs after seq %llu: %llu steps total, applied_seq %llu, %zu pairs in the open batch",
	       (unsigned long long)n, (unsigned long long)(from - 1),
	       (unsigned long long)(t->base_steps + sv_trainer_steps(t->tr)),
	       (unsigned long long)t->applied_seq, sv_batch_len(t->batch));
	return 0;
}

int trainer_open(struct dtrainer **out, struct sv_daemon *d)
{
	struct dtrainer *t = calloc(1, sizeof(*t));
	struct sv_train_params tp = { 0 };
	struct sv_store_model m;
	sv_store_read *r = NULL;
	uint64_t last = 0;
	int rc, have_model = 0;

	if (t == NULL)
		return -ENOMEM;
	t->d = d;
	t->max_pairs = d->conf.batch_max > d->conf.batch_size ? d->conf.batch_max : d->conf.batch_size;
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
		sv_log(LOG_ERR, "SV-RECOVER-LOAD", "cannot load the active model: %s", sv_strerror(rc));
		goto fail;
	}
	atomic_store(&d->prog.last_seq, last);
	if (have_model)
		sv_log(LOG_INFO, "SV-RECOVER-LOAD", "loaded model v%llu: step %llu, applied_seq %llu, log ends at %llu",
		       (unsigned long long)t->version, (unsigned long long)t->base_steps,
		       (unsigned long long)t->applied_seq, (unsigned long long)last);
	else
		sv_log(LOG_INFO, "SV-RECOVER-NEW", "no model in the store: W from seed %llu, log ends at %llu",
		       (unsigned long long)d->conf.seed, (unsigned long long)last);
	rc = replay(t);
	if (rc < 0)
		goto fail;
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
	t->ckpt_steps_at = sv_trainer_steps(t->tr);
	publish(t);
	*out = t;
	return 0;
fail:
	trainer_close(t);
	return rc;
}

/* ---- ingest ------------------------------------------------------------- */

static const char *const own_reason_names[] = {
	[SV_REJECT_NOITEM - SV_REJECT_OWN] = "unknown_item",
	[SV_REJECT_REFUSED - SV_REJECT_OWN] = "wrong_socket",
	[SV_REJECT_STORE - SV_REJECT_OWN] = "store_failed",
	[SV_REJECT_TOOMANY_PARTS - SV_REJECT_OWN] = "too_many_frames",
};

const char *reject_name(int reason)
{
	if (reason >= SV_REJECT_OWN && reason < SV_REJECT_MAX) {
		const char *s = own_reason_names[reason - SV_REJECT_OWN];

		return s ? s : "unknown";
	}
	return sv_proto_reason_name(reason);
}

void count_reject(struct sv_daemon *d, int reason)
{
	if (reason < 0 || reason >= SV_REJECT_MAX)
		reason = 0;
	atomic_fetch_add(&d->cnt.rejects[reason], 1);
}

static struct pend_item *pend_find(struct dtrainer *t, const void *id, size_t len)
{
	for (size_t i = t->pend_n; i-- > 0;)
		if (t->pend[i].len == len && memcmp(t->pend[i].id, id, len) == 0)
			return &t->pend[i];
	return NULL;
}

static int pend_add(struct dtrainer *t, const void *id, size_t len, long row)
{
	struct pend_item *p;

	if (grow((void **)&t->pend, &t->pend_cap, t->pend_n + 1, sizeof(*t->pend)) < 0)
		return -ENOMEM;
	p = &t->pend[t->pend_n++];
	memcpy(p->id, id, len);
	p->len = len;
	p->row = row;
	p->stored = 0;
	return 0;
}

static long pool_row(struct dtrainer *t)
{
	size_t d = t->d->conf.d_in;

	if (t->pool_n + 1 > t->pool_cap) {
		size_t c = t->pool_cap ? t->pool_cap * 2 : 256;
		float *q = realloc(t->pool, c * d * sizeof(float));

		if (q == NULL)
			return -ENOMEM;
		t->pool = q;
		t->pool_cap = c;
	}
	return (long)t->pool_n++;
}

static float *row_ptr(struct dtrainer *t, size_t row)
{
	return t->pool + row * t->d->conf.d_in;
}

static int group_begin(struct dtrainer *t)
{
	int rc;

	if (t->txn != NULL || t->group_failed)
		return t->group_failed;
	rc = sv_store_txn_begin(t->d->store, &t->txn);
	if (rc < 0) {
		t->group_failed = rc;
		t->txn = NULL;
	}
	return rc;
}

/* Resolve one side into a pool row; *store_put tells whether an item put is
 * needed.  Returns 0, SV_ERR_NOTFOUND, or a negative code. */
static int side_resolve(struct dtrainer *t, sv_store_read **r, const struct sv_proto_side *s,
			char inl[INLINE_ID_LEN + 1], const void **id, size_t *len, long *row,
			int *put)
{
	struct pend_item *p;
	long k;
	int rc;

	*put = 0;
	if (s->vec != NULL) {
		k = pool_row(t);
		if (k < 0)
			return (int)k;
		sv_proto_vec_copy(row_ptr(t, (size_t)k), s->vec, t->d->conf.d_in);
		if (s->id != NULL) {
			*id = s->id;
			*len = s->id_len;
		} else {
			inline_id(row_ptr(t, (size_t)k), t->d->conf.d_in, inl);
			*id = inl;
			*len = INLINE_ID_LEN;
		}
		*row = k;
		*put = 1;
		return 0;
	}
	p = pend_find(t, s->id, s->id_len);
	if (p != NULL) {
		if (p->row < 0)
			return SV_ERR_NOTFOUND;
		*id = s->id;
		*len = s->id_len;
		*row = p->row;
		return 0;
	}
	if (*r == NULL) {
		rc = sv_store_read_begin(t->d->store, r);
		if (rc < 0)
			return rc;
	}
	k = pool_row(t);
	if (k < 0)
		return (int)k;
	rc = sv_store_item_get(*r, s->id, s->id_len, row_ptr(t, (size_t)k));
	if (rc < 0) {
		t->pool_n--;
		return rc;
	}
	*id = s->id;
	*len = s->id_len;
	*row = k;
	return 0;
}

struct resolved {
	const void *id[2];
	size_t len[2];
	long row[2];
	int put[2];
	char inl[2][INLINE_ID_LEN + 1];
	int rc;
	uint8_t label;
};

/* Items: pend, then a store put (not for inline ones already pending). */
static int item_put(struct dtrainer *t, const void *id, size_t len, long row, uint16_t flags)
{
	struct pend_item *p = pend_find(t, id, len);
	int rc;

	/* content-addressed: one put per group is enough */
	if ((flags & SV_ITEM_FLAG_INLINE) && p != NULL && p->row >= 0 && p->stored)
		return 0;
	rc = 0;
	if (p == NULL || p->row != row) {
		rc = pend_add(t, id, len, row);
		p = rc == 0 ? &t->pend[t->pend_n - 1] : NULL;
	}
	if (rc == 0) {
		p->stored = 1;
		rc = group_begin(t);
	}
	if (rc == 0)
		rc = sv_store_item_put(t->txn, id, len, row_ptr(t, (size_t)row), flags);
	if (rc < 0 && t->group_failed == 0)
		t->group_failed = rc;
	if (rc == 0)
		atomic_fetch_add(&t->d->cnt.items_put, 1);
	return rc;
}

/* A PAIR / PAIR_BATCH request: resolve, log, stage.  rows gets one ack row
 * per pair. */
static void ingest_pairs(struct dtrainer *t, const struct sv_proto_request *rq,
			 struct pend_ack *a, struct sv_proto_ack_row *rows)
{
	struct sv_proto_iter it = { 0 };
	struct sv_proto_pair pr;
	sv_store_read *r = NULL;
	struct resolved *res = NULL;
	size_t i = 0, n = rq->n;
	int client_done = 0, dup = 0;

	res = calloc(n ? n : 1, sizeof(*res));
	if (res == NULL) {
		t->group_failed = -ENOMEM;
		return;
	}
	/* Phase 1: resolve every side (reads only; no write call while r is open). */
	while (i < n && sv_proto_next_pair(rq, &it, &pr)) {
		const struct sv_proto_side *sd[2] = { &pr.a, &pr.b };

		res[i].rc = 0;
		for (int s = 0; s < 2 && res[i].rc == 0; s++) {
			res[i].rc = side_resolve(t, &r, sd[s], res[i].inl[s], &res[i].id[s],
						 &res[i].len[s], &res[i].row[s], &res[i].put[s]);
			if (res[i].rc == 0 && res[i].put[s])
				pend_add(t, res[i].id[s], res[i].len[s], res[i].row[s]);
		}
		rows[i].outcome = SV_PROTO_OUTCOME_COMMITTED;
		rows[i].reason = 0;
		rows[i].status = SV_PROTO_STATUS_OK;
		res[i].label = pr.label;
		i++;
	}
	sv_store_read_end(r);
	n = i;
	/* Phase 2: item puts and appends, in message order. */
	for (i = 0; i < n && t->group_failed == 0; i++) {
		struct sv_store_pair sp = { 0 };
		uint8_t label = res[i].label;
		uint64_t seq = 0;
		int rc = res[i].rc;

		if (rc == SV_ERR_NOTFOUND) {
			rows[i].outcome = SV_PROTO_OUTCOME_REJECTED;
			rows[i].status = SV_PROTO_STATUS_NOT_FOUND;
			a->ack.n_rejected++;
			count_reject(t->d, SV_REJECT_NOITEM);
			t->group_pair_outcome[SV_PAIR_OUTCOME_REJECTED]++;
			sv_log(LOG_WARNING, "SV-INGEST-NOITEM",
			       "pair %zu of request %llu names an unknown item; dropping pair", i,
			       (unsigned long long)rq->hdr.request_id);
			continue;
		}
		if (rc < 0) {
			t->group_failed = rc;
			break;
		}
		if (dup) {
			rows[i].outcome = SV_PROTO_OUTCOME_DUPLICATE;
			rows[i].status = SV_PROTO_STATUS_DUPLICATE;
			a->ack.n_duplicate++;
			t->group_pair_outcome[SV_PAIR_OUTCOME_DUPLICATE]++;
			continue;
		}
		for (int s = 0; s < 2; s++)
			if (res[i].put[s] &&
			    item_put(t, res[i].id[s], res[i].len[s], res[i].row[s],
				     res[i].id[s] == res[i].inl[s] ? SV_ITEM_FLAG_INLINE : 0) < 0)
				break;
		if (t->group_failed || group_begin(t) < 0)
			break;
		sp.id_a = res[i].id[0];
		sp.len_a = res[i].len[0];
		sp.id_b = res[i].id[1];
		sp.len_b = res[i].len[1];
		sp.label = label;
		if (rq->has_client && !client_done) {
			/* The message's (client, seq) keys its first logged pair: a
			 * repeat of the message is a duplicate as a whole. */
			sp.client = rq->client.id;
			sp.client_len = rq->client.id_len;
			sp.client_seq = rq->client.seq;
			client_done = 1;
		}
		rc = sv_store_pair_append(t->txn, &sp, &seq);
		if (rc == SV_ERR_DUPLICATE) {
			dup = 1;
			rows[i].outcome = SV_PROTO_OUTCOME_DUPLICATE;
			rows[i].status = SV_PROTO_STATUS_DUPLICATE;
			a->ack.n_duplicate++;
			t->group_pair_outcome[SV_PAIR_OUTCOME_DUPLICATE]++;
			continue;
		}
		if (rc < 0) {
			t->group_failed = rc;
			break;
		}
		if (grow((void **)&t->stage, &t->stage_cap, t->stage_n + 1, sizeof(*t->stage)) < 0) {
			t->group_failed = -ENOMEM;
			break;
		}
		t->stage[t->stage_n++] = (struct stage_pair){
			.row_a = (size_t)res[i].row[0],
			.row_b = (size_t)res[i].row[1],
			.key_a = id_key(sp.id_a, sp.len_a),
			.key_b = id_key(sp.id_b, sp.len_b),
			.seq = seq,
			.label = label,
		};
		a->nstage++;
		a->ack.n_committed++;
		t->group_pair_outcome[SV_PAIR_OUTCOME_LOGGED]++;
		atomic_store(&t->d->prog.last_seq, seq);
	}
	free(res);
}

/* Reply frames out of t->mb on the ROUTER, after the envelope. */
static void send_reply(struct dtrainer *t, const uint8_t *rid, size_t rid_len, int delim)
{
	int more = t->mb.n > 0 ? ZMQ_SNDMORE : 0;

	if (zmq_send(t->router, rid, rid_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
		goto fail;
	if (delim && zmq_send(t->router, "", 0, more | ZMQ_DONTWAIT) < 0)
		goto fail;
	for (size_t i = 0; i < t->mb.n; i++)
		if (zmq_send(t->router, t->mb.frames[i].data, t->mb.frames[i].len,
			     (i + 1 < t->mb.n ? ZMQ_SNDMORE : 0) | ZMQ_DONTWAIT) < 0)
			goto fail;
	return;
fail:
	atomic_fetch_add(&t->d->cnt.unroutable, 1);
	sv_log(LOG_INFO, "SV-INGEST-UNROUTABLE", "cannot send an ack (%s); client gone?",
	       zmq_strerror(zmq_errno()));
}

static struct pend_ack *ack_new(struct dtrainer *t, const uint8_t *rid, size_t rid_len, int delim)
{
	struct pend_ack *a;

	if (grow((void **)&t->acks, &t->ack_cap, t->ack_n + 1, sizeof(*t->acks)) < 0)
		return NULL;
	a = &t->acks[t->ack_n++];
	memset(a, 0, sizeof(*a));
	if (rid_len > sizeof(a->rid))
		rid_len = sizeof(a->rid);
	memcpy(a->rid, rid, rid_len);
	a->rid_len = rid_len;
	a->delim = delim;
	a->row0 = t->ack_rows_n;
	a->stage0 = t->stage_n;
	return a;
}

/* One ingest message (frames without envelope).  acked: a reply is owed
 * (a != NULL).  Malformed messages change nothing and are answered at once. */
static void ingest_one(struct dtrainer *t, const struct sv_proto_frame *fr, size_t nfr,
		       struct pend_ack *a, const char *where)
{
	struct sv_proto_request rq;
	struct sv_proto_error err;
	int rc;

	memset(&err, 0, sizeof(err));
	rc = sv_proto_decode_request(fr, nfr, &t->lim, &rq, &err);
	if (rc < 0) {
		count_reject(t->d, (int)err.reason);
		atomic_fetch_add(&t->d->cnt.pairs[SV_PAIR_OUTCOME_REJECTED], 1);
		sv_log(LOG_WARNING, "SV-INGEST-MALFORMED", "%s: %s (%s); dropping message", where,
		       err.msg, sv_proto_reason_name((int)err.reason));
		if (a != NULL) {
			a->status = SV_PROTO_STATUS_MALFORMED;
			a->verb = err.have_header ? err.header.verb : 0;
			a->req_id = err.have_header ? err.header.request_id : 0;
			reply_error(&t->mb, a->verb, a->req_id, SV_PROTO_STATUS_MALFORMED,
				    (int)err.reason, err.msg);
			send_reply(t, a->rid, a->rid_len, a->delim);
			t->ack_n--; /* answered */
		}
		return;
	}
	if (a != NULL) {
		a->verb = rq.hdr.verb;
		a->req_id = rq.hdr.request_id;
	}
	switch (rq.hdr.verb) {
	case SV_PROTO_VERB_PAIR:
	case SV_PROTO_VERB_PAIR_BATCH: {
		struct sv_proto_ack_row *rows;

		if (grow((void **)&t->ack_rows, &t->ack_rows_cap, t->ack_rows_n + rq.n,
			 sizeof(*t->ack_rows)) < 0) {
			t->group_failed = -ENOMEM;
			return;
		}
		rows = t->ack_rows + t->ack_rows_n;
		t->ack_rows_n += rq.n;
		if (a == NULL) {
			struct pend_ack tmp = { 0 };

			ingest_pairs(t, &rq, &tmp, rows);
			t->ack_rows_n -= rq.n;
		} else {
			a->nrows = rq.n;
			a->ack.n = (uint32_t)rq.n;
			a->ack.client_seq = rq.has_client ? rq.client.seq : 0;
			ingest_pairs(t, &rq, a, rows);
		}
		t->group_pairs += rq.n;
		break;
	}
	case SV_PROTO_VERB_ITEM_PUT: {
		long row = pool_row(t);

		if (row < 0) {
			t->group_failed = (int)row;
			return;
		}
		sv_proto_vec_copy(row_ptr(t, (size_t)row), rq.item.vec, t->d->conf.d_in);
		item_put(t, rq.item.id, rq.item.id_len, row, 0);
		if (a != NULL)
			a->status = SV_PROTO_STATUS_OK;
		break;
	}
	case SV_PROTO_VERB_ITEM_DEL:
		if (group_begin(t) < 0)
			return;
		rc = sv_store_item_del(t->txn, rq.item.id, rq.item.id_len);
		if (rc == 0 || rc == SV_ERR_NOTFOUND) {
			pend_add(t, rq.item.id, rq.item.id_len, -1);
			if (rc == 0)
				atomic_fetch_add(&t->d->cnt.items_del, 1);
		} else {
			t->group_failed = rc;
		}
		if (a != NULL)
			a->status = rc == 0 ? SV_PROTO_STATUS_OK : SV_PROTO_STATUS_NOT_FOUND;
		break;
	default:
		count_reject(t->d, SV_REJECT_REFUSED);
		sv_log(LOG_WARNING, "SV-INGEST-VERB", "%s: verb %s is not an ingest verb; refused", where,
		       sv_proto_verb_name(rq.hdr.verb) ? sv_proto_verb_name(rq.hdr.verb) : "?");
		if (a != NULL) {
			reply_error(&t->mb, rq.hdr.verb, rq.hdr.request_id, SV_PROTO_STATUS_REFUSED, 0,
				    "not an ingest verb: send it to the query or admin socket");
			send_reply(t, a->rid, a->rid_len, a->delim);
			t->ack_n--;
		}
		break;
	}
}

/* Receive one multipart message from s into msgs (n parts).  Returns the
 * part count, 0 when nothing is waiting, or -1 (too many parts; drained). */
static int recv_parts(void *s, zmq_msg_t *msgs, int cap)
{
	int n = 0, more = 1;

	while (more) {
		zmq_msg_t m;

		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, s, n == 0 ? ZMQ_DONTWAIT : 0) < 0) {
			zmq_msg_close(&m);
			if (n == 0)
				return 0;
			break;
		}
		more = zmq_msg_more(&m);
		if (n < cap)
			msgs[n++] = m;
		else {
			zmq_msg_close(&m);
			n = cap + 1;
		}
	}
	if (n > cap) {
		for (int i = 0; i < cap; i++)
			zmq_msg_close(&msgs[i]);
		return -1;
	}
	return n;
}

static void close_parts(zmq_msg_t *msgs, int n)
{
	for (int i = 0; i < n; i++)
		zmq_msg_close(&msgs[i]);
}

static void frames_of(zmq_msg_t *msgs, int n, struct sv_proto_frame *fr)
{
	for (int i = 0; i < n; i++) {
		fr[i].data = zmq_msg_data(&msgs[i]);
		fr[i].len = zmq_msg_size(&msgs[i]);
	}
}

static void group_reset(struct dtrainer *t)
{
	t->txn = NULL;
	t->group_failed = 0;
	t->pool_n = 0;
	t->pend_n = 0;
	t->stage_n = 0;
	t->ack_n = 0;
	t->ack_rows_n = 0;
	t->group_msgs = 0;
	t->group_pairs = 0;
	memset(t->group_pair_outcome, 0, sizeof(t->group_pair_outcome));
}

/* Commit the group, answer the acked messages, stage pairs into batches. */
static void group_finish(struct dtrainer *t)
{
	struct sv_daemon *d = t->d;
	int rc = t->group_failed;

	if (t->txn != NULL) {
		if (rc == 0)
			rc = sv_store_txn_commit(t->txn);
		else
			sv_store_txn_abort(t->txn);
		t->txn = NULL;
		if (rc == 0)
			atomic_fetch_add(&d->cnt.commits, 1);
	}
	if (rc < 0) {
		uint64_t lost = t->group_pair_outcome[SV_PAIR_OUTCOME_LOGGED];

		count_reject(d, SV_REJECT_STORE);
		atomic_fetch_add(&d->cnt.pairs[SV_PAIR_OUTCOME_FAILED], lost);
		sv_log(LOG_ERR, "SV-STORE-COMMIT",
		       "group of %llu messages (%llu pairs) not stored: %s; acked clients get INTERNAL, fire-and-forget pairs are lost",
		       (unsigned long long)t->group_msgs, (unsigned long long)lost,
		       d->store ? sv_store_errmsg(d->store) : sv_strerror(rc));
		t->stage_n = 0;
		t->group_pair_outcome[SV_PAIR_OUTCOME_LOGGED] = 0;
		t->group_pair_outcome[SV_PAIR_OUTCOME_DUPLICATE] = 0;
	}
	for (int o = 0; o < SV_PAIR_OUTCOME_COUNT; o++)
		if (t->group_pair_outcome[o])
			atomic_fetch_add(&d->cnt.pairs[o], t->group_pair_outcome[o]);
	for (size_t i = 0; i < t->ack_n; i++) {
		struct pend_ack *a = &t->acks[i];

		if (rc < 0) {
			reply_error(&t->mb, a->verb, a->req_id, SV_PROTO_STATUS_INTERNAL, 0,
				    "store commit failed; nothing of this message was stored");
		} else if (a->verb == SV_PROTO_VERB_PAIR || a->verb == SV_PROTO_VERB_PAIR_BATCH) {
			int st = SV_PROTO_STATUS_OK;

			if (a->ack.n_rejected)
				st = SV_PROTO_STATUS_PARTIAL;
			if (a->ack.n_duplicate == a->ack.n && a->ack.n > 0)
				reply_error(&t->mb, a->verb, a->req_id, SV_PROTO_STATUS_DUPLICATE, 0,
					    "already committed: this (client id, seq) was logged before");
			else if (sv_proto_encode_reply_ack(&t->mb, a->verb, a->req_id, st, NULL,
							   &a->ack, t->ack_rows + a->row0) < 0)
				reply_error(&t->mb, a->verb, a->req_id, SV_PROTO_STATUS_INTERNAL, 0,
					    "cannot encode the ack");
		} else {
			reply_error(&t->mb, a->verb, a->req_id, a->status, 0,
				    a->status == SV_PROTO_STATUS_NOT_FOUND ? "no such item" : NULL);
		}
		send_reply(t, a->rid, a->rid_len, a->delim);
	}
	for (size_t i = 0; i < t->stage_n; i++) {
		struct stage_pair *s = &t->stage[i];

		batch_add(t, row_ptr(t, s->row_a), s->key_a, row_ptr(t, s->row_b), s->key_b,
			  s->label, s->seq, 0);
	}
	atomic_store(&d->prog.backlog, sv_batch_len(t->batch));
	group_reset(t);
}

/* Read up to group_max messages from the ingest sockets and commit them as
 * one group.  Returns the number of messages read. */
static size_t ingest_group(struct dtrainer *t)
{
	zmq_msg_t msgs[MAX_PARTS];
	struct sv_proto_frame fr[MAX_PARTS];
	size_t got = 0, limit = t->d->conf.group_max;
	int idle[2] = { 0, 0 };

	group_reset(t);
	while (got < limit && t->group_pairs < limit && !(idle[0] && idle[1]) &&
	       t->group_failed == 0) {
		int n;

		/* fire and forget */
		n = idle[0] ? 0 : recv_parts(t->pull, msgs, MAX_PARTS);
		if (n == 0) {
			idle[0] = 1;
		} else if (n < 0) {
			count_reject(t->d, SV_REJECT_TOOMANY_PARTS);
			sv_log(LOG_WARNING, "SV-INGEST-FRAMES", "ingest: message with more than %d frames; dropping message",
			       MAX_PARTS);
			got++;
		} else {
			frames_of(msgs, n, fr);
			ingest_one(t, fr, (size_t)n, NULL, "ingest");
			close_parts(msgs, n);
			got++;
			t->group_msgs++;
		}
		/* acked: [routing id][optional empty delimiter][message frames] */
		n = idle[1] ? 0 : recv_parts(t->router, msgs, MAX_PARTS);
		if (n == 0) {
			idle[1] = 1;
		} else if (n < 0) {
			count_reject(t->d, SV_REJECT_TOOMANY_PARTS);
			sv_log(LOG_WARNING, "SV-INGEST-FRAMES", "ingest-ack: message with more than %d frames; dropping message",
			       MAX_PARTS);
			got++;
		} else {
			int delim = n >= 3 && zmq_msg_size(&msgs[1]) == 0;
			int skip = 1 + delim;
			struct pend_ack *a = ack_new(t, zmq_msg_data(&msgs[0]), zmq_msg_size(&msgs[0]),
						     delim);

			frames_of(msgs, n, fr);
			if (a == NULL)
				t->group_failed = -ENOMEM;
			else
				ingest_one(t, fr + skip, (size_t)(n - skip), a, "ingest-ack");
			close_parts(msgs, n);
			got++;
			t->group_msgs++;
		}
	}
	group_finish(t);
	return got;
}

/* While paused: acked messages are answered PAUSED (nothing stored), the
 * fire-and-forget socket is left unread so its senders block at the HWM. */
static void refuse_paused(struct dtrainer *t)
{
	zmq_msg_t msgs[MAX_PARTS];
	struct sv_proto_frame fr[MAX_PARTS];
	int n;

	while ((n = recv_parts(t->router, msgs, MAX_PARTS)) != 0) {
		struct sv_proto_request rq;
		struct sv_proto_error err;
		int delim, skip;

		if (n < 0)
			continue;
		delim = n >= 3 && zmq_msg_size(&msgs[1]) == 0;
		skip = 1 + delim;
		frames_of(msgs, n, fr);
		memset(&err, 0, sizeof(err));
		if (sv_proto_decode_request(fr + skip, (size_t)(n - skip), &t->lim, &rq, &err) < 0) {
			count_reject(t->d, (int)err.reason);
			reply_error(&t->mb, err.have_header ? err.header.verb : 0,
				    err.have_header ? err.header.request_id : 0,
				    SV_PROTO_STATUS_MALFORMED, (int)err.reason, err.msg);
		} else {
			reply_error(&t->mb, rq.hdr.verb, rq.hdr.request_id, SV_PROTO_STATUS_PAUSED, 0,
				    "training is paused (admin PAUSE); nothing stored, retry after RESUME");
		}
		send_reply(t, zmq_msg_data(&msgs[0]), zmq_msg_size(&msgs[0]), delim);
		close_parts(msgs, n);
	}
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

static void ctl_handle(struct dtrainer *t)
{
	zmq_msg_t msgs[MAX_PARTS];
	struct sv_proto_frame fr[MAX_PARTS];
	struct sv_proto_request rq;
	struct sv_proto_error err;
	char msg[256] = "";
	int n = recv_parts(t->ctl, msgs, MAX_PARTS), rc = 0;

	if (n <= 0)
		return;
	frames_of(msgs, n, fr);
	if (sv_proto_decode_request(fr, (size_t)n, &t->lim, &rq, &err) < 0) {
		/* admin.c decoded it already; cannot happen */
		memset(&rq, 0, sizeof(rq));
		ctl_reply(t, &rq, SV_PROTO_STATUS_INTERNAL, "control decode failed", NULL);
		close_parts(msgs, n);
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
	case SV_PROTO_VERB_PAUSE:
		atomic_store(&t->d->prog.paused, 1);
		sv_log(LOG_NOTICE, "SV-ADMIN-PAUSE",
		       "training paused: acked ingest answered PAUSED, fire-and-forget held back until RESUME");
		snprintf(msg, sizeof(msg), "paused");
		break;
	case SV_PROTO_VERB_RESUME:
		atomic_store(&t->d->prog.paused, 0);
		sv_log(LOG_NOTICE, "SV-ADMIN-RESUME", "training resumed");
		snprintf(msg, sizeof(msg), "resumed");
		break;
	case SV_PROTO_VERB_FLUSH: {
		size_t n_b = sv_batch_len(t->batch);

		if (n_b > 0)
			rc = cut(t, t->B, &t->op, "flush");
		if (rc == 0)
			rc = sv_store_sync(t->d->store);
		snprintf(msg, sizeof(msg), rc == 0 ? "flushed: trained %zu pending pairs" : "flush failed",
			 n_b);
		break;
	}
	default:
		rc = SV_ERR_PROTO_VERB;
		snprintf(msg, sizeof(msg), "not a trainer verb");
		break;
	}
	ctl_reply(t, &rq, rc == 0 ? SV_PROTO_STATUS_OK :
			  rc == SV_ERR_NOTFOUND ? SV_PROTO_STATUS_NOT_FOUND : SV_PROTO_STATUS_INTERNAL,
		  msg, NULL);
	close_parts(msgs, n);
}

/* ---- the thread --------------------------------------------------------- */

static void apply_live(struct dtrainer *t)
{
	unsigned gen = atomic_load(&t->d->live_gen);
	struct sv_live lv;
	uint32_t B;

	if (gen == t->live_gen)
		return;
	t->live_gen = gen;
	pthread_mutex_lock(&t->d->live_mu);
	lv = t->d->live;
	pthread_mutex_unlock(&t->d->live_mu);
	t->ckpt_steps = lv.ckpt_steps;
	t->ckpt_ms = lv.ckpt_ms;
	if (sv_metrics_glue_set_policy(t->mg, lv.threshold_policy, lv.threshold, lv.target_far,
				       lv.min_pairs) < 0)
		sv_log(LOG_ERR, "SV-RELOAD-POLICY", "threshold policy %d refused; keeping the old one",
		       lv.threshold_policy);
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

static void *thread_main(void *arg)
{
	struct dtrainer *t = arg;
	struct sv_daemon *d = t->d;
	uint64_t wait_ns = (uint64_t)d->conf.max_wait_ms * 1000000ULL;

	while (!atomic_load(&d->stopping)) {
		zmq_pollitem_t it[3] = {
			{ t->ctl, 0, ZMQ_POLLIN, 0 },
			{ t->router, 0, ZMQ_POLLIN, 0 },
			{ t->pull, 0, ZMQ_POLLIN, 0 }, /* not polled while paused: backpressure */
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
			refuse_paused(t);
		else if (!paused && ((it[1].revents | it[2].revents) & ZMQ_POLLIN))
			ingest_group(t);
		now = now_mono_ns();
		if (!paused && sv_batch_len(t->batch) > 0 && now - t->batch_t0 >= wait_ns)
			cut(t, t->B, &t->op, "max_wait_ms");
		if ((t->ckpt_steps && sv_trainer_steps(t->tr) - t->ckpt_steps_at >= t->ckpt_steps) ||
		    (t->ckpt_ms && sv_trainer_steps(t->tr) != t->ckpt_steps_at &&
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
	sv_metrics_glue_free(t->mg);
	sv_proto_msgbuf_free(&t->mb);
	free(t->scores);
	free(t->pool);
	free(t->pend);
	free(t->stage);
	free(t->acks);
	free(t->ack_rows);
	free(t);
}
