/* admin.c - the admin thread (see admin.h).  Leaves out: authentication
 * beyond the socket file's mode, TCP admin endpoints' access control. */
#include "admin.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "settings.h"
#include "cluster.h"
#include "curve.h"
#include "expo.h"
#include "log.h"
#include "parts.h"
#include "monitor.h"
#include "sv/error.h"
#include "sv/metrics.h"
#include "sv/proto.h"
#include "sv/store.h"
#include "reply.h"
#include "topk_cache.h"
#include "util.h"

#define JSON_CAP 65536
#define BACKUP_EP "inproc://sv-admin-backup"
#define CTL_PENDING 64 /* trainer requests in flight (the trainer answers in order) */

/* A request's envelope: the reply goes back to the same peer. */
struct env {
	uint8_t id[256];
	size_t id_len;
	int delim; /* a REQ-style empty delimiter followed the routing id */
};

/* The backup in hand (BACKUP runs on a thread of its own, so the admin
 * socket keeps answering; one at a time), or the last one's outcome. */
struct backup {
	pthread_t th;
	int busy, ran;
	void *done;       /* inproc PAIR: the worker's rc arrives here */
	struct env env;   /* who asked */
	uint64_t req_id;
	char path[SV_PROTO_MAX_TEXT + SV_ENDPOINT_MAX + 2];
	uint64_t t0, t1;  /* monotonic ns */
	uint64_t total;   /* store_used_bytes when it began: what the copy will hold, about */
	int rc;
};

struct dadmin {
	struct sv_daemon *d;
	void *sock, *ctl;
	pthread_t th;
	int started;
	struct sv_proto_limits lim; /* live_limits */
	unsigned lim_gen;
	struct sv_proto_msgbuf mb;
	struct env env; /* the request in hand's */
	struct backup bk;
	/* Requests forwarded to the trainer, oldest first: its replies come
	 * back in this order and go to these envelopes.  The admin socket
	 * keeps answering (STATUS, METRICS, ...) while the trainer works. */
	struct env ctl_q[CTL_PENDING];
	size_t ctl_head, ctl_n;
	char *json;
	uint64_t t0;
};

struct jbuf {
	char *p;
	size_t cap, n;
};

static void jprintf(struct jbuf *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void jprintf(struct jbuf *j, const char *fmt, ...)
{
	va_list ap;
	int w;

	if (j->n + 1 >= j->cap)
		return;
	va_start(ap, fmt);
	w = vsnprintf(j->p + j->n, j->cap - j->n, fmt, ap);
	va_end(ap);
	if (w > 0)
		j->n = j->n + (size_t)w < j->cap ? j->n + (size_t)w : j->cap - 1;
}

static void jnum(struct jbuf *j, const char *key, double v, int comma)
{
	if (isfinite(v))
		jprintf(j, "\"%s\":%.6g%s", key, v, comma ? "," : "");
	else
		jprintf(j, "\"%s\":null%s", key, comma ? "," : "");
}

/* A JSON string of s (quotes, backslashes and control bytes escaped). */
static void jstr(struct jbuf *j, const char *s)
{
	jprintf(j, "\"");
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			jprintf(j, "\\%c", c);
		else if (c < 0x20)
			jprintf(j, "\\u%04x", c);
		else
			jprintf(j, "%c", c);
	}
	jprintf(j, "\"");
}

static void ju64(struct jbuf *j, const char *key, uint64_t v, int comma)
{
	jprintf(j, "\"%s\":%llu%s", key, (unsigned long long)v, comma ? "," : "");
}


/* SV-ADMIN-MALFORMED and -UNROUTABLE lines (the admin thread only). */
static struct sv_ratelimit rl_malformed, rl_unroutable;
static unsigned long long sup;
static char sbuf[64];

/* "query_latency_seconds":{"buckets":{"<le>":cumulative,...,"+Inf":n},
 * "sum":seconds,"count":n}, all query verbs together (the exposition has
 * them by verb).  The buckets are read one by one while workers add to
 * them: count is the +Inf bucket, so the document is consistent in itself. */
static void latency_json(struct jbuf *j, struct sv_daemon *d)
{
	uint64_t cum = 0, sum_ns = 0;

	jprintf(j, "\"query_latency_seconds\":{\"buckets\":{");
	for (int b = 0; b <= SV_LAT_BUCKETS; b++) {
		for (int v = 0; v < SV_LAT_VERBS; v++)
			cum += atomic_load(&d->cnt.lat_bucket[v][b]);
		if (b < SV_LAT_BUCKETS)
			jprintf(j, "\"%g\":%llu,", lat_le[b], (unsigned long long)cum);
	}
	jprintf(j, "\"+Inf\":%llu},", (unsigned long long)cum);
	for (int v = 0; v < SV_LAT_VERBS; v++)
		sum_ns += atomic_load(&d->cnt.lat_sum_ns[v]);
	jnum(j, "sum", (double)sum_ns * 1e-9, 1);
	ju64(j, "count", cum, 0);
	jprintf(j, "},");
}

