/* ctl_conn.c - simverifyctl's sockets: connect with timeouts, send a request,
 * wait for its reply, judge its status; and the vector operands (see ctl.h).
 *
 * Leaves out: what any verb means (ctl_admin.c, ctl_query.c, ...).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "sv/error.h"
#include "sv/npy.h"

void ctl_err(const char *fmt, ...)
{
	va_list ap;

	fputs("simverifyctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static double timeout_s(const struct ctl_conn *cn)
{
	return cn->timeout_ms / 1000.0;
}

int ctl_conn_open(struct ctl_conn *cn, struct ctl_ctx *c, int type, const char *endpoint,
                  const char *which)
{
	int zero = 0, one = 1, tmo = c->o->timeout_ms;
	struct timespec ts;

	memset(cn, 0, sizeof(*cn));
	if (!endpoint || !*endpoint) {
		ctl_err("no %s endpoint known (give --%s ENDPOINT, --state-dir DIR or -c FILE)",
		        which, strcmp(which, "acked ingest") == 0 ? "acked-endpoint" : which);
		return CTL_EXIT_USAGE;
	}
	snprintf(cn->endpoint, sizeof(cn->endpoint), "%s", endpoint);
	cn->timeout_ms = tmo;
	cn->type = type;
	clock_gettime(CLOCK_REALTIME, &ts);
	cn->next_id =
	    ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 40);

	/* A missing ipc:// socket file is the commonest mistake: say so now. */
	if (strncmp(endpoint, "ipc://", 6) == 0 && endpoint[6] != '@') {
		struct stat st;

		if (stat(endpoint + 6, &st) != 0) {
			ctl_err("cannot reach daemon at %s: %s (is simverifyd running?)", endpoint,
			        strerror(errno));
			return CTL_EXIT_CONNECT;
		}
	}
	cn->sock = zmq_socket(c->zctx, type);
	if (!cn->sock) {
		ctl_err("zmq_socket: %s", zmq_strerror(zmq_errno()));
		return CTL_EXIT_FAIL;
	}
	zmq_setsockopt(cn->sock, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(cn->sock, ZMQ_SNDTIMEO, &tmo, sizeof(tmo));
	zmq_setsockopt(cn->sock, ZMQ_RCVTIMEO, &tmo, sizeof(tmo));
	/* Queue nothing until a connection exists: a send then times out
	 * instead of vanishing into a queue for a daemon that is not there. */
	zmq_setsockopt(cn->sock, ZMQ_IMMEDIATE, &one, sizeof(one));
	if (type == ZMQ_PUSH) {
		/* Fire-and-forget keeps only a few messages queued here: a slow
		 * daemon then blocks the sender (and a stalled one times it out)
		 * instead of leaving thousands of pairs queued in this process,
		 * to be dropped when the linger runs out at exit. */
		int hwm = 8;

		zmq_setsockopt(cn->sock, ZMQ_SNDHWM, &hwm, sizeof(hwm));
	}
	if (ctl_curve_client(cn->sock, endpoint) != 0) { /* ctl_keygen.c */
		zmq_close(cn->sock);
		cn->sock = NULL;
		return CTL_EXIT_USAGE;
	}
	if (zmq_connect(cn->sock, endpoint) != 0) {
		int e = zmq_errno();

		ctl_err("cannot connect to %s: %s", endpoint, zmq_strerror(e));
		zmq_close(cn->sock);
		cn->sock = NULL;
		return e == EINVAL || e == EPROTONOSUPPORT ? CTL_EXIT_USAGE : CTL_EXIT_CONNECT;
	}
	return CTL_EXIT_OK;
}

void ctl_conn_close(struct ctl_conn *cn)
{
	if (cn && cn->sock) {
		zmq_close(cn->sock);
		cn->sock = NULL;
	}
}

uint64_t ctl_conn_next_id(struct ctl_conn *cn)
{
	return ++cn->next_id;
}

