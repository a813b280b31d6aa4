/* config.c - simverifyd's configuration (see sv/config.h): the key table,
 * value parsing and printing, the YAML reader (libyaml events), error
 * collection with line echo and caret, overrides, state-dir resolution,
 * cross-key checks, diffs and converters to the core's parameter structs.
 * Leaves out: reading the command line, printing, applying a reload. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <yaml.h>

#include "sv/config.h"
#include "sv/metrics.h"
#include "sv/error.h"

#define OFF(f) offsetof(struct sv_config, f)
#define LT SV_CONFIG_KEY_LIVE_TRAIN
#define LM SV_CONFIG_KEY_LIVE_MONITOR
#define LL SV_CONFIG_KEY_LIVE_LIMITS
#define LG SV_CONFIG_KEY_LIVE_LOG
#define MINX SV_CONFIG_KEY_MIN_EXCL
#define MAXX SV_CONFIG_KEY_MAX_EXCL
#define U64MAX 18446744073709551615.0

static const char *const w_loss[] = {"contrastive", "ntxent", NULL};
static const char *const w_mode[] = {"batch", "pairs", "graph", NULL};
static const char *const w_optim[] = {"sgd", "adam", "adamw", NULL};
static const char *const w_sync[] = {"full", "meta", "none", NULL};
static const char *const w_onoff[] = {"off", "on", NULL};
static const char *const w_init[] = {"orthogonal", "uniform", NULL};
static const char *const w_decay[] = {"round", "go", NULL};
static const char *const w_role[] = {"off", "trainer", "replica", NULL};
static const char *const w_ack[] = {"stored", "committed", NULL};
static const char *const w_log[] = {"debug", "info", "notice", "warning", "err", NULL};

#define T(t) SV_CONFIG_TYPE_##t

static const struct sv_config_key keys[] = {
    {"state_dir", T(STRING), OFF(state_dir), 0, 0, "/var/lib/simverify", NULL, 0, 0,
     "directory of the store and the ipc sockets; replaces @STATE@ below"},

    {"model.d_in", T(UINT), OFF(model_d_in), 1, 1 << 20, "784", NULL, 0, 0,
     "input vector dimension (float32 per item)"},
    {"model.d_out", T(UINT), OFF(model_d_out), 1, 1 << 16, "64", NULL, 0, 0,
     "embedding dimension (columns of W)"},
    {"model.init", T(ENUM), OFF(model_init), 0, 0, "uniform", w_init, 0, 0,
     "initial W: orthogonal (column norms 1) | uniform (torch.nn.Linear's default)"},
    {"model.seed", T(UINT), OFF(model_seed), 0, U64MAX, "0", NULL, 0, 0,
     "seed of the initial W"},

    {"train.loss", T(ENUM), OFF(train_loss), 0, 0, "ntxent", w_loss, 0, 0,
     "loss function: ntxent | contrastive"},
    {"train.temperature", T(DOUBLE), OFF(train_temperature), 0, 100, "0.07", NULL, MINX, 0,
     "NT-Xent temperature (> 0)"},
    {"train.pos_margin", T(DOUBLE), OFF(train_pos_margin), 0, 2, "0", NULL, 0, 0,
     "contrastive: positive pairs closer than this cost nothing (distance units)"},
    {"train.neg_margin", T(DOUBLE), OFF(train_neg_margin), 0, 2, "1", NULL, 0, 0,
     "contrastive: negative pairs farther than this cost nothing (distance units)"},
    {"train.mode", T(ENUM), OFF(train_mode), 0, 0, "batch", w_mode, 0, 0,
     "which row pairs are positives/negatives: batch | pairs | graph"},
    {"train.batch_pairs", T(UINT), OFF(train_batch_pairs), 1, 65536, "256", NULL, LT, 0,
     "pairs per training step"},
    {"train.max_wait_ms", T(DURATION), OFF(train_max_wait_ms), 0, 3600000, "100ms", NULL, LT, 1,
     "train on a partial batch after this long without a full one"},
    {"train.optimizer", T(ENUM), OFF(train_optimizer), 0, 0, "adam", w_optim, 0, 0,
     "optimizer: sgd | adam | adamw"},
    {"train.lr", T(DOUBLE), OFF(train_lr), 0, 10, "0.001", NULL, LT | MINX, 0,
     "learning rate (> 0)"},
    {"train.momentum", T(DOUBLE), OFF(train_momentum), 0, 1, "0", NULL, LT | MAXX, 0,
     "SGD momentum [0, 1)"},
    {"train.dampening", T(DOUBLE), OFF(train_dampening), 0, 1, "0", NULL, LT, 0,
     "SGD dampening [0, 1]"},
    {"train.nesterov", T(BOOL), OFF(train_nesterov), 0, 0, "false", NULL, LT, 0,
     "SGD Nesterov momentum (needs momentum > 0, dampening 0)"},
    {"train.weight_decay", T(DOUBLE), OFF(train_weight_decay), 0, 1, "0", NULL, LT, 0,
     "L2 penalty (sgd, adam) or decoupled decay (adamw)"},
    {"train.beta1", T(DOUBLE), OFF(train_beta1), 0, 1, "0.9", NULL, LT | MAXX, 0,
     "Adam first-moment decay [0, 1)"},
    {"train.beta2", T(DOUBLE), OFF(train_beta2), 0, 1, "0.999", NULL, LT | MAXX, 0,
     "Adam second-moment decay [0, 1)"},
    {"train.eps", T(DOUBLE), OFF(train_eps), 0, 1, "1e-08", NULL, LT | MINX, 0,
     "Adam denominator term (> 0)"},
    {"train.threads", T(UINT), OFF(train_threads), 1, 64, "1", NULL, 0, 0,
     "threads of the training step's matrix products and loss passes"},
    {"train.replay", T(ENUM), OFF(train_replay), 0, 0, "off", w_onoff, 0, 0,
     "train logged pairs again in idle time and in short batches, gated: off | on"},
    {"train.replay_idle", T(DURATION), OFF(train_replay_idle_ms), 1, 3600000, "1s", NULL, 0, 1,
     "idle replay starts after this long without fresh pairs"},
    {"train.replay_batch", T(UINT), OFF(train_replay_batch), 2, 65536, "64", NULL, 0, 0,
     "pairs per idle replay step"},
    {"train.replay_slice", T(UINT), OFF(train_replay_slice), 2, 1000, "10", NULL, 0, 0,
     "every k-th logged pair is held back from replay to judge it"},
    {"train.replay_max_rounds", T(UINT), OFF(train_replay_max_rounds), 1, 100000, "100", NULL, 0,
     0, "idle replay rounds (passes over the log) at most between fresh growths"},
    {"train.replay_patience", T(UINT), OFF(train_replay_patience), 1, 100000, "3", NULL, 0, 0,
     "rounds without a better held-back score before the gate stops replay"},
    {"train.replay_retries", T(UINT), OFF(train_replay_retries), 0, 255, "2", NULL, 0, 0,
     "undos after which replay goes on from the best W at a lower rate, before it stops"},
    {"train.replay_lr_decay", T(DOUBLE), OFF(train_replay_lr_decay), 0, 1, "0.7", NULL, MINX, 0,
     "the replay rate's factor per decay step (0, 1]"},
    {"train.replay_decay", T(ENUM), OFF(train_replay_decay), 0, 0, "go", w_decay, 0, 0,
     "when the replay rate decays: go (after a round that did not improve) | round (each)"},
    {"train.replay_fill", T(UINT), OFF(train_replay_fill), 0, 65536, "64", NULL, 0, 0,
     "a batch cut short gets replayed pairs up to this many pairs (0: no fill)"},
    {"train.replay_fill_uses", T(DOUBLE), OFF(train_replay_fill_uses), 0, 1000, "2", NULL, 0, 0,
     "fill replays each logged pair about this many times at most"},
    {"train.replay_gate", T(ENUM), OFF(train_replay_gate), 0, 0, "on", w_onoff, 0, 0,
     "off: replay exactly replay_max_rounds rounds unjudged (to show what the gate prevents)"},
    {"train.replay_refit_share", T(DOUBLE), OFF(train_replay_refit_share), 0, 1, "0.5", NULL, 0,
     0, "refit with the held-back slice when at least this share of the judged rounds led to "
     "the best W (0: always)"},

    {"store.path", T(STRING), OFF(store_path), 0, 0, "@STATE@/store", NULL, 0, 0,
     "LMDB environment directory"},
    {"store.sync", T(ENUM), OFF(store_sync), 0, 0, "full", w_sync, 0, 0,
     "durability: full (fsync each commit) | meta | none"},
    {"store.map_size", T(SIZE), OFF(store_map_size), 1048576, U64MAX, "1GiB", NULL, 0, 0,
     "initial LMDB map size"},
    {"store.max_map_size", T(SIZE), OFF(store_max_map_size), 1048576, U64MAX, "64GiB", NULL, LT, 0,
     "the map grows up to this; past it ingest is refused (not dropped) until room is freed"},
    {"store.keep_versions", T(UINT), OFF(store_keep_versions), 1, 1000000, "10", NULL, LT, 0,
     "checkpoints kept (older ones are pruned)"},
    {"store.retain_pairs", T(UINT), OFF(store_retain_pairs), 0, 1e12, "5000000", NULL, LT, 0,
     "newest log rows kept; older ones are deleted (0: no count limit)"},
    {"store.retain_age", T(DURATION), OFF(store_retain_age_ms), 0, 315360000000.0, "90d", NULL, LT,
     1000, "log rows older than this are deleted (0: no age limit)"},
    {"store.backup_dir", T(STRING), OFF(store_backup_dir), 0, 0, "@STATE@/backups", NULL, 0, 0,
     "where BACKUP NAME writes (a relative NAME); the unit must allow writing there"},
    {"store.min_free", T(SIZE), OFF(store_min_free), 0, U64MAX, "256MiB", NULL, LT, 0,
     "ingest is refused while the store's file system has less free space"},
    {"ingest.dedup_window", T(DURATION), OFF(ingest_dedup_window_ms), 60000, 315360000000.0, "7d",
     NULL, LT, 1000, "a client idle this long is forgotten: its seqs start over as new"},
    {"ingest.dedup_depth", T(UINT), OFF(ingest_dedup_depth), 16, 16777216, "65536", NULL, LT, 0,
     "seqs below a client's highest one still told apart (out-of-order resends)"},

    {"checkpoint.every_steps", T(UINT), OFF(checkpoint_every_steps), 0, U64MAX, "1000", NULL, LT, 0,
     "checkpoint after this many steps (0: off)"},
    {"checkpoint.every_s", T(DURATION), OFF(checkpoint_every_ms), 0, 86400000, "60s", NULL, LT, 1000,
     "checkpoint after this long with new steps (0: off)"},

    {"endpoints.ingest", T(STRING), OFF(endpoints_ingest), 0, 0, "ipc://@STATE@/ingest.sock", NULL,
     0, 0, "PULL: fire-and-forget pairs and items"},
    {"endpoints.ingest_acked", T(STRING), OFF(endpoints_ingest_acked), 0, 0,
     "ipc://@STATE@/ingest-acked.sock", NULL, 0, 0, "ROUTER: pairs acknowledged on commit"},
    {"endpoints.query", T(STRING), OFF(endpoints_query), 0, 0, "ipc://@STATE@/query.sock", NULL, 0,
     0, "ROUTER: score, topk, item get"},
    {"endpoints.admin", T(STRING), OFF(endpoints_admin), 0, 0, "ipc://@STATE@/admin.sock", NULL, 0,
     0, "ROUTER: admin verbs (simverifyctl)"},
    {"endpoints.admin_mode", T(MODE), OFF(endpoints_admin_mode), 0, 0777, "0600", NULL, 0, 0,
     "file mode of the ipc admin socket"},
    {"endpoints.allow_tcp_admin", T(BOOL), OFF(endpoints_allow_tcp_admin), 0, 0, "false", NULL, 0,
     0, "allow a tcp:// admin endpoint (use with CURVE)"},
    {"endpoints.http", T(STRING), OFF(endpoints_http), 0, 0, "127.0.0.1:9650", NULL, 0, 0,
     "HTTP monitoring (HOST:PORT; /metrics, /livez, /readyz, /): read-only; \"\" disables it"},

    {"log.level", T(ENUM), OFF(log_level), 0, 0, "info", w_log, LG, 0,
     "least severe level logged: debug | info | notice | warning | err"},

    {"query.threads", T(UINT), OFF(query_threads), 1, 256, "2", NULL, 0, 0, "query worker threads"},
    {"query.threshold_policy", T(ENUM), OFF(query_threshold_policy), 0, 0, "target_far", sv_metrics_policy_names,
     LM, 0, "decision threshold: fixed | target_far | eer | max_accuracy"},
    {"query.threshold", T(DOUBLE), OFF(query_threshold), -1, 1, "0.5", NULL, LM, 0,
     "cosine threshold: the fixed one, and the initial one of the others"},
    {"query.target_far", T(DOUBLE), OFF(query_target_far), 0, 1, "0.001", NULL, LM | MINX | MAXX, 0,
     "false accept rate aimed at by target_far (0, 1)"},
    {"query.window_pairs", T(UINT), OFF(query_window_pairs), 1, 100000000, "20000", NULL, LM, 0,
     "recent scored pairs the threshold is computed on"},
    {"query.topk_refresh", T(DURATION), OFF(query_topk_refresh_ms), 0, 3600000, "1s", NULL, LM, 1,
     "the top-k cache follows training steps at most this often (a new version at once); 0: after every step"},
    {"query.min_window_pairs", T(UINT), OFF(query_min_window_pairs), 0, 100000000, "1000", NULL, LM,
     0, "keep query.threshold until the window holds this many pairs"},

    {"limits.max_msg_bytes", T(SIZE), OFF(limits_max_msg_bytes), 1024, 4294967296.0, "64MiB", NULL,
     LL, 0, "largest message accepted"},
    {"limits.max_batch_pairs", T(UINT), OFF(limits_max_batch_pairs), 1, 1048576, "4096", NULL, LL, 0,
     "most pairs (or queries) in one batch message"},
    {"limits.max_id_bytes", T(UINT), OFF(limits_max_id_bytes), 1, 255, "255", NULL, LL, 0,
     "longest item id"},
    {"limits.max_k", T(UINT), OFF(limits_max_k), 1, 100000, "1000", NULL, LL, 0,
     "largest k of a topk query"},
    {"limits.max_topk_hits", T(UINT), OFF(limits_max_topk_hits), 1, 1e9, "65536", NULL, LL, 0,
     "queries x k of one TOPK request: bounds its reply"},
    {"limits.max_queued_replies", T(UINT), OFF(limits_max_queued_replies), 1, 100000, "1000", NULL,
     0, 0, "replies queued per query client (ZeroMQ send high-water mark); past it, dropped and counted"},
    {"limits.max_paused_bytes", T(SIZE), OFF(limits_max_paused_bytes), 0, U64MAX, "256MiB", NULL,
     0, 0, "fire-and-forget bytes a paused daemon reads and keeps for after RESUME"},
    {"limits.max_pending_pairs", T(UINT), OFF(limits_max_pending_pairs), 1, 100000000, "65536",
     NULL, 0, 0, "ingest queue, in pairs (sets the ingest sockets' receive high-water mark); when full, senders block"},

    {"cluster.role", T(ENUM), OFF(cluster_role), 0, 0, "off", w_role, 0, 0,
     "off: one node, no NATS | trainer: the pair log on JetStream, trains while it holds the lease "
     "(else a standby in lockstep) | replica: queries only (docs/SCALING.md)"},
    {"cluster.urls", T(STRING), OFF(cluster_urls), 0, 0, "nats://127.0.0.1:4222", NULL, 0, 0,
     "NATS servers, comma-separated"},
    {"cluster.name", T(STRING), OFF(cluster_name), 0, 0, "", NULL, 0, 0,
     "this node's name: its durable consumer and its lease value (empty: the host name)"},
    {"cluster.stream", T(STRING), OFF(cluster_stream), 0, 0, "SV_PAIRS", NULL, 0, 0,
     "JetStream stream of the pair log (subject sv.pairs)"},
    {"cluster.replicas", T(UINT), OFF(cluster_replicas), 1, 5, "3", NULL, 0, 0,
     "replicas of the stream and the buckets (JetStream R)"},
    {"cluster.duplicate_window", T(DURATION), OFF(cluster_duplicate_window_ms), 1000, 86400000,
     "2min", NULL, 0, 1, "the stream drops a resend with the same message id within this window"},
    {"cluster.ack", T(ENUM), OFF(cluster_ack), 0, 0, "stored", w_ack, 0, 0,
     "acked ingest answers once: stored (JetStream quorum has it) | committed (and this node's "
     "LMDB commit holds it)"},
    {"cluster.lease_ttl", T(DURATION), OFF(cluster_lease_ttl_ms), 500, 3600000, "5s", NULL, 0, 1,
     "the trainer lease lapses this long after its last renew; a standby then takes over"},
    {"cluster.timeout", T(DURATION), OFF(cluster_timeout_ms), 100, 600000, "5s", NULL, 0, 1,
     "wait for a JetStream ack or API reply"},
    {"cluster.read_wait", T(DURATION), OFF(cluster_read_wait_ms), 0, 60000, "1s", NULL, 0, 1,
     "a replica waits this long for a query's least (model version, items sequence), then "
     "answers BEHIND"},

    {"security.curve_server_key", T(STRING), OFF(security_curve_server_key), 0, 0, "", NULL, 0, 0,
     "file with the CURVE server secret key (empty: CURVE off); applies to tcp:// endpoints"},
    {"security.curve_allow", T(STRING), OFF(security_curve_allow), 0, 0, "", NULL, 0, 0,
     "file of allowed client public keys, one z85 key a line (empty: any CURVE client)"},
    {"security.curve_allow_ingest", T(STRING), OFF(security_curve_allow_ingest), 0, 0, "", NULL, 0,
     0, "allow-list of both ingest sockets (empty: security.curve_allow)"},
    {"security.curve_allow_query", T(STRING), OFF(security_curve_allow_query), 0, 0, "", NULL, 0, 0,
     "allow-list of the query socket (empty: security.curve_allow)"},
    {"security.curve_allow_admin", T(STRING), OFF(security_curve_allow_admin), 0, 0, "", NULL, 0, 0,
     "allow-list of the admin socket (empty: security.curve_allow)"},
};

#define N_KEYS (sizeof(keys) / sizeof(keys[0]))

const struct sv_config_key *sv_config_keys(size_t *n)
{
	if (n)
		*n = N_KEYS;
	return keys;
}

const struct sv_config_key *sv_config_find(const char *name)
{
	if (!name)
		return NULL;
	for (size_t i = 0; i < N_KEYS; i++)
		if (strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

/* ---- error collection ---- */

