/* http.c - the read-only monitoring endpoint (see http.h).
 * Leaves out: what the numbers are (expo.c) and the page (page.c). */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "expo.h"
#include "log.h"
#include "page.h"
#include "sv/error.h"
#include "util.h"

struct http {
	struct sv_daemon *d;
	struct MHD_Daemon *mhd;
	/* /livez: the trainer heartbeat last seen and when (HTTP thread only) */
	uint64_t beat, beat_ns;
};

/* Per-request state: how much body arrived. */
struct req {
	size_t body;
};

static struct sv_ratelimit rl_log;
static unsigned long long sup;
static char sbuf[64];

int http_parse_endpoint(const char *ep, char *host, size_t host_cap, unsigned *port,
                        const char **why)
{
	const char *colon;
	size_t hl;
	char *end;
	unsigned long p;

	if (ep[0] == '[') {
		const char *close = strchr(ep, ']');

		if (close == NULL || close[1] != ':') {
			*why = "a bracketed IPv6 address must be followed by :PORT";
			return SV_ERR_RANGE;
		}
		hl = (size_t)(close - ep - 1);
		ep++;
		colon = close + 1;
	} else {
		colon = strrchr(ep, ':');
		if (colon == NULL) {
			*why = "expected HOST:PORT";
			return SV_ERR_RANGE;
		}
		hl = (size_t)(colon - ep);
	}
	if (hl == 0 || hl >= host_cap) {
		*why = "the host part is empty or too long";
		return SV_ERR_RANGE;
	}
	errno = 0;
	p = strtoul(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end != '\0' || errno != 0 || p > 65535) {
		*why = "the port must be a number from 0 to 65535";
		return SV_ERR_RANGE;
	}
	memcpy(host, ep, hl);
	host[hl] = '\0';
	*port = (unsigned)p;
	return 0;
}

