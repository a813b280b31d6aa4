/* test_journal.c - the recovery format (sv/journal.h): blob layouts and
 * errors (fill records and the replay state too), and a log with control
 * records that replays, with no sockets, to the same W bit for bit as the
 * uninterrupted run that wrote it. */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tmpdir.h"
#include "sv/batch.h"
#include "sv/error.h"
#include "sv/journal.h"
#include "sv/metrics.h"
#include "sv/store.h"
#include "sv/train.h"

#define D_IN 16
#define D_OUT 4
#define N_ITEMS 40
#define B_MAX 64

static char dir[64];

static void setup(void)
{
	tmpdir_make(dir, sizeof dir, "journal");
}

static void teardown(void)
{
	tmpdir_remove(dir);
}

TestSuite(journal, .init = setup, .fini = teardown, .timeout = 60);

static sv_store *open_store(void)
{
	struct sv_store_opts o;
	char err[SV_STORE_ERRMSG_MAX], path[128];
	sv_store *st = NULL;
	int rc;

	snprintf(path, sizeof path, "%s/st", dir);
	sv_store_opts_default(&o);
	o.path = path;
	o.d_in = D_IN;
	o.d_out = D_OUT;
	o.sync = SV_STORE_SYNC_NONE;
	rc = sv_store_open(&st, &o, err, sizeof(err));
	cr_assert_eq(rc, 0, "open: %s (%s)", sv_strerror(rc), err);
	return st;
}

static struct sv_journal_settings settings(uint32_t B, double lr)
{
	struct sv_journal_settings s = {0};

	sv_optim_params_default(&s.optim, SV_OPTIM_KIND_ADAM);
	s.batch_size = B;
	s.optim.lr = lr;
	return s;
}

/* ---- blobs ---- */

Test(journal, settings_layout_is_little_endian_and_versioned)
{
	struct sv_journal_settings s = settings(0x01020304, 0.25), back = {0};
	uint8_t b[SV_JOURNAL_SETTINGS_LEN];
	uint64_t lr_bits;

	s.optim.nesterov = 1;
	sv_journal_settings_encode(b, &s);
	cr_assert_eq(b[0], 1);
	cr_assert_eq(b[1], 1);
	cr_assert_eq(b[4], 0x04);
	cr_assert_eq(b[7], 0x01);
	lr_bits = 0;
	for (int i = 7; i >= 0; i--)
		lr_bits = lr_bits << 8 | b[8 + i];
	cr_assert_eq(lr_bits, 0x3fd0000000000000ull); /* 0.25 */
	for (int i = 8 + 7 * 8; i < SV_JOURNAL_SETTINGS_LEN; i++)
		cr_assert_eq(b[i], 0);
	back.optim.kind = SV_OPTIM_KIND_SGD;
	cr_assert_eq(sv_journal_settings_decode(b, sizeof(b), &back), 0);
	cr_assert_eq(back.batch_size, 0x01020304u);
	cr_assert_eq(back.optim.lr, 0.25);
	cr_assert_eq(back.optim.beta2, s.optim.beta2);
	cr_assert_eq(back.optim.eps, s.optim.eps);
	cr_assert_eq(back.optim.nesterov, 1);
	cr_assert_eq(back.optim.kind, SV_OPTIM_KIND_SGD, "kind is not recorded");
}

Test(journal, settings_decode_errors)
{
	struct sv_journal_settings s = settings(32, 1e-3), out = settings(7, 9.0);
	uint8_t b[SV_JOURNAL_SETTINGS_LEN];
	double nan = NAN;

	sv_journal_settings_encode(b, &s);
	cr_assert_eq(sv_journal_settings_decode(b, 10, &out), SV_ERR_TRUNCATED);
	cr_assert_eq(sv_journal_settings_decode(NULL, 64, &out), SV_ERR_TRUNCATED);
	b[0] = 2;
	cr_assert_eq(sv_journal_settings_decode(b, sizeof(b), &out), SV_ERR_VERSION);
	b[0] = 1;
	memset(b + 4, 0, 4);
	cr_assert_eq(sv_journal_settings_decode(b, sizeof(b), &out), SV_ERR_CORRUPT);
	sv_journal_settings_encode(b, &s);
	memcpy(b + 8, &nan, 8);
	cr_assert_eq(sv_journal_settings_decode(b, sizeof(b), &out), SV_ERR_CORRUPT);
	cr_assert_eq(out.batch_size, 7, "out written only on success");
	cr_assert_eq(out.optim.lr, 9.0);
}

