/* replay.h - the trainer's replay of logged pairs (sv/replay.h's planner
 * and gate, driven on the store): fill for short batches, idle rounds, and
 * the state a checkpoint carries.  docs/REPLAY.md is the design.
 *
 * Every function runs on the trainer thread, while the step runner is idle.
 *
 *   fill    a batch cut short (max_wait_ms, FLUSH, shutdown) gets logged
 *           pairs up to train.replay_fill.  The choice is logged as a fill
 *           record in the cut's own group (sv/journal.h), so recovery adds
 *           the same pairs at the same place.  Fill pairs train but are
 *           never scored for the prequential metrics.
 *   idle    after train.replay_idle without fresh pairs, rounds over the
 *           retained log [first, applied] at lr * decay^q; after each round
 *           the held-back slice is scored and the gate judges.  Idle steps
 *           write no log record: they take effect only through the
 *           checkpoint the trainer writes after each judgement and before
 *           it handles any input that arrives mid-round.  A crash loses
 *           the uncommitted steps; they are redone from the checkpointed
 *           state, and the planner makes them the same.
 *   refit   when the gate stops for good (SV_REPLAY_STATE_REFIT), W and the
 *           optimizer go back to the baseline's checkpoint and the best
 *           path's rounds are replayed over every pair, slice included,
 *           each at its rate; checkpointed like the rounds.  Fresh pairs
 *           meanwhile do not stop it.
 *   pins    while a round or fill records since the last checkpoint need
 *           old rows, retention keeps them; while the gate can undo or
 *           refit, the checkpoints of its best W and of its baseline are
 *           never pruned (sv_store_set_pins).
 */
#ifndef SV_DAEMON_REPLAY_H
#define SV_DAEMON_REPLAY_H

#include "daemon.h"
#include "sv/batch.h"
#include "sv/journal.h"
#include "sv/train.h"

struct replay;

/* Always made: with train.replay off it plans nothing and replays nothing,
 * but recovery still applies the fill records an earlier run logged. */
int replay_new(struct replay **out, struct sv_daemon *d, size_t max_pairs);
void replay_free(struct replay *rp);

/* The checkpoint's replay state: encode into out (SV_JOURNAL_REPLAY_LEN);
 * load from a checkpoint's settings blob after its first `skip` bytes
 * (absent or short: the initial state).  version is the checkpoint's own:
 * a best W saved "in this checkpoint" resolves to it. */
void replay_encode(const struct replay *rp, uint8_t *out);
void replay_load(struct replay *rp, const void *blob, size_t len, uint64_t version);

/* A checkpoint carrying replay_encode's state was committed as version v:
 * the steps are durable; pins follow the state. */
void replay_committed(struct replay *rp, uint64_t v);

/* W was replaced (ROLLBACK, MODEL_PUT): the gate starts over. */
void replay_reset(struct replay *rp);

/* A fresh step trained; pos is the log position it reached. */
void replay_fresh(struct replay *rp, uint64_t pos);

/* Fill for a cut batch of `fresh` pairs whose first pair has log seq
 * first_fresh, with room for `room` more: 1 and *f set when pairs should be
 * added (log the record, then replay_fill_take), 0 when none. */
int replay_fill_plan(struct replay *rp, uint64_t first_fresh, size_t fresh, size_t room,
                     struct sv_journal_fill *f);

/* Account for fill record f (live after its commit, or met in recovery)
 * and add its pairs to b.  Returns the pairs added (missing rows and
 * control records are skipped). */
size_t replay_fill_take(struct replay *rp, const struct sv_journal_fill *f, sv_batch *b);

/* Idle work: while there is some, steps until deadline_ns or until
 * stop(arg) returns nonzero (checked between steps).  op is the base
 * optimizer parameters (restored before return).  Returns
 *   0  nothing to do (replay off, stopped, or waiting for pairs)
 *   1  steps done, more to come: call again (commit first if stopping)
 *   2  a judgement was made: checkpoint now (replay_committed after)
 * or a negative code (logged; replay stops until fresh pairs). */
int replay_idle(struct replay *rp, sv_trainer *learner, const struct sv_optim_params *op,
                uint64_t applied, uint64_t deadline_ns, int (*stop)(void *), void *arg);

/* Idle steps are in W that no checkpoint holds yet. */
int replay_dirty(const struct replay *rp);

#endif
