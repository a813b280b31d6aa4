/* bench_query.c - `sv-bench query`: match-query latency and throughput
 * through a real simverifyd, beside a raw ZeroMQ ROUTER/DEALER echo of the
 * same message sizes measured in the same run.
 *
 * It starts a private daemon (fresh --state-dir under --dir, default model
 * 784 -> 64), then for each case (SCORE of two inline vectors; with --topk
 * also TOPK k=10 of one vector over --items stored items, answered from the
 * projection cache) and each depth (1 and 16 requests in flight on one DEALER):
 *   echo:    a ROUTER in a child process on ipc:// that answers every
 *            request with a reply of exactly the sizes the daemon's reply
 *            has (captured first), its request id copied in, no other work;
 *   daemon:  the same DEALER client against the daemon's query socket.
 * Each request's latency runs from its send to the receipt of the reply that
 * carries its request id.  Printed: p50, p99 (us) and requests/s of both, and
 * daemon/echo ratios.  The target is p50 within 1.3x of the echo (the query
 * work is then a small part of the round trip).
 *
 * TOPK's bound is not the echo alone: with --topk the same items also go
 * into an sv_topk_cache in this process (the engine the daemon answers
 * from), on one BLAS thread as in the daemon (train.threads 1, its
 * default, makes OpenBLAS single-threaded there), and the engine's own
 * rate is measured in the same run:
 *   one query:  after each repetition, the median of repeated calls;
 *   the daemon's batches:  in the depth-16 TOPK rounds the engine takes a
 *            turn after each daemon round and does that round's work, the
 *            very products the daemon answered (their sizes come from
 *            STATUS topk_cache.products, read before and after the round),
 *            timed as a whole as the daemon's rate is;
 *   16 queries: the median of repeated 16-query calls, for context.
 * Printed beside them: the daemon's depth-1 TOPK p50 over (echo p50 + the
 * engine's one-query time), target <= 1.5, and its depth-16 rate over the
 * lower of the echo's rate and the engine's on the daemon's batches, target
 * >= 0.75 (and over the engine's on 16-query batches).  A daemon whose
 * STATUS does not count its products (an older build) is compared with the
 * engine on 16.
 * Leaves out: ingest (sv-bench ingest).
 *
 * Options: --daemon PATH (default ../daemon/simverifyd beside this binary),
 * --dir DIR (/tmp), --requests N (per case and depth; 20000), --d-in N (784),
 * --d-out N (64), --threads N (query.threads; 2), --topk, --items N (10000),
 * --reps R (3: each case and depth measured R times, the engine alone too;
 * each ratio taken within its repetition, the median and range printed),
 * --json.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include "bench.h"
#include "parts.h" /* daemon/parts.c: the daemon's own multipart receive */
#include "sv/blas.h"
#include "sv/proto.h"
#include "sv/topk.h"

#define MAXF 8
#define N_CASES 2
#define MAX_REPS 9
#define MAX_BATCH 64         /* TOPK_CACHE_BATCH_MAX (daemon/topk_cache.h) */
#define SD_MAX 1024          /* the private state directory's path */
#define EP_MAX (SD_MAX + 64) /* ipc:// + that + a socket name */

struct cfg {
	char daemon[PATH_MAX];
	const char *dir;
	long requests, d_in, d_out, threads, items, reps;
	int topk, json;
};

/* A reply's frame sizes, captured from the daemon. */
struct shape {
	size_t n;
	size_t len[MAXF];
};

struct result {
	double p50_us, p99_us, rps;
};

/* The request id of a message (header frame: u64 at offset 8). */
static uint64_t req_id_of(zmq_msg_t *m)
{
	uint64_t id = 0;

	if (zmq_msg_size(m) >= 16)
		memcpy(&id, (const char *)zmq_msg_data(m) + 8, 8);
	return id;
}

/* ---- the echo server ---------------------------------------------------- */

