/* ctl.h - what simverifyctl's source files share: the run context, the
 * request/reply transport and the verb entry points.
 *
 * Every function here that can fail prints one line to stderr naming what
 * failed ("simverifyctl: cannot reach daemon at ipc:///x (timeout 5s)") and
 * returns an exit code from enum ctl_exit; nothing is printed twice.
 *
 * Transport.  Requests and replies are sv/proto.h messages.  Request/reply
 * verbs (admin, query, acked ingest) go over a ZMQ_DEALER socket to the
 * daemon's ROUTER sockets, with no envelope; replies are matched by request
 * id, so requests may be pipelined and a late reply to an earlier,
 * timed-out request is dropped rather than mistaken.  Plain ingest
 * uses ZMQ_PUSH.  Every send and every wait for a reply is bounded by the
 * --timeout.  Socket code stays in tools/ctl/ (STYLE.md).
 */
#ifndef SV_TOOLS_CTL_H
#define SV_TOOLS_CTL_H

#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#include "ctl_cli.h"
#include "sv/proto.h"

#define CTL_ENDPOINT_MAX 1024

/* One run of simverifyctl. */
struct ctl_ctx {
	const struct ctl_opts *o;
	void *zctx;                   /* owned; one per run */
	char admin[CTL_ENDPOINT_MAX]; /* resolved endpoints ("" if unknown) */
	char query[CTL_ENDPOINT_MAX];
	char ingest[CTL_ENDPOINT_MAX];
	char acked[CTL_ENDPOINT_MAX];
	char store_path[CTL_ENDPOINT_MAX]; /* the daemon's store, when known locally */
	char state_dir[CTL_ENDPOINT_MAX];  /* its state directory, when known locally */
	const char *source;                /* where they came from, for messages */
};

/* A connected socket. */
struct ctl_conn {
	void *sock;
	int type; /* ZMQ_DEALER or ZMQ_PUSH */
	char endpoint[CTL_ENDPOINT_MAX];
	int timeout_ms;
	uint64_t next_id; /* request ids, from a random start */
	uint64_t sent;    /* messages sent so far */
};

/* A received reply.  rep borrows from parts: valid until ctl_reply_close(). */
struct ctl_reply {
	zmq_msg_t parts[SV_PROTO_MAX_FRAMES + 1];
	size_t n_parts;
	struct sv_proto_reply rep;
};

/* Print "simverifyctl: " + the formatted message + newline to stderr. */
void ctl_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Resolve the endpoints (ctl_endpoints.c): --admin/--query/--ingest/
 * --acked-endpoint win; then --state-dir; then the config file (-c,
 * $SIMVERIFY_CONFIG, the installed path).  Returns an exit code. */
int ctl_endpoints_resolve(struct ctl_ctx *c);

/* config check FILE: parse FILE with sv/config.h, print every error.
 * Needs no daemon.  Returns CTL_EXIT_OK or CTL_EXIT_FAIL. */
int ctl_config_check(const char *path);

/* keygen BASE (ctl_keygen.c): a CURVE key pair into BASE.key (secret, mode
 * 0600) and BASE.pub; never overwrites.  Returns CTL_EXIT_OK or
 * CTL_EXIT_FAIL. */
int ctl_keygen(const char *base);

/* Before connecting sock to endpoint: for tcp:// with SIMVERIFY_CURVE_SERVER
 * (the daemon's .pub file) set, make sock a CURVE client with the secret key
 * in the SIMVERIFY_CURVE_KEY file.  Returns 0, or -1 after printing why. */
int ctl_curve_client(void *sock, const char *endpoint);

/* config show --json: the daemon's configuration (YAML text as
 * sv_config_show() renders it) as one JSON object, key by key. */
int ctl_config_print_json(const char *text, size_t len);

/* Open a socket of type (ZMQ_DEALER / ZMQ_PUSH) connected to endpoint, with
 * the run's timeout.  which ("admin", "query", ...) is named when the
 * endpoint is empty.  Returns an exit code. */
int ctl_conn_open(struct ctl_conn *cn, struct ctl_ctx *c, int type, const char *endpoint,
                  const char *which);
void ctl_conn_close(struct ctl_conn *cn);

/* The request id for the next message on cn (each call advances it). */
uint64_t ctl_conn_next_id(struct ctl_conn *cn);

/* Send the message in mb (built with request id req_id) without waiting. */
int ctl_conn_send(struct ctl_conn *cn, const struct sv_proto_msgbuf *mb);

/* Wait up to the timeout for the reply to req_id and decode it into *r (call
 * ctl_reply_close() after, also on failure).  Replies to other ids are
 * dropped.  Returns an exit code (CTL_EXIT_CONNECT on timeout,
 * CTL_EXIT_DAEMON for an undecodable reply); the reply's own status is not
 * judged here (see ctl_reply_check()). */
int ctl_conn_recv(struct ctl_conn *cn, uint64_t req_id, struct ctl_reply *r);

/* Wait up to the timeout for any reply (pipelined requests; the caller
 * matches r->rep.hdr.request_id).  Returns an exit code as ctl_conn_recv(). */
int ctl_conn_recv_any(struct ctl_conn *cn, struct ctl_reply *r);

/* As ctl_conn_recv_any(), waiting at most timeout_ms; returns -1 (nothing
 * printed) when no reply came in that time. */
int ctl_conn_recv_within(struct ctl_conn *cn, struct ctl_reply *r, int timeout_ms);

/* send + recv. */
int ctl_conn_call(struct ctl_conn *cn, const struct sv_proto_msgbuf *mb, uint64_t req_id,
                  struct ctl_reply *r);

void ctl_reply_init(struct ctl_reply *r);
void ctl_reply_close(struct ctl_reply *r);

/* Judge a reply's status: OK (and PARTIAL when partial_ok) give
 * CTL_EXIT_OK; other statuses print "WHAT: daemon refused: STATUS: MSG"
 * and give CTL_EXIT_REFUSED, or CTL_EXIT_DAEMON for INTERNAL. */
int ctl_reply_check(const struct ctl_reply *r, const char *what, int partial_ok);

/* Read a vector operand: "@FILE.npy" or "-" (a .npy on stdin), one row.
 * *vec is malloc'd (caller frees), *dim its length.  Returns an exit code. */
int ctl_read_vector_arg(const char *arg, float **vec, uint32_t *dim);

/* Is arg a vector operand ("@..." or "-") rather than an item id? */
int ctl_arg_is_vector(const char *arg);

/* Verbs. */
int ctl_admin_run(struct ctl_ctx *c); /* status metrics config checkpoint versions
                                         rollback pause resume flush backup reload
                                         export-model import-model */
int ctl_model_run(struct ctl_ctx *c); /* export-model import-model */
int ctl_query_run(struct ctl_ctx *c); /* score topk item */
int ctl_publish_run(struct ctl_ctx *c);
int ctl_evaluate_run(struct ctl_ctx *c);

#endif
