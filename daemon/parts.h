/* parts.h - one multipart ZeroMQ message, received whole, as frames.
 *
 * Every socket of the daemon reads its messages through parts_recv: the
 * ingest PULL and ROUTER, the query and admin ROUTERs, the trainer's control
 * socket, the ZAP handler; sv-bench's query client too.  It depends on
 * libzmq and sv/proto.h's frame type only.
 *
 * A message with more than PARTS_MAX parts is still received whole (so the
 * socket is left at a message boundary); the parts past PARTS_MAX are
 * closed at once and p->over is set.  p->bytes counts every part's bytes,
 * dropped ones included.
 */
#ifndef SV_DAEMON_PARTS_H
#define SV_DAEMON_PARTS_H

#include <stddef.h>
#include <zmq.h>

#include "sv/proto.h"

#define PARTS_MAX 16 /* routing id, delimiter, SV_PROTO_MAX_FRAMES, spare */

struct parts {
	zmq_msg_t m[PARTS_MAX];
	struct sv_proto_frame fr[PARTS_MAX]; /* fr[i] points into m[i] */
	int n;                               /* parts held */
	int over;                            /* parts beyond PARTS_MAX were dropped */
	size_t bytes;                        /* bytes of all parts */
};

/* Receive one message from sock into p.  flags 0 blocks for the first part;
 * ZMQ_DONTWAIT returns 0 when no message is waiting.  EINTR is retried.
 * Returns the number of parts held (> 0), 0, or -1 when the socket fails
 * (zmq_errno(): ETERM at shutdown); nothing is held then.  After a return
 * > 0 the caller calls parts_close. */
int parts_recv(void *sock, struct parts *p, int flags);
void parts_close(struct parts *p);
/* Move src's parts into dst (uninitialised), to keep a message past the
 * next receive; src is left empty. */
void parts_move(struct parts *dst, struct parts *src);

/* A new socket with linger 0, set at birth: every daemon socket is made
 * here.  (Set at close it is too late: after zmq_ctx_shutdown setsockopt
 * fails, the default infinite linger stays, and replies queued for a peer
 * that never reads would hold zmq_ctx_term, and the exit, for ever.)
 * NULL when zmq_socket fails. */
void *parts_socket(void *ctx, int type);

/* Send the reply mb on ROUTER socket router to the peer with routing id
 * rid, after an empty delimiter when delim (a REQ peer), never blocking.
 * 0, or -1 when ZeroMQ refused a part (peer gone or not reading: the
 * caller counts it). */
int parts_send_routed(void *router, const void *rid, size_t rid_len, int delim,
                      const struct sv_proto_msgbuf *mb);

/* How many leading parts of a ROUTER message are its envelope: the peer's
 * routing id, and the empty delimiter a REQ-style peer adds. */
int parts_envelope(const struct parts *p);

#endif
