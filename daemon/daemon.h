/* daemon.h - state shared by simverifyd's threads.
 *
 * Threads (main.c starts them, in this order):
 *   trainer  the ONLY store writer: owns the control socket; takes the
 *            messages the ingest decode stage decoded, logs them (group
 *            commit), acks (ingest.c), batches, trains, publishes
 *            snapshots, checkpoints (trainer.c); it starts the decode
 *            stage, sv-ingest-dec, which owns both ingest sockets (PULL,
 *            acked ROUTER), decodes, copies vectors and sends the acks
 *   query    ROUTER (ROUTER_MANDATORY) front + worker threads: SCORE,
 *            SCORE_BATCH, TOPK, ITEM get on snapshots and read-only
 *            transactions (query.c)
 *   admin    ROUTER on an ipc:// socket (mode 0600): STATUS and VERSIONS
 *            directly, the rest forwarded to the trainer (admin.c)
 *   main     signals (a handler writing to a pipe), sd_notify, watchdog,
 *            reload (loop.c)
 *
 * Everything here is either set before the threads start and read-only
 * afterwards, or atomic.  Counters are monotonic and meant for a Prometheus
 * exposition (admin STATUS prints them as JSON).
 */
#ifndef SV_DAEMON_DAEMON_H
#define SV_DAEMON_DAEMON_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "reject.h"
#include "snapshot.h"
#include "sv/loss.h"
#include "sv/config.h"
#include "sv/optim.h"
#include "sv/proto.h"
#include "sv/store.h"

#define SV_ENDPOINT_MAX SV_CONFIG_STR_MAX
/* The settings a reload may change while running (the keys the config
 * table marks SV_CONFIG_KEY_LIVE_*), mapped from struct sv_config by
 * settings_live() alone: at start into sv_dconf.live, on SIGHUP into
 * sv_daemon.live. */
struct sv_live {
	uint32_t batch_size;          /* B */
	struct sv_optim_params optim; /* hyperparameters; the kind is fixed */
	uint32_t max_wait_ms;         /* a partial batch trains after this */
	uint32_t ckpt_steps;          /* checkpoint every N steps (0: never) */
	uint64_t ckpt_ms;             /* ... or T ms with new steps (0: never) */
	uint32_t keep_versions;       /* checkpoints kept */
	int threshold_policy;         /* enum sv_metrics_policy */
	float threshold;              /* fixed / initial threshold */
	double target_far;            /* target_far policy */
	uint64_t min_pairs;           /* window pairs before a policy applies */
	uint32_t window_pairs;        /* pairs in the prequential window */
	struct sv_proto_limits lim;   /* what the decoders accept */
	int log_level;                /* syslog level */
	size_t max_map_size;          /* store.max_map_size */
	uint64_t retain_pairs;        /* store.retain_pairs (0: no count limit) */
	uint64_t retain_age_ms;       /* store.retain_age (0: no age limit) */
	uint64_t min_free;            /* store.min_free, bytes */
	uint64_t dedup_window_ms;     /* ingest.dedup_window */
	uint32_t dedup_depth;         /* ingest.dedup_depth */
	uint64_t topk_refresh_ms;     /* query.topk_refresh */
};

/* The daemon's settings, mapped from the config module's struct sv_config
 * (settings.c); cfg keeps the original for CONFIG (show) and reload diffs.
 * Read-only after start: what may change lives in sv_daemon.live. */
struct sv_dconf {
	struct sv_config cfg;
	char state_dir[SV_ENDPOINT_MAX];
	char store_path[SV_ENDPOINT_MAX];
	char ep_ingest[SV_ENDPOINT_MAX];     /* PULL, fire and forget */
	char ep_ingest_ack[SV_ENDPOINT_MAX]; /* ROUTER, acked after commit */
	char ep_query[SV_ENDPOINT_MAX];      /* ROUTER, pipelined DEALER clients */
	char ep_admin[SV_ENDPOINT_MAX];      /* ROUTER, ipc:// mode admin_mode */
	char ep_http[SV_ENDPOINT_MAX];       /* HOST:PORT of the monitoring endpoint, "" none */
	unsigned admin_mode;                 /* file mode of an ipc:// admin socket */
	int ingest_hwm;                      /* messages queued per ingest socket */
	uint32_t d_in, d_out;
	uint64_t seed;
	uint32_t batch_max;  /* largest B a reload may set */
	uint32_t group_max;  /* most messages (or pairs) in one group commit */
	uint32_t query_threads;
	struct sv_loss_params loss;
	enum sv_optim_kind optim_kind; /* fixed for a store */
	struct sv_store_opts store;
	struct sv_live live; /* the live settings as started */
};