struct echo {
	void *ctx;
	char ep[EP_MAX];
	struct shape sh;
	unsigned char *buf[MAXF]; /* reply frames (zeros + the daemon's header) */
	pid_t pid;
};

static void *echo_main(void *arg)
{
	struct echo *e = arg;
	void *s = zmq_socket(e->ctx, ZMQ_ROUTER);
	int linger = 0;

	zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
	zmq_bind(s, e->ep);
	for (;;) {
		struct parts p;
		int n = parts_recv(s, &p, 0);

		if (n < 2) {
			if (n > 0)
				parts_close(&p);
			break; /* ETERM (or a stray message: stop) */
		}
		/* the request id travels, as in a real reply */
		memcpy(e->buf[0] + 8, (const char *)zmq_msg_data(&p.m[1]) + 8, 8);
		zmq_msg_send(&p.m[0], s, ZMQ_SNDMORE);
		for (size_t i = 0; i < e->sh.n; i++)
			zmq_send(s, e->buf[i], e->sh.len[i], i + 1 < e->sh.n ? ZMQ_SNDMORE : 0);
		parts_close(&p);
	}
	zmq_close(s);
	return NULL;
}

/* ---- the client ---------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Send `requests` copies of req (request ids 1..N) with `depth` in flight;
 * each latency (us) goes to lat[0..requests-1], the wall time to *secs. */
static int run(void *s, struct sv_proto_msgbuf *req, long requests, long depth, double *lat,
               double *secs)
{
	uint64_t *t_send = calloc((size_t)requests + 1, sizeof(uint64_t));
	long sent = 0, got = 0;
	uint64_t t0;
	int rc = -1;

	if (t_send == NULL)
		return -1;
	t0 = bench_now_ns();
	while (got < requests) {
		struct parts p;
		uint64_t id;
		int n;

		while (sent < requests && sent - got < depth) {
			sent++;
			memcpy(req->hdr + 8, &(uint64_t){(uint64_t)sent}, 8);
			t_send[sent] = bench_now_ns();
			if (bench_send_mb(s, req) < 0)
				goto out;
		}
		n = parts_recv(s, &p, 0);
		if (n < 1)
			goto out;
		id = req_id_of(&p.m[0]);
		parts_close(&p);
		if (id < 1 || id > (uint64_t)sent || t_send[id] == 0)
			goto out;
		lat[got++] = (double)(bench_now_ns() - t_send[id]) / 1e3;
		t_send[id] = 0;
	}
	*secs = (double)(bench_now_ns() - t0) / 1e9;
	rc = 0;
out:
	free(t_send);
	return rc;
}

/* Item i's vector, as load_items sends it (a fixed generator). */
static void item_vec(const struct cfg *c, unsigned *s, float *x)
{
	for (long j = 0; j < c->d_in; j++) {
		*s = *s * 1103515245u + 12345u;
		x[j] = (float)((*s >> 8) & 0xffff) / 32768.0f - 1.0f;
	}
}

/* The engine alone: the same items in an sv_topk_cache. */
static struct sv_topk_cache *engine_new(const struct cfg *c)
{
	size_t din = (size_t)c->d_in, dout = (size_t)c->d_out;
	float *W = malloc(din * dout * sizeof(float)), *X = malloc(1024 * din * sizeof(float));
	struct sv_topk_cache *tc = NULL;
	unsigned s = 12345, w = 7;

	if (!W || !X)
		goto fail;
	for (size_t i = 0; i < din * dout; i++) {
		w = w * 1103515245u + 12345u;
		W[i] = (float)((w >> 8) & 0xffff) / 32768.0f - 1.0f;
	}
	if (sv_topk_cache_new(W, (uint32_t)din, (uint32_t)dout, 1, &tc) < 0)
		goto fail;
	for (long done = 0; done < c->items;) {
		size_t m = c->items - done < 1024 ? (size_t)(c->items - done) : 1024;
		char idb[1024][16];
		const uint8_t *ids[1024];
		size_t lens[1024];

		for (size_t i = 0; i < m; i++) {
			item_vec(c, &s, X + i * din);
			lens[i] = (size_t)snprintf(idb[i], sizeof(idb[i]), "item%ld", done + (long)i);
			ids[i] = (const uint8_t *)idb[i];
		}
		if (sv_topk_cache_add(tc, X, m, ids, lens) < 0)
			goto fail;
		done += (long)m;
	}
	free(W);
	free(X);
	return tc;
fail:
	sv_topk_cache_release(tc);
	free(W);
	free(X);
	return NULL;
}

