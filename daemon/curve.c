/* curve.c - CURVE server options, allow-lists and the ZAP handler thread
 * (see curve.h).
 *
 * Leaves out: the sockets themselves (trainer.c, query.c, admin.c bind
 * them, calling curve_socket_setup first), client-side CURVE.
 */
#include "curve.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "daemon.h"
#include "log.h"
#include "parts.h"
#include "sv/error.h"
#include "util.h"

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define KEY_Z85 40
#define NAME_MAX_LEN 64
#define ZAP_MAX_PARTS 10

enum role { ROLE_INGEST, ROLE_QUERY, ROLE_ADMIN, ROLE_COUNT };
_Static_assert(ROLE_COUNT == CURVE_ROLES, "curve.h names the roles");

static const char *const role_names[ROLE_COUNT] = { "ingest", "query", "admin" };

struct allow_entry {
	uint8_t key[32];
	char name[NAME_MAX_LEN];
};

/* One allow-list; any: no list configured (every CURVE client admitted). */
struct allow_list {
	int any;
	char path[SV_CONFIG_STR_MAX];
	struct allow_entry *e;
	size_t n;
};

static struct {
	int on;                     /* CURVE configured */
	uint8_t secret[32], public_key[32];
	int64_t max_msg;
	char ep[4][SV_ENDPOINT_MAX];
	enum role ep_role[4];
	struct allow_list list[ROLE_COUNT];
	void *zap;
	pthread_t th;
	int started;
	atomic_uint_fast64_t denied[ROLE_COUNT + 1]; /* by role; [ROLE_COUNT]: no role */
} g;

/* ---- key files ---------------------------------------------------------- */

static int is_blank_or_comment(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return *s == 0 || *s == '\n' || *s == '\r' || *s == '#';
}

/* The first token of line (up to whitespace) as a 32-byte key; the rest
 * (trimmed) into name.  Returns 0 or -1. */
static int parse_key_line(const char *line, uint8_t key[32], char *name, size_t name_cap)
{
	char z85[KEY_Z85 + 1];
	size_t n = 0;
	const char *s = line;

	while (*s == ' ' || *s == '\t')
		s++;
	while (s[n] && s[n] != ' ' && s[n] != '\t' && s[n] != '\n' && s[n] != '\r')
		n++;
	if (n != KEY_Z85)
		return -1;
	memcpy(z85, s, KEY_Z85);
	z85[KEY_Z85] = 0;
	if (zmq_z85_decode(key, z85) == NULL)
		return -1;
	if (name != NULL && name_cap > 0) {
		size_t m = 0;

		s += n;
		while (*s == ' ' || *s == '\t')
			s++;
		while (s[m] && s[m] != '\n' && s[m] != '\r' && m + 1 < name_cap)
			m++;
		memcpy(name, s, m);
		name[m] = 0;
	}
	return 0;
}

static int load_server_key(const char *path)
{
	char line[512], z85[KEY_Z85 + 1];
	FILE *f = fopen(path, "r");
	int lineno = 0, rc = SV_ERR_CONFIG;

	if (f == NULL) {
		log_msg(LOG_ERR, "SV-CURVE-KEY", "cannot read server key %s: %s; not starting", path,
		       strerror(errno));
		return SV_ERR_CONFIG;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		lineno++;
		if (is_blank_or_comment(line))
			continue;
		if (parse_key_line(line, g.secret, NULL, 0) == 0)
			rc = 0;
		break;
	}
	fclose(f);
	if (rc < 0) {
		log_msg(LOG_ERR, "SV-CURVE-KEY",
		       "%s:%d: no 40-character z85 secret key (make one with simverifyctl keygen); not starting",
		       path, lineno);
		return rc;
	}
	zmq_z85_encode(z85, g.secret, 32);
	{
		char pub[KEY_Z85 + 1];

		if (zmq_curve_public(pub, z85) < 0 || zmq_z85_decode(g.public_key, pub) == NULL) {
			log_msg(LOG_ERR, "SV-CURVE-KEY", "cannot derive the public key of %s: %s", path,
			       zmq_strerror(zmq_errno()));
			return SV_ERR_CONFIG;
		}
	}
	return 0;
}