/* Outcomes of a received pair. */
enum sv_pair_outcome {
	SV_PAIR_OUTCOME_LOGGED = 0, /* committed to the log */
	SV_PAIR_OUTCOME_DUPLICATE,  /* (client, seq) seen: re-acked, not logged */
	SV_PAIR_OUTCOME_REJECTED,   /* malformed or invalid: not logged */
	SV_PAIR_OUTCOME_FAILED,     /* the store failed: not logged, error reply */
	SV_PAIR_OUTCOME_COUNT,
};

struct sv_counters {
	atomic_uint_fast64_t pairs[SV_PAIR_OUTCOME_COUNT];
	atomic_uint_fast64_t rejects[SV_REJECT_COUNT]; /* by enum sv_reject (reject.h) */
	atomic_uint_fast64_t items_put, items_del;
	atomic_uint_fast64_t steps, step_failures, checkpoints;
	atomic_uint_fast64_t commits; /* group commits */
	atomic_uint_fast64_t pairs_trimmed;     /* log rows deleted by retention */
	atomic_uint_fast64_t clients_expired;   /* clients forgotten after ingest.dedup_window */
	atomic_uint_fast64_t store_full_groups; /* groups that did not fit (held or refused) */
	atomic_uint_fast64_t queries, query_errors, unroutable;
	atomic_uint_fast64_t admin_requests;
	atomic_uint_fast64_t contradictions;  /* graph mode: y=0 pairs inside one group */
	atomic_uint_fast64_t zero_grad_steps; /* steps whose gradient was exactly 0 */
	/* query latency (decoded request to reply ready) by verb (enum
	 * sv_lat_verb), a histogram with SV_LAT_BUCKETS upper bounds lat_le[]
	 * plus +Inf; per-bucket counts (not cumulative), sum in ns.
	 * latency_note() writes it. */
	atomic_uint_fast64_t lat_bucket[4][16]; /* [SV_LAT_VERBS][SV_LAT_BUCKETS + 1] */
	atomic_uint_fast64_t lat_sum_ns[4], lat_count[4];
};

/* Why the daemon is not ready (GET /readyz, STATUS), or SV_READY_OK. */
enum sv_ready {
	SV_READY_OK = 0,
	SV_READY_STARTING,     /* recovering; nothing is served yet */
	SV_READY_STOPPING,     /* SIGTERM: finishing the batch in hand */
	SV_READY_STORE_FULL,   /* the store reached store.max_map_size */
	SV_READY_STORE_FAILED, /* the last group commit failed */
	SV_READY_FOLLOWING,    /* a cluster replica that has not yet read the models
	                        * bucket and the items stream as they were at its start */
	SV_READY_COUNT
};
static const char *const ready_name[SV_READY_COUNT] = {
    "ready", "starting", "stopping", "store_full", "store_failed", "following"};

/* Why ingest is refused for room (STATUS store_full, the metric's label). */
enum sv_full {
	SV_FULL_NO = 0,
	SV_FULL_MAP,  /* the map reached store.max_map_size */
	SV_FULL_DISK, /* the file system is below store.min_free */
	SV_FULL_GONE, /* data.mdb was removed or replaced under the daemon */
	SV_FULL_COUNT
};
static const char *const full_name[SV_FULL_COUNT] = {"", "max_map_size", "min_free",
                                                     "store_gone"};

/* Trainer progress, published for STATUS, STATUS= and the watchdog. */
struct sv_progress {
	atomic_uint_fast64_t heartbeat; /* +1 per trainer loop iteration */
	_Atomic double pairs_per_second; /* pairs committed/s, moving (trainer) */
	atomic_uint_fast64_t model_version;
	atomic_uint_fast64_t steps;      /* total, across restarts */
	atomic_uint_fast64_t pairs_seen; /* trained on, across restarts */
	atomic_uint_fast64_t applied_seq;
	atomic_uint_fast64_t last_seq;      /* last logged */
	atomic_uint_fast64_t ckpt_unix_ns;  /* when the last checkpoint was written (0: none) */
	_Atomic double grad_norm;           /* Frobenius norm of dL/dW of the last step */
	atomic_uint_fast64_t backlog;  /* pairs logged but not yet trained: the batch being
	                                * filled and the one the step runner holds */
	atomic_int paused;
	atomic_int store_full;                /* enum sv_full: why ingest is refused */
	atomic_int not_ready;                 /* enum sv_ready */
	atomic_uint_fast64_t window_pairs;    /* pairs in the prequential window now */
	_Atomic double auc, eer, loss;
	_Atomic double tar_far_1e2, tar_far_1e3; /* TAR at FAR 1e-2 / 1e-3 on the window */
	_Atomic float threshold;
	/* replay (replay.c): enum sv_replay_state / sv_replay_decision, rounds
	 * since the baseline, lifetime counters, slice AUCs (NaN: none) */
	atomic_int replay_state, replay_decision;
	atomic_uint_fast64_t replay_rounds, replay_steps, replay_fill_pairs, replay_undos;
	_Atomic double replay_best_auc, replay_last_auc, replay_idle_s;
};

