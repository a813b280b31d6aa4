/* sv/journal.h - the recovery format: what must replay bit for bit.
 *
 * DESIGN
 *
 * W is a function of the pair log.  The daemon trains logged pairs in
 * minibatches of B; a batch is cut early (max_wait_ms, FLUSH, a reload that
 * changes B or the optimizer hyperparameters, shutdown) only by appending a
 * CONTROL RECORD to the log.  A checkpoint stores W, the optimizer state and
 * the position (applied_seq) it reflects.  Recovery loads the active
 * checkpoint and replays every log record after its applied_seq through the
 * same batching:
 *
 *   pair record      resolve both item ids to their vectors (as the items
 *                    are at replay time), add to the batch; B pairs train
 *   control record   train the partial batch, then take the record's
 *                    settings (batch size, optimizer hyperparameters)
 *   fill record      add the logged pairs it names (sv/replay.h's planner
 *                    over the window it records) to the batch; the control
 *                    record that follows in the same group trains them
 *
 * Replay in idle time (sv/replay.h) writes no log records: its steps take
 * effect only through a checkpoint, whose settings blob then carries the
 * replay state (counters, the gate, the round in progress).  A crash loses
 * the idle steps since the last checkpoint, and the restarted daemon redoes
 * them from that state: the planner is a function of what it records.
 *
 * This header owns the encodings of every piece of that state that is not
 * W or the optimizer (sv/optim.h saves those), and the replay driver that
 * walks the log (sv_journal_replay).  It does not own the batching itself:
 * the caller's sink receives pairs and cuts in log order and must treat them
 * exactly as it did live (the daemon's trainer does; tests/test_journal.c
 * shows the rule).
 *
 * ENCODINGS (all integers little-endian; doubles as their IEEE-754 bit
 * patterns, little-endian; each blob starts with a version byte)
 *
 *   control record   a pair record whose id_a is SV_JOURNAL_CUT_ID (7 bytes,
 *                    starting with NUL; the wire format refuses ids that
 *                    contain a NUL, so no real pair carries it), label 0, no
 *                    client key, and whose id_b is the settings blob:
 *   settings blob    SV_JOURNAL_SETTINGS_LEN (64) bytes:
 *                      u8 version = 1, u8 nesterov, u16 0, u32 batch size,
 *                      f64 lr, momentum, dampening, weight_decay, beta1,
 *                      beta2, eps, then zeros to 64 bytes
 *   checkpoint blob  SV_JOURNAL_CKPT_LEN (72) bytes: the settings blob, then
 *                    u64 pairs_seen (pairs trained on, across restarts);
 *                    optionally followed by the replay state blob
 *   fill record      a pair record whose id_a is SV_JOURNAL_FILL_ID, label
 *                    0, no client key, id_b the fill blob:
 *   fill blob        SV_JOURNAL_FILL_LEN (48) bytes: u8 version = 1, u8 0,
 *                    u16 0, u32 count, u32 batch_pairs, u32 slice_every,
 *                    u64 seed, u64 r, u64 first, u64 last (the planner's
 *                    inputs: sv_replay_plan(seed, batch, slice, first, last,
 *                    r) with cap = count)
 *   replay state     SV_JOURNAL_REPLAY_LEN (360) bytes: u8 version = 2, 7
 *                    zeros, the gate (sv_replay_gate_encode, 240 bytes), u64
 *                    r_idle, r_fill, fill_used, round_first, round_last,
 *                    round_done, best_version, steps, pairs, fill_pairs,
 *                    zero_grad, base_version, refit_round, then f64 idle_s
 *                    (version 1, 208 bytes without the refit, is not read:
 *                    the daemon starts replay over)
 *   calibration blob f32 decision threshold, then the prequential window's
 *                    image (sv_metrics_window_serialize, itself versioned);
 *                    the window part may be absent (threshold only)
 *
 * These layouts are the same bytes the daemon wrote before this module
 * existed (it copied host-order values on little-endian machines), so older
 * stores replay unchanged.
 *
 * ERRORS: 0 or a negative code (sv/error.h).  A blob shorter than its layout
 * gives SV_ERR_TRUNCATED, an unknown version byte SV_ERR_VERSION, a batch
 * size of 0 or a non-finite parameter SV_ERR_CORRUPT.  sv_journal_replay
 * stops at the first bad record and names its sequence.
 */
