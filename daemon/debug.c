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

void debug_step_delay(void)
{
	static long delay_ms = -1;

	if (delay_ms < 0) {
		const char *s = getenv("SV_DEBUG_STEP_DELAY_MS");

		delay_ms = s ? strtol(s, NULL, 10) : 0;
		if (delay_ms < 0 || delay_ms > 60000)
			delay_ms = 0;
		if (delay_ms > 0)
			log_msg(LOG_WARNING, "SV-DEBUG-DELAY",
			       "SV_DEBUG_STEP_DELAY_MS: every training step sleeps %ld ms (test knob)",
			       delay_ms);
	}
	if (delay_ms > 0) {
		struct timespec ts = { delay_ms / 1000, (delay_ms % 1000) * 1000000L };

		nanosleep(&ts, NULL);
	}
}
