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
 * Leaves out: files, syslog(3), rate limiting.
 */
#ifndef SV_DAEMON_LOG_H
#define SV_DAEMON_LOG_H

#include <syslog.h>

/* Read JOURNAL_STREAM once and set the initial level (LOG_INFO). */
void sv_log_init(void);

/* Change / read the threshold: lines above it are dropped. */
void sv_log_set_level(int level);
int sv_log_level(void);

/* "err", "warning", "notice", "info", "debug" (also "error", "warn") to a
 * level; -1 when the name is unknown. */
int sv_log_level_parse(const char *name);
const char *sv_log_level_name(int level);

/* One line: level, stable message id, printf-style text (no newline). */
void sv_log(int level, const char *msgid, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
