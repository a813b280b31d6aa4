/* ctl_admin.c - the admin-endpoint verbs: status, metrics, config show,
 * checkpoint, versions, rollback, pause, resume, flush, backup, reload.
 *
 * Every admin reply carries a JSON document (docs/PROTOCOL.md).  status and
 * versions print it readably, or as is with --json; metrics prints the
 * daemon's Prometheus exposition (the METRICS verb: the same text as GET
 * /metrics on its HTTP endpoint).
 * Leaves out: config check (ctl_endpoints.c, no daemon needed) and the
 * model transfer verbs (export-model / import-model, ctl_model.c).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

/* BACKUP: the daemon answers when the copy is done, which may take longer
 * than --timeout; meanwhile STATUS, on a second connection, must keep
 * answering (else the daemon is gone), and on a terminal it shows the bytes
 * copied so far. */
static int backup_call(struct ctl_ctx *c, const char *path, const char *what,
                       struct ctl_conn *cn, struct ctl_reply *r)
{
	struct sv_proto_msgbuf mb;
	struct ctl_conn sc = {0};
	uint64_t id = ctl_conn_next_id(cn);
	int tty = isatty(STDERR_FILENO), rc, shown = 0;

	sv_proto_msgbuf_init(&mb);
	rc = sv_proto_encode_admin(&mb, SV_PROTO_VERB_BACKUP, id, 0, path) ? CTL_EXIT_FAIL : 0;
	if (!rc)
		rc = ctl_conn_send(cn, &mb);
	if (!rc)
		rc = ctl_conn_open(&sc, c, ZMQ_DEALER, c->admin, "admin");
	while (!rc && (rc = ctl_conn_recv_within(cn, r, 500)) == -1) {
		struct ctl_reply s;
		struct ctl_json *j = NULL;
		uint64_t sid = ctl_conn_next_id(&sc);

		ctl_reply_init(&s);
		rc = sv_proto_encode_admin(&mb, SV_PROTO_VERB_STATUS, sid, 0, NULL) ? CTL_EXIT_FAIL : 0;
		if (!rc)
			rc = ctl_conn_call(&sc, &mb, sid, &s);
		if (!rc)
			rc = ctl_reply_check(&s, "backup: status", 0);
		if (!rc)
			rc = reply_json(&s, "backup: status", &j);
		if (!rc && tty) {
			double done = ctl_json_num(j, "backup.bytes", 0);
			double total = ctl_json_num(j, "backup.total_bytes", 0);

			fprintf(stderr, "\rbackup: %.1f MB of about %.1f MB copied, %.0f s  ", done / 1e6,
			        total / 1e6, ctl_json_num(j, "backup.seconds", 0));
			shown = 1;
		}
		ctl_json_free(j);
		ctl_reply_close(&s);
		ctl_reply_close(r);
		ctl_reply_init(r);
	}
	if (shown)
		fputc('\n', stderr);
	if (!rc)
		rc = ctl_reply_check(r, what, 0);
	if (sc.sock)
		ctl_conn_close(&sc);
	sv_proto_msgbuf_free(&mb);
	return rc;
}