#ifndef SV_JOURNAL_H
#define SV_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "sv/optim.h"
#include "sv/replay.h"
#include "sv/store.h"

#define SV_JOURNAL_VERSION 1
#define SV_JOURNAL_CUT_ID "\0sv-cut"
#define SV_JOURNAL_CUT_ID_LEN 7
#define SV_JOURNAL_SETTINGS_LEN 64
#define SV_JOURNAL_CKPT_LEN (SV_JOURNAL_SETTINGS_LEN + 8)
#define SV_JOURNAL_FILL_ID "\0sv-fil"
#define SV_JOURNAL_FILL_ID_LEN 7
#define SV_JOURNAL_FILL_LEN 48
#define SV_JOURNAL_REPLAY_LEN 360

struct sv_metrics_window;

/* The training settings a control record or checkpoint carries.  The
 * optimizer kind is not recorded (it is fixed for a store): on decode,
 * optim.kind is left as the caller set it. */
struct sv_journal_settings {
	uint32_t batch_size;
	struct sv_optim_params optim;
};

/* Settings blob: encode writes exactly SV_JOURNAL_SETTINGS_LEN bytes.
 * decode reads the first SV_JOURNAL_SETTINGS_LEN of len bytes into *out
 * (written only on success; out->optim.kind untouched). */
void sv_journal_settings_encode(uint8_t out[SV_JOURNAL_SETTINGS_LEN],
                                const struct sv_journal_settings *s);
int sv_journal_settings_decode(const void *in, size_t len, struct sv_journal_settings *out);

/* Checkpoint blob: the settings and pairs_seen.  decode accepts a 64-byte
 * blob without pairs_seen (then *pairs_seen is left as it was). */
void sv_journal_ckpt_encode(uint8_t out[SV_JOURNAL_CKPT_LEN], const struct sv_journal_settings *s,
                            uint64_t pairs_seen);
int sv_journal_ckpt_decode(const void *in, size_t len, struct sv_journal_settings *s,
                           uint64_t *pairs_seen);

/* A fill record: the planner's inputs for count replayed pairs. */
struct sv_journal_fill {
	uint32_t count, batch_pairs, slice_every;
	uint64_t seed, r, first, last;
};

/* Fill blob / record.  decode: SV_ERR_TRUNCATED, SV_ERR_VERSION, or
 * SV_ERR_CORRUPT (a planner input sv_replay_plan would refuse). */
void sv_journal_fill_encode(uint8_t out[SV_JOURNAL_FILL_LEN], const struct sv_journal_fill *f);
int sv_journal_fill_decode(const void *in, size_t len, struct sv_journal_fill *out);
int sv_journal_is_fill(const struct sv_store_pair *p);
int sv_journal_fill_append(sv_store_txn *t, const struct sv_journal_fill *f, uint64_t *seq);

/* The planner parameters a fill names (the others at their defaults). */
void sv_journal_fill_params(const struct sv_journal_fill *f, struct sv_replay_params *p);

/* Replay state: what a checkpoint carries after the checkpoint blob.
 * A round is in progress while round_last != 0: round_done of its steps over
 * the window [round_first, round_last] are in W.  best_version is the
 * checkpoint holding the gate's best W (0: none to restore), base_version
 * the one holding its baseline (round 0), which a refit restores.  While
 * the gate is REFIT, refit_round rounds of the refit are done (the round in
 * progress is round_first..round_last as above). */
struct sv_journal_replay {
	struct sv_replay_gate gate;
	uint64_t r_idle, r_fill, fill_used;
	uint64_t round_first, round_last, round_done;
	uint64_t best_version, base_version, refit_round;
	uint64_t steps, pairs, fill_pairs, zero_grad; /* counters: idle steps, their pairs, fills */
	double idle_s;                                /* seconds of idle replay */
};

/* encode writes SV_JOURNAL_REPLAY_LEN bytes.  decode: 0, SV_ERR_TRUNCATED,
 * SV_ERR_VERSION (checked first: a version 1 blob is refused by it) or the
 * gate's decode error; *out only on success. */
void sv_journal_replay_encode(uint8_t out[SV_JOURNAL_REPLAY_LEN],
                              const struct sv_journal_replay *r);