/* The engine's time (us) for one batch of b copies of query q, as the
 * daemon asks it (raw vectors, k 10): the median of `reps` timings of
 * `calls` calls each. */
static double engine_us(struct sv_topk_cache *tc, const float *Q, int b, int reps, int calls)
{
	struct sv_topk_hit hits[MAX_BATCH * 10];
	size_t counts[MAX_BATCH];
	double t[101];

	if (reps > 101)
		reps = 101;
	for (int r = 0; r < reps; r++) {
		uint64_t t0 = bench_now_ns();

		for (int i = 0; i < calls; i++)
			sv_topk_cache_query_vec(tc, Q, (size_t)b, 10, hits, counts);
		t[r] = (double)(bench_now_ns() - t0) / (calls * 1e3);
	}
	return bench_median(t, (size_t)reps);
}

/* Products the daemon answered, by queries (STATUS topk_cache.products:
 * [[queries, products], ...]), into n[1..MAX_BATCH]; all 0 when STATUS
 * does not say (an older build). */
static void read_batches(void *adm, double n[MAX_BATCH + 1])
{
	static char js[65536];
	const char *p;
	unsigned long long cnt;
	int q, used;

	memset(n, 0, (MAX_BATCH + 1) * sizeof(double));
	if (bench_status(adm, js, sizeof(js)) < 0 || (p = strstr(js, "\"products\":[")) == NULL)
		return;
	p += strlen("\"products\":[");
	while (sscanf(p, "[%d,%llu]%n", &q, &cnt, &used) == 2) {
		if (q >= 1 && q <= MAX_BATCH)
			n[q] = (double)cnt;
		p += used;
		p += *p == ',';
	}
}

/* The engine alone in the depth-16 TOPK rounds: after each daemon round
 * it does that round's work, the products the daemon answered (read from
 * STATUS before and after the round; the daemon counts a product before
 * it replies), on one thread, timed as a whole, as the daemon's rate is. */
struct engine_rounds {
	struct sv_topk_cache *tc;
	const float *Q;                 /* MAX_BATCH copies of the query vector */
	void *adm;                      /* the daemon's admin socket */
	double nb[MAX_BATCH + 1];       /* the counts at the last read */
	double queries, products, secs; /* the engine's, over the rounds */
};

static void engine_sync(struct engine_rounds *e)
{
	read_batches(e->adm, e->nb);
}

/* After a daemon round: its products, run on the engine alone. */
static void engine_round(struct engine_rounds *e)
{
	struct sv_topk_hit hits[MAX_BATCH * 10];
	size_t counts[MAX_BATCH];
	double before[MAX_BATCH + 1];
	uint64_t t0;

	memcpy(before, e->nb, sizeof(before));
	engine_sync(e);
	t0 = bench_now_ns();
	for (int b = 1; b <= 16; b++)
		for (double i = before[b]; i < e->nb[b]; i++)
			sv_topk_cache_query_vec(e->tc, e->Q, (size_t)b, 10, hits, counts);
	e->secs += (double)(bench_now_ns() - t0) / 1e9;
	for (int b = 1; b <= 16; b++) {
		e->queries += (e->nb[b] - before[b]) * b;
		e->products += e->nb[b] - before[b];
	}
}

/* The machine is shared and noisy: echo and daemon take turns in ROUNDS
 * rounds of requests/ROUNDS each, so a slow spell hits both alike; with
 * eng, the engine alone takes its turn after each daemon round too. */