struct history;

struct cluster;
struct sv_daemon {
	struct sv_dconf conf; /* read-only after start, except live keys */
	void *zctx;
	sv_store *store;
	struct sv_snap_slot snap;
	struct topk_cache *topk; /* projection cache for TOPK (topk_cache.h); set before threads */
	struct sv_counters cnt;
	struct sv_progress prog;
	struct history *hist; /* the status page's samples and ROC (history.h); set before threads */
	struct cluster *_Atomic cluster; /* cluster.role trainer (cluster.h); else NULL */
	char http_bound[64];  /* the address http.c listens on ("" none); set before threads */
	atomic_int stopping;
	atomic_int failed; /* a thread's fatal error (logged): it sets stopping, main exits 1 */
	/* live settings: main writes them on SIGHUP under live_mu and bumps
	 * live_gen; each consumer (the trainer, query workers, admin) copies
	 * what it uses when it sees a new generation */
	pthread_mutex_t live_mu;
	struct sv_live live;
	atomic_uint live_gen;
};

/* The decoder limits in force for one thread: *lim is refreshed from
 * d->live when the live generation moved past *gen (a reload).  Start with
 * *gen = UINT_MAX.  Any thread; one atomic load when nothing changed. */
static inline void live_limits(struct sv_daemon *d, unsigned *gen, struct sv_proto_limits *lim)
{
	unsigned g = atomic_load(&d->live_gen);

	if (g == *gen)
		return;
	pthread_mutex_lock(&d->live_mu);
	*lim = d->live.lim;
	pthread_mutex_unlock(&d->live_mu);
	*gen = g;
}

/* Query latency buckets: upper bounds in seconds (le), then +Inf. */
#define SV_LAT_BUCKETS 15
static const double lat_le[SV_LAT_BUCKETS] = {
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
    0.025,   0.05,   0.1,     0.25,   0.5,   1.0,    2.5};

/* The query verbs latency is kept for, and their names (a label value). */
enum sv_lat_verb {
	SV_LAT_VERB_SCORE = 0,
	SV_LAT_VERB_SCORE_BATCH,
	SV_LAT_VERB_TOPK,
	SV_LAT_VERB_ITEM_GET,
	SV_LAT_VERBS
};
static const char *const lat_verb_name[SV_LAT_VERBS] = {"score", "score_batch", "topk",
                                                           "item_get"};

/* The latency slot of a wire verb, or -1 for any other verb. */
static inline int lat_verb_of(int proto_verb)
{
	return proto_verb == SV_PROTO_VERB_SCORE         ? SV_LAT_VERB_SCORE
	       : proto_verb == SV_PROTO_VERB_SCORE_BATCH ? SV_LAT_VERB_SCORE_BATCH
	       : proto_verb == SV_PROTO_VERB_TOPK        ? SV_LAT_VERB_TOPK
	       : proto_verb == SV_PROTO_VERB_ITEM_GET    ? SV_LAT_VERB_ITEM_GET
	                                                 : -1;
}

/* Record one query's latency (ns) for wire verb proto_verb (other verbs
 * are not recorded); any thread, lock-free. */
static inline void latency_note(struct sv_daemon *d, int proto_verb, uint64_t ns)
{
	double s = (double)ns * 1e-9;
	int b = 0, v = lat_verb_of(proto_verb);

	if (v < 0)
		return;
	while (b < SV_LAT_BUCKETS && s > lat_le[b])
		b++;
	atomic_fetch_add(&d->cnt.lat_bucket[v][b], 1);
	atomic_fetch_add(&d->cnt.lat_sum_ns[v], ns);
	atomic_fetch_add(&d->cnt.lat_count[v], 1);
}

/* Endpoint of the trainer's control socket (admin -> trainer). */
#define SV_CTL_ENDPOINT "inproc://sv-trainer-ctl"

#endif
