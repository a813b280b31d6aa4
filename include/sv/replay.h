/* sv/replay.h - replay from the retained pair log, and the gate that stops it.
 *
 * Replay trains logged pairs again, in idle time or to fill a batch that the
 * feed left short, so that every label is used more than once.  Unguarded it
 * overfits (LEARNING_NOTES.md: 600 pairs, 30 epochs, AUC 0.90 -> 0.80), so
 * this module has two parts a daemon drives, both pure and deterministic:
 *
 *   planner  which logged pairs form replay batch number r.  The answer is a
 *            function of (seed, r, first, last) only: the retained log window
 *            [first, last] of pair sequences and the replay step counter.  A
 *            daemon that records r and the window in its log (or derives them
 *            from its cuts) redoes every replay batch bit for bit on recovery.
 *   gate     a held-back slice of the fresh pairs scores W after every replay
 *            round; the gate keeps the best W seen, goes on while the score
 *            holds, and undoes the replay (back to the best W) and stops it as
 *            soon as the score falls by more than its own uncertainty, or when
 *            it has not improved for `patience` rounds, or after max_rounds.
 *
 * The slice.  Every slice_every-th pair of the log (seq % slice_every == 0;
 * every slice_dense_every-th among the first slice_dense_until, see
 * sv_replay_params_slice) belongs to the slice: arrival order is random, so this is a random sample,
 * and it lets the planner count replayable pairs in O(1).  Slice
 * pairs are trained once as fresh pairs like every other pair (so the fresh
 * path is exactly one pass, as with replay off), but not replayed while the
 * gate judges (only the refit, below, replays them).  Every
 * W the gate compares has therefore seen each slice pair exactly once, while
 * replay drives the training pairs many times: a W that overfits the replayed
 * pairs loses AUC on the slice.  The one fresh exposure biases the score in
 * favour of the W right after the stream (the least replayed), so the gate
 * errs towards stopping early, never towards overfitting.  Evaluation data
 * is never involved.
 *
 * Uncertainty.  The gate computes the standard error of the slice AUC
 * (Hanley and McNeil's formula from the AUC and the class counts) and treats
 * a drop below the best by more than tol_z standard errors as overfitting.
 * Below min_slice positives or negatives the score is noise and replay is not
 * started at all (SV_REPLAY_STATE_WAIT).
 *
 * Rounds.  A round is ceil(window / batch) replay steps, one pass over the
 * replayable pairs of the window in expectation.  The daemon runs replay steps
 * one at a time when it is idle; after each round it scores the slice and asks
 * the gate.  A fresh step moves W outside replay's control: the gate then
 * keeps its best score as the reference but can no longer restore it
 * (sv_replay_gate_fresh): an undo never crosses a fresh step.
 *
 * Refit (params.refit, on by default).  Once the gate has stopped for good
 * with its best W reached by P >= 1 rounds, the slice has done its job: the
 * gate goes to SV_REPLAY_STATE_REFIT instead of STOPPED.  The daemon then
 * restores the baseline W and optimizer state (round 0, the W right after
 * the fresh pass, which it kept since the first KEEP) and replays P rounds
 * over every pair of the window, slice included (SV_REPLAY_PLAN_WITH_SLICE),
 * round q at the rate of the best path's round q (sv_replay_gate_refit_lr),
 * then calls sv_replay_gate_refit_done.  The best path is the chain of
 * rounds that led from the baseline to the best W: rounds undone are not on
 * it.  So the slice's labels reach the model along the schedule the gate
 * validated, for P more rounds of idle time.  With params.refit_average the
 * last refit round ends with W set to the mean of its iterates (W after
 * each of its steps): a refit is not judged, so it cannot pick its luckiest
 * round as the gate did, and the mean takes out most of the steps' noise.
 * The daemon runs that round whole or not at all (interrupted, it starts it
 * over), so the mean need not be saved.
 *
 * When to refit (params.refit_share).  A refit trades the gate's pick for
 * the slice's labels.  When most judged rounds are on the best path
 * (best_path >= refit_share * rounds), the gate's rounds climbed: its best
 * W is the end of a trend that a replay of the path reproduces, now with
 * more labels.  When most are off it (rounds that did not improve, or that
 * were undone), the best W is the pick of a search around a plateau: the
 * pick carries its lead, and one replay of the path, which cannot pick,
 * loses it.  The gate then stops without a refit.  Measured
 * (docs/REPLAY.md): the digits' gates climb and gain from the refit;
 * Fashion-MNIST's search a plateau at 600 and 20,000 pairs and lost to it
 * on one of two streams (at 200,000 most climb).
 *
 * What the daemon stores.  The gate's whole state is struct sv_replay_gate (a
 * plain struct; sv_replay_gate_encode writes it as a versioned little-endian
 * record for the log), plus, while replay runs, one snapshot of W and the
 * optimizer state (the best W) that the daemon keeps itself.
 *
 * Threads: none.  Nothing here allocates or keeps a caller pointer.
 */