#define ROUNDS 5

static int compare(void *echo, void *dmn, struct sv_proto_msgbuf *req, long requests, long depth,
                   struct result out[2], struct engine_rounds *eng)
{
	long per = requests / ROUNDS > 0 ? requests / ROUNDS : 1, n = per * ROUNDS;
	double *lat[2] = {malloc((size_t)n * sizeof(double)), malloc((size_t)n * sizeof(double))};
	double secs[2] = {0, 0};
	void *s[2] = {echo, dmn};
	int rc = lat[0] && lat[1] ? 0 : -1;

	for (long r = 0; rc == 0 && r < ROUNDS; r++)
		for (int k = 0; rc == 0 && k < 2; k++) {
			double t = 0;

			rc = run(s[k], req, per, depth, lat[k] + r * per, &t);
			secs[k] += t;
			if (eng != NULL && k == 1 && rc == 0)
				engine_round(eng);
		}
	for (int k = 0; rc == 0 && k < 2; k++) {
		qsort(lat[k], (size_t)n, sizeof(double), cmp_double);
		out[k].p50_us = lat[k][n / 2];
		out[k].p99_us = lat[k][(size_t)((double)n * 0.99)];
		out[k].rps = (double)n / secs[k];
	}
	free(lat[0]);
	free(lat[1]);
	return rc;
}

/* One request, its reply's shape; status OK required. */
static int capture(void *s, struct sv_proto_msgbuf *req, struct shape *sh, unsigned char **hdr0)
{
	struct parts p;
	int n;

	memcpy(req->hdr + 8, &(uint64_t){1}, 8);
	if (bench_send_mb(s, req) < 0 || (n = parts_recv(s, &p, 0)) < 1)
		return -1;
	if (n > MAXF) {
		parts_close(&p);
		return -1;
	}
	sh->n = (size_t)n;
	for (int i = 0; i < n; i++)
		sh->len[i] = zmq_msg_size(&p.m[i]);
	*hdr0 = malloc(sh->len[0]);
	if (*hdr0)
		memcpy(*hdr0, zmq_msg_data(&p.m[0]), sh->len[0]);
	/* status u16 at offset 6 */
	n = sh->len[0] >= 8 && ((const unsigned char *)zmq_msg_data(&p.m[0]))[6] == 0 ? 0 : -1;
	parts_close(&p);
	return *hdr0 ? n : -1;
}

/* ---- main ---------------------------------------------------------------- */

static int parse(int argc, char **argv, struct cfg *c)
{
	memset(c, 0, sizeof(*c));
	c->dir = "/tmp";
	c->requests = 20000;
	c->d_in = 784;
	c->d_out = 64;
	c->threads = 2;
	c->reps = 3;
	c->items = 10000;
	bench_daemon_default_path(c->daemon, sizeof(c->daemon));
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--json")) {
			c->json = 1;
			continue;
		}
		if (!strcmp(a, "--topk")) {
			c->topk = 1;
			continue;
		}
		if (!strcmp(a, "--help")) {
			printf(
			    "usage: sv-bench query [--daemon PATH] [--dir DIR] [--requests N] "
			    "[--d-in N] [--d-out N] [--threads N] [--topk] [--items N] [--reps R] "
			    "[--json]\n");
			return 1;
		}
		if (v == NULL)
			return -1;
		i++;
		if (!strcmp(a, "--daemon"))
			snprintf(c->daemon, sizeof(c->daemon), "%s", v);
		else if (!strcmp(a, "--dir"))
			c->dir = v;
		else if (!strcmp(a, "--requests") &&
		         bench_parse_long(v, 100, 100000000, &c->requests) == 0)
			;
		else if (!strcmp(a, "--d-in") && bench_parse_long(v, 1, 65536, &c->d_in) == 0)
			;
		else if (!strcmp(a, "--d-out") && bench_parse_long(v, 1, 65536, &c->d_out) == 0)
			;
		else if (!strcmp(a, "--threads") && bench_parse_long(v, 1, 256, &c->threads) == 0)
			;
		else if (!strcmp(a, "--reps") && bench_parse_long(v, 1, MAX_REPS, &c->reps) == 0)
			;
		else if (!strcmp(a, "--items") && bench_parse_long(v, 1, 10000000, &c->items) == 0)
			;
		else
			return -1;
	}
	return access(c->daemon, X_OK) == 0 ? 0 : -2;
}

