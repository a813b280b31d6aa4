/* bench_ingest.c - `sv-bench ingest`: pairs/s end to end through a real
 * simverifyd (publisher -> daemon -> committed to the log and trained on),
 * beside raw ZeroMQ PUSH/PULL of the same messages in the same run.
 *
 * For each case (inline 784-d vectors or id-only pairs; fire-and-forget PUSH
 * or acked DEALER with a client id and a window of outstanding messages) it
 *   raw:    sends the same PAIR_BATCH messages (built by the same code) over
 *           ipc:// PUSH -> PULL between two threads of this process, timed
 *           from the first send to the last receive;
 *   daemon: starts simverifyd on a fresh --state-dir (durable group commit:
 *           store.sync full unless --sync says otherwise), loads the items
 *           for id pairs, then times from the first send until STATUS (admin
 *           socket) reports every pair committed and trained (pairs_seen);
 * and prints pairs/s for both and daemon/raw.  As a second reference it
 * times sv_trainer_step alone (the daemon's default model) in the same run:
 * every ingested pair is trained on, so that rate bounds the daemon's, and
 * daemon/train says how much the ingest path costs on top.  As a third, it
 * times sv_store alone writing the same records per pair with the same sync
 * in groups of 1024 pairs (the durable-storage bound); "vs bound" is the
 * daemon over the lower of the two bounds.  Leaves out: queries
 * (sv-bench query), the store alone (sv-bench store).
 *
 * Options: --daemon PATH (default: ../daemon/simverifyd beside this binary),
 * --dir DIR (default /tmp), --pairs N (per case; default 20000), --per-msg M
 * (pairs per message; default 64), --d-in N (784), --window W (acked
 * messages in flight; 16), --sync full|meta|none, --threads T (train.threads
 * of the daemon and of the training-alone reference; 1), --json.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "bench.h"
#include "sv/batch.h"
#include "sv/blas.h"
#include "sv/proto.h"
#include "sv/store.h"
#include "sv/train.h"

#define N_ITEMS 1000

struct cfg {
	char daemon[PATH_MAX];
	const char *dir;
	long pairs, per_msg, d_in, window, threads;
	const char *sync;
	int json;
};

struct gen {
	const struct cfg *c;
	int inline_vecs;
	float *vecs; /* 2 * per_msg rows of d_in */
	struct sv_proto_pair *pr;
	char ids[N_ITEMS][8];
	long counter;
};

/* Message i: per_msg pairs; inline vectors are made unique by a counter
 * (the daemon stores inline vectors content-addressed, so repeats would be
 * cheaper than real traffic). */
static int make_msg(struct gen *g, struct sv_proto_msgbuf *mb, long i, int acked)
{
	const struct cfg *c = g->c;
	struct sv_proto_client cl = {"bench", 5, (uint64_t)i * (uint64_t)c->per_msg + 1};

	for (long k = 0; k < c->per_msg; k++) {
		struct sv_proto_pair *p = &g->pr[k];

		memset(p, 0, sizeof(*p));
		p->label = (uint8_t)(k & 1);
		if (g->inline_vecs) {
			float *a = g->vecs + (size_t)(2 * k) * c->d_in, *b = a + c->d_in;

			/* the counter in two elements: each stays below the
			 * protocol's |x| < 2^17 (SV_PROTO_MAX_ABS) */
			a[0] = (float)(g->counter % 65536);
			a[1] = (float)(g->counter++ / 65536);
			b[0] = (float)(g->counter % 65536);
			b[1] = (float)(g->counter++ / 65536);
			p->a.vec = a;
			p->b.vec = b;
		} else {
			long x = (i * c->per_msg + k) % N_ITEMS, y = (x * 7 + 1) % N_ITEMS;

			p->a.id = g->ids[x];
			p->a.id_len = strlen(g->ids[x]);
			p->b.id = g->ids[y];
			p->b.id_len = strlen(g->ids[y]);
		}
	}
	return sv_proto_encode_pairs(mb, SV_PROTO_VERB_PAIR_BATCH, (uint64_t)i + 1, g->pr,
	                             (size_t)c->per_msg, (uint32_t)c->d_in, acked ? &cl : NULL);
}

struct sink {
	void *ctx;
	char ep[PATH_MAX + 16];
	long msgs;
	uint64_t t_end;
};

