/* replay.c - the replay planner and its gate (sv/replay.h).
 *
 * Pure functions of their arguments: no allocation, no clock, no globals.
 * Left out: running the steps, scoring the slice and keeping the snapshot,
 * which belong to whoever owns the trainer (the daemon, tools/replaystudy).
 */
#include "bytes.h"
#include "sv/replay.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#include "sv/error.h"

/* The log's first pairs have a denser slice (sv/replay.h). */
#define SLICE_DENSE_PAIRS 2000

/* splitmix64's finalizer: a fixed, well-mixed 64-bit hash. */
static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static uint64_t gcd64(uint64_t a, uint64_t b)
{
	while (b) {
		uint64_t t = a % b;
		a = b;
		b = t;
	}
	return a;
}

void sv_replay_params_default(struct sv_replay_params *p)
{
	memset(p, 0, sizeof(*p));
	p->seed = 1;
	p->batch_pairs = 64;
	sv_replay_params_slice(p, 10);
	p->min_slice = 20;
	p->tol_z = 1.0;
	p->patience = 3;
	p->max_rounds = 100;
	p->lr_decay = 0.7;
	p->fill_uses = 2.0;
	p->regrow = 0.5;
	p->decay_mode = SV_REPLAY_DECAY_GO;
	p->retries = 2;
	p->refit = 1;
	p->refit_average = 1;
	p->refit_share = 0.5;
}

void sv_replay_params_slice(struct sv_replay_params *p, uint32_t k)
{
	uint64_t d = k / 2 >= 2 ? k / 2 : 2, l;

	if (d > k)
		d = k;
	l = k && d ? k / gcd64(k, d) * d : 1;
	p->slice_every = k;
	p->slice_dense_every = (uint32_t)d;
	p->slice_dense_until = (SLICE_DENSE_PAIRS + l - 1) / l * l;
}

int sv_replay_params_check(const struct sv_replay_params *p)
{
	if (!p)
		return -EINVAL;
	if (p->batch_pairs < 2 || p->slice_every < 2 || p->slice_every > 1000 ||
	    p->min_slice < 1 || !(p->tol_z >= 0.0) || !isfinite(p->tol_z) || p->patience < 1 ||
	    p->max_rounds < 1 || !(p->lr_decay > 0.0 && p->lr_decay <= 1.0) ||
	    !(p->fill_uses >= 0.0 && p->fill_uses <= 1000.0) ||
	    !(p->regrow >= 0.0 && p->regrow <= 100.0) || p->decay_mode > SV_REPLAY_DECAY_GO ||
	    p->slice_dense_every < 2 || p->slice_dense_every > p->slice_every ||
	    p->slice_dense_until % p->slice_dense_every != 0 ||
	    p->slice_dense_until % p->slice_every != 0 || p->slice_dense_until > (UINT64_C(1) << 40) ||
	    p->retries > 255 || p->max_rounds > 1000000 || p->refit > 1 ||
	    p->refit_average > 1 || !(p->refit_share >= 0.0 && p->refit_share <= 1.0))
		return SV_ERR_RANGE;
	return 0;
}

int sv_replay_in_slice(const struct sv_replay_params *p, uint64_t seq)
{
	return seq % (seq <= p->slice_dense_until ? p->slice_dense_every : p->slice_every) == 0;
}

/* a * b mod m for a, b < m < 2^63, by doubling. */
static uint64_t mulmod(uint64_t a, uint64_t b, uint64_t m)
{
	uint64_t r = 0;
	a %= m;
	while (b) {
		if (b & 1)
			r = (r + a) % m;
		a = (a << 1) % m;
		b >>= 1;
	}
	return r;
}

/* The slice's two regimes: every kd-th sequence up to D, then every k-th
 * (both divide D); k = 0: no slice (the refit). */
struct slice {
	uint64_t kd, D, k;
};

static struct slice slice_of(const struct sv_replay_params *p, unsigned flags)
{
	struct slice s = {p->slice_dense_every, p->slice_dense_until, p->slice_every};

