/* http.h - the monitoring endpoint (endpoints.http), on libmicrohttpd.
 *
 * Read-only, GET and HEAD only; no admin verb is reachable here:
 *   GET /metrics  the Prometheus text exposition (expo.h)
 *   GET /livez    200 "ok" while the trainer's loop turns (its heartbeat
 *                 moved within the last HTTP_LIVE_S seconds), else 503
 *   GET /readyz   200 {"ready":true} when recovered, the store writable and
 *                 not full, and not stopping; else 503 with a JSON body
 *                 {"ready":false,"reason":"store_full","detail":"..."}
 *   GET /         the status page for the person on call (page.h)
 * Any other path gets 404; any other method 405 (with Allow: GET, HEAD).
 * A request announcing a body over HTTP_MAX_BODY bytes gets 413 without
 * the body being read; a chunked body that grows past it closes the
 * connection; a request line or headers over the per-connection memory
 * limit get libmicrohttpd's 414 or 431; a
 * connection idle for HTTP_TIMEOUT_S seconds is closed; at most
 * HTTP_MAX_CONN connections are served at once (more are refused at
 * accept).  libmicrohttpd runs its own polling thread; each response is
 * built from atomics and one store read transaction, so nothing here waits
 * for the trainer, a backup or a flush.
 */
#ifndef SV_DAEMON_HTTP_H
#define SV_DAEMON_HTTP_H

#include <stddef.h>

#define HTTP_MAX_CONN 32
#define HTTP_TIMEOUT_S 10
#define HTTP_MAX_BODY 4096
#define HTTP_MEMORY_LIMIT (32 * 1024)
#define HTTP_LIVE_S 10

struct sv_daemon;
struct http;

/* Listen on d->conf.ep_http ("HOST:PORT", HOST an IPv4 address, "localhost"
 * or a bracketed IPv6 address; PORT 0 picks a free one).  An empty endpoint
 * starts nothing: *out = NULL and 0.  The bound address is written to
 * d->http_bound (STATUS shows it).  An endpoint that does not parse is a
 * configuration error (SV_ERR_CONFIG, logged); one that cannot be bound (the
 * port taken) is logged as SV-HTTP-BIND and the daemon runs without it:
 * *out = NULL, d->http_bound "unavailable", and 0. */
int http_start(struct http **out, struct sv_daemon *d);

/* Stop the server and join its thread; accepts NULL. */
void http_stop(struct http *h);

/* Parse "HOST:PORT" as http_start does: 0 or SV_ERR_RANGE (with why). */
int http_parse_endpoint(const char *ep, char *host, size_t host_cap, unsigned *port,
                        const char **why);

#endif
