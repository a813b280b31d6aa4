/* journal.c - control records, checkpoint and calibration blobs, and the
 * replay driver (see sv/journal.h).  Leaves out: batching and training (the
 * sink's), the store's own record layouts (store.c). */
#include "bytes.h"
#include "sv/journal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sv/error.h"
#include "sv/metrics.h"

/* The seven hyperparameters in blob order. */
#define N_PARAMS 7

static void params_of(const struct sv_optim_params *o, double f[N_PARAMS])
{
	f[0] = o->lr;
	f[1] = o->momentum;
	f[2] = o->dampening;
	f[3] = o->weight_decay;
	f[4] = o->beta1;
	f[5] = o->beta2;
	f[6] = o->eps;
}

void sv_journal_settings_encode(uint8_t out[SV_JOURNAL_SETTINGS_LEN],
                                const struct sv_journal_settings *s)
{
	double f[N_PARAMS];

	params_of(&s->optim, f);
	memset(out, 0, SV_JOURNAL_SETTINGS_LEN);
	out[0] = SV_JOURNAL_VERSION;
	out[1] = (uint8_t)(s->optim.nesterov != 0);
	sv_put32(out + 4, s->batch_size);
	for (int i = 0; i < N_PARAMS; i++)
		sv_putf64(out + 8 + 8 * i, f[i]);
}

int sv_journal_settings_decode(const void *in, size_t len, struct sv_journal_settings *out)
{
	const uint8_t *b = in;
	struct sv_journal_settings s;
	double f[N_PARAMS];

	if (b == NULL || len < SV_JOURNAL_SETTINGS_LEN)
		return SV_ERR_TRUNCATED;
	if (b[0] != SV_JOURNAL_VERSION)
		return SV_ERR_VERSION;
	s = *out;
	s.batch_size = sv_get32(b + 4);
	for (int i = 0; i < N_PARAMS; i++) {
		f[i] = sv_getf64(b + 8 + 8 * i);
		if (!isfinite(f[i]))
			return SV_ERR_CORRUPT;
	}
	if (s.batch_size == 0 || b[1] > 1)
		return SV_ERR_CORRUPT;
	s.optim.nesterov = b[1];
	s.optim.lr = f[0];
	s.optim.momentum = f[1];
	s.optim.dampening = f[2];
	s.optim.weight_decay = f[3];
	s.optim.beta1 = f[4];
	s.optim.beta2 = f[5];
	s.optim.eps = f[6];
	*out = s;
	return 0;
}

void sv_journal_ckpt_encode(uint8_t out[SV_JOURNAL_CKPT_LEN], const struct sv_journal_settings *s,
                            uint64_t pairs_seen)
{
	sv_journal_settings_encode(out, s);
	sv_put64(out + SV_JOURNAL_SETTINGS_LEN, pairs_seen);
}

int sv_journal_ckpt_decode(const void *in, size_t len, struct sv_journal_settings *s,
                           uint64_t *pairs_seen)
{
	int rc = sv_journal_settings_decode(in, len, s);

	if (rc == 0 && len >= SV_JOURNAL_CKPT_LEN)
		*pairs_seen = sv_get64((const uint8_t *)in + SV_JOURNAL_SETTINGS_LEN);
	return rc;
}

size_t sv_journal_calib_size(const struct sv_metrics_window *w)
{
	return 4 + (w ? sv_metrics_window_serialized_size(w) : 0);
}

long sv_journal_calib_encode(void *buf, size_t cap, float threshold,
                             const struct sv_metrics_window *w)
{
	uint32_t u;
	size_t len = 0;
	int rc;

	if (buf == NULL || cap < 4)
		return -ENOSPC;
	memcpy(&u, &threshold, sizeof(u));
	sv_put32(buf, u);
	if (w == NULL)
		return 4;
	rc = sv_metrics_window_serialize(w, (uint8_t *)buf + 4, cap - 4, &len);
	if (rc < 0)
		return rc;
	return (long)(4 + len);
}

int sv_journal_calib_decode(const void *buf, size_t len, float *threshold,
                            struct sv_metrics_window **w)
{
	struct sv_metrics_window *win = NULL;
	uint32_t u;
	float th;
	int rc;

	if (buf == NULL || len < 4)
		return SV_ERR_TRUNCATED;
	u = sv_get32(buf);
	memcpy(&th, &u, sizeof(th));
	if (len > 4) {
		rc = sv_metrics_window_deserialize(&win, (const uint8_t *)buf + 4, len - 4);
		if (rc < 0)
			return rc;
	}
	*threshold = th;
	*w = win;
	return 0;
}

size_t sv_journal_model_encode(void *buf, size_t cap, const struct sv_journal_model *m,
                               const float *W)
{
	size_t nw = (size_t)m->d_in * m->d_out, need = SV_JOURNAL_MODEL_HDR + 4 * nw;
	uint8_t *p = buf;

	if (buf == NULL || cap < need)
		return need;
	memset(p, 0, SV_JOURNAL_MODEL_HDR);
	sv_put16(p, SV_JOURNAL_VERSION);
	sv_put32(p + 4, m->d_in);
	sv_put32(p + 8, m->d_out);
	sv_put32(p + 12, (uint32_t)m->policy);
	sv_put64(p + 16, m->version);
	sv_put64(p + 24, m->steps);
	sv_put64(p + 32, m->stream_seq);
	sv_putf32(p + 40, m->threshold);
	for (size_t i = 0; i < nw; i++)
		sv_putf32(p + SV_JOURNAL_MODEL_HDR + 4 * i, W[i]);
	return need;
}

