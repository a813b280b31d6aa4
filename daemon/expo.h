/* expo.h - the daemon's Prometheus text exposition (format 0.0.4).
 *
 * The one place the daemon's numbers become metrics: GET /metrics on the
 * HTTP endpoint (http.h) and the admin verb METRICS (which `simverifyctl
 * metrics` prints) both serve expo_metrics().  Names follow Prometheus
 * conventions: simverify_ prefix, base units (seconds, bytes), counters end
 * in _total; every family has HELP and TYPE lines.  The families are listed
 * in docs/DAEMON.md.
 *
 * Any thread may call these: they read atomics and open one read
 * transaction of the store; nothing here waits for the trainer.
 */
#ifndef SV_DAEMON_EXPO_H
#define SV_DAEMON_EXPO_H

#include <stddef.h>

struct sv_daemon;

/* The exposition as a new NUL-terminated buffer (the caller frees it);
 * *len gets its length.  Returns NULL when out of memory. */
char *expo_metrics(struct sv_daemon *d, size_t *len);

/* Pieces STATUS shows too. */
double expo_rss_bytes(void);                         /* NaN when unreadable */
double expo_store_file_bytes(const struct sv_daemon *d); /* data.mdb on disk; NaN */
double expo_uptime_seconds(void);
/* Mark the process start (main, before the threads). */
void expo_mark_start(void);

#endif