static int load_allow(struct allow_list *l, const char *path)
{
	char line[512];
	FILE *f;
	int lineno = 0, bad = 0;

	snprintf(l->path, sizeof(l->path), "%s", path);
	if (path[0] == 0) {
		l->any = 1;
		return 0;
	}
	f = fopen(path, "r");
	if (f == NULL) {
		log_msg(LOG_ERR, "SV-CURVE-ALLOW", "cannot read allow-list %s: %s; not starting", path,
		       strerror(errno));
		return SV_ERR_CONFIG;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		struct allow_entry en;

		lineno++;
		if (is_blank_or_comment(line))
			continue;
		if (parse_key_line(line, en.key, en.name, sizeof(en.name)) < 0) {
			log_msg(LOG_ERR, "SV-CURVE-ALLOW", "%s:%d: not a 40-character z85 public key", path,
			       lineno);
			bad++;
			continue;
		}
		if (l->n % 16 == 0) {
			struct allow_entry *p = realloc(l->e, (l->n + 16) * sizeof(*p));

			if (p == NULL) {
				fclose(f);
				return -ENOMEM;
			}
			l->e = p;
		}
		l->e[l->n++] = en;
	}
	fclose(f);
	return bad ? SV_ERR_CONFIG : 0;
}

static const struct allow_entry *allow_find(const struct allow_list *l, const uint8_t *key)
{
	for (size_t i = 0; i < l->n; i++)
		if (memcmp(l->e[i].key, key, 32) == 0)
			return &l->e[i];
	return NULL;
}

/* ---- the ZAP handler (RFC 27) ------------------------------------------- */

static int part_is(zmq_msg_t *m, const char *s)
{
	size_t n = strlen(s);

	return zmq_msg_size(m) == n && memcmp(zmq_msg_data(m), s, n) == 0;
}

static void reply(void *s, zmq_msg_t *req_id, const char *code, const char *text, const char *user)
{
	zmq_send(s, "1.0", 3, ZMQ_SNDMORE);
	zmq_send(s, zmq_msg_data(req_id), zmq_msg_size(req_id), ZMQ_SNDMORE);
	zmq_send(s, code, strlen(code), ZMQ_SNDMORE);
	zmq_send(s, text, strlen(text), ZMQ_SNDMORE);
	zmq_send(s, user, strlen(user), ZMQ_SNDMORE);
	zmq_send(s, "", 0, 0);
}

/* Decide one request: 0 admit, else refuse (with a reason in why). */
static int decide(zmq_msg_t *p, int n, const char **user, const char **why, int *role_out)
{
	const struct allow_entry *en;
	int role = -1;

	*user = "";
	if (n < 6 || !part_is(&p[0], "1.0")) {
		*why = "malformed ZAP request";
		return -1;
	}
	for (int r = 0; r < ROLE_COUNT; r++)
		if (part_is(&p[2], role_names[r]))
			role = r;
	*role_out = role;
	if (role < 0) {
		*why = "unknown ZAP domain";
		return -1;
	}
	if (!part_is(&p[5], "CURVE") || n < 7 || zmq_msg_size(&p[6]) != 32) {
		*why = "CURVE required";
		return -1;
	}
	if (g.list[role].any) {
		*user = "curve";
		return 0;
	}
	en = allow_find(&g.list[role], zmq_msg_data(&p[6]));
	if (en == NULL) {
		*why = "key not on the allow-list";
		return -1;
	}
	*user = en->name[0] ? en->name : "listed";
	return 0;
}