Test(journal, checkpoint_blob_roundtrip)
{
	struct sv_journal_settings s = settings(256, 3e-4), back = settings(1, 1.0);
	uint8_t b[SV_JOURNAL_CKPT_LEN];
	uint64_t seen = 0;

	sv_journal_ckpt_encode(b, &s, 0x1122334455667788ull);
	cr_assert_eq(b[SV_JOURNAL_SETTINGS_LEN], 0x88);
	cr_assert_eq(sv_journal_ckpt_decode(b, sizeof(b), &back, &seen), 0);
	cr_assert_eq(back.batch_size, 256);
	cr_assert_eq(back.optim.lr, 3e-4);
	cr_assert_eq(seen, 0x1122334455667788ull);
	seen = 5; /* a settings-only blob leaves pairs_seen alone */
	cr_assert_eq(sv_journal_ckpt_decode(b, SV_JOURNAL_SETTINGS_LEN, &back, &seen), 0);
	cr_assert_eq(seen, 5);
	cr_assert_eq(sv_journal_ckpt_decode(b, 63, &back, &seen), SV_ERR_TRUNCATED);
}

Test(journal, calibration_blob_roundtrip)
{
	struct sv_metrics_window *w = NULL, *w2 = NULL;
	size_t cap, n1 = 0, n2 = 0;
	uint8_t *buf, *img1, *img2;
	float th = 0;
	long len;

	cr_assert_eq(sv_metrics_window_new(&w, 100, SV_METRICS_DEFAULT_BINS, 0.01), 0);
	for (int i = 0; i < 150; i++)
		sv_metrics_window_push(w, (float)(i % 17) / 17.0f, (uint8_t)(i % 3 == 0));
	cap = sv_journal_calib_size(w);
	buf = malloc(cap);
	len = sv_journal_calib_encode(buf, cap, 0.625f, w);
	cr_assert_gt(len, 4);
	cr_assert_eq(sv_journal_calib_encode(buf, 3, 0.5f, w), -ENOSPC);
	cr_assert_eq(sv_journal_calib_decode(buf, (size_t)len, &th, &w2), 0);
	cr_assert_eq(th, 0.625f);
	cr_assert_not_null(w2);
	img1 = malloc(cap);
	img2 = malloc(cap);
	cr_assert_eq(sv_metrics_window_serialize(w, img1, cap, &n1), 0);
	cr_assert_eq(sv_metrics_window_serialize(w2, img2, cap, &n2), 0);
	cr_assert_eq(n1, n2);
	cr_assert_eq(memcmp(img1, img2, n1), 0);
	sv_metrics_window_free(w2);
	w2 = (void *)1;
	cr_assert_eq(sv_journal_calib_decode(buf, 4, &th, &w2), 0, "threshold only");
	cr_assert_null(w2);
	cr_assert_eq(sv_journal_calib_decode(buf, 3, &th, &w2), SV_ERR_TRUNCATED);
	cr_assert_lt(sv_journal_calib_decode(buf, (size_t)len - 5, &th, &w2), 0, "torn window");
	sv_metrics_window_free(w);
	free(buf);
	free(img1);
	free(img2);
}

Test(journal, item_key_is_fnv1a)
{
	cr_assert_eq(sv_journal_item_key("", 0), 0xcbf29ce484222325ull);
	cr_assert_eq(sv_journal_item_key("a", 1), 0xaf63dc4c8601ec8cull);
	cr_assert_eq(sv_journal_item_key("foobar", 6), 0x85944171f73967e8ull);
}

/* ---- replay ---- */

/* The daemon's batching rule: B pairs train; a control record trains the
 * partial batch and then takes its settings. */
