/* log.c - stderr log lines with journald priority prefixes or timestamps
 * (see log.h).  Leaves out: buffering, syslog(3). */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_int level_now = LOG_INFO;
static int journal;

static const char *const names[] = {
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
};

void log_init(void)
{
	const char *js = getenv("JOURNAL_STREAM");

	journal = js != NULL && js[0] != '\0';
}

void log_set_level(int level)
{
	if (level < LOG_EMERG)
		level = LOG_EMERG;
	if (level > LOG_DEBUG)
		level = LOG_DEBUG;
	atomic_store(&level_now, level);
}

static const char *level_name(int level)
{
	if (level < LOG_EMERG || level > LOG_DEBUG)
		return "?";
	return names[level];
}

void log_msg(int level, const char *msgid, const char *fmt, ...)
{
	char line[2048];
	size_t n = 0;
	va_list ap;
	int w;

	if (level > atomic_load(&level_now))
		return;
	if (journal) {
		w = snprintf(line, sizeof(line), "<%d>%s ", level, msgid);
	} else {
		struct timespec ts;
		struct tm tm;

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		w = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s ",
		             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
		             tm.tm_sec, ts.tv_nsec / 1000000L, level_name(level), msgid);
	}
	if (w > 0)
		n = (size_t)w < sizeof(line) ? (size_t)w : sizeof(line) - 1;
	va_start(ap, fmt);
	w = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	if (w > 0)
		n += (size_t)w < sizeof(line) - n ? (size_t)w : sizeof(line) - n - 1;
	if (n >= sizeof(line) - 1)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	/* One write per line: lines from threads never interleave. */
	if (write(STDERR_FILENO, line, n) < 0)
		return;
}

int log_ratelimit(struct sv_ratelimit *rl, unsigned burst, unsigned long long *suppressed)
{
	struct timespec ts;
	uint64_t now;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
	if (now - rl->window_ns >= 1000000000ULL) {
		rl->window_ns = now;
		rl->lines = 0;
	}
	if (rl->lines >= burst) {
		rl->suppressed++;
		return 0;
	}
	rl->lines++;
	*suppressed = rl->suppressed;
	rl->suppressed = 0;
	return 1;
}

const char *log_suppressed(unsigned long long n, char *buf, size_t cap)
{
	if (n == 0 || cap == 0)
		return "";
	snprintf(buf, cap, " (%llu similar lines suppressed)", n);
	return buf;
}