/* The STATUS document: one JSON object with model_version, steps,
 * pairs_seen, items, backlog, auc, eer, threshold, ... and "counters"
 * (pairs by outcome, rejects by reason, steps, checkpoints, ...), the names
 * a Prometheus exposition uses.  Returns the length written (truncated to
 * cap - 1, always NUL-terminated). */
static void backup_json(struct jbuf *j, const struct dadmin *a);

static size_t status_json(struct dadmin *a, char *buf, size_t cap)
{
	struct sv_daemon *d = a->d;
	static const char *const outcome[SV_PAIR_OUTCOME_COUNT] = {"logged", "duplicate",
	                                                           "rejected", "failed"};
	struct jbuf j = {buf, cap, 0};
	struct sv_store_stat st = {0};
	sv_store_read *r = NULL;
	int first = 1, policy;

	if (cap == 0)
		return 0;
	buf[0] = '\0';
	if (sv_store_read_begin(d->store, &r) == 0)
		sv_store_stat(r, &st);
	sv_store_read_end(r);
	jprintf(&j, "{");
	ju64(&j, "model_version", atomic_load(&d->prog.model_version), 1);
	ju64(&j, "steps", atomic_load(&d->prog.steps), 1);
	ju64(&j, "pairs_seen", atomic_load(&d->prog.pairs_seen), 1);
	ju64(&j, "items", st.items, 1);
	ju64(&j, "pairs_logged", st.pairs, 1);
	ju64(&j, "models", st.models, 1);
	ju64(&j, "backlog", atomic_load(&d->prog.backlog), 1);
	ju64(&j, "applied_seq", atomic_load(&d->prog.applied_seq), 1);
	ju64(&j, "last_seq", atomic_load(&d->prog.last_seq), 1);
	jnum(&j, "auc", atomic_load(&d->prog.auc), 1);
	jnum(&j, "eer", atomic_load(&d->prog.eer), 1);
	jnum(&j, "loss", atomic_load(&d->prog.loss), 1);
	jnum(&j, "grad_norm", atomic_load(&d->prog.grad_norm), 1);
	{
		uint64_t ck = atomic_load(&d->prog.ckpt_unix_ns), now = now_real_ns();

		jnum(&j, "checkpoint_age_seconds",
		     ck && now > ck ? (double)(now - ck) * 1e-9 : (ck ? 0.0 : NAN), 1);
	}
	jnum(&j, "threshold", atomic_load(&d->prog.threshold), 1);
	ju64(&j, "window_pairs", atomic_load(&d->prog.window_pairs), 1);
	pthread_mutex_lock(&d->live_mu);
	policy = d->live.threshold_policy;
	pthread_mutex_unlock(&d->live_mu);
	jprintf(&j, "\"threshold_policy\":\"%s\",", sv_metrics_policy_name(policy));
	jprintf(&j, "\"paused\":%s,", atomic_load(&d->prog.paused) ? "true" : "false");
	{ /* the projection cache TOPK answers from (topk_cache.h) */
		uint64_t tv, ts, tn;

		uint64_t nb[TOPK_CACHE_BATCH_MAX + 1];
		const char *sep = "";

		topk_cache_info(d->topk, &tv, &ts, &tn);
		topk_cache_batches(d->topk, nb);
		jprintf(&j,
		        "\"topk_cache\":{\"version\":%llu,\"steps\":%llu,\"rebuilds\":%llu,"
		        "\"products\":[",
		        (unsigned long long)tv, (unsigned long long)ts, (unsigned long long)tn);
		for (int q = 1; q <= TOPK_CACHE_BATCH_MAX; q++)
			if (nb[q]) {
				jprintf(&j, "%s[%d,%llu]", sep, q, (unsigned long long)nb[q]);
				sep = ",";
			}
		jprintf(&j, "]},");
	}
	if (d->conf.cfg.train_replay) { /* replay and its gate (replay.h) */
		int rs = atomic_load(&d->prog.replay_state), rd = atomic_load(&d->prog.replay_decision);

		jprintf(&j,
		        "\"replay\":{\"gate\":\"%s\",\"state\":\"%s\",\"last_decision\":\"%s\",",
		        d->conf.cfg.train_replay_gate ? "on" : "off", sv_replay_state_name(rs),
		        sv_replay_decision_name(rd));
		ju64(&j, "rounds", atomic_load(&d->prog.replay_rounds), 1);
		jnum(&j, "best_slice_auc", atomic_load(&d->prog.replay_best_auc), 1);
		jnum(&j, "last_slice_auc", atomic_load(&d->prog.replay_last_auc), 1);
		ju64(&j, "steps", atomic_load(&d->prog.replay_steps), 1);
		ju64(&j, "fill_pairs", atomic_load(&d->prog.replay_fill_pairs), 1);
		ju64(&j, "undos", atomic_load(&d->prog.replay_undos), 1);
		jnum(&j, "idle_seconds", atomic_load(&d->prog.replay_idle_s), 0);
		jprintf(&j, "},");
	} else {
		jprintf(&j, "\"replay\":null,");
	}
	{ /* cluster.role (cluster.h): null on a single node */
		struct cluster_status cs;

		if (cluster_status(atomic_load(&d->cluster), &cs) == 0) {
			jprintf(&j, "\"cluster\":{\"role\":\"%s\",\"name\":\"%s\",", cs.role, cs.name);
			ju64(&j, "applied_stream_seq", cs.applied_seq, 1);
			ju64(&j, "items_seq", cs.items_seq, 1);
			ju64(&j, "lag", cs.lag, 1);
			ju64(&j, "model_rev", cs.model_rev, 1);
			ju64(&j, "model_version", cs.model_version, 1);
			ju64(&j, "published", cs.published, 1);
			ju64(&j, "publish_failed", cs.publish_failed, 1);
			ju64(&j, "cuts", cs.cuts, 1);
			ju64(&j, "items", cs.items, 1);
			ju64(&j, "model_puts", cs.model_puts, 1);
			ju64(&j, "model_refused", cs.model_refused, 1);
			ju64(&j, "lease_gained", cs.lease_gained, 1);
			ju64(&j, "lease_lost", cs.lease_lost, 0);
			jprintf(&j, "},");
		} else {
			jprintf(&j, "\"cluster\":null,");
		}
	}
	jprintf(&j, "\"http\":\"%s\",", d->http_bound);
	backup_json(&j, a);
	jprintf(&j, "\"ready\":%s,\"not_ready_reason\":",
	        atomic_load(&d->prog.not_ready) == SV_READY_OK ? "true" : "false");
	{
		int why = atomic_load(&d->prog.not_ready);

		if (why == SV_READY_OK)
			jprintf(&j, "null,");
		else
			jprintf(&j, "\"%s\",", why > 0 && why < SV_READY_COUNT ? ready_name[why] : "?");
	}
	ju64(&j, "d_in", d->conf.d_in, 1);
	ju64(&j, "d_out", d->conf.d_out, 1);
	ju64(&j, "map_size", st.map_size, 1);
	ju64(&j, "map_used", st.map_used, 1);
	ju64(&j, "store_used_bytes", st.used_bytes, 1);
	ju64(&j, "store_free_pages", st.free_pages, 1);
	ju64(&j, "log_first_seq", st.first_seq, 1);
	ju64(&j, "log_pairs", st.pairs, 1);
	ju64(&j, "clients", st.producers, 1);
	{
		int f = atomic_load(&d->prog.store_full);

		if (f > SV_FULL_NO && f < SV_FULL_COUNT)
			jprintf(&j, "\"store_full\":\"%s\",", full_name[f]);
		else
			jprintf(&j, "\"store_full\":null,");
	}
	jnum(&j, "uptime_seconds", expo_uptime_seconds(), 1);
	jnum(&j, "rss_bytes", expo_rss_bytes(), 1);
	jnum(&j, "store_bytes", expo_store_file_bytes(d), 1);
	jnum(&j, "pairs_per_second", atomic_load(&d->prog.pairs_per_second), 1);
	jprintf(&j, "\"tar_at_far\":{");
	jnum(&j, "1e-2", atomic_load(&d->prog.tar_far_1e2), 1);
	jnum(&j, "1e-3", atomic_load(&d->prog.tar_far_1e3), 0);
	jprintf(&j, "},");
	latency_json(&j, d);
	jprintf(&j, "\"counters\":{\"pairs\":{");
	for (int o = 0; o < SV_PAIR_OUTCOME_COUNT; o++)
		ju64(&j, outcome[o], atomic_load(&d->cnt.pairs[o]), o + 1 < SV_PAIR_OUTCOME_COUNT);
	jprintf(&j, "},\"rejects\":{");
	for (int i = 0; i < SV_REJECT_COUNT; i++) {
		uint64_t v = atomic_load(&d->cnt.rejects[i]);

		if (v == 0)
			continue;
		jprintf(&j, "%s", first ? "" : ",");
		ju64(&j, reject_name(i), v, 0);
		first = 0;
	}
	jprintf(&j, "},");
	ju64(&j, "steps", atomic_load(&d->cnt.steps), 1);
	ju64(&j, "step_failures", atomic_load(&d->cnt.step_failures), 1);
	ju64(&j, "checkpoints", atomic_load(&d->cnt.checkpoints), 1);
	ju64(&j, "commits", atomic_load(&d->cnt.commits), 1);
	ju64(&j, "items_put", atomic_load(&d->cnt.items_put), 1);
	ju64(&j, "items_deleted", atomic_load(&d->cnt.items_del), 1);
	ju64(&j, "contradictions", atomic_load(&d->cnt.contradictions), 1);
	ju64(&j, "zero_grad_steps", atomic_load(&d->cnt.zero_grad_steps), 1);
	jprintf(&j, "\"zap_denied\":{");
	for (int role = 0; role <= CURVE_ROLES; role++)
		ju64(&j, curve_role_name(role), curve_denied(role), role < CURVE_ROLES);
	jprintf(&j, "},");
	ju64(&j, "queries", atomic_load(&d->cnt.queries), 1);
	ju64(&j, "query_errors", atomic_load(&d->cnt.query_errors), 1);
	ju64(&j, "unroutable", atomic_load(&d->cnt.unroutable), 1);
	ju64(&j, "admin_requests", atomic_load(&d->cnt.admin_requests), 0);
	jprintf(&j, "}}");
	return j.n;
}

