/* sv-clusterbench - pairs/s end to end through JetStream: a publisher ->
 * simverifyd's ZeroMQ acked ingest (the gateway) -> the pair stream (R1, R3)
 * -> two clustered trainers (a leader and a standby in lockstep) committed
 * and trained; beside raw JetStream publish and pull-consume of the same
 * messages (jsraw.c), and the same daemon alone (cluster.role off), all in
 * the same run; plus how far each trainer lags under that load.
 *
 *   sv-clusterbench [--urls URLS] [--pairs 20000] [--per-msg 64] [--d-in 784,64]
 *                   [--window 16] [--replicas 1,3] [--standby 1] [--reps 3] [--sync full]
 *                   [--watch ADMIN_ENDPOINT]... [--daemon PATH] [--dir /tmp]
 *
 * Without --urls it starts a 3-node nats-server cluster on 127.0.0.1 in a
 * temp directory under --dir (tests/cluster/nats-cluster.sh) and stops it at
 * the end.  For each vector size (--d-in: inline vectors, unique per pair,
 * --per-msg pairs to a PAIR_BATCH message with a client id and seq, built
 * once with libsimverify's codec and flattened as the gateway publishes
 * them) and each repetition:
 *   alone:  simverifyd with cluster.role off on a fresh state dir; the
 *           messages go to its acked ingest with --window in flight; timed
 *           from the first send until STATUS says every pair is trained and
 *           applied_seq == last_seq;
 * and for each replica count R:
 *   raw:    jsraw_run on a fresh stream of R replicas: the same flattened
 *           messages published async with acks (msg/s), then pulled and
 *           acked (msg/s);
 *   e2e:    trainer a (cluster.role trainer, waits until it leads) and
 *           trainer b (the standby) on fresh state dirs and a fresh stream
 *           of R replicas; the same messages to a's acked ingest with
 *           --window in flight, resent when answered BUSY; timed until both
 *           trainers report every pair trained and applied_seq == last_seq.
 *           With --standby 0, trainer a alone (each trainer of a deployment
 *           on its own machine: here the pair shares two cores and a disk).
 *           Meanwhile a sampler polls the stream's last sequence and the
 *           STATUS of every admin socket (a, b and each --watch) every 20
 *           ms: messages behind the stream (last - cluster.applied_stream_seq),
 *           behind a (the leader), and the feed's cluster.lag.
 * Prints, per size and R, the median of the repetitions [range]: end-to-end
 * pairs/s (and the rate at which the gateway had acked them all), raw
 * publish and consume (msg/s and pairs/s), e2e / min(raw publish, raw
 * consume) (target >= 0.70), e2e / alone; where the time goes: pairs per
 * group commit, the cores a, b and the nats-servers kept busy end to end
 * and their CPU microseconds a pair beside the daemon alone's and the
 * nats-servers' in the raw phases (from /proc; the servers only when this
 * run started them); and each node's lag over all samples of all
 * repetitions (median, max).  The raw phases also time this process's own
 * CPU (the raw client's).  When the servers are its own, it prints the
 * bound of one shared machine: its cores over the CPU a pair costs in raw
 * publish, in raw consume (servers and client in each) and in the daemon
 * alone, the three things an end-to-end pair needs done here, and e2e over
 * that bound.  Every ratio is taken within its repetition.
 * A query replica r runs too, and during the load an ITEM_PUT goes to a's
 * gateway every 50 ms: its ack names its pair-stream sequence, and the
 * bench times how long r takes to show that sequence (STATUS
 * cluster.items_seq): the replica's lag behind a write, under load.
 * Leaves out: queries, failover (the cluster test does those).
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <fcntl.h>
#include <zmq.h>

#include "bench.h"
#include "jsraw.h"
#include "parts.h"
#include "sv/proto.h"

#define MAX_REPS 9
#define MAX_LIST 4
#define MAX_NODES 8   /* a, b and up to 6 --watch sockets */
#define SAMPLE_MS 20
#define JSON_CAP 65536

struct cfg {
	const char *urls, *daemon, *nats_sh, *dir, *sync;
	const char *nats; /* the cluster's directory when started here, else NULL */
	long pairs, per_msg, window, reps;
	long standby; /* 1: trainer b beside a (the lockstep pair); 0: a alone */
	long dims[MAX_LIST], replicas[MAX_LIST];
	int ndims, nreplicas;
	const char *watch[MAX_NODES - 2];
	int nwatch;
};

/* The messages of one size, flattened as the gateway publishes them. */
struct msgset {
	size_t n;
	char *buf;
	struct jsraw_msg *m; /* into buf */
};

/* One node's lag samples, in messages: behind the stream's last sequence,
 * behind the leader's applied sequence, the feed's pending count. */
enum { BEHIND_STREAM, BEHIND_LEAD, PENDING, N_SERIES };
struct lag {
	double *v[N_SERIES];
	size_t n, cap;
};

/* The figures of every repetition for one (size, R). */
struct figs {
	double e2e[MAX_REPS], pub[MAX_REPS], sub[MAX_REPS], ratio[MAX_REPS], alone[MAX_REPS];
	double acked[MAX_REPS]; /* pairs/s until the gateway had acked the last message */
	double per_commit[3][MAX_REPS]; /* pairs per group commit: alone, a, b */
	/* CPU seconds over the wall time: a, b, the nats-servers (end to end),
	 * the daemon alone */
	double cpu[4][MAX_REPS];
	/* CPU us a pair in the raw phases: the nats-servers' in publish and in
	 * consume, then this process's (the raw client's) in each */
	double raw_us[4][MAX_REPS];
	struct lag lag[MAX_NODES]; /* every node's samples, over every repetition */
	long busy;
	double *vis;      /* ms from a's ack of an item write to replica r having it */
	size_t nvis, capvis;
	long vis_missed;  /* writes r did not show within VIS_WAIT_MS */
};

/* ---- the messages ---- */

static void msgset_free(struct msgset *s)
{
	free(s->buf);
	free(s->m);
	memset(s, 0, sizeof *s);
}

