/* expo.c - the Prometheus text exposition (see expo.h).
 * Leaves out: the STATUS JSON document (admin.c), the HTTP server (http.c). */
#include "expo.h"

#include <math.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cluster.h"
#include "curve.h"
#include "daemon.h"
#include "monitor.h"
#include "reject.h"
#include "sv/metrics.h"
#include "sv/store.h"
#include "topk_cache.h"
#include "util.h"

static atomic_uint_fast64_t started_ns;

void expo_mark_start(void)
{
	atomic_store(&started_ns, now_mono_ns());
}

double expo_uptime_seconds(void)
{
	return (double)(now_mono_ns() - atomic_load(&started_ns)) * 1e-9;
}

double expo_rss_bytes(void)
{
	unsigned long long size = 0, res = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	int ok = f != NULL && fscanf(f, "%llu %llu", &size, &res) == 2;

	if (f != NULL)
		fclose(f);
	return ok ? (double)res * (double)sysconf(_SC_PAGESIZE) : NAN;
}

double expo_store_file_bytes(const struct sv_daemon *d)
{
	char path[SV_ENDPOINT_MAX + 16];
	struct stat st;

	snprintf(path, sizeof(path), "%s/data.mdb", d->conf.store_path);
	if (stat(path, &st) < 0)
		return NAN;
	return (double)st.st_blocks * 512.0;
}

/* ---- the text ---- */


