/* ctl_admin.c - the admin-endpoint verbs: status, metrics, config show,
 * checkpoint, versions, rollback, pause, resume, flush, backup, reload.
 *
 * Every admin reply carries a JSON document (docs/PROTOCOL.md).  status and
 * versions print it readably, or as is with --json; metrics turns the status
 * document into the Prometheus text exposition format:
 *   - a number at path a.b.c becomes the gauge simverify_a_b_c;
 *   - a name ending in _total is a counter; an object of numbers under such
 *     a name is one counter with a label (pairs_total{outcome=...},
 *     rejects_total{reason=...}, others {kind=...});
 *   - an object with "buckets" ({"le": count, ...}, cumulative), "sum" and
 *     "count" is a histogram (_bucket{le=...}, _sum, _count);
 *   - booleans become 0/1 gauges, strings become an info gauge
 *     simverify_<path>_info{value="..."} 1.
 * Leaves out: config check (ctl_endpoints.c, no daemon needed) and the
 * model transfer verbs (export-model / import-model, ctl_model.c).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "ctl_json.h"

/* The admin reply's JSON, parsed.  Returns an exit code. */
static int reply_json(const struct ctl_reply *r, const char *what, struct ctl_json **out)
{
	char err[128];

	if (!r->rep.payload || r->rep.payload_len == 0) {
		ctl_err("%s: the daemon's reply has no JSON document", what);
		return CTL_EXIT_DAEMON;
	}
	if (ctl_json_parse(r->rep.payload, r->rep.payload_len, out, err, sizeof(err)) != 0) {
		ctl_err("%s: the daemon's reply is not valid JSON (%s)", what, err);
		return CTL_EXIT_DAEMON;
	}
	return CTL_EXIT_OK;
}

/* One request on the admin socket; the reply stays in *r. */
static int admin_call(struct ctl_ctx *c, int verb, uint64_t version, const char *path,
		      const char *what, struct ctl_conn *cn, struct ctl_reply *r)
{
	struct sv_proto_msgbuf mb;
	uint64_t id = ctl_conn_next_id(cn);
	int rc;

	(void)c;
	sv_proto_msgbuf_init(&mb);
	if (sv_proto_encode_admin(&mb, verb, id, version, path) != 0) {
		ctl_err("%s: cannot encode the request", what);
		rc = CTL_EXIT_FAIL;
	} else {
		rc = ctl_conn_call(cn, &mb, id, r);
		if (!rc)
			rc = ctl_reply_check(r, what, 0);
	}
	sv_proto_msgbuf_free(&mb);
	return rc;
}

/* Human-readable: every leaf as "path  value", in document order. */
static void print_flat(const struct ctl_json *j, char *path, size_t plen, size_t cap)
{
	if (j->type == CTL_JSON_OBJ) {
		for (size_t i = 0; i < j->n; i++) {
			size_t nl = (size_t)snprintf(path + plen, cap - plen, "%s%s", plen ? "." : "",
						     j->keys[i]);

			print_flat(j->kids[i], path, plen + (nl < cap - plen ? nl : 0), cap);
			path[plen] = '\0';
		}
		return;
	}
	if (j->type == CTL_JSON_ARR) {
		for (size_t i = 0; i < j->n; i++) {
			size_t nl = (size_t)snprintf(path + plen, cap - plen, "[%zu]", i);

			print_flat(j->kids[i], path, plen + (nl < cap - plen ? nl : 0), cap);
			path[plen] = '\0';
		}
		if (j->n == 0)
			printf("%-34s (none)\n", path);
		return;
	}
	printf("%-34s ", path);
	switch (j->type) {
	case CTL_JSON_STR: fputs(j->text, stdout); break;
	case CTL_JSON_NULL: fputs("-", stdout); break;
	case CTL_JSON_BOOL: fputs(j->num ? "yes" : "no", stdout); break;
	default: ctl_json_write(j, stdout); break;
	}
	fputc('\n', stdout);
}

/* ---- Prometheus ---- */

static void prom_name(char *out, size_t cap, const char *path)
{
	size_t o = 0;

	o += (size_t)snprintf(out, cap, "simverify_");
	for (const char *p = path; *p && o + 1 < cap; p++) {
		char ch = *p;

		out[o++] = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
					   (ch >= '0' && ch <= '9') || ch == '_'
				   ? ch
				   : '_';
	}
	out[o] = '\0';
}

static size_t ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && strcmp(s + a - b, suffix) == 0;
}

static void prom_label_value(const char *s)
{
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if (*s == '\n')
			fputs("\\n", stdout);
		else
			putchar(*s);
	}
}

static const char *label_for(const char *name)
{
	if (strstr(name, "pairs"))
		return "outcome";
	if (strstr(name, "reject"))
		return "reason";
	return "kind";
}

static int all_numbers(const struct ctl_json *j)
{
	if (j->type != CTL_JSON_OBJ || j->n == 0)
		return 0;
	for (size_t i = 0; i < j->n; i++)
		if (j->kids[i]->type != CTL_JSON_NUM)
			return 0;
	return 1;
}

