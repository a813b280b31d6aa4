/* trainer.h - the trainer thread: the daemon's only store writer.
 *
 * trainer_open (main thread, before READY=1) builds the model from the
 * active checkpoint, or from the seed when the store has none, and replays
 * the pair log after the checkpoint's applied_seq through the same batching
 * (sv/journal.h: control records mark where a partial batch was cut and
 * carry the batch size and optimizer parameters in force), so W is what it
 * was.  trainer_start binds the ingest sockets (ingest.h) and the control
 * socket, starts the ingest decode stage (which reads and decodes the
 * ingest sockets from then on) and the thread:
 *
 *   loop: poll the decode stage's queues + control; one ingest group (take
 *         up to group_max decoded messages, commit them, ack them through
 *         the stage); add the logged pairs to the
 *         minibatch; a full batch (B pairs), or one older than max_wait_ms
 *         (cut by a control record), goes to the step runner, which scores
 *         it with the current W (prequential), trains on it and publishes a
 *         snapshot while this thread reads the next group; checkpoint every
 *         ckpt_steps steps or ckpt_ms milliseconds.
 *   stop: (d->stopping) read what is already queued, train the batch in
 *         hand, checkpoint, return.
 *
 * Inline vectors (a side with a vector and no id) are stored as items under
 * a content id (sv/store.h, SV_STORE_ITEM_INLINE) so the pair log holds ids
 * only and replays.  Replay uses the items as they are at
 * replay time: an item replaced or deleted after a pair was logged replays
 * with its new value (or the pair is skipped and counted).
 */
#ifndef SV_DAEMON_TRAINER_H
#define SV_DAEMON_TRAINER_H

#include "daemon.h"

struct trainer;

/* Recover (load + replay) and publish the first snapshot.  Logs each
 * failure.  Returns 0 or a negative code. */
int trainer_open(struct trainer **out, struct sv_daemon *d);

/* Bind the sockets and start the thread.  Returns 0 or a negative code. */
int trainer_start(struct trainer *t);

/* Wait for the thread (after d->stopping was set; it checkpoints first),
 * then stop the decode stage once it has sent the thread's last acks. */
void trainer_join(struct trainer *t);
void trainer_close(struct trainer *t);

#endif