void sv_config_errors_init(struct sv_config_errors *e)
{
	memset(e, 0, sizeof(*e));
}

void sv_config_errors_free(struct sv_config_errors *e)
{
	if (!e)
		return;
	free(e->text);
	memset(e, 0, sizeof(*e));
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void
errs_add(struct sv_config_errors *e, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!e)
		return;
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (e->len + (size_t)n + 1 > e->cap) {
		size_t cap = e->cap ? e->cap : 256;
		char *p;
		while (cap < e->len + (size_t)n + 1)
			cap *= 2;
		p = realloc(e->text, cap);
		if (!p)
			return;
		e->text = p;
		e->cap = cap;
	}
	va_start(ap, fmt);
	vsnprintf(e->text + e->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	e->len += (size_t)n;
}

/* ---- values ---- */

/* Parse an unsigned integer; *end set after it.  0 or -1 (no digits/overflow). */
static int parse_u64(const char *s, uint64_t *out, const char **end, int base)
{
	uint64_t v = 0;
	const char *p = s;

	if (*p < '0' || *p > (base == 8 ? '7' : '9'))
		return -1;
	for (; *p >= '0' && *p <= (base == 8 ? '7' : '9'); p++) {
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / (uint64_t)base)
			return -1;
		v = v * (uint64_t)base + d;
	}
	*out = v;
	*end = p;
	return 0;
}

