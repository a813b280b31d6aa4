/* test_replay.c - the replay planner (deterministic, distinct, inside the
 * window, never the slice, even coverage) and the gate's decisions on
 * constructed score streams; the gate record round trip; errors. */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "sv/error.h"
#include "sv/replay.h"

static struct sv_replay_params params(void)
{
	struct sv_replay_params p;
	sv_replay_params_default(&p);
	p.batch_pairs = 256;
	p.slice_every = 5;
	p.min_slice = 40;
	return p;
}

Test(replay, defaults_are_valid)
{
	struct sv_replay_params p;
	sv_replay_params_default(&p);
	cr_assert_eq(sv_replay_params_check(&p), 0);
	cr_assert_eq(p.batch_pairs, 64);
	cr_assert_eq(p.slice_every, 10);
	cr_assert(fabs(sv_replay_round_lr(&p, 1e-3, 2) - 0.49e-3) < 1e-12);
	cr_assert_eq(sv_replay_round_lr(&p, 1e-3, 0), 1e-3);
}

Test(replay, params_check)
{
	struct sv_replay_params p = params();
	cr_assert_eq(sv_replay_params_check(&p), 0);
	cr_assert_eq(sv_replay_params_check(NULL), -EINVAL);
	p.batch_pairs = 1;
	cr_assert_eq(sv_replay_params_check(&p), SV_ERR_RANGE);
	p = params();
	p.slice_every = 1;
	cr_assert_eq(sv_replay_params_check(&p), SV_ERR_RANGE);
	p.slice_every = 1001;
	cr_assert_eq(sv_replay_params_check(&p), SV_ERR_RANGE);
	p = params();
	p.tol_z = NAN;
	cr_assert_eq(sv_replay_params_check(&p), SV_ERR_RANGE);
	p = params();
	p.patience = 0;
	cr_assert_eq(sv_replay_params_check(&p), SV_ERR_RANGE);
}

Test(replay, slice_is_every_kth)
{
	struct sv_replay_params p = params();
	size_t in = 0;
	for (uint64_t s = 1; s <= 100000; s++)
		in += sv_replay_in_slice(&p, s);
	cr_assert_eq(in, 20000);
	cr_assert(sv_replay_in_slice(&p, 5));
	cr_assert(!sv_replay_in_slice(&p, 6));
}

Test(replay, plan_is_deterministic_distinct_and_in_window)
{
	struct sv_replay_params p = params();
	uint64_t a[256], b[256];
	size_t na, nb;
	for (uint64_t r = 0; r < 50; r++) {
		cr_assert_eq(sv_replay_plan(&p, 1001, 6000, r, 0, a, 256, &na), 0);
		cr_assert_eq(sv_replay_plan(&p, 1001, 6000, r, 0, b, 256, &nb), 0);
		cr_assert_eq(na, r % 16 == 15 ? 160 : 256);
		cr_assert_eq(nb, na);
		cr_assert_eq(memcmp(a, b, sizeof(a)), 0);
		for (size_t i = 0; i < na; i++) {
			cr_assert(a[i] >= 1001 && a[i] <= 6000);
			cr_assert_eq(sv_replay_in_slice(&p, a[i]), 0);
			for (size_t j = 0; j < i; j++)
				cr_assert_neq(a[i], a[j]);
		}
	}
	/* other step numbers give other batches */
	cr_assert_eq(sv_replay_plan(&p, 1001, 6000, 51, 0, b, 256, &nb), 0);
	cr_assert_neq(memcmp(a, b, sizeof(a)), 0);
}