/* cfg->pairs / per_msg PAIR_BATCH messages of d_in-float inline vectors,
 * every vector distinct (the store keeps inline vectors content-addressed:
 * repeats would be cheaper than real traffic). */
static int msgset_build(struct msgset *s, const struct cfg *c, long d_in)
{
	struct sv_proto_msgbuf mb;
	struct sv_proto_pair *pr = calloc((size_t)c->per_msg, sizeof *pr);
	float *v = malloc((size_t)(2 * c->per_msg * d_in) * sizeof *v);
	size_t n = (size_t)(c->pairs / c->per_msg), off = 0, cap = 0;
	uint64_t counter = 0;
	int rc = -ENOMEM;

	memset(s, 0, sizeof *s);
	sv_proto_msgbuf_init(&mb);
	s->m = calloc(n, sizeof *s->m);
	if (pr == NULL || v == NULL || s->m == NULL)
		goto out;
	srand(17);
	for (long i = 0; i < 2 * c->per_msg * d_in; i++)
		v[i] = (float)rand() / (float)RAND_MAX - 0.5f;
	for (size_t i = 0; i < n; i++) {
		struct sv_proto_client cl = {"bench", 5, (uint64_t)i * (uint64_t)c->per_msg + 1};
		size_t len;

		for (long k = 0; k < c->per_msg; k++) {
			float *a = v + (size_t)(2 * k * d_in), *b = a + d_in;

			/* the counter in two elements, each below SV_PROTO_MAX_ABS */
			a[0] = (float)(counter % 65536);
			a[1] = (float)(counter++ / 65536);
			b[0] = (float)(counter % 65536);
			b[1] = (float)(counter++ / 65536);
			pr[k] = (struct sv_proto_pair){.label = (uint8_t)(k & 1)};
			pr[k].a.vec = a;
			pr[k].b.vec = b;
		}
		if (sv_proto_encode_pairs(&mb, SV_PROTO_VERB_PAIR_BATCH, (uint64_t)i + 1, pr,
		                          (size_t)c->per_msg, (uint32_t)d_in, &cl) < 0) {
			rc = -EINVAL;
			goto out;
		}
		len = sv_proto_msgbuf_flatten(&mb, NULL, 0);
		if (cap == 0) { /* every message has the same size */
			cap = len * n;
			s->buf = malloc(cap);
			if (s->buf == NULL)
				goto out;
		}
		if (off + len > cap) {
			rc = -EINVAL;
			goto out;
		}
		sv_proto_msgbuf_flatten(&mb, s->buf + off, len);
		s->m[i] = (struct jsraw_msg){.len = len};
		off += len;
	}
	off = 0;
	for (size_t i = 0; i < n; i++) {
		s->m[i].data = s->buf + off;
		off += s->m[i].len;
	}
	s->n = n;
	rc = 0;
out:
	sv_proto_msgbuf_free(&mb);
	free(pr);
	free(v);
	if (rc < 0)
		msgset_free(s);
	return rc;
}

/* ---- CPU seconds of a process (all its threads), from /proc ---- */

static double proc_cpu(pid_t pid)
{
	char path[64], buf[2048], *p;
	unsigned long ut = 0, st = 0;
	FILE *f;
	size_t n;

	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (f == NULL)
		return 0;
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')'); /* the name may hold spaces; fields 14, 15 follow */
	if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut,
	                        &st) != 2)
		return 0;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* The nats-server pids of a cluster started here (nats-cluster.sh leaves
 * DIR/n{1,2,3}.pid); how many were read. */
static int nats_pids(const char *nats, pid_t pids[3])
{
	int n = 0;

	for (int i = 1; nats && i <= 3; i++) {
		char path[PATH_MAX + 16];
		FILE *f;
		int v;

		snprintf(path, sizeof path, "%s/n%d.pid", nats, i);
		f = fopen(path, "r");
		if (f == NULL)
			continue;
		if (fscanf(f, "%d", &v) == 1)
			pids[n++] = (pid_t)v;
		fclose(f);
	}
	return n;
}

/* The nats-servers' CPU seconds, and this process's (the raw client's), at
 * each phase of a raw run (jsraw_hook). */
struct raw_cpu {
	const char *nats;
	double at[3], self[3];
};

static void raw_cpu_take(void *ctx, int phase)
{
	struct raw_cpu *rc = ctx;
	pid_t pids[3];
	int n = nats_pids(rc->nats, pids);

	rc->at[phase] = 0;
	for (int i = 0; i < n; i++)
		rc->at[phase] += proc_cpu(pids[i]);
	rc->self[phase] = proc_cpu(getpid());
}

/* ---- a private simverifyd ---- */

/* Fork and exec the daemon on state dir sd with the overrides, as
 * bench_daemon_start does, but with its stdout and stderr in sd.log (kept
 * for a failed run: a cluster node says there why it did not come up).
 * The pid, or -1. */
static pid_t daemon_start(const struct cfg *c, const char *sd, const char *const *ovr, size_t n)
{
	const char *head[] = {c->daemon, "--state-dir", sd, "--allow-root"}, *argv[4 + 2 * 24 + 1];
	char log[PATH_MAX + 8];
	size_t a = 0;
	pid_t pid;

	if (n > 24)
		return -1;
	while (a < 4) {
		argv[a] = head[a];
		a++;
	}
	for (size_t i = 0; i < n; i++) {
		argv[a++] = "-o";
		argv[a++] = ovr[i];
	}
	argv[a] = NULL;
	snprintf(log, sizeof log, "%s.log", sd);
	pid = fork();
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execv(c->daemon, (char *const *)argv);
		_exit(127);
	}
	return pid;
}

struct node {
	char sd[PATH_MAX];
	pid_t pid;
	void *adm;
	uint64_t base;    /* pairs_seen before the timed stream */
	long commits;     /* group commits before it, then during it */
	double t_done;
};

/* Start one daemon (cluster name `name`, or role off when name is NULL) on
 * dir/name and wait until it answers STATUS with "role":"<want>" (any role
 * when want is NULL; want "replica" starts a query replica, else a
 * trainer).  0, or -1 (logged; the daemon is stopped). */
