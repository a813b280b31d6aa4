/* bench_util.c - what the sv-bench subcommands share: the clock, median of
 * repeated timed runs after a warmup, integer option parsing and flat JSON
 * output, and the private-daemon lifecycle of the end-to-end benchmarks
 * (default path, start, stop, state-dir removal, multipart send, STATUS
 * JSON fields; see bench.h).  No statistics beyond the median: the machines are
 * shared and noisy, so every benchmark reports a same-run reference and a
 * ratio instead of trusting one absolute figure. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "bench.h"
#include "parts.h"
#include "sv/proto.h"

uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

double bench_median(double *v, size_t n)
{
	if (n == 0)
		return 0.0;
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

void bench_stat_of(double *v, size_t n, struct bench_stat *st)
{
	st->lo = st->hi = v[0];
	for (size_t i = 1; i < n; i++) {
		st->lo = v[i] < st->lo ? v[i] : st->lo;
		st->hi = v[i] > st->hi ? v[i] : st->hi;
	}
	st->med = bench_median(v, n);
}

double bench_time(void (*fn)(void *ctx), void *ctx, int warmup, int reps, double *secs)
{
	for (int i = 0; i < warmup; i++)
		fn(ctx);
	for (int i = 0; i < reps; i++) {
		uint64_t t0 = bench_now_ns();

		fn(ctx);
		secs[i] = (double)(bench_now_ns() - t0) * 1e-9;
	}
	return bench_median(secs, (size_t)(reps > 0 ? reps : 0));
}

int bench_parse_long(const char *s, long lo, long hi, long *out)
{
	char *end;
	long v;

	if (!s || !*s)
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

static void json_key(struct bench_json *j, const char *key)
{
	printf("%s\"%s\": ", j->n++ ? ", " : "", key);
}

void bench_json_begin(struct bench_json *j)
{
	j->n = 0;
	printf("{");
}

void bench_json_str(struct bench_json *j, const char *key, const char *val)
{
	json_key(j, key);
	printf("\"%s\"", val);
}

void bench_json_num(struct bench_json *j, const char *key, double val)
{
	json_key(j, key);
	if (isfinite(val))
		printf("%.6g", val);
	else
		printf("null");
}

void bench_json_int(struct bench_json *j, const char *key, long long val)
{
	json_key(j, key);
	printf("%lld", val);
}

void bench_json_end(struct bench_json *j)
{
	(void)j;
	printf("}\n");
	fflush(stdout);
}

void bench_daemon_default_path(char *out, size_t cap)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n > 0) {
		self[n] = '\0';
		snprintf(out, cap, "%s/../daemon/simverifyd", dirname(self));
	}
}

/* At most this many -o overrides (argv: daemon, 3 fixed args, 2 per -o, NULL). */
#define MAX_OVR 16

pid_t bench_daemon_start(const char *daemon, const char *sd, const char *const *overrides,
                         size_t n)
{
	const char *argv[4 + 2 * MAX_OVR + 1];
	size_t a = 0;
	pid_t pid;

	if (n > MAX_OVR)
		n = MAX_OVR;
	argv[a++] = daemon;
	argv[a++] = "--state-dir";
	argv[a++] = sd;
	argv[a++] = "--allow-root";
	for (size_t i = 0; i < n; i++) {
		argv[a++] = "-o";
		argv[a++] = overrides[i];
	}
	argv[a] = NULL;
	pid = fork();
	if (pid == 0) {
		int fd = open("/dev/null", O_WRONLY);

		if (fd >= 0)
			dup2(fd, 2);
		execv(daemon, (char *const *)argv);
		_exit(127);
	}
	return pid;
}

void bench_daemon_stop(pid_t pid)
{
	int st;

	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	waitpid(pid, &st, 0);
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
	(void)sb;
	(void)flag;
	(void)f;
	return remove(p);
}

void bench_rm_tree(const char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int bench_send_mb(void *s, const struct sv_proto_msgbuf *mb)
{
	for (size_t i = 0; i < mb->n; i++)
		if (zmq_send(s, mb->frames[i].data, mb->frames[i].len,
		             i + 1 < mb->n ? ZMQ_SNDMORE : 0) < 0)
			return -1;
	return 0;
}

long bench_json_u64(const char *j, const char *key)
{
	char k[64];
	const char *p;

	snprintf(k, sizeof(k), "\"%s\":", key);
	p = strstr(j, k);
	return p ? strtol(p + strlen(k), NULL, 10) : -1;
}

void *bench_sock(void *ctx, int type, const char *ep)
{
	int t = 20000, linger = 0;
	void *s = zmq_socket(ctx, type);

	zmq_setsockopt(s, ZMQ_RCVTIMEO, &t, sizeof(t));
	zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
	zmq_connect(s, ep);
	return s;
}

void *bench_sock_at(void *ctx, int type, const char *dir, const char *name)
{
	char ep[PATH_MAX + 32];

	snprintf(ep, sizeof(ep), "ipc://%s/%s", dir, name);
	return bench_sock(ctx, type, ep);
}

int bench_status(void *adm, char *js, size_t cap)
{
	struct sv_proto_msgbuf mb;
	struct parts p;
	int n, rc = -1;

	sv_proto_msgbuf_init(&mb);
	sv_proto_encode_admin(&mb, SV_PROTO_VERB_STATUS, 1, 0, NULL);
	js[0] = '\0';
	if (bench_send_mb(adm, &mb) == 0 && (n = parts_recv(adm, &p, 0)) > 0) {
		if (n > 2) {
			size_t l = p.fr[2].len < cap - 1 ? p.fr[2].len : cap - 1;

			memcpy(js, p.fr[2].data, l);
			js[l] = '\0';
			rc = 0;
		}
		parts_close(&p);
	}
	sv_proto_msgbuf_free(&mb);
	return rc;
}

long bench_recv_drop(void *s)
{
	long bytes = 0;
	int more = 1;

	while (more) {
		zmq_msg_t m;

		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, s, 0) < 0) {
			zmq_msg_close(&m);
			return -1;
		}
		bytes += (long)zmq_msg_size(&m);
		more = zmq_msg_more(&m);
		zmq_msg_close(&m);
	}
	return bytes;
}

void *bench_daemon_admin(void *ctx, const char *sd, char *js, size_t cap)
{
	for (int tries = 0; tries < 300; tries++) {
		int t = 100;
		void *adm = bench_sock_at(ctx, ZMQ_DEALER, sd, "admin.sock");

		zmq_setsockopt(adm, ZMQ_RCVTIMEO, &t, sizeof(t));
		if (bench_status(adm, js, cap) == 0) {
			t = 60000;
			zmq_setsockopt(adm, ZMQ_RCVTIMEO, &t, sizeof(t));
			return adm;
		}
		zmq_close(adm);
	}
	return NULL;
}