int sv_journal_model_decode(const void *buf, size_t len, struct sv_journal_model *m,
                            const void **W)
{
	const uint8_t *p = buf;
	struct sv_journal_model x;

	if (buf == NULL || len < SV_JOURNAL_MODEL_HDR)
		return SV_ERR_TRUNCATED;
	if (sv_get16(p) != SV_JOURNAL_VERSION)
		return SV_ERR_VERSION;
	x.d_in = sv_get32(p + 4);
	x.d_out = sv_get32(p + 8);
	x.policy = (int32_t)sv_get32(p + 12);
	x.version = sv_get64(p + 16);
	x.steps = sv_get64(p + 24);
	x.stream_seq = sv_get64(p + 32);
	x.threshold = sv_getf32(p + 40);
	if (x.d_in == 0 || x.d_out == 0 ||
	    (len - SV_JOURNAL_MODEL_HDR) / 4 / x.d_out != x.d_in ||
	    len != SV_JOURNAL_MODEL_HDR + 4 * (size_t)x.d_in * x.d_out)
		return SV_ERR_CORRUPT;
	*m = x;
	*W = p + SV_JOURNAL_MODEL_HDR;
	return 0;
}

int sv_journal_is_cut(const struct sv_store_pair *p)
{
	return p->len_a == SV_JOURNAL_CUT_ID_LEN &&
	       memcmp(p->id_a, SV_JOURNAL_CUT_ID, SV_JOURNAL_CUT_ID_LEN) == 0;
}

void sv_journal_fill_encode(uint8_t out[SV_JOURNAL_FILL_LEN], const struct sv_journal_fill *f)
{
	memset(out, 0, SV_JOURNAL_FILL_LEN);
	out[0] = SV_JOURNAL_VERSION;
	sv_put32(out + 4, f->count);
	sv_put32(out + 8, f->batch_pairs);
	sv_put32(out + 12, f->slice_every);
	sv_put64(out + 16, f->seed);
	sv_put64(out + 24, f->r);
	sv_put64(out + 32, f->first);
	sv_put64(out + 40, f->last);
}

void sv_journal_fill_params(const struct sv_journal_fill *f, struct sv_replay_params *p)
{
	sv_replay_params_default(p);
	p->seed = f->seed;
	p->batch_pairs = f->batch_pairs;
	sv_replay_params_slice(p, f->slice_every);
}

int sv_journal_fill_decode(const void *in, size_t len, struct sv_journal_fill *out)
{
	const uint8_t *b = in;
	struct sv_journal_fill f;
	struct sv_replay_params p;

	if (b == NULL || len < SV_JOURNAL_FILL_LEN)
		return SV_ERR_TRUNCATED;
	if (b[0] != SV_JOURNAL_VERSION)
		return SV_ERR_VERSION;
	f.count = sv_get32(b + 4);
	f.batch_pairs = sv_get32(b + 8);
	f.slice_every = sv_get32(b + 12);
	f.seed = sv_get64(b + 16);
	f.r = sv_get64(b + 24);
	f.first = sv_get64(b + 32);
	f.last = sv_get64(b + 40);
	sv_journal_fill_params(&f, &p);
	if (f.count == 0 || sv_replay_params_check(&p) < 0 || f.first == 0 || f.first > f.last)
		return SV_ERR_CORRUPT;
	*out = f;
	return 0;
}

int sv_journal_is_fill(const struct sv_store_pair *p)
{
	return p->len_a == SV_JOURNAL_FILL_ID_LEN &&
	       memcmp(p->id_a, SV_JOURNAL_FILL_ID, SV_JOURNAL_FILL_ID_LEN) == 0;
}

/* A control-kind record: id_a the kind's reserved id, id_b its blob. */
static int ctl_append(sv_store_txn *t, const char *id, size_t id_len, const void *blob,
                      size_t len, uint64_t *seq)
{
	struct sv_store_pair p = {0};

	p.id_a = id;
	p.len_a = id_len;
	p.id_b = blob;
	p.len_b = len;
	return sv_store_pair_append(t, &p, seq);
}

int sv_journal_fill_append(sv_store_txn *t, const struct sv_journal_fill *f, uint64_t *seq)
{
	uint8_t blob[SV_JOURNAL_FILL_LEN];

	sv_journal_fill_encode(blob, f);
	return ctl_append(t, SV_JOURNAL_FILL_ID, SV_JOURNAL_FILL_ID_LEN, blob, sizeof(blob), seq);
}

/* The u64 fields of the replay state, in blob order. */
#define REPLAY_U64S 13
#define REPLAY_VERSION 2 /* version 1 (208 bytes) had no refit state */