static int node_start(struct node *nd, void *ctx, const struct cfg *c, const char *dir,
                      const char *name, long d_in, const char *stream, long replicas,
                      const char *want)
{
	int replica = want != NULL && strcmp(want, "replica") == 0;
	char o[10][PATH_MAX], js[JSON_CAP];
	const char *ovr[16];
	size_t n = 0;

	memset(nd, 0, sizeof *nd);
	nd->pid = -1;
	snprintf(nd->sd, sizeof nd->sd, "%s/%s", dir, name ? name : "alone");
	snprintf(o[0], sizeof o[0], "model.d_in=%ld", d_in);
	snprintf(o[1], sizeof o[1], "store.sync=%s", c->sync);
	snprintf(o[2], sizeof o[2], "limits.max_batch_pairs=%ld",
	         c->per_msg > 4096 ? c->per_msg : 4096);
	for (int i = 0; i < 3; i++)
		ovr[n++] = o[i];
	ovr[n++] = "train.max_wait_ms=10ms";
	ovr[n++] = "checkpoint.every_s=0";
	ovr[n++] = "endpoints.http=";
	ovr[n++] = "log.level=notice";
	if (name != NULL) {
		snprintf(o[3], sizeof o[3], "cluster.urls=%s", c->urls);
		snprintf(o[4], sizeof o[4], "cluster.name=%s", name);
		snprintf(o[5], sizeof o[5], "cluster.stream=%s", stream);
		snprintf(o[6], sizeof o[6], "cluster.replicas=%ld", replicas);
		for (int i = 3; i < 7; i++)
			ovr[n++] = o[i];
		ovr[n++] = replica ? "cluster.role=replica" : "cluster.role=trainer";
	}
	nd->pid = daemon_start(c, nd->sd, ovr, n);
	if (nd->pid < 0) {
		fprintf(stderr, "sv-clusterbench: cannot start %s\n", c->daemon);
		return -1;
	}
	nd->adm = bench_daemon_admin(ctx, nd->sd, js, sizeof js);
	for (int tries = 0; nd->adm && want && tries < 600; tries++) {
		char role[48];

		snprintf(role, sizeof role, "\"role\":\"%s\"", want);
		if (strstr(js, role))
			return 0;
		usleep(50000);
		if (bench_status(nd->adm, js, sizeof js) < 0)
			break;
	}
	if (nd->adm && !want)
		return 0;
	fprintf(stderr, "sv-clusterbench: %s did not answer%s%s within 30 s; see %s.log\n",
	        nd->sd, want ? " as " : "", want ? want : "", nd->sd);
	return -1;
}

static void node_stop(struct node *nd)
{
	if (nd->adm)
		zmq_close(nd->adm);
	nd->adm = NULL;
	bench_daemon_stop(nd->pid);
	nd->pid = -1;
}

/* Note where node nd stands before the timed stream; 0 or -1. */
static int node_mark(struct node *nd)
{
	char js[JSON_CAP];

	if (bench_status(nd->adm, js, sizeof js) < 0)
		return -1;
	nd->base = (uint64_t)bench_json_u64(js, "pairs_seen");
	nd->commits = bench_json_u64(js, "commits");
	return 0;
}

/* ---- the publisher ---- */

static int send_flat(void *s, const struct jsraw_msg *m)
{
	struct sv_proto_frame fr[SV_PROTO_MAX_FRAMES];
	long n = sv_proto_unflatten(m->data, m->len, fr, SV_PROTO_MAX_FRAMES);

	for (long i = 0; i < n; i++)
		if (zmq_send(s, fr[i].data, fr[i].len, i + 1 < n ? ZMQ_SNDMORE : 0) < 0)
			return -1;
	return n > 0 ? 0 : -1;
}

/* Every message of s to the acked ingest socket `in` (DEALER), `window` in
 * flight; a BUSY answer (no JetStream ack) is resent and counted in *busy.
 * 0 once each is answered OK or DUPLICATE, else -1 (logged). */
static int publish(void *in, const struct msgset *s, long window, long *busy)
{
	struct sv_proto_limits any = {0};
	size_t next = 0, done = 0, inflight = 0;

	while (done < s->n) {
		struct sv_proto_reply r;
		struct sv_proto_error err;
		struct parts p;
		uint64_t req;

		while (next < s->n && inflight < (size_t)window) {
			if (send_flat(in, &s->m[next++]) < 0) {
				fprintf(stderr, "sv-clusterbench: send: %s\n", zmq_strerror(zmq_errno()));
				return -1;
			}
			inflight++;
		}
		if (parts_recv(in, &p, 0) <= 0) {
			fprintf(stderr, "sv-clusterbench: no answer from the ingest socket in 20 s\n");
			return -1;
		}
		if (sv_proto_decode_reply(p.fr, (size_t)p.n, &any, &r, &err) < 0) {
			parts_close(&p);
			fprintf(stderr, "sv-clusterbench: a malformed answer: %s\n", err.msg);
			return -1;
		}
		req = r.hdr.request_id;
		parts_close(&p);
		if (req < 1 || req > s->n) {
			fprintf(stderr, "sv-clusterbench: an answer to request %" PRIu64 "\n", req);
			return -1;
		}
		if (r.status == SV_PROTO_STATUS_OK || r.status == SV_PROTO_STATUS_DUPLICATE) {
			done++;
			inflight--;
		} else if (r.status == SV_PROTO_STATUS_BUSY) {
			(*busy)++;
			if (send_flat(in, &s->m[req - 1]) < 0)
				return -1;
		} else {
			fprintf(stderr, "sv-clusterbench: message %" PRIu64 " answered %s: %.*s\n", req,
			        sv_proto_status_name(r.status), (int)r.msg_len, r.msg ? r.msg : "");
			return -1;
		}
	}
	return 0;
}

/* Wait until every node of nd[0..n) has trained base + pairs pairs and
 * applied its whole log; each node's t_done is set when it gets there.
 * 0, or -1 when one made no progress for 60 s (logged). */