	if (flags & SV_REPLAY_PLAN_WITH_SLICE)
		s.k = 0;
	return s;
}

/* Slice sequences in [1, x]. */
static uint64_t slice_upto(uint64_t x, struct slice s)
{
	if (x <= s.D)
		return x / s.kd;
	return s.D / s.kd + (x / s.k - s.D / s.k);
}

/* Replayable (non-slice) sequences in [1, x]. */
static uint64_t replayable_upto(uint64_t x, struct slice s)
{
	if (s.k == 0)
		return x;
	return x - slice_upto(x, s);
}

/* The t-th (1-based) replayable sequence. */
static uint64_t replayable_nth(uint64_t t, struct slice s)
{
	uint64_t rd;

	if (s.k == 0)
		return t;
	rd = s.D - s.D / s.kd;
	if (t <= rd)
		return t + (t - 1) / (s.kd - 1);
	t -= rd;
	return s.D + t + (t - 1) / (s.k - 1);
}

static uint64_t steps_for(const struct sv_replay_params *p, uint64_t replayable)
{
	uint64_t s = (replayable + p->batch_pairs - 1) / p->batch_pairs;
	return s ? s : 1;
}

int sv_replay_plan(const struct sv_replay_params *p, uint64_t first, uint64_t last, uint64_t r,
		   unsigned flags, uint64_t *seqs, size_t cap, size_t *n)
{
	if (!p || !seqs || !n || cap == 0)
		return -EINVAL;
	if (first > last || first == 0 || sv_replay_params_check(p) != 0 ||
	    last > UINT64_MAX / 2)
		return SV_ERR_RANGE;
	struct slice k = slice_of(p, flags);
	uint64_t before = replayable_upto(first - 1, k);
	uint64_t R = replayable_upto(last, k) - before;
	if (R == 0) {
		*n = 0;
		return 0;
	}
	uint64_t S = steps_for(p, R);
	uint64_t e = r / S, j = r % S;
	uint64_t h = mix64(mix64(p->seed) ^ mix64(e ^ 0x7265706c6179ULL));
	uint64_t start = h % R, stride = 1;
	if (R > 2) {
		stride = 1 + mix64(h) % (R - 1);
		while (gcd64(stride, R) != 1)
			stride = stride % (R - 1) + 1;
	}
	uint64_t i0 = j * p->batch_pairs, i1 = i0 + p->batch_pairs;
	if (i1 > R)
		i1 = R;
	if (i1 - i0 > cap)
		i1 = i0 + cap;
	/* position of walk index i is (start + i * stride) mod R, without overflow */
	uint64_t pos = (start + mulmod(i0, stride, R)) % R;
	size_t m = 0;
	for (uint64_t i = i0; i < i1; i++) {
		seqs[m++] = replayable_nth(before + pos + 1, k);
		pos += stride;
		if (pos >= R)
			pos -= R;
	}
	*n = m;
	return 0;
}

size_t sv_replay_fill_count(const struct sv_replay_params *p, uint64_t window, uint64_t used,
			    size_t fresh, size_t room)
{
	if (window == 0 || room == 0)
		return 0;
	double budget = p->fill_uses * (double)window - (double)used;
	size_t n = budget >= (double)room ? room : budget > 0.0 ? (size_t)budget : 0;
	if (n == 0 && fresh == 1)
		n = 1;
	return n;
}

uint64_t sv_replay_round_steps(const struct sv_replay_params *p, uint64_t first, uint64_t last)
{
	return sv_replay_round_steps_of(p, first, last, 0);
}

uint64_t sv_replay_round_steps_of(const struct sv_replay_params *p, uint64_t first, uint64_t last,
				  unsigned flags)
{
	struct slice k = slice_of(p, flags);

	if (first == 0 || first > last)
		return 1;
	return steps_for(p, replayable_upto(last, k) - replayable_upto(first - 1, k));
}

double sv_replay_round_lr(const struct sv_replay_params *p, double lr, uint32_t q)
{
	return lr * pow(p->lr_decay, (double)q);
}

