/* util.h - small helpers shared by the daemon's files. */
#ifndef SV_DAEMON_UTIL_H
#define SV_DAEMON_UTIL_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

/* CLOCK_MONOTONIC in nanoseconds. */
static inline uint64_t now_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* The CLOCK_REALTIME deadline ms milliseconds from now, for
 * pthread_cond_timedwait. */
static inline struct timespec deadline_ms(uint64_t ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (time_t)(ms / 1000 + ((uint64_t)ts.tv_nsec + ms % 1000 * 1000000ULL) / 1000000000ULL);
	ts.tv_nsec = (long)(((uint64_t)ts.tv_nsec + ms % 1000 * 1000000ULL) % 1000000000ULL);
	return ts;
}

/* CLOCK_REALTIME in nanoseconds since the epoch. */
static inline uint64_t now_real_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Grow the array *p (*cap elements of elem bytes) to hold need, doubling
 * from 64; 0 or -ENOMEM (then *p and *cap are as they were). */
static inline int grow_array(void **p, size_t *cap, size_t need, size_t elem)
{
	size_t c = *cap ? *cap : 64;
	void *q;

	if (need <= *cap)
		return 0;
	while (c < need)
		c *= 2;
	q = realloc(*p, c * elem);
	if (q == NULL)
		return -ENOMEM;
	*p = q;
	*cap = c;
	return 0;
}

#endif