static const struct {
	const char *name;
	uint64_t mul;
} size_units[] =
    {
        {"TiB", 1ull << 40}, {"GiB", 1ull << 30},      {"MiB", 1ull << 20},
        {"KiB", 1ull << 10}, {"TB", 1000000000000ull}, {"GB", 1000000000ull},
        {"MB", 1000000ull},  {"kB", 1000ull},          {"B", 1},
},
  dur_units[] = {
      {"d", 86400000},
      {"h", 3600000},
      {"min", 60000},
      {"s", 1000},
      {"ms", 1},
};

static int parse_unit(const char *s, const char *key_unit_hint, uint64_t bare, int sizes,
                      uint64_t *out, char *why, size_t wl)
{
	uint64_t v, mul = bare;
	const char *end;
	size_t nu = sizes ? sizeof(size_units) / sizeof(size_units[0])
	                  : sizeof(dur_units) / sizeof(dur_units[0]);

	if (parse_u64(s, &v, &end, 10)) {
		snprintf(why, wl, "expected %s, got '%s'", key_unit_hint, s);
		return -1;
	}
	if (*end == ' ')
		end++;
	if (*end) {
		size_t i;
		for (i = 0; i < nu; i++) {
			const char *un = sizes ? size_units[i].name : dur_units[i].name;
			if (strcmp(end, un) == 0) {
				mul = sizes ? size_units[i].mul : dur_units[i].mul;
				break;
			}
		}
		if (i == nu) {
			snprintf(why, wl, "unknown unit '%s' in '%s' (%s)", end, s,
			         sizes ? "B, KiB, MiB, GiB, TiB, kB, MB, GB, TB" : "ms, s, min, h, d");
			return -1;
		}
	}
	if (mul && v > UINT64_MAX / mul) {
		snprintf(why, wl, "'%s' overflows 64 bits", s);
		return -1;
	}
	*out = v * mul;
	return 0;
}

static int in_bounds(const struct sv_config_key *k, double v)
{
	if ((k->flags & MINX) ? !(v > k->min) : !(v >= k->min))
		return 0;
	if ((k->flags & MAXX) ? !(v < k->max) : !(v <= k->max))
		return 0;
	return 1;
}

