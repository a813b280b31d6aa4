/* log.h - the daemon's log: one line per event on stderr.
 *
 * Levels are syslog's (LOG_ERR .. LOG_DEBUG from <syslog.h>).  Under systemd
 * (JOURNAL_STREAM set) each line starts with "<N>" so journald files it at
 * that priority and adds its own timestamp; otherwise each line starts with
 * an ISO-8601 UTC timestamp and the level's name.  Every line carries a
 * stable message id (SV-AREA-WHAT) so operators and tests can grep for it:
 *
 *     2026-11-28T14:30:00.123Z warning SV-INGEST-BADDIM pair 7/12: 3 floats, want 784; dropping
 * pair
 *
 * Log once, where the decision is made, and say what is done about it.
 * The level can change live (SIGHUP); sv_log is safe from any thread (one
 * write(2) per line), but not from a signal handler.
 * Leaves out: files, syslog(3).
 */
#ifndef SV_DAEMON_LOG_H
#define SV_DAEMON_LOG_H

#include <stddef.h>
#include <stdint.h>
#include <syslog.h>

/* Read JOURNAL_STREAM once and set the initial level (LOG_INFO). */
void log_init(void);

/* Change the threshold: lines above it are dropped. */
void log_set_level(int level);

/* One line: level, stable message id, printf-style text (no newline). */
void log_msg(int level, const char *msgid, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Rate limit for lines a client can cause (malformed messages, unknown
 * items): at most `burst` lines per second per limiter.  One limiter per
 * call site, used by one thread (or zero-initialized static per thread). */
struct sv_ratelimit {
	uint64_t window_ns;            /* start of the current second */
	unsigned lines;                /* lines let through in it */
	unsigned long long suppressed; /* dropped since the last line let through */
};

/* 1 when a line may be written now (then *suppressed gets how many were
 * dropped before it, to say so in the line), 0 when it must be dropped. */
int log_ratelimit(struct sv_ratelimit *rl, unsigned burst, unsigned long long *suppressed);

/* "" or " (N similar lines suppressed)" in buf (>= 64 bytes), for the end
 * of the line a limiter let through. */
const char *log_suppressed(unsigned long long n, char *buf, size_t cap);

/* Lines per second a client-caused message id may write. */
#define LOG_BURST 10

#endif