static void *zap_main(void *arg)
{
	uint64_t last_log_ns = 0, quiet = 0;

	pthread_setname_np(pthread_self(), "sv-zap");
	(void)arg;
	for (;;) {
		struct parts msg;
		zmq_msg_t *p = msg.m;
		const char *user = "", *why = "";
		int n = parts_recv(g.zap, &msg, 0), role = -1, ok;

		if (n < 0) {
			if (zmq_errno() == ETERM)
				break;
			continue;
		}
		if (n > ZAP_MAX_PARTS)
			n = ZAP_MAX_PARTS; /* decide() reads no further */
		ok = decide(p, n, &user, &why, &role) == 0;
		if (n >= 2)
			reply(g.zap, &p[1], ok ? "200" : "400", ok ? "OK" : why, user);
		if (!ok) {
			uint64_t now = now_mono_ns();

			atomic_fetch_add(&g.denied[role >= 0 && role < ROLE_COUNT ? role : ROLE_COUNT], 1);
			if (now - last_log_ns >= 1000000000ULL) {
				char key[KEY_Z85 + 1] = "-", addr[64] = "?";

				if (n >= 7 && zmq_msg_size(&p[6]) == 32)
					zmq_z85_encode(key, zmq_msg_data(&p[6]), 32);
				if (n >= 4)
					snprintf(addr, sizeof(addr), "%.*s", (int)zmq_msg_size(&p[3]),
						 (const char *)zmq_msg_data(&p[3]));
				log_msg(LOG_WARNING, "SV-CURVE-DENIED",
				       "%s client %s key %s: %s; connection refused (%llu more since the last line)",
				       role >= 0 ? role_names[role] : "?", addr, key, why,
				       (unsigned long long)quiet);
				last_log_ns = now;
				quiet = 0;
			} else {
				quiet++;
			}
		}
		parts_close(&msg);
	}
	zmq_close(g.zap);
	g.zap = NULL;
	return NULL;
}

/* ---- public ------------------------------------------------------------- */

static int any_tcp(const struct sv_dconf *c)
{
	const char *eps[] = { c->ep_ingest, c->ep_ingest_ack, c->ep_query, c->ep_admin };

	for (int i = 0; i < 4; i++)
		if (strncmp(eps[i], "tcp://", 6) == 0)
			return 1;
	return 0;
}

int curve_check(const struct sv_dconf *dc)
{
	const struct sv_config *c = &dc->cfg;
	const char *allow[ROLE_COUNT] = { c->security_curve_allow_ingest,
					  c->security_curve_allow_query,
					  c->security_curve_allow_admin };
	int rc;

	if (c->security_curve_server_key[0] == 0)
		return 0;
	if (!zmq_has("curve")) {
		log_msg(LOG_ERR, "SV-CURVE-UNAVAILABLE",
		       "security.curve_server_key is set but this libzmq has no CURVE; not starting");
		return SV_ERR_CONFIG;
	}
	rc = load_server_key(c->security_curve_server_key);
	for (int r = 0; r < ROLE_COUNT && rc == 0; r++)
		rc = load_allow(&g.list[r], allow[r][0] ? allow[r] : c->security_curve_allow);
	return rc;
}

