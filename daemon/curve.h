/* curve.h - transport hardening of simverifyd's outside sockets: CURVE on
 * tcp:// endpoints with a ZAP handler that admits clients by allow-list,
 * and ZeroMQ's own message-size cap (ZMQ_MAXMSGSIZE) on every endpoint.
 *
 * CURVE (security.curve_server_key set): every outside socket bound to a
 * tcp:// endpoint becomes a CURVE server with the daemon's key pair (the
 * public key is derived from the secret).  ipc:// endpoints stay plain: the
 * file mode guards them.  Each socket carries a ZAP domain naming its role,
 * "ingest" (both ingest sockets), "query" or "admin"; the ZAP handler (a
 * thread on inproc://zeromq.zap.01 in the daemon's context) admits a CURVE
 * client when its public key is on that role's allow-list:
 *     security.curve_allow_<role>, else security.curve_allow, else anyone
 *     who completes the CURVE handshake (encryption without admission).
 * A refused client's handshake fails (status 400): it never gets a message
 * through and sees ZMQ_EVENT_HANDSHAKE_FAILED_AUTH on its monitor.  Each
 * refusal is counted and logged (SV-CURVE-DENIED, at most one line a second).
 *
 * Key files (written by `simverifyctl keygen`): blank lines and lines
 * starting with '#' are skipped; the server key file holds the 40-character
 * z85 secret key on one line; an allow-list holds one z85 public key a line,
 * optionally followed by whitespace and a name (the ZAP user id, logged).
 *
 * ZMQ_MAXMSGSIZE: each outside socket drops a connection that sends a frame
 * over 2 x limits.max_msg_bytes, before buffering it.  Below that the
 * decoders answer an oversize message with an error (docs/BAD_INPUT.md).
 *
 * State is one process-wide instance (there is one daemon per process).
 * Leaves out: CURVE for clients (simverifyctl, svclient.py), key rotation
 * without a restart.
 */
#ifndef SV_DAEMON_CURVE_H
#define SV_DAEMON_CURVE_H

#include <stdint.h>

struct sv_daemon;
struct sv_dconf;

/* Read the key and allow-lists (logging every problem), and when CURVE is on
 * start the ZAP handler in d->zctx.  Call after zmq_ctx_new and before any
 * socket is bound.  Returns 0, SV_ERR_CONFIG (unreadable or bad key file,
 * logged), or -errno / a ZeroMQ error. */
int curve_start(struct sv_daemon *d);

/* Read the key file and allow-lists of c alone, logging every problem (what
 * --check-config checks).  Returns 0 (also with CURVE off) or
 * SV_ERR_CONFIG. */
int curve_check(const struct sv_dconf *c);

/* Harden socket s that is about to be bound to ep (one of the daemon's
 * configured outside endpoints): ZMQ_MAXMSGSIZE always; for tcp:// with
 * CURVE on, the CURVE server options and the ZAP domain of ep's role.
 * zmq-style: returns 0, or -1 with errno set (so zmq_errno() reports it). */
int curve_socket_setup(void *s, const char *ep);

/* curve_socket_setup, then bind s to ep; what names the socket in the log
 * line (bound, or why not).  Returns 0 or -errno. */
int curve_bind(void *s, const char *ep, const char *what);

/* Clients refused by the ZAP handler since start, by the role of the socket
 * they tried (0 ingest, 1 query, 2 admin; CURVE_ROLES: a request naming no
 * role of ours), and the role's name ("ingest", "query", "admin", "none"). */
#define CURVE_ROLES 3
uint64_t curve_denied(int role);
const char *curve_role_name(int role);

/* Join the ZAP thread; call after zmq_ctx_shutdown and before
 * zmq_ctx_term.  Safe when curve_start failed or was never called. */
void curve_stop(void);

#endif
