/* admin.h - the admin socket: STATUS, VERSIONS, CONFIG, BACKUP, RELOAD and
 * MODEL_GET (from the latest snapshot) here; CHECKPOINT, ROLLBACK, PAUSE,
 * RESUME, FLUSH, PURGE and MODEL_PUT (dims checked here first) forwarded to
 * the trainer (the store's only writer) over inproc and its reply relayed
 * when it comes.  Nothing here waits: BACKUP runs on a thread of its own and
 * the trainer's replies are relayed as they arrive, so STATUS (and the HTTP
 * endpoint, which has its own thread) answer during a long FLUSH, CHECKPOINT
 * or BACKUP.
 *
 * The socket is a ROUTER, by default ipc://STATE_DIR/admin.sock, made with
 * file mode admin_mode (0600): only the daemon's user may connect.  Replies
 * carry JSON payloads (STATUS: see docs/DAEMON.md).
 */
#ifndef SV_DAEMON_ADMIN_H
#define SV_DAEMON_ADMIN_H

#include <stddef.h>

#include "daemon.h"

struct dadmin;

/* Bind and start the thread; *out is set even on failure (admin_stop after
 * zmq_ctx_shutdown).  Returns 0 or a negative code (logged). */
int admin_start(struct dadmin **out, struct sv_daemon *d);
void admin_stop(struct dadmin *a);

#endif