static enum MHD_Result send_text(struct MHD_Connection *c, unsigned status, const char *type,
                                 char *body, size_t len, int owned)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(
	    len, body, owned ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
	enum MHD_Result ok;

	if (r == NULL) {
		if (owned)
			free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	ok = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ok;
}

static enum MHD_Result send_static(struct MHD_Connection *c, unsigned status, const char *msg)
{
	return send_text(c, status, "text/plain; charset=utf-8", (char *)msg, strlen(msg), 0);
}

static enum MHD_Result livez(struct http *h, struct MHD_Connection *c)
{
	uint64_t beat = atomic_load(&h->d->prog.heartbeat), now = now_mono_ns();

	if (beat != h->beat || h->beat_ns == 0) {
		h->beat = beat;
		h->beat_ns = now;
	}
	if (now - h->beat_ns > (uint64_t)HTTP_LIVE_S * 1000000000ULL)
		return send_static(c, MHD_HTTP_SERVICE_UNAVAILABLE,
		                   "trainer loop stalled: no heartbeat for over 10 s\n");
	return send_static(c, MHD_HTTP_OK, "ok\n");
}

static enum MHD_Result readyz(struct http *h, struct MHD_Connection *c)
{
	int why = atomic_load(&h->d->prog.not_ready);
	char *body = malloc(256);
	int n;

	if (body == NULL)
		return MHD_NO;
	if (why < 0 || why >= SV_READY_COUNT)
		why = SV_READY_STARTING;
	if (why == SV_READY_OK)
		n = snprintf(body, 256, "{\"ready\":true}\n");
	else
		n = snprintf(body, 256, "{\"ready\":false,\"reason\":\"%s\"}\n", ready_name[why]);
	return send_text(c, why == SV_READY_OK ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE,
	                 "application/json", body, (size_t)n, 1);
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **req_cls)
{
	struct http *h = cls;
	struct req *rq = *req_cls;
	int get = strcmp(method, MHD_HTTP_METHOD_GET) == 0,
	    head = strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
	size_t len = 0;
	char *body;

	(void)version;
	(void)upload;
	if (rq == NULL) { /* the headers are in: keep state for the body */
		const char *cl =
		    MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);

		if (cl != NULL && strtoull(cl, NULL, 10) > HTTP_MAX_BODY) /* answered unread */
			return send_static(c, MHD_HTTP_CONTENT_TOO_LARGE, "request body too large\n");
		rq = calloc(1, sizeof(*rq));
		if (rq == NULL)
			return MHD_NO;
		*req_cls = rq;
		return MHD_YES;
	}
	if (*upload_size > 0) { /* a body: counted, never kept */
		rq->body += *upload_size;
		*upload_size = 0;
		/* a chunked body past the cap: no answer can be queued mid-body */
		return rq->body > HTTP_MAX_BODY ? MHD_NO : MHD_YES;
	}
	if (!get && !head)
		return send_static(c, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD\n");
	if (strcmp(url, "/metrics") == 0) {
		body = expo_metrics(h->d, &len);
		if (body == NULL)
			return send_static(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
		return send_text(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", body, len,
		                 1);
	}
	if (strcmp(url, "/livez") == 0)
		return livez(h, c);
	if (strcmp(url, "/readyz") == 0)
		return readyz(h, c);
	if (strcmp(url, "/") == 0) {
		body = page_render(h->d, &len);
		if (body == NULL)
			return send_static(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
		return send_text(c, MHD_HTTP_OK, "text/html; charset=utf-8", body, len, 1);
	}
	return send_static(c, MHD_HTTP_NOT_FOUND,
	                   "not found: GET /metrics, /livez, /readyz or / (the status page)\n");
}

static void done(void *cls, struct MHD_Connection *c, void **req_cls,
                 enum MHD_RequestTerminationCode why)
{
	(void)cls;
	(void)c;
	(void)why;
	free(*req_cls);
	*req_cls = NULL;
}

/* libmicrohttpd's own complaints (malformed requests, refused
 * connections): rate-limited, at info level: a client caused them. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[256];
	size_t n;

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	if (log_ratelimit(&rl_log, LOG_BURST, &sup))
		log_msg(LOG_INFO, "SV-HTTP-CLIENT", "http: %s%s", msg,
		       log_suppressed(sup, sbuf, sizeof(sbuf)));
}

int http_start(struct http **out, struct sv_daemon *d)
{
	struct sockaddr_in6 a6 = {0};
	struct sockaddr_in a4 = {0};
	struct sockaddr *sa;
	char host[64];
	unsigned port = 0, flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
	                           MHD_USE_ERROR_LOG | MHD_USE_ITC;
	const char *why = NULL;
	const union MHD_DaemonInfo *info;
	struct http *h;

	*out = NULL;
	d->http_bound[0] = '\0';
	if (d->conf.ep_http[0] == '\0')
		return 0;
	if (http_parse_endpoint(d->conf.ep_http, host, sizeof(host), &port, &why) < 0) {
		log_msg(LOG_ERR, "SV-HTTP-BIND", "endpoints.http '%s': %s", d->conf.ep_http, why);
		return SV_ERR_CONFIG;
	}
	if (strcmp(host, "localhost") == 0)
		snprintf(host, sizeof(host), "127.0.0.1");
	if (inet_pton(AF_INET, host, &a4.sin_addr) == 1) {
		a4.sin_family = AF_INET;
		a4.sin_port = htons((uint16_t)port);
		sa = (struct sockaddr *)&a4;
	} else if (inet_pton(AF_INET6, host, &a6.sin6_addr) == 1) {
		a6.sin6_family = AF_INET6;
		a6.sin6_port = htons((uint16_t)port);
		sa = (struct sockaddr *)&a6;
		flags |= MHD_USE_IPv6;
	} else {
		log_msg(LOG_ERR, "SV-HTTP-BIND",
		       "endpoints.http '%s': the host must be an IPv4 or IPv6 address or localhost",
		       d->conf.ep_http);
		return SV_ERR_CONFIG;
	}
	h = calloc(1, sizeof(*h));
	if (h == NULL)
		return -ENOMEM;
	h->d = d;
	h->mhd = MHD_start_daemon(
	    flags, (uint16_t)port, NULL, NULL, answer, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h,
	    MHD_OPTION_SOCK_ADDR, sa,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTP_MAX_CONN, MHD_OPTION_CONNECTION_TIMEOUT,
	    (unsigned)HTTP_TIMEOUT_S, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_MEMORY_LIMIT,
	    MHD_OPTION_NOTIFY_COMPLETED, done, h, MHD_OPTION_END);
	if (h->mhd == NULL) {
		/* monitoring is not the data path: the daemon serves without it */
		log_msg(LOG_ERR, "SV-HTTP-BIND",
		       "cannot listen on endpoints.http %s (in use, or not an address of this "
		       "machine); running without the monitoring endpoint",
		       d->conf.ep_http);
		snprintf(d->http_bound, sizeof(d->http_bound), "unavailable");
		free(h);
		return 0;
	}
	info = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_BIND_PORT);
	if (info != NULL)
		port = info->port;
	snprintf(d->http_bound, sizeof(d->http_bound), sa->sa_family == AF_INET6 ? "[%s]:%u" : "%s:%u",
	         host, port);
	log_msg(LOG_INFO, "SV-SOCKET-BIND", "http monitoring on %s (GET /metrics /livez /readyz /)",
	       d->http_bound);
	*out = h;
	return 0;
}

void http_stop(struct http *h)
{
	if (h != NULL) /* joins libmicrohttpd's thread */
		MHD_stop_daemon(h->mhd);
	free(h);
}