static void *sink_main(void *arg)
{
	struct sink *k = arg;
	void *s = zmq_socket(k->ctx, ZMQ_PULL);

	zmq_bind(s, k->ep);
	for (long i = 0; i < k->msgs; i++)
		if (bench_recv_drop(s) < 0)
			break;
	k->t_end = bench_now_ns();
	zmq_close(s);
	return NULL;
}

/* Raw ZeroMQ: the same messages PUSH -> PULL over ipc://. */
static double raw_rate(struct gen *g, const char *dir)
{
	const struct cfg *c = g->c;
	struct sink k;
	struct sv_proto_msgbuf mb;
	pthread_t th;
	long msgs = c->pairs / c->per_msg;
	uint64_t t0;
	void *s;

	k.ctx = zmq_ctx_new();
	snprintf(k.ep, sizeof(k.ep), "ipc://%s/raw.sock", dir);
	k.msgs = msgs;
	pthread_create(&th, NULL, sink_main, &k);
	s = zmq_socket(k.ctx, ZMQ_PUSH);
	zmq_connect(s, k.ep);
	usleep(100000);
	sv_proto_msgbuf_init(&mb);
	t0 = bench_now_ns();
	for (long i = 0; i < msgs; i++)
		if (make_msg(g, &mb, i, 0) < 0 || bench_send_mb(s, &mb) < 0)
			break;
	pthread_join(th, NULL);
	sv_proto_msgbuf_free(&mb);
	zmq_close(s);
	zmq_ctx_term(k.ctx);
	return (double)(msgs * c->per_msg) / ((double)(k.t_end - t0) / 1e9);
}

/* The daemon: fresh state dir, items loaded, then the timed stream. */
static double daemon_rate(struct gen *g, const char *dir, int acked)
{
	const struct cfg *c = g->c;
	char sd[PATH_MAX + 16], o1[64], o2[64], o3[64], o4[64], js[65536];
	const char *const ovr[] = {o1, o2, o3, o4, "train.max_wait_ms=10ms", "store.map_size=256MiB",
	                           "checkpoint.every_s=0"};
	long msgs = c->pairs / c->per_msg, base = 0;
	struct sv_proto_msgbuf mb;
	double rate = -1.0;
	uint64_t t0;
	void *ctx, *adm, *in;
	pid_t pid;

	snprintf(sd, sizeof(sd), "%s/daemon", dir);
	snprintf(o1, sizeof(o1), "model.d_in=%ld", c->d_in);
	snprintf(o2, sizeof(o2), "store.sync=%s", c->sync);
	snprintf(o3, sizeof(o3), "limits.max_batch_pairs=%ld",
	         c->per_msg > 4096 ? c->per_msg : 4096);
	snprintf(o4, sizeof(o4), "train.threads=%ld", c->threads);
	pid = bench_daemon_start(c->daemon, sd, ovr, sizeof(ovr) / sizeof(ovr[0]));
	ctx = zmq_ctx_new();
	adm = bench_daemon_admin(ctx, sd, js, sizeof(js));
	if (adm == NULL) {
		fprintf(stderr, "sv-bench ingest: the daemon at %s did not answer\n", sd);
		zmq_ctx_term(ctx);
		bench_daemon_stop(pid);
		return -1.0;
	}
	in = bench_sock_at(ctx, acked ? ZMQ_DEALER : ZMQ_PUSH, sd,
	          acked ? "ingest-acked.sock" : "ingest.sock");
	sv_proto_msgbuf_init(&mb);
	if (!g->inline_vecs) {
		void *ia = bench_sock_at(ctx, ZMQ_DEALER, sd, "ingest-acked.sock");

		for (int i = 0; i < N_ITEMS; i++) {
			sv_proto_encode_item_put(&mb, (uint64_t)i, g->ids[i], strlen(g->ids[i]),
			                         g->vecs, (uint32_t)c->d_in);
			bench_send_mb(ia, &mb);
		}
		for (int i = 0; i < N_ITEMS; i++)
			bench_recv_drop(ia);
		zmq_close(ia);
	}
	if (bench_status(adm, js, sizeof(js)) == 0)
		base = bench_json_u64(js, "pairs_seen");
	t0 = bench_now_ns();
	{
		long sent = 0, got = 0;

		while (sent < msgs) {
			if (make_msg(g, &mb, sent, acked) < 0 || bench_send_mb(in, &mb) < 0)
				goto out;
			sent++;
			while (acked && (sent - got >= c->window || (sent == msgs && got < msgs))) {
				if (bench_recv_drop(in) < 0)
					goto out;
				got++;
			}
		}
	}
	for (long seen = -1, idle = 0;;) {
		long now;

		if (bench_status(adm, js, sizeof(js)) < 0)
			goto out;
		now = bench_json_u64(js, "pairs_seen");
		if (now - base >= msgs * c->per_msg)
			break;
		idle = now == seen ? idle + 1 : 0;
		seen = now;
		if (idle > 6000) { /* 30 s without a trained pair: rejected or stuck */
			fprintf(stderr, "sv-bench ingest: the daemon trained %ld of %ld pairs and "
			                "stopped; see its log\n",
			        now - base, msgs * c->per_msg);
			goto out;
		}
		usleep(5000);
	}
	rate = (double)(msgs * c->per_msg) / ((double)(bench_now_ns() - t0) / 1e9);
out:
	sv_proto_msgbuf_free(&mb);
	zmq_close(in);
	zmq_close(adm);
	zmq_ctx_term(ctx);
	bench_daemon_stop(pid);
	bench_rm_tree(sd);
	return rate;
}

