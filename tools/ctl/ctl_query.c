/* ctl_query.c - the query-endpoint verbs: score, topk, item put/get/delete.
 *
 * Operands are item ids, or vectors given as '@FILE.npy' / '-' (see
 * ctl_read_vector_arg()).  Leaves out: batch scoring of files (evaluate).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "ctl_json.h"
#include "sv/error.h"
#include "sv/npy.h"

/* Fill side from an operand; a vector is loaded into *owned. */
static int side_from_arg(const char *arg, struct sv_proto_side *side, float **owned, uint32_t *dim)
{
	memset(side, 0, sizeof(*side));
	if (ctl_arg_is_vector(arg)) {
		uint32_t d;
		int rc = ctl_read_vector_arg(arg, owned, &d);

		if (rc)
			return rc;
		if (*dim && *dim != d) {
			ctl_err("vectors differ in length: %u and %u", *dim, d);
			return CTL_EXIT_FAIL;
		}
		*dim = d;
		side->vec = *owned;
		return CTL_EXIT_OK;
	}
	if (strlen(arg) > SV_PROTO_MAX_ID || !*arg) {
		ctl_err("item id '%.40s...': ids are 1..%d bytes", arg, SV_PROTO_MAX_ID);
		return CTL_EXIT_USAGE;
	}
	side->id = arg;
	side->id_len = strlen(arg);
	return CTL_EXIT_OK;
}

static const char *policy_name(unsigned p)
{
	static const char *const names[] = {"fixed", "target_far", "eer", "max_accuracy"};

	return p < 4 ? names[p] : "unknown";
}

static const char *side_name(const char *arg)
{
	return ctl_arg_is_vector(arg) ? (arg[0] == '@' ? arg + 1 : "stdin vector") : arg;
}

static int run_score(struct ctl_ctx *c, struct ctl_conn *cn, struct sv_proto_msgbuf *mb,
                     struct ctl_reply *r)
{
	const struct ctl_opts *o = c->o;
	struct sv_proto_pair p = {0};
	struct sv_proto_score s;
	float *va = NULL, *vb = NULL;
	uint32_t dim = 0;
	uint64_t id;
	int rc;

	rc = side_from_arg(o->args[0], &p.a, &va, &dim);
	if (!rc)
		rc = side_from_arg(o->args[1], &p.b, &vb, &dim);
	if (rc)
		goto out;
	id = ctl_conn_next_id(cn);
	if (sv_proto_encode_pairs(mb, SV_PROTO_VERB_SCORE, id, &p, 1, dim, NULL) != 0) {
		ctl_err("score: cannot encode the request");
		rc = CTL_EXIT_FAIL;
		goto out;
	}
	rc = ctl_conn_call(cn, mb, id, r);
	if (!rc)
		rc = ctl_reply_check(r, "score", 1);
	if (rc)
		goto out;
	if (sv_proto_reply_score(&r->rep, 0, &s) != 0) {
		ctl_err("score: the reply holds no score row");
		rc = CTL_EXIT_DAEMON;
		goto out;
	}
	if (s.status != SV_PROTO_STATUS_OK) {
		ctl_err("score %s %s: daemon refused: %s", side_name(o->args[0]),
		        side_name(o->args[1]), sv_proto_status_name(s.status));
		rc = s.status == SV_PROTO_STATUS_INTERNAL ? CTL_EXIT_DAEMON : CTL_EXIT_REFUSED;
		goto out;
	}
	if (o->json)
		printf("{\"score\": %.9g, \"threshold\": %.9g, \"margin\": %.9g, \"match\": %s, "
		       "\"policy\": \"%s\", \"model_version\": %llu}\n",
		       s.score, s.threshold, s.margin, s.match ? "true" : "false",
		       policy_name(s.policy), (unsigned long long)s.model_version);
	else
		printf("%s  score %.6f  threshold %.6f (%s)  margin %+.6f  model v%llu\n",
		       s.match ? "MATCH" : "NO MATCH", s.score, s.threshold, policy_name(s.policy),
		       s.margin, (unsigned long long)s.model_version);
out:
	free(va);
	free(vb);
	return rc;
}

static int run_topk(struct ctl_ctx *c, struct ctl_conn *cn, struct sv_proto_msgbuf *mb,
                    struct ctl_reply *r)
{
	const struct ctl_opts *o = c->o;
	struct sv_proto_side q;
	struct sv_proto_topk_query tq;
	struct sv_proto_iter it = {0};
	struct sv_proto_hit h;
	float *v = NULL;
	uint32_t dim = 0;
	size_t qi, rank = 0;
	uint64_t id;
	int rc;