static void range_text(const struct sv_config_key *k, char *buf, size_t n)
{
	snprintf(buf, n, "%s%.15g, %.15g%s", (k->flags & MINX) ? "(" : "[", k->min, k->max,
	         (k->flags & MAXX) ? ")" : "]");
}

/* Parse text for key k into *val (a buffer as big as the field).  0 or -1
 * with a reason in why. */
static int parse_value(const struct sv_config_key *k, const char *s, void *val, char *why,
                       size_t wl)
{
	char rng[96];

	switch (k->type) {
	case SV_CONFIG_TYPE_INT: {
		char *end;
		long long v;
		errno = 0;
		v = strtoll(s, &end, 10);
		if (!*s || *end || errno || (*s == ' ')) {
			snprintf(why, wl, "expected an integer, got '%s'", s);
			return -1;
		}
		if (!in_bounds(k, (double)v))
			goto range_i;
		*(int64_t *)val = v;
		return 0;
	range_i:
		range_text(k, rng, sizeof(rng));
		snprintf(why, wl, "%s is out of range %s", s, rng);
		return -1;
	}
	case SV_CONFIG_TYPE_UINT:
	case SV_CONFIG_TYPE_MODE: {
		uint64_t v;
		const char *end;
		int base = k->type == SV_CONFIG_TYPE_MODE ? 8 : 10;
		if (parse_u64(s, &v, &end, base) || *end) {
			snprintf(why, wl, "expected %s, got '%s'",
			         base == 8 ? "an octal file mode like 0600"
			                   : "a non-negative integer",
			         s);
			return -1;
		}
		if (!in_bounds(k, (double)v)) {
			if (base == 8)
				snprintf(why, wl, "%s is out of range [0, 0777]", s);
			else {
				range_text(k, rng, sizeof(rng));
				snprintf(why, wl, "%s is out of range %s", s, rng);
			}
			return -1;
		}
		*(uint64_t *)val = v;
		return 0;
	}
	case SV_CONFIG_TYPE_DOUBLE: {
		char *end;
		double v;
		if (!*s || *s == ' ' || *s == '\t') {
			snprintf(why, wl, "expected a number, got '%s'", s);
			return -1;
		}
		v = strtod(s, &end);
		if (*end || end == s) {
			snprintf(why, wl, "expected a number, got '%s'", s);
			return -1;
		}
		if (!isfinite(v)) {
			snprintf(why, wl, "expected a finite number, got '%s'", s);
			return -1;
		}
		if (!in_bounds(k, v)) {
			range_text(k, rng, sizeof(rng));
			snprintf(why, wl, "%s is out of range %s", s, rng);
			return -1;
		}
		*(double *)val = v;
		return 0;
	}
	case SV_CONFIG_TYPE_BOOL: {
		static const char *const t[] = {"true", "yes", "on"}, *const f[] = {"false", "no",
		                                                                    "off"};
		for (int i = 0; i < 3; i++) {
			if (strcmp(s, t[i]) == 0) {
				*(int *)val = 1;
				return 0;
			}
			if (strcmp(s, f[i]) == 0) {
				*(int *)val = 0;
				return 0;
			}
		}
		snprintf(why, wl, "expected true or false, got '%s'", s);
		return -1;
	}
	case SV_CONFIG_TYPE_ENUM: {
		size_t n = 0;
		for (int i = 0; k->words[i]; i++)
			if (strcmp(s, k->words[i]) == 0) {
				*(int *)val = i;
				return 0;
			}
		n = (size_t)snprintf(why, wl, "expected one of ");
		for (int i = 0; k->words[i] && n < wl; i++)
			n += (size_t)snprintf(why + n, wl - n, "%s%s", i ? " | " : "", k->words[i]);
		if (n < wl)
			snprintf(why + n, wl - n, ", got '%s'", s);
		return -1;
	}
	case SV_CONFIG_TYPE_STRING:
		if (strlen(s) >= SV_CONFIG_STR_MAX) {
			snprintf(why, wl, "string of %zu bytes, limit %d", strlen(s),
			         SV_CONFIG_STR_MAX - 1);
			return -1;
		}
		strcpy(val, s);
		return 0;
	case SV_CONFIG_TYPE_SIZE:
	case SV_CONFIG_TYPE_DURATION: {
		uint64_t v;
		int sz = k->type == SV_CONFIG_TYPE_SIZE;
		if (parse_unit(s, sz ? "a size like 64MiB" : "a duration like 500ms or 30s",
		               sz ? 1 : k->unit_ms, sz, &v, why, wl))
			return -1;
		if (!in_bounds(k, (double)v)) {
			snprintf(why, wl, "%s is out of range [%.0f%s, %.0f%s]", s,
			         sz ? k->min : k->min / 1000, sz ? "" : "s",
			         sz ? k->max : k->max / 1000, sz ? " bytes" : "s");
			return -1;
		}
		*(uint64_t *)val = v;
		return 0;
	}
	}
	snprintf(why, wl, "internal: bad key type");
	return -1;
}

static size_t field_size(const struct sv_config_key *k)
{
	switch (k->type) {
	case SV_CONFIG_TYPE_INT:
		return sizeof(int64_t);
	case SV_CONFIG_TYPE_DOUBLE:
		return sizeof(double);
	case SV_CONFIG_TYPE_BOOL:
	case SV_CONFIG_TYPE_ENUM:
		return sizeof(int);
	case SV_CONFIG_TYPE_STRING:
		return SV_CONFIG_STR_MAX;
	default:
		return sizeof(uint64_t);
	}
}

static int set_key(struct sv_config *cfg, const struct sv_config_key *k, const char *s, char *why,
                   size_t wl)
{
	union {
		int64_t i;
		uint64_t u;
		double d;
		int b;
		char str[SV_CONFIG_STR_MAX];
	} v;

	if (parse_value(k, s, &v, why, wl))
		return -1;
	memcpy((char *)cfg + k->offset, &v, field_size(k));
	return 0;
}

/* Shortest %g that reads back to the same double. */
static int fmt_double(char *buf, size_t cap, double v)
{
	char tmp[64];
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
		if (strtod(tmp, NULL) == v)
			break;
	}
	return snprintf(buf, cap, "%s", tmp);
}

static int fmt_units(char *buf, size_t cap, uint64_t v, int sizes)
{
	size_t n = sizes ? sizeof(size_units) / sizeof(size_units[0])
	                 : sizeof(dur_units) / sizeof(dur_units[0]);
	if (sizes && v == 0)
		return snprintf(buf, cap, "0");
	if (!sizes && v == 0)
		return snprintf(buf, cap, "0s");
	for (size_t i = 0; i < n; i++) {
		uint64_t mul = sizes ? size_units[i].mul : dur_units[i].mul;
		if (sizes && i >= 4 && i < 8)
			continue; /* print binary units only */
		if (v % mul == 0)
			return snprintf(buf, cap, "%llu%s", (unsigned long long)(v / mul),
			                sizes ? (mul == 1 ? "" : size_units[i].name)
			                      : dur_units[i].name);
	}
	return snprintf(buf, cap, "%llu", (unsigned long long)v);
}

