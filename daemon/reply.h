/* reply.h - error replies that always go out.
 *
 * sv_proto_encode_reply refuses what the protocol cannot label (a verb the
 * request never named, e.g. a message too short for a header).  The daemon
 * must still answer every request: an unknown verb becomes
 * SV_PROTO_VERB_NONE with request id 0 (as sv/proto.h says), and should the
 * encoder still refuse, reply_error builds the two frames (header + message)
 * itself, exactly as docs/PROTOCOL.md lays them out.
 *
 * Also the MALFORMED reply for a request that has too many parts or nothing
 * after its envelope (parts.h receives it).
 */
#ifndef SV_DAEMON_REPLY_H
#define SV_DAEMON_REPLY_H

#include <stdint.h>

#include "sv/proto.h"

struct sv_daemon;

/* A reply without payload: status, reason (only with MALFORMED; 0 is
 * replaced by frame_count there), message (may be NULL; borrowed until the
 * frames are sent).  Never fails. */
void reply_error(struct sv_proto_msgbuf *mb, int verb, uint64_t req_id, int status, int reason,
                 const char *msg);

/* The MALFORMED reply into mb for a request with too many parts (over) or no
 * frames after its envelope, counted as a reject in d.  Never fails. */
void reply_bad_envelope(struct sv_daemon *d, struct sv_proto_msgbuf *mb, int over);

#endif
