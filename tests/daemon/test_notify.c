/* test_notify.c - daemon/notify.c against a real datagram socket: path and
 * abstract ("@") NOTIFY_SOCKET addresses, WATCHDOG_USEC / WATCHDOG_PID,
 * RELOADING with MONOTONIC_USEC, malformed addresses, and no-op without
 * NOTIFY_SOCKET.  Criterion forks each test, so the module's globals and
 * the environment are per test.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "notify.h"

/* A datagram socket bound to name ("@x": abstract); returns the fd. */
static int listener(const char *name)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	size_t len = strlen(name);
	int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	struct timeval tv = {2, 0};

	cr_assert(fd >= 0);
	memcpy(a.sun_path, name, len);
	if (name[0] == '@')
		a.sun_path[0] = '\0';
	else
		len++;
	cr_assert(bind(fd, (struct sockaddr *)&a,
	               (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) == 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

static void recv_text(int fd, char *buf, size_t cap)
{
	ssize_t n = recv(fd, buf, cap - 1, 0);

	cr_assert(n > 0, "no datagram");
	buf[n] = '\0';
}

Test(notify, off_without_notify_socket)
{
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	cr_assert_eq(notify_open(), 0);
	cr_assert_eq(notify_enabled(), 0);
	cr_assert_eq(notify_send("READY=1"), 0);
	cr_assert_eq(notify_watchdog_usec(), 0);
}

Test(notify, path_socket_gets_ready)
{
	char path[64] = "/tmp/sv-notify-XXXXXX", buf[256];
	int fd;

	cr_assert(mkdtemp(path) != NULL);
	strcat(path, "/n");
	fd = listener(path);
	setenv("NOTIFY_SOCKET", path, 1);
	cr_assert_eq(notify_open(), 0);
	cr_assert_eq(notify_enabled(), 1);
	cr_assert_eq(notify_send("READY=1\nSTATUS=ok"), 0);
	recv_text(fd, buf, sizeof(buf));
	cr_assert_str_eq(buf, "READY=1\nSTATUS=ok");
	notify_close();
	close(fd);
	unlink(path);
	*strrchr(path, '/') = '\0';
	rmdir(path);
}

Test(notify, abstract_socket_and_reloading)
{
	char name[64], buf[256];
	int fd;

	snprintf(name, sizeof(name), "@sv-notify-test-%d", (int)getpid());
	fd = listener(name);
	setenv("NOTIFY_SOCKET", name, 1);
	cr_assert_eq(notify_open(), 0);
	cr_assert_eq(notify_reloading(), 0);
	recv_text(fd, buf, sizeof(buf));
	cr_assert(strncmp(buf, "RELOADING=1\nMONOTONIC_USEC=", 27) == 0, "%s", buf);
	cr_assert(strtoull(buf + 27, NULL, 10) > 0);
	cr_assert_eq(notify_sendf("STATUS=%d pairs/s", 42), 0);
	recv_text(fd, buf, sizeof(buf));
	cr_assert_str_eq(buf, "STATUS=42 pairs/s");
	notify_close();
	close(fd);
}

Test(notify, malformed_address_refused)
{
	setenv("NOTIFY_SOCKET", "relative/path", 1);
	cr_assert_eq(notify_open(), -EINVAL);
	setenv("NOTIFY_SOCKET", "@", 1);
	cr_assert_eq(notify_open(), -EINVAL);
	cr_assert_eq(notify_enabled(), 0);
}

Test(notify, watchdog_for_this_pid_only)
{
	char pid[32];

	unsetenv("NOTIFY_SOCKET");
	setenv("WATCHDOG_USEC", "3000000", 1);
	unsetenv("WATCHDOG_PID");
	notify_open();
	cr_assert_eq(notify_watchdog_usec(), 3000000);
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	setenv("WATCHDOG_PID", pid, 1);
	notify_open();
	cr_assert_eq(notify_watchdog_usec(), 3000000);
	setenv("WATCHDOG_PID", "1", 1);
	notify_open();
	cr_assert_eq(notify_watchdog_usec(), 0, "another process's watchdog");
	setenv("WATCHDOG_PID", pid, 1);
	setenv("WATCHDOG_USEC", "abc", 1);
	notify_open();
	cr_assert_eq(notify_watchdog_usec(), 0);
}