Test(replay, plan_small_window_gives_every_replayable_pair)
{
	struct sv_replay_params p = params();
	uint64_t s[256];
	size_t n, want = 0;
	for (uint64_t q = 1; q <= 100; q++)
		want += !sv_replay_in_slice(&p, q);
	cr_assert_eq(sv_replay_plan(&p, 1, 100, 7, 0, s, 256, &n), 0);
	cr_assert_eq(n, want);
	cr_assert_eq(want, 80);
	cr_assert_eq(sv_replay_plan(&p, 5, 5, 0, 0, s, 256, &n), 0);
	cr_assert_eq(n, (size_t)!sv_replay_in_slice(&p, 5));
	cr_assert_eq(sv_replay_plan(&p, 1, 100, 7, 0, s, 10, &n), 0);
	cr_assert_eq(n, 10);
}

Test(replay, plan_covers_window_evenly)
{
	struct sv_replay_params p = params();
	static unsigned hits[20001];
	uint64_t s[256];
	size_t n;
	uint64_t steps = sv_replay_round_steps(&p, 1, 20000) * 5;
	for (uint64_t r = 0; r < steps; r++) {
		cr_assert_eq(sv_replay_plan(&p, 1, 20000, r, 0, s, 256, &n), 0);
		for (size_t i = 0; i < n; i++)
			hits[s[i]]++;
	}
	unsigned lo = 1000, hi = 0;
	for (uint64_t q = 1; q <= 20000; q++) {
		if (sv_replay_in_slice(&p, q)) {
			cr_assert_eq(hits[q], 0);
			continue;
		}
		lo = hits[q] < lo ? hits[q] : lo;
		hi = hits[q] > hi ? hits[q] : hi;
	}
	/* a fixed window: every round replays every replayable pair once */
	cr_assert(lo == 5 && hi == 5, "uses per pair in [%u, %u]", lo, hi);
}

Test(replay, dense_slice_start_keeps_the_planner_exact)
{
	struct sv_replay_params p;
	static unsigned hits[3601];
	uint64_t s[64], slice = 0, first = 1501, last = 3600;
	size_t n;

	sv_replay_params_default(&p); /* every 10th, every 5th up to 2000 */
	cr_assert_eq(p.slice_dense_every, 5);
	cr_assert_eq(p.slice_dense_until, 2000);
	cr_assert(sv_replay_in_slice(&p, 1995) && sv_replay_in_slice(&p, 2000));
	cr_assert(!sv_replay_in_slice(&p, 2005) && sv_replay_in_slice(&p, 2010));
	/* a window across the boundary: 100 + 160 slice pairs, 1840 replayable */
	for (uint64_t q = first; q <= last; q++)
		slice += (uint64_t)sv_replay_in_slice(&p, q);
	cr_assert_eq(slice, 100 + 160);
	uint64_t steps = sv_replay_round_steps(&p, first, last);
	cr_assert_eq(steps, (last - first + 1 - slice + 63) / 64);
	for (uint64_t r = 3 * steps; r < 5 * steps; r++) { /* rounds 3 and 4 */
		cr_assert_eq(sv_replay_plan(&p, first, last, r, 0, s, 64, &n), 0);
		for (size_t i = 0; i < n; i++) {
			cr_assert(s[i] >= first && s[i] <= last, "seq %llu", (unsigned long long)s[i]);
			hits[s[i]]++;
		}
	}
	for (uint64_t q = first; q <= last; q++)
		cr_assert_eq(hits[q], sv_replay_in_slice(&p, q) ? 0u : 2u, "seq %llu",
		             (unsigned long long)q);
	/* other k: the dense part is every max(2, k/2)-th up to a common multiple */
	sv_replay_params_slice(&p, 7);
	cr_assert_eq(p.slice_dense_every, 3);
	cr_assert_eq(p.slice_dense_until % 21, 0);
	cr_assert(p.slice_dense_until >= 2000 && p.slice_dense_until < 2021);
	cr_assert_eq(sv_replay_params_check(&p), 0);
}