static size_t versions_json(struct sv_daemon *d, char *buf, size_t cap, int *status)
{
	struct jbuf j = {buf, cap, 0};
	struct sv_store_version v[64];
	sv_store_read *r = NULL;
	size_t n = 0;
	int rc = sv_store_read_begin(d->store, &r);

	if (rc == 0)
		rc = sv_store_versions(r, v, 64, &n);
	sv_store_read_end(r);
	*status = rc == 0 ? SV_PROTO_STATUS_OK : SV_PROTO_STATUS_INTERNAL;
	buf[0] = '\0';
	if (rc < 0)
		return 0;
	if (n > 64)
		n = 64;
	jprintf(&j, "{\"versions\":[");
	for (size_t i = 0; i < n; i++) {
		jprintf(&j, "%s{", i ? "," : "");
		ju64(&j, "version", v[i].version, 1);
		ju64(&j, "step", v[i].step, 1);
		ju64(&j, "applied_seq", v[i].applied_seq, 1);
		ju64(&j, "time_ns", v[i].time_ns, 1);
		jnum(&j, "loss", v[i].loss, 1);
		jnum(&j, "auc", v[i].auc, 1);
		jnum(&j, "eer", v[i].eer, 1);
		jprintf(&j, "\"active\":%s}", v[i].active ? "true" : "false");
	}
	jprintf(&j, "]}");
	return j.n;
}