/* The training ceiling: pairs/s of sv_trainer_step alone at the daemon's
 * defaults (NT-Xent, batch mode, Adam, 256 pairs, d_out 64) on --threads,
 * timed here for about a second.  No ingest path can beat it. */
static double train_ceiling(const struct cfg *c)
{
	struct sv_train_params p = {0};
	sv_trainer *t = NULL;
	sv_batch *b = NULL;
	float *x = malloc((size_t)c->d_in * 2 * sizeof(float));
	uint64_t t0, n = 0;
	double rate = -1.0;

	if (x == NULL)
		return rate;
	for (long i = 0; i < 2 * c->d_in; i++)
		x[i] = (float)rand() / RAND_MAX - 0.5f;
	sv_blas_set_threads((int)c->threads);
	p.d_in = (uint32_t)c->d_in;
	p.d_out = 64;
	p.seed = 1;
	p.max_pairs = 256;
	sv_loss_params_default(&p.loss, SV_LOSS_KIND_NTXENT);
	sv_optim_params_default(&p.optim, SV_OPTIM_KIND_ADAM);
	if (sv_trainer_new(&t, &p, NULL) == 0 && sv_batch_new(&b, 256, p.d_in) == 0) {
		t0 = bench_now_ns();
		while (bench_now_ns() - t0 < 1000000000ULL) {
			sv_batch_clear(b);
			for (uint64_t i = 0; i < 256; i++) {
				x[0] = (float)(n * 256 + i);
				sv_batch_add(b, x, 2 * i, x + c->d_in, 2 * i + 1, (uint8_t)(i & 1),
				             i + 1);
			}
			sv_trainer_step(t, b, NULL, NULL);
			n++;
		}
		rate = (double)n * 256.0 / ((double)(bench_now_ns() - t0) / 1e9);
	}
	sv_trainer_free(t);
	sv_batch_free(b);
	free(x);
	return rate;
}

/* The storage ceiling: pairs/s of sv_store alone writing what the daemon
 * writes per pair (inline: two content-addressed item puts of d_in floats
 * and the log record; ids: the log record), in groups of 1024 pairs with
 * the same store.sync, into a fresh store under dir.  The best case for the
 * daemon's own groups; no durable ingest path can beat it. */