Test(replay, plan_with_slice_covers_every_pair)
{
	struct sv_replay_params p = params();
	static unsigned hits[3001];
	uint64_t s[256];
	size_t n;
	/* 3000 pairs: 12 steps a round, the last one 184 */
	for (uint64_t r = 0; r < 24; r++) {
		cr_assert_eq(sv_replay_plan(&p, 1, 3000, r, SV_REPLAY_PLAN_WITH_SLICE, s, 256, &n), 0);
		cr_assert_eq(n, r % 12 == 11 ? 184 : 256);
		for (size_t i = 0; i < n; i++)
			hits[s[i]]++;
	}
	for (uint64_t q = 1; q <= 3000; q++)
		cr_assert_eq(hits[q], 2, "pair %llu used %u times", (unsigned long long)q, hits[q]);
	/* a refit round is that many steps; a judged round only the replayable */
	cr_assert_eq(sv_replay_round_steps_of(&p, 1, 3000, SV_REPLAY_PLAN_WITH_SLICE), 12);
	cr_assert_eq(sv_replay_round_steps_of(&p, 1, 3000, 0), sv_replay_round_steps(&p, 1, 3000));
	cr_assert_lt(sv_replay_round_steps(&p, 1, 3000), 12);
	cr_assert_eq(sv_replay_round_steps_of(&p, 101, 356, SV_REPLAY_PLAN_WITH_SLICE), 1);
	cr_assert_eq(sv_replay_round_steps_of(&p, 101, 357, SV_REPLAY_PLAN_WITH_SLICE), 2);
}

Test(replay, fill_budget_and_lone_pair)
{
	struct sv_replay_params p = params();
	p.fill_uses = 2.0;
	cr_assert_eq(sv_replay_fill_count(&p, 0, 0, 1, 63), 0);
	cr_assert_eq(sv_replay_fill_count(&p, 10, 0, 1, 63), 20);
	cr_assert_eq(sv_replay_fill_count(&p, 100, 0, 1, 63), 63);
	cr_assert_eq(sv_replay_fill_count(&p, 100, 190, 1, 63), 10);
	/* budget spent: a lone fresh pair still gets one partner, a bigger batch none */
	cr_assert_eq(sv_replay_fill_count(&p, 100, 200, 1, 63), 1);
	cr_assert_eq(sv_replay_fill_count(&p, 100, 200, 2, 62), 0);
	cr_assert_eq(sv_replay_fill_count(&p, 100, 200, 1, 0), 0);
	/* a slow feed of one-pair batches: uses stay near the budget */
	uint64_t used = 0;
	for (uint64_t w = 1; w <= 10000; w++)
		used += sv_replay_fill_count(&p, w - 1, used, 1, 63);
	cr_assert(used >= 19900 && used <= 20000, "used %llu", (unsigned long long)used);
}

Test(replay, plan_errors)
{
	struct sv_replay_params p = params();
	uint64_t s[4];
	size_t n = 99;
	cr_assert_eq(sv_replay_plan(NULL, 1, 2, 0, 0, s, 4, &n), -EINVAL);
	cr_assert_eq(sv_replay_plan(&p, 1, 2, 0, 0, NULL, 4, &n), -EINVAL);
	cr_assert_eq(sv_replay_plan(&p, 1, 2, 0, 0, s, 0, &n), -EINVAL);
	cr_assert_eq(sv_replay_plan(&p, 3, 2, 0, 0, s, 4, &n), SV_ERR_RANGE);
	cr_assert_eq(sv_replay_plan(&p, 0, 2, 0, 0, s, 4, &n), SV_ERR_RANGE);
	cr_assert_eq(n, 99);
}

Test(replay, auc_se)
{
	/* Hanley-McNeil: AUC 0.9 with 100 + 100 gives about 0.0226 */
	double se = sv_replay_auc_se(0.9, 100, 100);
	cr_assert(fabs(se - 0.02263) < 1e-4, "se %f", se);
	cr_assert(sv_replay_auc_se(0.9, 10000, 10000) < se / 9);
	cr_assert(isinf(sv_replay_auc_se(0.9, 0, 10)));
}

static int judge(struct sv_replay_gate *g, const struct sv_replay_params *p, double auc)
{
	return sv_replay_gate_judge(g, p, auc, 1000, 1000);
}