struct player {
	sv_trainer *tr;
	sv_batch *b;
	uint32_t B;
	uint64_t applied_seq;
	float scores[B_MAX];
};

static void train(struct player *p)
{
	struct sv_step_stats st;

	if (sv_batch_len(p->b) == 0)
		return;
	cr_assert_eq(sv_trainer_step(p->tr, p->b, p->scores, &st), 0);
	p->applied_seq = sv_batch_last_seq(p->b);
	sv_batch_clear(p->b);
}

static int on_pair(void *arg, const float *xa, uint64_t ka, const float *xb, uint64_t kb,
                   uint8_t y, uint64_t seq)
{
	struct player *p = arg;
	int rc = sv_batch_add(p->b, xa, ka, xb, kb, y, seq);

	if (rc == 0 && sv_batch_len(p->b) >= p->B)
		train(p);
	return rc;
}

static int on_cut(void *arg, const struct sv_journal_settings *s, uint64_t seq)
{
	struct player *p = arg;
	struct sv_optim_params op = s->optim;

	train(p);
	p->B = s->batch_size;
	op.kind = sv_trainer_optim(p->tr)->p.kind;
	cr_assert_eq(sv_trainer_set_optim_params(p->tr, &op), 0);
	if (seq > p->applied_seq)
		p->applied_seq = seq;
	return 0;
}

static void player_new(struct player *p, const float *W0)
{
	struct sv_train_params tp = {0};

	memset(p, 0, sizeof(*p));
	tp.d_in = D_IN;
	tp.d_out = D_OUT;
	tp.seed = 11;
	tp.max_pairs = B_MAX;
	sv_loss_params_default(&tp.loss, SV_LOSS_KIND_NTXENT);
	sv_optim_params_default(&tp.optim, SV_OPTIM_KIND_ADAM);
	cr_assert_eq(sv_trainer_new(&p->tr, &tp, W0), 0);
	cr_assert_eq(sv_batch_new(&p->b, B_MAX, D_IN), 0);
	p->B = 24;
}

static void player_free(struct player *p)
{
	sv_trainer_free(p->tr);
	sv_batch_free(p->b);
}

static void item_vec(int k, float *x)
{
	uint64_t s = 0x9e3779b97f4a7c15ull * (uint64_t)(k + 1);

	for (int j = 0; j < D_IN; j++) {
		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		x[j] = (float)((double)(s >> 11) / 9007199254740992.0 - 0.5) + (float)(k % 5) * 0.3f;
	}
}

static void item_id(int k, char id[16])
{
	snprintf(id, 16, "item-%d", k);
}

/* One scripted record: a pair (ia, ib, label) or, with cut_B != 0, a cut. */
struct rec {
	int ia, ib;
	uint8_t label;
	uint32_t cut_B;
	double cut_lr;
};

#define N_RECS 330

static void script(struct rec *r)
{
	for (int i = 0; i < N_RECS; i++) {
		memset(&r[i], 0, sizeof(r[i]));
		r[i].ia = (i * 7) % N_ITEMS;
		r[i].ib = (i * 13 + (i % 3 == 0 ? 5 : 1)) % N_ITEMS;
		r[i].label = (uint8_t)(r[i].ia % 5 == r[i].ib % 5);
	}
	r[37] = (struct rec){.cut_B = 8, .cut_lr = 5e-3};   /* a reload */
	r[150] = (struct rec){.cut_B = 32, .cut_lr = 1e-3}; /* another */
	r[151] = (struct rec){.cut_B = 32, .cut_lr = 1e-3}; /* max_wait on an empty batch */
	r[251] = (struct rec){.cut_B = 32, .cut_lr = 2e-3};
}

/* Write the script to the log and run it live; the state after record
 * ckpt_at is saved (W, optimizer, settings) as a checkpoint would be. */
struct ckpt {
	float W[D_IN * D_OUT];
	void *optim;
	size_t optim_len;
	uint8_t blob[SV_JOURNAL_CKPT_LEN];
	uint64_t applied_seq;
};