void sv_journal_replay_encode(uint8_t out[SV_JOURNAL_REPLAY_LEN],
                              const struct sv_journal_replay *r)
{
	const uint64_t u[REPLAY_U64S] = {r->r_idle,      r->r_fill,     r->fill_used,
	                                 r->round_first, r->round_last, r->round_done,
	                                 r->best_version, r->steps,     r->pairs,
	                                 r->fill_pairs,  r->zero_grad,  r->base_version,
	                                 r->refit_round};
	uint8_t *p = out + 8 + SV_REPLAY_GATE_BYTES;

	memset(out, 0, SV_JOURNAL_REPLAY_LEN);
	out[0] = REPLAY_VERSION;
	sv_replay_gate_encode(&r->gate, out + 8, SV_REPLAY_GATE_BYTES);
	for (int i = 0; i < REPLAY_U64S; i++, p += 8)
		sv_put64(p, u[i]);
	sv_putf64(p, r->idle_s);
}

int sv_journal_replay_decode(const void *in, size_t len, struct sv_journal_replay *out)
{
	const uint8_t *b = in;
	struct sv_journal_replay r;
	uint64_t u[REPLAY_U64S];
	const uint8_t *p;
	int rc;

	if (b == NULL || len < 1)
		return SV_ERR_TRUNCATED;
	if (b[0] != REPLAY_VERSION)
		return SV_ERR_VERSION;
	if (len < SV_JOURNAL_REPLAY_LEN)
		return SV_ERR_TRUNCATED;
	rc = sv_replay_gate_decode(&r.gate, b + 8, SV_REPLAY_GATE_BYTES);
	if (rc < 0)
		return rc;
	p = b + 8 + SV_REPLAY_GATE_BYTES;
	for (int i = 0; i < REPLAY_U64S; i++, p += 8)
		u[i] = sv_get64(p);
	r.r_idle = u[0];
	r.r_fill = u[1];
	r.fill_used = u[2];
	r.round_first = u[3];
	r.round_last = u[4];
	r.round_done = u[5];
	r.best_version = u[6];
	r.steps = u[7];
	r.pairs = u[8];
	r.fill_pairs = u[9];
	r.zero_grad = u[10];
	r.base_version = u[11];
	r.refit_round = u[12];
	r.idle_s = sv_getf64(p);
	*out = r;
	return 0;
}

int sv_journal_cut_append(sv_store_txn *t, const struct sv_journal_settings *s, uint64_t *seq)
{
	uint8_t blob[SV_JOURNAL_SETTINGS_LEN];

	sv_journal_settings_encode(blob, s);
	return ctl_append(t, SV_JOURNAL_CUT_ID, SV_JOURNAL_CUT_ID_LEN, blob, sizeof(blob), seq);
}

uint64_t sv_journal_item_key(const void *id, size_t len)
{
	return sv_fnv1a64(SV_FNV1A64_INIT, id, len);
}

int sv_journal_replay(sv_store *st, uint64_t from, const struct sv_journal_sink *sink,
                      struct sv_journal_stats *stats)
{
	uint32_t d_in = 0, d_out = 0;
	sv_store_read *r = NULL;
	sv_store_cursor *c = NULL;
	struct sv_store_pair p;
	float *xa, *xb;
	int rc;

	memset(stats, 0, sizeof(*stats));
	sv_store_dims(st, &d_in, &d_out);
	xa = malloc((size_t)d_in * 2 * sizeof(float));
	if (xa == NULL)
		return -ENOMEM;
	xb = xa + d_in;
	rc = sv_store_read_begin(st, &r);
	if (rc == 0)
		rc = sv_store_cursor_open(r, from, &c);
	while (rc == 0 && (rc = sv_store_cursor_next(c, &p)) == 0) {
		stats->last_seq = p.seq;
		if (sv_journal_is_cut(&p)) {
			struct sv_journal_settings s = {0};

			rc = sv_journal_settings_decode(p.id_b, p.len_b, &s);
			if (rc < 0) {
				stats->bad_seq = p.seq;
				break;
			}
			rc = sink->cut(sink->arg, &s, p.seq);
			stats->cuts++;
			continue;
		}
		if (sv_journal_is_fill(&p)) {
			struct sv_journal_fill f;

			rc = sv_journal_fill_decode(p.id_b, p.len_b, &f);
			if (rc < 0) {
				stats->bad_seq = p.seq;
				break;
			}
			if (sink->fill)
				rc = sink->fill(sink->arg, &f, p.seq);
			stats->fills++;
			continue;
		}
		if (sv_store_item_get(r, p.id_a, p.len_a, xa) < 0 ||
		    sv_store_item_get(r, p.id_b, p.len_b, xb) < 0) {
			stats->skipped++;
			continue;
		}
		rc = sink->pair(sink->arg, xa, sv_journal_item_key(p.id_a, p.len_a), xb,
		                sv_journal_item_key(p.id_b, p.len_b), p.label, p.seq);
		stats->pairs++;
	}
	if (rc == SV_ERR_NOTFOUND)
		rc = 0;
	sv_store_cursor_close(c);
	sv_store_read_end(r);
	free(xa);
	return rc;
}