int ctl_conn_send(struct ctl_conn *cn, const struct sv_proto_msgbuf *mb)
{
	for (size_t i = 0; i < mb->n; i++) {
		int flags = i + 1 < mb->n ? ZMQ_SNDMORE : 0;

		if (zmq_send(cn->sock, mb->frames[i].data, mb->frames[i].len, flags) < 0)
			goto fail;
	}
	cn->sent++;
	return CTL_EXIT_OK;
fail:
	if (zmq_errno() == EAGAIN && cn->type == ZMQ_PUSH && cn->sent)
		ctl_err("cannot reach daemon at %s (timeout %gs): it stopped taking messages "
		        "(paused, stopped, or its queue is full)",
		        cn->endpoint, timeout_s(cn));
	else if (zmq_errno() == EAGAIN)
		ctl_err("cannot reach daemon at %s (timeout %gs)", cn->endpoint, timeout_s(cn));
	else
		ctl_err("send to %s: %s", cn->endpoint, zmq_strerror(zmq_errno()));
	return CTL_EXIT_CONNECT;
}

void ctl_reply_init(struct ctl_reply *r)
{
	memset(r, 0, sizeof(*r));
}

void ctl_reply_close(struct ctl_reply *r)
{
	for (size_t i = 0; i < r->n_parts; i++)
		zmq_msg_close(&r->parts[i]);
	r->n_parts = 0;
}

/* Receive one whole multipart message into r->parts (extra parts dropped;
 * n_parts counts them all, capped).  Returns 0, or -1 with zmq_errno(). */
static int recv_multipart(struct ctl_conn *cn, struct ctl_reply *r, size_t *total)
{
	int more = 1;

	ctl_reply_close(r);
	*total = 0;
	while (more) {
		zmq_msg_t scratch,
		    *m = r->n_parts < SV_PROTO_MAX_FRAMES + 1 ? &r->parts[r->n_parts] : &scratch;

		zmq_msg_init(m);
		if (zmq_msg_recv(m, cn->sock, 0) < 0) {
			zmq_msg_close(m);
			return -1;
		}
		more = zmq_msg_more(m);
		if (m == &scratch)
			zmq_msg_close(m);
		else
			r->n_parts++;
		(*total)++;
	}
	return 0;
}

/* Receive and decode one reply within the time left until deadline (a
 * CLOCK_MONOTONIC time in ms).  want_id: only a decode failure of a reply
 * to this id is fatal (others are skipped); any_id makes every failure
 * fatal.  Returns an exit code, or -1 for "a reply to another id, skipped". */
static int recv_one(struct ctl_conn *cn, struct ctl_reply *r, int64_t deadline_ms, uint64_t want_id,
                    int any_id, int quiet_timeout)
{
	struct sv_proto_frame fr[SV_PROTO_MAX_FRAMES];
	struct sv_proto_error perr;
	struct timespec now;
	size_t total, skip = 0, nf;
	int64_t left;

	clock_gettime(CLOCK_MONOTONIC, &now);
	left = deadline_ms - ((int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000);
	if (left <= 0)
		left = 1;
	zmq_setsockopt(cn->sock, ZMQ_RCVTIMEO, &(int){(int)left}, sizeof(int));
	if (recv_multipart(cn, r, &total) != 0) {
		if (zmq_errno() == EAGAIN && quiet_timeout)
			return -2;
		if (zmq_errno() == EAGAIN)
			ctl_err("cannot reach daemon at %s (timeout %gs)", cn->endpoint,
			        timeout_s(cn));
		else
			ctl_err("receive from %s: %s", cn->endpoint, zmq_strerror(zmq_errno()));
		return CTL_EXIT_CONNECT;
	}
	if (r->n_parts > 0 && zmq_msg_size(&r->parts[0]) == 0)
		skip = 1; /* an empty delimiter, as a REQ-style peer would send */
	if (total > SV_PROTO_MAX_FRAMES + skip) {
		ctl_err("reply from %s has %zu frames (at most %d expected)", cn->endpoint,
		        total - skip, SV_PROTO_MAX_FRAMES);
		return CTL_EXIT_DAEMON;
	}
	nf = r->n_parts - skip;
	for (size_t i = 0; i < nf; i++) {
		fr[i].data = zmq_msg_data(&r->parts[i + skip]);
		fr[i].len = zmq_msg_size(&r->parts[i + skip]);
	}
	if (sv_proto_decode_reply(fr, nf, NULL, &r->rep, &perr) != 0) {
		if (!any_id && perr.have_header && perr.header.request_id != want_id)
			return -1; /* garbage for an older request: not ours */
		ctl_err("malformed reply from %s: %s", cn->endpoint, perr.msg);
		return CTL_EXIT_DAEMON;
	}
	if (!any_id && r->rep.hdr.request_id != want_id)
		return -1; /* a late reply to a request we gave up on */
	return CTL_EXIT_OK;
}

static int64_t deadline_after(int ms)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000 + ms;
}