/* Render k's value (strings raw). */
static int fmt_value(const struct sv_config *cfg, const struct sv_config_key *k, char *buf,
                     size_t cap)
{
	const char *f = (const char *)cfg + k->offset;
	int64_t i;
	uint64_t u;
	double d;
	int b;

	switch (k->type) {
	case SV_CONFIG_TYPE_INT:
		memcpy(&i, f, sizeof(i));
		return snprintf(buf, cap, "%lld", (long long)i);
	case SV_CONFIG_TYPE_UINT:
		memcpy(&u, f, sizeof(u));
		return snprintf(buf, cap, "%llu", (unsigned long long)u);
	case SV_CONFIG_TYPE_MODE:
		memcpy(&u, f, sizeof(u));
		return snprintf(buf, cap, "0%03llo", (unsigned long long)u);
	case SV_CONFIG_TYPE_DOUBLE:
		memcpy(&d, f, sizeof(d));
		return fmt_double(buf, cap, d);
	case SV_CONFIG_TYPE_BOOL:
		memcpy(&b, f, sizeof(b));
		return snprintf(buf, cap, "%s", b ? "true" : "false");
	case SV_CONFIG_TYPE_ENUM: {
		int n = 0;
		memcpy(&b, f, sizeof(b));
		while (k->words[n])
			n++;
		return snprintf(buf, cap, "%s", b >= 0 && b < n ? k->words[b] : "?");
	}
	case SV_CONFIG_TYPE_STRING:
		return snprintf(buf, cap, "%s", f);
	case SV_CONFIG_TYPE_SIZE:
	case SV_CONFIG_TYPE_DURATION:
		memcpy(&u, f, sizeof(u));
		return fmt_units(buf, cap, u, k->type == SV_CONFIG_TYPE_SIZE);
	}
	return snprintf(buf, cap, "?");
}

void sv_config_defaults(struct sv_config *cfg)
{
	char why[256];

	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < N_KEYS; i++)
		(void)set_key(cfg, &keys[i], keys[i].def, why, sizeof(why)); /* tested */
}

int sv_config_set(struct sv_config *cfg, const char *key, const char *value, char *errbuf,
                  size_t errlen)
{
	const struct sv_config_key *k = sv_config_find(key);
	char why[512];

	if (!cfg || !key || !value) {
		if (errlen)
			snprintf(errbuf, errlen, "key '%s': no value", key ? key : "");
		return SV_ERR_CONFIG;
	}
	if (!k) {
		if (errlen)
			snprintf(errbuf, errlen, "key '%s': unknown key", key);
		return SV_ERR_CONFIG;
	}
	if (set_key(cfg, k, value, why, sizeof(why))) {
		if (errlen)
			snprintf(errbuf, errlen, "key '%s': %s", key, why);
		return SV_ERR_CONFIG;
	}
	return 0;
}

int sv_config_get(const struct sv_config *cfg, const char *key, char *buf, size_t cap)
{
	const struct sv_config_key *k = sv_config_find(key);

	if (!k || !cfg)
		return SV_ERR_NOTFOUND;
	return fmt_value(cfg, k, buf, cap);
}

/* ---- YAML reader ---- */

struct reader {
	const char *name;
	const char *text;
	size_t len;
	struct sv_config_errors *errs;
	unsigned n_err;
	struct sv_config *cfg;
	int seen_line[N_KEYS]; /* 1-based line a key was set at, 0 = not yet */
};

/* Append "name:line:col: msg" + the line + a caret. line/col 0-based. */
#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static void
report(struct reader *r, size_t line, size_t col, const char *fmt, ...)
{
	char msg[768];
	const char *p = r->text, *end = r->text + r->len, *eol;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	r->n_err++;
	if (r->errs)
		r->errs->count++;
	errs_add(r->errs, "%s:%zu:%zu: %s\n", r->name, line + 1, col + 1, msg);
	for (size_t l = 0; l < line && p < end; l++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		p = nl ? nl + 1 : end;
	}
	if (p >= end)
		return;
	eol = memchr(p, '\n', (size_t)(end - p));
	if (!eol)
		eol = end;
	errs_add(r->errs, "%.*s\n", (int)(eol - p), p);
	{
		char caret[256];
		size_t n = 0;
		for (size_t c = 0; c < col && p + c < eol && n + 2 < sizeof(caret); c++)
			caret[n++] = p[c] == '\t' ? '\t' : ' ';
		caret[n++] = '^';
		caret[n] = 0;
		errs_add(r->errs, "%s\n", caret);
	}
}

static int has_prefix_key(const char *prefix)
{
	size_t n = strlen(prefix);
	for (size_t i = 0; i < N_KEYS; i++)
		if (strncmp(keys[i].name, prefix, n) == 0 && keys[i].name[n] == '.')
			return 1;
	return 0;
}

/* Skip the rest of a collection whose start event was just consumed. */
static int skip_collection(yaml_parser_t *p)
{
	int depth = 1;
	yaml_event_t ev;

	while (depth > 0) {
		if (!yaml_parser_parse(p, &ev))
			return -1;
		if (ev.type == YAML_MAPPING_START_EVENT || ev.type == YAML_SEQUENCE_START_EVENT)
			depth++;
		else if (ev.type == YAML_MAPPING_END_EVENT || ev.type == YAML_SEQUENCE_END_EVENT)
			depth--;
		yaml_event_delete(&ev);
	}
	return 0;
}

static int parse_mapping(struct reader *r, yaml_parser_t *p, const char *prefix);

/* A value event for key `full` (dotted) at key mark km. */
static int handle_value(struct reader *r, yaml_parser_t *p, const char *full, yaml_mark_t km,
                        yaml_event_t *ev)
{
	const struct sv_config_key *k;
	char why[512];

	if (ev->type == YAML_MAPPING_START_EVENT) {
		if (sv_config_find(full)) {
			report(r, ev->start_mark.line, ev->start_mark.column,
			       "key '%s': expected a scalar value, got a mapping", full);
			return skip_collection(p);
		}
		if (!has_prefix_key(full)) {
			report(r, km.line, km.column, "key '%s': unknown section", full);
			return skip_collection(p);
		}
		return parse_mapping(r, p, full);
	}
	if (ev->type == YAML_SEQUENCE_START_EVENT) {
		report(r, ev->start_mark.line, ev->start_mark.column,
		       "key '%s': expected a scalar value, got a sequence", full);
		return skip_collection(p);
	}
	if (ev->type == YAML_ALIAS_EVENT) {
		report(r, ev->start_mark.line, ev->start_mark.column,
		       "key '%s': aliases are not supported", full);
		return 0;
	}
	if (ev->type != YAML_SCALAR_EVENT)
		return -1;
	k = sv_config_find(full);
	if (!k) {
		report(r, km.line, km.column, "key '%s': unknown key%s", full,
		       has_prefix_key(full) ? " (a section; give it a mapping)" : "");
		return 0;
	}
	if (r->seen_line[k - keys]) {
		report(r, km.line, km.column, "key '%s': duplicate key (first set on line %d)",
		       full, r->seen_line[k - keys]);
		return 0;
	}
	r->seen_line[k - keys] = (int)km.line + 1;
	if (memchr(ev->data.scalar.value, 0, ev->data.scalar.length)) {
		report(r, ev->start_mark.line, ev->start_mark.column,
		       "key '%s': value contains a NUL byte", full);
		return 0;
	}
	if (set_key(r->cfg, k, (const char *)ev->data.scalar.value, why, sizeof(why)))
		report(r, ev->start_mark.line, ev->start_mark.column, "key '%s': %s", full, why);
	return 0;
}