#ifndef SV_REPLAY_H
#define SV_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct sv_replay_params {
	uint64_t seed;          /* planner and slice hash */
	uint32_t batch_pairs;   /* replay batch size (may differ from the fresh B), >= 2 */
	uint32_t slice_every;   /* every k-th pair is in the held-back slice, 2..1000 */
	uint32_t slice_dense_every; /* ... but every kd-th up to slice_dense_until, 2..k */
	uint64_t slice_dense_until; /* a multiple of both (sv_replay_params_slice) */
	uint32_t min_slice;     /* fewest slice positives and negatives to judge, >= 1 */
	double tol_z;           /* a drop of more than tol_z standard errors undoes, >= 0 */
	uint32_t patience;      /* rounds without a new best before stopping, >= 1 */
	uint32_t max_rounds;    /* replay rounds at most per baseline, >= 1 */
	double lr_decay;        /* replay round q (1, 2, ...) trains at lr * lr_decay^q, (0, 1] */
	double fill_uses;       /* fill budget: replayed uses per logged pair, [0, 1000] */
	double regrow;          /* a stopped gate resumes once the window grew by this factor, [0, 100] */
	uint32_t decay_mode;    /* SV_REPLAY_DECAY_ROUND or _GO (sv_replay_gate_lr) */
	uint32_t retries;       /* undos that go on from the best at a lower rate, 0..255 */
	uint32_t refit;         /* 1: refit from the baseline along the best path (above), 0..1 */
	uint32_t refit_average; /* 1: W := the mean of the last refit round's iterates, 0..1 */
	double refit_share;     /* refit only when best_path >= refit_share * rounds judged, [0, 1] */
};

/* How replay rounds decay the rate (sv_replay_gate_lr). */
#define SV_REPLAY_DECAY_ROUND 0u /* round q trains at lr * lr_decay^q */
#define SV_REPLAY_DECAY_GO 1u    /* lr * lr_decay^(1 + GO decisions since the baseline) */

/* Defaults (chosen by tools/replaystudy, docs/REPLAY.md): seed 1, batch 64,
 * slice_every 10 (10%), min_slice 20, tol_z 1.0, patience 3, max_rounds 100,
 * lr_decay 0.7 with decay_mode SV_REPLAY_DECAY_GO, fill_uses 2, regrow 0.5,
 * retries 2, refit 1, refit_average 1, refit_share 0.5. */
void sv_replay_params_default(struct sv_replay_params *p);

/* The slice fields for every k-th pair: slice_every k, and for the first
 * 2000 or so pairs (the smallest multiple of lcm(kd, k) at or above 2000)
 * every kd-th, kd = max(2, k / 2).  A log of a few hundred pairs has too
 * small a slice at 10% to judge on (LEARNING_NOTES.md: 60 pairs pick
 * noise); at 20% over the first 2000 pairs it holds 400, and past that the
 * slice tends to 10% (11% of 20,000 pairs, 10.1% of 200,000). */
void sv_replay_params_slice(struct sv_replay_params *p, uint32_t k);

/* 0, -EINVAL (NULL) or SV_ERR_RANGE (a field outside the bounds above). */
int sv_replay_params_check(const struct sv_replay_params *p);

/* 1 when the pair of sequence seq is in the held-back slice, else 0. */
int sv_replay_in_slice(const struct sv_replay_params *p, uint64_t seq);

/* Replay batch number r over the log window [first, last] (inclusive pair
 * sequences): writes up to min(cap, batch_pairs) distinct sequences of the
 * window, none in the slice, to seqs and their count to *n.  The R
 * replayable pairs of the window are put in an order that is fixed per
 * round: round e = r / S (S = sv_replay_round_steps(R)) walks them with a
 * start and a stride coprime to R, both hashed from (seed, e), and step r % S
 * of the round takes the next batch_pairs of that walk.  While the window
 * stays the same for a whole round, the round replays every replayable pair
 * exactly once (when cap >= batch_pairs); when it grows mid-round the
 * coverage is only nearly even.  The last batch of a round may be short.
 * flags SV_REPLAY_PLAN_WITH_SLICE: the slice is replayable too (the refit,
 * below); round steps then count every pair of the window.
 * Returns 0, -EINVAL (NULL pointer, cap 0), SV_ERR_RANGE (first 0, first > last,
 * last >= 2^63, or * params out of range); *n and seqs are written only on success (*n may be 0
 * when every pair of the window is in the slice). */
