/* notify.h - the systemd notification protocol, without libsystemd.
 *
 * systemd passes NOTIFY_SOCKET (a path, or "@name" for an abstract socket)
 * to Type=notify services; the service sends datagrams of "KEY=VALUE\n"
 * lines to it: READY=1, STATUS=..., WATCHDOG=1, RELOADING=1 with
 * MONOTONIC_USEC=..., STOPPING=1.  WATCHDOG_USEC (and WATCHDOG_PID, when
 * set, must equal our pid) asks for WATCHDOG=1 at least that often.
 *
 * Without NOTIFY_SOCKET every call is a no-op returning 0.  The socket is
 * opened once by notify_open and shared; sends are one sendto(2) each,
 * safe from any thread.
 * Leaves out: file-descriptor passing (FDSTORE), barriers.
 */
#ifndef SV_DAEMON_NOTIFY_H
#define SV_DAEMON_NOTIFY_H

#include <stdint.h>

/* Read NOTIFY_SOCKET and WATCHDOG_USEC/WATCHDOG_PID and open the datagram
 * socket.  Returns 0 (also when there is nothing to notify), -EINVAL for a
 * malformed address, or -errno. */
int notify_open(void);
void notify_close(void);

/* 1 when NOTIFY_SOCKET was set and valid. */
int notify_enabled(void);

/* The watchdog period in microseconds (0 when no watchdog was asked for). */
uint64_t notify_watchdog_usec(void);

/* Send text as one datagram (newline-separated assignments), without
 * blocking: when the receiver's queue is full the message is dropped and
 * -EAGAIN returned (a notification must never stall the daemon).  Returns 0
 * or -errno; 0 without doing anything when notifications are off. */
int notify_send(const char *text);

/* printf-style variant of notify_send. */
int notify_sendf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* "RELOADING=1\nMONOTONIC_USEC=<now>". */
int notify_reloading(void);

#endif