static int wait_applied(struct node *nd, int n, long pairs)
{
	char js[JSON_CAP];
	long seen[MAX_NODES] = {0};
	double moved = jsraw_now();

	for (int left = n; left > 0;) {
		left = 0;
		for (int i = 0; i < n; i++) {
			long now, applied, last;

			if (nd[i].t_done > 0)
				continue;
			if (bench_status(nd[i].adm, js, sizeof js) < 0)
				return -1;
			now = bench_json_u64(js, "pairs_seen") - (long)nd[i].base;
			applied = bench_json_u64(js, "applied_seq");
			last = bench_json_u64(js, "last_seq");
			if (now >= pairs && applied == last) {
				nd[i].t_done = jsraw_now();
				nd[i].commits = bench_json_u64(js, "commits") - nd[i].commits;
				continue;
			}
			left++;
			if (now != seen[i]) {
				seen[i] = now;
				moved = jsraw_now();
			}
		}
		if (left && jsraw_now() - moved > 60) {
			fprintf(stderr, "sv-clusterbench: no pair trained for 60 s; see the logs\n");
			return -1;
		}
		if (left)
			usleep(2000);
	}
	return 0;
}

/* ---- the lag sampler: any list of admin sockets ---- */

struct sampler {
	const char *urls, *stream;
	const char *eps[MAX_NODES]; /* admin endpoints; eps[0] leads */
	int n;
	struct figs *f;
	atomic_int ready, stop;
	int failed;
	pthread_t th;
};

static void lag_add(struct lag *l, const double x[N_SERIES])
{
	if (l->n == l->cap) {
		size_t c = l->cap ? 2 * l->cap : 1024;

		for (int k = 0; k < N_SERIES; k++) {
			double *w = realloc(l->v[k], c * sizeof *w);

			if (w == NULL)
				return; /* the sample is lost; the ones grown stay valid */
			l->v[k] = w;
		}
		l->cap = c;
	}
	for (int k = 0; k < N_SERIES; k++)
		l->v[k][l->n] = x[k];
	l->n++;
}

static void lag_free(struct lag *l)
{
	for (int k = 0; k < N_SERIES; k++)
		free(l->v[k]);
}

static void *sampler_main(void *arg)
{
	struct sampler *sm = arg;
	struct figs *f = sm->f;
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	void *ctx = zmq_ctx_new(), *s[MAX_NODES] = {0};
	char *json = malloc(JSON_CAP);
	int t = 2000;

	sm->failed = json == NULL || jsraw_connect(sm->urls, &nc, &js);
	for (int i = 0; !sm->failed && i < sm->n; i++) {
		s[i] = bench_sock(ctx, ZMQ_DEALER, sm->eps[i]);
		zmq_setsockopt(s[i], ZMQ_RCVTIMEO, &t, sizeof t);
	}
	atomic_store(&sm->ready, 1);
	while (!sm->failed && !atomic_load(&sm->stop)) {
		uint64_t last = 0;
		long applied[MAX_NODES], pending[MAX_NODES];
		int ok = jsraw_last_seq(js, sm->stream, &last) == 0;

		for (int i = 0; ok && i < sm->n; i++) {
			ok = bench_status(s[i], json, JSON_CAP) == 0;
			applied[i] = bench_json_u64(json, "applied_stream_seq");
			pending[i] = bench_json_u64(json, "lag");
			ok = ok && applied[i] >= 0;
		}
		for (int i = 0; ok && i < sm->n; i++) {
			long bs = (long)last - applied[i], bl = applied[0] - applied[i];
			double x[N_SERIES] = {bs > 0 ? bs : 0, bl > 0 ? bl : 0,
			                      pending[i] > 0 ? pending[i] : 0};

			lag_add(&f->lag[i], x);
		}
		usleep(SAMPLE_MS * 1000);
	}
	atomic_store(&sm->ready, 1);
	for (int i = 0; i < sm->n; i++)
		if (s[i])
			zmq_close(s[i]);
	zmq_ctx_term(ctx);
	jsraw_close(nc, js);
	free(json);
	return NULL;
}

/* ---- one repetition ---- */

/* The daemon alone: pairs/s, or -1. */
static double run_alone(const struct cfg *c, const struct msgset *s, long d_in, const char *dir,
                        long *busy, double *per_commit, double *cpu)
{
	void *ctx = zmq_ctx_new(), *in = NULL;
	struct node nd;
	double t0, rate = -1, cpu0;

	if (node_start(&nd, ctx, c, dir, NULL, d_in, NULL, 0, NULL) < 0 || node_mark(&nd) < 0)
		goto out;
	in = bench_sock_at(ctx, ZMQ_DEALER, nd.sd, "ingest-acked.sock");
	cpu0 = proc_cpu(nd.pid);
	t0 = jsraw_now();
	if (publish(in, s, c->window, busy) < 0 ||
	    wait_applied(&nd, 1, (long)s->n * c->per_msg) < 0)
		goto out;
	rate = (double)s->n * (double)c->per_msg / (nd.t_done - t0);
	*cpu = (proc_cpu(nd.pid) - cpu0) / (nd.t_done - t0);
	*per_commit = (double)s->n * (double)c->per_msg / (double)(nd.commits > 0 ? nd.commits : 1);
out:
	if (in)
		zmq_close(in);
	node_stop(&nd);
	zmq_ctx_term(ctx);
	if (rate > 0)
		bench_rm_tree(nd.sd);
	return rate;
}

/* ---- replica lag: item writes during the load ---- */

#define VIS_EVERY_MS 50   /* one item write this often during the load */
#define VIS_WAIT_MS 10000 /* a write not on the replica by then is missed */

struct writer {
	pthread_t th;
	void *ctx;
	const char *gw_sd, *r_sd; /* state dirs: a (the gateway), r (the replica) */
	long d_in;
	struct figs *f;
	atomic_int stop;
};