int sv_journal_replay_decode(const void *in, size_t len, struct sv_journal_replay *out);

/* Calibration blob.  size is an upper bound for encode; encode returns the
 * bytes written or -ENOSPC / a window error.  decode: *threshold always,
 * *w (a new window, the caller frees it) only when the blob carries one,
 * else *w = NULL. */
size_t sv_journal_calib_size(const struct sv_metrics_window *w);
long sv_journal_calib_encode(void *buf, size_t cap, float threshold,
                             const struct sv_metrics_window *w);
int sv_journal_calib_decode(const void *buf, size_t len, float *threshold,
                            struct sv_metrics_window **w);

/* A published model version (the clustered trainer's key-value bucket,
 * docs/SCALING.md), so that a follower can answer with it:
 *   u16 fmt=1, u16 0, u32 d_in, u32 d_out, i32 policy, u64 version,
 *   u64 steps, u64 stream_seq, f32 threshold, u32 0   (48 bytes)
 *   float32[d_in * d_out] W, row-major
 * version is the trainer's own checkpoint version; stream_seq the last
 * pair-stream sequence the trainer had committed when it took it (W has
 * trained on at most that much).  decode borrows: *W points into buf, at
 * any alignment (copy it out with memcpy).  encode returns the bytes
 * written, or the size needed when cap is too small (nothing written then);
 * decode returns 0, SV_ERR_TRUNCATED, SV_ERR_VERSION or SV_ERR_CORRUPT
 * (dims 0, or a length other than 48 + 4 d_in d_out). */
#define SV_JOURNAL_MODEL_HDR 48
struct sv_journal_model {
	uint32_t d_in, d_out;
	int32_t policy; /* enum sv_metrics_policy that chose threshold */
	uint64_t version, steps, stream_seq;
	float threshold;
};
size_t sv_journal_model_encode(void *buf, size_t cap, const struct sv_journal_model *m,
                               const float *W);
int sv_journal_model_decode(const void *buf, size_t len, struct sv_journal_model *m,
                            const void **W);

/* Whether a log record is a control record. */
int sv_journal_is_cut(const struct sv_store_pair *p);

/* Append a control record carrying s to group t; *seq gets its sequence.
 * Errors as sv_store_pair_append. */
int sv_journal_cut_append(sv_store_txn *t, const struct sv_journal_settings *s, uint64_t *seq);

/* The 64-bit key of an item id: the identity graph-mode labels use
 * (sv/batch.h).  FNV-1a over the id bytes. */
uint64_t sv_journal_item_key(const void *id, size_t len);

/* Where replay sends the log, in log order.  Both callbacks return 0 to go
 * on or a negative code, which stops the replay and is returned.  The
 * vectors are valid only during the call. */
struct sv_journal_sink {
	void *arg;
	int (*pair)(void *arg, const float *xa, uint64_t key_a, const float *xb, uint64_t key_b,
	            uint8_t label, uint64_t seq);
	int (*cut)(void *arg, const struct sv_journal_settings *s, uint64_t seq);
	/* NULL: fill records are counted and skipped (a reader that does not
	 * train) */
	int (*fill)(void *arg, const struct sv_journal_fill *f, uint64_t seq);
};

struct sv_journal_stats {
	uint64_t pairs;    /* pair records sent to the sink */
	uint64_t cuts;     /* control records sent to the sink */
	uint64_t fills;    /* fill records */
	uint64_t skipped;  /* pair records naming an item that no longer exists */
	uint64_t last_seq; /* the last record read (0: none) */
	uint64_t bad_seq;  /* on SV_ERR_TRUNCATED/VERSION/CORRUPT: the bad record */
};

/* Replay every record of st's log with seq >= from into sink.  d_in is the
 * store's.  *stats is written in every case (how far it got).  A pair that
 * names a missing item is skipped and counted (that is how items deleted
 * after their pairs were logged replay); a control record that does not
 * decode stops the replay.  Returns 0, -ENOMEM, a decode error of a control
 * record (stats->bad_seq names it), a sink's code, or a store code. */
int sv_journal_replay(sv_store *st, uint64_t from, const struct sv_journal_sink *sink,
                      struct sv_journal_stats *stats);

#endif