static void run_live(sv_store *st, float *W_out, int ckpt_at, struct ckpt *ck)
{
	struct rec r[N_RECS];
	struct player p;
	sv_store_txn *txn = NULL;
	float xa[D_IN], xb[D_IN];
	char ida[16], idb[16];

	script(r);
	player_new(&p, NULL);
	cr_assert_eq(sv_store_txn_begin(st, &txn), 0);
	for (int k = 0; k < N_ITEMS; k++) {
		item_id(k, ida);
		item_vec(k, xa);
		cr_assert_eq(sv_store_item_put(txn, ida, strlen(ida), xa, 0), 0);
	}
	cr_assert_eq(sv_store_txn_commit(txn), 0);
	for (int i = 0; i < N_RECS; i++) {
		uint64_t seq = 0;

		cr_assert_eq(sv_store_txn_begin(st, &txn), 0);
		if (r[i].cut_B) {
			struct sv_journal_settings s = settings(r[i].cut_B, r[i].cut_lr);

			cr_assert_eq(sv_journal_cut_append(txn, &s, &seq), 0);
			cr_assert_eq(sv_store_txn_commit(txn), 0);
			on_cut(&p, &s, seq);
		} else {
			struct sv_store_pair sp = {0};

			item_id(r[i].ia, ida);
			item_id(r[i].ib, idb);
			sp.id_a = ida;
			sp.len_a = strlen(ida);
			sp.id_b = idb;
			sp.len_b = strlen(idb);
			sp.label = r[i].label;
			cr_assert_eq(sv_store_pair_append(txn, &sp, &seq), 0);
			cr_assert_eq(sv_store_txn_commit(txn), 0);
			item_vec(r[i].ia, xa);
			item_vec(r[i].ib, xb);
			on_pair(&p, xa, sv_journal_item_key(ida, strlen(ida)), xb,
			        sv_journal_item_key(idb, strlen(idb)), r[i].label, seq);
		}
		if (i == ckpt_at && ck != NULL) {
			const struct sv_optim *o = sv_trainer_optim(p.tr);
			struct sv_journal_settings s = {.batch_size = p.B, .optim = o->p};
			long w;

			memcpy(ck->W, sv_trainer_weights(p.tr), sizeof(ck->W));
			ck->optim_len = sv_optim_saved_size(o);
			ck->optim = malloc(ck->optim_len);
			w = sv_optim_save(o, ck->optim, ck->optim_len);
			cr_assert_gt(w, 0);
			ck->optim_len = (size_t)w;
			sv_journal_ckpt_encode(ck->blob, &s, 0);
			ck->applied_seq = p.applied_seq;
		}
	}
	memcpy(W_out, sv_trainer_weights(p.tr), sizeof(float) * D_IN * D_OUT);
	cr_assert_gt(sv_trainer_steps(p.tr), 10);
	player_free(&p);
}

/* Replay st's log from seq `from` into a fresh player (W from the seed);
 * returns what sv_journal_replay did. */
static int replay_fresh(sv_store *st, uint64_t from, struct player *p,
                        struct sv_journal_stats *stats)
{
	struct sv_journal_sink sink = {.arg = p, .pair = on_pair, .cut = on_cut};

	player_new(p, NULL);
	return sv_journal_replay(st, from, &sink, stats);
}

static void assert_same_W(const float *a, const float *b)
{
	cr_assert_eq(memcmp(a, b, sizeof(float) * D_IN * D_OUT), 0, "W differs bit for bit");
}

Test(journal, replay_from_the_start_is_bit_exact)
{
	sv_store *st = open_store();
	float W_live[D_IN * D_OUT], W0[D_IN * D_OUT];
	struct sv_journal_sink sink = {.pair = on_pair, .cut = on_cut};
	struct sv_journal_stats stats;
	struct player p;

	run_live(st, W_live, -1, NULL);
	player_new(&p, NULL);
	memcpy(W0, sv_trainer_weights(p.tr), sizeof(W0));
	sink.arg = &p;
	cr_assert_eq(sv_journal_replay(st, 1, &sink, &stats), 0);
	cr_assert_eq(stats.cuts, 4);
	cr_assert_eq(stats.pairs, N_RECS - 4);
	cr_assert_eq(stats.skipped, 0);
	cr_assert_eq(stats.last_seq, N_RECS);
	cr_assert_neq(memcmp(W0, W_live, sizeof(W0)), 0, "training moved W");
	assert_same_W(sv_trainer_weights(p.tr), W_live);
	player_free(&p);
	sv_store_close(st);
}