#define SV_REPLAY_PLAN_WITH_SLICE 1u
int sv_replay_plan(const struct sv_replay_params *p, uint64_t first, uint64_t last, uint64_t r,
		   unsigned flags, uint64_t *seqs, size_t cap, size_t *n);

/* Fill: how many replayed pairs to add to a fresh batch that has room for
 * `room` more pairs, when the log window holds `window` pairs and fills have
 * so far replayed `used` pairs in all.  The budget keeps used <= fill_uses *
 * window, so a slow feed (one-pair batches) replays each pair about fill_uses
 * times over the stream instead of once per step; but a batch of a single
 * fresh pair always gets at least one replayed partner while the window is
 * not empty, because NT-Xent on one pair has no negatives and zero loss (the
 * label would be wasted).  Pick the pairs with sv_replay_plan (cap = the
 * count).  Returns the count, 0 <= count <= room. */
size_t sv_replay_fill_count(const struct sv_replay_params *p, uint64_t window, uint64_t used,
			    size_t fresh, size_t room);

/* Replay steps in one round over the log window [first, last]:
 * ceil(replayable / batch_pairs), at least 1 (1 for an empty window too). */
uint64_t sv_replay_round_steps(const struct sv_replay_params *p, uint64_t first, uint64_t last);
/* The same for the planner's flags (SV_REPLAY_PLAN_WITH_SLICE: every pair
 * of the window, as a refit round walks it). */
uint64_t sv_replay_round_steps_of(const struct sv_replay_params *p, uint64_t first, uint64_t last,
				  unsigned flags);

/* The learning rate of replay round q >= 1 for the base rate lr: lr *
 * lr_decay^q.  A decaying rate makes later rounds move W less, so the gate's
 * rounds are smoother and a missed stop costs less (LEARNING_NOTES.md: x0.8
 * per epoch did not collapse in 30 epochs at 600 pairs).  Fresh steps always
 * train at the base rate. */
double sv_replay_round_lr(const struct sv_replay_params *p, double lr, uint32_t q);

/* Hanley-McNeil standard error of an AUC from n_pos positives and n_neg
 * negatives; +Inf when either count is 0. */
double sv_replay_auc_se(double auc, uint64_t n_pos, uint64_t n_neg);

enum sv_replay_state {
	SV_REPLAY_STATE_WAIT = 0,    /* slice too small: no replay */
	SV_REPLAY_STATE_RUN = 1,     /* replaying, a best W is kept */
	SV_REPLAY_STATE_STOPPED = 2, /* stopped for this baseline; waits for fresh pairs */
	SV_REPLAY_STATE_REFIT = 3,   /* stopped; the daemon refits along the best path */
};

enum sv_replay_decision {
	SV_REPLAY_DECISION_WAIT = 0, /* slice too small; do not replay */
	SV_REPLAY_DECISION_KEEP = 1, /* new best: snapshot W and optimizer, go on */
	SV_REPLAY_DECISION_GO = 2,   /* within tolerance: go on, keep the old snapshot */
	SV_REPLAY_DECISION_UNDO = 3, /* restore the snapshot and stop replay (in REFIT: the
	                              * baseline, see Refit) */
	SV_REPLAY_DECISION_STOP = 4, /* stop replay; W is the best (no restore needed) */
};

/* Rate exponents of the best path kept: a refit past this many rounds
 * trains the rest at the last kept round's rate. */
#define SV_REPLAY_PATH_MAX 128u

/* The gate's whole state (for STATUS and the log). */
struct sv_replay_gate {
	enum sv_replay_state state;
	enum sv_replay_decision last; /* last decision */
	uint32_t rounds;       /* rounds judged since the baseline */
	uint32_t best_round;   /* round of the best W (0: the baseline itself) */
	uint32_t since_best;   /* rounds since the best */
	int has_best;          /* a baseline has been scored */
	int stale;             /* a fresh step came after the best: no restore, UNDO -> STOP */
	uint64_t window;       /* log window at the first fresh step after a stop (0: none yet) */
	uint32_t decays;       /* rate decays since the baseline (SV_REPLAY_DECAY_GO) */
	uint32_t retried;      /* undos that went on (params.retries) since the baseline */
	double best_auc;       /* slice AUC of the best W */
	double last_auc, last_se; /* last judged slice AUC and its standard error */
	uint64_t n_keep, n_go, n_undo, n_stop; /* decisions so far */
	uint32_t path;         /* rounds from the baseline to the current W (undone ones not) */
	uint32_t best_path;    /* ... to the best W (<= path) */
	uint8_t path_exp[SV_REPLAY_PATH_MAX]; /* path round i trained at lr * lr_decay^path_exp[i] */
};

void sv_replay_gate_init(struct sv_replay_gate *g);

