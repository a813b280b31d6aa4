/* notify.c - sd_notify's datagram protocol on NOTIFY_SOCKET (see notify.h).
 * Leaves out: credentials and fd passing, which the daemon does not need. */
#include "notify.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static int fd = -1;
static struct sockaddr_un addr;
static socklen_t addr_len;
static uint64_t wd_usec;

static uint64_t parse_u64(const char *s, int *ok)
{
	char *end;
	unsigned long long v;

	*ok = 0;
	if (s == NULL || *s == '\0')
		return 0;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return 0;
	*ok = 1;
	return v;
}

static void read_watchdog(void)
{
	const char *us = getenv("WATCHDOG_USEC");
	const char *pid = getenv("WATCHDOG_PID");
	int ok;
	uint64_t v = parse_u64(us, &ok);

	wd_usec = 0;
	if (!ok || v == 0)
		return;
	if (pid != NULL && *pid != '\0') {
		int pok;
		uint64_t p = parse_u64(pid, &pok);

		if (!pok || p != (uint64_t)getpid())
			return;
	}
	wd_usec = v;
}

int notify_open(void)
{
	const char *path = getenv("NOTIFY_SOCKET");
	size_t len;
	int rc;

	read_watchdog();
	if (path == NULL || *path == '\0')
		return 0;
	len = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || len < 2 || len >= sizeof(addr.sun_path))
		return -EINVAL;
	memset(&addr, 0, sizeof(addr));
	addr.sun_family = AF_UNIX;
	memcpy(addr.sun_path, path, len);
	if (path[0] == '@')
		addr.sun_path[0] = '\0'; /* abstract namespace: no terminating NUL counted */
	addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (path[0] == '/'));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = -errno;
		return rc;
	}
	return 0;
}

void notify_close(void)
{
	if (fd >= 0)
		close(fd);
	fd = -1;
}

int notify_enabled(void)
{
	return fd >= 0;
}

uint64_t notify_watchdog_usec(void)
{
	return wd_usec;
}

int notify_send(const char *text)
{
	ssize_t n;

	if (fd < 0)
		return 0;
	/* never block: a manager that reads slowly (a full datagram queue,
	 * net.unix.max_dgram_qlen is 10) must not stall signals or shutdown */
	n = sendto(fd, text, strlen(text), MSG_NOSIGNAL | MSG_DONTWAIT,
	           (const struct sockaddr *)&addr, addr_len);
	if (n < 0)
		return -errno;
	return 0;
}

int notify_sendf(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	if (fd < 0)
		return 0;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return notify_send(buf);
}

int notify_reloading(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return notify_sendf("RELOADING=1\nMONOTONIC_USEC=%llu",
	                       (unsigned long long)ts.tv_sec * 1000000ULL +
	                           (unsigned long long)ts.tv_nsec / 1000ULL);
}