static void family(FILE *o, const char *name, const char *type, const char *help)
{
	fprintf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A sample value: Prometheus spells non-finite values NaN, +Inf, -Inf. */
static void value(FILE *o, double v)
{
	if (isnan(v))
		fprintf(o, " NaN\n");
	else if (isinf(v))
		fprintf(o, v > 0 ? " +Inf\n" : " -Inf\n");
	else
		fprintf(o, " %.17g\n", v);
}

static void gauge(FILE *o, const char *name, const char *help, double v)
{
	family(o, name, "gauge", help);
	fprintf(o, "%s", name);
	value(o, v);
}

static void counter(FILE *o, const char *name, const char *help, uint64_t v)
{
	family(o, name, "counter", help);
	fprintf(o, "%s %llu\n", name, (unsigned long long)v);
}

static double u(atomic_uint_fast64_t *a)
{
	return (double)atomic_load(a);
}

static void latency(FILE *o, struct sv_daemon *d)
{
	static const char name[] = "simverify_query_latency_seconds";

	family(o, name, "histogram", "Query latency, decoded request to reply ready, by verb.");
	for (int v = 0; v < SV_LAT_VERBS; v++) {
		uint64_t cum = 0;

		for (int b = 0; b <= SV_LAT_BUCKETS; b++) {
			cum += atomic_load(&d->cnt.lat_bucket[v][b]);
			if (b < SV_LAT_BUCKETS)
				fprintf(o, "%s_bucket{verb=\"%s\",le=\"%g\"} %llu\n", name,
				    lat_verb_name[v], lat_le[b], (unsigned long long)cum);
			else
				fprintf(o, "%s_bucket{verb=\"%s\",le=\"+Inf\"} %llu\n", name,
				    lat_verb_name[v], (unsigned long long)cum);
		}
		fprintf(o, "%s_sum{verb=\"%s\"}", name, lat_verb_name[v]);
		value(o, (double)atomic_load(&d->cnt.lat_sum_ns[v]) * 1e-9);
		fprintf(o, "%s_count{verb=\"%s\"} %llu\n", name, lat_verb_name[v],
		    (unsigned long long)cum);
	}
}

/* TOPK products by the queries each answered (topk_cache_batches): how
 * well queries in flight together are batched. */
static void topk_products(FILE *o, struct sv_daemon *d)
{
	static const char name[] = "simverify_topk_product_queries";
	static const int le[] = {1, 2, 4, 8, 16, 32};
	uint64_t n[TOPK_CACHE_BATCH_MAX + 1], cum = 0, sum = 0;
	int q = 1;

	topk_cache_batches(d->topk, n);
	family(o, name, "histogram", "TOPK queries answered by one product over the cache.");
	for (size_t b = 0; b < sizeof le / sizeof le[0]; b++) {
		for (; q <= le[b]; q++) {
			cum += n[q];
			sum += (uint64_t)q * n[q];
		}
		fprintf(o, "%s_bucket{le=\"%d\"} %llu\n", name, le[b], (unsigned long long)cum);
	}
	for (; q <= TOPK_CACHE_BATCH_MAX; q++) { /* the last counts that many or more */
		cum += n[q];
		sum += (uint64_t)q * n[q];
	}
	fprintf(o, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %llu\n%s_count %llu\n", name,
	        (unsigned long long)cum, name, (unsigned long long)sum, name,
	        (unsigned long long)cum);
}

/* The counters without labels: name, help, field of struct sv_counters. */
#define PLAIN(name, help, field) {name, help, offsetof(struct sv_counters, field)}
static const struct {
	const char *name, *help;
	size_t off;
} plain[] = {
    PLAIN("simverify_steps_total", "Training steps taken.", steps),
    PLAIN("simverify_step_failures_total", "Training steps that failed.", step_failures),
    PLAIN("simverify_zero_gradient_steps_total",
          "Training steps whose gradient was exactly zero (nothing learned).", zero_grad_steps),
    PLAIN("simverify_graph_contradictions_total",
          "Graph mode: pairs labelled different whose items one group joins.", contradictions),
    PLAIN("simverify_checkpoints_total", "Checkpoints written.", checkpoints),
    PLAIN("simverify_group_commits_total", "Store group commits.", commits),
    PLAIN("simverify_log_pairs_trimmed_total", "Log rows deleted by retention.", pairs_trimmed),
    PLAIN("simverify_clients_expired_total",
          "Clients whose de-duplication state expired (ingest.dedup_window).", clients_expired),
    PLAIN("simverify_store_full_groups_total",
          "Ingest groups that did not fit in the store (held or refused).", store_full_groups),
    PLAIN("simverify_items_put_total", "Item upserts.", items_put),
    PLAIN("simverify_items_deleted_total", "Item deletions.", items_del),
    PLAIN("simverify_queries_total", "Query requests received.", queries),
    PLAIN("simverify_query_errors_total", "Queries answered with an error.", query_errors),
    PLAIN("simverify_unroutable_replies_total",
          "Replies that could not be sent (client gone or not reading).", unroutable),
    PLAIN("simverify_admin_requests_total", "Admin requests.", admin_requests),
};
#undef PLAIN

static void counters(FILE *o, struct sv_daemon *d)
{
	static const char *const outcome[SV_PAIR_OUTCOME_COUNT] = {"logged", "duplicate",
	                                                           "rejected", "failed"};

	family(o, "simverify_pairs_total", "counter", "Pairs received, by outcome.");
	for (int i = 0; i < SV_PAIR_OUTCOME_COUNT; i++)
		fprintf(o, "simverify_pairs_total{outcome=\"%s\"} %llu\n", outcome[i],
		    (unsigned long long)atomic_load(&d->cnt.pairs[i]));
	family(o, "simverify_rejects_total", "counter",
	       "Rejected messages or rows, by reason (docs/BAD_INPUT.md).");
	for (int i = 1; i < SV_REJECT_COUNT; i++)
		fprintf(o, "simverify_rejects_total{reason=\"%s\"} %llu\n", reject_name(i),
		    (unsigned long long)atomic_load(&d->cnt.rejects[i]));
	family(o, "simverify_zap_refusals_total", "counter",
	       "Clients refused by the CURVE/ZAP handler, by the socket they tried.");
	for (int r = 0; r <= CURVE_ROLES; r++)
		fprintf(o, "simverify_zap_refusals_total{socket=\"%s\"} %llu\n", curve_role_name(r),
		    (unsigned long long)curve_denied(r));
	for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
		counter(o, plain[i].name, plain[i].help,
		        atomic_load((atomic_uint_fast64_t *)((char *)&d->cnt + plain[i].off)));
}

char *expo_metrics(struct sv_daemon *d, size_t *len)
{
	char *text = NULL;
	size_t tlen = 0;
	FILE *o = open_memstream(&text, &tlen);
	struct sv_store_stat st = {0};
	sv_store_read *r = NULL;
	uint64_t tv = 0, ts = 0, tn = 0, ck = atomic_load(&d->prog.ckpt_unix_ns), now = now_real_ns();
	double store_bytes = expo_store_file_bytes(d);
	size_t max_map;
	int policy;

	if (o == NULL)
		return NULL;
	if (sv_store_read_begin(d->store, &r) == 0)
		sv_store_stat(r, &st);
	sv_store_read_end(r);
	pthread_mutex_lock(&d->live_mu);
	policy = d->live.threshold_policy;
	max_map = d->live.max_map_size;
	pthread_mutex_unlock(&d->live_mu);
	topk_cache_info(d->topk, &tv, &ts, &tn);

	gauge(o, "simverify_model_version", "Live model version.", u(&d->prog.model_version));
	gauge(o, "simverify_model_steps", "Optimizer steps of the live model, across restarts.",
	      u(&d->prog.steps));
	gauge(o, "simverify_pairs_trained", "Pairs the live model was trained on, across restarts.",
	      u(&d->prog.pairs_seen));
	gauge(o, "simverify_model_input_dim", "Input vector dimension.", d->conf.d_in);
	gauge(o, "simverify_model_output_dim", "Embedding dimension.", d->conf.d_out);
	gauge(o, "simverify_checkpoint_age_seconds", "Seconds since the live checkpoint was written.",
	      ck == 0 ? NAN : now > ck ? (double)(now - ck) * 1e-9 : 0.0);
	gauge(o, "simverify_items", "Stored items (inline pair vectors included).",
	      (double)st.items);
	gauge(o, "simverify_log_pairs", "Rows in the pair log (what retention kept).",
	      (double)st.pairs);
	gauge(o, "simverify_log_first_seq", "Oldest log sequence kept (0: empty log).",
	      (double)st.first_seq);
	gauge(o, "simverify_clients", "Clients with de-duplication state.", (double)st.producers);
	gauge(o, "simverify_model_versions_stored", "Checkpoints kept.", (double)st.models);
	gauge(o, "simverify_backlog_pairs", "Pairs logged but not trained on yet.",
	      u(&d->prog.backlog));
	gauge(o, "simverify_applied_seq", "Last log sequence trained on.", u(&d->prog.applied_seq));
	gauge(o, "simverify_last_seq", "Last log sequence written.", u(&d->prog.last_seq));
	gauge(o, "simverify_ingest_pairs_per_second", "Pairs committed per second, moving average.",
	      atomic_load(&d->prog.pairs_per_second));
	gauge(o, "simverify_paused", "1 while learning is paused.", atomic_load(&d->prog.paused));
	gauge(o, "simverify_prequential_auc", "ROC AUC of pre-step scores over the metrics window.",
	      atomic_load(&d->prog.auc));
	gauge(o, "simverify_prequential_eer",
	      "Equal error rate of pre-step scores over the metrics window.",
	      atomic_load(&d->prog.eer));
	family(o, "simverify_prequential_tar", "gauge", "TAR at the given FAR over the metrics window.");
	fprintf(o, "simverify_prequential_tar{far=\"1e-2\"}");
	value(o, atomic_load(&d->prog.tar_far_1e2));
	fprintf(o, "simverify_prequential_tar{far=\"1e-3\"}");
	value(o, atomic_load(&d->prog.tar_far_1e3));
	gauge(o, "simverify_loss", "Loss of the last training step.", atomic_load(&d->prog.loss));
	gauge(o, "simverify_gradient_norm", "Frobenius norm of the last step's gradient dL/dW.",
	      atomic_load(&d->prog.grad_norm));
	gauge(o, "simverify_threshold", "Decision threshold (cosine similarity).",
	      atomic_load(&d->prog.threshold));
	family(o, "simverify_threshold_policy_info", "gauge", "Threshold policy in force.");
	fprintf(o, "simverify_threshold_policy_info{policy=\"%s\"} 1\n", sv_metrics_policy_name(policy));
	if (d->conf.cfg.train_replay) {
		int rs = atomic_load(&d->prog.replay_state);

		family(o, "simverify_replay_state", "gauge",
		       "Replay state (1 for the one in force): wait, run, stopped, refit.");
		for (int i = 0; i <= SV_REPLAY_STATE_REFIT; i++)
			fprintf(o, "simverify_replay_state{state=\"%s\"} %d\n",
			        sv_replay_state_name(i), i == rs);
		gauge(o, "simverify_replay_gate", "1 while the gate judges replay (train.replay_gate).",
		      d->conf.cfg.train_replay_gate);
		gauge(o, "simverify_replay_rounds", "Replay rounds judged since the gate's baseline.",
		      u(&d->prog.replay_rounds));
		gauge(o, "simverify_replay_best_slice_auc",
		      "Held-back slice AUC of the gate's best W (NaN: none).",
		      atomic_load(&d->prog.replay_best_auc));
		gauge(o, "simverify_replay_last_slice_auc", "Held-back slice AUC last judged.",
		      atomic_load(&d->prog.replay_last_auc));
		counter(o, "simverify_replay_steps_total", "Idle replay steps, across restarts.",
		        atomic_load(&d->prog.replay_steps));
		counter(o, "simverify_replay_fill_pairs_total",
		        "Replayed pairs added to short batches, across restarts.",
		        atomic_load(&d->prog.replay_fill_pairs));
		counter(o, "simverify_replay_undos_total", "Times the gate restored its best W.",
		        atomic_load(&d->prog.replay_undos));
		gauge(o, "simverify_replay_idle_seconds", "Seconds of idle replay, across restarts.",
		      atomic_load(&d->prog.replay_idle_s));
	}
	{ /* cluster.role trainer (cluster.h) */
		struct cluster_status cs;

		if (cluster_status(atomic_load(&d->cluster), &cs) == 0) {
			gauge(o, "simverify_cluster_leader", "1 while this node holds the trainer lease.",
			      strcmp(cs.role, "leader") == 0);
			gauge(o, "simverify_cluster_applied_stream_seq",
			      "Pair-stream sequence of this node's last group commit.",
			      (double)cs.applied_seq);
			gauge(o, "simverify_cluster_items_seq",
			      "Replica: pair-stream sequence of the last item change applied.",
			      (double)cs.items_seq);
			gauge(o, "simverify_cluster_lag_messages",
			      "Messages in the pair stream after the last one this node fetched.",
			      (double)cs.lag);
			gauge(o, "simverify_cluster_model_revision",
			      "Models bucket revision this node last wrote or saw.", (double)cs.model_rev);
			counter(o, "simverify_cluster_published_total",
			        "Ingest messages this gateway stored in the pair stream.", cs.published);
			counter(o, "simverify_cluster_publish_failed_total",
			        "Ingest messages that got no JetStream ack (told to resend, or kept).",
			        cs.publish_failed);
			counter(o, "simverify_cluster_cuts_total", "Batch cuts this leader published.",
			        cs.cuts);
			counter(o, "simverify_cluster_items_total",
			        "Item changes this leader copied to the items stream.", cs.items);
			counter(o, "simverify_cluster_model_puts_total", "Model versions published.",
			        cs.model_puts);
			counter(o, "simverify_cluster_model_refused_total",
			        "Model versions the models bucket refused (fenced off).",
			        cs.model_refused);
			counter(o, "simverify_cluster_lease_gained_total", "Times this node took the lease.",
			        cs.lease_gained);
			counter(o, "simverify_cluster_lease_lost_total", "Times this node lost the lease.",
			        cs.lease_lost);
		}
	}
	gauge(o, "simverify_topk_cache_version", "Model version of the top-k projection cache.",
	      (double)tv);
	counter(o, "simverify_topk_cache_rebuilds_total", "Top-k cache rebuilds.", tn);
	topk_products(o, d);
	gauge(o, "simverify_store_map_bytes", "LMDB map size now.", (double)st.map_size);
	gauge(o, "simverify_store_max_map_bytes", "store.max_map_size: the map grows up to this.",
	      (double)max_map);
	gauge(o, "simverify_store_used_bytes", "LMDB pages holding data, in bytes.",
	      (double)st.used_bytes);
	gauge(o, "simverify_store_free_pages", "Pages on LMDB's free list, reusable.",
	      (double)st.free_pages);
	gauge(o, "simverify_store_headroom_bytes",
	      "Bytes the store can still take before store.max_map_size.",
	      max_map > st.used_bytes ? (double)(max_map - st.used_bytes) : 0.0);
	family(o, "simverify_store_full", "gauge",
	       "1 while ingest is refused for room, by the limit reached.");
	for (int f = SV_FULL_MAP; f < SV_FULL_COUNT; f++)
		fprintf(o, "simverify_store_full{limit=\"%s\"} %d\n", full_name[f],
		        atomic_load(&d->prog.store_full) == f);
	gauge(o, "simverify_store_bytes", "Size of data.mdb on disk.", store_bytes);
	gauge(o, "simverify_uptime_seconds", "Seconds since start.", expo_uptime_seconds());
	gauge(o, "simverify_resident_memory_bytes", "Resident set size.", expo_rss_bytes());
	counters(o, d);
	latency(o, d);
	if (ferror(o) | fclose(o)) {
		free(text);
		return NULL;
	}
	*len = tlen;
	return text;
}