static pid_t start_daemon(const struct cfg *c, const char *sd)
{
	char o1[64], o2[64], o3[64];
	const char *const ovr[] = {o1, o2, o3, "store.sync=none", "store.map_size=256MiB",
	                           "checkpoint.every_s=0"};

	snprintf(o1, sizeof(o1), "model.d_in=%ld", c->d_in);
	snprintf(o2, sizeof(o2), "model.d_out=%ld", c->d_out);
	snprintf(o3, sizeof(o3), "query.threads=%ld", c->threads);
	return bench_daemon_start(c->daemon, sd, ovr, sizeof(ovr) / sizeof(ovr[0]));
}

/* Store c->items random items (acked, 64 in flight) and wait until the
 * projection cache has been built. */
static int load_items(const struct cfg *c, void *ctx, const char *sd, void *adm)
{
	char ep[EP_MAX], id[32], js[16384];
	struct sv_proto_msgbuf mb;
	float *x = malloc((size_t)c->d_in * sizeof(float));
	unsigned s = 12345;
	long sent = 0, got = 0;
	void *in;
	int rc = 0;

	if (x == NULL)
		return -1;
	snprintf(ep, sizeof(ep), "ipc://%s/ingest-acked.sock", sd);
	in = bench_sock(ctx, ZMQ_DEALER, ep);
	sv_proto_msgbuf_init(&mb);
	while (got < c->items && rc == 0) {
		while (sent < c->items && sent - got < 64) {
			item_vec(c, &s, x);
			snprintf(id, sizeof(id), "item%ld", sent);
			if (sv_proto_encode_item_put(&mb, (uint64_t)sent, id, strlen(id), x,
			                             (uint32_t)c->d_in) < 0 ||
			    bench_send_mb(in, &mb) < 0)
				rc = -1;
			sent++;
		}
		{
			struct parts p;
			int n = parts_recv(in, &p, 0);

			if (n < 1)
				rc = -1;
			else
				parts_close(&p);
			got++;
		}
	}
	sv_proto_msgbuf_free(&mb);
	zmq_close(in);
	free(x);
	for (int tries = 0; rc == 0 && tries < 3000; tries++) {
		if (bench_status(adm, js, sizeof(js)) == 0 && bench_json_u64(js, "rebuilds") > 0)
			return 0;
		usleep(10000);
	}
	return -1;
}