	rc = side_from_arg(o->args[0], &q, &v, &dim);
	if (rc)
		goto out;
	id = ctl_conn_next_id(cn);
	if (sv_proto_encode_topk(mb, id, &q, 1, dim, o->k) != 0) {
		ctl_err("topk: cannot encode the request");
		rc = CTL_EXIT_FAIL;
		goto out;
	}
	rc = ctl_conn_call(cn, mb, id, r);
	if (!rc)
		rc = ctl_reply_check(r, "topk", 1);
	if (rc)
		goto out;
	if (sv_proto_reply_topk_query(&r->rep, 0, &tq) != 0) {
		ctl_err("topk: the reply holds no result");
		rc = CTL_EXIT_DAEMON;
		goto out;
	}
	if (tq.status != SV_PROTO_STATUS_OK) {
		ctl_err("topk %s: daemon refused: %s", side_name(o->args[0]),
		        sv_proto_status_name(tq.status));
		rc = tq.status == SV_PROTO_STATUS_INTERNAL ? CTL_EXIT_DAEMON : CTL_EXIT_REFUSED;
		goto out;
	}
	if (o->json)
		printf("{\"model_version\": %llu, \"hits\": [",
		       (unsigned long long)tq.model_version);
	while (sv_proto_next_hit(&r->rep, &it, &qi, &h) == 1) {
		if (o->json) {
			printf("%s{\"id\": ", rank ? ", " : "");
			ctl_json_write_str(stdout, h.id, h.id_len);
			printf(", \"score\": %.9g}", h.score);
		} else {
			printf("%3zu  %-24.*s  %.6f\n", rank + 1, (int)h.id_len, h.id, h.score);
		}
		rank++;
	}
	if (o->json)
		printf("]}\n");
out:
	free(v);
	return rc;
}

static int run_item(struct ctl_ctx *c, struct ctl_conn *cn, struct sv_proto_msgbuf *mb,
                    struct ctl_reply *r)
{
	const struct ctl_opts *o = c->o;
	const char *item = o->args[0];
	float *v = NULL, *copy = NULL;
	uint32_t dim = 0;
	uint64_t id = ctl_conn_next_id(cn);
	char what[300];
	int rc, enc;

	if (!*item || strlen(item) > SV_PROTO_MAX_ID) {
		ctl_err("item id must be 1..%d bytes", SV_PROTO_MAX_ID);
		return CTL_EXIT_USAGE;
	}
	switch (o->verb) {
	case CTL_VERB_ITEM_PUT:
		snprintf(what, sizeof(what), "item put %s", item);
		rc = ctl_read_vector_arg(o->args[1], &v, &dim);
		if (rc)
			return rc;
		enc = sv_proto_encode_item_put(mb, id, item, strlen(item), v, dim);
		break;
	case CTL_VERB_ITEM_GET:
		snprintf(what, sizeof(what), "item get %s", item);
		enc = sv_proto_encode_item(mb, SV_PROTO_VERB_ITEM_GET, id, item, strlen(item));
		break;
	default:
		snprintf(what, sizeof(what), "item delete %s%s", o->purge ? "--purge " : "", item);
		enc = o->purge ? sv_proto_encode_admin(mb, SV_PROTO_VERB_PURGE, id, 0, item)
		               : sv_proto_encode_item(mb, SV_PROTO_VERB_ITEM_DEL, id, item,
		                                      strlen(item));
		break;
	}
	if (enc != 0) {
		ctl_err("%s: cannot encode the request", what);
		rc = CTL_EXIT_FAIL;
		goto out;
	}
	rc = ctl_conn_call(cn, mb, id, r);
	if (!rc)
		rc = ctl_reply_check(r, what, 0);
	if (!rc && o->purge)
		printf("%.*s\n", (int)r->rep.msg_len, r->rep.msg ? r->rep.msg : "");
	if (rc || o->verb != CTL_VERB_ITEM_GET)
		goto out;
	if (!r->rep.vec || r->rep.dim == 0) {
		ctl_err("%s: the reply holds no vector", what);
		rc = CTL_EXIT_DAEMON;
		goto out;
	}
	copy = malloc(sizeof(float) * r->rep.dim);
	if (!copy) {
		ctl_err("%s: out of memory", what);
		rc = CTL_EXIT_FAIL;
		goto out;
	}
	sv_proto_vec_copy(copy, r->rep.vec, r->rep.dim);
	if (o->out) {
		int e = sv_npy_save(o->out, copy, 1, r->rep.dim);

		if (e) {
			ctl_err("%s: cannot write %s: %s", what, o->out, sv_strerror(e));
			rc = CTL_EXIT_FAIL;
		}
	} else {
		for (uint32_t i = 0; i < r->rep.dim; i++)
			printf("%.9g\n", copy[i]);
	}
out:
	free(v);
	free(copy);
	return rc;
}

int ctl_query_run(struct ctl_ctx *c)
{
	struct ctl_conn cn;
	struct sv_proto_msgbuf mb;
	struct ctl_reply r;
	int rc;

	/* Item writes go to the trainer (the store's one writer) through the
	 * acked ingest endpoint; reads to the query endpoint. */
	if (c->o->verb == CTL_VERB_ITEM_DELETE && c->o->purge)
		rc = ctl_conn_open(&cn, c, ZMQ_DEALER, c->admin, "admin");
	else if (c->o->verb == CTL_VERB_ITEM_PUT || c->o->verb == CTL_VERB_ITEM_DELETE)
		rc = ctl_conn_open(&cn, c, ZMQ_DEALER, c->acked, "acked ingest");
	else
		rc = ctl_conn_open(&cn, c, ZMQ_DEALER, c->query, "query");
	if (rc)
		return rc;
	sv_proto_msgbuf_init(&mb);
	ctl_reply_init(&r);
	switch (c->o->verb) {
	case CTL_VERB_SCORE:
		rc = run_score(c, &cn, &mb, &r);
		break;
	case CTL_VERB_TOPK:
		rc = run_topk(c, &cn, &mb, &r);
		break;
	default:
		rc = run_item(c, &cn, &mb, &r);
		break;
	}
	ctl_reply_close(&r);
	sv_proto_msgbuf_free(&mb);
	ctl_conn_close(&cn);
	return rc;
}
