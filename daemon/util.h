/* util.h - small helpers shared by the daemon's files. */
#ifndef SV_DAEMON_UTIL_H
#define SV_DAEMON_UTIL_H

#include <stdint.h>
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

#endif