Test(replay, gate_rising_then_collapsing_undoes_to_best)
{
	struct sv_replay_params p = params();
	p.refit_share = 0.0; /* refit whatever share of the rounds climbed (its own test below) */
	struct sv_replay_gate g;
	sv_replay_gate_init(&g);
	cr_assert_eq(g.state, SV_REPLAY_STATE_WAIT);
	cr_assert_eq(judge(&g, &p, 0.88), SV_REPLAY_DECISION_KEEP);
	cr_assert(sv_replay_gate_running(&g));
	cr_assert_eq(judge(&g, &p, 0.89), SV_REPLAY_DECISION_KEEP);
	cr_assert_eq(judge(&g, &p, 0.90), SV_REPLAY_DECISION_KEEP);
	cr_assert_eq(g.best_round, 2);
	/* se at 0.90 with 1000+1000 is ~0.0066: a drop of 0.003 is within it */
	cr_assert_eq(judge(&g, &p, 0.897), SV_REPLAY_DECISION_GO);
	cr_assert(sv_replay_gate_running(&g));
	/* an undo goes on from the best at a lower rate while retries are left */
	cr_assert_eq(p.retries, 2);
	for (uint32_t k = 1; k <= 2; k++) {
		double lr0 = sv_replay_gate_lr(&g, &p, 1.0);
		cr_assert_eq(judge(&g, &p, 0.85), SV_REPLAY_DECISION_UNDO);
		cr_assert(sv_replay_gate_running(&g), "retry %u", k);
		cr_assert_eq(g.retried, k);
		cr_assert(fabs(sv_replay_gate_lr(&g, &p, 1.0) - lr0 * p.lr_decay) < 1e-12);
	}
	cr_assert_eq(judge(&g, &p, 0.85), SV_REPLAY_DECISION_UNDO);
	/* the best W came from two rounds: refit them from the baseline */
	cr_assert_eq(g.state, SV_REPLAY_STATE_REFIT);
	cr_assert(!sv_replay_gate_running(&g));
	cr_assert_eq(g.best_auc, 0.90);
	cr_assert_eq(g.n_keep, 3);
	cr_assert_eq(g.n_go, 1);
	cr_assert_eq(g.n_undo, 3);
	cr_assert_eq(g.best_path, 2);
	cr_assert_eq(g.path, 2, "the undone rounds are cut off the path");
	/* both best rounds trained at lr * 0.7 (keeps do not decay) */
	cr_assert(fabs(sv_replay_gate_refit_lr(&g, &p, 1.0, 0) - p.lr_decay) < 1e-12);
	cr_assert(fabs(sv_replay_gate_refit_lr(&g, &p, 1.0, 1) - p.lr_decay) < 1e-12);
	cr_assert(fabs(sv_replay_gate_refit_lr(&g, &p, 1.0, 9) - p.lr_decay) < 1e-12);
	/* a refit is not judged, and fresh pairs do not end it */
	cr_assert_eq(judge(&g, &p, 0.95), SV_REPLAY_DECISION_STOP);
	sv_replay_gate_fresh(&g, &p, 900);
	cr_assert_eq(g.state, SV_REPLAY_STATE_REFIT);
	sv_replay_gate_refit_done(&g);
	cr_assert_eq(g.state, SV_REPLAY_STATE_STOPPED);
	/* stopped stays stopped until fresh pairs come */
	cr_assert_eq(judge(&g, &p, 0.95), SV_REPLAY_DECISION_STOP);
	/* a trickle does not restart it: the window must grow by half first */
	sv_replay_gate_fresh(&g, &p, 1000);
	sv_replay_gate_fresh(&g, &p, 1499);
	cr_assert_eq(g.state, SV_REPLAY_STATE_STOPPED);
	cr_assert_eq(judge(&g, &p, 0.95), SV_REPLAY_DECISION_STOP);
	sv_replay_gate_fresh(&g, &p, 1500);
	cr_assert_eq(g.state, SV_REPLAY_STATE_WAIT);
	cr_assert_eq(judge(&g, &p, 0.91), SV_REPLAY_DECISION_KEEP);
	cr_assert_eq(g.rounds, 0);
	cr_assert(sv_replay_gate_running(&g));
}

