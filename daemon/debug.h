/* debug.h - fault and load knobs for tests, off unless their environment
 * variable is set.  Never set them in production.
 *
 *   SV_DEBUG_STEP_DELAY_MS=N   sleep N ms before every training step (live
 *                              and replay), to make training the bottleneck
 *                              in backpressure tests.
 *
 * Read once, at the first call.  Leaves out: config keys (these are not
 * settings), anything a production run could turn on by accident.
 */
#ifndef SV_DAEMON_DEBUG_H
#define SV_DAEMON_DEBUG_H

/* Called by the trainer before each step: sleeps when the knob is set. */
void debug_step_delay(void);

#endif
