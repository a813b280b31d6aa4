/* bench.h - the sv-bench subcommands and the helpers they share.
 *
 * sv-bench NAME [options] runs one benchmark.  Every benchmark prints each of
 * its figures beside a reference measured in the same run (raw OpenBLAS, raw
 * LMDB, raw ZeroMQ, ...) and the ratio of the two, never an absolute time
 * alone: machines here are noisy.  --json prints one JSON object instead.
 *
 * Each subcommand lives in its own bench_NAME.c (tools/meson.build lists
 * them all).
 */
#ifndef SV_TOOLS_BENCH_H
#define SV_TOOLS_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct sv_proto_msgbuf;

int bench_train(int argc, char **argv);
int bench_store(int argc, char **argv);
int bench_ingest(int argc, char **argv);
int bench_query(int argc, char **argv);
int bench_topk(int argc, char **argv);
int bench_growth(int argc, char **argv);
int bench_rebuild(int argc, char **argv);

/* Monotonic clock in nanoseconds (bench_util.c). */
uint64_t bench_now_ns(void);

/* --- shared helpers (bench_util.c) --- */

/* The median of v[0..n-1] (sorts v in place); 0 for n == 0. */
double bench_median(double *v, size_t n);

/* The median and range of repeated figures. */
struct bench_stat {
	double med, lo, hi;
};
/* Of v[0..n-1], n >= 1 (sorts v in place). */
void bench_stat_of(double *v, size_t n, struct bench_stat *st);

/* Time fn(ctx): `warmup` untimed calls, then `reps` timed calls; each call's
 * seconds go to secs[0..reps-1] (caller-owned) and the median is returned.
 * Use a loop inside fn when one call is shorter than ~100 us. */
double bench_time(void (*fn)(void *ctx), void *ctx, int warmup, int reps, double *secs);

/* Parse a decimal integer in [lo, hi]; 0 or -1 (bad text or out of range). */
int bench_parse_long(const char *s, long lo, long hi, long *out);

/* A flat JSON object on stdout: bench_json_begin(), then one call per key,
 * then bench_json_end() (prints the closing brace and a newline).  Keys and
 * string values are printed as given (keep them plain ASCII, no quotes). */
struct bench_json {
	int n;  /* keys printed so far */
};
void bench_json_begin(struct bench_json *j);
void bench_json_str(struct bench_json *j, const char *key, const char *val);
void bench_json_num(struct bench_json *j, const char *key, double val);
void bench_json_int(struct bench_json *j, const char *key, long long val);
void bench_json_end(struct bench_json *j);

/* --- a private simverifyd for the end-to-end benchmarks (bench_util.c) --- */

/* The default daemon path, ../daemon/simverifyd beside the running sv-bench
 * binary, into out[0..cap-1]; out is left untouched if /proc/self/exe cannot
 * be read. */
void bench_daemon_default_path(char *out, size_t cap);

/* Fork and exec `daemon --state-dir sd --allow-root -o OVR...` for the n
 * strings in overrides (each "key=value"), its stderr sent to /dev/null.
 * Returns the child's pid (-1 if fork failed); the child exits 127 if exec
 * fails.  Does not wait for the daemon's sockets: poll its admin socket. */
pid_t bench_daemon_start(const char *daemon, const char *sd, const char *const *overrides,
                         size_t n);

/* SIGTERM the daemon started by bench_daemon_start and reap it; pid <= 0 is
 * ignored. */
void bench_daemon_stop(pid_t pid);

/* Remove the directory tree at dir (files first, symlinks not followed);
 * errors are ignored. */
void bench_rm_tree(const char *dir);

/* Send every frame of mb on ZeroMQ socket s as one multipart message;
 * 0 or -1 (zmq_send failed, errno set by ZeroMQ). */
int bench_send_mb(void *s, const struct sv_proto_msgbuf *mb);

/* A socket of type connected to ep (ipc://DIR/NAME for bench_sock_at),
 * with a 20 s receive timeout and linger 0. */
void *bench_sock(void *ctx, int type, const char *ep);
void *bench_sock_at(void *ctx, int type, const char *dir, const char *name);
/* The admin STATUS JSON into js[0..cap-1]; 0 or -1 (no reply). */
int bench_status(void *adm, char *js, size_t cap);
/* The admin socket of the daemon on state dir sd once it answers STATUS
 * (its JSON in js), with a 60 s receive timeout; NULL when it has not
 * answered after about 30 s. */
void *bench_daemon_admin(void *ctx, const char *sd, char *js, size_t cap);
/* Receive and drop one multipart message; its byte count or -1. */
long bench_recv_drop(void *s);
/* The integer after "key": in the flat JSON text j (a STATUS reply);
 * -1 if the key is absent. */
long bench_json_u64(const char *j, const char *key);

#endif