Test(journal, replay_after_a_checkpoint_is_bit_exact)
{
	sv_store *st = open_store();
	float W_live[D_IN * D_OUT];
	struct sv_journal_sink sink = {.pair = on_pair, .cut = on_cut};
	struct sv_journal_settings s = settings(1, 1.0);
	struct sv_journal_stats stats;
	struct sv_optim *o = NULL;
	struct ckpt ck = {0};
	struct player p;
	uint64_t seen = 0;

	run_live(st, W_live, 200, &ck); /* mid-batch: B 32, some pairs pending */
	cr_assert_gt(ck.applied_seq, 150);
	player_new(&p, ck.W);
	cr_assert_eq(sv_optim_load(&o, ck.optim, ck.optim_len), 0);
	cr_assert_eq(sv_trainer_set_optim(p.tr, o), 0);
	cr_assert_eq(sv_journal_ckpt_decode(ck.blob, sizeof(ck.blob), &s, &seen), 0);
	p.B = s.batch_size;
	cr_assert_eq(p.B, 32);
	sink.arg = &p;
	cr_assert_eq(sv_journal_replay(st, ck.applied_seq + 1, &sink, &stats), 0);
	assert_same_W(sv_trainer_weights(p.tr), W_live);
	free(ck.optim);
	player_free(&p);
	sv_store_close(st);
}

/* Append one raw record with the cut marker and the given blob. */
static uint64_t append_raw_cut(sv_store *st, const void *blob, size_t len)
{
	struct sv_store_pair sp = {0};
	sv_store_txn *txn = NULL;
	uint64_t seq = 0;

	sp.id_a = SV_JOURNAL_CUT_ID;
	sp.len_a = SV_JOURNAL_CUT_ID_LEN;
	sp.id_b = blob;
	sp.len_b = len;
	cr_assert_eq(sv_store_txn_begin(st, &txn), 0);
	cr_assert_eq(sv_store_pair_append(txn, &sp, &seq), 0);
	cr_assert_eq(sv_store_txn_commit(txn), 0);
	return seq;
}

Test(journal, bad_control_records_stop_replay_with_their_seq)
{
	sv_store *st = open_store();
	float W_live[D_IN * D_OUT];
	struct sv_journal_settings s = settings(16, 1e-3);
	struct sv_journal_stats stats;
	uint8_t blob[SV_JOURNAL_SETTINGS_LEN];
	struct player p;
	uint64_t bad;

	run_live(st, W_live, -1, NULL);
	bad = append_raw_cut(st, "\x01\x00\x00\x00\x10", 5);
	cr_assert_eq(replay_fresh(st, 1, &p, &stats), SV_ERR_TRUNCATED);
	cr_assert_eq(stats.bad_seq, bad);
	cr_assert_eq(stats.pairs, N_RECS - 4, "everything before it was replayed");
	player_free(&p);

	sv_journal_settings_encode(blob, &s);
	blob[0] = 9;
	bad = append_raw_cut(st, blob, sizeof(blob));
	cr_assert_eq(replay_fresh(st, bad, &p, &stats), SV_ERR_VERSION);
	cr_assert_eq(stats.bad_seq, bad);
	player_free(&p);
	sv_store_close(st);
}

Test(journal, pairs_naming_deleted_items_are_skipped_and_counted)
{
	sv_store *st = open_store();
	float W_live[D_IN * D_OUT];
	struct sv_journal_stats stats;
	sv_store_txn *txn = NULL;
	struct player p;

	run_live(st, W_live, -1, NULL);
	cr_assert_eq(sv_store_txn_begin(st, &txn), 0);
	cr_assert_eq(sv_store_item_del(txn, "item-0", 6), 0);
	cr_assert_eq(sv_store_txn_commit(txn), 0);
	cr_assert_eq(replay_fresh(st, 1, &p, &stats), 0);
	cr_assert_gt(stats.skipped, 0);
	cr_assert_eq(stats.pairs + stats.skipped, N_RECS - 4);
	player_free(&p);
	sv_store_close(st);
}