/* MODEL_GET metadata of snapshot s: dims, loss and mode (fixed by the
 * store), the threshold and its policy, the checkpoint version the snapshot
 * descends from, its steps and applied_seq, the running training loss. */
static size_t model_json(struct sv_daemon *d, const struct sv_snap *s, char *buf, size_t cap)
{
	struct jbuf j = {buf, cap, 0};
	char loss[64] = "", mode[64] = "";

	sv_config_get(&d->conf.cfg, "train.loss", loss, sizeof(loss));
	sv_config_get(&d->conf.cfg, "train.mode", mode, sizeof(mode));
	buf[0] = '\0';
	jprintf(&j, "{");
	ju64(&j, "d_in", s->d_in, 1);
	ju64(&j, "d_out", s->d_out, 1);
	jprintf(&j, "\"loss\":\"%s\",\"mode\":\"%s\",", loss, mode);
	jnum(&j, "threshold", s->threshold, 1);
	jprintf(&j, "\"threshold_policy\":\"%s\",", sv_metrics_policy_name(s->policy));
	ju64(&j, "version", s->version, 1);
	ju64(&j, "steps", s->steps, 1);
	ju64(&j, "applied_seq", s->applied_seq, 1);
	jnum(&j, "train_loss", atomic_load(&d->prog.loss), 1);
	jprintf(&j, "\"dtype\":\"float32\",\"layout\":\"W[d_in][d_out], z = W^T x\"}");
	return j.n;
}

/* Forward a request to the trainer (a DEALER to its REP: an empty
 * delimiter first); the reply is relayed by ctl_reply.  Returns 0, -EBUSY
 * (CTL_PENDING requests already wait) or -errno. */