static void prom_emit(const struct ctl_json *j, char *path, size_t plen, size_t cap)
{
	char name[256];

	prom_name(name, sizeof(name), path);
	if (j->type == CTL_JSON_OBJ && ctl_json_get(j, "buckets") && ctl_json_get(j, "count")) {
		const struct ctl_json *b = ctl_json_get(j, "buckets");
		int has_inf = 0;

		printf("# TYPE %s histogram\n", name);
		for (size_t i = 0; b->type == CTL_JSON_OBJ && i < b->n; i++) {
			has_inf |= strcmp(b->keys[i], "+Inf") == 0;
			printf("%s_bucket{le=\"%s\"} %s\n", name, b->keys[i], b->kids[i]->text
								   ? b->kids[i]->text : "0");
		}
		if (!has_inf)
			printf("%s_bucket{le=\"+Inf\"} %.17g\n", name, ctl_json_num(j, "count", 0));
		printf("%s_sum %.17g\n%s_count %.17g\n", name, ctl_json_num(j, "sum", 0), name,
		       ctl_json_num(j, "count", 0));
		return;
	}
	if (j->type == CTL_JSON_OBJ && ends_with(name, "_total") && all_numbers(j)) {
		printf("# TYPE %s counter\n", name);
		for (size_t i = 0; i < j->n; i++) {
			printf("%s{%s=\"", name, label_for(name));
			prom_label_value(j->keys[i]);
			printf("\"} %s\n", j->kids[i]->text);
		}
		return;
	}
	if (j->type == CTL_JSON_OBJ) {
		for (size_t i = 0; i < j->n; i++) {
			size_t nl = (size_t)snprintf(path + plen, cap - plen, "%s%s", plen ? "." : "",
						     j->keys[i]);

			prom_emit(j->kids[i], path, plen + (nl < cap - plen ? nl : 0), cap);
			path[plen] = '\0';
		}
		return;
	}
	switch (j->type) {
	case CTL_JSON_NUM:
		printf("# TYPE %s %s\n%s %s\n", name, ends_with(name, "_total") ? "counter" : "gauge",
		       name, j->text);
		break;
	case CTL_JSON_BOOL:
		printf("# TYPE %s gauge\n%s %d\n", name, name, j->num ? 1 : 0);
		break;
	case CTL_JSON_STR:
		printf("# TYPE %s_info gauge\n%s_info{value=\"", name, name);
		prom_label_value(j->text);
		printf("\"} 1\n");
		break;
	case CTL_JSON_NULL:
		printf("# TYPE %s gauge\n%s NaN\n", name, name);
		break;
	default:
		break; /* arrays have no Prometheus form */
	}
}

/* ---- status ---- */

static void print_status(const struct ctl_json *j)
{
	char path[256] = "";

	print_flat(j, path, 0, sizeof(path));
}

static int check_status_keys(const struct ctl_json *j)
{
	static const char *const need[] = {"model_version", "steps", "pairs_seen", "items",
					   "backlog", "auc", "eer", "threshold"};

	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
		if (!ctl_json_get(j, need[i])) {
			ctl_err("status: the daemon's document lacks '%s'", need[i]);
			return CTL_EXIT_DAEMON;
		}
	}
	return CTL_EXIT_OK;
}

int ctl_admin_run(struct ctl_ctx *c)
{
	const struct ctl_opts *o = c->o;
	struct ctl_conn cn;
	struct ctl_reply r;
	struct ctl_json *j = NULL;
	const char *what = ctl_cli_verb_name(o->verb);
	char path[256] = "";
	int verb, rc;

	switch (o->verb) {
	case CTL_VERB_STATUS:
	case CTL_VERB_METRICS: verb = SV_PROTO_VERB_STATUS; break;
	case CTL_VERB_CONFIG_SHOW: verb = SV_PROTO_VERB_CONFIG; break;
	case CTL_VERB_CHECKPOINT: verb = SV_PROTO_VERB_CHECKPOINT; break;
	case CTL_VERB_VERSIONS: verb = SV_PROTO_VERB_VERSIONS; break;
	case CTL_VERB_ROLLBACK: verb = SV_PROTO_VERB_ROLLBACK; break;
	case CTL_VERB_PAUSE: verb = SV_PROTO_VERB_PAUSE; break;
	case CTL_VERB_RESUME: verb = SV_PROTO_VERB_RESUME; break;
	case CTL_VERB_FLUSH: verb = SV_PROTO_VERB_FLUSH; break;
	case CTL_VERB_BACKUP: verb = SV_PROTO_VERB_BACKUP; break;
	case CTL_VERB_RELOAD: verb = SV_PROTO_VERB_RELOAD; break;
	case CTL_VERB_EXPORT_MODEL:
	case CTL_VERB_IMPORT_MODEL:
		return ctl_model_run(c);
	default:
		ctl_err("%s: not an admin verb", what ? what : "?");
		return CTL_EXIT_USAGE;
	}
	rc = ctl_conn_open(&cn, c, ZMQ_DEALER, c->admin, "admin");
	if (rc)
		return rc;
	ctl_reply_init(&r);
	rc = admin_call(c, verb, o->version, o->verb == CTL_VERB_BACKUP ? o->args[0] : NULL, what,
			&cn, &r);
	if (rc)
		goto out;
	/* The verbs that only act print the daemon's message, if any. */
	if (verb != SV_PROTO_VERB_STATUS && verb != SV_PROTO_VERB_CONFIG &&
	    verb != SV_PROTO_VERB_VERSIONS) {
		if (r.rep.msg_len)
			printf("%.*s\n", (int)r.rep.msg_len, r.rep.msg);
		else
			printf("%s: ok\n", what);
		goto out;
	}
	rc = reply_json(&r, what, &j);
	if (rc)
		goto out;
	if (o->verb == CTL_VERB_METRICS) {
		prom_emit(j, path, 0, sizeof(path));
	} else if (o->json) {
		if (o->verb == CTL_VERB_STATUS)
			rc = check_status_keys(j);
		ctl_json_write(j, stdout);
		fputc('\n', stdout);
	} else if (o->verb == CTL_VERB_STATUS) {
		print_status(j);
	} else {
		print_flat(j, path, 0, sizeof(path));
	}
out:
	ctl_json_free(j);
	ctl_reply_close(&r);
	ctl_conn_close(&cn);
	return rc;
}