double sv_replay_gate_lr(const struct sv_replay_gate *g, const struct sv_replay_params *p,
			 double lr)
{
	return p->decay_mode == SV_REPLAY_DECAY_GO ? sv_replay_round_lr(p, lr, g->decays + 1)
						   : sv_replay_round_lr(p, lr, g->rounds + 1);
}

double sv_replay_auc_se(double auc, uint64_t n_pos, uint64_t n_neg)
{
	if (n_pos == 0 || n_neg == 0)
		return INFINITY;
	double q1 = auc / (2.0 - auc), q2 = 2.0 * auc * auc / (1.0 + auc);
	double np = (double)n_pos, nn = (double)n_neg;
	double v = (auc * (1.0 - auc) + (np - 1.0) * (q1 - auc * auc) +
		    (nn - 1.0) * (q2 - auc * auc)) / (np * nn);
	return v > 0.0 ? sqrt(v) : 0.0;
}

void sv_replay_gate_init(struct sv_replay_gate *g)
{
	memset(g, 0, sizeof(*g));
	g->state = SV_REPLAY_STATE_WAIT;
	g->last = SV_REPLAY_DECISION_WAIT;
	g->best_auc = NAN;
	g->last_auc = NAN;
	g->last_se = NAN;
}

void sv_replay_gate_fresh(struct sv_replay_gate *g, const struct sv_replay_params *p,
			  uint64_t window)
{
	if (!g || !p)
		return;
	if (g->state == SV_REPLAY_STATE_RUN) {
		g->stale = 1;
		return;
	}
	if (g->state == SV_REPLAY_STATE_REFIT)
		return; /* the refit goes on over its own window */
	if (g->state == SV_REPLAY_STATE_STOPPED) {
		if (g->window == 0)
			g->window = window;
		if ((double)window < (1.0 + p->regrow) * (double)g->window)
			return;
	}
	g->state = SV_REPLAY_STATE_WAIT;
	g->has_best = 0;
	g->stale = 0;
	g->rounds = 0;
	g->best_round = 0;
	g->since_best = 0;
	g->decays = 0;
	g->path = 0;
	g->best_path = 0;
}

/* The state after a final UNDO or STOP: REFIT when the refit is on, the
 * best W is restorable and was reached by replay rounds, and those rounds
 * are at least refit_share of the rounds judged (the gate climbed rather
 * than searched a plateau, sv/replay.h); else STOPPED. */
static enum sv_replay_state final_state(const struct sv_replay_gate *g,
					const struct sv_replay_params *p)
{
	return p && p->refit && !g->stale && g->best_path > 0 &&
			       (double)g->best_path >= p->refit_share * (double)g->rounds
		       ? SV_REPLAY_STATE_REFIT
		       : SV_REPLAY_STATE_STOPPED;
}

static int decide(struct sv_replay_gate *g, enum sv_replay_decision d)
{
	g->last = d;
	switch (d) {
	case SV_REPLAY_DECISION_WAIT:
		g->state = SV_REPLAY_STATE_WAIT;
		break;
	case SV_REPLAY_DECISION_KEEP:
		g->state = SV_REPLAY_STATE_RUN;
		g->n_keep++;
		break;
	case SV_REPLAY_DECISION_GO:
		g->n_go++;
		g->decays++;
		break;
	case SV_REPLAY_DECISION_UNDO:
		g->state = SV_REPLAY_STATE_STOPPED;
		g->window = 0;
		g->n_undo++;
		break;
	case SV_REPLAY_DECISION_STOP:
		if (g->state != SV_REPLAY_STATE_STOPPED)
			g->window = 0;
		g->state = SV_REPLAY_STATE_STOPPED;
		g->n_stop++;
		break;
	}
	return (int)d;
}

static int undo(struct sv_replay_gate *g, const struct sv_replay_params *p)
{
	int d = decide(g, g->stale ? SV_REPLAY_DECISION_STOP : SV_REPLAY_DECISION_UNDO);

	g->path = g->best_path;
	g->state = final_state(g, p);
	return d;
}

/* An undo that restores the best W and goes on from it at a lower rate,
 * while retries are left (and rounds, and the best is restorable). */