Test(replay, gate_never_undoes_across_a_fresh_step)
{
	struct sv_replay_params p = params();
	struct sv_replay_gate g;
	sv_replay_gate_init(&g);
	cr_assert_eq(judge(&g, &p, 0.90), SV_REPLAY_DECISION_KEEP);
	sv_replay_gate_fresh(&g, &p, 5000);
	cr_assert(sv_replay_gate_running(&g));
	cr_assert_eq(g.stale, 1);
	/* the collapse is seen against the old best, but the snapshot is stale */
	cr_assert_eq(judge(&g, &p, 0.80), SV_REPLAY_DECISION_STOP);
	cr_assert_eq(g.n_undo, 0);
	/* a new best after a fresh step is a fresh snapshot again */
	sv_replay_gate_init(&g);
	judge(&g, &p, 0.90);
	sv_replay_gate_fresh(&g, &p, 5000);
	cr_assert_eq(judge(&g, &p, 0.91), SV_REPLAY_DECISION_KEEP);
	cr_assert_eq(g.stale, 0);
	cr_assert_eq(judge(&g, &p, 0.80), SV_REPLAY_DECISION_UNDO);
}

Test(replay, gate_plateau_stops_after_patience)
{
	struct sv_replay_params p = params();
	p.patience = 2;
	p.retries = 0;
	struct sv_replay_gate g;
	sv_replay_gate_init(&g);
	cr_assert_eq(judge(&g, &p, 0.90), SV_REPLAY_DECISION_KEEP);
	cr_assert_eq(judge(&g, &p, 0.899), SV_REPLAY_DECISION_GO);
	cr_assert_eq(judge(&g, &p, 0.899), SV_REPLAY_DECISION_UNDO);
	cr_assert_eq(g.best_round, 0);
	/* the best is the baseline itself: nothing to refit */
	cr_assert_eq(g.best_path, 0);
	cr_assert_eq(g.state, SV_REPLAY_STATE_STOPPED);
}

Test(replay, gate_path_records_the_rates_of_the_best_rounds)
{
	struct sv_replay_params p = params();
	struct sv_replay_gate g;
	sv_replay_gate_init(&g);
	cr_assert_eq(judge(&g, &p, 0.90), SV_REPLAY_DECISION_KEEP);   /* baseline */
	cr_assert_eq(judge(&g, &p, 0.91), SV_REPLAY_DECISION_KEEP);   /* round 1 at 0.7 */
	cr_assert_eq(judge(&g, &p, 0.909), SV_REPLAY_DECISION_GO);    /* round 2 at 0.7 */
	cr_assert_eq(judge(&g, &p, 0.92), SV_REPLAY_DECISION_KEEP);   /* round 3 at 0.49 */
	cr_assert_eq(judge(&g, &p, 0.85), SV_REPLAY_DECISION_UNDO);   /* round 4 at 0.49, undone */
	cr_assert_eq(g.best_path, 3);
	cr_assert_eq(g.path, 3);
	cr_assert_eq(judge(&g, &p, 0.93), SV_REPLAY_DECISION_KEEP);   /* round 5 at 0.343 */
	cr_assert_eq(g.best_path, 4);
	cr_assert_eq(g.best_round, 5);
	const uint8_t want[4] = {1, 1, 2, 3};
	for (uint32_t q = 0; q < 4; q++) {
		cr_assert_eq(g.path_exp[q], want[q], "path round %u", q);
		double lr = sv_replay_gate_refit_lr(&g, &p, 2.0, q);
		cr_assert(fabs(lr - 2.0 * pow(p.lr_decay, want[q])) < 1e-12, "round %u: %f", q, lr);
	}
	/* with the refit off the same run stops plainly */
	p.refit = 0;
	p.retries = 0;
	cr_assert_eq(judge(&g, &p, 0.80), SV_REPLAY_DECISION_UNDO);
	cr_assert_eq(g.state, SV_REPLAY_STATE_STOPPED);
	p.refit = 2;
	cr_assert_eq(sv_replay_params_check(&p), SV_ERR_RANGE);
}