static double store_ceiling(const struct cfg *c, const char *dir, int inline_vecs)
{
	enum { GROUP = 1024 };
	struct sv_store_opts o;
	sv_store *st = NULL;
	char path[PATH_MAX], err[256];
	float *x = malloc((size_t)c->d_in * sizeof(float));
	long n = c->pairs < 40000 ? c->pairs : 40000;
	uint64_t t0, seq;
	double rate = -1.0;
	int rc = 0;

	snprintf(path, sizeof(path), "%s/store-%d", dir, inline_vecs);
	sv_store_opts_default(&o);
	o.path = path;
	o.d_in = (uint32_t)c->d_in;
	o.d_out = 64;
	o.sync = !strcmp(c->sync, "none") ? SV_STORE_SYNC_NONE
	         : !strcmp(c->sync, "meta") ? SV_STORE_SYNC_META : SV_STORE_SYNC_FULL;
	if (x == NULL || sv_store_open(&st, &o, err, sizeof(err)) < 0) {
		free(x);
		return rate;
	}
	for (long i = 0; i < c->d_in; i++)
		x[i] = (float)rand() / RAND_MAX - 0.5f;
	t0 = bench_now_ns();
	for (long i = 0; i < n && rc == 0; i += GROUP) {
		sv_store_txn *t = NULL;

		rc = sv_store_txn_begin(st, &t);
		for (long k = i; k < i + GROUP && k < n && rc == 0; k++) {
			char ida[40], idb[40];
			struct sv_store_pair pr = {0};

			if (inline_vecs) {
				/* unique contents and ids that scatter over the key space
				 * as the daemon's content hashes do (items and refs
				 * inserts land on random pages, not at the end) */
				snprintf(ida, sizeof(ida), "~v%016llx%016llx",
				         (unsigned long long)(2 * k) * 0x9e3779b97f4a7c15ULL, 0ULL);
				snprintf(idb, sizeof(idb), "~v%016llx%016llx",
				         (unsigned long long)(2 * k + 1) * 0x9e3779b97f4a7c15ULL, 0ULL);
				x[0] = (float)(2 * k);
				rc = sv_store_item_put(t, ida, strlen(ida), x, 0);
				x[0] = (float)(2 * k + 1);
				if (rc == 0)
					rc = sv_store_item_put(t, idb, strlen(idb), x, 0);
			} else {
				snprintf(ida, sizeof(ida), "i%ld", k % N_ITEMS);
				snprintf(idb, sizeof(idb), "i%ld", (k + 1) % N_ITEMS);
			}
			pr.id_a = ida;
			pr.len_a = strlen(ida);
			pr.id_b = idb;
			pr.len_b = strlen(idb);
			pr.label = (uint8_t)(k & 1);
			if (rc == 0)
				rc = sv_store_pair_append(t, &pr, &seq);
		}
		if (rc == 0)
			rc = sv_store_txn_commit(t);
		else
			sv_store_txn_abort(t);
	}
	if (rc == 0)
		rate = (double)n / ((double)(bench_now_ns() - t0) / 1e9);
	sv_store_close(st);
	bench_rm_tree(path);
	free(x);
	return rate;
}

static int parse(int argc, char **argv, struct cfg *c)
{
	memset(c, 0, sizeof(*c));
	c->dir = "/tmp";
	c->pairs = 20000;
	c->per_msg = 64;
	c->d_in = 784;
	c->window = 16;
	c->threads = 1;
	c->sync = "full";
	bench_daemon_default_path(c->daemon, sizeof(c->daemon));
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--json")) {
			c->json = 1;
			continue;
		}
		if (!strcmp(a, "--help")) {
			printf("usage: sv-bench ingest [--daemon PATH] [--dir DIR] [--pairs N] "
			       "[--per-msg M] [--d-in N] [--window W] [--sync full|meta|none] "
			       "[--threads T] [--json]\n");
			return 1;
		}
		if (v == NULL)
			return -1;
		i++;
		if (!strcmp(a, "--daemon"))
			snprintf(c->daemon, sizeof(c->daemon), "%s", v);
		else if (!strcmp(a, "--dir"))
			c->dir = v;
		else if (!strcmp(a, "--sync"))
			c->sync = v;
		else if (!strcmp(a, "--pairs") &&
		         bench_parse_long(v, 64, 100000000, &c->pairs) == 0)
			;
		else if (!strcmp(a, "--per-msg") && bench_parse_long(v, 1, 4096, &c->per_msg) == 0)
			;
		else if (!strcmp(a, "--d-in") && bench_parse_long(v, 2, 65536, &c->d_in) == 0)
			;
		else if (!strcmp(a, "--window") && bench_parse_long(v, 1, 100000, &c->window) == 0)
			;
		else if (!strcmp(a, "--threads") && bench_parse_long(v, 1, 64, &c->threads) == 0)
			;
		else
			return -1;
	}
	if (c->pairs < c->per_msg)
		c->pairs = c->per_msg;
	return access(c->daemon, X_OK) == 0 ? 0 : -2;
}

