/* bench_util.c - what the sv-bench subcommands share: the clock, median of
 * repeated timed runs after a warmup, integer option parsing and flat JSON
 * output (see bench.h).  No statistics beyond the median: the machines are
 * shared and noisy, so every benchmark reports a same-run reference and a
 * ratio instead of trusting one absolute figure. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "bench.h"

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
