/* loop.h - the main thread's loop: signals, sd_notify status and watchdog.
 *
 * Signal handlers (loop_signals_install) write the signal number to a pipe
 * read here (a handler, not signalfd: OpenBLAS threads exist before main):
 *   SIGTERM, SIGINT  STOPPING=1, then return: main stops the threads
 *                    (the trainer trains the batch in hand and checkpoints)
 *   SIGHUP           RELOADING=1 + MONOTONIC_USEC, settings_reload, READY=1
 * A thread that cannot go on (d->failed) sets d->stopping: STOPPING=1, and
 * return as for SIGTERM (checked at least once a second).
 * Every second (or half the watchdog period) STATUS= carries pairs/s, the
 * model version and the backlog, and the status page's history is sampled
 * (history.h); WATCHDOG=1 is sent only when the trainer's
 * heartbeat moved since the last one, so a stuck trainer gets the daemon
 * restarted.
 */
#ifndef SV_DAEMON_LOOP_H
#define SV_DAEMON_LOOP_H

#include "settings.h"
#include "daemon.h"

/* Install the handlers for SIGTERM, SIGINT, SIGHUP; ignore SIGPIPE.
 * Returns the pipe's read end or -errno. */
int loop_signals_install(void);

/* Run until SIGTERM/SIGINT or d->stopping.  Returns 0. */
int loop_run(struct sv_daemon *d, int sigfd, const struct settings_cli *cli);

#endif