/* The replica's cluster.items_seq from its STATUS, or -1. */
static long long items_seq(void *adm)
{
	char js[JSON_CAP], *p;

	if (bench_status(adm, js, sizeof js) < 0 || (p = strstr(js, "\"items_seq\":")) == NULL)
		return -1;
	return strtoll(p + 12, NULL, 10);
}

/* Every VIS_EVERY_MS an ITEM_PUT at a's gateway; its ack names its
 * pair-stream sequence (flag POS); then the time until replica r's
 * items_seq reaches it: how far the replica trails a write under load. */
static void *writer_main(void *arg)
{
	struct writer *w = arg;
	void *in = bench_sock_at(w->ctx, ZMQ_DEALER, w->gw_sd, "ingest-acked.sock");
	void *adm = bench_sock_at(w->ctx, ZMQ_DEALER, w->r_sd, "admin.sock");
	float *x = calloc((size_t)w->d_in, sizeof *x);
	struct sv_proto_msgbuf mb;

	sv_proto_msgbuf_init(&mb);
	for (long k = 0; in && adm && x && !atomic_load(&w->stop); k++) {
		struct sv_proto_frame fr[SV_PROTO_MAX_FRAMES];
		struct sv_proto_reply rp;
		struct sv_proto_error err;
		zmq_msg_t parts[SV_PROTO_MAX_FRAMES];
		char id[32];
		int n = 0, more = 1;
		double t0;
		long long seen;

		x[0] = (float)k;
		snprintf(id, sizeof id, "w%ld", k % 64);
		if (sv_proto_encode_item_put(&mb, (uint64_t)k, id, strlen(id), x, (uint32_t)w->d_in) < 0 ||
		    bench_send_mb(in, &mb) < 0)
			break;
		while (more && n < SV_PROTO_MAX_FRAMES) {
			size_t sz = sizeof more;

			zmq_msg_init(&parts[n]);
			if (zmq_msg_recv(&parts[n], in, 0) < 0)
				break;
			fr[n].data = zmq_msg_data(&parts[n]);
			fr[n].len = zmq_msg_size(&parts[n]);
			n++;
			zmq_getsockopt(in, ZMQ_RCVMORE, &more, &sz);
		}
		t0 = jsraw_now();
		if (n > 0 && sv_proto_decode_reply(fr, (size_t)n, NULL, &rp, &err) == 0 &&
		    rp.status == SV_PROTO_STATUS_OK && rp.has_pos) {
			while ((seen = items_seq(adm)) >= 0 && (uint64_t)seen < rp.pos_seq &&
			       jsraw_now() - t0 < VIS_WAIT_MS / 1e3)
				usleep(1000);
			if (seen >= 0 && (uint64_t)seen >= rp.pos_seq) {
				if (w->f->nvis == w->f->capvis) {
					size_t cap = w->f->capvis ? 2 * w->f->capvis : 256;
					double *v = realloc(w->f->vis, cap * sizeof *v);

					if (v == NULL)
						break;
					w->f->vis = v;
					w->f->capvis = cap;
				}
				w->f->vis[w->f->nvis++] = (jsraw_now() - t0) * 1e3;
			} else {
				w->f->vis_missed++;
			}
		}
		for (int i = 0; i < n; i++)
			zmq_msg_close(&parts[i]);
		usleep(VIS_EVERY_MS * 1000);
	}
	sv_proto_msgbuf_free(&mb);
	free(x);
	if (in)
		zmq_close(in);
	if (adm)
		zmq_close(adm);
	return NULL;
}

/* Trainers a and b on stream `stream` of R replicas, and query replica r:
 * pairs/s, or -1. */
static double run_cluster(const struct cfg *c, const struct msgset *s, long d_in, long replicas,
                          const char *dir, const char *stream, jsCtx *jsc, struct figs *f,
                          double *acked, double *per_commit, double *cpu)
{
	void *ctx = zmq_ctx_new(), *in = NULL;
	struct node nd[3];
	struct writer wr = {.ctx = ctx, .d_in = d_in, .f = f};
	int writing = 0;
	struct sampler sm = {.urls = c->urls, .stream = stream, .f = f};
	char name[2 * PATH_MAX + 64];
	double t0 = 0, rate = -1, cpu0[3] = {0};
	int nt = c->standby ? 2 : 1; /* trainers */
	pid_t pids[3];
	int npids = 0;
	int started = 0;

	memset(nd, 0, sizeof nd);
	nd[0].pid = nd[1].pid = nd[2].pid = -1;
	if (node_start(&nd[0], ctx, c, dir, "a", d_in, stream, replicas, "leader") < 0 ||
	    (c->standby &&
	     node_start(&nd[1], ctx, c, dir, "b", d_in, stream, replicas, "standby") < 0) ||
	    node_start(&nd[2], ctx, c, dir, "r", d_in, stream, replicas, "replica") < 0)
		goto out;
	for (int i = 0; i < nt; i++) {
		if (node_mark(&nd[i]) < 0)
			goto out;
		snprintf(name, sizeof name, "ipc://%.4000s/admin.sock", nd[i].sd);
		sm.eps[sm.n++] = strdup(name);
	}
	for (int i = 0; i < c->nwatch; i++)
		sm.eps[sm.n++] = strdup(c->watch[i]);
	if (pthread_create(&sm.th, NULL, sampler_main, &sm) != 0)
		goto out;
	started = 1;
	while (!atomic_load(&sm.ready))
		usleep(1000);
	if (sm.failed)
		goto out;
	in = bench_sock_at(ctx, ZMQ_DEALER, nd[0].sd, "ingest-acked.sock");
	npids = nats_pids(c->nats, pids);
	for (int i = 0; i < nt; i++)
		cpu0[i] = proc_cpu(nd[i].pid);
	for (int i = 0; i < npids; i++)
		cpu0[2] += proc_cpu(pids[i]);
	wr.gw_sd = nd[0].sd;
	wr.r_sd = nd[2].sd;
	writing = pthread_create(&wr.th, NULL, writer_main, &wr) == 0;
	t0 = jsraw_now();
	if (publish(in, s, c->window, &f->busy) < 0)
		goto out;
	*acked = (double)s->n * (double)c->per_msg / (jsraw_now() - t0);
	if (wait_applied(nd, nt, (long)s->n * c->per_msg) < 0)
		goto out;
	rate = (double)s->n * (double)c->per_msg /
	       ((nd[0].t_done > nd[1].t_done ? nd[0].t_done : nd[1].t_done) - t0);
	for (int i = 0; i < nt; i++)
		cpu[i] = proc_cpu(nd[i].pid) - cpu0[i];
	cpu[2] = -cpu0[2];
	for (int i = 0; i < npids; i++)
		cpu[2] += proc_cpu(pids[i]);
	for (int i = 0; i < 3; i++)
		cpu[i] *= rate / ((double)s->n * (double)c->per_msg); /* per second of wall */
	for (int i = 0; i < nt; i++)
		per_commit[i] =
		    (double)s->n * (double)c->per_msg / (double)(nd[i].commits > 0 ? nd[i].commits : 1);
out:
	if (writing) {
		atomic_store(&wr.stop, 1);
		pthread_join(wr.th, NULL);
	}
	if (started) {
		atomic_store(&sm.stop, 1);
		pthread_join(sm.th, NULL);
	}
	for (int i = 0; i < sm.n; i++)
		free((void *)sm.eps[i]);
	if (in)
		zmq_close(in);
	for (int i = 0; i < 3; i++)
		node_stop(&nd[i]);
	zmq_ctx_term(ctx);
	const char *suffix[] = {"", "_ITEMS"};
	for (int i = 0; i < 2; i++) {
		snprintf(name, sizeof name, "%s%s", stream, suffix[i]);
		jsraw_delete(jsc, name);
	}
	const char *kv[] = {"_models", "_lease"};
	for (int i = 0; i < 2; i++) {
		snprintf(name, sizeof name, "KV_%s%s", stream, kv[i]);
		jsraw_delete(jsc, name);
	}
	if (rate > 0)
		for (int i = 0; i < 3; i++)
			bench_rm_tree(nd[i].sd);
	return rate;
}

