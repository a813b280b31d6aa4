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
 *           for id pairs, sends an untimed warm-up of WARM_PAIRS and waits
 *           until they are trained, then times from the first send until
 *           STATUS (admin socket) reports every pair committed and trained
 *           (pairs_seen);
 * and prints pairs/s for both and daemon/raw.  As a second reference it
 * times sv_trainer_step alone (the daemon's default model) in the same run:
 * every ingested pair is trained on, so that rate bounds the daemon's, and
 * daemon/train says how much the ingest path costs on top.  As a third, it
 * times sv_store alone writing the same records per pair with the same sync
 * in groups of 1024 pairs, as many pairs as the daemon gets (the
 * durable-storage bound); "vs bound" is the daemon over the lower of the two
 * bounds.  It also prints the daemon's pairs per group commit and, for
 * inline vectors, the bytes of data.mdb its store holds a vector at the end
 * (the pair log's rows left out, its checkpoint in).  Leaves out: queries
 * (sv-bench query), the store alone (sv-bench store).
 *
 * Options: --daemon PATH (default: ../daemon/simverifyd beside this binary),
 * --dir DIR (default /tmp), --pairs N (per case; default 20000), --per-msg M
 * (pairs per message; default 64), --d-in N (784), --window W (acked
 * messages in flight; default: 4096 pairs' worth, what simverifyctl publish
 * and the Python client keep in flight), --sync full|meta|none, --threads T (train.threads
 * of the daemon and of the training-alone reference; 1), --reps R (3: every
 * bound and case measured R times, alternating; each ratio taken within its
 * repetition; the median and range printed), --json.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "bench.h"
#include "sv/batch.h"
#include "sv/blas.h"
#include "sv/proto.h"
#include "sv/store.h"
#include "sv/train.h"

#define N_ITEMS 1000
#define N_CASES 4
#define MAX_REPS 15
#define WARM_PAIRS 1024 /* one group commit, four steps */
/* Pairs the product's own acked clients keep in flight (simverifyctl
 * publish and the Python client: 16 messages of 256): the default --window
 * is this many pairs. */
#define CLIENT_IN_FLIGHT 4096

struct cfg {
	char daemon[PATH_MAX];
	const char *dir;
	long pairs, per_msg, d_in, window, threads, reps;
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

/* Messages first .. first+n-1 of the stream on in: acked ones at most
 * window in flight, and every ack read before returning. */
static int send_stream(struct gen *g, void *in, struct sv_proto_msgbuf *mb, long first, long n,
                       int acked)
{
	long sent = 0, got = 0;

	while (sent < n) {
		if (make_msg(g, mb, first + sent, acked) < 0 || bench_send_mb(in, mb) < 0)
			return -1;
		sent++;
		while (acked && (sent - got >= g->c->window || (sent == n && got < n))) {
			if (bench_recv_drop(in) < 0)
				return -1;
			got++;
		}
	}
	return 0;
}

/* Poll STATUS (into js) until pairs_seen reaches want; -1 after 30 s
 * without a trained pair (rejected or stuck). */
static int trained_wait(void *adm, char *js, size_t cap, long want)
{
	for (long seen = -1, idle = 0;;) {
		long now;

		if (bench_status(adm, js, cap) < 0)
			return -1;
		now = bench_json_u64(js, "pairs_seen");
		if (now >= want)
			return 0;
		idle = now == seen ? idle + 1 : 0;
		seen = now;
		if (idle > 6000) {
			fprintf(stderr,
			        "sv-bench ingest: the daemon's pairs_seen stopped at %ld "
			        "short of %ld; see its log\n",
			        now, want);
			return -1;
		}
		usleep(5000);
	}
}

/* What the daemon left in its store at sd: data.mdb's bytes on disk, the
 * pair log's rows (sv_store_stat log_bytes) left out, per inline vector;
 * its checkpoint stays in.  0 when it cannot tell. */
static double store_bytes_per_vec(const struct cfg *c, const char *sd)
{
	char path[PATH_MAX + 32], mdb[PATH_MAX + 48], err[SV_STORE_ERRMSG_MAX];
	struct sv_store_opts so;
	struct sv_store_stat ss;
	sv_store *st = NULL;
	sv_store_read *r = NULL;
	struct stat sb;
	double per = 0;

	snprintf(path, sizeof(path), "%s/store", sd);
	snprintf(mdb, sizeof(mdb), "%s/data.mdb", path);
	sv_store_opts_default(&so);
	so.path = path;
	so.d_in = (uint32_t)c->d_in;
	so.d_out = 64; /* the daemon's default model.d_out, which the bench keeps */
	if (stat(mdb, &sb) != 0 || sv_store_open(&st, &so, err, sizeof(err)) < 0)
		return 0;
	if (sv_store_read_begin(st, &r) == 0 && sv_store_stat(r, &ss) == 0 && ss.inline_items > 0)
		per =
		    ((double)sb.st_blocks * 512.0 - (double)ss.log_bytes) / (double)ss.inline_items;
	sv_store_read_end(r);
	sv_store_close(st);
	return per;
}

/* The daemon: fresh state dir, items loaded, a warm-up, then the timed
 * stream.  With inline vectors, *bytes_per_vec: what its store holds a
 * vector at the end (store_bytes_per_vec). */
static double daemon_rate(struct gen *g, const char *dir, int acked, double *per_commit,
                          double *bytes_per_vec)
{
	const struct cfg *c = g->c;
	char sd[PATH_MAX + 16], o1[64], o2[64], o3[64], o4[64], js[65536];
	const char *const ovr[] = {o1, o2, o3, o4, "train.max_wait_ms=10ms", "store.map_size=256MiB",
	                           "checkpoint.every_s=0"};
	long msgs = c->pairs / c->per_msg, warm = (WARM_PAIRS + c->per_msg - 1) / c->per_msg;
	long base = 0, commits0 = 0, commits;
	struct sv_proto_msgbuf mb;
	double rate = -1.0;
	uint64_t t0;
	void *ctx, *adm, *in;
	pid_t pid;

	*per_commit = 0;
	*bytes_per_vec = 0;
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
	/* untimed warm-up: the first group and steps (page faults, OpenBLAS's
	 * buffers) cost what the 1 s training bound amortizes away */
	if (bench_status(adm, js, sizeof(js)) < 0 || send_stream(g, in, &mb, 0, warm, acked) < 0 ||
	    trained_wait(adm, js, sizeof(js),
	                 bench_json_u64(js, "pairs_seen") + warm * c->per_msg) < 0)
		goto out;
	base = bench_json_u64(js, "pairs_seen");
	commits0 = bench_json_u64(js, "commits");
	t0 = bench_now_ns();
	if (send_stream(g, in, &mb, warm, msgs, acked) < 0)
		goto out;
	if (trained_wait(adm, js, sizeof(js), base + msgs * c->per_msg) < 0)
		goto out;
	rate = (double)(msgs * c->per_msg) / ((double)(bench_now_ns() - t0) / 1e9);
	/* the group commits the pairs took (upkeep groups, if any, included) */
	commits = bench_json_u64(js, "commits") - commits0;
	*per_commit = (double)(msgs * c->per_msg) / (double)(commits > 0 ? commits : 1);
out:
	sv_proto_msgbuf_free(&mb);
	zmq_close(in);
	zmq_close(adm);
	zmq_ctx_term(ctx);
	bench_daemon_stop(pid);
	if (rate > 0 && g->inline_vecs)
		*bytes_per_vec = store_bytes_per_vec(c, sd);
	bench_rm_tree(sd);
	return rate;
}

/* The training ceiling: pairs/s of sv_trainer_step alone at the daemon's
 * defaults (NT-Xent, batch mode, Adam, 256 pairs, d_out 64) on --threads,
 * timed here for about a second after one warm-up step.  It steps through
 * TRAIN_BATCHES batches of distinct random rows, filled before the timing,
 * so each step reads rows that are in no cache of its own (32 * 1.6 MB at
 * d_in 784, more than the L3), as the daemon's step runner reads the rows its
 * trainer thread wrote on the other core.  (One batch refilled before each
 * step measured the same here, the fill included.)  No ingest path can
 * beat it. */
#define TRAIN_BATCHES 32
static double train_ceiling(const struct cfg *c)
{
	struct sv_train_params p = {0};
	sv_trainer *t = NULL;
	sv_batch *b[TRAIN_BATCHES] = {NULL};
	float *x = malloc((size_t)c->d_in * 2 * sizeof(float));
	uint64_t t0, n = 0;
	double rate = -1.0;
	int ok;

	if (x == NULL)
		return rate;
	sv_blas_set_threads((int)c->threads);
	p.d_in = (uint32_t)c->d_in;
	p.d_out = 64;
	p.seed = 1;
	p.max_pairs = 256;
	sv_loss_params_default(&p.loss, SV_LOSS_KIND_NTXENT);
	sv_optim_params_default(&p.optim, SV_OPTIM_KIND_ADAM);
	ok = sv_trainer_new(&t, &p, NULL) == 0;
	for (int k = 0; ok && k < TRAIN_BATCHES; k++) {
		ok = sv_batch_new(&b[k], 256, p.d_in) == 0;
		for (uint64_t i = 0; ok && i < 256; i++) {
			for (long j = 0; j < 2 * c->d_in; j++)
				x[j] = (float)rand() / RAND_MAX - 0.5f;
			sv_batch_add(b[k], x, 2 * i, x + c->d_in, 2 * i + 1, (uint8_t)(i & 1),
			             i + 1);
		}
	}
	if (ok) {
		sv_trainer_step(t, b[0], NULL, NULL); /* warm-up, as the daemon gets */
		t0 = bench_now_ns();
		while (bench_now_ns() - t0 < 1000000000ULL)
			sv_trainer_step(t, b[n++ % TRAIN_BATCHES], NULL, NULL);
		rate = (double)n * 256.0 / ((double)(bench_now_ns() - t0) / 1e9);
	}
	sv_trainer_free(t);
	for (int k = 0; k < TRAIN_BATCHES; k++)
		sv_batch_free(b[k]);
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
	long n = c->pairs; /* as many as the daemon gets: the store slows as it grows */
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

static void print_stat(const char *what, const struct bench_stat *st, const char *unit)
{
	printf("%s: %.0f [%.0f-%.0f] %s\n", what, st->med, st->lo, st->hi, unit);
}

/* Case k's figures: daemon, raw, daemon/raw, daemon/train, daemon/bound,
 * the daemon's pairs per group commit; MAX_REPS slots each. */
#define N_FIG 7
static double *cv_of(double *all, size_t k)
{
	return all + k * N_FIG * MAX_REPS;
}

static int parse(int argc, char **argv, struct cfg *c)
{
	memset(c, 0, sizeof(*c));
	c->dir = "/tmp";
	c->pairs = 20000;
	c->per_msg = 64;
	c->d_in = 784;
	c->window = 0; /* CLIENT_IN_FLIGHT pairs */
	c->threads = 1;
	c->reps = 3;
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
			       "[--threads T] [--reps R] [--json]\n");
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
		else if (!strcmp(a, "--reps") && bench_parse_long(v, 1, MAX_REPS, &c->reps) == 0)
			;
		else
			return -1;
	}
	if (c->pairs < c->per_msg)
		c->pairs = c->per_msg;
	if (c->window == 0)
		c->window = (CLIENT_IN_FLIGHT + c->per_msg - 1) / c->per_msg;
	return access(c->daemon, X_OK) == 0 ? 0 : -2;
}

int bench_ingest(int argc, char **argv)
{
	static const struct {
		int inline_vecs, acked;
		const char *name;
	} cases[N_CASES] = {
	    {1, 0, "inline_push"},
	    {1, 1, "inline_acked"},
	    {0, 0, "ids_push"},
	    {0, 1, "ids_acked"},
	};
	struct bench_json j;
	struct cfg c;
	struct gen g;
	char dir[PATH_MAX];
	double v[3][MAX_REPS], cv_all[N_CASES * N_FIG * MAX_REPS];
	struct bench_stat bs[3];
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
	/* Every figure is measured c.reps times, the bounds and the cases
	 * alternating, and each ratio is taken within its own repetition. */
	for (long r = 0; r < c.reps; r++) {
		fprintf(stderr, "sv-bench ingest: repetition %ld of %ld\n", r + 1, c.reps);
		v[0][r] = train_ceiling(&c);
		v[1][r] = store_ceiling(&c, dir, 1);
		v[2][r] = store_ceiling(&c, dir, 0);
		for (size_t k = 0; k < N_CASES; k++) {
			double sc = v[cases[k].inline_vecs ? 1 : 2][r], *cv = cv_of(cv_all, k);
			double bound = sc > 0 && sc < v[0][r] ? sc : v[0][r];

			g.inline_vecs = cases[k].inline_vecs;
			cv[0 * MAX_REPS + r] = daemon_rate(
			    &g, dir, cases[k].acked, &cv[5 * MAX_REPS + r], &cv[6 * MAX_REPS + r]);
			cv[1 * MAX_REPS + r] = raw_rate(&g, dir);
			cv[2 * MAX_REPS + r] = cv[0 * MAX_REPS + r] / cv[1 * MAX_REPS + r];
			cv[3 * MAX_REPS + r] = cv[0 * MAX_REPS + r] / v[0][r];
			cv[4 * MAX_REPS + r] = cv[0 * MAX_REPS + r] / bound;
		}
	}
	for (int b = 0; b < 3; b++)
		bench_stat_of(v[b], (size_t)c.reps, &bs[b]);
	if (c.json) {
		bench_json_begin(&j);
		bench_json_int(&j, "reps", c.reps);
		bench_json_num(&j, "train_only_pairs_per_s", bs[0].med);
		bench_json_num(&j, "store_only_inline_pairs_per_s", bs[1].med);
		bench_json_num(&j, "store_only_ids_pairs_per_s", bs[2].med);
	} else {
		printf("sv-bench ingest: %ld pairs per case, %ld pairs/message, d_in %ld, sync %s, "
		       "acked window %ld, train.threads %ld; median of %ld [range]\n",
		       c.pairs, c.per_msg, c.d_in, c.sync, c.window, c.threads, c.reps);
		print_stat(
		    "training alone (sv_trainer_step, 256 pairs, d_out 64, rows out of cache)",
		    &bs[0], "pairs/s");
		print_stat("store alone, inline (sv_store, the same records, 1024 pairs per commit)",
		           &bs[1], "pairs/s");
		print_stat("store alone, ids", &bs[2], "pairs/s");
		printf("%-13s %-22s %-10s %-10s %-18s %-8s %-13s %s\n", "case", "daemon pairs/s",
		       "vs raw", "vs train", "vs bound", "bound", "pairs/commit",
		       "store B/vector (x raw)");
	}
	for (size_t k = 0; k < N_CASES; k++) {
		double *cv = cv_of(cv_all, k);
		struct bench_stat st[N_FIG];
		char key[64];

		for (int f = 0; f < N_FIG; f++)
			bench_stat_of(cv + f * MAX_REPS, (size_t)c.reps, &st[f]);
		if (c.json) {
			snprintf(key, sizeof(key), "%s_pairs_per_s", cases[k].name);
			bench_json_num(&j, key, st[0].med);
			snprintf(key, sizeof(key), "%s_raw_pairs_per_s", cases[k].name);
			bench_json_num(&j, key, st[1].med);
			snprintf(key, sizeof(key), "%s_ratio", cases[k].name);
			bench_json_num(&j, key, st[2].med);
			snprintf(key, sizeof(key), "%s_train_ratio", cases[k].name);
			bench_json_num(&j, key, st[3].med);
			snprintf(key, sizeof(key), "%s_bound_ratio", cases[k].name);
			bench_json_num(&j, key, st[4].med);
			snprintf(key, sizeof(key), "%s_bound_ratio_lo", cases[k].name);
			bench_json_num(&j, key, st[4].lo);
			snprintf(key, sizeof(key), "%s_bound_ratio_hi", cases[k].name);
			bench_json_num(&j, key, st[4].hi);
			if (cases[k].inline_vecs) {
				snprintf(key, sizeof(key), "%s_store_bytes_per_vector",
				         cases[k].name);
				bench_json_num(&j, key, st[6].med);
			}
		} else {
			char per[48] = "-";

			if (cases[k].inline_vecs && st[6].med > 0)
				snprintf(per, sizeof(per), "%.0f (%.3fx)", st[6].med,
				         st[6].med / ((double)c.d_in * 4.0));
			printf("%-13s %6.0f [%6.0f-%6.0f] %5.1f%%     %5.1f%%     %5.1f%% "
			       "[%4.1f-%4.1f] "
			       "%-8s %-13.0f %s\n",
			       cases[k].name, st[0].med, st[0].lo, st[0].hi, 100 * st[2].med,
			       100 * st[3].med, 100 * st[4].med, 100 * st[4].lo, 100 * st[4].hi,
			       cases[k].inline_vecs && bs[1].med < bs[0].med ? "storage"
			                                                     : "training",
			       st[5].med, per);
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
