/* sv/config.h - simverifyd's configuration: one table drives it all.
 *
 * Every key is one row of a table (struct sv_config_key, listed by
 * sv_config_keys()): dotted name, type, bounds, default (as text, parsed by
 * the same code as the file), offset into struct sv_config, whether it can
 * change live (SIGHUP) and a help line.  That table drives parsing, defaults,
 * bounds checks, printing (`simverifyctl config show`) and diffs.  The
 * reference for every key is conf/simverifyd.yaml, which lists them all at
 * their defaults; a test proves it parses to exactly sv_config_defaults().
 *
 * File format: YAML, a mapping of sections to mappings of keys
 * ("train:\n  lr: 0.01"); a dotted key at any level also works ("train.lr:
 * 0.01").  Values are scalars.  Types:
 *   int, uint   decimal integers (uint: no sign)
 *   double      a finite decimal number (1e-3 allowed)
 *   bool        true|false|yes|no|on|off
 *   enum        one word of the row's list
 *   string      text up to SV_CONFIG_STR_MAX - 1 bytes
 *   size        bytes: an integer with an optional unit B, KiB, MiB, GiB,
 *               TiB (x1024) or kB, MB, GB, TB (x1000): "64MiB", "1GiB"
 *   duration    an integer with unit ms, s, min or h ("500ms", "30s"); a
 *               bare number is in the key's own unit (ms for *_ms, s for
 *               *_s).  Stored in milliseconds.
 *   mode        octal file mode ("0600")
 * Unknown keys, type errors, out-of-range values and duplicate keys are
 * errors.  All errors of a file are collected (never printed: lib/ does not
 * print) into a struct sv_config_errors, each as
 *     file:line:col: key 'train.lr': <reason>
 *     <the offending line>
 *     <caret under the column>
 * so the daemon prints errs.text once and exits non-zero.
 *
 * Typical use (daemon start):
 *     sv_config_defaults(&cfg);
 *     sv_config_load_file(&cfg, path, &errs);       // all file errors
 *     sv_config_set(&cfg, "train.lr", "0.01", ...)  // each -o key=value
 *     sv_config_resolve(&cfg, state_dir, ...)       // @STATE@ placeholders
 *     sv_config_check(&cfg, &errs);                 // cross-key rules
 * On SIGHUP: load a fresh config the same way, then sv_config_diff(old, new)
 * and apply only when every changed key is reloadable
 * (sv_config_reload_check names the others).
 *
 * struct sv_config is a plain value: strings are fixed arrays, nothing is
 * heap-owned, so it can be copied with `=` and needs no destructor.
 */
#ifndef SV_CONFIG_H
#define SV_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "sv/loss.h"
#include "sv/optim.h"
#include "sv/proto.h"
#include "sv/replay.h"
#include "sv/train.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SV_CONFIG_STR_MAX 1024
/* The placeholder replaced by the state directory in paths and endpoints. */
#define SV_CONFIG_STATE_PLACEHOLDER "@STATE@"

enum sv_config_sync {
	SV_CONFIG_SYNC_FULL = 0, /* fsync every commit */
	SV_CONFIG_SYNC_META = 1, /* MDB_NOMETASYNC */
	SV_CONFIG_SYNC_NONE = 2, /* MDB_NOSYNC */
};

/* cluster.role (docs/SCALING.md). */
enum sv_config_role {
	SV_CONFIG_ROLE_OFF = 0,     /* one node: no NATS */
	SV_CONFIG_ROLE_TRAINER = 1, /* the pair log on JetStream; leader or standby by the lease */
	SV_CONFIG_ROLE_REPLICA = 2, /* queries only, following models and items */
};

/* cluster.ack: when the ingest gateway answers an acked message. */
enum sv_config_cluster_ack {
	SV_CONFIG_CLUSTER_ACK_STORED = 0,    /* JetStream acked it (a quorum holds it) */
	SV_CONFIG_CLUSTER_ACK_COMMITTED = 1, /* and this node's LMDB group commit holds it */
};

/* Log levels; the syslog priority is 7 - level (debug 7 ... err 3). */
enum sv_config_log_level {
	SV_CONFIG_LOG_LEVEL_DEBUG = 0,
	SV_CONFIG_LOG_LEVEL_INFO = 1,
	SV_CONFIG_LOG_LEVEL_NOTICE = 2,
	SV_CONFIG_LOG_LEVEL_WARNING = 3,
	SV_CONFIG_LOG_LEVEL_ERR = 4,
};