/* Parse the pairs of a mapping whose start was consumed, up to its end. */
static int parse_mapping(struct reader *r, yaml_parser_t *p, const char *prefix)
{
	for (;;) {
		yaml_event_t kev, vev;
		char full[512];
		yaml_mark_t km;
		int rc;

		if (!yaml_parser_parse(p, &kev))
			return -1;
		if (kev.type == YAML_MAPPING_END_EVENT) {
			yaml_event_delete(&kev);
			return 0;
		}
		km = kev.start_mark;
		if (kev.type != YAML_SCALAR_EVENT) {
			report(r, km.line, km.column, "key '%s': expected a plain key name",
			       prefix[0] ? prefix : "(top level)");
			if (kev.type == YAML_MAPPING_START_EVENT ||
			    kev.type == YAML_SEQUENCE_START_EVENT)
				rc = skip_collection(p);
			else
				rc = 0;
			yaml_event_delete(&kev);
			if (rc)
				return rc;
			/* skip the value too */
			if (!yaml_parser_parse(p, &vev))
				return -1;
			rc = (vev.type == YAML_MAPPING_START_EVENT ||
			      vev.type == YAML_SEQUENCE_START_EVENT)
			         ? skip_collection(p)
			         : 0;
			yaml_event_delete(&vev);
			if (rc)
				return rc;
			continue;
		}
		snprintf(full, sizeof(full), "%s%s%.*s", prefix, prefix[0] ? "." : "",
		         (int)kev.data.scalar.length, (const char *)kev.data.scalar.value);
		yaml_event_delete(&kev);
		if (!yaml_parser_parse(p, &vev))
			return -1;
		rc = handle_value(r, p, full, km, &vev);
		yaml_event_delete(&vev);
		if (rc)
			return rc;
	}
}

static void syntax_error(struct reader *r, yaml_parser_t *p)
{
	yaml_mark_t m = p->problem_mark;
	report(r, m.line, m.column, "syntax: %s%s%s", p->problem ? p->problem : "error",
	       p->context ? " " : "", p->context ? p->context : "");
}

int sv_config_load_string(struct sv_config *cfg, const char *name, const char *text, size_t len,
                          struct sv_config_errors *errs)
{
	struct reader *r;
	yaml_parser_t p;
	yaml_event_t ev;
	int rc = 0, done = 0;

	if (!cfg || (!text && len))
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->name = name ? name : "<config>";
	r->text = text ? text : "";
	r->len = len;
	r->errs = errs;
	r->cfg = malloc(sizeof(*cfg));
	if (!r->cfg) {
		free(r);
		return -ENOMEM;
	}
	*r->cfg = *cfg;
	if (!yaml_parser_initialize(&p)) {
		rc = -ENOMEM;
		goto out;
	}
	yaml_parser_set_input_string(&p, (const unsigned char *)r->text, len);
	while (!done) {
		if (!yaml_parser_parse(&p, &ev)) {
			syntax_error(r, &p);
			break;
		}
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = 1;
			break;
		case YAML_MAPPING_START_EVENT:
			if (parse_mapping(r, &p, "")) {
				syntax_error(r, &p);
				done = 1;
			}
			break;
		case YAML_SCALAR_EVENT:
			/* an empty document ("" or "~") is fine; anything else is not */
			if (ev.data.scalar.length &&
			    strcmp((const char *)ev.data.scalar.value, "~") != 0)
				report(r, ev.start_mark.line, ev.start_mark.column,
				       "the top level must be a mapping of keys");
			break;
		case YAML_SEQUENCE_START_EVENT:
			report(r, ev.start_mark.line, ev.start_mark.column,
			       "the top level must be a mapping of keys, not a sequence");
			if (skip_collection(&p)) {
				syntax_error(r, &p);
				done = 1;
			}
			break;
		default:
			break;
		}
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&p);
	if (r->n_err)
		rc = SV_ERR_CONFIG;
	else
		*cfg = *r->cfg;
out:
	free(r->cfg);
	free(r);
	return rc;
}

int sv_config_load_file(struct sv_config *cfg, const char *path, struct sv_config_errors *errs)
{
	FILE *fp;
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int rc;

	struct stat sb;
	int fd;

	if (!cfg || !path)
		return -EINVAL;
	/* Opened without blocking (a FIFO would hold a reload for ever), then
	 * refused unless a regular file of at most SV_CONFIG_FILE_MAX bytes. */
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) ||
	    sb.st_size > SV_CONFIG_FILE_MAX || !(fp = fdopen(fd, "rb"))) {
		rc = fd < 0 ? -errno : !S_ISREG(sb.st_mode) ? -EINVAL : -EFBIG;
		if (errs)
			errs->count++;
		if (fd < 0)
			errs_add(errs, "%s: cannot open: %s\n", path, strerror(-rc));
		else if (rc == -EINVAL)
			errs_add(errs, "%s: not a regular file (a config is a YAML file)\n", path);
		else
			errs_add(errs, "%s: %lld bytes, larger than a config may be (%d)\n", path,
			         (long long)sb.st_size, SV_CONFIG_FILE_MAX);
		if (fd >= 0)
			close(fd);
		return rc;
	}
	for (;;) {
		size_t got;
		if (len > SV_CONFIG_FILE_MAX) { /* grew while being read */
			rc = -EFBIG;
			if (errs)
				errs->count++;
			errs_add(errs, "%s: larger than a config may be (%d bytes)\n", path,
			         SV_CONFIG_FILE_MAX);
			goto out;
		}
		if (len + 4096 > cap) {
			char *nb = realloc(buf, cap ? cap * 2 : 8192);
			if (!nb) {
				rc = -ENOMEM;
				goto out;
			}
			buf = nb;
			cap = cap ? cap * 2 : 8192;
		}
		got = fread(buf + len, 1, cap - len, fp);
		len += got;
		if (got == 0)
			break;
	}
	if (ferror(fp)) {
		rc = -EIO;
		if (errs)
			errs->count++;
		errs_add(errs, "%s: read error\n", path);
		goto out;
	}
	rc = sv_config_load_string(cfg, path, buf, len, errs);
out:
	free(buf);
	fclose(fp);
	return rc;
}

/* ---- resolve, check ---- */

static int subst(char *field, const char *dir, const char *key, char *errbuf, size_t errlen)
{
	char out[SV_CONFIG_STR_MAX];
	size_t n = 0, pl = strlen(SV_CONFIG_STATE_PLACEHOLDER), dl = strlen(dir);
	const char *s = field;

	while (*s) {
		if (strncmp(s, SV_CONFIG_STATE_PLACEHOLDER, pl) == 0) {
			if (n + dl >= sizeof(out))
				goto too_long;
			memcpy(out + n, dir, dl);
			n += dl;
			s += pl;
		} else {
			if (n + 1 >= sizeof(out))
				goto too_long;
			out[n++] = *s++;
		}
	}
	out[n] = 0;
	memcpy(field, out, n + 1);
	return 0;
too_long:
	if (errlen)
		snprintf(errbuf, errlen, "key '%s': longer than %d bytes once %s is replaced", key,
		         SV_CONFIG_STR_MAX - 1, SV_CONFIG_STATE_PLACEHOLDER);
	return SV_ERR_CONFIG;
}

int sv_config_resolve(struct sv_config *cfg, const char *state_dir, char *errbuf, size_t errlen)
{
	struct sv_config tmp;
	const char *dir;
	int rc;

	if (!cfg)
		return -EINVAL;
	tmp = *cfg;
	dir = state_dir ? state_dir : cfg->state_dir;
	if (strlen(dir) >= SV_CONFIG_STR_MAX || strstr(dir, SV_CONFIG_STATE_PLACEHOLDER)) {
		if (errlen)
			snprintf(errbuf, errlen, "key 'state_dir': too long or contains %s",
			         SV_CONFIG_STATE_PLACEHOLDER);
		return SV_ERR_CONFIG;
	}
	if (dir != cfg->state_dir)
		strcpy(tmp.state_dir, dir);
	for (size_t i = 0; i < N_KEYS; i++) {
		if (keys[i].type != SV_CONFIG_TYPE_STRING || keys[i].offset == OFF(state_dir))
			continue;
		if ((rc = subst((char *)&tmp + keys[i].offset, tmp.state_dir, keys[i].name, errbuf,
		                errlen)))
			return rc;
	}
	*cfg = tmp;
	return 0;
}

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void
check_fail(struct sv_config_errors *errs, unsigned *n, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	(*n)++;
	if (errs) {
		errs->count++;
		errs_add(errs, "%s\n", msg);
	}
}