static int undo_or_retry(struct sv_replay_gate *g, const struct sv_replay_params *p)
{
	if (g->stale || g->retried >= p->retries || g->rounds >= p->max_rounds)
		return undo(g, p);
	g->path = g->best_path;
	g->retried++;
	g->decays++;
	g->since_best = 0;
	g->last = SV_REPLAY_DECISION_UNDO;
	g->n_undo++;
	return SV_REPLAY_DECISION_UNDO;
}

int sv_replay_gate_judge(struct sv_replay_gate *g, const struct sv_replay_params *p, double auc,
			 uint64_t n_pos, uint64_t n_neg)
{
	if (!g || !p || isnan(auc))
		return -EINVAL;
	if (sv_replay_params_check(p) != 0)
		return SV_ERR_RANGE;
	if (g->state == SV_REPLAY_STATE_REFIT) { /* nothing to judge until the refit is done */
		g->last = SV_REPLAY_DECISION_STOP;
		g->n_stop++;
		return SV_REPLAY_DECISION_STOP;
	}
	g->last_auc = auc;
	g->last_se = sv_replay_auc_se(auc, n_pos, n_neg);
	if (n_pos < p->min_slice || n_neg < p->min_slice)
		return decide(g, SV_REPLAY_DECISION_WAIT);
	if (g->state == SV_REPLAY_STATE_STOPPED)
		return decide(g, SV_REPLAY_DECISION_STOP);
	if (!g->has_best) {
		g->has_best = 1;
		g->stale = 0;
		g->best_auc = auc;
		g->rounds = 0;
		g->best_round = 0;
		g->since_best = 0;
		g->decays = 0;
		g->retried = 0;
		g->path = 0;
		g->best_path = 0;
		return decide(g, SV_REPLAY_DECISION_KEEP);
	}
	/* the round just judged trained at lr * lr_decay^e (sv_replay_gate_lr) */
	uint32_t e = p->decay_mode == SV_REPLAY_DECAY_GO ? g->decays + 1 : g->rounds + 1;
	if (g->path < SV_REPLAY_PATH_MAX)
		g->path_exp[g->path] = (uint8_t)(e < 255 ? e : 255);
	g->path++;
	g->rounds++;
	if (auc > g->best_auc) {
		g->best_auc = auc;
		g->best_round = g->rounds;
		g->best_path = g->path;
		g->since_best = 0;
		g->stale = 0;
		if (g->rounds >= p->max_rounds) {
			int d = decide(g, SV_REPLAY_DECISION_STOP);

			g->state = final_state(g, p);
			return d;
		}
		return decide(g, SV_REPLAY_DECISION_KEEP);
	}
	g->since_best++;
	double se_best = sv_replay_auc_se(g->best_auc, n_pos, n_neg);
	if (auc < g->best_auc - p->tol_z * se_best || g->since_best >= p->patience ||
	    g->rounds >= p->max_rounds)
		return undo_or_retry(g, p);
	return decide(g, SV_REPLAY_DECISION_GO);
}

int sv_replay_gate_running(const struct sv_replay_gate *g)
{
	return g && g->state == SV_REPLAY_STATE_RUN;
}

double sv_replay_gate_refit_lr(const struct sv_replay_gate *g, const struct sv_replay_params *p,
			       double lr, uint32_t q)
{
	uint32_t i = q;

	if (g->best_path == 0)
		return lr;
	if (i >= g->best_path)
		i = g->best_path - 1;
	if (i >= SV_REPLAY_PATH_MAX)
		i = SV_REPLAY_PATH_MAX - 1;
	return sv_replay_round_lr(p, lr, g->path_exp[i]);
}

void sv_replay_gate_refit_done(struct sv_replay_gate *g)
{
	if (g && g->state == SV_REPLAY_STATE_REFIT) {
		g->state = SV_REPLAY_STATE_STOPPED;
		g->window = 0;
	}
}

const char *sv_replay_state_name(enum sv_replay_state s)
{
	static const char *const names[] = {"wait", "run", "stopped", "refit"};

	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}