/* A fresh step happened; window is the number of logged pairs after it.
 * While RUN the best W stays the reference, but its snapshot predates the
 * fresh step and must not be restored: an UNDO then becomes a STOP (replay
 * stops, W keeps the fresh step, no refit).  REFIT is left as it is: the
 * refit goes on over the window it started with.  A STOPPED gate stays stopped until the
 * window has grown by the factor 1 + regrow since the stop (counted from
 * the first fresh step after it), then it returns
 * to WAIT so the next judgement sets a new baseline; so a trickle of labels
 * cannot restart replay after every pair.  Accepts NULL p only with NULL g. */
void sv_replay_gate_fresh(struct sv_replay_gate *g, const struct sv_replay_params *p,
			  uint64_t window);

/* Judge a slice score of the current W: auc with n_pos / n_neg slice pairs.
 * Called once before the first replay round (the baseline) and after every
 * round.  Returns the decision (>= 0) and updates g, or -EINVAL (NULL, NaN
 * auc) / SV_ERR_RANGE (params).  The rules, in order:
 *   state REFIT                         STOP (state unchanged; nothing else)
 *   n_pos or n_neg < min_slice          WAIT
 *   state STOPPED                       STOP (nothing to do until fresh pairs)
 *   no baseline yet                     KEEP (the baseline, round 0)
 *   auc > best                          KEEP, or STOP at max_rounds
 *   auc < best - tol_z * se(best)       UNDO (STOP when stale)
 *   since_best reaches patience, or
 *   rounds reach max_rounds             UNDO (STOP when stale)
 *   otherwise                           GO
 * An UNDO always means "restore the best W and its optimizer state".  While
 * fewer than params.retries undos went on since the baseline (and rounds
 * are left), the gate stays RUN after it: replay goes on from the best at
 * the rate times lr_decay (a failed round retried more gently, like a
 * backtracking line search); otherwise the state becomes STOPPED, or REFIT
 * (params.refit, not stale, best_path >= 1 and best_path >= refit_share *
 * rounds; a STOP at max_rounds too).
 * Each judged round is recorded on the path (path, path_exp); a KEEP makes
 * it the best path, an UNDO cuts the path back to the best path. */
int sv_replay_gate_judge(struct sv_replay_gate *g, const struct sv_replay_params *p, double auc,
			 uint64_t n_pos, uint64_t n_neg);

/* The rate of the next replay round under gate g: with SV_REPLAY_DECAY_ROUND
 * round q = rounds + 1 trains at lr * lr_decay^q; with SV_REPLAY_DECAY_GO the
 * first round trains at lr * lr_decay, the rate stays there while rounds
 * keep improving the slice, and drops by lr_decay after each GO (a round
 * within tolerance but not better), so a data set that keeps gaining from
 * replay is not slowed down early. */
double sv_replay_gate_lr(const struct sv_replay_gate *g, const struct sv_replay_params *p,
			 double lr);

/* 1 when the gate allows replay steps now (state RUN), else 0. */
int sv_replay_gate_running(const struct sv_replay_gate *g);

/* The rate of refit round q (0-based) for the base rate lr: the rate the
 * best path's round q trained at (lr when best_path is 0; past
 * SV_REPLAY_PATH_MAX or best_path, the last one kept). */
double sv_replay_gate_refit_lr(const struct sv_replay_gate *g, const struct sv_replay_params *p,
			       double lr, uint32_t q);

/* The refit is done: REFIT -> STOPPED (else nothing). */
void sv_replay_gate_refit_done(struct sv_replay_gate *g);

const char *sv_replay_state_name(enum sv_replay_state s);
const char *sv_replay_decision_name(enum sv_replay_decision d);

/* The gate as a log record: "SVRG", u32 version 2, u32 state, u32 last,
 * u32 rounds, u32 best_round, u32 since_best, u32 has_best, f64 best_auc,
 * f64 last_auc, f64 last_se, u64 n_keep n_go n_undo n_stop, u32 stale,
 * u32 decays | retried << 24, u64 window, u32 path, u32 best_path,
 * u8 path_exp[128], all little-endian (240 bytes; version 1 had the first
 * 104 and is not read).  encode returns 0 or -EINVAL / -ENOSPC (cap <
 * SV_REPLAY_GATE_BYTES); decode returns 0, -EINVAL, SV_ERR_TRUNCATED,
 * SV_ERR_MAGIC, SV_ERR_VERSION or SV_ERR_CORRUPT (a state or decision out
 * of range, best_path > path). */
#define SV_REPLAY_GATE_BYTES 240u
int sv_replay_gate_encode(const struct sv_replay_gate *g, void *buf, size_t cap);
int sv_replay_gate_decode(struct sv_replay_gate *g, const void *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif
