/* debug.h - fault and load knobs for tests, off unless their environment
 * variable is set.  Never set them in production.
 *
 *   SV_DEBUG_STEP_DELAY_MS=N   sleep N ms before every training step (live
 *                              and replay), to make training the bottleneck
 *                              in backpressure tests.
 *   SV_DEBUG_REPLAY_COMMIT_FAIL=N  the first N checkpoints of idle replay
 *                              steps fail (as on a full store), to test that
 *                              the steps are dropped and W recovered.
 *   SV_DEBUG_PUBLISH_DELAY_MS=N  the cluster leader sleeps N ms before it
 *                              publishes a model version, to stand for a
 *                              leader paused between deciding and writing
 *                              (the fencing test).
 *
 * Read once, at the first call.  Leaves out: config keys (these are not
 * settings), anything a production run could turn on by accident.
 */
#ifndef SV_DAEMON_DEBUG_H
#define SV_DAEMON_DEBUG_H

/* Called by the trainer before each step: sleeps when the knob is set. */
void debug_step_delay(void);

/* Called before an idle replay checkpoint: 1 when it is to fail. */
int debug_replay_commit_fail(void);

/* Called by the cluster lease thread before it publishes a model version. */
void debug_publish_delay(void);

#endif