static int forward_ctl(struct dadmin *a, const struct sv_proto_frame *fr, size_t n)
{
	if (a->ctl_n == CTL_PENDING)
		return -EBUSY;
	if (zmq_send(a->ctl, "", 0, ZMQ_SNDMORE) < 0)
		return -zmq_errno();
	for (size_t i = 0; i < n; i++)
		if (zmq_send(a->ctl, fr[i].data, fr[i].len, i + 1 < n ? ZMQ_SNDMORE : 0) < 0)
			return -zmq_errno();
	a->ctl_q[(a->ctl_head + a->ctl_n++) % CTL_PENDING] = a->env;
	return 0;
}

static int send_env(struct dadmin *a, const struct env *e);

/* The trainer answered the oldest forwarded request: relay it. */
static void ctl_reply(struct dadmin *a)
{
	struct parts p;

	while (parts_recv(a->ctl, &p, ZMQ_DONTWAIT) > 0) {
		if (a->ctl_n > 0 && p.n > 1) {
			if (send_env(a, &a->ctl_q[a->ctl_head]) == 0)
				for (int i = 1; i < p.n; i++) /* part 0: the delimiter */
					zmq_msg_send(&p.m[i], a->sock,
					             (i + 1 < p.n ? ZMQ_SNDMORE : 0) | ZMQ_DONTWAIT);
			a->ctl_head = (a->ctl_head + 1) % CTL_PENDING;
			a->ctl_n--;
		}
		parts_close(&p);
	}
}

/* A reply's envelope.  Nothing here blocks on a peer: to one that does not
 * read (its queue at the high-water mark) or is gone, the reply is dropped
 * and counted (unroutable), and the thread goes on serving the others.
 * Returns 0, or -1 when the reply is to be dropped.  (A ROUTER takes or
 * refuses a message at its first frame, so the rest never block.) */