/* ---- the report ---- */

static void print_lag(const struct cfg *c, struct figs *f, int nodes)
{
	for (int i = 0; i < nodes; i++) {
		struct bench_stat bs, bl, pe;
		const char *who = i == 0                 ? "a (leader)"
		                  : i == 1 && c->standby ? "b (standby)"
		                                         : c->watch[i - 1 - c->standby];

		const struct lag *l = &f->lag[i];

		if (l->n == 0) {
			printf("    %-12s no lag samples\n", who);
			continue;
		}
		bench_stat_of(l->v[BEHIND_STREAM], l->n, &bs);
		bench_stat_of(l->v[BEHIND_LEAD], l->n, &bl);
		bench_stat_of(l->v[PENDING], l->n, &pe);
		printf("    %-12s behind the stream median %.0f max %.0f msgs; behind a median %.0f "
		       "max %.0f; feed pending median %.0f max %.0f (%zu samples)\n",
		       who, bs.med, bs.hi, bl.med, bl.hi, pe.med, pe.hi, l->n);
	}
}

static void print_row(const struct cfg *c, struct figs *f, long d_in, long replicas,
                      const struct msgset *s)
{
	struct bench_stat e, p, u, r, a, ra, ak, pc[3], cu[4], us[4], rp, rs, cp, cs, cb, rcb;
	double ppm = (double)c->per_msg, ralone[MAX_REPS];
	size_t n = (size_t)c->reps;

	for (size_t i = 0; i < n; i++)
		ralone[i] = f->e2e[i] / f->alone[i];
	bench_stat_of(f->e2e, n, &e);
	bench_stat_of(f->pub, n, &p);
	bench_stat_of(f->sub, n, &u);
	bench_stat_of(f->ratio, n, &r);
	bench_stat_of(f->alone, n, &a);
	bench_stat_of(ralone, n, &ra);
	bench_stat_of(f->acked, n, &ak);
	printf("R%ld, inline %ld-d, %zu msgs of %ld pairs (%zu B), window %ld, %ld reps:\n",
	       replicas, d_in, s->n, c->per_msg, s->m[0].len, c->window, c->reps);
	printf("    end to end (%s applied) %8.0f [%.0f-%.0f] pairs/s\n",
	       c->standby ? "both trainers" : "the trainer  ", e.med, e.lo, e.hi);
	printf("    of which the gateway acked all at   %8.0f [%.0f-%.0f] pairs/s\n", ak.med,
	       ak.lo, ak.hi);
	printf("    raw publish async+ack  %8.0f [%.0f-%.0f] msg/s = %.0f pairs/s\n", p.med, p.lo,
	       p.hi, p.med * ppm);
	printf("    raw pull consume+ack   %8.0f [%.0f-%.0f] msg/s = %.0f pairs/s\n", u.med, u.lo,
	       u.hi, u.med * ppm);
	printf("    e2e / min(raw)         %8.2f [%.2f-%.2f]  (target >= 0.70)\n", r.med, r.lo,
	       r.hi);
	printf("    daemon alone           %8.0f [%.0f-%.0f] pairs/s; e2e / alone %.2f [%.2f-%.2f]\n",
	       a.med, a.lo, a.hi, ra.med, ra.lo, ra.hi);
	for (int i = 0; i < 3; i++)
		bench_stat_of(f->per_commit[i], n, &pc[i]);
	if (c->standby)
		printf("    pairs per group commit: alone %.0f, a %.0f, b %.0f (medians)\n",
		       pc[0].med, pc[1].med, pc[2].med);
	else
		printf("    pairs per group commit: alone %.0f, a %.0f (medians)\n", pc[0].med,
		       pc[1].med);
	for (int i = 0; i < 4; i++) {
		double per[MAX_REPS]; /* microseconds of CPU per pair */

		for (size_t k = 0; k < n; k++)
			per[k] = f->cpu[i][k] / (i < 3 ? f->e2e[k] : f->alone[k]) * 1e6;
		bench_stat_of(per, n, &us[i]);
		bench_stat_of(f->cpu[i], n, &cu[i]);
	}
	printf("    cores busy end to end: a %.2f, b %.2f, nats-servers %.2f; alone %.2f "
	       "(of %ld)\n",
	       cu[0].med, cu[1].med, cu[2].med, cu[3].med, sysconf(_SC_NPROCESSORS_ONLN));
	bench_stat_of(f->raw_us[0], n, &rp);
	bench_stat_of(f->raw_us[1], n, &rs);
	bench_stat_of(f->raw_us[2], n, &cp);
	bench_stat_of(f->raw_us[3], n, &cs);
	printf("    CPU us a pair: a %.0f, b %.0f, nats-servers %.0f; alone %.0f; nats-servers "
	       "in raw publish %.0f, raw consume %.0f; the raw client in publish %.0f, consume "
	       "%.0f (medians)\n",
	       us[0].med, us[1].med, us[2].med, us[3].med, rp.med, rs.med, cp.med, cs.med);
	if (c->nats != NULL) { /* the servers' CPU is known: the bound of a shared machine */
		long cores = sysconf(_SC_NPROCESSORS_ONLN);
		double bound[MAX_REPS], rbound[MAX_REPS];

		for (size_t k = 0; k < n; k++) {
			double need = f->raw_us[0][k] + f->raw_us[1][k] + f->raw_us[2][k] +
			              f->raw_us[3][k] + f->cpu[3][k] / f->alone[k] * 1e6;

			bound[k] = need > 0 ? (double)cores / need * 1e6 : 0;
			rbound[k] = bound[k] > 0 ? f->e2e[k] / bound[k] : 0;
		}
		bench_stat_of(bound, n, &cb);
		bench_stat_of(rbound, n, &rcb);
		printf("    CPU bound of one machine: %.0f [%.0f-%.0f] pairs/s = %ld cores / (raw "
		       "publish + raw consume + the daemon alone, CPU us a pair); e2e / CPU bound "
		       "%.2f [%.2f-%.2f]\n",
		       cb.med, cb.lo, cb.hi, cores, rcb.med, rcb.lo, rcb.hi);
	}
	if (f->busy)
		printf("    %ld BUSY answers resent\n", f->busy);
	print_lag(c, f, 1 + (int)c->standby + c->nwatch);
	if (f->nvis > 0) {
		struct bench_stat v;

		bench_stat_of(f->vis, f->nvis, &v);
		printf("    replica r: an item written at a (acked) is in r's store %.1f ms later, "
		       "median [%.1f-%.1f] over %zu writes during the load%s\n",
		       v.med, v.lo, v.hi, f->nvis, f->vis_missed ? " (some missed)" : "");
	}
}