/* Field types: int -> int64_t, uint/size/mode -> uint64_t, duration ->
 * uint64_t milliseconds, double -> double, bool/enum -> int, string ->
 * char[SV_CONFIG_STR_MAX].  The comment on each field is its key. */
struct sv_config {
	char state_dir[SV_CONFIG_STR_MAX]; /* state_dir */

	uint64_t model_d_in;  /* model.d_in */
	uint64_t model_d_out; /* model.d_out */
	int model_init;       /* model.init: enum sv_model_init */
	uint64_t model_seed;  /* model.seed */

	int train_loss;             /* train.loss: enum sv_loss_kind */
	double train_temperature;   /* train.temperature */
	double train_pos_margin;    /* train.pos_margin */
	double train_neg_margin;    /* train.neg_margin */
	int train_mode;             /* train.mode: enum sv_label_mode */
	uint64_t train_batch_pairs; /* train.batch_pairs */
	uint64_t train_max_wait_ms; /* train.max_wait_ms (duration) */
	int train_optimizer;        /* train.optimizer: enum sv_optim_kind */
	double train_lr;            /* train.lr */
	double train_momentum;      /* train.momentum */
	double train_dampening;     /* train.dampening */
	int train_nesterov;         /* train.nesterov */
	double train_weight_decay;  /* train.weight_decay */
	double train_beta1;         /* train.beta1 */
	double train_beta2;         /* train.beta2 */
	double train_eps;           /* train.eps */
	uint64_t train_threads;     /* train.threads */
	int train_replay;                /* train.replay: 0 off, 1 on */
	uint64_t train_replay_idle_ms;   /* train.replay_idle (duration) */
	uint64_t train_replay_batch;     /* train.replay_batch */
	uint64_t train_replay_slice;     /* train.replay_slice */
	uint64_t train_replay_max_rounds; /* train.replay_max_rounds */
	uint64_t train_replay_patience;  /* train.replay_patience */
	uint64_t train_replay_retries;   /* train.replay_retries */
	double train_replay_lr_decay;    /* train.replay_lr_decay */
	int train_replay_decay;          /* train.replay_decay: 0 round, 1 go */
	uint64_t train_replay_fill;      /* train.replay_fill */
	double train_replay_fill_uses;   /* train.replay_fill_uses */
	int train_replay_gate;           /* train.replay_gate: 0 off, 1 on */
	double train_replay_refit_share; /* train.replay_refit_share */

	char store_path[SV_CONFIG_STR_MAX]; /* store.path */
	int store_sync;                     /* store.sync: enum sv_config_sync */
	uint64_t store_map_size;            /* store.map_size (size) */
	uint64_t store_max_map_size;        /* store.max_map_size (size) */
	uint64_t store_keep_versions;       /* store.keep_versions */
	uint64_t query_topk_refresh_ms;     /* query.topk_refresh (duration) */
	uint64_t store_retain_pairs;        /* store.retain_pairs */
	uint64_t store_retain_age_ms;       /* store.retain_age (duration) */
	uint64_t store_min_free;            /* store.min_free (size) */
	char store_backup_dir[SV_CONFIG_STR_MAX]; /* store.backup_dir */
	uint64_t ingest_dedup_window_ms;    /* ingest.dedup_window (duration) */
	uint64_t ingest_dedup_depth;        /* ingest.dedup_depth */

	uint64_t checkpoint_every_steps; /* checkpoint.every_steps */
	uint64_t checkpoint_every_ms;    /* checkpoint.every_s (duration) */

	char endpoints_ingest[SV_CONFIG_STR_MAX];       /* endpoints.ingest */
	char endpoints_ingest_acked[SV_CONFIG_STR_MAX]; /* endpoints.ingest_acked */
	char endpoints_query[SV_CONFIG_STR_MAX];        /* endpoints.query */
	char endpoints_admin[SV_CONFIG_STR_MAX];        /* endpoints.admin */
	uint64_t endpoints_admin_mode;                  /* endpoints.admin_mode (mode) */
	int endpoints_allow_tcp_admin;                  /* endpoints.allow_tcp_admin */
	char endpoints_http[SV_CONFIG_STR_MAX];         /* endpoints.http */

	int log_level; /* log.level: enum sv_config_log_level */

	uint64_t query_threads;          /* query.threads */
	int query_threshold_policy;      /* query.threshold_policy: enum sv_metrics_policy */
	double query_threshold;          /* query.threshold */
	double query_target_far;         /* query.target_far */
	uint64_t query_window_pairs;     /* query.window_pairs */
	uint64_t query_min_window_pairs; /* query.min_window_pairs */