/* Human-readable: every leaf as "path  value", in document order. */
static void print_flat(const struct ctl_json *j, char *path, size_t plen, size_t cap)
{
	if (j->type == CTL_JSON_OBJ) {
		for (size_t i = 0; i < j->n; i++) {
			size_t nl = (size_t)snprintf(path + plen, cap - plen, "%s%s",
			                             plen ? "." : "", j->keys[i]);

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
	case CTL_JSON_STR:
		fputs(j->text, stdout);
		break;
	case CTL_JSON_NULL:
		fputs("-", stdout);
		break;
	case CTL_JSON_BOOL:
		fputs(j->num ? "yes" : "no", stdout);
		break;
	default:
		ctl_json_write(j, stdout);
		break;
	}
	fputc('\n', stdout);
}

/* ---- status ---- */

/* One line of the human status: label, then the value at path or "n/a". */
static void status_line(const struct ctl_json *j, const char *label, const char *path,
                        const char *unit)
{
	const struct ctl_json *v = ctl_json_get(j, path);

	printf("%-22s ", label);
	if (!v || v->type == CTL_JSON_NULL)
		fputs("n/a", stdout);
	else if (v->type == CTL_JSON_STR)
		fputs(v->text, stdout);
	else if (v->type == CTL_JSON_BOOL)
		fputs(v->num ? "yes" : "no", stdout);
	else if (v->type == CTL_JSON_NUM)
		fputs(v->text, stdout);
	else
		ctl_json_write(v, stdout);
	if (v && v->type == CTL_JSON_NUM && unit)
		printf(" %s", unit);
	fputc('\n', stdout);
}

static void human_bytes(double b, char *out, size_t cap)
{
	static const char *const u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	int i = 0;

	while (b >= 1024 && i < 4) {
		b /= 1024;
		i++;
	}
	snprintf(out, cap, i ? "%.1f %s" : "%.0f %s", b, u[i]);
}

/* Pairs received: the sum of counters.pairs (every outcome). */
static double pairs_received(const struct ctl_json *j)
{
	const struct ctl_json *p = ctl_json_get(j, "counters.pairs");
	double n = 0;

	for (size_t i = 0; p && p->type == CTL_JSON_OBJ && i < p->n; i++)
		n += p->kids[i]->num;
	return n;
}

/* prev: an earlier sample dt seconds before j (NULL: none) for the rates. */
static void print_status(const struct ctl_json *j, const struct ctl_json *prev, double dt)
{
	double up = ctl_json_num(j, "uptime_seconds", NAN);
	double rss = ctl_json_num(j, "rss_bytes", NAN);
	double used = ctl_json_num(j, "store_bytes", ctl_json_num(j, "map_used", NAN));
	double rate = ctl_json_num(j, "pairs_per_second", NAN);
	const struct ctl_json *tar = ctl_json_get(j, "tar_at_far");
	char buf[64];

	status_line(j, "model version", "model_version", NULL);
	status_line(j, "steps", "steps", NULL);
	status_line(j, "pairs seen", "pairs_seen", NULL);
	status_line(j, "items", "items", NULL);
	status_line(j, "backlog", "backlog", "pairs");
	if (isfinite(rate))
		printf("%-22s %.1f\n", "pairs/s", rate);
	else if (prev && dt > 0)
		printf("%-22s %.1f received, %.1f trained (last %.1f s)\n", "pairs/s",
		       (pairs_received(j) - pairs_received(prev)) / dt,
		       (ctl_json_num(j, "pairs_seen", 0) - ctl_json_num(prev, "pairs_seen", 0)) /
		           dt,
		       dt);
	else if (isfinite(up) && up > 0)
		printf("%-22s %.1f (average since start)\n", "pairs/s",
		       ctl_json_num(j, "pairs_seen", 0) / up);
	else
		printf("%-22s n/a\n", "pairs/s");
	status_line(j, "prequential AUC", "auc", NULL);
	status_line(j, "prequential EER", "eer", NULL);
	if (tar && tar->type == CTL_JSON_OBJ)
		for (size_t i = 0; i < tar->n; i++)
			printf("TAR@FAR=%-14s %s\n", tar->keys[i],
			       tar->kids[i]->text ? tar->kids[i]->text : "n/a");
	else
		status_line(j, "TAR@FAR", "tar_at_far", NULL);
	status_line(j, "loss", "loss", NULL);
	status_line(j, "threshold", "threshold", NULL);
	status_line(j, "threshold policy", "threshold_policy", NULL);
	status_line(j, "paused", "paused", NULL);
	if (isfinite(up))
		printf("%-22s %dd %02d:%02d:%02d\n", "uptime", (int)(up / 86400),
		       (int)fmod(up / 3600, 24), (int)fmod(up / 60, 60), (int)fmod(up, 60));
	else
		printf("%-22s n/a\n", "uptime");
	if (isfinite(rss))
		human_bytes(rss, buf, sizeof(buf));
	printf("%-22s %s\n", "RSS", isfinite(rss) ? buf : "n/a");
	if (isfinite(used))
		human_bytes(used, buf, sizeof(buf));
	printf("%-22s %s\n", "store size", isfinite(used) ? buf : "n/a");
}

/* A number cell: the value at key of v, or "-". */
static void cell(const struct ctl_json *v, const char *key, const char *fmt, int width)
{
	const struct ctl_json *x = ctl_json_get(v, key);

	if (x && x->type == CTL_JSON_NUM)
		printf(fmt, width, x->num);
	else
		printf("%*s", width, "-");
}

static void print_versions(const struct ctl_json *vs)
{
	printf("%-3s %8s %12s %12s  %-20s %10s %8s %8s\n", "", "version", "step", "applied_seq",
	       "time (UTC)", "loss", "auc", "eer");
	for (size_t i = 0; i < vs->n; i++) {
		const struct ctl_json *v = vs->kids[i];
		double ns = ctl_json_num(v, "time_ns", NAN);
		char when[32] = "-";

		if (isfinite(ns)) {
			time_t t = (time_t)(ns / 1e9);
			struct tm tm;

			if (gmtime_r(&t, &tm))
				strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
		}
		printf("%-3s", ctl_json_num(v, "active", 0) ? "*" : "");
		cell(v, "version", " %*.0f", 8);
		cell(v, "step", " %*.0f", 12);
		cell(v, "applied_seq", " %*.0f", 12);
		printf("  %-20s", when);
		cell(v, "loss", " %*.5g", 10);
		cell(v, "auc", " %*.4f", 8);
		cell(v, "eer", " %*.4f", 8);
		putchar('\n');
	}
	if (vs->n == 0)
		printf("(no versions stored yet)\n");
}

/* The resident set size of a daemon running on this machine, from the pid
 * it keeps in STATE_DIR/simverifyd.lock and /proc; NAN when unknown. */
static double local_rss(const struct ctl_ctx *c)
{
	char path[CTL_ENDPOINT_MAX + 32], line[256];
	long pid = 0;
	double kib = NAN;
	FILE *f;

	if (!*c->state_dir)
		return NAN;
	snprintf(path, sizeof(path), "%s/simverifyd.lock", c->state_dir);
	f = fopen(path, "r");
	if (!f)
		return NAN;
	if (fscanf(f, "%ld", &pid) != 1)
		pid = 0;
	fclose(f);
	if (pid <= 0)
		return NAN;
	snprintf(path, sizeof(path), "/proc/%ld/status", pid);
	f = fopen(path, "r");
	if (!f)
		return NAN;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "Name:", 5) == 0 && !strstr(line, "simverifyd"))
			break; /* a stale pid, reused by another program */
		if (sscanf(line, "VmRSS: %lf kB", &kib) == 1)
			break;
	}
	fclose(f);
	return kib * 1024;
}

