/* loop.c - signals, status notifications and the watchdog (see loop.h).
 * Leaves out: everything the other threads do. */
#include "loop.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "history.h"
#include "log.h"
#include "notify.h"
#include "util.h"

static int sig_pipe[2] = {-1, -1};

/* Any thread may take the signal (OpenBLAS starts threads before main), so
 * a handler, not signalfd: it only writes the signal number to a pipe. */
static void on_signal(int signo)
{
	unsigned char b = (unsigned char)signo;
	int e = errno;

	if (write(sig_pipe[1], &b, 1) < 0)
		(void)0;
	errno = e;
}

int loop_signals_install(void)
{
	struct sigaction sa;

	if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		return -errno;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	return sig_pipe[0];
}

static void status(struct sv_daemon *d, uint64_t *last_pairs, uint64_t *last_ns)
{
	uint64_t now = now_mono_ns(), pairs = atomic_load(&d->cnt.pairs[SV_PAIR_OUTCOME_LOGGED]);
	double secs = (double)(now - *last_ns) / 1e9;
	double rate = secs > 0 ? (double)(pairs - *last_pairs) / secs : 0.0;

	notify_sendf("STATUS=%.0f pairs/s, model v%llu, step %llu, backlog %llu%s", rate,
	                (unsigned long long)atomic_load(&d->prog.model_version),
	                (unsigned long long)atomic_load(&d->prog.steps),
	                (unsigned long long)atomic_load(&d->prog.backlog),
	                atomic_load(&d->prog.paused) ? ", paused" : "");
	*last_pairs = pairs;
	*last_ns = now;
}

int loop_run(struct sv_daemon *d, int sigfd, const struct settings_cli *cli)
{
	uint64_t wd = notify_watchdog_usec(), last_beat = 0, last_pairs = 0;
	uint64_t last_ns = now_mono_ns(), last_wd = 0;
	int timeout_ms = 1000;

	if (wd > 0 && wd / 2000 < (uint64_t)timeout_ms)
		timeout_ms = (int)(wd / 2000) > 0 ? (int)(wd / 2000) : 1;
	for (;;) {
		struct pollfd p = {sigfd, POLLIN, 0};
		unsigned char signo;
		uint64_t beat;

		if (poll(&p, 1, timeout_ms) > 0 && read(sigfd, &signo, 1) == 1) {
			if (signo == SIGTERM || signo == SIGINT) {
				notify_send("STOPPING=1");
				atomic_store(&d->prog.not_ready, SV_READY_STOPPING);
				log_msg(
				    LOG_NOTICE, "SV-MAIN-STOP",
				    "%s: stopping input, training the batch in hand, checkpointing",
				    strsignal(signo));
				return 0;
			}
			if (signo == SIGHUP) {
				notify_reloading();
				log_msg(LOG_NOTICE, "SV-MAIN-RELOAD",
				       "SIGHUP: reloading the configuration");
				settings_reload(d, cli);
				notify_send("READY=1");
			}
		}
		if (atomic_load(&d->stopping)) { /* a thread's fatal error (d->failed) */
			notify_send("STOPPING=1");
			atomic_store(&d->prog.not_ready, SV_READY_STOPPING);
			return 0;
		}
		beat = atomic_load(&d->prog.heartbeat);
		if (wd > 0 && beat != last_beat) {
			/* fed only while the trainer loop turns */
			notify_send("WATCHDOG=1");
			last_beat = beat;
			last_wd = now_mono_ns();
		} else if (wd > 0 && now_mono_ns() - last_wd > wd * 1000ULL / 2) {
			log_msg(LOG_WARNING, "SV-MAIN-STALL",
			       "trainer made no progress for %llu ms; watchdog not fed",
			       (unsigned long long)((now_mono_ns() - last_wd) / 1000000ULL));
			last_wd = now_mono_ns();
		}
		if (now_mono_ns() - last_ns >= 1000000000ULL) {
			status(d, &last_pairs, &last_ns);
			history_tick(d->hist, d);
		}
	}
}