Test(journal, fill_blob_roundtrip_and_errors)
{
	struct sv_journal_fill f = {.count = 7, .batch_pairs = 64, .slice_every = 10, .seed = 99,
	                            .r = 12345, .first = 3, .last = 900},
	                       g;
	uint8_t b[SV_JOURNAL_FILL_LEN];

	sv_journal_fill_encode(b, &f);
	cr_assert_eq(b[0], 1);
	cr_assert_eq(b[4], 7); /* u32 count, little-endian */
	cr_assert_eq(sv_journal_fill_decode(b, sizeof(b), &g), 0);
	cr_assert(g.count == 7 && g.batch_pairs == 64 && g.slice_every == 10 && g.seed == 99 &&
	          g.r == 12345 && g.first == 3 && g.last == 900);
	cr_assert_eq(sv_journal_fill_decode(b, sizeof(b) - 1, &g), SV_ERR_TRUNCATED);
	b[0] = 2;
	cr_assert_eq(sv_journal_fill_decode(b, sizeof(b), &g), SV_ERR_VERSION);
	f.first = 901; /* first > last: the planner would refuse it */
	sv_journal_fill_encode(b, &f);
	cr_assert_eq(sv_journal_fill_decode(b, sizeof(b), &g), SV_ERR_CORRUPT);
	f.first = 3;
	f.slice_every = 1;
	sv_journal_fill_encode(b, &f);
	cr_assert_eq(sv_journal_fill_decode(b, sizeof(b), &g), SV_ERR_CORRUPT);
}

Test(journal, replay_state_roundtrip)
{
	struct sv_journal_replay r, q;
	uint8_t b[SV_JOURNAL_REPLAY_LEN];
	struct sv_replay_params p;

	memset(&r, 0, sizeof(r));
	sv_replay_params_default(&p);
	sv_replay_gate_init(&r.gate);
	sv_replay_gate_judge(&r.gate, &p, 0.8, 100, 100);
	sv_replay_gate_judge(&r.gate, &p, 0.7, 100, 100);
	r.r_idle = 11, r.r_fill = 12, r.fill_used = 13, r.round_first = 14, r.round_last = 15;
	r.round_done = 16, r.best_version = UINT64_MAX, r.steps = 17, r.pairs = 18;
	r.fill_pairs = 19, r.zero_grad = 20, r.idle_s = 2.5;
	r.base_version = 21, r.refit_round = 22;
	sv_journal_replay_encode(b, &r);
	cr_assert_eq(sv_journal_replay_decode(b, sizeof(b), &q), 0);
	cr_assert_eq(q.r_idle, 11);
	cr_assert_eq(q.zero_grad, 20);
	cr_assert_eq(q.base_version, 21);
	cr_assert_eq(q.refit_round, 22);
	cr_assert_eq(q.gate.path, 0, "the undo cut the path back to the baseline");
	cr_assert_eq(q.gate.path_exp[0], 1, "the undone round's rate was recorded");
	cr_assert_eq(q.best_version, UINT64_MAX);
	cr_assert_eq(q.idle_s, 2.5);
	cr_assert_eq(q.gate.state, r.gate.state);
	cr_assert_eq(q.gate.retried, 1, "the undo went on");
	cr_assert_eq(q.gate.best_auc, 0.8);
	cr_assert_eq(sv_journal_replay_decode(b, sizeof(b) - 1, &q), SV_ERR_TRUNCATED);
	b[0] = 3;
	cr_assert_eq(sv_journal_replay_decode(b, sizeof(b), &q), SV_ERR_VERSION);
	b[0] = 1; /* the 208-byte layout before the refit */
	cr_assert_eq(sv_journal_replay_decode(b, 208, &q), SV_ERR_VERSION);
}