const char *sv_replay_decision_name(enum sv_replay_decision d)
{
	static const char *const names[] = {"wait", "keep", "go", "undo", "stop"};

	return (unsigned)d < sizeof(names) / sizeof(names[0]) ? names[d] : "?";
}

static uint64_t dbits(double d)
{
	uint64_t u;
	memcpy(&u, &d, sizeof(u));
	return u;
}

static double bitsd(uint64_t u)
{
	double d;
	memcpy(&d, &u, sizeof(d));
	return d;
}

int sv_replay_gate_encode(const struct sv_replay_gate *g, void *buf, size_t cap)
{
	if (!g || !buf)
		return -EINVAL;
	if (cap < SV_REPLAY_GATE_BYTES)
		return -ENOSPC;
	unsigned char *b = buf;
	memcpy(b, "SVRG", 4);
	sv_put32(b + 4, 2);
	sv_put32(b + 8, (uint32_t)g->state);
	sv_put32(b + 12, (uint32_t)g->last);
	sv_put32(b + 16, g->rounds);
	sv_put32(b + 20, g->best_round);
	sv_put32(b + 24, g->since_best);
	sv_put32(b + 28, (uint32_t)g->has_best);
	sv_put64(b + 32, dbits(g->best_auc));
	sv_put64(b + 40, dbits(g->last_auc));
	sv_put64(b + 48, dbits(g->last_se));
	sv_put64(b + 56, g->n_keep);
	sv_put64(b + 64, g->n_go);
	sv_put64(b + 72, g->n_undo);
	sv_put64(b + 80, g->n_stop);
	sv_put32(b + 88, (uint32_t)g->stale);
	sv_put32(b + 92, (g->decays & 0xffffffu) | g->retried << 24);
	sv_put64(b + 96, g->window);
	sv_put32(b + 104, g->path);
	sv_put32(b + 108, g->best_path);
	memcpy(b + 112, g->path_exp, SV_REPLAY_PATH_MAX);
	return 0;
}

int sv_replay_gate_decode(struct sv_replay_gate *g, const void *buf, size_t len)
{
	if (!g || !buf)
		return -EINVAL;
	const unsigned char *b = buf;
	if (len < 8)
		return SV_ERR_TRUNCATED;
	if (memcmp(b, "SVRG", 4) != 0)
		return SV_ERR_MAGIC;
	if (sv_get32(b + 4) != 2)
		return SV_ERR_VERSION;
	if (len < SV_REPLAY_GATE_BYTES)
		return SV_ERR_TRUNCATED;
	uint32_t state = sv_get32(b + 8), last = sv_get32(b + 12), has_best = sv_get32(b + 28);
	uint32_t stale = sv_get32(b + 88);
	if (state > SV_REPLAY_STATE_REFIT || last > SV_REPLAY_DECISION_STOP || has_best > 1 ||
	    stale > 1)
		return SV_ERR_CORRUPT;
	struct sv_replay_gate t;
	t.state = (enum sv_replay_state)state;
	t.last = (enum sv_replay_decision)last;
	t.rounds = sv_get32(b + 16);
	t.best_round = sv_get32(b + 20);
	t.since_best = sv_get32(b + 24);
	t.has_best = (int)has_best;
	t.best_auc = bitsd(sv_get64(b + 32));
	t.last_auc = bitsd(sv_get64(b + 40));
	t.last_se = bitsd(sv_get64(b + 48));
	t.n_keep = sv_get64(b + 56);
	t.n_go = sv_get64(b + 64);
	t.n_undo = sv_get64(b + 72);
	t.n_stop = sv_get64(b + 80);
	t.stale = (int)stale;
	t.decays = sv_get32(b + 92) & 0xffffffu;
	t.retried = sv_get32(b + 92) >> 24;
	t.window = sv_get64(b + 96);
	t.path = sv_get32(b + 104);
	t.best_path = sv_get32(b + 108);
	if (t.best_path > t.path)
		return SV_ERR_CORRUPT;
	memcpy(t.path_exp, b + 112, SV_REPLAY_PATH_MAX);
	*g = t;
	return 0;
}