static int send_env(struct dadmin *a, const struct env *e)
{
	if (zmq_send(a->sock, e->id, e->id_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
		atomic_fetch_add(&a->d->cnt.unroutable, 1);
		if (log_ratelimit(&rl_unroutable, LOG_BURST, &sup))
			log_msg(LOG_INFO, "SV-ADMIN-UNROUTABLE",
			       "admin reply dropped (%s): the client does not read, or left%s",
			       zmq_strerror(zmq_errno()), log_suppressed(sup, sbuf, sizeof(sbuf)));
		return -1;
	}
	if (e->delim)
		zmq_send(a->sock, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT);
	return 0;
}

static void send_mb(struct dadmin *a)
{
	if (send_env(a, &a->env) < 0)
		return;
	for (size_t i = 0; i < a->mb.n; i++)
		zmq_send(a->sock, a->mb.frames[i].data, a->mb.frames[i].len,
		         (i + 1 < a->mb.n ? ZMQ_SNDMORE : 0) | ZMQ_DONTWAIT);
}

/* An admin reply with a->json[0..len) as payload (errors: no payload). */
static void admin_reply(struct dadmin *a, const struct sv_proto_request *rq, int status,
                        const char *msg, size_t len)
{
	if (status != SV_PROTO_STATUS_OK ||
	    sv_proto_encode_reply_admin(&a->mb, rq->hdr.verb, rq->hdr.request_id, status, msg,
	                                len ? a->json : NULL, len) < 0)
		reply_error(&a->mb, rq->hdr.verb, rq->hdr.request_id,
		            status ? status : SV_PROTO_STATUS_INTERNAL, 0, msg);
}

static void *backup_main(void *arg)
{
	struct dadmin *a = arg;
	int rc;
	void *s;

	pthread_setname_np(pthread_self(), "sv-backup");
	rc = sv_store_backup(a->d->store, a->bk.path);
	s = parts_socket(a->d->zctx, ZMQ_PAIR);
	if (s != NULL && zmq_connect(s, BACKUP_EP) == 0)
		zmq_send(s, &rc, sizeof(rc), 0);
	if (s != NULL)
		zmq_close(s);
	return NULL;
}

/* BACKUP: a relative path names a directory under store.backup_dir.
 * Returns 0 when the copy started (the reply comes when it is done), or
 * -EBUSY with msg set. */
static int backup_start(struct dadmin *a, const struct sv_proto_request *rq, char *msg,
                        size_t cap)
{
	struct backup *b = &a->bk;
	struct sv_store_stat st = {0};
	sv_store_read *r = NULL;
	const char *dir = a->d->conf.cfg.store_backup_dir;

	if (b->busy) {
		snprintf(msg, cap, "a backup to %.1024s is running; try again when it is done",
		         b->path);
		return -EBUSY;
	}
	if (rq->text[0] == '/')
		snprintf(b->path, sizeof(b->path), "%.*s", (int)rq->text_len, rq->text);
	else {
		if (mkdir(dir, 0700) < 0 && errno != EEXIST)
			log_msg(LOG_WARNING, "SV-ADMIN-BACKUP", "cannot make store.backup_dir %s: %s",
			       dir, strerror(errno));
		snprintf(b->path, sizeof(b->path), "%s/%.*s", dir, (int)rq->text_len, rq->text);
	}
	if (sv_store_read_begin(a->d->store, &r) == 0)
		sv_store_stat(r, &st);
	sv_store_read_end(r);
	b->env = a->env;
	b->req_id = rq->hdr.request_id;
	b->t0 = now_mono_ns();
	b->total = st.used_bytes;
	b->busy = 1;
	if (pthread_create(&b->th, NULL, backup_main, a) != 0) {
		b->busy = 0;
		snprintf(msg, cap, "cannot start a backup thread");
		return -EBUSY;
	}
	log_msg(LOG_INFO, "SV-ADMIN-BACKUP", "hot backup to %s started", b->path);
	return 0;
}

/* The worker is done: answer whoever asked. */
static void backup_done(struct dadmin *a)
{
	struct backup *b = &a->bk;
	struct sv_proto_request rq;
	char msg[sizeof(b->path) + 128];
	int rc = 0;

	if (zmq_recv(b->done, &rc, sizeof(rc), ZMQ_DONTWAIT) != (int)sizeof(rc))
		return;
	pthread_join(b->th, NULL);
	b->busy = 0;
	b->ran = 1;
	b->rc = rc;
	b->t1 = now_mono_ns();
	if (rc == 0)
		log_msg(LOG_NOTICE, "SV-ADMIN-BACKUP", "hot backup written to %s in %.1f s", b->path,
		       (double)(b->t1 - b->t0) * 1e-9);
	else
		log_msg(LOG_WARNING, "SV-ADMIN-BACKUP", "hot backup to %s failed: %s", b->path,
		       sv_strerror(rc));
	snprintf(msg, sizeof(msg), rc == 0 ? "backup written to %.2048s" : "backup to %.2048s failed: %s",
	         b->path, sv_strerror(rc));
	memset(&rq, 0, sizeof(rq));
	rq.hdr.verb = SV_PROTO_VERB_BACKUP;
	rq.hdr.request_id = b->req_id;
	a->env = b->env;
	admin_reply(a, &rq, rc == 0 ? SV_PROTO_STATUS_OK : SV_PROTO_STATUS_INTERNAL, msg, 0);
	send_mb(a);
}

/* STATUS "backup": the one running (with the bytes written so far) or the
 * last one's outcome; null before the first. */
static void backup_json(struct jbuf *j, const struct dadmin *a)
{
	const struct backup *b = &a->bk;
	char file[sizeof(b->path) + 24];
	struct stat sb;

	if (!b->busy && !b->ran) {
		jprintf(j, "\"backup\":null,");
		return;
	}
	snprintf(file, sizeof(file), "%s.partial/data.mdb", b->path);
	jprintf(j, "\"backup\":{\"state\":\"%s\",\"path\":",
	        b->busy ? "running" : b->rc == 0 ? "done" : "failed");
	jstr(j, b->path);
	jprintf(j, ",\"seconds\":%.3f,\"bytes\":%llu,\"total_bytes\":%llu},",
	        (double)((b->busy ? now_mono_ns() : b->t1) - b->t0) * 1e-9,
	        (unsigned long long)(b->busy && stat(file, &sb) == 0 ? (uint64_t)sb.st_size : 0),
	        (unsigned long long)b->total);
}

static void handle(struct dadmin *a, const struct sv_proto_frame *fr, size_t n)
{
	struct sv_daemon *d = a->d;
	struct sv_proto_request rq;
	struct sv_proto_error err;
	char msg[SV_PROTO_MAX_TEXT + 128];
	int status = SV_PROTO_STATUS_OK, rc;
	size_t len;

	atomic_fetch_add(&d->cnt.admin_requests, 1);
	live_limits(d, &a->lim_gen, &a->lim);
	memset(&err, 0, sizeof(err));
	if (sv_proto_decode_request(fr, n, &a->lim, &rq, &err) < 0) {
		reject_count(d, (int)err.reason);
		if (log_ratelimit(&rl_malformed, LOG_BURST, &sup))
			log_msg(LOG_INFO, "SV-ADMIN-MALFORMED", "admin: %s (%s); error reply sent%s",
			       err.msg, sv_proto_reason_name((int)err.reason),
			       log_suppressed(sup, sbuf, sizeof(sbuf)));
		reply_error(&a->mb, err.have_header ? err.header.verb : 0,
		            err.have_header ? err.header.request_id : 0, SV_PROTO_STATUS_MALFORMED,
		            (int)err.reason, err.msg);
		send_mb(a);
		return;
	}
	switch (rq.hdr.verb) {
	case SV_PROTO_VERB_STATUS:
		len = status_json(a, a->json, JSON_CAP);
		admin_reply(a, &rq, status, NULL, len);
		break;
	case SV_PROTO_VERB_METRICS: {
		char *text = expo_metrics(d, &len);

		status = SV_PROTO_STATUS_INTERNAL;
		if (text != NULL && len < JSON_CAP) {
			memcpy(a->json, text, len + 1);
			status = SV_PROTO_STATUS_OK;
		}
		free(text);
		admin_reply(a, &rq, status, status ? "cannot write the exposition" : NULL,
		            status ? 0 : len);
		break;
	}
	case SV_PROTO_VERB_VERSIONS:
		len = versions_json(d, a->json, JSON_CAP, &status);
		admin_reply(a, &rq, status, status ? "cannot list versions" : NULL, len);
		break;
	case SV_PROTO_VERB_CONFIG:
		pthread_mutex_lock(&d->live_mu); /* a reload may be rewriting live keys */
		len = settings_show(&d->conf, a->json, JSON_CAP);
		pthread_mutex_unlock(&d->live_mu);
		admin_reply(a, &rq, status, NULL, len);
		break;
	case SV_PROTO_VERB_BACKUP:
		if (backup_start(a, &rq, msg, sizeof(msg)) == 0)
			return; /* answered when the copy is done */
		admin_reply(a, &rq, SV_PROTO_STATUS_BUSY, msg, 0);
		break;
	case SV_PROTO_VERB_RELOAD:
		kill(getpid(), SIGHUP);
		admin_reply(a, &rq, status, "reload requested (see the log for what changed)", 0);
		break;
	case SV_PROTO_VERB_MODEL_GET: {
		struct sv_snap *s = snap_get(&d->snap);

		if (s == NULL) {
			reply_error(&a->mb, rq.hdr.verb, rq.hdr.request_id,
			            SV_PROTO_STATUS_INTERNAL, 0, "no model yet");
			break;
		}
		len = model_json(d, s, a->json, JSON_CAP);
		if (sv_proto_encode_reply_model(&a->mb, rq.hdr.request_id, NULL, a->json, len,
		                                s->W, s->d_in, s->d_out) < 0)
			reply_error(&a->mb, rq.hdr.verb, rq.hdr.request_id,
			            SV_PROTO_STATUS_INTERNAL, 0, "cannot encode the model");
		send_mb(a); /* W is borrowed from s until sent */
		snap_unref(s);
		return;
	}
	case SV_PROTO_VERB_MODEL_PUT:
		if (rq.dim != d->conf.d_in || rq.n != d->conf.d_out) {
			snprintf(msg, sizeof(msg),
			         "frame 1 (W): %u x %zu, expected d_in x d_out = %u x %u", rq.dim,
			         rq.n, d->conf.d_in, d->conf.d_out);
			reject_count(d, SV_PROTO_REASON_WRONG_DIM);
			reply_error(&a->mb, rq.hdr.verb, rq.hdr.request_id,
			            SV_PROTO_STATUS_MALFORMED, SV_PROTO_REASON_WRONG_DIM, msg);
			break;
		}
		/* fall through - the trainer makes it a new version */
	case SV_PROTO_VERB_CHECKPOINT:
	case SV_PROTO_VERB_ROLLBACK:
	case SV_PROTO_VERB_PAUSE:
	case SV_PROTO_VERB_RESUME:
	case SV_PROTO_VERB_PURGE:
	case SV_PROTO_VERB_FLUSH:
		rc = forward_ctl(a, fr, n);
		if (rc == 0)
			return; /* ctl_reply answers when the trainer has */
		reply_error(&a->mb, rq.hdr.verb, rq.hdr.request_id,
		            rc == -EBUSY ? SV_PROTO_STATUS_BUSY : SV_PROTO_STATUS_INTERNAL, 0,
		            rc == -EBUSY ? "the trainer has too many admin requests waiting; retry"
		                         : "trainer unavailable");
		break;
	default:
		reject_count(d, SV_REJECT_REFUSED);
		reply_error(&a->mb, rq.hdr.verb, rq.hdr.request_id, SV_PROTO_STATUS_REFUSED, 0,
		            "not an admin verb: use the ingest or query socket");
		break;
	}
	send_mb(a);
}

static void *thread_main(void *arg)
{
	struct dadmin *a = arg;

	pthread_setname_np(pthread_self(), "sv-admin");
	for (;;) {
		zmq_pollitem_t it[3] = {{a->sock, 0, ZMQ_POLLIN, 0},
		                        {a->bk.done, 0, ZMQ_POLLIN, 0},
		                        {a->ctl, 0, ZMQ_POLLIN, 0}};
		struct parts p;
		int env;

		if (zmq_poll(it, 3, -1) < 0) {
			if (zmq_errno() == EINTR)
				continue;
			return NULL;
		}
		if (it[1].revents & ZMQ_POLLIN)
			backup_done(a);
		if (it[2].revents & ZMQ_POLLIN)
			ctl_reply(a);
		if (!(it[0].revents & ZMQ_POLLIN))
			continue;
		if (parts_recv(a->sock, &p, ZMQ_DONTWAIT) < 0)
			return NULL;
		if (p.n == 0)
			continue;
		env = parts_envelope(&p);
		a->env.id_len = p.fr[0].len < sizeof(a->env.id) ? p.fr[0].len : sizeof(a->env.id);
		memcpy(a->env.id, p.fr[0].data, a->env.id_len);
		a->env.delim = env == 2;
		if (p.over || p.n <= env) {
			reply_bad_envelope(a->d, &a->mb, p.over);
			send_mb(a);
		} else {
			handle(a, p.fr + env, (size_t)(p.n - env));
		}
		parts_close(&p);
	}
}

int admin_start(struct dadmin **out, struct sv_daemon *d)
{
	struct dadmin *a = calloc(1, sizeof(*a));
	const char *ep = d->conf.ep_admin;
	int one = 1, rc = 0;

	if (a == NULL)
		return -ENOMEM;
	*out = a;
	a->d = d;
	sv_proto_msgbuf_init(&a->mb);
	a->json = malloc(JSON_CAP);
	a->lim_gen = UINT_MAX;
	a->sock = parts_socket(d->zctx, ZMQ_ROUTER);
	a->ctl = parts_socket(d->zctx, ZMQ_DEALER);
	a->bk.done = parts_socket(d->zctx, ZMQ_PAIR);
	if (a->json == NULL || a->sock == NULL || a->ctl == NULL || a->bk.done == NULL)
		return a->json ? -zmq_errno() : -ENOMEM;
	if (zmq_bind(a->bk.done, BACKUP_EP) < 0)
		return -zmq_errno();
	zmq_setsockopt(a->sock, ZMQ_ROUTER_MANDATORY, &one, sizeof(one));
	if (curve_socket_setup(a->sock, ep) < 0)
		return -errno;
	if (strncmp(ep, "ipc://", 6) == 0) {
		/* Made with the mode already (no window where others could
		 * connect), then chmod to be explicit. */
		mode_t old = umask((mode_t)(~d->conf.admin_mode & 0777));

		rc = zmq_bind(a->sock, ep) < 0 ? -zmq_errno() : 0;
		umask(old);
		if (rc == 0 && ep[6] != '@' && chmod(ep + 6, (mode_t)d->conf.admin_mode) < 0)
			rc = -errno;
	} else {
		rc = zmq_bind(a->sock, ep) < 0 ? -zmq_errno() : 0;
	}
	if (rc < 0) {
		log_msg(LOG_ERR, "SV-SOCKET-BIND", "cannot bind admin socket to %s: %s", ep,
		       strerror(-rc));
		return rc;
	}
	log_msg(LOG_INFO, "SV-SOCKET-BIND", "admin (ROUTER) socket on %s, mode %04o", ep,
	       d->conf.admin_mode);
	if (zmq_connect(a->ctl, SV_CTL_ENDPOINT) < 0)
		return -zmq_errno();
	rc = -pthread_create(&a->th, NULL, thread_main, a);
	if (rc == 0)
		a->started = 1;
	return rc;
}

void admin_stop(struct dadmin *a)
{
	int zero = 0;

	if (a == NULL)
		return;
	if (a->started)
		pthread_join(a->th, NULL);
	if (a->bk.busy) {
		log_msg(LOG_NOTICE, "SV-ADMIN-BACKUP", "waiting for the backup to %s to finish",
		       a->bk.path);
		pthread_join(a->bk.th, NULL);
	}
	if (a->bk.done) {
		zmq_setsockopt(a->bk.done, ZMQ_LINGER, &zero, sizeof(zero));
		zmq_close(a->bk.done);
	}
	if (a->sock) {
		zmq_setsockopt(a->sock, ZMQ_LINGER, &zero, sizeof(zero));
		zmq_close(a->sock);
	}
	if (a->ctl) {
		zmq_setsockopt(a->ctl, ZMQ_LINGER, &zero, sizeof(zero));
		zmq_close(a->ctl);
	}
	sv_proto_msgbuf_free(&a->mb);
	free(a->json);
	free(a);
}
