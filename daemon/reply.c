/* reply.c - error replies that never fail to encode, and the request
 * receive the admin and query sockets share (see reply.h). */
#include "reply.h"

#include <errno.h>
#include <string.h>

#include "daemon.h"

void reply_error(struct sv_proto_msgbuf *mb, int verb, uint64_t req_id, int status, int reason,
                 const char *msg)
{
	size_t len = msg ? strlen(msg) : 0;
	uint8_t *h = mb->hdr;

	if (status == SV_PROTO_STATUS_MALFORMED && reason == 0)
		reason = SV_PROTO_REASON_FRAME_COUNT;
	if (status != SV_PROTO_STATUS_MALFORMED)
		reason = 0;
	if (sv_proto_verb_name(verb) == NULL) {
		verb = SV_PROTO_VERB_NONE; /* docs/PROTOCOL.md: unreadable or unknown verb */
		req_id = 0;
	}
	if (sv_proto_encode_reply(mb, verb, req_id, status, reason, msg) == 0)
		return;
	if (len > SV_PROTO_MAX_TEXT)
		len = SV_PROTO_MAX_TEXT;
	memset(h, 0, SV_PROTO_HEADER_SIZE);
	h[0] = SV_PROTO_MAGIC0;
	h[1] = SV_PROTO_MAGIC1;
	h[2] = SV_PROTO_VERSION;
	h[3] = (uint8_t)verb;
	h[4] = SV_PROTO_FLAG_REPLY;
	h[6] = (uint8_t)status;
	h[7] = (uint8_t)(status >> 8);
	for (int i = 0; i < 8; i++)
		h[8 + i] = (uint8_t)(req_id >> (8 * i));
	h[28] = (uint8_t)reason;
	h[29] = (uint8_t)(reason >> 8);
	mb->frames[0].data = h;
	mb->frames[0].len = SV_PROTO_HEADER_SIZE;
	mb->frames[1].data = msg ? msg : "";
	mb->frames[1].len = len;
	mb->n = 2;
}

void reply_bad_envelope(struct sv_daemon *d, struct sv_proto_msgbuf *mb, int over)
{
	reject_count(d, over ? SV_REJECT_TOOMANY_PARTS : SV_PROTO_REASON_NO_FRAMES);
	reply_error(mb, 0, 0, SV_PROTO_STATUS_MALFORMED,
	            over ? SV_PROTO_REASON_FRAME_COUNT : SV_PROTO_REASON_NO_FRAMES,
	            over ? "too many frames" : "no frames after the envelope");
}