/* ---- options, the cluster, main ---- */

static int parse_list(const char *s, long *out, int *n, long lo, long hi)
{
	char *end;

	*n = 0;
	while (*s && *n < MAX_LIST) {
		long v = strtol(s, &end, 10);

		if (end == s || v < lo || v > hi || (*end && *end != ','))
			return -1;
		out[(*n)++] = v;
		s = *end ? end + 1 : end;
	}
	return *n > 0 && !*s ? 0 : -1;
}

static int parse(int argc, char **argv, struct cfg *c)
{
	static char daemon[] = SV_CLUSTERBENCH_DAEMON, nats_sh[] = SV_CLUSTERBENCH_NATS_SH;

	*c = (struct cfg){.daemon = daemon, .nats_sh = nats_sh, .dir = "/tmp", .sync = "full",
	                  .pairs = 20000, .per_msg = 64, .window = 16, .reps = 3, .standby = 1,
	                  .dims = {784, 64}, .ndims = 2, .replicas = {1, 3}, .nreplicas = 2};
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		int ok = v != NULL;

		if (ok && !strcmp(a, "--urls"))
			c->urls = v;
		else if (ok && !strcmp(a, "--daemon"))
			c->daemon = v;
		else if (ok && !strcmp(a, "--dir"))
			c->dir = v;
		else if (ok && !strcmp(a, "--sync"))
			c->sync = v;
		else if (ok && !strcmp(a, "--pairs"))
			ok = bench_parse_long(v, 1, 10000000, &c->pairs) == 0;
		else if (ok && !strcmp(a, "--per-msg"))
			ok = bench_parse_long(v, 1, 4096, &c->per_msg) == 0;
		else if (ok && !strcmp(a, "--window"))
			ok = bench_parse_long(v, 1, 4096, &c->window) == 0;
		else if (ok && !strcmp(a, "--standby"))
			ok = bench_parse_long(v, 0, 1, &c->standby) == 0;
		else if (ok && !strcmp(a, "--reps"))
			ok = bench_parse_long(v, 1, MAX_REPS, &c->reps) == 0;
		else if (ok && !strcmp(a, "--d-in"))
			ok = parse_list(v, c->dims, &c->ndims, 2, 65536) == 0;
		else if (ok && !strcmp(a, "--replicas"))
			ok = parse_list(v, c->replicas, &c->nreplicas, 1, 5) == 0;
		else if (ok && !strcmp(a, "--watch") && c->nwatch < MAX_NODES - 2)
			c->watch[c->nwatch++] = v;
		else
			ok = 0;
		if (!ok) {
			fprintf(stderr,
			        "usage: sv-clusterbench [--urls URLS] [--pairs N] [--per-msg M] "
			        "[--d-in D[,D]] [--window W] [--replicas R[,R]] [--standby 0|1] "
			        "[--reps 1..%d] "
			        "[--sync full|meta|none] [--watch ADMIN_EP]... [--daemon PATH] "
			        "[--dir DIR]\n",
			        MAX_REPS);
			return -1;
		}
		i++;
	}
	if (c->pairs / c->per_msg < 1) {
		fprintf(stderr, "sv-clusterbench: --pairs below --per-msg\n");
		return -1;
	}
	return 0;
}