	uint64_t limits_max_msg_bytes;     /* limits.max_msg_bytes (size) */
	uint64_t limits_max_batch_pairs;   /* limits.max_batch_pairs */
	uint64_t limits_max_id_bytes;      /* limits.max_id_bytes */
	uint64_t limits_max_k;             /* limits.max_k */
	uint64_t limits_max_topk_hits;     /* limits.max_topk_hits */
	uint64_t limits_max_queued_replies; /* limits.max_queued_replies */
	uint64_t limits_max_paused_bytes;   /* limits.max_paused_bytes (size) */
	uint64_t limits_max_pending_pairs; /* limits.max_pending_pairs */

	int cluster_role;                          /* cluster.role: enum sv_config_role */
	char cluster_urls[SV_CONFIG_STR_MAX];      /* cluster.urls */
	char cluster_name[SV_CONFIG_STR_MAX];      /* cluster.name */
	char cluster_stream[SV_CONFIG_STR_MAX];    /* cluster.stream */
	uint64_t cluster_replicas;                 /* cluster.replicas */
	uint64_t cluster_duplicate_window_ms;      /* cluster.duplicate_window (duration) */
	int cluster_ack;                           /* cluster.ack: enum sv_config_cluster_ack */
	uint64_t cluster_lease_ttl_ms;             /* cluster.lease_ttl (duration) */
	uint64_t cluster_timeout_ms;               /* cluster.timeout (duration) */
	uint64_t cluster_read_wait_ms;             /* cluster.read_wait (duration) */

	char security_curve_server_key[SV_CONFIG_STR_MAX]; /* security.curve_server_key */
	char security_curve_allow[SV_CONFIG_STR_MAX];      /* security.curve_allow */
	char security_curve_allow_ingest[SV_CONFIG_STR_MAX]; /* security.curve_allow_ingest */
	char security_curve_allow_query[SV_CONFIG_STR_MAX];  /* security.curve_allow_query */
	char security_curve_allow_admin[SV_CONFIG_STR_MAX];  /* security.curve_allow_admin */
};

enum sv_config_type {
	SV_CONFIG_TYPE_INT,
	SV_CONFIG_TYPE_UINT,
	SV_CONFIG_TYPE_DOUBLE,
	SV_CONFIG_TYPE_BOOL,
	SV_CONFIG_TYPE_ENUM,
	SV_CONFIG_TYPE_STRING,
	SV_CONFIG_TYPE_SIZE,
	SV_CONFIG_TYPE_DURATION,
	SV_CONFIG_TYPE_MODE,
};

enum sv_config_key_flag {
	SV_CONFIG_KEY_MIN_EXCL = 1 << 1, /* value must be > min (else >= min) */
	SV_CONFIG_KEY_MAX_EXCL = 1 << 2, /* value must be < max (else <= max) */
	/* Reloadable keys (SIGHUP) carry the one way their new value takes
	 * effect; a key with none of these needs a restart. */
	SV_CONFIG_KEY_LIVE_TRAIN = 1 << 3,   /* the trainer, between steps (batch size and
	                                      * optimizer changes go into the pair log) */
	SV_CONFIG_KEY_LIVE_MONITOR = 1 << 4, /* the prequential monitor: window, threshold */
	SV_CONFIG_KEY_LIVE_LIMITS = 1 << 5,  /* every decoder, at its next message */
	SV_CONFIG_KEY_LIVE_LOG = 1 << 6,     /* the log threshold, at once */
};

#define SV_CONFIG_KEY_LIVE                                                                 \
	(SV_CONFIG_KEY_LIVE_TRAIN | SV_CONFIG_KEY_LIVE_MONITOR | SV_CONFIG_KEY_LIVE_LIMITS |   \
	 SV_CONFIG_KEY_LIVE_LOG)

/* One row of the table.  Static, never freed. */
struct sv_config_key {
	const char *name; /* dotted, e.g. "train.lr" */
	enum sv_config_type type;
	size_t offset;            /* into struct sv_config */
	double min, max;          /* numeric types: bounds (see flags) */
	const char *def;          /* default, as it would be written in the file */
	const char *const *words; /* enum: NULL-terminated; index == stored value */
	unsigned flags;           /* enum sv_config_key_flag */
	uint64_t unit_ms;         /* duration: ms per bare number (1 or 1000) */
	const char *help;
};

/* The table: *n rows in file order. */
const struct sv_config_key *sv_config_keys(size_t *n);
/* The row of a dotted name, or NULL. */
const struct sv_config_key *sv_config_find(const char *name);

