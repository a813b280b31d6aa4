/* reply.h - error replies that always go out.
 *
 * sv_proto_encode_reply refuses what the protocol cannot label (a verb the
 * request never named, e.g. a message too short for a header).  The daemon
 * must still answer every request: an unknown verb becomes
 * SV_PROTO_VERB_NONE with request id 0 (as sv/proto.h says), and should the
 * encoder still refuse, reply_error builds the two frames (header + message)
 * itself, exactly as docs/PROTOCOL.md lays them out.
 *
 * Also the request side the admin and query ROUTER sockets share: receiving
 * one whole request with its routing envelope, and the MALFORMED reply for a
 * request that has too many parts or nothing after the envelope.
 */
#ifndef SV_DAEMON_REPLY_H
#define SV_DAEMON_REPLY_H

#include <stdint.h>

#include <zmq.h>

#include "sv/proto.h"

struct sv_daemon;

/* A reply without payload: status, reason (only with MALFORMED; 0 is
 * replaced by frame_count there), message (may be NULL; borrowed until the
 * frames are sent).  Never fails. */
void reply_error(struct sv_proto_msgbuf *mb, int verb, uint64_t req_id, int status, int reason,
                 const char *msg);

/* Receive one whole multipart message from ROUTER socket sock into
 * m[0..cap-1] (the caller closes m[0..n-1] after use) and point fr[i] at part
 * i.  Parts beyond cap are received and dropped, and *over is set to 1 (else
 * 0).  *env: how many leading parts are the routing envelope (the peer
 * identity, plus the empty delimiter a REQ peer adds).  EINTR is retried.
 * Returns n >= 0, or -1 when the socket fails (ETERM on shutdown); nothing is
 * left open then. */
int reply_recv_request(void *sock, zmq_msg_t *m, struct sv_proto_frame *fr, int cap, int *over,
                       int *env);

/* The MALFORMED reply into mb for a request with too many parts (over) or no
 * frames after its envelope, counted as a reject in d.  Never fails. */
void reply_bad_envelope(struct sv_daemon *d, struct sv_proto_msgbuf *mb, int over);

#endif