int sv_config_check(const struct sv_config *c, struct sv_config_errors *errs)
{
	unsigned n = 0;
	const char *eps[] = {c->endpoints_ingest, c->endpoints_ingest_acked, c->endpoints_query,
	                     c->endpoints_admin};
	const char *epn[] = {"endpoints.ingest", "endpoints.ingest_acked", "endpoints.query",
	                     "endpoints.admin"};

	if (c->model_d_out > c->model_d_in)
		check_fail(errs, &n, "key 'model.d_out': %llu exceeds model.d_in %llu",
		           (unsigned long long)c->model_d_out, (unsigned long long)c->model_d_in);
	if (c->query_min_window_pairs > c->query_window_pairs)
		check_fail(errs, &n,
		           "key 'query.min_window_pairs': %llu exceeds query.window_pairs %llu",
		           (unsigned long long)c->query_min_window_pairs,
		           (unsigned long long)c->query_window_pairs);
	if (c->store_map_size > c->store_max_map_size)
		check_fail(errs, &n, "key 'store.map_size': exceeds store.max_map_size");
	if (c->train_batch_pairs > c->limits_max_batch_pairs)
		check_fail(errs, &n,
		           "key 'train.batch_pairs': %llu exceeds limits.max_batch_pairs %llu",
		           (unsigned long long)c->train_batch_pairs,
		           (unsigned long long)c->limits_max_batch_pairs);
	if (c->train_nesterov && (c->train_momentum <= 0 || c->train_dampening != 0))
		check_fail(errs, &n,
		           "key 'train.nesterov': needs train.momentum > 0 and train.dampening 0");
	if (strncmp(c->endpoints_admin, "tcp://", 6) == 0 && !c->endpoints_allow_tcp_admin &&
	    !(c->security_curve_server_key[0] &&
	      (c->security_curve_allow_admin[0] || c->security_curve_allow[0])))
		check_fail(errs, &n,
		           "key 'endpoints.admin': tcp:// without CURVE and an admin allow-list "
		           "(security.curve_server_key + security.curve_allow_admin or "
		           "security.curve_allow) needs endpoints.allow_tcp_admin: true");
	if (c->security_curve_allow[0] && !c->security_curve_server_key[0])
		check_fail(errs, &n, "key 'security.curve_allow': needs security.curve_server_key");
	if (c->security_curve_allow_ingest[0] && !c->security_curve_server_key[0])
		check_fail(errs, &n,
		           "key 'security.curve_allow_ingest': needs security.curve_server_key");
	if (c->security_curve_allow_query[0] && !c->security_curve_server_key[0])
		check_fail(errs, &n, "key 'security.curve_allow_query': needs security.curve_server_key");
	if (c->security_curve_allow_admin[0] && !c->security_curve_server_key[0])
		check_fail(errs, &n, "key 'security.curve_allow_admin': needs security.curve_server_key");
	for (int i = 0; i < 4; i++) {
		if (!eps[i][0])
			check_fail(errs, &n, "key '%s': empty endpoint", epn[i]);
		else if (strstr(eps[i], SV_CONFIG_STATE_PLACEHOLDER))
			check_fail(errs, &n, "key '%s': %s not resolved (call sv_config_resolve)",
			           epn[i], SV_CONFIG_STATE_PLACEHOLDER);
		for (int j = 0; j < i; j++)
			if (eps[i][0] && strcmp(eps[i], eps[j]) == 0)
				check_fail(errs, &n, "key '%s': same endpoint as %s", epn[i],
				           epn[j]);
		if (!eps[i][0] || strstr(eps[i], SV_CONFIG_STATE_PLACEHOLDER))
			continue;
		/* what binding would refuse, said here (also by --check-config) */
		if (strncmp(eps[i], "ipc://", 6) == 0) {
			struct sockaddr_un un;
			if (!eps[i][6])
				check_fail(errs, &n, "key '%s': ipc:// without a path", epn[i]);
			else if (eps[i][6] != '@' && strlen(eps[i] + 6) >= sizeof(un.sun_path))
				check_fail(errs, &n,
				           "key '%s': ipc path is %zu bytes, longer than a socket path may "
				           "be (%zu); use a shorter state_dir",
				           epn[i], strlen(eps[i] + 6), sizeof(un.sun_path) - 1);
		} else if (strncmp(eps[i], "tcp://", 6) == 0) {
			const char *colon = strrchr(eps[i] + 6, ':');
			if (!colon || colon == eps[i] + 6 || !colon[1] ||
			    strspn(colon + 1, "0123456789") != strlen(colon + 1) ||
			    atol(colon + 1) > 65535)
				check_fail(errs, &n, "key '%s': '%s': expected tcp://HOST:PORT", epn[i],
				           eps[i]);
		} else {
			check_fail(errs, &n, "key '%s': '%s': expected an ipc:// or tcp:// endpoint",
			           epn[i], eps[i]);
		}
	}
	if (!c->store_path[0])
		check_fail(errs, &n, "key 'store.path': empty");
	/* LOSSES.md 5.3: NT-Xent over the labeled pairs alone has no negatives */
	if (c->train_loss == SV_LOSS_KIND_NTXENT && c->train_mode == SV_LABEL_MODE_PAIRS)
		check_fail(errs, &n,
		           "key 'train.mode': 'pairs' with train.loss 'ntxent' has zero loss on "
		           "every batch (NT-Xent needs in-batch negatives); use train.mode 'batch' or "
		           "'graph', or train.loss 'contrastive'");
	if (c->cluster_role == SV_CONFIG_ROLE_TRAINER && c->train_replay)
		check_fail(errs, &n,
		           "key 'train.replay': 'on' needs cluster.role 'off' (idle replay is not "
		           "in the stream, so a standby could not follow it in lockstep)");
	if (c->cluster_role != SV_CONFIG_ROLE_OFF && !c->cluster_urls[0])
		check_fail(errs, &n, "key 'cluster.urls': empty");
	if (strlen(c->cluster_name) > 48)
		check_fail(errs, &n, "key 'cluster.name': longer than 48 bytes");
	if (c->cluster_name[0] && strspn(c->cluster_name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKL"
	                                                  "MNOPQRSTUVWXYZ0123456789_-") !=
	                              strlen(c->cluster_name))
		check_fail(errs, &n, "key 'cluster.name': '%s': only letters, digits, '_' and '-'",
		           c->cluster_name);
	if (c->cluster_stream[0] == '\0' ||
	    strspn(c->cluster_stream, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") !=
	        strlen(c->cluster_stream))
		check_fail(errs, &n, "key 'cluster.stream': '%s': only letters, digits, '_' and '-'",
		           c->cluster_stream);
	return n ? SV_ERR_CONFIG : 0;
}

/* ---- show, diff ---- */

static void buf_put(char *buf, size_t cap, size_t *n, const char *s, size_t len)
{
	if (*n < cap) {
		size_t room = cap - *n - 1;
		memcpy(buf + *n, s, len < room ? len : room);
		buf[*n + (len < room ? len : room)] = 0;
	}
	*n += len;
}

size_t sv_config_show(const struct sv_config *cfg, char *buf, size_t cap)
{
	size_t n = 0;
	char val[SV_CONFIG_STR_MAX], line[4 * SV_CONFIG_STR_MAX + 600];
	char section[64] = "";

	if (cap && buf)
		buf[0] = 0;
	else
		cap = 0;
	for (size_t i = 0; i < N_KEYS; i++) {
		const struct sv_config_key *k = &keys[i];
		const char *dot = strchr(k->name, '.');
		const char *leaf = dot ? dot + 1 : k->name;
		int len;

		if (dot && (strncmp(section, k->name, (size_t)(dot - k->name)) != 0 ||
		            section[dot - k->name] != 0)) {
			snprintf(section, sizeof(section), "%.*s", (int)(dot - k->name), k->name);
			len = snprintf(line, sizeof(line), "%s:\n", section);
			buf_put(buf, cap, &n, line, (size_t)len);
		} else if (!dot) {
			section[0] = 0;
		}
		fmt_value(cfg, k, val, sizeof(val));
		if (k->type == SV_CONFIG_TYPE_STRING) {
			char q[4 * SV_CONFIG_STR_MAX + 3];
			size_t qn = 0;
			q[qn++] = '"';
			for (const unsigned char *s = (const unsigned char *)val; *s; s++) {
				if (*s == '"' || *s == '\\') {
					q[qn++] = '\\';
					q[qn++] = (char)*s;
				} else if (*s < 0x20 || *s == 0x7f) {
					qn += (size_t)snprintf(q + qn, 5, "\\x%02x", *s);
				} else if (s[0] == 0xc2 && s[1] >= 0x80 && s[1] <= 0x9f) {
					/* C1 controls (U+0080..U+009F) may not appear raw in
					 * YAML; "\xNN" reads back as U+00NN */
					qn += (size_t)snprintf(q + qn, 5, "\\x%02x", *++s);
				} else if ((s[0] == 0xef && s[1] == 0xbf && (s[2] == 0xbe || s[2] == 0xbf)) ||
				           (s[0] == 0xe2 && s[1] == 0x80 && (s[2] == 0xa8 || s[2] == 0xa9))) {
					/* U+FFFE, U+FFFF (not allowed raw) and U+2028, U+2029
					 * (line breaks to YAML 1.1, folded if raw) */
					unsigned cp = s[0] == 0xef ? 0xfffeu + (s[2] & 1u) : 0x2028u + (s[2] & 1u);
					qn += (size_t)snprintf(q + qn, 7, "\\u%04X", cp);
					s += 2;
				} else {
					q[qn++] = (char)*s;
				}
			}
			q[qn++] = '"';
			q[qn] = 0;
			len = snprintf(line, sizeof(line), "%s%s: %s\n", dot ? "  " : "", leaf, q);
		} else {
			len =
			    snprintf(line, sizeof(line), "%s%s: %s\n", dot ? "  " : "", leaf, val);
		}
		buf_put(buf, cap, &n, line, (size_t)len);
	}
	return n;
}

static int key_equal(const struct sv_config *a, const struct sv_config *b,
                     const struct sv_config_key *k)
{
	const char *fa = (const char *)a + k->offset, *fb = (const char *)b + k->offset;

	if (k->type == SV_CONFIG_TYPE_STRING)
		return strcmp(fa, fb) == 0;
	return memcmp(fa, fb, field_size(k)) == 0;
}

size_t sv_config_diff(const struct sv_config *a, const struct sv_config *b,
                      const struct sv_config_key **out, size_t cap)
{
	size_t n = 0;

	for (size_t i = 0; i < N_KEYS; i++) {
		if (key_equal(a, b, &keys[i]))
			continue;
		if (out && n < cap)
			out[n] = &keys[i];
		n++;
	}
	return n;
}

int sv_config_reload_check(const struct sv_config *old, const struct sv_config *neu, char *errbuf,
                           size_t errlen)
{
	size_t n = 0, bad = 0;

	if (errlen)
		errbuf[0] = 0;
	for (size_t i = 0; i < N_KEYS; i++) {
		if (key_equal(old, neu, &keys[i]) || (keys[i].flags & SV_CONFIG_KEY_LIVE))
			continue;
		if (errlen && n < errlen)
			n += (size_t)snprintf(
			    errbuf + n, errlen - n, "%s%s",
			    bad ? ", " : "not reloadable (restart needed): ", keys[i].name);
		bad++;
	}
	return bad ? SV_ERR_CONFIG : 0;
}

/* ---- converters ---- */

void sv_config_loss_params(const struct sv_config *c, struct sv_loss_params *p)
{
	memset(p, 0, sizeof(*p));
	p->kind = (enum sv_loss_kind)c->train_loss;
	p->mode = (enum sv_label_mode)c->train_mode;
	p->pos_margin = (float)c->train_pos_margin;
	p->neg_margin = (float)c->train_neg_margin;
	p->temperature = (float)c->train_temperature;
}

void sv_config_optim_params(const struct sv_config *c, struct sv_optim_params *p)
{
	memset(p, 0, sizeof(*p));
	p->kind = (enum sv_optim_kind)c->train_optimizer;
	p->lr = c->train_lr;
	p->momentum = c->train_momentum;
	p->dampening = c->train_dampening;
	p->nesterov = c->train_nesterov;
	p->weight_decay = c->train_weight_decay;
	p->beta1 = c->train_beta1;
	p->beta2 = c->train_beta2;
	p->eps = c->train_eps;
}

void sv_config_train_params(const struct sv_config *c, struct sv_train_params *p)
{
	memset(p, 0, sizeof(*p));
	p->d_in = (uint32_t)c->model_d_in;
	p->d_out = (uint32_t)c->model_d_out;
	p->init = (enum sv_model_init)c->model_init;
	p->seed = c->model_seed;
	p->max_pairs = (size_t)c->train_batch_pairs;
	sv_config_loss_params(c, &p->loss);
	sv_config_optim_params(c, &p->optim);
}

void sv_config_replay_params(const struct sv_config *c, struct sv_replay_params *p)
{
	sv_replay_params_default(p);
	p->seed = c->model_seed + 1;
	p->batch_pairs = (uint32_t)c->train_replay_batch;
	sv_replay_params_slice(p, (uint32_t)c->train_replay_slice);
	p->patience = (uint32_t)c->train_replay_patience;
	p->retries = (uint32_t)c->train_replay_retries;
	p->max_rounds = (uint32_t)c->train_replay_max_rounds;
	p->lr_decay = c->train_replay_lr_decay;
	p->fill_uses = c->train_replay_fill_uses;
	p->decay_mode = c->train_replay_decay ? SV_REPLAY_DECAY_GO : SV_REPLAY_DECAY_ROUND;
	p->refit_share = c->train_replay_refit_share;
}

void sv_config_proto_limits(const struct sv_config *c, struct sv_proto_limits *lim)
{
	memset(lim, 0, sizeof(*lim));
	lim->d_in = (uint32_t)c->model_d_in;
	lim->max_msg_bytes = (size_t)c->limits_max_msg_bytes;
	lim->max_pairs = (size_t)c->limits_max_batch_pairs;
	lim->max_id_bytes = (size_t)c->limits_max_id_bytes;
	lim->max_k = (uint32_t)c->limits_max_k;
	lim->max_hits = c->limits_max_topk_hits;
}