/* Run nats-cluster.sh CMD dir; its exit status. */
static int nats_cluster(const struct cfg *c, const char *cmd, const char *dir)
{
	char line[3 * PATH_MAX];

	snprintf(line, sizeof line, "sh '%s' %s '%s' >/dev/null", c->nats_sh, cmd, dir);
	return system(line);
}

/* Every figure of size d_in; 0, or -1 (logged). */
static int run_size(const struct cfg *c, long d_in, const char *dir, jsCtx *jsc)
{
	struct msgset s;
	struct figs *f = calloc((size_t)c->nreplicas, sizeof *f);
	int rc = -1;

	if (f == NULL || msgset_build(&s, c, d_in) < 0) {
		fprintf(stderr, "sv-clusterbench: cannot build the messages\n");
		free(f);
		return -1;
	}
	for (long rep = 0; rep < c->reps; rep++) {
		long busy = 0;
		double ppc = 0, cpu_alone = 0, alone = run_alone(c, &s, d_in, dir, &busy, &ppc,
		                                                 &cpu_alone);

		if (alone < 0)
			goto out;
		for (int k = 0; k < c->nreplicas; k++) {
			struct figs *fk = &f[k];
			char stream[64];
			double ppc2[2] = {0, 0}, cpu[3] = {0};

			snprintf(stream, sizeof stream, "SVB_R%ld_D%ld_%ld", c->replicas[k], d_in, rep);
			struct raw_cpu rcpu = {.nats = c->nats};
			struct jsraw_hook hook = {raw_cpu_take, &rcpu};

			if (jsraw_run(jsc, "SVB_RAW", (int)c->replicas[k], s.m, s.n, &fk->pub[rep],
			              &fk->sub[rep], &hook))
				goto out;
			/* microseconds of CPU a pair, each phase: servers, client */
			for (int ph = 0; ph < 2; ph++) {
				double pairs = (double)s.n * (double)c->per_msg;

				fk->raw_us[ph][rep] = (rcpu.at[ph + 1] - rcpu.at[ph]) / pairs * 1e6;
				fk->raw_us[2 + ph][rep] =
				    (rcpu.self[ph + 1] - rcpu.self[ph]) / pairs * 1e6;
			}
			fk->e2e[rep] = run_cluster(c, &s, d_in, c->replicas[k], dir, stream, jsc, fk,
			                           &fk->acked[rep], ppc2, cpu);
			if (fk->e2e[rep] < 0)
				goto out;
			fk->alone[rep] = alone;
			fk->per_commit[0][rep] = ppc;
			fk->per_commit[1][rep] = ppc2[0];
			fk->per_commit[2][rep] = ppc2[1];
			for (int i = 0; i < 3; i++)
				fk->cpu[i][rep] = cpu[i];
			fk->cpu[3][rep] = cpu_alone;
			fk->ratio[rep] = fk->e2e[rep] / ((fk->pub[rep] < fk->sub[rep] ? fk->pub[rep]
			                                                              : fk->sub[rep]) *
			                                 (double)c->per_msg);
			fprintf(stderr, "  [d %ld R%ld rep %ld] e2e %.0f pairs/s, raw %.0f/%.0f msg/s, "
			                "alone %.0f pairs/s\n",
			        d_in, c->replicas[k], rep + 1, fk->e2e[rep], fk->pub[rep], fk->sub[rep],
			        alone);
		}
	}
	for (int k = 0; k < c->nreplicas; k++)
		print_row(c, &f[k], d_in, c->replicas[k], &s);
	rc = 0;
out:
	for (int k = 0; k < c->nreplicas; k++) {
		for (int i = 0; i < MAX_NODES; i++)
			lag_free(&f[k].lag[i]);
		free(f[k].vis);
	}
	free(f);
	msgset_free(&s);
	return rc;
}

int main(int argc, char **argv)
{
	struct cfg c;
	char dir[PATH_MAX], nats[PATH_MAX + 8], path[PATH_MAX + 16], urls[4096];
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	int rc = 1, own = 0;
	double t0 = jsraw_now();

	if (parse(argc, argv, &c) < 0)
		return 2;
	snprintf(dir, sizeof dir, "%s/svclusterbench-XXXXXX", c.dir);
	if (mkdtemp(dir) == NULL) {
		fprintf(stderr, "sv-clusterbench: mkdtemp %s: %s\n", dir, strerror(errno));
		return 1;
	}
	snprintf(nats, sizeof nats, "%s/nats", dir);
	if (c.urls == NULL) {
		FILE *fu;

		own = 1;
		c.nats = nats;
		if (nats_cluster(&c, "start", nats) != 0) {
			fprintf(stderr, "sv-clusterbench: %s start %s failed\n", c.nats_sh, nats);
			goto out;
		}
		snprintf(path, sizeof path, "%s/urls", nats);
		fu = fopen(path, "r");
		if (fu == NULL || fgets(urls, sizeof urls, fu) == NULL) {
			fprintf(stderr, "sv-clusterbench: no URLs in %s/urls\n", nats);
			if (fu)
				fclose(fu);
			goto out;
		}
		fclose(fu);
		urls[strcspn(urls, "\n")] = '\0';
		c.urls = urls;
	}
	if (jsraw_connect(c.urls, &nc, &js))
		goto out;
	printf("sv-clusterbench: %ld pairs a case on %s%s, store.sync %s, %s; median [range] of "
	       "%ld\n",
	       c.pairs, own ? "a 3-node cluster of its own " : "", c.urls, c.sync,
	       c.standby ? "a leader and a standby" : "one trainer", c.reps);
	fflush(stdout);
	for (int i = 0; i < c.ndims; i++)
		if (run_size(&c, c.dims[i], dir, js) < 0)
			goto out;
	rc = 0;
	printf("(%.0f s in all)\n", jsraw_now() - t0);
out:
	jsraw_close(nc, js);
	if (own)
		nats_cluster(&c, "stop", nats);
	if (rc == 0)
		bench_rm_tree(dir);
	else
		fprintf(stderr, "sv-clusterbench: logs kept in %s\n", dir);
	return rc;
}