int ctl_conn_recv(struct ctl_conn *cn, uint64_t req_id, struct ctl_reply *r)
{
	int64_t deadline = deadline_after(cn->timeout_ms);
	int rc;

	while ((rc = recv_one(cn, r, deadline, req_id, 0, 0)) == -1)
		;
	return rc;
}

int ctl_conn_recv_any(struct ctl_conn *cn, struct ctl_reply *r)
{
	return recv_one(cn, r, deadline_after(cn->timeout_ms), 0, 1, 0);
}

int ctl_conn_recv_within(struct ctl_conn *cn, struct ctl_reply *r, int timeout_ms)
{
	int rc = recv_one(cn, r, deadline_after(timeout_ms), 0, 1, 1);

	return rc == -2 ? -1 : rc;
}

int ctl_conn_call(struct ctl_conn *cn, const struct sv_proto_msgbuf *mb, uint64_t req_id,
                  struct ctl_reply *r)
{
	int rc = ctl_conn_send(cn, mb);

	return rc ? rc : ctl_conn_recv(cn, req_id, r);
}

int ctl_reply_check(const struct ctl_reply *r, const char *what, int partial_ok)
{
	uint16_t st = r->rep.status;

	if (st == SV_PROTO_STATUS_OK || (partial_ok && st == SV_PROTO_STATUS_PARTIAL))
		return CTL_EXIT_OK;
	if (st == SV_PROTO_STATUS_MALFORMED)
		ctl_err("%s: daemon refused the request: malformed (%s)%s%.*s", what,
		        sv_proto_reason_name(r->rep.reason), r->rep.msg_len ? ": " : "",
		        (int)r->rep.msg_len, r->rep.msg ? r->rep.msg : "");
	else
		ctl_err("%s: daemon %s: %s%s%.*s", what,
		        st == SV_PROTO_STATUS_INTERNAL ? "failed" : "refused",
		        sv_proto_status_name(st), r->rep.msg_len ? ": " : "", (int)r->rep.msg_len,
		        r->rep.msg ? r->rep.msg : "");
	return st == SV_PROTO_STATUS_INTERNAL ? CTL_EXIT_DAEMON : CTL_EXIT_REFUSED;
}

int ctl_arg_is_vector(const char *arg)
{
	return arg[0] == '@' || strcmp(arg, "-") == 0;
}

int ctl_read_vector_arg(const char *arg, float **vec, uint32_t *dim)
{
	const char *name = strcmp(arg, "-") == 0 ? "standard input" : arg + 1;
	uint32_t rows, cols;
	float *v = NULL;
	int rc;

	if (strcmp(arg, "-") == 0)
		rc = sv_npy_load_fd(STDIN_FILENO, &v, &rows, &cols);
	else
		rc = sv_npy_load(arg + 1, &v, &rows, &cols);
	if (rc) {
		ctl_err("%s: cannot read a float32 .npy vector: %s", name,
		        rc == SV_ERR_VERSION ? "not a float32 C-order 1-D/2-D array"
		                             : sv_strerror(rc));
		return CTL_EXIT_FAIL;
	}
	if (rows != 1) {
		ctl_err("%s: holds %u x %u, expected one vector", name, rows, cols);
		free(v);
		return CTL_EXIT_FAIL;
	}
	*vec = v;
	*dim = cols;
	return CTL_EXIT_OK;
}