Test(replay, gate_refits_a_climb_not_a_plateau)
{
	struct sv_replay_params p = params();
	struct sv_replay_gate g;
	cr_assert_eq(p.refit_share, 0.5);
	/* a climb: 4 rounds on the best path out of 7 judged */
	sv_replay_gate_init(&g);
	judge(&g, &p, 0.80);
	for (int k = 1; k <= 4; k++)
		cr_assert_eq(judge(&g, &p, 0.80 + 0.01 * k), SV_REPLAY_DECISION_KEEP);
	cr_assert_eq(judge(&g, &p, 0.839), SV_REPLAY_DECISION_GO);
	cr_assert_eq(judge(&g, &p, 0.839), SV_REPLAY_DECISION_GO);
	p.retries = 0;
	cr_assert_eq(judge(&g, &p, 0.839), SV_REPLAY_DECISION_UNDO);
	cr_assert_eq(g.best_path, 4);
	cr_assert_eq(g.rounds, 7);
	cr_assert_eq(g.state, SV_REPLAY_STATE_REFIT);
	/* a plateau: the best after 1 round, then 3 rounds off the path */
	p = params();
	p.retries = 0;
	sv_replay_gate_init(&g);
	judge(&g, &p, 0.80);
	cr_assert_eq(judge(&g, &p, 0.85), SV_REPLAY_DECISION_KEEP);
	cr_assert_eq(judge(&g, &p, 0.849), SV_REPLAY_DECISION_GO);
	cr_assert_eq(judge(&g, &p, 0.849), SV_REPLAY_DECISION_GO);
	cr_assert_eq(judge(&g, &p, 0.849), SV_REPLAY_DECISION_UNDO);
	cr_assert_eq(g.best_path, 1);
	cr_assert_eq(g.rounds, 4);
	cr_assert_eq(g.state, SV_REPLAY_STATE_STOPPED, "the gate's pick is kept, no refit");
	/* exactly half the rounds on the path is a climb; share 0 refits any path */
	sv_replay_gate_init(&g);
	judge(&g, &p, 0.80);
	judge(&g, &p, 0.85);
	p.patience = 1;
	cr_assert_eq(judge(&g, &p, 0.849), SV_REPLAY_DECISION_UNDO);
	cr_assert_eq(g.state, SV_REPLAY_STATE_REFIT);
	p = params();
	p.refit_share = 1.5;
	cr_assert_eq(sv_replay_params_check(&p), SV_ERR_RANGE);
	p.refit_share = NAN;
	cr_assert_eq(sv_replay_params_check(&p), SV_ERR_RANGE);
}

Test(replay, gate_max_rounds)
{
	struct sv_replay_params p = params();
	p.max_rounds = 3;
	struct sv_replay_gate g;
	sv_replay_gate_init(&g);
	cr_assert_eq(judge(&g, &p, 0.80), SV_REPLAY_DECISION_KEEP);
	cr_assert_eq(judge(&g, &p, 0.81), SV_REPLAY_DECISION_KEEP);
	cr_assert_eq(judge(&g, &p, 0.82), SV_REPLAY_DECISION_KEEP);
	/* the last allowed round is a new best: stop there, nothing to restore */
	cr_assert_eq(judge(&g, &p, 0.83), SV_REPLAY_DECISION_STOP);
	cr_assert_eq(g.state, SV_REPLAY_STATE_REFIT);
	cr_assert_eq(g.best_path, 3);
}