static unsigned fills_seen;

static int on_fill(void *arg, const struct sv_journal_fill *f, uint64_t seq)
{
	(void)arg;
	cr_assert_eq(f->count, 5);
	cr_assert_gt(seq, 0);
	fills_seen++;
	return 0;
}

Test(journal, fill_records_reach_the_sink_or_are_counted)
{
	sv_store *st = open_store();
	struct sv_journal_fill f = {.count = 5, .batch_pairs = 64, .slice_every = 10, .seed = 1,
	                            .r = 0, .first = 1, .last = 1};
	struct sv_journal_sink sink = {.pair = NULL, .cut = NULL, .fill = on_fill};
	struct sv_journal_stats stats;
	sv_store_txn *t = NULL;
	uint64_t seq = 0;

	cr_assert_eq(sv_store_txn_begin(st, &t), 0);
	cr_assert_eq(sv_journal_fill_append(t, &f, &seq), 0);
	cr_assert_eq(sv_journal_fill_append(t, &f, &seq), 0);
	cr_assert_eq(sv_store_txn_commit(t), 0);
	fills_seen = 0;
	cr_assert_eq(sv_journal_replay(st, 1, &sink, &stats), 0);
	cr_assert_eq(stats.fills, 2);
	cr_assert_eq(fills_seen, 2);
	cr_assert_eq(stats.pairs, 0, "a fill record is not a pair");
	sink.fill = NULL; /* a reader that does not train counts them */
	cr_assert_eq(sv_journal_replay(st, 1, &sink, &stats), 0);
	cr_assert_eq(stats.fills, 2);
	cr_assert_eq(fills_seen, 2);
	sv_store_close(st);
}

Test(journal, model_blob_roundtrip_and_errors)
{
	struct sv_journal_model m = {.d_in = 3, .d_out = 2, .policy = 1, .version = 7,
	                             .steps = 1234, .stream_seq = 99, .threshold = 0.625f};
	struct sv_journal_model back;
	float W[6] = {1, -2, 0.5f, 3e-8f, -0.0f, 131071}, W2[6];
	uint8_t buf[SV_JOURNAL_MODEL_HDR + 24 + 1];
	const void *pw = NULL;
	size_t n;

	cr_assert_eq(sv_journal_model_encode(buf, 10, &m, W), sizeof buf - 1); /* size only */
	n = sv_journal_model_encode(buf, sizeof buf, &m, W);
	cr_assert_eq(n, SV_JOURNAL_MODEL_HDR + 24);
	cr_assert_eq(buf[0], SV_JOURNAL_VERSION);
	cr_assert_eq(buf[16], 7); /* version, little-endian */
	cr_assert_eq(sv_journal_model_decode(buf, n, &back, &pw), 0);
	cr_assert_eq(back.d_in, 3);
	cr_assert_eq(back.d_out, 2);
	cr_assert_eq(back.policy, 1);
	cr_assert_eq(back.version, 7);
	cr_assert_eq(back.steps, 1234);
	cr_assert_eq(back.stream_seq, 99);
	cr_assert_eq(back.threshold, 0.625f);
	memcpy(W2, pw, sizeof W2);
	cr_assert_eq(memcmp(W, W2, sizeof W), 0);

	cr_assert_eq(sv_journal_model_decode(buf, n - 1, &back, &pw), SV_ERR_CORRUPT);
	cr_assert_eq(sv_journal_model_decode(buf, n + 1, &back, &pw), SV_ERR_CORRUPT);
	cr_assert_eq(sv_journal_model_decode(buf, 47, &back, &pw), SV_ERR_TRUNCATED);
	cr_assert_eq(sv_journal_model_decode(NULL, n, &back, &pw), SV_ERR_TRUNCATED);
	buf[8] = 0; /* d_out 0 */
	cr_assert_eq(sv_journal_model_decode(buf, n, &back, &pw), SV_ERR_CORRUPT);
	buf[0] = 9;
	cr_assert_eq(sv_journal_model_decode(buf, n, &back, &pw), SV_ERR_VERSION);
}