int bench_ingest(int argc, char **argv)
{
	static const struct {
		int inline_vecs, acked;
		const char *name;
	} cases[] = {
	    {1, 0, "inline_push"},
	    {1, 1, "inline_acked"},
	    {0, 0, "ids_push"},
	    {0, 1, "ids_acked"},
	};
	struct bench_json j;
	struct cfg c;
	struct gen g;
	char dir[PATH_MAX];
	double ceil, sceil[2];
	int rc = parse(argc, argv, &c);

	if (rc == 1)
		return 0;
	if (rc == -2) {
		fprintf(stderr, "sv-bench ingest: no simverifyd at %s (use --daemon PATH)\n",
		        c.daemon);
		return 2;
	}
	if (rc < 0) {
		fprintf(stderr, "sv-bench ingest: bad option (see --help)\n");
		return 2;
	}
	snprintf(dir, sizeof(dir), "%s/sv-bench-ingest-XXXXXX", c.dir);
	if (mkdtemp(dir) == NULL) {
		perror("sv-bench ingest: mkdtemp");
		return 1;
	}
	memset(&g, 0, sizeof(g));
	g.c = &c;
	g.vecs = malloc((size_t)(2 * c.per_msg) * (size_t)c.d_in * sizeof(float));
	g.pr = calloc((size_t)c.per_msg, sizeof(*g.pr));
	if (g.vecs == NULL || g.pr == NULL)
		return 1;
	srand(1);
	for (size_t i = 0; i < (size_t)(2 * c.per_msg) * (size_t)c.d_in; i++)
		g.vecs[i] = (float)rand() / RAND_MAX - 0.5f;
	for (int i = 0; i < N_ITEMS; i++)
		snprintf(g.ids[i], sizeof(g.ids[i]), "i%d", i);
	ceil = train_ceiling(&c);
	sceil[0] = store_ceiling(&c, dir, 0);
	sceil[1] = store_ceiling(&c, dir, 1);
	if (c.json) {
		bench_json_begin(&j);
		bench_json_num(&j, "train_only_pairs_per_s", ceil);
		bench_json_num(&j, "store_only_ids_pairs_per_s", sceil[0]);
		bench_json_num(&j, "store_only_inline_pairs_per_s", sceil[1]);
	} else {
		printf("sv-bench ingest: %ld pairs per case, %ld pairs/message, d_in %ld, sync %s, "
		       "acked window %ld\n"
		       "training alone (sv_trainer_step, 256 pairs, d_out 64, %ld threads): %.0f "
		       "pairs/s\n"
		       "store alone (sv_store, the same records, 1024 pairs per commit): inline "
		       "%.0f, ids %.0f pairs/s\n"
		       "%-14s %14s %15s %8s %10s %10s\n",
		       c.pairs, c.per_msg, c.d_in, c.sync, c.window, c.threads, ceil, sceil[1],
		       sceil[0],
		       "case", "daemon pairs/s", "raw zmq pairs/s", "vs raw", "vs train",
		       "vs bound");
	}
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		double raw, dmn, sc = sceil[cases[k].inline_vecs ? 1 : 0];
		double bound = sc > 0 && sc < ceil ? sc : ceil;
		char key[64];

		g.inline_vecs = cases[k].inline_vecs;
		raw = raw_rate(&g, dir);
		dmn = daemon_rate(&g, dir, cases[k].acked);
		if (c.json) {
			snprintf(key, sizeof(key), "%s_pairs_per_s", cases[k].name);
			bench_json_num(&j, key, dmn);
			snprintf(key, sizeof(key), "%s_raw_pairs_per_s", cases[k].name);
			bench_json_num(&j, key, raw);
			snprintf(key, sizeof(key), "%s_ratio", cases[k].name);
			bench_json_num(&j, key, dmn / raw);
			snprintf(key, sizeof(key), "%s_bound_ratio", cases[k].name);
			bench_json_num(&j, key, dmn / bound);
		} else {
			printf("%-14s %14.0f %15.0f %7.1f%% %9.1f%% %9.1f%%\n", cases[k].name, dmn,
			       raw, 100.0 * dmn / raw, 100.0 * dmn / ceil, 100.0 * dmn / bound);
		}
		fflush(stdout);
	}
	if (c.json)
		bench_json_end(&j);
	free(g.vecs);
	free(g.pr);
	bench_rm_tree(dir); /* raw_rate leaves its ipc socket file there */
	return 0;
}