Test(replay, gate_small_slice_waits)
{
	struct sv_replay_params p = params();
	struct sv_replay_gate g;
	sv_replay_gate_init(&g);
	cr_assert_eq(sv_replay_gate_judge(&g, &p, 0.9, 39, 500), SV_REPLAY_DECISION_WAIT);
	cr_assert(!sv_replay_gate_running(&g));
	cr_assert_eq(sv_replay_gate_judge(&g, &p, 0.9, 40, 40), SV_REPLAY_DECISION_KEEP);
	/* a small slice has a wide tolerance: 0.05 below best is noise at 40+40 */
	cr_assert_eq(sv_replay_gate_judge(&g, &p, 0.87, 40, 40), SV_REPLAY_DECISION_GO);
	cr_assert_eq(sv_replay_gate_judge(&g, &p, NAN, 40, 40), -EINVAL);
}

Test(replay, gate_record_roundtrip_and_errors)
{
	struct sv_replay_params p = params();
	p.refit_share = 0.0; /* the record of a gate in REFIT */
	struct sv_replay_gate g, h;
	sv_replay_gate_init(&g);
	judge(&g, &p, 0.9);
	judge(&g, &p, 0.91);
	judge(&g, &p, 0.8); /* an undo that goes on: retried 1, decays 1 */
	cr_assert_eq(sv_replay_gate_running(&g), 1);
	judge(&g, &p, 0.8);
	judge(&g, &p, 0.8); /* retries used up: stopped */
	unsigned char buf[SV_REPLAY_GATE_BYTES], buf2[SV_REPLAY_GATE_BYTES];
	cr_assert_eq(sv_replay_gate_encode(&g, buf, sizeof(buf) - 1), -ENOSPC);
	cr_assert_eq(sv_replay_gate_encode(&g, buf, sizeof(buf)), 0);
	cr_assert_eq(sv_replay_gate_decode(&h, buf, sizeof(buf)), 0);
	cr_assert_eq(sv_replay_gate_encode(&h, buf2, sizeof(buf2)), 0);
	cr_assert_eq(memcmp(buf, buf2, sizeof(buf)), 0);
	cr_assert_eq(h.state, SV_REPLAY_STATE_REFIT);
	cr_assert_eq(h.best_auc, 0.91);
	cr_assert_eq(h.n_undo, 3);
	cr_assert_eq(h.retried, 2);
	cr_assert_eq(h.decays, 2);
	cr_assert_eq(h.best_path, 1);
	cr_assert_eq(h.path, 1);
	cr_assert_eq(h.path_exp[0], 1);
	cr_assert_eq(h.path_exp[1], 3, "an undone round's rate stays past the path's end");
	g.stale = 1;
	g.window = 123456789012ULL;
	cr_assert_eq(sv_replay_gate_encode(&g, buf, sizeof(buf)), 0);
	cr_assert_eq(sv_replay_gate_decode(&h, buf, sizeof(buf)), 0);
	cr_assert_eq(h.window, 123456789012ULL);
	cr_assert_eq(h.stale, 1);
	cr_assert_eq(sv_replay_gate_decode(&h, buf, sizeof(buf) - 1), SV_ERR_TRUNCATED);
	buf2[0] = 'X';
	cr_assert_eq(sv_replay_gate_decode(&h, buf2, sizeof(buf2)), SV_ERR_MAGIC);
	memcpy(buf2, buf, sizeof(buf));
	buf2[4] = 1; /* the layout before the refit */
	cr_assert_eq(sv_replay_gate_decode(&h, buf2, sizeof(buf2)), SV_ERR_VERSION);
	memcpy(buf2, buf, sizeof(buf));
	buf2[108] = 2; /* best_path 2 > path 1 */
	cr_assert_eq(sv_replay_gate_decode(&h, buf2, sizeof(buf2)), SV_ERR_CORRUPT);
	memcpy(buf2, buf, sizeof(buf));
	buf2[8] = 7;
	cr_assert_eq(sv_replay_gate_decode(&h, buf2, sizeof(buf2)), SV_ERR_CORRUPT);
}