int bench_query(int argc, char **argv)
{
	static const long depths[2] = {1, 16};
	static const char *const case_names[N_CASES] = {"score", "topk"};
	struct cfg c;
	struct bench_json j;
	struct result res[N_CASES][2][MAX_REPS][2]; /* case, depth, repetition, echo/daemon */
	double eng[MAX_REPS][2];                     /* the engine: one query, 16 (us) */
	double mix_qps[MAX_REPS], mix_mean[MAX_REPS]; /* the engine on the daemon's batches */
	struct engine_rounds er;
	struct sv_topk_cache *tc = NULL;
	char sd[SD_MAX], ep[EP_MAX], js[16384];
	struct sv_proto_msgbuf req[N_CASES];
	float *va = NULL, *Q16 = NULL;
	void *ctx = NULL, *adm = NULL, *q = NULL;
	pid_t pid = -1;
	int rc = parse(argc, argv, &c), st, ok[N_CASES] = {0, 0};

	if (rc == 1)
		return 0;
	if (rc == -2) {
		fprintf(stderr, "sv-bench query: no simverifyd at %s (use --daemon PATH)\n",
		        c.daemon);
		return 2;
	}
	if (rc < 0) {
		fprintf(stderr, "sv-bench query: bad arguments (see --help)\n");
		return 2;
	}
	if (strlen(c.dir) > SD_MAX - 40) {
		fprintf(stderr, "sv-bench query: --dir path too long\n");
		return 2;
	}
	snprintf(sd, sizeof(sd), "%s/svbench-query-%d", c.dir, (int)getpid());
	if (mkdir(sd, 0700) < 0) {
		fprintf(stderr, "sv-bench query: cannot make %s: %s\n", sd, strerror(errno));
		return 1;
	}
	va = malloc(2 * (size_t)c.d_in * sizeof(float));
	if (va == NULL)
		return 1;
	for (long i = 0; i < 2 * c.d_in; i++)
		va[i] = (float)((i * 7919) % 1000) / 500.0f - 1.0f;
	for (int k = 0; k < N_CASES; k++)
		sv_proto_msgbuf_init(&req[k]);
	{
		struct sv_proto_pair p;
		struct sv_proto_side s;

		memset(&p, 0, sizeof(p));
		p.a.vec = va;
		p.b.vec = va + c.d_in;
		sv_proto_encode_pairs(&req[0], SV_PROTO_VERB_SCORE, 1, &p, 1, (uint32_t)c.d_in,
		                      NULL);
		memset(&s, 0, sizeof(s));
		s.vec = va;
		sv_proto_encode_topk(&req[1], 1, &s, 1, (uint32_t)c.d_in, 10);
	}

	pid = start_daemon(&c, sd);
	ctx = zmq_ctx_new();
	adm = bench_daemon_admin(ctx, sd, js, sizeof(js));
	if (adm == NULL) {
		fprintf(stderr, "sv-bench query: the daemon did not start (%s)\n", c.daemon);
		rc = 1;
		goto out;
	}
	if (c.topk && load_items(&c, ctx, sd, adm) < 0) {
		fprintf(stderr, "sv-bench query: loading %ld items failed\n", c.items);
		rc = 1;
		goto out;
	}
	if (c.topk) {
		/* one BLAS thread, as the daemon under test runs its products */
		sv_blas_set_threads(1);
		tc = engine_new(&c);
		Q16 = malloc((size_t)MAX_BATCH * (size_t)c.d_in * sizeof(float));
		if (tc == NULL || Q16 == NULL) {
			fprintf(stderr, "sv-bench query: no memory for the engine alone\n");
			rc = 1;
			goto out;
		}
		for (int i = 0; i < MAX_BATCH; i++)
			memcpy(Q16 + (size_t)i * (size_t)c.d_in, va, (size_t)c.d_in * sizeof(float));
	}
	snprintf(ep, sizeof(ep), "ipc://%s/query.sock", sd);
	q = bench_sock(ctx, ZMQ_DEALER, ep);
	for (int k = 0; k < N_CASES; k++) {
		struct echo e;
		void *es;

		if (k == 1 && !c.topk)
			continue;
		memset(&e, 0, sizeof(e));
		if (capture(q, &req[k], &e.sh, &e.buf[0]) < 0) {
			fprintf(stderr, "sv-bench query: the daemon refused the %s request\n",
			        case_names[k]);
			rc = 1;
			goto out;
		}
		for (size_t i = 1; i < e.sh.n; i++)
			e.buf[i] = calloc(e.sh.len[i] ? e.sh.len[i] : 1, 1);
		snprintf(e.ep, sizeof(e.ep), "ipc://%s/echo%d.sock", sd, k);
		/* a process of its own, as the daemon is */
		e.pid = fork();
		if (e.pid == 0) {
			e.ctx = zmq_ctx_new();
			echo_main(&e);
			_exit(0);
		}
		es = bench_sock(ctx, ZMQ_DEALER, e.ep);
		/* warm both paths, then measure echo and daemon in turns */
		compare(es, q, &req[k], c.requests / 10 + ROUNDS, 16, res[k][0][0], NULL);
		for (long r = 0; rc == 0 && r < c.reps; r++) {
			fprintf(stderr, "sv-bench query: %s, repetition %ld of %ld\n", case_names[k],
			        r + 1, c.reps);
			for (int dpt = 0; dpt < 2; dpt++) {
				int with = k == 1 && dpt == 1;

				if (with) {
					memset(&er, 0, sizeof(er));
					er.tc = tc;
					er.Q = Q16;
					er.adm = adm;
					engine_sync(&er);
				}
				if (compare(es, q, &req[k], c.requests, depths[dpt], res[k][dpt][r],
				            with ? &er : NULL) < 0) {
					fprintf(stderr, "sv-bench query: %s requests failed\n",
					        case_names[k]);
					rc = 1;
				}
			}
			if (k == 1 && rc == 0) {
				eng[r][0] = engine_us(tc, Q16, 1, 101, 20);
				eng[r][1] = engine_us(tc, Q16, 16, 101, 5);
				mix_qps[r] = er.secs > 0 ? er.queries / er.secs : 0;
				mix_mean[r] = er.products > 0 ? er.queries / er.products : 0;
				if (mix_qps[r] <= 0) {
					/* a daemon that does not tell (an older build): the
					 * engine on 16-query batches, mean printed as 0 */
					mix_qps[r] = 16e6 / eng[r][1];
				}
			}
		}
		zmq_close(es);
		kill(e.pid, SIGKILL);
		waitpid(e.pid, &st, 0);
		for (size_t i = 0; i < e.sh.n; i++)
			free(e.buf[i]);
		if (rc != 0)
			goto out;
		ok[k] = 1;
	}
	if (c.json) {
		bench_json_begin(&j);
		bench_json_int(&j, "reps", c.reps);
	} else {
		printf("sv-bench query: d_in %ld, d_out %ld, query.threads %ld, %ld requests per "
		       "row%s; median of %ld [range]\n%-6s %5s | %9s %9s | %9s %9s | %-17s %-17s "
		       "%s\n",
		       c.d_in, c.d_out, c.threads, c.requests,
		       c.topk ? "; topk: k=10 of one vector over the stored items" : "", c.reps,
		       "case", "depth", "echo p50", "req/s", "dmn p50", "req/s", "p50 x", "p99 x",
		       "rps x");
	}
	for (int k = 0; k < N_CASES; k++) {
		for (int dpt = 0; ok[k] && dpt < 2; dpt++) {
			double f[7][MAX_REPS];
			struct bench_stat fs[7];
			static const char *const fk[7] = {"echo_p50_us", "daemon_p50_us",
			                                  "echo_rps",    "daemon_rps",
			                                  "p50_ratio",   "p99_ratio",
			                                  "rps_ratio"};
			char key[128];

			for (long r = 0; r < c.reps; r++) {
				const struct result *e = &res[k][dpt][r][0], *d = &res[k][dpt][r][1];
				f[0][r] = e->p50_us;
				f[1][r] = d->p50_us;
				f[2][r] = e->rps;
				f[3][r] = d->rps;
				f[4][r] = d->p50_us / e->p50_us;
				f[5][r] = d->p99_us / e->p99_us;
				f[6][r] = d->rps / e->rps;
			}
			for (int m = 0; m < 7; m++)
				bench_stat_of(f[m], (size_t)c.reps, &fs[m]);
			if (!c.json) {
				printf("%-6s %5ld | %9.1f %9.0f | %9.1f %9.0f | %5.2f [%4.2f-%4.2f] "
				       "%5.2f [%4.2f-%4.2f] %5.2f [%4.2f-%4.2f]\n",
				       case_names[k], depths[dpt], fs[0].med, fs[2].med, fs[1].med,
				       fs[3].med, fs[4].med, fs[4].lo, fs[4].hi, fs[5].med, fs[5].lo,
				       fs[5].hi, fs[6].med, fs[6].lo, fs[6].hi);
				continue;
			}
			for (int m = 0; m < 7; m++) {
				snprintf(key, sizeof(key), "%s_d%ld_%s", case_names[k], depths[dpt],
				         fk[m]);
				bench_json_num(&j, key, fs[m].med);
			}
		}
	}
	if (c.topk && ok[1]) {
		double b1[MAX_REPS], b16[MAX_REPS], bfull[MAX_REPS], one[MAX_REPS], bat[MAX_REPS];
		double mq[MAX_REPS], mm[MAX_REPS];
		struct bench_stat s1, s16, sf, so, sb, smq, smm;

		for (long r = 0; r < c.reps; r++) {
			const struct result *e1 = &res[1][0][r][0], *d1 = &res[1][0][r][1];
			const struct result *e16 = &res[1][1][r][0], *d16 = &res[1][1][r][1];
			double eng16 = 16e6 / eng[r][1];

			one[r] = eng[r][0];
			bat[r] = eng[r][1];
			mq[r] = mix_qps[r];
			mm[r] = mix_mean[r];
			b1[r] = d1->p50_us / (e1->p50_us + eng[r][0]);
			b16[r] = d16->rps / (mix_qps[r] < e16->rps ? mix_qps[r] : e16->rps);
			bfull[r] = d16->rps / (eng16 < e16->rps ? eng16 : e16->rps);
		}
		bench_stat_of(b1, (size_t)c.reps, &s1);
		bench_stat_of(b16, (size_t)c.reps, &s16);
		bench_stat_of(bfull, (size_t)c.reps, &sf);
		bench_stat_of(one, (size_t)c.reps, &so);
		bench_stat_of(bat, (size_t)c.reps, &sb);
		bench_stat_of(mq, (size_t)c.reps, &smq);
		bench_stat_of(mm, (size_t)c.reps, &smm);
		if (c.json) {
			bench_json_num(&j, "topk_engine_one_us", so.med);
			bench_json_num(&j, "topk_engine_batch16_us", sb.med);
			bench_json_num(&j, "topk_daemon_d16_mean_batch", smm.med);
			bench_json_num(&j, "topk_engine_daemon_batches_qps", smq.med);
			bench_json_num(&j, "topk_d1_p50_over_echo_plus_engine", s1.med);
			bench_json_num(&j, "topk_d16_rps_over_bound", s16.med);
			bench_json_num(&j, "topk_d16_rps_over_engine16_bound", sf.med);
		} else {
			printf("topk engine alone (sv_topk_cache, the same items, one BLAS thread): one "
			       "query %.1f us, 16 queries %.1f us (%.0f queries/s); on the daemon's "
			       "depth-16 batches (mean %.1f queries) %.0f queries/s\n",
			       so.med, sb.med, 16e6 / sb.med, smm.med, smq.med);
			printf("topk depth 1: daemon p50 / (echo p50 + engine) = %.2f [%.2f-%.2f] "
			       "(target <= 1.5)\ntopk depth 16: daemon req/s / min(echo, engine on "
			       "the daemon's batches) = %.2f [%.2f-%.2f] (target >= 0.75); over "
			       "min(echo, engine on 16-query batches) %.2f [%.2f-%.2f]\n",
			       s1.med, s1.lo, s1.hi, s16.med, s16.lo, s16.hi, sf.med, sf.lo, sf.hi);
		}
	}
	if (c.json)
		bench_json_end(&j);
	else
		printf("target: p50 x <= 1.30 (daemon p50 within 1.3x of the raw echo)\n");
	rc = 0;
out:
	if (q)
		zmq_close(q);
	if (adm)
		zmq_close(adm);
	if (ctx)
		zmq_ctx_term(ctx);
	bench_daemon_stop(pid);
	sv_topk_cache_release(tc);
	free(Q16);
	for (int k = 0; k < N_CASES; k++)
		sv_proto_msgbuf_free(&req[k]);
	free(va);
	bench_rm_tree(sd);
	return rc;
}
