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

int reply_recv_request(void *sock, zmq_msg_t *m, struct sv_proto_frame *fr, int cap, int *over,
                       int *env)
{
	int n = 0, more = 1;

	*over = 0;
	while (more) {
		zmq_msg_t t;

		zmq_msg_init(&t);
		if (zmq_msg_recv(&t, sock, 0) < 0) {
			zmq_msg_close(&t);
			if (zmq_errno() == EINTR)
				continue;
			for (int i = 0; i < n; i++)
				zmq_msg_close(&m[i]);
			return -1;
		}
		more = zmq_msg_more(&t);
		if (n < cap) {
			m[n++] = t;
		} else {
			zmq_msg_close(&t);
			*over = 1;
		}
	}
	for (int i = 0; i < n; i++) {
		fr[i].data = zmq_msg_data(&m[i]);
		fr[i].len = zmq_msg_size(&m[i]);
	}
	*env = 1 + (n >= 3 && fr[1].len == 0); /* REQ-style delimiter */
	return n;
}

void reply_bad_envelope(struct sv_daemon *d, struct sv_proto_msgbuf *mb, int over)
{
	reject_count(d, over ? SV_REJECT_TOOMANY_PARTS : SV_PROTO_REASON_NO_FRAMES);
	reply_error(mb, 0, 0, SV_PROTO_STATUS_MALFORMED,
	            over ? SV_PROTO_REASON_FRAME_COUNT : SV_PROTO_REASON_NO_FRAMES,
	            over ? "too many frames" : "no frames after the envelope");
}
