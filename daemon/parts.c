/* parts.c - receive one whole multipart message (see parts.h). */
#include "parts.h"

#include <errno.h>

int parts_recv(void *sock, struct parts *p, int flags)
{
	int more = 1;

	p->n = 0;
	p->over = 0;
	p->bytes = 0;
	while (more) {
		zmq_msg_t t;

		zmq_msg_init(&t);
		if (zmq_msg_recv(&t, sock, p->n == 0 && !p->over ? flags : 0) < 0) {
			int e = zmq_errno();

			zmq_msg_close(&t);
			if (e == EINTR)
				continue;
			if (p->n == 0 && !p->over && e == EAGAIN)
				return 0;
			parts_close(p);
			return -1;
		}
		more = zmq_msg_more(&t);
		p->bytes += zmq_msg_size(&t);
		if (p->n < PARTS_MAX) {
			zmq_msg_init(&p->m[p->n]);
			zmq_msg_move(&p->m[p->n], &t); /* a msg_t is never copied by value */
			zmq_msg_close(&t);
			p->fr[p->n].data = zmq_msg_data(&p->m[p->n]);
			p->fr[p->n].len = zmq_msg_size(&p->m[p->n]);
			p->n++;
		} else {
			zmq_msg_close(&t);
			p->over = 1;
		}
	}
	return p->n;
}

void parts_close(struct parts *p)
{
	for (int i = 0; i < p->n; i++)
		zmq_msg_close(&p->m[i]);
	p->n = 0;
}

int parts_envelope(const struct parts *p)
{
	return 1 + (p->n >= 3 && p->fr[1].len == 0);
}

void parts_move(struct parts *dst, struct parts *src)
{
	for (int i = 0; i < src->n; i++) {
		zmq_msg_init(&dst->m[i]);
		zmq_msg_move(&dst->m[i], &src->m[i]);
		/* a small message lives inside its msg_t: point at the new one */
		dst->fr[i].data = zmq_msg_data(&dst->m[i]);
		dst->fr[i].len = zmq_msg_size(&dst->m[i]);
	}
	dst->n = src->n;
	dst->over = src->over;
	dst->bytes = src->bytes;
	parts_close(src);
}

void *parts_socket(void *ctx, int type)
{
	int zero = 0;
	void *s = zmq_socket(ctx, type);

	if (s != NULL)
		zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
	return s;
}

int parts_send_routed(void *router, const void *rid, size_t rid_len, int delim,
                      const struct sv_proto_msgbuf *mb)
{
	int more = mb->n > 0 ? ZMQ_SNDMORE : 0;

	if (zmq_send(router, rid, rid_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
	    (delim && zmq_send(router, "", 0, more | ZMQ_DONTWAIT) < 0))
		return -1;
	for (size_t i = 0; i < mb->n; i++)
		if (zmq_send(router, mb->frames[i].data, mb->frames[i].len,
		             (i + 1 < mb->n ? ZMQ_SNDMORE : 0) | ZMQ_DONTWAIT) < 0)
			return -1;
	return 0;
}