/* Add "rss_bytes" to the status document when the daemon did not send it
 * but runs on this machine. */
static void add_local_rss(const struct ctl_ctx *c, struct ctl_json *j)
{
	double rss;
	struct ctl_json *v, **kids;
	char **keys, num[32];

	if (j->type != CTL_JSON_OBJ || ctl_json_get(j, "rss_bytes"))
		return;
	rss = local_rss(c);
	if (!isfinite(rss))
		return;
	snprintf(num, sizeof(num), "%.0f", rss);
	v = calloc(1, sizeof(*v));
	kids = realloc(j->kids, (j->n + 1) * sizeof(*kids));
	if (kids)
		j->kids = kids;
	keys = realloc(j->keys, (j->n + 1) * sizeof(*keys));
	if (keys)
		j->keys = keys;
	if (!v || !kids || !keys || !(v->text = strdup(num)) ||
	    !(j->keys[j->n] = strdup("rss_bytes"))) {
		if (v)
			free(v->text);
		free(v);
		return;
	}
	v->type = CTL_JSON_NUM;
	v->num = rss;
	j->kids[j->n++] = v;
}

static int check_status_keys(const struct ctl_json *j)
{
	static const char *const need[] = {"model_version", "steps", "pairs_seen", "items",
	                                   "backlog",       "auc",   "eer",        "threshold"};

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
	struct ctl_json *j = NULL, *prev = NULL;
	double dt = 0;
	const char *what = ctl_cli_verb_name(o->verb);
	char path[256] = "";
	int verb, rc;

	switch (o->verb) {
	case CTL_VERB_STATUS:
		verb = SV_PROTO_VERB_STATUS;
		break;
	case CTL_VERB_METRICS:
		verb = SV_PROTO_VERB_METRICS;
		break;
	case CTL_VERB_CONFIG_SHOW:
		verb = SV_PROTO_VERB_CONFIG;
		break;
	case CTL_VERB_CHECKPOINT:
		verb = SV_PROTO_VERB_CHECKPOINT;
		break;
	case CTL_VERB_VERSIONS:
		verb = SV_PROTO_VERB_VERSIONS;
		break;
	case CTL_VERB_ROLLBACK:
		verb = SV_PROTO_VERB_ROLLBACK;
		break;
	case CTL_VERB_PAUSE:
		verb = SV_PROTO_VERB_PAUSE;
		break;
	case CTL_VERB_RESUME:
		verb = SV_PROTO_VERB_RESUME;
		break;
	case CTL_VERB_FLUSH:
		verb = SV_PROTO_VERB_FLUSH;
		break;
	case CTL_VERB_BACKUP:
		verb = SV_PROTO_VERB_BACKUP;
		break;
	case CTL_VERB_RELOAD:
		verb = SV_PROTO_VERB_RELOAD;
		break;
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
	if (verb == SV_PROTO_VERB_FLUSH && !o->timeout_given)
		cn.timeout_ms = CTL_FLUSH_TIMEOUT_MS; /* sending still uses the 5 s default */
	ctl_reply_init(&r);
	if (verb == SV_PROTO_VERB_BACKUP)
		rc = backup_call(c, o->args[0], what, &cn, &r);
	else
		rc = admin_call(c, verb, o->version, NULL, what, &cn, &r);
	if (rc)
		goto out;
	if (verb == SV_PROTO_VERB_METRICS) { /* the daemon's exposition, as GET /metrics */
		fwrite(r.rep.payload, 1, r.rep.payload_len, stdout);
		goto out;
	}
	/* The verbs that only act print the daemon's message, if any. */
	if (verb != SV_PROTO_VERB_STATUS && verb != SV_PROTO_VERB_CONFIG &&
	    verb != SV_PROTO_VERB_VERSIONS) {
		if (r.rep.msg_len)
			printf("%.*s\n", (int)r.rep.msg_len, r.rep.msg);
		else
			printf("%s: ok\n", what);
		goto out;
	}
	if (verb == SV_PROTO_VERB_CONFIG && r.rep.payload_len > 0 && r.rep.payload[0] != '{') {
		/* the daemon renders its config as YAML (sv_config_show) */
		if (o->json)
			rc = ctl_config_print_json(r.rep.payload, r.rep.payload_len);
		else
			fwrite(r.rep.payload, 1, r.rep.payload_len, stdout);
		goto out;
	}
	rc = reply_json(&r, what, &j);
	if (rc)
		goto out;
	if (o->verb == CTL_VERB_STATUS && !o->json && !ctl_json_get(j, "pairs_per_second")) {
		/* The daemon sends no rate: measure one over a second. */
		struct timespec a, b, one = {1, 0};

		prev = j;
		j = NULL;
		clock_gettime(CLOCK_MONOTONIC, &a);
		nanosleep(&one, NULL);
		ctl_reply_close(&r);
		rc = admin_call(c, verb, 0, NULL, what, &cn, &r);
		if (!rc)
			rc = reply_json(&r, what, &j);
		if (rc)
			goto out;
		clock_gettime(CLOCK_MONOTONIC, &b);
		dt = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) * 1e-9;
	}
	if (verb == SV_PROTO_VERB_STATUS)
		add_local_rss(c, j);
	if (o->json) {
		if (o->verb == CTL_VERB_STATUS)
			rc = check_status_keys(j);
		ctl_json_write(j, stdout);
		fputc('\n', stdout);
	} else if (o->verb == CTL_VERB_STATUS) {
		print_status(j, prev, dt);
	} else if (o->verb == CTL_VERB_VERSIONS && ctl_json_get(j, "versions") &&
	           ctl_json_get(j, "versions")->type == CTL_JSON_ARR) {
		print_versions(ctl_json_get(j, "versions"));
	} else {
		print_flat(j, path, 0, sizeof(path));
	}
out:
	ctl_json_free(prev);
	ctl_json_free(j);
	ctl_reply_close(&r);
	ctl_conn_close(&cn);
	return rc;
}