int curve_start(struct sv_daemon *d)
{
	const struct sv_config *c = &d->conf.cfg;
	int rc = 0, zero = 0;
	char pub[KEY_Z85 + 1];

	g.max_msg = (int64_t)d->conf.live.lim.max_msg_bytes * 2;
	snprintf(g.ep[0], sizeof(g.ep[0]), "%s", d->conf.ep_ingest);
	snprintf(g.ep[1], sizeof(g.ep[1]), "%s", d->conf.ep_ingest_ack);
	snprintf(g.ep[2], sizeof(g.ep[2]), "%s", d->conf.ep_query);
	snprintf(g.ep[3], sizeof(g.ep[3]), "%s", d->conf.ep_admin);
	g.ep_role[0] = ROLE_INGEST;
	g.ep_role[1] = ROLE_INGEST;
	g.ep_role[2] = ROLE_QUERY;
	g.ep_role[3] = ROLE_ADMIN;
	if (c->security_curve_server_key[0] == 0) {
		if (any_tcp(&d->conf))
			log_msg(LOG_WARNING, "SV-CURVE-OFF",
			       "tcp:// endpoint without CURVE (security.curve_server_key empty): anyone who reaches the port is served, in clear text");
		return 0;
	}
	rc = curve_check(&d->conf);
	if (rc < 0)
		return rc;
	g.on = 1;
	zmq_z85_encode(pub, g.public_key, 32);
	log_msg(LOG_NOTICE, "SV-CURVE-ON",
	       "CURVE on tcp:// endpoints, server public key %s; admitted: ingest %s, query %s, admin %s",
	       pub, g.list[0].any ? "any CURVE client" : g.list[0].path,
	       g.list[1].any ? "any CURVE client" : g.list[1].path,
	       g.list[2].any ? "any CURVE client" : g.list[2].path);
	for (int r = 0; r < ROLE_COUNT; r++)
		if (!g.list[r].any && g.list[r].n == 0)
			log_msg(LOG_WARNING, "SV-CURVE-ALLOW", "allow-list %s of %s is empty: nobody is admitted",
			       g.list[r].path, role_names[r]);
	g.zap = parts_socket(d->zctx, ZMQ_REP);
	if (g.zap == NULL)
		return -zmq_errno();
	zmq_setsockopt(g.zap, ZMQ_LINGER, &zero, sizeof(zero));
	if (zmq_bind(g.zap, ZAP_ENDPOINT) < 0) {
		rc = -zmq_errno();
		zmq_close(g.zap);
		g.zap = NULL;
		return rc;
	}
	rc = -pthread_create(&g.th, NULL, zap_main, NULL);
	if (rc < 0) {
		zmq_close(g.zap);
		g.zap = NULL;
		return rc;
	}
	g.started = 1;
	return 0;
}

int curve_socket_setup(void *s, const char *ep)
{
	int one = 1, i;

	if (g.max_msg > 0 && zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &g.max_msg, sizeof(g.max_msg)) < 0)
		return -1;
	if (!g.on || strncmp(ep, "tcp://", 6) != 0)
		return 0;
	for (i = 0; i < 4; i++)
		if (strcmp(ep, g.ep[i]) == 0)
			break;
	if (i == 4)
		return 0; /* not an outside endpoint of ours */
	if (zmq_setsockopt(s, ZMQ_CURVE_SERVER, &one, sizeof(one)) < 0 ||
	    zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, g.secret, 32) < 0 ||
	    zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, g.public_key, 32) < 0)
		return -1;
	return zmq_setsockopt(s, ZMQ_ZAP_DOMAIN, role_names[g.ep_role[i]],
			      strlen(role_names[g.ep_role[i]]));
}

uint64_t curve_denied(int role)
{
	return role >= 0 && role <= ROLE_COUNT ? atomic_load(&g.denied[role]) : 0;
}

const char *curve_role_name(int role)
{
	return role >= 0 && role < ROLE_COUNT ? role_names[role] : "none";
}

void curve_stop(void)
{
	if (g.started) {
		pthread_join(g.th, NULL);
		g.started = 0;
	}
	for (int r = 0; r < ROLE_COUNT; r++) {
		free(g.list[r].e);
		g.list[r].e = NULL;
		g.list[r].n = 0;
	}
	memset(g.secret, 0, sizeof(g.secret));
	g.on = 0;
}

int curve_bind(void *s, const char *ep, const char *what)
{
	if (curve_socket_setup(s, ep) < 0 || zmq_bind(s, ep) < 0) {
		int e = zmq_errno();

		log_msg(LOG_ERR, "SV-SOCKET-BIND", "cannot bind %s socket to %s: %s", what, ep,
		        zmq_strerror(e));
		return -e;
	}
	log_msg(LOG_INFO, "SV-SOCKET-BIND", "%s socket on %s", what, ep);
	return 0;
}