/* Collected diagnostics.  text is NUL-terminated (or NULL when empty),
 * owned by the struct; count is the number of errors. */
struct sv_config_errors {
	char *text;
	size_t len, cap;
	unsigned count;
};
void sv_config_errors_init(struct sv_config_errors *e);
void sv_config_errors_free(struct sv_config_errors *e); /* accepts NULL */

/* Every key at its default. */
void sv_config_defaults(struct sv_config *cfg);

/* The largest config file read (bytes). */
#define SV_CONFIG_FILE_MAX (1 << 20)

/* Apply a YAML file / text over cfg.  Keys absent from the file keep cfg's
 * values.  On any error cfg is left unchanged, every error is appended to
 * errs and SV_ERR_CONFIG is returned; a file that cannot be read gives
 * -errno (also described in errs): -EINVAL for anything but a regular file
 * (a FIFO, a device such as /dev/zero, a directory; opened without blocking),
 * -EFBIG for one over SV_CONFIG_FILE_MAX.  name is used in messages (the
 * path). */
int sv_config_load_file(struct sv_config *cfg, const char *path, struct sv_config_errors *errs);
int sv_config_load_string(struct sv_config *cfg, const char *name, const char *text, size_t len,
                          struct sv_config_errors *errs);

/* Set one key from text (the -o key=value override).  Returns 0, or
 * SV_ERR_CONFIG with "key 'x': reason" in errbuf (errlen bytes, may be 0). */
int sv_config_set(struct sv_config *cfg, const char *key, const char *value, char *errbuf,
                  size_t errlen);
/* One value as text, as show prints it (unquoted strings).  Returns the
 * length (like snprintf), or SV_ERR_NOTFOUND for an unknown key. */
int sv_config_get(const struct sv_config *cfg, const char *key, char *buf, size_t cap);

/* Replace @STATE@ in state_dir-relative keys (store.path, endpoints.*,
 * security.*) with state_dir (NULL: cfg->state_dir), and set cfg->state_dir.
 * Returns 0, or SV_ERR_CONFIG (a result too long) with errbuf filled. */
int sv_config_resolve(struct sv_config *cfg, const char *state_dir, char *errbuf, size_t errlen);

/* Rules across keys (d_out <= d_in, min_window_pairs <= window_pairs,
 * map_size <= max_map_size, batch_pairs <= limits.max_batch_pairs,
 * nesterov needs momentum > 0 and dampening 0, a tcp:// admin endpoint needs
 * CURVE with an admin allow-list (curve_server_key plus curve_allow_admin or
 * curve_allow) or allow_tcp_admin, every curve_allow* needs curve_server_key).  Returns 0 or
 * SV_ERR_CONFIG with each violation appended to errs ("key 'x': reason"). */
int sv_config_check(const struct sv_config *cfg, struct sv_config_errors *errs);

/* Render every key with its value as YAML (sections, two-space indent,
 * strings double-quoted) into buf (cap bytes, NUL-terminated when cap > 0).
 * Returns the length the full text needs (excluding the NUL), like
 * snprintf: call with cap 0 to size the buffer.  The text parses back to an
 * equal config. */
size_t sv_config_show(const struct sv_config *cfg, char *buf, size_t cap);

/* The keys whose values differ between a and b, in table order: up to cap
 * rows written to out; returns the total count.  */
size_t sv_config_diff(const struct sv_config *a, const struct sv_config *b,
                      const struct sv_config_key **out, size_t cap);
/* SIGHUP rule: 0 when every key that differs is reloadable; else
 * SV_ERR_CONFIG and errbuf lists each one: "not reloadable (restart
 * needed): model.d_in, store.path". */
int sv_config_reload_check(const struct sv_config *old, const struct sv_config *neu, char *errbuf,
                           size_t errlen);

/* Converters to the learning core's parameter structs (all fields set). */
void sv_config_loss_params(const struct sv_config *cfg, struct sv_loss_params *p);
void sv_config_optim_params(const struct sv_config *cfg, struct sv_optim_params *p);
/* The wire decoder's limits: d_in, limits.max_msg_bytes, max_batch_pairs,
 * max_id_bytes, max_k. */
void sv_config_proto_limits(const struct sv_config *cfg, struct sv_proto_limits *lim);
/* max_pairs = train.batch_pairs. */
void sv_config_train_params(const struct sv_config *cfg, struct sv_train_params *p);
/* The train.replay_* keys over sv_replay_params_default; seed = model.seed + 1. */
void sv_config_replay_params(const struct sv_config *cfg, struct sv_replay_params *p);

#ifdef __cplusplus
}
#endif
#endif
