/* debug.c - the test knobs of debug.h. */
#include "debug.h"

#include <stdlib.h>
#include <time.h>

#include "log.h"

int debug_replay_commit_fail(void)
{
	static long left = -1;

	if (left < 0) {
		const char *s = getenv("SV_DEBUG_REPLAY_COMMIT_FAIL");

		left = s ? strtol(s, NULL, 10) : 0;
		if (left < 0)
			left = 0;
		if (left > 0)
			log_msg(LOG_WARNING, "SV-DEBUG-REPLAY",
			       "SV_DEBUG_REPLAY_COMMIT_FAIL: %ld idle replay checkpoints will fail "
			       "(test knob)",
			       left);
	}
	if (left == 0)
		return 0;
	left--;
	return 1;
}

/* A delay knob: read once into *ms (0 when unset or out of range). */
static void sleep_knob(long *ms, const char *env, const char *what)
{
	if (*ms < 0) {
		const char *s = getenv(env);

		*ms = s ? strtol(s, NULL, 10) : 0;
		if (*ms < 0 || *ms > 60000)
			*ms = 0;
		if (*ms > 0)
			log_msg(LOG_WARNING, "SV-DEBUG-DELAY", "%s: %s sleeps %ld ms (test knob)", env,
			        what, *ms);
	}
	if (*ms > 0) {
		struct timespec ts = {*ms / 1000, (*ms % 1000) * 1000000L};

		nanosleep(&ts, NULL);
	}
}

void debug_step_delay(void)
{
	static long ms = -1;

	sleep_knob(&ms, "SV_DEBUG_STEP_DELAY_MS", "every training step");
}

void debug_publish_delay(void)
{
	static long ms = -1;

	sleep_knob(&ms, "SV_DEBUG_PUBLISH_DELAY_MS", "every model publish");
}
